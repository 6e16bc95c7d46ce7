// Browser test of the authorization endpoint's pages: a real `scimgate serve` with a temp
// store, Debian's Chromium (/usr/bin/chromium) driven headless by playwright-core.
//
//   1. wrong password → the login page again, with an error;
//   2. right password → consent page → Deny → redirect with error=access_denied and the state;
//   3. a new browser: login → consent page naming the client and each scope in plain words
//      (screenshot: target/screenshots/consent.png) → Allow → redirect to a listener this
//      test runs, with `code`, the same `state` and `iss`; the code (PKCE S256) is exchanged
//      at /oauth2/token for an access and a refresh token;
//   4. a third browser: the consent is remembered, so login goes straight back with a code.
//
// Usage: node tests/browser/oauth_login.mjs [BIN_DIR]   (default: target/debug; needs
// `scimgate` and `config` there). Env: CHROMIUM (default /usr/bin/chromium), KEEP_TMP=1.
// Prints one line per check; exits 1 on the first failure.

import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, openSync } from 'node:fs';
import { createServer } from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.resolve(ROOT, process.argv[2] || 'target/debug');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = path.join(ROOT, 'target', 'screenshots');
const TOOL_PASSWORD = 'browser-test-tool-pw';
const USER = 'alice';
const PASSWORD = 'alice-password-1';
const CLIENT_NAME = 'Okta provisioning (browser test)';
const SCOPES = {
  'user-directory.read.all': 'read the users and groups in the directory',
  'user-directory.write.all': 'create, change and delete users and groups in the directory',
};

let checks = 0;
function ok(what) {
  checks += 1;
  console.log(`ok   ${what}`);
}
function check(cond, what, detail = '') {
  if (!cond) throw new Error(`${what}${detail ? `: ${detail}` : ''}`);
  ok(what);
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'scimgate-browser-'));
const DB = path.join(tmp, 'scimgate.db');

// Children get our environment minus any SCIMGATE_* setting of the caller's.
function childEnv(extra = {}) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('SCIMGATE_')),
  );
  return { ...env, SCIMGATE_DB: DB, SCIMGATE_TOOL_PASSWORD: TOOL_PASSWORD, TZ: 'UTC', ...extra };
}

