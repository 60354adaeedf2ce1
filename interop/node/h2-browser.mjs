// Chromium and WebSockets over HTTP/2 (scripts/h2-browser), driven by
// playwright-core.
//
//   SPKI=BASE64 node h2-browser.mjs https://127.0.0.1:PORT/ h2|http/1.1
//
// Loads the page (interop/h2-browser, served by `wsx serve --tls-self-signed
// --static`) and checks it came over HTTP/2 (nextHopProtocol of the document
// and of page.js). Then, in the page, two WebSockets to the same host at once:
//   /h2-echo   texts (ASCII, multi-byte UTF-8, empty), binaries (ArrayBuffer:
//              every byte, a 64 KiB pattern, empty) and a ~109 KiB JSON text,
//              each echo compared byte for byte; ws.extensions must name
//              permessage-deflate; closed with 1000;
//   /h2-close  one echo, then closed with 4000 and a reason.
// Each CloseEvent must carry the code sent (and be clean); its reason is the
// one in the server's close frame (reported; the server's log shows ours).
// The second argument is the transport the WebSockets must use, as the
// DevTools protocol shows their handshakes: h2 -> extended CONNECT answered
// 200 (RFC 8441); http/1.1 -> GET with Upgrade answered 101.
// Trusts the certificate whose SubjectPublicKeyInfo SHA-256 is SPKI (base64),
// or ignores certificate errors when SPKI is unset.
// Before the browser, Node's HTTP/2 client reads the server's SETTINGS:
// SETTINGS_ENABLE_CONNECT_PROTOCOL must be 1 for h2 and absent (or 0) else.
// Prints one JSON report line; exits 1 on failure. CHROMIUM: the browser binary.
import http2 from 'node:http2';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { bigJson, UTF8_SMALL } from './messages.mjs';

