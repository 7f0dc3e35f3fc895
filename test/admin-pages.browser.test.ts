/**
 * The admin and account session pages in headless Chromium: sign-in through the real login page, the sessions table,
 * filters, revocation with confirmation, CSRF, roles, "sign out other devices", CSP and escaping.
 */
import test, { type ExecutionContext } from 'ava';
import type { Browser as Chromium, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from './helpers/chromium.js';
import { hashSessionKey } from '../stores/session-store.js';
import { describeUserAgent } from '../server/http/user-agent.js';
import { localPath } from '../server/routes/console-auth.js';
import { Browser } from './helpers/browser.js';
import { discover, REDIRECT_URI, signIn, startAuthorization } from './helpers/relying-party.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const UA = {
  windowsChrome:
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
  macFirefox: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 Firefox/127.0',
  linuxFirefox: 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
  iphoneSafari:
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
};

let chromiumBrowser: Chromium;

test.before(async () => {
  chromiumBrowser = await launchChromium();
});

test.after.always(async () => {
  await chromiumBrowser?.close();
});

async function start(t: ExecutionContext, enabled = true): Promise<TestServer> {
  const gatehouse = await startTestServer({
    config: {
      clients: [
        {
          client_id: 'rp',
          client_secret: 'rp-secret',
          redirect_uris: [REDIRECT_URI],
          grant_types: ['authorization_code'],
          skipConsent: true,
        },
      ],
      serverSideSessions: { enabled, displayNameClaim: 'name' },
    },
  });
  t.teardown(() => gatehouse.close());
  return gatehouse;
}

async function newContext(t: ExecutionContext, userAgent?: string): Promise<BrowserContext> {
  const context = await chromiumBrowser.newContext(userAgent ? { userAgent } : {});
  t.teardown(() => context.close());
  return context;
}

/** Opens a page of Gatehouse in Chromium, signs in on the real login page it is sent to, and waits to be back. */
async function openSignedIn(context: BrowserContext, url: string, username: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(url);
  if (!new URL(page.url()).pathname.startsWith('/interaction/'))
    throw new Error(`expected the login page, got ${page.url()}`);
  await page.fill('#username', username);
  await page.fill('#password', `${username}-password`);
  await Promise.all([page.waitForURL(url), page.getByRole('button', { name: 'Sign in' }).click()]);
  return page;
}

/** A relying-party login of `username` in a fetch-based browser: a session with client `rp`. Returns its session id. */
async function rpSession(gatehouse: TestServer, username: string, userAgent: string) {
  const browser = new Browser(userAgent);
  const config = await discover(gatehouse.issuer, 'rp', 'rp-secret');
  const { claims } = await signIn(browser, config, { username });
  const session = (await gatehouse.server.sessions.sessionsOf(username)).find((s) =>
    s.clients.some((c) => c.sid === claims.sid),
  );
  if (!session) throw new Error('no server-side session for that login');
  return { browser, config, sessionId: session.sessionId };
}

async function isSignedOut(browser: Browser, config: Awaited<ReturnType<typeof discover>>): Promise<boolean> {
  const page = await startAuthorization(browser, config);
  if (page.url.startsWith(REDIRECT_URI)) return false;
  if (page.body.includes('name="password"')) return true;
  throw new Error(`unexpected page ${page.status} ${page.url}`);
}

const rows = (page: Page) => page.locator('tbody tr[data-session-id]');

