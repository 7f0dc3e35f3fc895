/**
 * The login page by mode: one-click sign-in buttons for the directory's users in development and testing modes (a POST
 * with the CSRF token), never in production; `login.autoLogin` for headless tests, refused outside development/testing.
 */
import test from 'ava';
import { createServer } from '../server/create-server.js';
import { ConfigError } from '../config/load.js';
import { Browser, formWithAction, type Page } from './helpers/browser.js';
import { discover, REDIRECT_URI, signIn, startAuthorization } from './helpers/relying-party.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const WEB = { client_id: 'web', client_secret: 'web-secret', redirect_uris: [REDIRECT_URI], skipConsent: true };

async function server(t: { teardown(fn: () => Promise<void>): void }, config: object): Promise<TestServer> {
  const gatehouse = await startTestServer({ config: { clients: [WEB], ...config } });
  t.teardown(() => gatehouse.close());
  return gatehouse;
}

function oneClickForm(page: Page) {
  return formWithAction(page.body, '/one-click');
}

for (const mode of ['development', 'testing'] as const) {
  test(`${mode} mode: the login page has a one-click button per enabled user, and one click signs in`, async (t) => {
    const gatehouse = await server(t, { mode, serverSideSessions: { enabled: true } });
    const dave = (await gatehouse.server.accounts.get('dave'))!;
    await gatehouse.server.accounts.save({ ...dave, disabled: true });
    const web = await discover(gatehouse.issuer, 'web', 'web-secret');
    const browser = new Browser();
    const page = await startAuthorization(browser, web);
    t.true(page.body.includes('name="password"'), 'the password form is still there');
    const buttons = [
      ...page.body.matchAll(
        /<button type="submit" class="secondary" name="subject" value="([^"]+)">Continue as ([^<]+)<\/button>/g,
      ),
    ].map((m) => [m[1], m[2]]);
    t.deepEqual(
      buttons,
      [
        ['alice', 'Alice Anderson'],
        ['bob', 'Bob Brown'],
        ['carol', 'Carol Clark'],
      ],
      'dave is disabled',
    );

    const form = oneClickForm(page);
    const done = await browser.navigate(
      new URL(form.action, page.url),
      { form: { ...form.fields, subject: 'bob' } },
      new URL(gatehouse.issuer).origin,
    );
    t.true(done.url.startsWith(REDIRECT_URI), done.url);
    t.truthy(new URL(done.url).searchParams.get('code'));
    t.is((await gatehouse.server.sessions.sessionsOf('bob')).length, 1, 'a session of bob');
    const again = await startAuthorization(browser, web);
    t.true(again.url.startsWith(REDIRECT_URI), 'the browser is signed in');
  });
}

test('one click needs the CSRF token and an enabled user', async (t) => {
  const gatehouse = await server(t, { mode: 'development' });
  const web = await discover(gatehouse.issuer, 'web', 'web-secret');
  const browser = new Browser();
  const page = await startAuthorization(browser, web);
  const form = oneClickForm(page);
  const action = new URL(form.action, page.url);
  t.is((await browser.request(action, { form: { subject: 'alice' } })).status, 403, 'no CSRF token');
  const unknown = await browser.request(action, { form: { ...form.fields, subject: 'nobody' } });
  t.is(unknown.status, 200);
  t.true(unknown.body.includes('There is no enabled user with that subject.'));
});

test('production mode (the default): no one-click buttons, and the one-click route does not exist', async (t) => {
  const gatehouse = await server(t, {});
  t.is(gatehouse.server.config.mode, 'production');
  const web = await discover(gatehouse.issuer, 'web', 'web-secret');
  const browser = new Browser();
  const page = await startAuthorization(browser, web);
  t.true(page.body.includes('name="password"'));
  t.false(page.body.includes('one-click'));
  t.false(page.body.includes('Continue as'));
  const login = formWithAction(page.body, '/login');
  const posted = await browser.request(new URL(login.action.replace(/\/login$/, '/one-click'), page.url), {
    form: { csrf: login.fields.csrf, subject: 'alice' },
  });
  t.is(posted.status, 404);
  t.true((await startAuthorization(browser, web)).body.includes('name="password"'), 'still signed out');
});

test('login.autoLogin signs the configured subject in without a page', async (t) => {
  const gatehouse = await server(t, { mode: 'testing', login: { autoLogin: 'carol' } });
  const web = await discover(gatehouse.issuer, 'web', 'web-secret');
  const result = await signIn(new Browser(), web, { username: 'ignored' });
  t.false(result.sawLogin);
  t.false(result.sawConsent);
  t.is(result.claims.sub, 'carol');
});

test('login.autoLogin naming no enabled user shows the login page with the reason', async (t) => {
  const gatehouse = await server(t, { mode: 'development', login: { autoLogin: 'nobody' } });
  const page = await startAuthorization(new Browser(), await discover(gatehouse.issuer, 'web', 'web-secret'));
  t.true(page.body.includes('name="password"'));
  t.true(page.body.includes('login.autoLogin: there is no enabled user with subject &quot;nobody&quot;.'));
});

test('login.autoLogin is refused in production mode at start', async (t) => {
  for (const config of [
    { login: { autoLogin: 'alice' } },
    { mode: 'production' as const, login: { autoLogin: 'alice' } },
  ]) {
    const error = await t.throwsAsync(
      createServer({ port: 0, logging: { level: 'silent' }, database: { url: 'sqlite::memory:' }, ...config }),
      { instanceOf: ConfigError },
    );
    t.deepEqual(error!.problems, [
      'login.autoLogin: only allowed in development or testing mode (mode is production); set mode: development or testing',
    ]);
  }
});
