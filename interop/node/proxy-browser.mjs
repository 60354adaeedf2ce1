// Chromium through `wsx proxy` (scripts/proxy-browser): a page served by
// `wsx serve` opens a WebSocket to the proxy in front of the same server,
// sends a short text and a long compressible one, reads both echoes and
// closes with 1000 "done". Prints one JSON report line; exits 1 on failure.
//
//   node proxy-browser.mjs http://127.0.0.1:SERVE/ ws://127.0.0.1:PROXY/browser
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [page_url, ws_url] = process.argv.slice(2);
const profile = mkdtempSync(join(tmpdir(), 'wsx-proxy-browser-'));
const report = { ok: false };
let ctx;
try {
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    chromiumSandbox: false,
    timeout: 60000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await ctx.newPage();
  await page.goto(page_url);
  const long = 'browser says hello through the proxy '.repeat(40);
  const got = await page.evaluate(async ([url, long]) => {
    const ws = new WebSocket(url);
    const echoes = [];
    await new Promise((ok, bad) => { ws.onopen = ok; ws.onerror = () => bad(new Error('no connection')); });
    const done = new Promise((ok) => {
      ws.onmessage = (e) => { echoes.push(e.data); if (echoes.length === 2) ok(); };
    });
    ws.send('hi');
    ws.send(long);
    await Promise.race([done, new Promise((r) => setTimeout(r, 10000))]);
    const closed = new Promise((ok) => { ws.onclose = (e) => ok({ code: e.code, reason: e.reason }); });
    ws.close(1000, 'done');
    return { extensions: ws.extensions, echoes, close: await closed };
  }, [ws_url, long]);
  report.extensions = got.extensions;
  report.close = got.close;
  report.echoed = got.echoes.length === 2 && got.echoes[0] === 'hi' && got.echoes[1] === long;
  report.ok = report.echoed && got.extensions.includes('permessage-deflate') && got.close.code === 1000;
} catch (e) {
  report.error = String(e);
} finally {
  if (ctx) await ctx.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(report));
process.exit(report.ok ? 0 : 1);