test('an admin signs in, filters, and revokes one session of another user after confirming', async (t) => {
  const gatehouse = await start(t);
  const bobLaptop = await rpSession(gatehouse, 'bob', UA.linuxFirefox);
  const bobPhone = await rpSession(gatehouse, 'bob', UA.iphoneSafari);

  const alice = await newContext(t, UA.windowsChrome);
  const page = await openSignedIn(alice, `${gatehouse.issuer}/admin/sessions`, 'alice');
  t.is(await page.locator('h1').textContent(), 'Sessions');
  t.is(await rows(page).count(), 3);
  t.is(await page.locator('#total').textContent(), '3');
  const laptopRow = page.locator(`tr[data-session-id="${bobLaptop.sessionId}"]`);
  t.regex((await laptopRow.textContent()) ?? '', /bob[\s\S]*Bob Brown[\s\S]*rp[\s\S]*Firefox 128 on Linux/);
  t.regex((await page.locator(`tr[data-session-id="${bobPhone.sessionId}"]`).textContent()) ?? '', /Safari 17 on iOS/);
  t.regex(
    (await rows(page).filter({ hasText: 'alice' }).textContent()) ?? '',
    /you[\s\S]*gatehouse-console[\s\S]*Chrome 126 on Windows/,
  );
  await page.screenshot({ path: '/tmp/admin-sessions.png', fullPage: true });

  await page.fill('#f-subject', 'bob');
  await Promise.all([page.waitForURL(/subject=bob/), page.getByRole('button', { name: 'Filter' }).click()]);
  t.is(await rows(page).count(), 2);
  t.is(await page.locator('#total').textContent(), '2');

  await Promise.all([
    page.waitForURL(/\/admin\/sessions\/revoke\?/),
    laptopRow.getByRole('link', { name: 'Revoke', exact: true }).click(),
  ]);
  t.is(await page.locator('h1').textContent(), 'Revoke this session?');
  t.true((await page.textContent('main'))!.includes(bobLaptop.sessionId));
  t.is((await gatehouse.server.sessions.sessionsOf('bob')).length, 2, 'nothing happens before confirming');
  await Promise.all([page.waitForURL(/revoked=1/), page.getByRole('button', { name: 'Revoke session' }).click()]);
  t.is(await page.getByRole('status').textContent(), '1 session revoked.');
  t.is(await page.inputValue('#f-subject'), 'bob', 'back on the filtered list');
  t.is(await rows(page).count(), 1);
  t.is(await laptopRow.count(), 0);

  t.true(
    await isSignedOut(bobLaptop.browser, bobLaptop.config),
    "the revoked browser's next authorization shows the login page",
  );
  t.false(await isSignedOut(bobPhone.browser, bobPhone.config), 'the other session is untouched');
});

