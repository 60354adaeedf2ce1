// The `wsx term` page in Chromium, driven by playwright-core (scripts/term-browser).
//
//   SCREENSHOT=PNG node term-browser.mjs 'http://127.0.0.1:PORT/?token=T&session=ID' TOKEN
//
// The address is the one `wsx term` prints at start (or the same under a
// reverse proxy's sub-path: every URL is taken relative to it); the session runs
// `bash --norc --noprofile -i`. In the page, as a person would:
//  1. waits for "connected" in the status bar, types `echo hello-$((6*7))` and
//     Enter into the terminal and reads `hello-42` from xterm.js's screen;
//  2. the program inside pushes state with curl to $WSX_TERM_STATE_URL: the
//     status bar shows it;
//  3. shrinks the window: the PTY follows (`stty size` prints the page's
//     rows and columns);
//  4. reloads: the same session, the screen back as it was (line for line), and
//     the state first; typing still works;
//  5. a second browser profile (no cookie) opens a read-only ticket link: it
//     sees the same screen, and its typing reaches nothing;
//  6. saves a screenshot (SCREENSHOT, default target/term/browser.png).
// Prints one JSON report line; exits 1 on a failed check.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const start = process.argv[2];
const token = process.argv[3];
const screenshot = process.env.SCREENSHOT || 'target/term/browser.png';
// Where the page is: the server's root, or a reverse proxy's sub-path.
const base = new URL('.', start).href;
const report = { ok: false, checks: [], errors: [] };
const check = (name, ok, detail) => {
  report.checks.push({ name, ok, ...(detail === undefined ? {} : { detail }) });
  if (!ok) report.errors.push(`${name}${detail === undefined ? '' : `: ${JSON.stringify(detail)}`}`);
};

// The screen as lines, trailing blanks dropped (the cursor row may be empty).
const screen = (page) => page.evaluate(() => window.wsxTerm.screen());
const tidy = (s) => s.split('\n').map((l) => l.trimEnd()).join('\n').replace(/\n+$/, '');
const waitScreen = (page, re, timeout = 15000) =>
  page.waitForFunction((src) => new RegExp(src, 'm').test(window.wsxTerm.screen()), re.source, { timeout });
const waitConnected = (page) =>
  page.waitForFunction(() => window.wsxTerm && window.wsxTerm.connection() === 'connected' && window.wsxTerm.role());
// Keys into xterm.js's hidden textarea, one by one.
async function typeLine(page, text) {
  await page.click('#terminal');
  await page.keyboard.type(text, { delay: 5 });
  await page.keyboard.press('Enter');
}

const launch = (profile) =>
  chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    chromiumSandbox: false,
    timeout: 60000,
    viewport: { width: 1000, height: 600 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });

