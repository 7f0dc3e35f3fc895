/**
 * Every page a person meets, rendered in headless Chromium at 390 px (a phone) and 1280 px (a desktop): login, login
 * error, consent, repeated consent, logout, logged out, error, home, account sessions, admin sessions and the admin
 * revoke confirmations, and the device flow's code entry, confirmation, consent with an API's scopes, success and
 * cancelled pages. Each is checked for overflow, button rows, link colours and axe-core's serious and critical
 * findings (test/helpers/page-checks.ts); the consent page must list every scope the client will receive.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import type { Browser as Chromium, Page } from 'playwright-core';
import { readConfigFile } from '../config/load.js';
import { hashSessionKey } from '../stores/session-store.js';
import { launchChromium } from './helpers/chromium.js';
import { checkPage } from './helpers/page-checks.js';
import { Browser } from './helpers/browser.js';
import { discover, REDIRECT_URI, signIn } from './helpers/relying-party.js';
import { startTestServer, testAccounts, type TestServer } from './helpers/server.js';

const UA = {
  linuxFirefox: 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
  iphoneSafari:
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
};

/** 43 characters like a real session id, without a hyphen where a line could break. */
const LONG_SESSION_ID = 'Q7dL9sWmZ2xKpR4tYvB8nC3hJ6fG1aE5uI0oP2kMqXw';

let chromium: Chromium;

test.before(async () => {
  chromium = await launchChromium();
});

test.after.always(async () => {
  await chromium?.close();
});

interface Setup {
  gatehouse: TestServer;
  /** The demo-web client's redirect URI: a loopback server that answers with a plain page. */
  callback: string;
}

/**
 * A server like the demo: development mode (one-click buttons), demo accounts on the home page, a client that asks for
 * consent and redirects to a real loopback page (Chromium refuses REDIRECT_URI's port 9).
 */
async function start(t: ExecutionContext): Promise<Setup> {
  const app = createServer((_req, res) => res.end('relying party'));
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  t.teardown(() => new Promise<void>((resolve) => app.close(() => resolve())));
  const callback = `http://127.0.0.1:${(app.address() as AddressInfo).port}/callback`;
  const accounts = (await testAccounts()).map((account) => ({
    ...account,
    demoPassword: `${account.subject}-password`,
  }));
  const gatehouse = await startTestServer({
    config: {
      mode: 'development',
      pages: { showDemoAccounts: true },
      accounts,
      clients: [
        {
          client_id: 'demo-web',
          client_name: 'Demo web app',
          client_secret: 'demo-web-secret',
          redirect_uris: [callback],
          grant_types: ['authorization_code', 'refresh_token'],
          scope: 'openid profile email offline_access',
        },
        {
          client_id: 'rp',
          client_secret: 'rp-secret',
          redirect_uris: [REDIRECT_URI],
          grant_types: ['authorization_code'],
          skipConsent: true,
        },
      ],
      serverSideSessions: { enabled: true, displayNameClaim: 'name' },
    },
  });
  t.teardown(() => gatehouse.close());
  return { gatehouse, callback };
}

async function newPage(t: ExecutionContext): Promise<Page> {
  const context = await chromium.newContext();
  t.teardown(() => context.close());
  return context.newPage();
}

function authorizeUrl({ gatehouse, callback }: Setup, scope: string, extra: Record<string, string> = {}): string {
  const params = new URLSearchParams({
    client_id: 'demo-web',
    response_type: 'code',
    scope,
    redirect_uri: callback,
    code_challenge: 'a'.repeat(43),
    code_challenge_method: 'S256',
    ...extra,
  });
  return `${gatehouse.issuer}/auth?${params}`;
}

/** Clicks and waits for the relying party's callback; returns its query parameters. */
async function clickToCallback(page: Page, { callback }: Setup, click: () => Promise<void>): Promise<URLSearchParams> {
  await Promise.all([page.waitForURL((url) => url.href.startsWith(callback)), click()]);
  return new URL(page.url()).searchParams;
}

/** The consent page's list: each scope's name and whether it is marked as allowed before. */
function consentList(page: Page): Promise<{ name: string; before: boolean }[]> {
  return page.locator('[data-scope]').evaluateAll((items) =>
    items.map((item) => ({
      name: item.getAttribute('data-scope') ?? '',
      before: item.textContent?.includes('allowed before') ?? false,
    })),
  );
}

