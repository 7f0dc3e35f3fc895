import { createHash } from 'node:crypto';
import test from 'ava';
import { QueryTypes } from 'sequelize';
import { pino } from 'pino';
import { SessionAdapter } from '../server/sessions/session-adapter.js';
import { ManualClock } from '../stores/clock.js';
import { MemorySessionStore } from '../stores/memory/session-store.js';
import { Database } from '../stores/sequelize/database.js';
import { Browser } from './helpers/browser.js';
import { discover, POST_LOGOUT_URI, REDIRECT_URI, signIn, startAuthorization } from './helpers/relying-party.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const HOUR = 3600_000;

const clients = [
  {
    client_id: 'web',
    client_secret: 'web-secret',
    redirect_uris: [REDIRECT_URI],
    post_logout_redirect_uris: [POST_LOGOUT_URI],
    grant_types: ['authorization_code' as const, 'refresh_token' as const],
  },
  {
    client_id: 'other',
    client_secret: 'other-secret',
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code' as const],
    skipConsent: true,
  },
];

/** The columns of a server_side_sessions row that these tests read, as a signed-in session has them. */
interface SessionRow {
  session_id: string;
  key: string;
  subject_id: string | null;
  display_name: string | null;
  clients: string;
  /** Times: a Date or text, depending on the dialect's driver. */
  renewed: Date | string;
  expires: Date | string;
  auth_time: Date | string;
  login_ip: string;
  login_user_agent: string;
  last_user_agent: string;
}

async function rows(gatehouse: TestServer, where = '1=1', replacements: Record<string, unknown> = {}) {
  return gatehouse.server.sequelize.query<SessionRow>(
    `SELECT * FROM server_side_sessions WHERE ${where} ORDER BY created`,
    {
      type: QueryTypes.SELECT,
      replacements,
    },
  );
}

function sessionCookie(browser: Browser): string {
  const cookie = [...browser.cookies.values()].find((c) => c.name === '_session');
  if (!cookie) throw new Error('no session cookie');
  return cookie.value;
}

async function start(
  t: { teardown(fn: () => Promise<void>): void },
  options: { clock?: ManualClock; config?: Record<string, unknown> } = {},
) {
  const gatehouse = await startTestServer({
    clock: options.clock,
    config: {
      clients,
      ...(options.config ?? {}),
      serverSideSessions: {
        enabled: true,
        displayNameClaim: 'name',
        ...(options.config?.serverSideSessions as object),
      },
    } as never,
  });
  t.teardown(() => gatehouse.close());
  return gatehouse;
}

test('login creates exactly one record with subject, session id, clients, sids, display name, IP and user agent', async (t) => {
  const gatehouse = await start(t);
  const browser = new Browser('Mozilla/5.0 (X11; Linux x86_64) GatehouseTest/1');
  const web = await signIn(browser, await discover(gatehouse.issuer, 'web', 'web-secret'), { username: 'alice' });
  const other = await signIn(browser, await discover(gatehouse.issuer, 'other', 'other-secret'), { username: 'alice' });

  const all = await rows(gatehouse);
  t.is(all.length, 1);
  const [row] = all;
  t.is(row.subject_id, 'alice');
  t.is(row.display_name, 'Alice Anderson');
  const sids = Object.fromEntries(
    (JSON.parse(row.clients) as { clientId: string; sid: string }[]).map((c) => [c.clientId, c.sid]),
  );
  t.deepEqual(sids, { web: web.claims.sid, other: other.claims.sid });
  t.is(row.login_user_agent, browser.userAgent);
  t.is(row.last_user_agent, browser.userAgent);
  t.regex(row.login_ip, /127\.0\.0\.1|::1/);
  t.truthy(row.auth_time);

  const store = gatehouse.server.sessionStore!;
  const listed = await store.getSessions({ subjectId: 'alice' });
  t.is(listed.length, 1);
  t.is(listed[0].sessionId, row.session_id);
});

