// undici's WebSocket over HTTP/2 (RFC 8441, extended CONNECT; undici >= 7.17,
// experimental) as a client of `wsx serve --h2c`, for scripts/interop-h2. Mirrors
// interop/node/peer.mjs's client as far as the browser-style WebSocket API allows.
//
//   node undici_client.mjs BASE_URL CONSOLE
//
// BASE_URL: ws://HOST:PORT/ (h2c with prior knowledge: new Agent({ allowH2: true,
// useH2c: true }) as the WebSocket's dispatcher, one connection per origin);
// CONSOLE: the FIFO `wsx serve --console` reads (commands go there), or - for none.
// Prints one JSON report line; exits 1 when it has errors.
//
// Phase 1, concurrently on one HTTP/2 connection: [/suite] the suite
// (../node/messages.mjs) echoed byte for byte, a ping from here (undici's
// `ping(ws, payload)`; the pong must carry its payload), a ping from the console
// and keepalive pings (undici answers them itself; seen through its diagnostics
// channels); [/big] the 16 MiB binary and text echoed byte for byte; [/oversize]
// 16 MiB + 1 byte: the server must close with 1009 and a reason; [/close/peer-1000],
// [/close/peer-4000]: this side closes. Phase 2, one at a time (console commands
// reach every open WebSocket): [/close/wsx-1000], [/close/wsx-4001],
// [/close/wsx-drop] through the console. Phase 3: [/after] one more echo on the same
// connection. Phase 4: [/close/peer-drop] the browser-style API cannot reset one
// stream, so this side drops the whole TCP connection (RST) with that WebSocket
// open: the server must see 1006, and so must undici.
//
// HTTP/2 is checked from here too: undici's "WebSocket over HTTP2 is experimental"
// warning, and every handshake answered 200 (101 would be HTTP/1.1), as undici's
// diagnostics channel `undici:websocket:open` reports it.
import { createHash, randomBytes } from 'node:crypto';
import diagnosticsChannel from 'node:diagnostics_channel';
import { once } from 'node:events';
import http2 from 'node:http2';
import { appendFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { suite, bigs, oversize, payloadBytes, sha256 } from '../node/messages.mjs';

// undici is installed (npm ci) in ./node, pinned by its package-lock.json.
const requireUndici = createRequire(new URL('./node/package.json', import.meta.url));
const { Agent, WebSocket, buildConnector, ping } = requireUndici('undici');
const version = requireUndici('undici/package.json').version;
const LIBRARY = `undici ${version}`;
const OUR_REASON = 'bye from undici';
const WSX_REASON = 'bye from wsx';
const PING_PAYLOAD = 'ping from undici';
const CONSOLE_PING = 'ping-from-wsx-serve';
const STEP_TIMEOUT = 30000;
// BIG_STALL: the 16 MiB echo on a socket that was opened together with the
// suite's, or sat idle for a few seconds while wsx serve's keepalive pings
// (--ping-interval 1) came and were answered, stalls in undici 7.30.3 (Node 20):
// the frames on the wire show the server's echo stopping at exactly undici's
// initial stream window (256 KiB) and undici never sending a WINDOW_UPDATE for
// that stream again (it still does for the connection): it stopped reading the
// stream. The echo never arrives, wsx ends the socket after 10 s without a pong
// (the pong waits behind the 16 MiB in the same stream) and Node refuses every
// later stream (RST_STREAM ENHANCE_YOUR_CALM). So the 16 MiB steps get sockets
// of their own, opened right before their traffic.

const warnings = [];
process.on('warning', (w) => warnings.push(`${w.name}: ${w.message}`));
// Exceptions thrown inside undici's own event handlers (not by a step): reported, not fatal.
const uncaught = [];
process.on('uncaughtException', (e) => uncaught.push(`${e.name}: ${e.message} (${(e.stack || '').split('\n')[1]?.trim()})`));

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

// ---- one HTTP/2 connection, counted --------------------------------------------------

const tcp = { connections: 0, sockets: [], alpn: [] };
const baseConnect = buildConnector({ allowH2: true, useH2c: true, timeout: 10000 });
function connect(opts, callback) {
  tcp.connections += 1;
  return baseConnect(opts, (err, socket) => {
    if (socket) {
      tcp.sockets.push(socket);
      tcp.alpn.push(socket.alpnProtocol || null);
    }
    callback(err, socket);
  });
}
const dispatcher = new Agent({
  allowH2: true,
  useH2c: true,
  connections: 1,
  // Without it undici runs one request at a time per connection (pipelining
  // defaults to 1, also for HTTP/2): a second WebSocket would wait for the first.
  pipelining: 100,
  connect,
  webSocket: { maxPayloadSize: 64 << 20 },
});

// ---- WebSockets, with what undici's diagnostics channels tell --------------------------

const byWs = new Map();
diagnosticsChannel.subscribe('undici:websocket:open', (m) => {
  const c = byWs.get(m.websocket);
  if (c) {
    c.status = m.handshakeResponse?.status;
    c.extensions = m.extensions || null;
  }
});
diagnosticsChannel.subscribe('undici:websocket:ping', (m) => byWs.get(m.websocket)?.pings.push(Buffer.from(m.payload ?? []).toString()));
diagnosticsChannel.subscribe('undici:websocket:pong', (m) => byWs.get(m.websocket)?.pongs.push(Buffer.from(m.payload ?? []).toString()));

function open(url) {
  const ws = new WebSocket(url, { dispatcher });
  ws.binaryType = 'arraybuffer';
  const conn = { ws, url, queue: [], waiters: [], pings: [], pongs: [], closed: null, errors: [], status: null };
  byWs.set(ws, conn);
  ws.addEventListener('message', (ev) => {
    const m = typeof ev.data === 'string' ? { text: ev.data } : { binary: Buffer.from(ev.data) };
    const w = conn.waiters.shift();
    if (w) w.resolve(m);
    else conn.queue.push(m);
  });
  ws.addEventListener('error', (ev) => conn.errors.push(String(ev.error?.message ?? ev.message ?? 'error')));
  conn.done = new Promise((resolve) => {
    ws.addEventListener('close', (ev) => {
      conn.closed = { code: ev.code, reason: ev.reason, wasClean: ev.wasClean, at: Date.now() };
      for (const w of conn.waiters.splice(0)) w.reject(new Error(`closed with ${ev.code}`));
      resolve();
    });
  });
  conn.next = () => {
    if (conn.queue.length) return Promise.resolve(conn.queue.shift());
    if (conn.closed) return Promise.reject(new Error(`closed with ${conn.closed.code}`));
    return new Promise((resolve, reject) => conn.waiters.push({ resolve, reject }));
  };
  const opened = new Promise((resolve, reject) => {
    ws.addEventListener('open', () => resolve(conn));
    conn.done.then(() => reject(new Error(`${url}: closed before open (${conn.closed.code}; errors: ${conn.errors.join('; ')})`)));
  });
  return withTimeout(opened, 10000, `open ${url}`);
}

// When a handshake fails, undici says nothing useful (an error event with an empty
// message, then close 1006). The likely cause over HTTP/2: undici (7.x; also 8.x)
// checks Sec-WebSocket-Accept even on a 200 to an extended CONNECT
// (lib/web/websocket/connection.js: 'Incorrect hash received in Sec-WebSocket-Accept
// header.'), and it sends a Sec-WebSocket-Key for that. This asks the server the
// same question with node:http2 on a connection of its own, and reports the answer.
async function probeConnect(base) {
  const u = new URL(base);
  const out = { path: `${u.pathname}probe-handshake` };
  const session = http2.connect(`http://${u.host}`);
  session.on('error', (e) => { out.error = e.message; });
  try {
    await withTimeout(once(session, 'remoteSettings'), 5000, 'the server\'s SETTINGS');
    out.enable_connect_protocol = session.remoteSettings.enableConnectProtocol;
    const key = randomBytes(16).toString('base64');
    const req = session.request({
      ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'http', ':path': out.path, ':authority': u.host,
      'sec-websocket-version': '13', 'sec-websocket-key': key, 'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits',
    });
    req.on('error', () => {});
    const [headers] = await withTimeout(once(req, 'response'), 5000, 'the answer to CONNECT');
    out.status = headers[':status'];
    out.sec_websocket_accept = headers['sec-websocket-accept'] ?? null;
    out.want_accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    out.accept_ok = out.sec_websocket_accept === out.want_accept;
    req.close(http2.constants.NGHTTP2_CANCEL);
  } catch (e) {
    out.error = e.message;
  }
  session.destroy();
  return out;
}

const send = (ws, m) => ws.send(m.text !== undefined ? m.text : m.binary);

function sameMessage(s, g) {
  return kindOf(s) === kindOf(g) && payloadBytes(s).equals(payloadBytes(g));
}

async function echoAll(conn, sent, errors, what) {
  for (const m of sent) send(conn.ws, m);
  const got = [];
  await withTimeout((async () => {
    while (got.length < sent.length) got.push(await conn.next());
  })(), STEP_TIMEOUT, `${what} echoes (${got.length} of ${sent.length})`);
  sent.forEach((s, k) => {
    const g = got[k];
    if (kindOf(s) !== kindOf(g)) errors.push(`${what} message ${k}: sent ${kindOf(s)}, echo is ${kindOf(g)}`);
    else if (!sameMessage(s, g)) errors.push(`${what} message ${k}: echo differs (${payloadBytes(g).length} bytes, sent ${payloadBytes(s).length})`);
  });
  return got;
}

function streamRecord(conn) {
  return { path: new URL(conn.url).pathname, status: conn.status, extensions: conn.extensions ?? conn.ws.extensions, closed: conn.closed };
}

async function closeNormally(conn, report, what) {
  conn.ws.close(1000);
  try {
    await withTimeout(conn.done, 10000, `${what}: the close event after our close 1000`);
  } catch (e) {
    report.errors.push(e.message);
  }
  report.streams.push(streamRecord(conn));
}

const consoleLine = (path, line) => { if (path !== '-') appendFileSync(path, `${line}\n`); };

// ---- the steps -------------------------------------------------------------------------

// Each step takes its WebSocket already open (`conn`), or opens it itself.
async function clientSuite(base, consolePath, report, conn) {
  const { errors } = report;
  const sent = suite();
  conn ??= await open(`${base}suite`);
  report.extensions = conn.ws.extensions || null;
  await echoAll(conn, sent, errors, 'suite');
  report.messages = sent.length;
  report.payload = sent.reduce((n, m) => n + payloadBytes(m).length, 0);

  const t0 = process.hrtime.bigint();
  ping(conn.ws, Buffer.from(PING_PAYLOAD));
  const pong = await waitUntil(() => conn.pongs.includes(PING_PAYLOAD), 5000);
  report.ping = { payload: PING_PAYLOAD, pong, pongs: conn.pongs };
  if (pong) report.ping.rtt_ms = Number(process.hrtime.bigint() - t0) / 1e6;
  else errors.push(`no pong carrying our ping's payload (pongs: ${JSON.stringify(conn.pongs)})`);

  consoleLine(consolePath, `/ping ${CONSOLE_PING}`);
  const seen = await waitUntil(() => conn.pings.includes(CONSOLE_PING), 5000);
  const keepalive = await waitUntil(() => conn.pings.some((p) => p !== CONSOLE_PING), 5000);
  report.wsx_ping = { payload: CONSOLE_PING, seen };
  report.keepalive_pings = conn.pings.filter((p) => p !== CONSOLE_PING).length;
  if (!seen) errors.push(`the console's ping (${CONSOLE_PING}) did not arrive`);
  if (!keepalive) errors.push('no keepalive ping from the server within 5 s (--ping-interval 1)');
  await closeNormally(conn, report, '/suite');
}

async function clientBig(base, report, conn, sent = bigs()) {
  report.big = sent.map((m) => ({ kind: kindOf(m), bytes: payloadBytes(m).length, sha256: sha256(payloadBytes(m)) }));
  const started = Date.now();
  conn ??= await open(`${base}big`);
  const errors = [];
  const got = await echoAll(conn, sent, errors, '16 MiB');
  report.big_secs = (Date.now() - started) / 1000;
  report.errors.push(...errors);
  report.big.forEach((e, k) => {
    e.echo_ok = got[k] !== undefined && sameMessage(sent[k], got[k]);
    e.echo_sha256 = got[k] && sha256(payloadBytes(got[k]));
  });
  await closeNormally(conn, report, '/big');
}

async function clientOversize(base, report, conn, msg = oversize()) {
  const out = { bytes: msg.binary.length, echoes: 0 };
  report.oversize = out;
  conn ??= await open(`${base}oversize`);
  const started = Date.now();
  send(conn.ws, msg);
  try {
    await withTimeout(conn.done, 10000, 'the end of /oversize');
    out.secs = (Date.now() - started) / 1000;
  } catch {
    report.errors.push('oversize: the server did not close the WebSocket within 10 s');
    conn.ws.close(1000);
    await withTimeout(conn.done, 10000, 'the end of /oversize after our close').catch((e) => report.errors.push(e.message));
  }
  out.echoes = conn.queue.length;
  out.saw_code = conn.closed?.code;
  out.saw_reason = conn.closed?.reason;
  out.was_clean = conn.closed?.wasClean;
  report.streams.push(streamRecord(conn));
}

async function clientClose(base, consolePath, [kase, initiator, code, reason], report, conn) {
  const out = { case: kase, initiator, code, reason };
  conn ??= await open(`${base}close/${kase}`);
  conn.ws.send('hello');
  const hello = await withTimeout(conn.next(), 10000, `${kase}: hello echo`);
  if (hello.text !== 'hello') report.errors.push(`close ${kase}: the echo of hello was ${JSON.stringify(hello)}`);
  if (initiator === 'peer') {
    if (code === null) {
      // The whole TCP connection, with a reset: the browser-style API has no way to reset one stream.
      out.dropped_tcp_connections = tcp.sockets.length;
      for (const s of tcp.sockets) s.resetAndDestroy();
    } else conn.ws.close(code, reason);
  } else {
    consoleLine(consolePath, code === null ? '/drop' : `/close ${code} ${reason}`.trimEnd());
  }
  try {
    await withTimeout(conn.done, 10000, `close ${kase}: the close event`);
  } catch (e) {
    report.errors.push(e.message);
  }
  out.saw_code = conn.closed?.code;
  out.saw_reason = conn.closed?.reason;
  out.clean = conn.closed?.wasClean;
  report.closes.push(out);
  report.streams.push(streamRecord(conn));
}

async function clientAfter(base, report) {
  const conn = await open(`${base}after`);
  conn.ws.send('still there?');
  const got = await withTimeout(conn.next(), 10000, '/after echo');
  report.after = got.text === 'still there?';
  if (!report.after) report.errors.push(`/after: echo ${JSON.stringify(got)}`);
  await closeNormally(conn, report, '/after');
}

async function client(base, consolePath) {
  const report = { library: LIBRARY, node: process.version, http: '2', url: base, errors: [], closes: [], streams: [] };
  const { errors } = report;
  const started = Date.now();
  const guard = async (what, p) => {
    try {
      await p;
    } catch (e) {
      errors.push(`${what}: ${e.message}`);
    }
  };
  try {
    const t = Date.now();
    // All five open before any traffic: Node's http2 session refuses new
    // streams (RST_STREAM ENHANCE_YOUR_CALM, code 11) while more than its
    // maxSessionMemory (10 MB; undici does not let it be raised) is buffered,
    // e.g. a 16 MiB message being sent, and undici's WebSocket then hangs in
    // CONNECTING instead of failing.
    // Phase 1a: three sockets at once; phase 1b: the 16 MiB ones, two at once
    // (their messages made before they open). See BIG_STALL.
    let paths = ['suite', 'close/peer-1000', 'close/peer-4000'];
    let conns = await Promise.all(paths.map((p) => open(`${base}${p}`)));
    report.opened_at_once = [conns.length];
    await Promise.all([
      guard('/suite', clientSuite(base, consolePath, report, conns[0])),
      guard('close peer-1000', clientClose(base, consolePath, ['peer-1000', 'peer', 1000, ''], report, conns[1])),
      guard('close peer-4000', clientClose(base, consolePath, ['peer-4000', 'peer', 4000, OUR_REASON], report, conns[2])),
    ]);
    const big = bigs();
    const over = oversize();
    paths = ['big', 'oversize'];
    conns = await Promise.all(paths.map((p) => open(`${base}${p}`)));
    report.opened_at_once.push(conns.length);
    await Promise.all([
      guard('/big', clientBig(base, report, conns[0], big)),
      guard('/oversize', clientOversize(base, report, conns[1], over)),
    ]);
    report.phase1_secs = (Date.now() - t) / 1000;
    await sleep(300);
    for (const c of [['wsx-1000', 'wsx', 1000, ''], ['wsx-4001', 'wsx', 4001, WSX_REASON], ['wsx-drop', 'wsx', null, '']]) {
      await guard(`close ${c[0]}`, clientClose(base, consolePath, c, report));
    }
    await guard('/after', clientAfter(base, report));
    report.tcp_connections_before_drop = tcp.connections;
    await guard('close peer-drop', clientClose(base, consolePath, ['peer-drop', 'peer', null, ''], report));
  } catch (e) {
    errors.push(e.message);
  }
  await sleep(0); // process.emitWarning reports on the next tick
  report.tcp_connections = tcp.connections;
  report.alpn = tcp.alpn;
  report.warnings = warnings;
  report.uncaught = uncaught;
  report.h2_warning = warnings.some((w) => /WebSocket over HTTP2 is experimental/.test(w));
  const statuses = report.streams.map((s) => s.status);
  report.statuses = statuses;
  if (report.tcp_connections_before_drop !== undefined && report.tcp_connections_before_drop !== 1) errors.push(`${report.tcp_connections_before_drop} TCP connections before the final drop, want 1`);
  if (statuses.length && !statuses.every((s) => s === 200)) errors.push(`handshake statuses ${JSON.stringify(statuses)}, want 200 each (HTTP/2)`);
  if (errors.some((e) => /closed before open/.test(e))) {
    report.handshake_probe = await probeConnect(base);
    const p = report.handshake_probe;
    if (p.enable_connect_protocol !== true) {
      errors.push(`the server's SETTINGS do not enable extended CONNECT (enableConnectProtocol: ${p.enable_connect_protocol}; `
        + 'RFC 8441 needs SETTINGS_ENABLE_CONNECT_PROTOCOL = 1): undici fails with "HTTP/2: Extended CONNECT protocol not supported by server"'
        + `${p.error ? `; probe: ${p.error}` : ''}`);
    } else if (p.status !== 200) {
      errors.push(`the server answered an extended CONNECT with ${p.status}, want 200${p.error ? ` (probe: ${p.error})` : ''}`);
    } else if (!p.accept_ok) {
      errors.push(`the server's 200 to an extended CONNECT carrying Sec-WebSocket-Key has ${p.sec_websocket_accept === null ? 'no' : 'a wrong'} Sec-WebSocket-Accept `
        + `(${JSON.stringify(p.sec_websocket_accept)}, want ${p.want_accept}): undici ${version} fails such handshakes `
        + '("Incorrect hash received in Sec-WebSocket-Accept header.", reported as 1006), although RFC 8441 §5 does not need the header');
    }
  }
  if (!report.h2_warning) errors.push(`no "WebSocket over HTTP2 is experimental" warning from undici: not HTTP/2? (warnings: ${JSON.stringify(warnings)})`);
  report.secs = (Date.now() - started) / 1000;
  report.ok = errors.length === 0;
  console.log(JSON.stringify(report));
  await dispatcher.destroy().catch(() => {});
  process.exit(report.ok ? 0 : 1);
}

const base = process.argv[2].endsWith('/') ? process.argv[2] : `${process.argv[2]}/`;
client(base, process.argv[3] ?? '-');
