import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import test from 'ava';
import { Redis } from 'ioredis';
import { createServer } from '../server/create-server.js';
import { MemorySessionStore } from '../stores/memory/session-store.js';
import type { SessionStoreContext } from '../stores/session-store.js';
import { Browser } from './helpers/browser.js';
import { discover, POST_LOGOUT_URI, REDIRECT_URI, signIn, startAuthorization } from './helpers/relying-party.js';
import { startTestServer } from './helpers/server.js';

const clients = [
  {
    client_id: 'web',
    client_secret: 'web-secret',
    redirect_uris: [REDIRECT_URI],
    post_logout_redirect_uris: [POST_LOGOUT_URI],
    grant_types: ['authorization_code' as const],
  },
];

test('the Redis example store, configured by module path, carries a full login and logout', async (t) => {
  const prefix = `gatehouse-test:${randomBytes(6).toString('hex')}:`;
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-store-'));
  const example = resolve('examples/redis-session-store/redis-session-store.ts');
  const modulePath = join(dir, 'my-store.ts');
  // What a user writes: a module whose default export is the store class (here: the example with its own prefix).
  writeFileSync(
    modulePath,
    `import { RedisSessionStore } from ${JSON.stringify(example)};\n` +
      `export default class MyStore extends RedisSessionStore {\n` +
      `  constructor(context: any) { super({ ...context, keyPrefix: ${JSON.stringify(prefix)} }); }\n}\n`,
  );
  const redis = new Redis('redis://127.0.0.1:6379');
  const gatehouse = await startTestServer({ config: { clients, serverSideSessions: { enabled: true, store: modulePath } } });
  t.teardown(async () => {
    await gatehouse.close();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });
  t.is(gatehouse.server.sessionStore?.constructor.name, 'MyStore');

  const browser = new Browser();
  const config = await discover(gatehouse.issuer, 'web', 'web-secret');
  const { tokens } = await signIn(browser, config, { username: 'alice' });
  t.false((await signIn(browser, config, { username: 'alice' })).sawLogin, 'the session lives in Redis');
  const [session] = await gatehouse.server.sessionStore!.getSessions({ subjectId: 'alice' });
  t.truthy(session);
  t.true((await redis.exists(`${prefix}session:${session.sessionId}`)) === 1, 'the record is in Redis under the prefix');
  t.deepEqual(await gatehouse.server.sequelize.query('SELECT * FROM server_side_sessions', { plain: false, raw: true }).then(([rows]) => rows), []);

  const confirm = await browser.navigate(`${gatehouse.issuer}/session/end?id_token_hint=${tokens.id_token}&post_logout_redirect_uri=${encodeURIComponent(POST_LOGOUT_URI)}`);
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.body)![1];
  await browser.navigate(`${gatehouse.issuer}/session/end/confirm`, { form: { xsrf, logout: 'yes' } });
  t.deepEqual(await gatehouse.server.sessionStore!.getSessions({ subjectId: 'alice' }), []);
  t.true((await startAuthorization(browser, config)).body.includes('name="password"'));
});

test('a store class, a factory and an instance are all accepted in code', async (t) => {
  const made: string[] = [];
  const options = [
    MemorySessionStore,
    (context: SessionStoreContext) => {
      made.push('factory');
      return new MemorySessionStore(context);
    },
  ];
  for (const store of options) {
    const gatehouse = await startTestServer({ config: { clients, serverSideSessions: { enabled: true, store } } });
    try {
      t.true(gatehouse.server.sessionStore instanceof MemorySessionStore);
      const browser = new Browser();
      await signIn(browser, await discover(gatehouse.issuer, 'web', 'web-secret'), { username: 'bob' });
      t.is((await gatehouse.server.sessionStore!.getSessions({ subjectId: 'bob' })).length, 1);
    } finally {
      await gatehouse.close();
    }
  }
  t.deepEqual(made, ['factory']);
});

test('a store class without querySessions is refused at start, naming the method', async (t) => {
  class Incomplete {
    async get() { return null; }
    async getBySessionId() { return null; }
    async create() {}
    async update() {}
    async delete() {}
    async getSessions() { return []; }
    async deleteSessions() { return 0; }
    async claimExpired() { return []; }
  }
  const error = await t.throwsAsync(
    createServer({ port: 0, logging: { level: 'silent' }, database: { url: 'sqlite::memory:' }, serverSideSessions: { enabled: true, store: Incomplete } }),
  );
  t.regex(error!.message, /missing method: querySessions$/);
});

test('a store module path that does not load is a clear start-up error', async (t) => {
  const error = await t.throwsAsync(
    createServer({
      port: 0,
      logging: { level: 'silent' },
      database: { url: 'sqlite::memory:' },
      serverSideSessions: { enabled: true, store: '/nonexistent/store.js' },
    }),
  );
  t.regex(error!.message, /^serverSideSessions\.store: cannot load module "\/nonexistent\/store\.js"/);
});