test('a sign-in in a new browser creates its session record without reading the store first', async (t) => {
  const gatehouse = await start(t);
  const statements: string[] = [];
  const stop = Database.of(gatehouse.server.sequelize).observe((event) => {
    if (/server_side_sessions\b/.test(event.sql)) statements.push(`${event.kind} ${event.sql.slice(0, 40)}`);
  });
  const browser = new Browser();
  await signIn(browser, await discover(gatehouse.issuer, 'web', 'web-secret'), { username: 'bob' });
  stop();
  const created = statements.findIndex((line) => line.includes('INSERT INTO server_side_sessions'));
  t.true(created >= 0, statements.join('\n'));
  t.false(
    statements.slice(0, created).some((line) => line.startsWith('read')),
    statements.join('\n'),
  );
  // The record is the session: the same browser signs in to another client without the login form.
  const again = await signIn(browser, await discover(gatehouse.issuer, 'other', 'other-secret'), { username: 'bob' });
  t.false(again.sawLogin);
  t.is((await rows(gatehouse, 'subject_id = :subject', { subject: 'bob' })).length, 1);
});

test('the store keeps a hash of the session cookie, never the cookie itself', async (t) => {
  const gatehouse = await start(t);
  const browser = new Browser();
  await signIn(browser, await discover(gatehouse.issuer, 'web', 'web-secret'), { username: 'bob' });
  const cookie = sessionCookie(browser);
  const [row] = await rows(gatehouse);
  t.not(row.key, cookie);
  t.is(row.key, createHash('sha256').update(cookie).digest('base64url'));
  t.false(JSON.stringify(row).includes(cookie), 'the raw cookie value appears nowhere in the record');
});

test('a second login of the same user in the same browser updates the record; jti rotation leaves one record', async (t) => {
  const gatehouse = await start(t);
  const browser = new Browser();
  const config = await discover(gatehouse.issuer, 'web', 'web-secret');
  await signIn(browser, config, { username: 'carol' });
  const [first] = await rows(gatehouse);
  const firstCookie = sessionCookie(browser);
  await signIn(browser, config, { username: 'carol', prompt: 'login' });
  const after = await rows(gatehouse);
  t.is(after.length, 1);
  t.is(after[0].session_id, first.session_id, 'same session id');
  t.not(sessionCookie(browser), firstCookie, 'the cookie value rotated');
  t.not(after[0].key, first.key, 'the record moved to the new key');
});

test('a different user in the same browser ends the previous session and gets a new session id', async (t) => {
  const gatehouse = await start(t);
  const browser = new Browser();
  const config = await discover(gatehouse.issuer, 'web', 'web-secret');
  await signIn(browser, config, { username: 'alice' });
  const [alice] = await rows(gatehouse);
  const bob = await signIn(browser, config, { username: 'bob', prompt: 'login' });
  t.is(bob.claims.sub, 'bob');
  const after = await rows(gatehouse, 'subject_id IS NOT NULL');
  t.is(after.length, 1);
  t.is(after[0].subject_id, 'bob');
  t.not(after[0].session_id, alice.session_id);
  t.deepEqual(await gatehouse.server.sessionStore!.getSessions({ subjectId: 'alice' }), []);
});

test('deleting the record logs the user out', async (t) => {
  const gatehouse = await start(t);
  const browser = new Browser();
  const config = await discover(gatehouse.issuer, 'web', 'web-secret');
  await signIn(browser, config, { username: 'dave' });
  await gatehouse.server.sessionStore!.deleteSessions({ subjectId: 'dave' });
  const page = await startAuthorization(browser, config);
  t.true(page.body.includes('name="password"'), 'the next /auth shows the login page');
});

test('a corrupt record logs the user out and is removed', async (t) => {
  const gatehouse = await start(t);
  const browser = new Browser();
  const config = await discover(gatehouse.issuer, 'web', 'web-secret');
  await signIn(browser, config, { username: 'alice' });
  const [row] = await rows(gatehouse);
  await gatehouse.server.sequelize.query(`UPDATE server_side_sessions SET data = :data WHERE session_id = :id`, {
    replacements: { data: '{"not a session":', id: row.session_id },
  });
  const page = await startAuthorization(browser, config);
  t.is(page.status, 200);
  t.true(page.body.includes('name="password"'));
  t.deepEqual(await rows(gatehouse, 'session_id = :id', { id: row.session_id }), []);
});