/** Signs in on the real login page a Gatehouse page sends the browser to, and waits to be back on that page. */
async function openSignedIn(t: ExecutionContext, url: string, username: string): Promise<Page> {
  const page = await newPage(t);
  await page.goto(url);
  await page.fill('#username', username);
  await page.fill('#password', `${username}-password`);
  await Promise.all([page.waitForURL(url), page.getByRole('button', { name: 'Sign in', exact: true }).click()]);
  return page;
}

test('login, login error, consent and repeated consent pages; the consent page lists every scope', async (t) => {
  const setup = await start(t);
  const page = await newPage(t);

  await page.goto(authorizeUrl(setup, 'openid profile'));
  t.is(await page.locator('h1').textContent(), 'Sign in');
  await checkPage(t, page, 'login');
  const cancel = page.getByRole('button', { name: 'Cancel' });
  const oneClick = page.getByRole('button', { name: 'Continue as Alice Anderson' });
  const looks = (locator: typeof cancel) =>
    locator.evaluate((element) => {
      const style = getComputedStyle(element);
      return { border: style.borderTopColor, background: style.backgroundColor, underline: style.textDecorationLine };
    });
  t.notDeepEqual(await looks(cancel), await looks(oneClick), 'Cancel does not look like one more way to sign in');

  await page.fill('#username', 'alice');
  await page.fill('#password', 'not-the-password');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('alert').waitFor();
  t.is(await page.getByRole('alert').textContent(), 'Invalid username or password.');
  await checkPage(t, page, 'login error');

  await page.fill('#password', 'alice-password');
  await Promise.all([
    page.waitForURL(/\/interaction\//),
    page.getByRole('button', { name: 'Sign in', exact: true }).click(),
  ]);
  await page.locator('[data-scope]').first().waitFor();
  t.is(await page.locator('h1').textContent(), 'Authorize Demo web app');
  t.deepEqual(await consentList(page), [
    { name: 'openid', before: false },
    { name: 'profile', before: false },
  ]);
  await checkPage(t, page, 'consent');
  t.truthy((await clickToCallback(page, setup, () => page.getByRole('button', { name: 'Allow' }).click())).get('code'));

  // The same scopes again with prompt=consent: all of them are listed, each marked as allowed before.
  await page.goto(authorizeUrl(setup, 'openid profile', { prompt: 'consent' }));
  await page.locator('[data-scope]').first().waitFor();
  t.deepEqual(await consentList(page), [
    { name: 'openid', before: true },
    { name: 'profile', before: true },
  ]);
  await checkPage(t, page, 'repeated consent');
  t.truthy((await clickToCallback(page, setup, () => page.getByRole('button', { name: 'Allow' }).click())).get('code'));

  // One more scope (and offline_access, which needs prompt=consent): the new ones are not marked.
  await page.goto(authorizeUrl(setup, 'openid profile email offline_access', { prompt: 'consent' }));
  await page.locator('[data-scope]').first().waitFor();
  t.deepEqual(await consentList(page), [
    { name: 'openid', before: true },
    { name: 'profile', before: true },
    { name: 'email', before: false },
    { name: 'offline_access', before: false },
  ]);
  const denied = await clickToCallback(page, setup, () => page.getByRole('button', { name: 'Deny' }).click());
  t.is(denied.get('error'), 'access_denied');

  // Deny granted nothing new: email is still not marked; Cancel on a login page ends the request the same way.
  await page.goto(authorizeUrl(setup, 'openid email'));
  await page.locator('[data-scope]').first().waitFor();
  t.deepEqual(await consentList(page), [
    { name: 'openid', before: true },
    { name: 'email', before: false },
  ]);
  const other = await newPage(t);
  await other.goto(authorizeUrl(setup, 'openid'));
  t.is(
    (await clickToCallback(other, setup, () => other.getByRole('button', { name: 'Cancel' }).click())).get('error'),
    'access_denied',
  );
});

test('logout and logged-out pages', async (t) => {
  const { gatehouse } = await start(t);
  const page = await openSignedIn(t, `${gatehouse.issuer}/account/sessions`, 'bob');
  await page.goto(`${gatehouse.issuer}/session/end`);
  t.is(await page.locator('h1').textContent(), 'Sign out?');
  await checkPage(t, page, 'logout');
  await Promise.all([
    page.waitForURL(/\/session\/end\/success/),
    page.getByRole('button', { name: 'Yes, sign me out' }).click(),
  ]);
  t.is(await page.locator('h1').textContent(), 'Signed out');
  await checkPage(t, page, 'logged out');
});

test('error page', async (t) => {
  const { gatehouse } = await start(t);
  const page = await newPage(t);
  const response = await page.goto(
    `${gatehouse.issuer}/auth?client_id=no-such-client&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT_URI)}`,
  );
  t.is(response!.status(), 400);
  t.is(await page.locator('h1').textContent(), 'Something went wrong');
  await checkPage(t, page, 'error');
});

test('home page, with the accounts and clients of the demo configuration', async (t) => {
  const demo = readConfigFile(fileURLToPath(new URL('../config/demo.yaml', import.meta.url)));
  const gatehouse = await startTestServer({
    config: {
      pages: demo.pages,
      accounts: demo.accounts,
      clients: demo.clients,
      deviceFlow: demo.deviceFlow,
      apis: demo.apis,
    },
  });
  t.teardown(() => gatehouse.close());
  const page = await newPage(t);
  await page.goto(`${gatehouse.issuer}/`);
  t.is(await page.getByRole('heading', { name: 'Demo accounts' }).count(), 1);
  t.true((await page.locator('main').textContent())!.includes('gatehouse-admin'));
  await checkPage(t, page, 'home');
});

test('account sessions, admin sessions and the admin revoke confirmations', async (t) => {
  const { gatehouse } = await start(t);
  const config = await discover(gatehouse.issuer, 'rp', 'rp-secret');
  for (const [username, userAgent] of [
    ['alice', UA.iphoneSafari],
    ['alice', UA.linuxFirefox],
    ['bob', UA.linuxFirefox],
  ] as const) {
    await signIn(new Browser(userAgent), config, { username });
  }
  // A session with the longest values a row can hold: an id without a place to break, an IPv6 address, a long name.
  const now = new Date();
  await gatehouse.server.sessionStore!.create({
    key: hashSessionKey('long-values'),
    sessionId: LONG_SESSION_ID,
    subjectId: 'alice',
    displayName: 'Alice Anderson-Montgomery-Fitzwilliam',
    clients: [{ clientId: 'a-client-with-a-rather-long-client-identifier', sid: 'sid-long' }],
    created: now,
    renewed: now,
    expires: new Date(now.getTime() + 3600_000),
    authTime: now,
    loginIp: '2001:0db8:85a3:0000:0000:8a2e:0370:7334',
    loginUserAgent: UA.iphoneSafari,
    lastIp: '2001:0db8:85a3:0000:0000:8a2e:0370:7334',
    lastUserAgent: UA.iphoneSafari,
    data: { kind: 'Session', uid: LONG_SESSION_ID, accountId: 'alice' },
  });
  // And one from the IPv6 loopback: a short address that must stay on one line.
  await gatehouse.server.sessionStore!.create({
    key: hashSessionKey('ipv6-loopback'),
    sessionId: 'ipv6-loopback-session',
    subjectId: 'bob',
    displayName: 'Bob Brown',
    clients: [{ clientId: 'rp', sid: 'sid-loopback' }],
    created: now,
    renewed: now,
    expires: new Date(now.getTime() + 3600_000),
    authTime: now,
    loginIp: '::1',
    loginUserAgent: UA.linuxFirefox,
    lastIp: '::1',
    lastUserAgent: UA.linuxFirefox,
    data: { kind: 'Session', uid: 'ipv6-loopback-session', accountId: 'bob' },
  });
  /** How many lines each IP cell's text takes, by its text. */
  const ipLines = () =>
    page.$$eval('td.ip', (cells) =>
      cells.map((cell) => {
        const range = document.createRange();
        range.selectNodeContents(cell);
        return [
          cell.textContent!.trim(),
          new Set(
            Array.from(range.getClientRects())
              .filter((rect) => rect.width > 0)
              .map((rect) => Math.round(rect.top)),
          ).size,
        ] as const;
      }),
    );
  const page = await openSignedIn(t, `${gatehouse.issuer}/account/sessions`, 'alice');
  t.is(await page.getByRole('button', { name: 'Sign out', exact: true }).count(), 3);
  await checkPage(t, page, 'account sessions');

  await page.goto(`${gatehouse.issuer}/admin/sessions`);
  t.is(await page.locator('tbody tr[data-session-id]').count(), 6);
  await checkPage(t, page, 'admin sessions');
  for (const width of [390, 1280]) {
    await page.setViewportSize({ width, height: 900 });
    for (const [ip, lines] of await ipLines()) {
      if (!ip.includes(':') || ip.length <= 15) t.is(lines, 1, `${width} px: ${ip} on one line`);
      else t.true(lines <= ip.split(':').length, `${width} px: ${ip} breaks only between groups (${lines} lines)`);
    }
    t.true((await ipLines()).some(([ip]) => ip === '::1'));
  }

  await page.goto(`${gatehouse.issuer}/admin/sessions/revoke?sessionId=${LONG_SESSION_ID}&back=%2Fadmin%2Fsessions`);
  t.is(await page.locator('h1').textContent(), 'Revoke this session?');
  await checkPage(t, page, 'admin revoke session');
  const button = await page.getByRole('button', { name: 'Revoke session' }).boundingBox();
  const cancel = await page.getByRole('link', { name: 'Cancel' }).boundingBox();
  t.true(
    Math.abs(button!.y + button!.height / 2 - (cancel!.y + cancel!.height / 2)) < 2,
    'Cancel is aligned with the button',
  );

  await page.goto(`${gatehouse.issuer}/admin/sessions/revoke?subject=alice&back=%2Fadmin%2Fsessions`);
  t.is(await page.locator('h1').textContent(), 'Revoke all sessions of alice?');
  await checkPage(t, page, 'admin revoke all');
});

test('device flow pages: code entry, confirmation, consent with an API’s scopes, success, wrong code, cancelled; admin sessions with APIs', async (t) => {
  const gatehouse = await startTestServer({
    config: {
      mode: 'development',
      serverSideSessions: { enabled: true, displayNameClaim: 'name' },
      deviceFlow: { enabled: true },
      clients: [
        {
          client_id: 'tv',
          client_name: 'Living-room TV',
          token_endpoint_auth_method: 'none',
          grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
          scope: 'openid profile offline_access',
        },
      ],
      apis: [
        {
          identifier: 'https://api.example.com/orders',
          name: 'Orders',
          scopes: [{ name: 'orders:read', description: 'See your orders' }],
        },
      ],
    },
  });
  t.teardown(() => gatehouse.close());
  const startDevice = async () => {
    const response = await fetch(`${gatehouse.issuer}/device/auth`, {
      method: 'POST',
      body: new URLSearchParams({ client_id: 'tv', scope: 'openid profile orders:read' }),
    });
    return (await response.json()) as { user_code: string; verification_uri_complete: string };
  };

  const device = await startDevice();
  const page = await newPage(t);
  await page.goto(device.verification_uri_complete);
  t.is(await page.locator('#user_code').inputValue(), device.user_code);
  await checkPage(t, page, 'device code entry');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.locator('#user-code').waitFor();
  t.is(await page.locator('#user-code').textContent(), device.user_code);
  await checkPage(t, page, 'device confirmation');
  await Promise.all([page.waitForURL(/\/interaction\//), page.getByRole('button', { name: 'Continue' }).click()]);
  await page.fill('#username', 'alice');
  await page.fill('#password', 'alice-password');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.locator('[data-api] [data-scope]').first().waitFor();
  t.deepEqual(await page.locator('[data-api] [data-scope]').allTextContents(), ['See your orders (orders:read)']);
  await checkPage(t, page, 'consent with an API');
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.getByRole('heading', { name: 'Device connected' }).waitFor();
  await checkPage(t, page, 'device success');

  await page.goto(`${gatehouse.issuer}/admin/sessions`);
  t.is(await page.locator('th', { hasText: 'APIs' }).count(), 1);
  await checkPage(t, page, 'admin sessions with APIs');

  await page.goto(`${gatehouse.issuer}/device`);
  await page.fill('#user_code', 'BCDF-GHJK');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('alert').waitFor();
  t.regex((await page.getByRole('alert').textContent()) ?? '', /not valid/);
  await checkPage(t, page, 'device wrong code');

  const other = await startDevice();
  await page.goto(other.verification_uri_complete);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('button', { name: 'Cancel' }).click();
  await page.getByRole('heading', { name: 'Sign-in cancelled' }).waitFor();
  await checkPage(t, page, 'device cancelled');
});
