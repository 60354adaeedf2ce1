// Node `ws` peer for scripts/interop.
//
//   node peer.mjs client URL   send the suite (messages.mjs), check the echoes byte
//                              for byte, print one JSON report line
//   node peer.mjs server       echo server (perMessageDeflate: true: ws servers
//                              leave it off by default) on a free 127.0.0.1 port:
//                              prints `listening PORT`, then a JSON report line per
//                              connection
import { createRequire } from 'node:module';
import WebSocket, { WebSocketServer } from 'ws';
import { suite, payloadBytes } from './messages.mjs';

const version = createRequire(import.meta.url)('ws/package.json').version;

function client(url) {
  const sent = suite();
  const got = [];
  const ws = new WebSocket(url); // perMessageDeflate: true is the client default
  const timer = setTimeout(() => finish([`timed out with ${got.length} of ${sent.length} echoes`]), 30000);
  let done = false;
  function finish(errors) {
    if (done) return;
    done = true;
    clearTimeout(timer);
    for (let k = 0; k < Math.min(sent.length, got.length); k++) {
      const s = sent[k];
      const g = got[k];
      const sk = s.text !== undefined ? 'text' : 'binary';
      const gk = g.isBinary ? 'binary' : 'text';
      if (sk !== gk) errors.push(`message ${k}: sent ${sk}, echo is ${gk}`);
      else if (!payloadBytes(s).equals(g.data)) errors.push(`message ${k}: echo differs (${g.data.length} bytes, sent ${payloadBytes(s).length})`);
    }
    const report = {
      ok: errors.length === 0,
      library: `ws ${version}`,
      extensions: ws.extensions || null,
      messages: sent.length,
      payload: sent.reduce((n, m) => n + payloadBytes(m).length, 0),
      errors,
    };
    console.log(JSON.stringify(report));
    process.exitCode = report.ok ? 0 : 1;
    ws.close(1000);
    setTimeout(() => ws.terminate(), 5000).unref();
  }
  ws.on('open', () => {
    for (const m of sent) {
      if (m.text !== undefined) ws.send(m.text);
      else ws.send(m.binary, { binary: true });
    }
  });
  ws.on('message', (data, isBinary) => {
    got.push({ data: Buffer.isBuffer(data) ? data : Buffer.concat(data), isBinary });
    if (got.length === sent.length) finish([]);
  });
  ws.on('error', (e) => finish([`error: ${e.message}`]));
  ws.on('close', (code) => finish([`closed early with ${code}`]));
}

function server() {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: true, maxPayload: 64 << 20 });
  let lastHeader = null;
  wss.on('headers', (headers) => {
    lastHeader = headers.filter((h) => /^sec-websocket-extensions:/i.test(h)).map((h) => h.replace(/^[^:]*:\s*/, '')).join(', ') || null;
  });
  wss.on('listening', () => console.log(`listening ${wss.address().port}`));
  wss.on('connection', (ws) => {
    const header = lastHeader;
    let messages = 0;
    let payload = 0;
    ws.on('message', (data, isBinary) => {
      messages += 1;
      payload += data.length;
      ws.send(data, { binary: isBinary });
    });
    ws.on('close', () => {
      console.log(JSON.stringify({ library: `ws ${version}`, extensions: header, negotiated: ws.extensions || null, messages, payload }));
    });
  });
}

if (process.argv[2] === 'client') client(process.argv[3]);
else server();