test('RP-initiated logout removes the record', async (t) => {
  const gatehouse = await start(t);
  const browser = new Browser();
  const config = await discover(gatehouse.issuer, 'web', 'web-secret');
  const { tokens } = await signIn(browser, config, { username: 'bob' });
  t.is((await rows(gatehouse, 'subject_id IS NOT NULL')).length, 1);
  const confirm = await browser.navigate(
    `${gatehouse.issuer}/session/end?id_token_hint=${tokens.id_token}&post_logout_redirect_uri=${encodeURIComponent(POST_LOGOUT_URI)}`,
  );
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.body)![1];
  await browser.navigate(`${gatehouse.issuer}/session/end/confirm`, { form: { xsrf, logout: 'yes' } });
  t.deepEqual(await rows(gatehouse, 'subject_id IS NOT NULL'), []);
});

test('anonymous sessions never appear in listings', async (t) => {
  const gatehouse = await start(t);
  const browser = new Browser();
  const config = await discover(gatehouse.issuer, 'web', 'web-secret');
  await startAuthorization(browser, config); // a session cookie without a login
  const result = await gatehouse.server.sessionStore!.querySessions({ countTotal: true });
  t.is(result.totalCount, 0);
  t.deepEqual(result.results, []);
});

test('idle timeout ends a session; activity slides it', async (t) => {
  const clock = new ManualClock();
  const gatehouse = await start(t, {
    clock,
    config: { serverSideSessions: { idleTimeout: 2 * 3600, absoluteLifetime: 48 * 3600 } },
  });
  const browser = new Browser();
  const config = await discover(gatehouse.issuer, 'other', 'other-secret');
  await signIn(browser, config, { username: 'alice' });
  clock.advance(1.5 * HOUR);
  t.false((await signIn(browser, config, { username: 'alice' })).sawLogin, 'alive within the idle timeout');
  clock.advance(1.5 * HOUR);
  t.false((await signIn(browser, config, { username: 'alice' })).sawLogin, 'activity slid the expiry');
  clock.advance(2 * HOUR + 1000);
  t.true(
    (await startAuthorization(browser, config)).body.includes('name="password"'),
    'idle for longer than the timeout',
  );
});

test('the absolute lifetime ends a session however active it is', async (t) => {
  const clock = new ManualClock();
  const gatehouse = await start(t, {
    clock,
    config: { serverSideSessions: { idleTimeout: 3600, absoluteLifetime: 3 * 3600 } },
  });
  const browser = new Browser();
  const config = await discover(gatehouse.issuer, 'other', 'other-secret');
  await signIn(browser, config, { username: 'bob' });
  for (let i = 0; i < 5; i++) {
    clock.advance(0.5 * HOUR);
    t.false((await signIn(browser, config, { username: 'bob' })).sawLogin, `active at ${(i + 1) * 30} minutes`);
  }
  const [row] = await rows(gatehouse, 'subject_id = :s', { s: 'bob' });
  // Lifetimes are whole seconds, so the cap holds to within one second.
  t.true(
    new Date(row.expires).getTime() <= new Date(row.auth_time).getTime() + 3 * HOUR + 1000,
    'expiry capped by the absolute lifetime',
  );
  clock.advance(0.5 * HOUR + 1000);
  t.true((await startAuthorization(browser, config)).body.includes('name="password"'));
});

