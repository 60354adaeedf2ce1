// Node `ws` peer for scripts/interop (mirrors interop/python/peer.py).
//
//   node peer.mjs client BASE_URL CONSOLE   against `wsx serve --console --ping-interval 1`;
//                                           CONSOLE is the FIFO its stdin reads; prints
//                                           one JSON report line
//   node peer.mjs server                    echo server (perMessageDeflate: true: ws
//                                           servers leave it off by default) on a free
//                                           127.0.0.1 port: prints `listening PORT`, then
//                                           a JSON report line per connection
//
// The client runs, each on its own connection: [/suite] the suite (messages.mjs),
// echoes checked byte for byte, a ping from here (the pong must carry its payload),
// a ping from wsx (`/ping` on the console) and a keepalive ping, answered by ws;
// [/big] the 16 MiB binary and text, echoes checked byte for byte; [/oversize] one
// binary of 16 MiB + 1 byte, which wsx must refuse with 1009 (reported: the close
// code and reason seen, echoes, the time from the send to the end); [/close/CASE]
// one close path each (CLOSE_CASES): this side closes (1000, or 4000 with a
// reason) or resets the TCP connection (RST, no close frame), or wsx does, told
// through the console (/drop: wsx ends TCP with a FIN).
//
// The server echoes every message except the wsx client's commands: `please ping
// PAYLOAD` (ping, wait for the pong, answer `pong PAYLOAD`), `please close CODE
// [REASON]` (REASON: OUR_REASON unless CODE is 1000), `please drop` (RST, no
// close frame), `please send oversize` (one binary of 16 MiB + 1 byte, which the wsx
// client must refuse with 1009). Its report per connection: the path, what it
// received (16 MiB ones by SHA-256), the pings it received, its own ping's fate, the
// close code and reason it saw (1006: none) and, after `please send oversize`, the
// time from that send to the 'close' event.
import { appendFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import WebSocket, { WebSocketServer } from 'ws';
import { suite, bigs, oversize, payloadBytes, sha256 } from './messages.mjs';

const version = createRequire(import.meta.url)('ws/package.json').version;
const LIBRARY = `ws ${version}`;
const OUR_REASON = 'bye from ws';
const WSX_REASON = 'bye from wsx';
const CLOSE_CASES = [
  ['peer-1000', 'peer', 1000, ''],
  ['peer-4000', 'peer', 4000, OUR_REASON],
  ['peer-drop', 'peer', null, ''],
  ['wsx-1000', 'wsx', 1000, ''],
  ['wsx-4001', 'wsx', 4001, WSX_REASON],
  ['wsx-drop', 'wsx', null, ''],
];
const PING_PAYLOAD = 'ping from ws';
const CONSOLE_PING = 'ping-from-wsx-serve';
const STEP_TIMEOUT = 30000;

const kindOf = (m) => (m.text !== undefined ? 'text' : 'binary');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

async function waitUntil(cond, ms) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

// A client connection with a message queue and a record of pings, pongs and the close.
function open(url) {
  const ws = new WebSocket(url); // perMessageDeflate: true is the client default
  const conn = { ws, queue: [], waiters: [], pings: [], pongs: [], closed: null };
  ws.on('upgrade', (res) => { conn.socket = res.socket; });
  ws.on('message', (data, isBinary) => {
    const m = { data: Buffer.isBuffer(data) ? data : Buffer.concat(data), isBinary };
    const w = conn.waiters.shift();
    if (w) w.resolve(m);
    else conn.queue.push(m);
  });
  ws.on('ping', (data) => conn.pings.push(data.toString()));
  ws.on('pong', (data) => conn.pongs.push(data.toString()));
  conn.done = new Promise((resolve) => {
    ws.on('close', (code, reason) => {
      conn.closed = { code, reason: reason.toString() };
      for (const w of conn.waiters.splice(0)) w.reject(new Error(`closed with ${code}`));
      resolve();
    });
  });
  conn.next = () => {
    if (conn.queue.length) return Promise.resolve(conn.queue.shift());
    if (conn.closed) return Promise.reject(new Error(`closed with ${conn.closed.code}`));
    return new Promise((resolve, reject) => conn.waiters.push({ resolve, reject }));
  };
  const opened = new Promise((resolve, reject) => {
    ws.once('open', () => resolve(conn));
    ws.once('error', reject);
  });
  ws.on('error', () => {}); // reported through 'close'
  return withTimeout(opened, 10000, `connect ${url}`);
}

function send(ws, m) {
  if (m.text !== undefined) ws.send(m.text);
  else ws.send(m.binary, { binary: true });
}

async function echoAll(conn, sent, errors, what) {
  for (const m of sent) send(conn.ws, m);
  const got = [];
  await withTimeout((async () => {
    while (got.length < sent.length) got.push(await conn.next());
  })(), STEP_TIMEOUT, `${what} echoes (${got.length} of ${sent.length})`);
  for (let k = 0; k < sent.length; k++) {
    const s = sent[k];
    const g = got[k];
    const gk = g.isBinary ? 'binary' : 'text';
    if (kindOf(s) !== gk) errors.push(`${what} message ${k}: sent ${kindOf(s)}, echo is ${gk}`);
    else if (!payloadBytes(s).equals(g.data)) errors.push(`${what} message ${k}: echo differs (${g.data.length} bytes, sent ${payloadBytes(s).length})`);
  }
  return got;
}

async function closeNormally(conn) {
  conn.ws.close(1000);
  await withTimeout(conn.done, 10000, 'close handshake');
}

const consoleLine = (path, line) => appendFileSync(path, `${line}\n`);

async function clientSuite(base, consolePath, report) {
  const { errors } = report;
  const sent = suite();
  const conn = await open(`${base}suite`);
  report.extensions = conn.ws.extensions || null;
  await echoAll(conn, sent, errors, 'suite');
  report.messages = sent.length;
  report.payload = sent.reduce((n, m) => n + payloadBytes(m).length, 0);

  // Our ping: the pong must carry its payload.
  const t0 = process.hrtime.bigint();
  conn.ws.ping(PING_PAYLOAD);
  const pong = await waitUntil(() => conn.pongs.includes(PING_PAYLOAD), 5000);
  report.ping = { payload: PING_PAYLOAD, pong, pongs: conn.pongs };
  if (pong) report.ping.rtt_ms = Number(process.hrtime.bigint() - t0) / 1e6;
  else errors.push(`no pong carrying our ping's payload (pongs: ${JSON.stringify(conn.pongs)})`);

  // wsx's pings: one from the console, and the keepalive (--ping-interval 1).
  consoleLine(consolePath, `/ping ${CONSOLE_PING}`);
  const seen = await waitUntil(() => conn.pings.includes(CONSOLE_PING), 5000);
  const keepalive = await waitUntil(() => conn.pings.some((p) => p !== CONSOLE_PING), 5000);
  report.wsx_ping = { payload: CONSOLE_PING, seen };
  report.keepalive_pings = conn.pings.filter((p) => p !== CONSOLE_PING).length;
  if (!seen) errors.push(`the console's ping (${CONSOLE_PING}) did not arrive`);
  if (!keepalive) errors.push('no keepalive ping from wsx serve within 5 s (--ping-interval 1)');
  await closeNormally(conn);
}

async function clientBig(base, report) {
  const sent = bigs();
  report.big = sent.map((m) => ({ kind: kindOf(m), bytes: payloadBytes(m).length, sha256: sha256(payloadBytes(m)) }));
  const started = Date.now();
  const conn = await open(`${base}big`);
  const errors = [];
  const got = await echoAll(conn, sent, errors, '16 MiB');
  report.big_secs = (Date.now() - started) / 1000;
  report.errors.push(...errors);
  report.big.forEach((e, k) => { e.echo_ok = got[k] !== undefined && payloadBytes(sent[k]).equals(got[k].data); });
  await closeNormally(conn);
}

// One message of 16 MiB + 1 byte: wsx serve must close with 1009 and a reason,
// promptly, without echoing anything. secs: from the send to the 'close' event.
async function clientOversize(base, report) {
  const msg = oversize();
  const out = { bytes: msg.binary.length, echoes: 0 };
  report.oversize = out;
  const conn = await open(`${base}oversize`);
  const started = Date.now();
  send(conn.ws, msg);
  try {
    await withTimeout(conn.done, 10000, 'the end of /oversize');
    out.secs = (Date.now() - started) / 1000;
  } catch {
    // The other steps still run: end this connection ourselves.
    report.errors.push('oversize: wsx serve did not close the connection within 10 s');
    await closeNormally(conn);
  }
  out.echoes = conn.queue.length;
  out.saw_code = conn.closed.code;
  out.saw_reason = conn.closed.reason;
}

async function clientClose(base, consolePath, [kase, initiator, code, reason]) {
  const out = { case: kase, initiator, code, reason };
  const conn = await open(`${base}close/${kase}`);
  // An echo first: wsx serve's side of the connection is up and running.
  conn.ws.send('hello');
  await withTimeout(conn.next(), 10000, 'hello echo');
  if (initiator === 'peer') {
    if (code === null) conn.socket.resetAndDestroy(); // RST, no close frame
    else conn.ws.close(code, reason);
  } else {
    consoleLine(consolePath, code === null ? '/drop' : `/close ${code} ${reason}`.trimEnd());
  }
  await withTimeout(conn.done, 10000, `the end of ${kase}`);
  out.saw_code = conn.closed.code;
  out.saw_reason = conn.closed.reason;
  return out;
}

async function client(base, consolePath) {
  const report = { library: LIBRARY, errors: [], closes: [] };
  try {
    await clientSuite(base, consolePath, report);
    await clientBig(base, report);
    await clientOversize(base, report);
    for (const c of CLOSE_CASES) report.closes.push(await clientClose(base, consolePath, c));
  } catch (e) {
    report.errors.push(`${e.message}`);
  }
  report.ok = report.errors.length === 0;
  console.log(JSON.stringify(report));
  process.exit(report.ok ? 0 : 1);
}

function server() {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: true, maxPayload: 64 << 20 });
  let lastHeader = null;
  wss.on('headers', (headers) => {
    lastHeader = headers.filter((h) => /^sec-websocket-extensions:/i.test(h)).map((h) => h.replace(/^[^:]*:\s*/, '')).join(', ') || null;
  });
  wss.on('listening', () => console.log(`listening ${wss.address().port}`));
  wss.on('connection', (ws, req) => {
    const rec = {
      library: LIBRARY,
      path: req.url,
      extensions: lastHeader,
      negotiated: ws.extensions || null,
      messages: 0,
      payload: 0,
      big: [],
      pings: [],
    };
    let pingWait = null;
    let oversizeAt = null;
    ws.on('ping', (data) => rec.pings.push(data.toString()));
    ws.on('pong', (data) => {
      if (pingWait && data.toString() === pingWait.payload) pingWait.resolve();
    });
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? null : data.toString();
      if (text !== null && text.startsWith('please ')) {
        const words = text.split(' ');
        if (words[1] === 'ping') {
          const payload = text.slice('please ping '.length);
          rec.ping = { payload, pong: false };
          const timer = setTimeout(() => { rec.error = 'no pong within 5 s'; pingWait = null; }, 5000);
          pingWait = {
            payload,
            resolve: () => {
              clearTimeout(timer);
              pingWait = null;
              rec.ping.pong = true;
              ws.send(`pong ${payload}`);
            },
          };
          ws.ping(payload);
        } else if (words[1] === 'close') {
          const code = Number(words[2]);
          const reason = words.slice(3).join(' ') || (code !== 1000 ? OUR_REASON : '');
          rec.sent_close = [code, reason];
          ws.close(code, reason);
        } else if (words[1] === 'drop') {
          rec.sent_close = 'drop';
          req.socket.resetAndDestroy(); // RST, no close frame
        } else if (text === 'please send oversize') {
          const big = oversize().binary;
          rec.oversize = { bytes: big.length };
          oversizeAt = Date.now();
          ws.send(big, { binary: true });
        }
        return;
      }
      rec.messages += 1;
      rec.payload += data.length;
      if (data.length >= 1 << 20) rec.big.push({ kind: isBinary ? 'binary' : 'text', bytes: data.length, sha256: sha256(data) });
      ws.send(data, { binary: isBinary });
    });
    ws.on('error', () => {}); // the close event reports it
    ws.on('close', (code, reason) => {
      rec.close_code = code;
      rec.close_reason = reason.toString();
      // From the send to the 'close' event (after the closing handshake).
      if (rec.oversize) rec.oversize.secs = (Date.now() - oversizeAt) / 1000;
      console.log(JSON.stringify(rec));
    });
  });
}

if (process.argv[2] === 'client') client(process.argv[3], process.argv[4]);
else server();
