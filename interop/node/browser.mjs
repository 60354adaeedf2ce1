// Chromium peer for scripts/interop, driven by playwright-core.
//
//   WSX_CONSOLE=FIFO SCREENSHOT=PNG node browser.mjs http://127.0.0.1:PORT
//
// Opens the test page that `wsx serve --console --send-frame-size 65536`
// serves at PORT (same origin as the WebSocket endpoint, so wsx's Origin check
// passes) and, in that page:
//  1. waits for the page's own connection ("connected (permessage-deflate)"),
//     types a message into its form and waits for the echo in its log;
//  2. runs the suite (messages.mjs) over a new WebSocket to /interop: every
//     echo compared byte for byte in the page;
//  3. sends a 1 MiB random binary and a 1 MiB JSON text over /fragments: the
//     page reports each echo's length and SHA-256 (checked here against what
//     was sent); the server splits them into 64 KiB frames (the tap counts
//     the continuation frames);
//  4. writes `/close 4001 ...` to the server's console (FIFO WSX_CONSOLE):
//     the /fragments socket must see CloseEvent 4001 with the reason, the
//     page's own connection shows the close and reconnects (2 s), and a
//     message typed after that is echoed;
//  5. saves a screenshot (SCREENSHOT, default target/interop/browser.png).
// Prints one JSON report line. CHROMIUM: the browser binary.
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { bigJson, suite, payloadBytes } from './messages.mjs';

const base = process.argv[2];
const consoleFifo = process.env.WSX_CONSOLE;
const screenshot = process.env.SCREENSHOT || 'target/interop/browser.png';
const CLOSE_REASON = 'bye from the wsx console';
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');
const logHas = (page, cls, text) =>
  page.waitForFunction(
    ({ cls, text }) => [...document.querySelectorAll(`#log .${cls}`)].some((d) => d.textContent.includes(text)),
    { cls, text },
  );