test('a request that only slides the expiry writes at most once per renewal interval', async (t) => {
  const clock = new ManualClock();
  const gatehouse = await start(t, { clock });
  const browser = new Browser();
  const config = await discover(gatehouse.issuer, 'other', 'other-secret');
  await signIn(browser, config, { username: 'carol' });
  const [before] = await rows(gatehouse);
  clock.advance(30_000);
  await signIn(browser, config, { username: 'carol' });
  const [within] = await rows(gatehouse);
  t.is(new Date(within.renewed).getTime(), new Date(before.renewed).getTime(), 'no write within 60 s');
  clock.advance(31_000);
  await signIn(browser, config, { username: 'carol' });
  const [after] = await rows(gatehouse);
  t.true(new Date(after.renewed).getTime() > new Date(before.renewed).getTime(), 'renewed after the interval');
  t.true(new Date(after.expires).getTime() > new Date(before.expires).getTime(), 'expiry slid');
});

test('with the flag off the session table stays empty and flows still work', async (t) => {
  const gatehouse = await startTestServer({ config: { clients, serverSideSessions: { enabled: false } } });
  t.teardown(() => gatehouse.close());
  const browser = new Browser();
  const config = await discover(gatehouse.issuer, 'web', 'web-secret');
  const first = await signIn(browser, config, { username: 'alice' });
  const second = await signIn(browser, config, { username: 'alice' });
  t.false(second.sawLogin);
  t.is(first.claims.sub, 'alice');
  t.deepEqual(await rows(gatehouse), []);
  t.is(gatehouse.server.sessionStore, undefined);
});

test("session fixation: a session id planted in a browser never carries the victim's sign-in", async (t) => {
  const gatehouse = await start(t);
  const config = await discover(gatehouse.issuer, 'web', 'web-secret');
  // The attacker signs in, then plants his session cookies in the victim's browser.
  const attacker = new Browser();
  await signIn(attacker, config, { username: 'bob' });
  const planted = [...attacker.cookies.values()].filter((c) => c.name.startsWith('_session')).map((c) => ({ ...c }));
  t.true(planted.length > 0);
  const victim = new Browser();
  for (const cookie of planted) victim.cookies.set(`${cookie.name};${cookie.path}`, { ...cookie });

  const { claims } = await signIn(victim, config, { username: 'alice', prompt: 'login' });
  t.is(claims.sub, 'alice');
  t.not(
    sessionCookie(victim),
    planted.find((c) => c.name === '_session')!.value,
    'signing in replaced the planted session id',
  );
  const page = await startAuthorization(attacker, config);
  t.true(page.body.includes('name="password"'), "the attacker's copy is signed in as nobody");
  t.deepEqual((await gatehouse.server.sessionStore!.getSessions({ subjectId: 'bob' })).length, 0);
});

test('a save that lands after the session expired does not revive it (the sweeper may already be ending it)', async (t) => {
  const clock = new ManualClock();
  const logger = pino({ level: 'silent' });
  const store = new MemorySessionStore({ clock, logger });
  const expired: string[] = [];
  const adapter = new SessionAdapter({
    store,
    clock,
    logger,
    renewalWriteInterval: 60,
    displayNameFor: () => null,
    onExpiredSession: (session) => expired.push(session.sessionId),
  });
  const payload = {
    uid: 'uid-1',
    kind: 'Session',
    accountId: 'alice',
    loginTs: Math.floor(clock.now().getTime() / 1000),
    authorizations: { web: { sid: 'sid-web', grantId: 'grant-web' } },
  };
  await adapter.upsert('jti-1', payload, 3600);
  // A request loaded the session just before it expired and saves (a consent for another client) just after.
  clock.advance(HOUR + 1);
  await adapter.upsert(
    'jti-1',
    { ...payload, authorizations: { ...payload.authorizations, other: { sid: 'sid-other', grantId: 'grant-other' } } },
    3600,
  );
  const record = await store.getBySessionId('uid-1');
  t.deepEqual(record?.clients, [{ clientId: 'web', sid: 'sid-web' }], 'the late save was not written');
  t.true(record!.expires!.getTime() < clock.now().getTime(), 'still expired, so the sweeper ends it as it was');
  t.deepEqual(expired, ['uid-1'], 'handed to expiry processing instead');
});