const profiles = [mkdtempSync(join(tmpdir(), 'wsx-term-a-')), mkdtempSync(join(tmpdir(), 'wsx-term-b-'))];
const contexts = [];
try {
  const ctx = await launch(profiles[0]);
  contexts.push(ctx);
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  page.setDefaultTimeout(20000);
  await page.goto(start);
  // The page's redirect took the token out of the address bar (it is in a cookie now).
  check('token out of the address bar', !new URL(page.url()).searchParams.has('token'), page.url());
  await waitConnected(page);
  const session = await page.evaluate(() => window.wsxTerm.session());
  report.session = session;
  check('writer role', (await page.evaluate(() => window.wsxTerm.role())) === 'writer');

  // 1. A command typed into the terminal; its output read from the screen.
  await waitScreen(page, /^READY-\d+ \$ ?$/);
  await typeLine(page, 'echo hello-$((6*7))');
  await waitScreen(page, /^hello-42$/);
  check('typed command output on screen', true);

  // 2. State from the program inside, through its own channel.
  await typeLine(page, `curl -sf -o /dev/null -H "Authorization: Bearer $WSX_TERM_STATE_TOKEN" -d '{"step":"built","n":2}' "$WSX_TERM_STATE_URL" && echo state-sent`);
  await waitScreen(page, /^state-sent$/);
  await page.waitForFunction(() => document.getElementById('state').textContent.includes('step: built'));
  report.status_bar = await page.evaluate(() => document.getElementById('state').textContent);
  // In the order the program gave its keys.
  check('state in the status bar', /step: built\s+·\s+n: 2/.test(report.status_bar), report.status_bar);

  // 3. The window shrinks: the PTY follows.
  await page.setViewportSize({ width: 700, height: 400 });
  await page.waitForTimeout(300);
  const size = await page.evaluate(() => [window.wsxTerm.term.rows, window.wsxTerm.term.cols]);
  await typeLine(page, 'stty size');
  await waitScreen(page, new RegExp(`^${size[0]} ${size[1]}$`));
  report.resized_to = size;
  check('PTY resized with the window', true, size);
  await typeLine(page, 'clear; for i in 1 2 3; do echo line-$i; done; echo hello-$((6*7))');
  await waitScreen(page, /^line-3\nhello-42\nREADY-\d+ \$ ?$/);
  const before = tidy(await screen(page));

  // 4. Reload: the same session, the same screen.
  await page.reload();
  await waitConnected(page);
  check('same session after reload', (await page.evaluate(() => window.wsxTerm.session())) === session);
  await waitScreen(page, /^hello-42$/);
  await page.waitForTimeout(300);
  const after = tidy(await screen(page));
  check('same screen after reload', after === before, after === before ? undefined : { before, after });
  await page.waitForFunction(() => document.getElementById('state').textContent.includes('step: built'));
  check('state shown again after reload', true);
  await typeLine(page, 'echo after-$((2+3))');
  await waitScreen(page, /^after-5$/);
  check('typing works after reload', true);

  // 5. A read-only viewer from a ticket link, in a profile without the cookie.
  const res = await fetch(`${base}api/sessions/${session}/tickets`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ role: 'viewer' }),
  });
  const ticket = await res.json();
  check('ticket issued', res.ok && ticket.role === 'viewer', ticket);
  const ctx2 = await launch(profiles[1]);
  contexts.push(ctx2);
  const viewer = ctx2.pages()[0] ?? (await ctx2.newPage());
  viewer.setDefaultTimeout(20000);
  await viewer.setViewportSize({ width: 700, height: 400 });
  await viewer.goto(new URL(ticket.page, base).href);
  await waitConnected(viewer);
  check('viewer role', (await viewer.evaluate(() => window.wsxTerm.role())) === 'viewer');
  await waitScreen(viewer, /^after-5$/);
  const viewed = tidy(await screen(viewer));
  const writerNow = tidy(await screen(page));
  check('viewer sees the writer\'s screen', viewed === writerNow, viewed === writerNow ? undefined : { viewed, writerNow });
  await viewer.click('#terminal');
  await viewer.keyboard.type('echo from-viewer', { delay: 5 });
  await viewer.keyboard.press('Enter');
  await page.waitForTimeout(500);
  check('viewer input reaches nothing', !/from-viewer/.test(await screen(page)));
  await page.waitForFunction(() => /2 viewers/.test(document.getElementById('viewers').textContent));
  check('viewer count in the status bar', true);

  // 6. The screenshot.
  await typeLine(page, 'clear; printf "\\033[1;32mwsx term\\033[0m: a shell in the browser\\n"; echo "TERM=$TERM, $(stty size | tr " " x)"; for c in 31 32 33 34 35 36; do printf "\\033[${c}mcolour $c\\033[0m "; done; echo');
  await waitScreen(page, /colour 36/);
  await waitScreen(page, /a shell in the browser/);
  await page.waitForTimeout(300);
  await page.screenshot({ path: screenshot });
  report.screenshot = screenshot;
  report.ok = report.errors.length === 0;
} catch (e) {
  report.errors.push(String(e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : e));
  // What the page showed when it failed.
  for (const [i, c] of contexts.entries()) {
    const p = c.pages()[0];
    if (!p) continue;
    report[`screen_${i}`] = await p.evaluate(() => window.wsxTerm && window.wsxTerm.screen()).catch(() => null);
    report[`status_${i}`] = await p.evaluate(() => document.getElementById('bar').textContent).catch(() => null);
    await p.screenshot({ path: screenshot.replace(/\.png$/, `-failed-${i}.png`) }).catch(() => {});
  }
} finally {
  for (const c of contexts) await c.close().catch(() => {});
  for (const p of profiles) rmSync(p, { recursive: true, force: true });
}
console.log(JSON.stringify(report));
process.exit(report.ok ? 0 : 1);
