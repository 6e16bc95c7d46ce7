// Browser test of the operator's token timeline (/ui/timeline): a real `scimgate serve`
// (monitor tick 1 s) with three IdP clients — one healthy, one whose token was revoked
// and is still being used (failing), one Entra-style client that never called — viewed
// in Debian's Chromium after signing in. Takes target/screenshots/timeline.png.
//
// Usage: node tests/browser/timeline.mjs [BIN_DIR]   (default: target/debug)

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, openSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.resolve(ROOT, process.argv[2] || 'target/debug');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = path.join(ROOT, 'target', 'screenshots');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'scimgate-timeline-'));
const DB = path.join(tmp, 'scimgate.db');

let checks = 0;
function check(cond, what, detail = '') {
  if (!cond) throw new Error(`${what}${detail ? `: ${detail}` : ''}`);
  checks += 1;
  console.log(`ok   ${what}`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function childEnv(extra = {}) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SCIMGATE_')));
  return { ...env, SCIMGATE_DB: DB, SCIMGATE_TOOL_PASSWORD: 'timeline-tool-pw', TZ: 'UTC', ...extra };
}
const config = (args, extra = {}) =>
  execFileSync(path.join(BIN, 'config'), args, { env: childEnv(extra), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const freePort = () => new Promise((resolve, reject) => {
  const s = net.createServer();
  s.once('error', reject);
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

let server;
let browser;
try {
  mkdirSync(SHOTS, { recursive: true });
  config(['init']);
  config(['create-user', '-u', 'ops', '--operator'], { SCIMGATE_USER_PASSWORD: 'operator-pw-1' });
  const reg = (name, extra) => JSON.parse(config(['--json', 'register-api-client', '-n', name, '-G', 'client_credentials',
    '-S', 'user-directory.read.all', '-S', 'user-directory.write.all', ...extra])).id;
  const entra = reg('Entra ID — production', ['--idp', 'entra', '--idp-tenant', 'contoso.onmicrosoft.com']);
  const okta = reg('Okta — staging', ['--idp', 'okta']);
  const silent = reg('Entra ID — new tenant', ['--idp', 'entra']);
  const issue = (id, extra) => JSON.parse(config(['--json', 'issue-access-token', '-i', id, ...extra]));
  const good = issue(entra, ['--valid-for', '60d', '--label', 'prod']);
  issue(entra, ['--valid-for', '20d', '--label', 'old']);
  const revoked = issue(okta, ['--valid-for', '45d']);
  issue(okta, ['--valid-for', '80d']);
  issue(silent, ['--valid-for', '10d']);
  config(['revoke-token', '--id', revoked.id]);

  const port = await freePort();
  const log = openSync(path.join(tmp, 'server.log'), 'w');
  const child = spawn(path.join(BIN, 'scimgate'), ['serve', '--db', DB, '--listen', `127.0.0.1:${port}`],
    { env: childEnv({ SCIMGATE_MONITOR_TICK: '1s' }), stdio: ['ignore', log, log] });
  const base = `http://127.0.0.1:${port}`;
  server = { child };
  for (let i = 0; i < 150; i += 1) {
    try { if ((await fetch(`${base}/healthz`)).ok) break; } catch { /* not up yet */ }
    await sleep(100);
  }
  const call = (token) => fetch(`${base}/scim/v2/Users`, { headers: { authorization: `Bearer ${token}` } });
  check((await call(good.access_token)).status === 200, 'the Entra client provisions (200)');
  check((await call(revoked.access_token)).status === 401, 'the Okta client still uses its revoked token (401)');
  await sleep(2500); // two monitor ticks

  browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await (await browser.newContext({ viewport: { width: 1240, height: 700 } })).newPage();
  await page.goto(`${base}/ui/timeline`);
  check(page.url().endsWith('/ui/login'), 'the timeline asks for a sign-in', page.url());
  await page.fill('#username', 'ops');
  await page.fill('#password', 'operator-pw-1');
  await Promise.all([page.waitForURL((u) => u.pathname === '/ui/timeline'), page.click('button[type=submit]')]);
  check(await page.locator('svg').count() === 1, 'the timeline is an inline SVG');
  const text = await page.textContent('body');
  for (const name of ['Entra ID — production', 'Okta — staging', 'Entra ID — new tenant']) {
    check(text.includes(name), `a row for ${name}`);
  }
  check(text.includes('HEALTHY') && text.includes('FAILING'), 'states at a glance: healthy and failing', text.slice(0, 300));
  check(text.includes(good.id), 'a bar per token, labelled with its id');
  const bars = await page.locator('svg rect title').count();
  check(bars >= 5, `bars and heartbeat marks (${bars})`);
  check(text.includes('now'), 'the now line');
  await page.screenshot({ path: path.join(SHOTS, 'timeline.png'), fullPage: true });
  check(true, `screenshot ${path.join(SHOTS, 'timeline.png')}`);
  console.log(`timeline test: ${checks} checks passed`);
} catch (e) {
  console.error(`FAIL ${e.message}`);
  console.error(`(server log and store kept in ${tmp})`);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
  if (server) {
    server.child.kill('SIGTERM');
    await new Promise((r) => (server.child.exitCode !== null ? r() : server.child.once('exit', r)));
  }
  if (process.exitCode !== 1 && !process.env.KEEP_TMP) rmSync(tmp, { recursive: true, force: true });
}
