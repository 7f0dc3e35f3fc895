import test from 'ava';
import { ManualClock } from '../stores/clock.js';
import { Browser, type Page } from './helpers/browser.js';
import { createTestDatabase } from './helpers/databases.js';
import { discover, REDIRECT_URI, startAuthorization } from './helpers/relying-party.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const clients = [{ client_id: 'web', client_secret: 'web-secret', redirect_uris: [REDIRECT_URI], skipConsent: true }];

async function attempt(gatehouse: TestServer, username: string, password: string): Promise<Page> {
  const browser = new Browser();
  const login = await startAuthorization(browser, await discover(gatehouse.issuer, 'web', 'web-secret'));
  const action = new URL(/action="([^"]*\/login)"/.exec(login.body)![1], login.url);
  const csrf = /name="csrf" value="([^"]+)"/.exec(login.body)![1];
  return browser.navigate(action, { form: { csrf, username, password } }, gatehouse.issuer);
}

const signedIn = (page: Page) => page.status === 303 || page.url.startsWith(REDIRECT_URI);

test('an account is locked after repeated failures, for real and unknown names alike, and the lockout doubles', async (t) => {
  const clock = new ManualClock();
  const gatehouse = await startTestServer({ clock, config: { clients, login: { maxFailuresPerAccount: 3, lockout: 60, maxFailuresPerIp: 1000 } } });
  t.teardown(() => gatehouse.close());
  for (const name of ['alice', 'mallory']) {
    for (let i = 0; i < 3; i++) t.is((await attempt(gatehouse, name, 'wrong')).status, 200);
    const blocked = await attempt(gatehouse, name, `${name}-password`);
    t.is(blocked.status, 429, `${name} is locked`);
    t.regex(blocked.body, /Too many failed sign-ins/);
    t.is(blocked.headers.get('retry-after'), '60');
  }
  t.true(signedIn(await attempt(gatehouse, 'bob', 'bob-password')), 'other accounts are not affected');

  clock.advance(61_000);
  t.true(signedIn(await attempt(gatehouse, 'alice', 'alice-password')), 'the lock runs out');
  // A success forgets the failures; a second lockout of the same name lasts twice as long.
  for (let i = 0; i < 3; i++) await attempt(gatehouse, 'mallory', 'wrong');
  for (let i = 0; i < 3; i++) await attempt(gatehouse, 'mallory', 'wrong');
  const again = await attempt(gatehouse, 'mallory', 'x');
  t.is(again.status, 429);
  t.is(again.headers.get('retry-after'), '120');
});

test('one IP address is locked after failures across many account names', async (t) => {
  const gatehouse = await startTestServer({ config: { clients, login: { maxFailuresPerIp: 4, maxFailuresPerAccount: 100 } } });
  t.teardown(() => gatehouse.close());
  for (const name of ['u1', 'u2', 'u3', 'u4']) t.is((await attempt(gatehouse, name, 'wrong')).status, 200);
  t.is((await attempt(gatehouse, 'alice', 'alice-password')).status, 429, 'this address is locked, even for a right password');
});

for (const dialect of ['sqlite-file', 'postgres', 'mariadb'] as const) test(`the limit holds across instances sharing a database (${dialect})`, async (t) => {
  const database = await createTestDatabase(dialect);
  const config = { clients, login: { maxFailuresPerAccount: 4, maxFailuresPerIp: 1000 } };
  const a = await startTestServer({ databaseUrl: database.url, config });
  const b = await startTestServer({ databaseUrl: database.url, config });
  t.teardown(async () => {
    await a.close();
    await b.close();
    await database.drop();
  });
  await attempt(a, 'carol', 'wrong');
  await attempt(b, 'carol', 'wrong');
  await attempt(a, 'carol', 'wrong');
  await attempt(b, 'carol', 'wrong');
  t.is((await attempt(a, 'carol', 'carol-password')).status, 429);
  t.is((await attempt(b, 'carol', 'carol-password')).status, 429);
});