function config(args, extra = {}) {
  return execFileSync(path.join(BIN, 'config'), args, {
    env: childEnv(extra),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Start `scimgate serve` on a free port; retry with another port if it exits (port taken).
async function startServer() {
  for (let attempt = 1; attempt <= 3; attempt += 1) {
    const port = await freePort();
    const log = openSync(path.join(tmp, `server-${attempt}.log`), 'w');
    const child = spawn(path.join(BIN, 'scimgate'), ['serve', '--db', DB, '--listen', `127.0.0.1:${port}`], {
      env: childEnv(),
      stdio: ['ignore', log, log],
    });
    let exited = false;
    child.on('exit', () => { exited = true; });
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 150 && !exited; i += 1) {
      try {
        const r = await fetch(`${base}/healthz`);
        if (r.ok) return { child, base };
      } catch { /* not up yet */ }
      await sleep(100);
    }
    child.kill('SIGTERM');
    console.log(`server did not come up on port ${port} (attempt ${attempt}); see ${tmp}`);
  }
  throw new Error('could not start scimgate serve');
}

// The client's redirect URI: a listener that records each request and answers with a page.
function startListener() {
  const hits = [];
  const srv = createServer((req, res) => {
    hits.push(new URL(req.url, 'http://127.0.0.1'));
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!DOCTYPE html><title>callback</title><p>Redirect received.</p>');
  });
  return new Promise((resolve) => {
    srv.listen(0, '127.0.0.1', () => resolve({ srv, hits, port: srv.address().port }));
  });
}

const b64url = (buf) => buf.toString('base64url');

let server;
let listener;
let browser;
try {
  // --- store, account, client
  mkdirSync(SHOTS, { recursive: true });
  listener = await startListener();
  const REDIRECT = `http://127.0.0.1:${listener.port}/callback`;
  config(['init']);
  config(['create-user', '-u', USER], { SCIMGATE_USER_PASSWORD: PASSWORD });
  const client = JSON.parse(config([
    '--json', 'register-api-client', '-n', CLIENT_NAME, '--client-profile=WEB',
    '-G', 'authorization_code', '-G', 'refresh_token',
    '-S', 'user-directory.read.all', '-S', 'user-directory.write.all',
    '-R', REDIRECT, '--idp', 'okta', '--idp-app-id', '0oa-browser-test', '--owner', 'iam@example.com',
  ]));
  check(client.id && client.client_secret, 'registered a confidential client', JSON.stringify(client));
  server = await startServer();
  ok(`scimgate serve on ${server.base}, redirect listener on ${REDIRECT}`);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Playwright gives every launch a new empty profile (its own --user-data-dir).
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  ok(`launched ${CHROMIUM} ${browser.version()}`);

  const authorizeUrl = (state, challenge) => {
    const q = new URLSearchParams({
      response_type: 'code',
      client_id: client.id,
      redirect_uri: REDIRECT,
      scope: Object.keys(SCOPES).join(' '),
      state,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    return `${server.base}/oauth2/authorize?${q}`;
  };
  const newPkce = () => {
    const verifier = b64url(randomBytes(32));
    return { verifier, challenge: b64url(createHash('sha256').update(verifier).digest()) };
  };
  async function signIn(page, password) {
    await page.fill('#username', USER);
    await page.fill('#password', password);
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  }

  // --- 1 and 2: wrong password, then deny
  {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const state = `deny-${b64url(randomBytes(8))}`;
    const resp = await page.goto(authorizeUrl(state, newPkce().challenge));
    check(resp.status() === 200 && (await page.title()).startsWith('Sign in'), 'GET /oauth2/authorize shows the login page',
      `${resp.status()} ${await page.title()}`);
    check((await page.textContent('main')).includes(CLIENT_NAME), 'login page names the client');

    await signIn(page, 'not-the-password');
    const alert = await page.locator('[role=alert]').textContent().catch(() => null);
    check(alert && alert.includes('Wrong user name or password'), 'wrong password: login page again with an error', String(alert));
    check(await page.locator('#password').count() === 1, 'wrong password: the login form is shown again');

    await signIn(page, PASSWORD);
    check(await page.locator('button[value=deny]').count() === 1, 'right password: consent page');
    const callbacks = () => listener.hits.filter((u) => u.pathname === '/callback').length;
    const hitsBefore = callbacks();
    await Promise.all([page.waitForURL((u) => u.href.startsWith(REDIRECT)), page.click('button[value=deny]')]);
    const u = new URL(page.url());
    check(u.searchParams.get('error') === 'access_denied', 'Deny: redirect with error=access_denied', page.url());
    check(u.searchParams.get('state') === state, 'Deny: the same state comes back');
    check(!u.searchParams.has('code'), 'Deny: no code');
    // (Chromium may also ask the listener for /favicon.ico: count the callbacks only.)
    check(callbacks() === hitsBefore + 1, 'Deny: the redirect listener received the redirect', listener.hits.map(String).join(' '));
    await ctx.close();
  }

  // --- 3: login, consent (screenshot), allow, code exchange
  {
    const ctx = await browser.newContext({ viewport: { width: 900, height: 720 } });
    const page = await ctx.newPage();
    const state = `allow-${b64url(randomBytes(8))}`;
    const { verifier, challenge } = newPkce();
    await page.goto(authorizeUrl(state, challenge));
    await signIn(page, PASSWORD);
    const main = (await page.textContent('main')).replace(/\s+/g, ' ');
    check((await page.textContent('h1')).includes(CLIENT_NAME), 'consent page heading names the client', await page.textContent('h1'));
    const items = (await page.locator('main li').allTextContents()).map((t) => t.replace(/\s+/g, ' '));
    for (const [scope, words] of Object.entries(SCOPES)) {
      check(items.some((t) => t.includes(words) && t.includes(scope)), `consent page lists ${scope} in plain words`, items.join(' | '));
    }
    check(main.includes('Okta') && main.includes('0oa-browser-test'), 'consent page names the IdP reference', main);
    check(main.includes(`Signed in as ${USER}`), 'consent page names the signed-in user');
    const shot = path.join(SHOTS, 'consent.png');
    await page.screenshot({ path: shot, fullPage: true });
    ok(`screenshot ${path.relative(ROOT, shot)}`);

    await Promise.all([page.waitForURL((u) => u.href.startsWith(REDIRECT)), page.click('button[value=allow]')]);
    const u = new URL(page.url());
    const code = u.searchParams.get('code');
    check(code && code.startsWith('sgac_'), 'Allow: redirect to the redirect URI with a code', page.url());
    check(u.searchParams.get('state') === state, 'Allow: the same state comes back');
    check(u.searchParams.get('iss') === server.base, 'Allow: iss is the issuer (RFC 9207)', u.searchParams.get('iss'));
    check((await page.textContent('body')).includes('Redirect received'), 'Allow: the browser landed on the listener');

    const basic = Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.client_secret)}`).toString('base64');
    const tokenResp = await fetch(`${server.base}/oauth2/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }),
    });
    const tok = await tokenResp.json();
    check(tokenResp.status === 200, 'code exchange at /oauth2/token answers 200', `${tokenResp.status} ${JSON.stringify(tok)}`);
    check(tokenResp.headers.get('cache-control') === 'no-store', 'token response is Cache-Control: no-store');
    check(typeof tok.access_token === 'string' && tok.access_token.startsWith('sgat_'), 'an access token');
    check(typeof tok.refresh_token === 'string' && tok.refresh_token.startsWith('sgrt_'), 'a refresh token');
    check(tok.token_type === 'Bearer' && tok.expires_in > 0, 'token_type Bearer with expires_in', JSON.stringify(tok));
    check(tok.scope.split(' ').sort().join(' ') === Object.keys(SCOPES).sort().join(' '), 'both scopes granted', tok.scope);
    const users = await fetch(`${server.base}/scim/v2/Users`, { headers: { authorization: `Bearer ${tok.access_token}` } });
    check(users.status === 200, 'the access token reads /scim/v2/Users', String(users.status));
    await ctx.close();
  }

  // --- 4: remembered consent
  {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const state = `again-${b64url(randomBytes(8))}`;
    await page.goto(authorizeUrl(state, newPkce().challenge));
    await Promise.all([page.waitForURL((u) => u.href.startsWith(REDIRECT)),
      page.fill('#username', USER).then(() => page.fill('#password', PASSWORD)).then(() => page.click('button[type=submit]'))]);
    const u = new URL(page.url());
    check(u.searchParams.get('code')?.startsWith('sgac_') && u.searchParams.get('state') === state,
      'remembered consent: login goes straight back with a code', page.url());
    await ctx.close();
  }

  console.log(`browser test: ${checks} checks passed`);
} catch (e) {
  console.error(`FAIL ${e.message}`);
  console.error(`(server logs and store kept in ${tmp})`);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
  if (listener) listener.srv.close();
  if (server) {
    server.child.kill('SIGTERM');
    await new Promise((r) => (server.child.exitCode !== null ? r() : server.child.once('exit', r)));
  }
  if (process.exitCode !== 1 && !process.env.KEEP_TMP) rmSync(tmp, { recursive: true, force: true });
}
