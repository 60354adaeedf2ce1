// Chromium peer for scripts/interop, driven by playwright-core.
//
//   node browser.mjs http://127.0.0.1:PORT
//
// Opens the `wsx serve` test page at PORT (so the page is same-origin with the
// WebSocket endpoint and wsx's Origin check passes), checks that the page's own
// connection negotiated permessage-deflate, then runs the suite (messages.mjs)
// in the page over a new WebSocket to /interop: every message sent, every echo
// compared byte for byte in the page. Prints one JSON report line.
// CHROMIUM: the browser binary (default /usr/bin/chromium).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { suite, payloadBytes } from './messages.mjs';

const base = process.argv[2];
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

  const sent = suite();
  const msgs = sent.map((m) => (m.text !== undefined ? { text: m.text } : { b64: m.binary.toString('base64') }));
  // A persistent context has no Browser object (and the user agent string is
  // reduced to 156.0.0.0): ask the DevTools protocol.
  const product = (await (await context.newCDPSession(page)).send('Browser.getVersion')).product;
  report.browser = `Chromium ${product.replace(/^[^/]*\//, '')}`;
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
  report.ok = report.errors.length === 0;
} catch (e) {
  report.errors.push(String(e.stack || e).split('\n').slice(0, 3).join(' | '));
} finally {
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(report));
process.exitCode = report.ok ? 0 : 1;