test('revoke POSTs without or with a wrong CSRF token are refused; a non-admin gets 403', async (t) => {
  const gatehouse = await start(t);
  const bob = await rpSession(gatehouse, 'bob', UA.linuxFirefox);
  const alice = await newContext(t);
  const page = await openSignedIn(alice, `${gatehouse.issuer}/admin/sessions`, 'alice');
  const url = `${gatehouse.issuer}/admin/sessions/revoke`;
  const forms: Record<string, string>[] = [
    { sessionId: bob.sessionId },
    { sessionId: bob.sessionId, csrf: 'not-the-token' },
    { subject: 'bob', csrf: '' },
  ];
  for (const form of forms) {
    const response = await page.request.post(url, { form, maxRedirects: 0, headers: { accept: 'text/html' } });
    t.is(response.status(), 403);
    t.true((await response.text()).includes('invalid_csrf'));
  }
  t.is((await gatehouse.server.sessions.sessionsOf('bob')).length, 1, "bob's session is still there");

  // The token from alice's own page works (this is what the confirmation form sends).
  await page.goto(`${gatehouse.issuer}/admin/sessions/revoke?sessionId=${bob.sessionId}`);
  const csrf = await page.locator('input[name=csrf]').inputValue();
  const ok = await page.request.post(url, { form: { sessionId: bob.sessionId, csrf }, maxRedirects: 0 });
  t.is(ok.status(), 303);
  t.is((await gatehouse.server.sessions.sessionsOf('bob')).length, 0);

  // bob is signed in (fetch browser) but is not an admin.
  const bobAgain = await rpSession(gatehouse, 'bob', UA.linuxFirefox);
  const forbidden = await bobAgain.browser.navigate(`${gatehouse.issuer}/admin/sessions`);
  t.is(forbidden.status, 403);
  t.true(forbidden.body.includes('administrators only'));
  // ...and in Chromium, through the login page.
  const bobContext = await newContext(t);
  const bobPage = await bobContext.newPage();
  await bobPage.goto(`${gatehouse.issuer}/admin/sessions`);
  await bobPage.fill('#username', 'bob');
  await bobPage.fill('#password', 'bob-password');
  const [response] = await Promise.all([
    bobPage.waitForResponse((r) => r.url() === `${gatehouse.issuer}/admin/sessions`),
    bobPage.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  t.is(response.status(), 403);
});

test('an admin revokes all sessions of a user after confirming', async (t) => {
  const gatehouse = await start(t);
  const first = await rpSession(gatehouse, 'carol', UA.linuxFirefox);
  const second = await rpSession(gatehouse, 'carol', UA.iphoneSafari);
  const page = await openSignedIn(await newContext(t), `${gatehouse.issuer}/admin/sessions`, 'alice');
  const carolRow = page.locator(`tr[data-session-id="${first.sessionId}"]`);
  await Promise.all([page.waitForURL(/subject=carol/), carolRow.getByRole('link', { name: 'All of user' }).click()]);
  t.is(await page.locator('h1').textContent(), 'Revoke all sessions of carol?');
  t.true((await page.textContent('main'))!.includes('2 active sessions'));
  await Promise.all([page.waitForURL(/revoked=2/), page.getByRole('button', { name: 'Revoke all sessions' }).click()]);
  t.is(await rows(page).count(), 1, "only alice's own session is left");
  t.true(await isSignedOut(first.browser, first.config));
  t.true(await isSignedOut(second.browser, second.config));
});

test('a user sees their devices and signs out another one, then all others', async (t) => {
  const gatehouse = await start(t);
  const url = `${gatehouse.issuer}/account/sessions`;
  const laptop = await newContext(t, UA.windowsChrome);
  const other = await newContext(t, UA.macFirefox);
  const page = await openSignedIn(laptop, url, 'dave');
  const otherPage = await openSignedIn(other, url, 'dave');

  await page.reload();
  t.is(await rows(page).count(), 2);
  const current = rows(page).filter({ hasText: 'this device' });
  t.is(await current.count(), 1);
  t.regex((await current.textContent()) ?? '', /Chrome 126 on Windows/);
  const otherRow = rows(page).filter({ hasNotText: 'this device' });
  t.regex((await otherRow.textContent()) ?? '', /Firefox 127 on macOS/);
  t.is(await current.getByRole('button').count(), 0, 'no sign-out button for the current session');

  await Promise.all([page.waitForURL(/signedOut=1/), otherRow.getByRole('button', { name: 'Sign out' }).click()]);
  t.is(await page.getByRole('status').textContent(), '1 other session signed out.');
  t.is(await rows(page).count(), 1);

  await otherPage.goto(url);
  t.true(new URL(otherPage.url()).pathname.startsWith('/interaction/'), 'the other device must sign in again');
  t.is(await otherPage.locator('#password').count(), 1);
  await page.goto(url);
  t.is(page.url(), url, 'this device stays signed in');

  // A third device (a relying-party login), then "sign out all other sessions".
  const phone = await rpSession(gatehouse, 'dave', UA.iphoneSafari);
  const bob = await rpSession(gatehouse, 'bob', UA.linuxFirefox);
  await page.reload();
  t.is(await rows(page).count(), 2);
  const csrf = await page.locator('input[name=csrf]').first().inputValue();
  const foreign = await page.request.post(`${url}/sign-out`, {
    form: { csrf, sessionId: bob.sessionId },
    maxRedirects: 0,
    headers: { accept: 'text/html' },
  });
  t.is(foreign.status(), 404, "another user's session cannot be signed out");
  const own = (await gatehouse.server.sessions.sessionsOf('dave')).find((s) => s.sessionId !== phone.sessionId)!;
  const self = await page.request.post(`${url}/sign-out`, {
    form: { csrf, sessionId: own.sessionId },
    maxRedirects: 0,
    headers: { accept: 'text/html' },
  });
  t.is(self.status(), 400, 'the current session is not ended here');

  await Promise.all([
    page.waitForURL(/signedOut=1/),
    page.getByRole('button', { name: 'Sign out all other sessions' }).click(),
  ]);
  t.is(await rows(page).count(), 1);
  t.true(await isSignedOut(phone.browser, phone.config));
  t.false(await isSignedOut(bob.browser, bob.config));
  await page.goto(url);
  t.is(page.url(), url);

  // Sign out goes through the provider's logout, back to the home page; the page then asks for a login again.
  await page.getByRole('link', { name: 'Sign out', exact: true }).click();
  await Promise.all([
    page.waitForURL(`${gatehouse.issuer}/`),
    page.getByRole('button', { name: 'Yes, sign me out' }).click(),
  ]);
  await page.goto(url);
  t.true(new URL(page.url()).pathname.startsWith('/interaction/'));
});

test('pages carry a nonce CSP and show a hostile display name as text', async (t) => {
  const gatehouse = await start(t);
  const now = new Date();
  await gatehouse.server.sessionStore!.create({
    key: hashSessionKey('hostile-cookie'),
    sessionId: 'hostile-session',
    subjectId: 'mallory',
    displayName: '<script>alert(1)</script>',
    clients: [{ clientId: '<b>rp</b>', sid: 'sid-1' }],
    created: now,
    renewed: now,
    expires: new Date(now.getTime() + 3600_000),
    authTime: now,
    loginIp: '127.0.0.1',
    loginUserAgent: '<img src=x onerror=alert(2)>',
    lastIp: '"><svg onload=alert(3)>',
    lastUserAgent: '<img src=x onerror=alert(2)>',
    data: { kind: 'Session', uid: 'hostile-session', accountId: 'mallory' },
  });
  const context = await newContext(t);
  const dialogs: string[] = [];
  context.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  const url = `${gatehouse.issuer}/admin/sessions?subject=mallory`;
  const page = await openSignedIn(context, url, 'alice');
  const response = await page.reload();
  const csp = response!.headers()['content-security-policy'];
  t.regex(csp, /default-src 'none'/);
  t.regex(csp, /script-src 'nonce-[A-Za-z0-9+/=]+'/);
  const row = page.locator('tr[data-session-id="hostile-session"]');
  t.is(await row.locator('td').nth(1).textContent(), '<script>alert(1)</script>');
  t.is(await row.locator('td').nth(3).textContent(), '<b>rp</b>');
  t.is(await row.locator('td').nth(7).textContent(), '"><svg onload=alert(3)>');
  t.is(await page.locator('script, img, svg, b').count(), 0);
  t.true((await response!.text()).includes('&lt;script&gt;alert(1)&lt;/script&gt;'));

  for (const path of ['/admin/sessions/revoke?sessionId=hostile-session', '/account/sessions']) {
    const other = await page.goto(`${gatehouse.issuer}${path}`);
    t.is(other!.status(), 200);
    t.regex(other!.headers()['content-security-policy'], /script-src 'nonce-/);
    t.is(await page.locator('script').count(), 0);
  }
  t.deepEqual(dialogs, []);
});

test('the admin list pages with next/previous and shows the total', async (t) => {
  const gatehouse = await start(t);
  const base = Date.now();
  for (let i = 0; i < 27; i++) {
    const at = new Date(base - i * 60_000);
    await gatehouse.server.sessionStore!.create({
      key: hashSessionKey(`paged-${i}`),
      sessionId: `paged-${String(i).padStart(2, '0')}`,
      subjectId: 'paged',
      displayName: `Paged ${i}`,
      clients: [],
      created: at,
      renewed: at,
      expires: new Date(base + 3600_000),
      authTime: at,
      loginIp: null,
      loginUserAgent: null,
      lastIp: null,
      lastUserAgent: null,
      data: { kind: 'Session', uid: `paged-${String(i).padStart(2, '0')}`, accountId: 'paged' },
    });
  }
  const page = await openSignedIn(await newContext(t), `${gatehouse.issuer}/admin/sessions?subject=paged`, 'alice');
  t.is(await page.locator('#total').textContent(), '27');
  t.is(await rows(page).count(), 25);
  t.is(await rows(page).first().getAttribute('data-session-id'), 'paged-00');
  t.is(await page.getByRole('link', { name: '← Previous' }).count(), 0);
  await Promise.all([page.waitForURL(/token=/), page.getByRole('link', { name: 'Next →' }).click()]);
  t.deepEqual(await rows(page).evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-session-id'))), [
    'paged-25',
    'paged-26',
  ]);
  t.is(await page.locator('#total').textContent(), '27');
  t.is(await page.getByRole('link', { name: 'Next →' }).count(), 0);
  await page.getByRole('link', { name: '← Previous' }).click();
  await page.locator('tr[data-session-id="paged-00"]').waitFor();
  t.is(await rows(page).count(), 25);
  t.is(await rows(page).first().getAttribute('data-session-id'), 'paged-00');
});

test('with server-side sessions off the pages say so', async (t) => {
  const gatehouse = await start(t, false);
  const page = await openSignedIn(await newContext(t), `${gatehouse.issuer}/admin/sessions`, 'alice');
  t.true((await page.getByRole('status').textContent())!.includes('Server-side sessions are turned off'));
  await page.goto(`${gatehouse.issuer}/account/sessions`);
  t.true((await page.getByRole('status').textContent())!.includes('Server-side sessions are turned off'));
});

test('the sign-in return path is only ever a local path', (t) => {
  t.is(localPath('/admin/sessions?subject=bob'), '/admin/sessions?subject=bob');
  for (const bad of ['https://evil.example/', '//evil.example/', '/\\evil.example', 'admin', '/a\nb', undefined])
    t.is(localPath(bad), undefined);
});

test('user agents are described briefly', (t) => {
  t.is(describeUserAgent(UA.windowsChrome), 'Chrome 126 on Windows');
  t.is(describeUserAgent(UA.macFirefox), 'Firefox 127 on macOS');
  t.is(describeUserAgent(UA.iphoneSafari), 'Safari 17 on iOS');
  t.is(
    describeUserAgent(
      'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0',
    ),
    'Edge 126 on Windows',
  );
  t.is(describeUserAgent('curl/8.5.0'), 'curl 8.5.0');
  t.is(describeUserAgent(null), 'Unknown browser');
});