// Types into the page's own form, as a person would.
async function typeAndSend(page, text) {
  await page.fill('#msg', text);
  await page.press('#msg', 'Enter');
  await logHas(page, 'in', `< ${text}`);
}
const profile = mkdtempSync(join(tmpdir(), 'wsx-interop-chromium-'));
const report = { ok: false, errors: [] };
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    chromiumSandbox: false,
    timeout: 60000,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(30000);
  await page.goto(`${base}/`);
  // The test page's own connection: it prints "connected (EXTENSIONS)".
  await page.waitForFunction(() => /connected/.test(document.getElementById('log')?.textContent ?? ''));
  report.test_page = await page.evaluate(() => [...document.querySelectorAll('#log .sys')].map((d) => d.textContent)[0]);
  if (!/permessage-deflate/.test(report.test_page)) report.errors.push(`test page: ${report.test_page}`);
  await typeAndSend(page, 'hello from Chromium');
  report.typed_echo = true;

  const sent = suite();
  const msgs = sent.map((m) => (m.text !== undefined ? { text: m.text } : { b64: m.binary.toString('base64') }));
  // A persistent context has no Browser object (and the user agent string is
  // reduced to 156.0.0.0): ask the DevTools protocol.
  const product = (await (await context.newCDPSession(page)).send('Browser.getVersion')).product;
  report.browser = `Chromium ${product.replace(/^[^/]*\//, '')}`;
  report.playwright_core = JSON.parse(readFileSync(new URL('./node_modules/playwright-core/package.json', import.meta.url))).version;
  // 2. The suite over /interop.
  const r = await page.evaluate(async ({ url, msgs }) => {
    const decode = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const sent = msgs.map((m) => (m.text !== undefined ? m.text : decode(m.b64)));
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    const errors = [];
    const got = [];
    const closed = new Promise((res) => ws.addEventListener('close', (e) => res(e.code)));
    await new Promise((res, rej) => {
      ws.onopen = res;
      ws.onerror = () => rej(new Error('WebSocket error before open'));
    });
    const all = new Promise((res) => {
      ws.onmessage = (e) => {
        got.push(e.data);
        if (got.length === sent.length) res();
      };
    });
    for (const m of sent) ws.send(m);
    await Promise.race([all, closed, new Promise((res) => setTimeout(res, 30000))]);
    if (got.length !== sent.length) errors.push(`${got.length} echoes for ${sent.length} messages`);
    const enc = new TextEncoder();
    let largestText = 0;
    for (let k = 0; k < Math.min(got.length, sent.length); k++) {
      const s = sent[k];
      const g = got[k];
      const sk = typeof s === 'string' ? 'text' : 'binary';
      const gk = typeof g === 'string' ? 'text' : 'binary';
      if (sk !== gk) { errors.push(`message ${k}: sent ${sk}, echo is ${gk}`); continue; }
      const a = sk === 'text' ? enc.encode(s) : s;
      const b = gk === 'text' ? enc.encode(g) : new Uint8Array(g);
      if (a.length !== b.length || a.some((v, i) => v !== b[i])) errors.push(`message ${k}: echo differs (${b.length} bytes, sent ${a.length})`);
      else if (sk === 'text') largestText = Math.max(largestText, b.length);
    }
    const extensions = ws.extensions;
    ws.close(1000);
    const code = await Promise.race([closed, new Promise((res) => setTimeout(() => res('no close within 5 s'), 5000))]);
    return { extensions, errors, largestText, closeCode: code };
  }, { url: base.replace(/^http/, 'ws') + '/interop', msgs });
  Object.assign(report, {
    extensions: r.extensions,
    messages: sent.length,
    payload: sent.reduce((n, m) => n + payloadBytes(m).length, 0),
    largest_text_echoed: r.largestText,
    close_code: r.closeCode,
  });
  report.errors.push(...r.errors);
  if (!/permessage-deflate/.test(r.extensions)) report.errors.push(`extensions: ${JSON.stringify(r.extensions)}`);
  if (r.closeCode !== 1000) report.errors.push(`close: ${r.closeCode}`);

  // 3. Two 1 MiB messages; the server's echoes leave in 64 KiB frames.
  const big = [{ binary: randomBytes(1 << 20) }, { text: bigJson(1 << 20) }];
  const expected = big.map((m) => {
    const b = payloadBytes(m);
    return { kind: m.text !== undefined ? 'text' : 'binary', length: b.length, sha256: sha256(b) };
  });
  const got = await page.evaluate(async ({ url, big }) => {
    const hex = async (bytes) => [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))]
      .map((x) => x.toString(16).padStart(2, '0')).join('');
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    window.fragClose = null;
    window.fragSocket = ws;
    ws.addEventListener('close', (e) => { window.fragClose = { code: e.code, reason: e.reason, wasClean: e.wasClean }; });
    await new Promise((res, rej) => { ws.onopen = res; ws.onerror = () => rej(new Error('/fragments: error before open')); });
    const echoes = [];
    const done = new Promise((res) => {
      ws.onmessage = async (e) => {
        const bytes = typeof e.data === 'string' ? new TextEncoder().encode(e.data) : new Uint8Array(e.data);
        echoes.push({ kind: typeof e.data === 'string' ? 'text' : 'binary', length: bytes.length, sha256: await hex(bytes) });
        if (echoes.length === big.length) res();
      };
    });
    for (const m of big) ws.send(m.text !== undefined ? m.text : Uint8Array.from(atob(m.b64), (c) => c.charCodeAt(0)));
    await Promise.race([done, new Promise((res) => setTimeout(res, 60000))]);
    for (const e of echoes) line('sys', `/fragments: ${e.kind} echo of ${e.length} bytes, sha256 ${e.sha256.slice(0, 16)}…`);
    return echoes;
  }, {
    url: base.replace(/^http/, 'ws') + '/fragments',
    big: big.map((m) => (m.text !== undefined ? { text: m.text } : { b64: m.binary.toString('base64') })),
  });
  report.big = got;
  if (got.length !== expected.length) report.errors.push(`/fragments: ${got.length} echoes of ${expected.length}`);
  got.forEach((g, k) => {
    const w = expected[k];
    if (g.kind !== w.kind || g.length !== w.length || g.sha256 !== w.sha256) {
      report.errors.push(`/fragments echo ${k}: ${g.kind} ${g.length} B ${g.sha256.slice(0, 12)}, sent ${w.kind} ${w.length} B ${w.sha256.slice(0, 12)}`);
    }
  });

  // 4. A server-initiated close with 4001 and a reason, then the page reconnects.
  if (!consoleFifo) throw new Error('WSX_CONSOLE (the server console FIFO) is not set');
  appendFileSync(consoleFifo, `/close 4001 ${CLOSE_REASON}\n`);
  await page.waitForFunction(() => window.fragClose !== null, null, { timeout: 10000 });
  report.close_event = await page.evaluate(() => window.fragClose);
  const ce = report.close_event;
  if (ce.code !== 4001 || ce.reason !== CLOSE_REASON || !ce.wasClean) {
    report.errors.push(`CloseEvent: ${JSON.stringify(ce)}, expected 4001 "${CLOSE_REASON}" (clean)`);
  }
  await logHas(page, 'sys', `closed: 4001 ${CLOSE_REASON}`);
  // The page reconnects after 2 s: a second "connected" line.
  await page.waitForFunction(() => [...document.querySelectorAll('#log .sys')].filter((d) => d.textContent.startsWith('connected')).length >= 2, null, { timeout: 10000 });
  await typeAndSend(page, 'hello again after the 4001 close');
  report.reconnected = true;
  await page.screenshot({ path: screenshot, fullPage: true });
  report.screenshot = screenshot;
  report.ok = report.errors.length === 0;
} catch (e) {
  report.errors.push(String(e.stack || e).split('\n').slice(0, 3).join(' | '));
} finally {
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(report));
process.exitCode = report.ok ? 0 : 1;