const [base, transport] = process.argv.slice(2);
if (!base || !['h2', 'http/1.1'].includes(transport)) {
  console.error('usage: node h2-browser.mjs https://HOST:PORT/ h2|http/1.1');
  process.exit(2);
}
const wsBase = base.replace(/^http/, 'ws').replace(/\/$/, '');
const CLOSE_REASON = 'bye from Chromium — ✓ ünïcödé';
const profile = mkdtempSync(join(tmpdir(), 'wsx-h2-browser-'));
const report = { ok: false, transport_expected: transport, errors: [] };
const fail = (msg) => report.errors.push(msg);
let ctx;
try {
  // The server's first SETTINGS, as Node's HTTP/2 client sees them (ALPN h2).
  report.server_settings = await new Promise((res) => {
    const s = http2.connect(base, { rejectUnauthorized: false });
    const t = setTimeout(() => { s.destroy(); res({ error: 'no SETTINGS within 5 s' }); }, 5000);
    s.once('remoteSettings', (st) => {
      clearTimeout(t);
      res({ alpn: s.alpnProtocol, enable_connect_protocol: st.enableConnectProtocol === true });
      s.close();
    });
    s.on('error', (e) => { clearTimeout(t); res({ error: String(e) }); });
  });
  const ss = report.server_settings;
  if (ss.alpn !== 'h2') fail(`server SETTINGS: ${JSON.stringify(ss)} (no HTTP/2)`);
  else if (ss.enable_connect_protocol !== (transport === 'h2')) {
    fail(`server SETTINGS_ENABLE_CONNECT_PROTOCOL is ${ss.enable_connect_protocol ? 'on' : 'off'}, expected ${transport === 'h2' ? 'on' : 'off'}`);
  }
  const trust = process.env.SPKI
    ? [`--ignore-certificate-errors-spki-list=${process.env.SPKI}`]
    : ['--ignore-certificate-errors'];
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    chromiumSandbox: false,
    timeout: 60000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', ...trust],
  });
  report.trust = process.env.SPKI ? 'spki' : 'ignore-certificate-errors';
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  page.setDefaultTimeout(30000);
  const cdp = await ctx.newCDPSession(page);
  report.browser = `Chromium ${(await cdp.send('Browser.getVersion')).product.replace(/^[^/]*\//, '')}`;
  report.playwright_core = JSON.parse(readFileSync(new URL('./node_modules/playwright-core/package.json', import.meta.url))).version;
  // The WebSocket handshakes as the network stack saw them.
  const handshakes = new Map();
  await cdp.send('Network.enable');
  cdp.on('Network.webSocketCreated', (e) => handshakes.set(e.requestId, { url: e.url }));
  cdp.on('Network.webSocketWillSendHandshakeRequest', (e) => {
    const h = handshakes.get(e.requestId) ?? {};
    h.request_headers = Object.keys(e.request.headers ?? {}).map((k) => k.toLowerCase()).sort();
    handshakes.set(e.requestId, h);
  });
  cdp.on('Network.webSocketHandshakeResponseReceived', (e) => {
    const h = handshakes.get(e.requestId) ?? {};
    h.status = e.response.status;
    h.response_headers = Object.fromEntries(Object.entries(e.response.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    handshakes.set(e.requestId, h);
  });

  const response = await page.goto(base);
  report.page_status = response?.status();
  report.page_title = await page.title();
  if (report.page_title !== 'wsx h2-browser') fail(`page title "${report.page_title}": not interop/h2-browser/index.html`);
  await page.waitForFunction(() => window.pageScript === true);
  const timing = await page.evaluate(() => ({
    document: performance.getEntriesByType('navigation')[0]?.nextHopProtocol,
    script: performance.getEntriesByType('resource').find((r) => r.name.endsWith('/page.js'))?.nextHopProtocol,
  }));
  report.page_protocol = timing;
  if (timing.document !== 'h2') fail(`the page came over ${JSON.stringify(timing.document)}, not h2`);
  if (timing.script !== 'h2') fail(`page.js came over ${JSON.stringify(timing.script)}, not h2`);

  const big = bigJson(100 * 1024);
  const texts = ['hi', UTF8_SMALL, UTF8_SMALL.repeat(300), '', 'x', big];
  const r = await page.evaluate(async ({ wsBase, texts, reason }) => {
    const errors = [];
    const enc = new TextEncoder();
    const every = new Uint8Array(256 * 64).map((_, k) => k % 256);
    const pattern = new Uint8Array(64 * 1024).map((_, k) => ((k * 7) % 255) + 1);
    const binaries = [new Uint8Array([1, 2, 3, 254, 255]), every, pattern, new Uint8Array(0)];
    // Texts and binaries interleaved; binaries sent as ArrayBuffers.
    const sent = [];
    for (let k = 0; k < Math.max(texts.length, binaries.length); k++) {
      if (k < texts.length) sent.push(texts[k]);
      if (k < binaries.length) sent.push(binaries[k].buffer);
    }
    const open = (path) => {
      const ws = new WebSocket(wsBase + path);
      ws.binaryType = 'arraybuffer';
      const got = [];
      const waiters = [];
      ws.onmessage = (e) => { got.push(e.data); waiters.splice(0).forEach((w) => w()); };
      const closed = new Promise((res) => ws.addEventListener('close', (e) => res({ code: e.code, reason: e.reason, wasClean: e.wasClean })));
      const opened = new Promise((res, rej) => {
        ws.onopen = () => res();
        ws.onerror = () => rej(new Error(`${path}: WebSocket error before open`));
        closed.then((c) => rej(new Error(`${path}: closed before open: ${JSON.stringify(c)}`)));
      });
      const waitFor = (n, ms) => new Promise((res) => {
        const t = setTimeout(res, ms);
        const check = () => (got.length >= n ? (clearTimeout(t), res()) : waiters.push(check));
        check();
      });
      return { ws, got, closed, opened, waitFor, path };
    };
    const same = (s, g) => {
      const sk = typeof s === 'string' ? 'text' : 'binary';
      const gk = typeof g === 'string' ? 'text' : 'binary';
      if (sk !== gk) return `sent ${sk}, echo is ${gk}`;
      const a = sk === 'text' ? enc.encode(s) : new Uint8Array(s);
      const b = gk === 'text' ? enc.encode(g) : new Uint8Array(g);
      if (a.length !== b.length || a.some((v, i) => v !== b[i])) return `echo differs (${b.length} bytes, sent ${a.length})`;
      return null;
    };
    const deadline = (p, ms, what) => Promise.race([p, new Promise((res) => setTimeout(() => res({ timeout: `${what}: nothing within ${ms} ms` }), ms))]);
    // Both at once: two streams of one HTTP/2 connection (or two connections).
    const a = open('/h2-echo');
    const b = open('/h2-close');
    const t0 = performance.now();
    await Promise.all([a.opened, b.opened]);
    const openMs = Math.round(performance.now() - t0);
    window.log?.(`open: /h2-echo "${a.ws.extensions}", /h2-close "${b.ws.extensions}" (${openMs} ms)`);
    // /h2-close: one echo while /h2-echo runs its suite.
    b.ws.send(texts[1]);
    for (const m of sent) a.ws.send(m);
    await Promise.all([a.waitFor(sent.length, 30000), b.waitFor(1, 30000)]);
    const echoMs = Math.round(performance.now() - t0);
    if (a.got.length !== sent.length) errors.push(`/h2-echo: ${a.got.length} echoes for ${sent.length} messages`);
    let bytes = 0;
    let largestText = 0;
    for (let k = 0; k < Math.min(a.got.length, sent.length); k++) {
      const d = same(sent[k], a.got[k]);
      if (d) errors.push(`/h2-echo message ${k}: ${d}`);
      const n = typeof sent[k] === 'string' ? enc.encode(sent[k]).length : sent[k].byteLength;
      bytes += n;
      if (!d && typeof sent[k] === 'string') largestText = Math.max(largestText, n);
    }
    if (b.got.length !== 1 || same(texts[1], b.got[0])) errors.push(`/h2-close: echo ${JSON.stringify(b.got)}`);
    window.log?.(`/h2-echo: ${a.got.length}/${sent.length} echoes, ${bytes} bytes; /h2-close: ${b.got.length} echo`);
    const extensions = { '/h2-echo': a.ws.extensions, '/h2-close': b.ws.extensions };
    b.ws.close(4000, reason);
    const closeB = await deadline(b.closed, 5000, '/h2-close close');
    a.ws.close(1000);
    const closeA = await deadline(a.closed, 5000, '/h2-echo close');
    window.log?.(`closed: /h2-close ${JSON.stringify(closeB)}, /h2-echo ${JSON.stringify(closeA)}`);
    return {
      errors, extensions, openMs, echoMs,
      messages: sent.length, texts: texts.length, binaries: binaries.length, bytes, largestText,
      close: { '/h2-echo': closeA, '/h2-close': closeB },
    };
  }, { wsBase, texts, reason: CLOSE_REASON });
  report.sockets = 2;
  report.extensions = r.extensions;
  report.echo = { messages: r.messages, texts: r.texts, binaries: r.binaries, bytes: r.bytes, largest_text: r.largestText, big_json: Buffer.byteLength(big) };
  report.ms = { open: r.openMs, echoes: r.echoMs };
  report.close = r.close;
  report.close_reason_sent = CLOSE_REASON;
  r.errors.forEach(fail);
  for (const [path, e] of Object.entries(r.extensions)) {
    if (!/permessage-deflate/.test(e)) fail(`${path}: ws.extensions ${JSON.stringify(e)}, no permessage-deflate`);
  }
  const ca = r.close['/h2-echo'];
  if (ca.code !== 1000 || !ca.wasClean) fail(`/h2-echo CloseEvent ${JSON.stringify(ca)}, expected 1000 (clean)`);
  const cb = r.close['/h2-close'];
  // RFC 6455 §5.5.1: the answer typically echoes the code; the reason is the server's.
  if (cb.code !== 4000 || !cb.wasClean) fail(`/h2-close CloseEvent ${JSON.stringify(cb)}, expected 4000 (clean)`);
  else if (cb.reason !== '' && cb.reason !== CLOSE_REASON) fail(`/h2-close CloseEvent reason ${JSON.stringify(cb.reason)}`);

  // The handshakes: extended CONNECT (200) over h2, Upgrade (101) over HTTP/1.1.
  await page.waitForTimeout(200);
  report.handshakes = [...handshakes.values()].map((h) => ({ url: h.url, status: h.status, extensions: h.response_headers?.['sec-websocket-extensions'] }));
  const want = transport === 'h2' ? 200 : 101;
  if (report.handshakes.length !== 2) fail(`DevTools saw ${report.handshakes.length} WebSocket handshakes, expected 2`);
  for (const h of report.handshakes) {
    if (h.status !== want) fail(`${h.url}: handshake answered ${h.status} (DevTools), expected ${want} for ${transport}`);
  }
  await page.screenshot({ path: process.env.SCREENSHOT || join(tmpdir(), 'h2-browser.png') }).catch(() => {});
  report.ok = report.errors.length === 0;
} catch (e) {
  fail(String(e.stack || e).split('\n').slice(0, 3).join(' | '));
} finally {
  await ctx?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(report));
process.exitCode = report.ok ? 0 : 1;
