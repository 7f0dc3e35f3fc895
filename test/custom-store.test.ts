import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import test from 'ava';
import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { pino } from 'pino';
import { createServer } from '../server/create-server.js';
import { describeError } from '../server/http/errors.js';
import { MemorySessionStore } from '../stores/memory/session-store.js';
import {
  SESSION_STORE_METHODS,
  type SessionStoreContext,
  type SessionStoreErrorCode,
} from '../stores/session-store.js';
import { Browser } from './helpers/browser.js';
import { discover, POST_LOGOUT_URI, REDIRECT_URI, signIn, startAuthorization } from './helpers/relying-party.js';
import { startTestServer } from './helpers/server.js';
import { TcpProxy } from './helpers/tcp-proxy.js';

const clients = [
  {
    client_id: 'web',
    client_secret: 'web-secret',
    redirect_uris: [REDIRECT_URI],
    post_logout_redirect_uris: [POST_LOGOUT_URI],
    grant_types: ['authorization_code' as const],
  },
];

test('the Redis example store, configured by module path with storeOptions, carries a full login and logout', async (t) => {
  const prefix = `gatehouse-test:${randomBytes(6).toString('hex')}:`;
  const modulePath = resolve('examples/redis-session-store/redis-session-store.ts');
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  const redis = new Redis('redis://127.0.0.1:6379');
  // storeOptions reach the store as context.options: here its key prefix and URL (and a value that must stay secret).
  const storeOptions = { keyPrefix: prefix, redisUrl: 'redis://127.0.0.1:6379', apiToken: 'store-secret' };
  const gatehouse = await startTestServer({
    logger,
    config: { clients, serverSideSessions: { enabled: true, store: modulePath, storeOptions } },
  });
  t.teardown(async () => {
    await gatehouse.close();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });
  t.is(gatehouse.server.sessionStore?.constructor.name, 'RedisSessionStore');
  const started = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.sessionStore);
  t.like(started, {
    sessionStore: 'RedisSessionStore',
    module: modulePath,
    msg: 'server-side sessions in RedisSessionStore',
  });
  t.false(lines.join('\n').includes('store-secret'), 'store options are never logged');

  const browser = new Browser();
  const config = await discover(gatehouse.issuer, 'web', 'web-secret');
  const { tokens } = await signIn(browser, config, { username: 'alice' });
  t.false((await signIn(browser, config, { username: 'alice' })).sawLogin, 'the session lives in Redis');
  const [session] = await gatehouse.server.sessionStore!.getSessions({ subjectId: 'alice' });
  t.truthy(session);
  t.true(
    (await redis.exists(`${prefix}session:${session.sessionId}`)) === 1,
    'the record is in Redis under the prefix',
  );
  t.deepEqual(
    await gatehouse.server.sequelize
      .query('SELECT * FROM server_side_sessions', { plain: false, raw: true })
      .then(([rows]) => rows),
    [],
  );

  const confirm = await browser.navigate(
    `${gatehouse.issuer}/session/end?id_token_hint=${tokens.id_token}&post_logout_redirect_uri=${encodeURIComponent(POST_LOGOUT_URI)}`,
  );
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
    async get() {
      return null;
    }
    async getBySessionId() {
      return null;
    }
    async create() {}
    async update() {}
    async delete() {}
    async getSessions() {
      return [];
    }
    async deleteSessions() {
      return 0;
    }
    async claimExpired() {
      return [];
    }
  }
  const error = await t.throwsAsync(
    createServer({
      port: 0,
      logging: { level: 'silent' },
      database: { url: 'sqlite::memory:' },
      serverSideSessions: { enabled: true, store: Incomplete },
    }),
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

/** A store error of the store's own making: the contract's name and code, not the class of Gatehouse's copy. */
class OwnStoreError extends Error {
  constructor(
    readonly code: SessionStoreErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SessionStoreError';
  }
}

test('a store error of another class (name + code) is understood: a corrupt record is removed, not a 500 on every request', async (t) => {
  const corrupt = new Set<string>();
  const deleted: string[] = [];
  class DamagedMemoryStore extends MemorySessionStore {
    override async get(key: string) {
      if (corrupt.has(key)) throw new OwnStoreError('corrupt', 'get: the stored record cannot be read');
      return super.get(key);
    }
    override async delete(key: string) {
      deleted.push(key);
      corrupt.delete(key);
      return super.delete(key);
    }
  }
  const gatehouse = await startTestServer({
    config: { clients, serverSideSessions: { enabled: true, store: DamagedMemoryStore } },
  });
  t.teardown(() => gatehouse.close());
  const browser = new Browser();
  const config = await discover(gatehouse.issuer, 'web', 'web-secret');
  await signIn(browser, config, { username: 'alice' });
  const [session] = await gatehouse.server.sessionStore!.getSessions({ subjectId: 'alice' });
  corrupt.add(session.key);

  const page = await startAuthorization(browser, config);
  t.is(page.status, 200, 'the login page, not a server error');
  t.true(page.body.includes('name="password"'), 'the unreadable session signs no one in');
  t.deepEqual(deleted, [session.key], 'the corrupt record was deleted');
  t.deepEqual(await gatehouse.server.sessionStore!.getSessions({ subjectId: 'alice' }), []);
});

test('store errors of any class map to their HTTP status by code; other errors named alike do not', (t) => {
  const statuses = (
    ['invalid_filter', 'invalid_argument', 'not_found', 'duplicate', 'unavailable', 'storage', 'corrupt'] as const
  ).map((code) => describeError(new OwnStoreError(code, 'x')).status);
  t.deepEqual(statuses, [400, 400, 404, 409, 503, 500, 500]);
  t.is(describeError(new OwnStoreError('unavailable', 'x')).code, 'temporarily_unavailable');
  const impostor = Object.assign(new Error('x'), { name: 'SessionStoreError', code: 'teapot' });
  t.is(describeError(impostor).status, 500, 'a code outside the contract is not a store error');
});

test('a custom store whose storage is unreachable (code unavailable) gives 503 with Retry-After, and recovers', async (t) => {
  const proxy = await new TcpProxy({ host: '127.0.0.1', port: 6379 }).start();
  const prefix = `gatehouse-test:${randomBytes(6).toString('hex')}:`;
  const modulePath = resolve('examples/redis-session-store/redis-session-store.ts');
  const gatehouse = await startTestServer({
    config: {
      clients: [
        ...clients,
        {
          client_id: 'admin',
          client_secret: 'admin-secret',
          grant_types: ['client_credentials'],
          scope: 'gatehouse:admin',
        },
      ],
      serverSideSessions: {
        enabled: true,
        store: modulePath,
        storeOptions: { keyPrefix: prefix, redisUrl: `redis://127.0.0.1:${proxy.port}` },
      },
    },
  });
  const redis = new Redis('redis://127.0.0.1:6379');
  t.teardown(async () => {
    await gatehouse.close();
    await proxy.close();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });
  const browser = new Browser();
  const web = await discover(gatehouse.issuer, 'web', 'web-secret');
  await signIn(browser, web, { username: 'alice' });
  const token = (
    await oidc.clientCredentialsGrant(await discover(gatehouse.issuer, 'admin', 'admin-secret'), {
      scope: 'gatehouse:admin',
    })
  ).access_token;
  const listSessions = () =>
    fetch(`${gatehouse.issuer}/admin/api/v1/sessions?subject=alice`, { headers: { authorization: `Bearer ${token}` } });

  proxy.cut();
  const api = await listSessions();
  t.is(api.status, 503);
  t.is(api.headers.get('retry-after'), '5');
  t.like(await api.json(), { error: 'temporarily_unavailable' });
  const page = await startAuthorization(browser, web);
  t.is(page.status, 503, 'the provider answers 503 when the session cannot be read');

  proxy.restore();
  let recovered: Response | undefined;
  for (let i = 0; i < 50 && recovered?.status !== 200; i++) {
    recovered = await listSessions();
    if (recovered.status !== 200) await new Promise((resolve) => setTimeout(resolve, 200));
  }
  t.is(recovered?.status, 200, 'answers again once Redis is back');
  t.is(((await recovered!.json()) as { sessions: unknown[] }).sessions.length, 1, 'the session survived');
});

test('the store module loader takes a default export, or the only named export, also of a CommonJS module', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-store-'));
  const memory = JSON.stringify(resolve('stores/memory/session-store.ts'));
  const modules = {
    'named-only.ts': `import { MemorySessionStore } from ${memory};\nexport class NamedOnly extends MemorySessionStore {}\n`,
    'factory.mjs': `import { MemorySessionStore } from ${memory};\nexport function makeStore(context) { return new MemorySessionStore(context); }\n`,
    'commonjs.cjs':
      `exports.CommonJsStore = class CommonJsStore {\n` +
      `  constructor(context) { this.context = context; }\n` +
      SESSION_STORE_METHODS.map((method) => `  async ${method}() { return null; }\n`).join('') +
      `};\n`,
    'two-named.mjs': `import { MemorySessionStore } from ${memory};\nexport class A extends MemorySessionStore {}\nexport class B extends MemorySessionStore {}\n`,
  };
  for (const [name, source] of Object.entries(modules)) writeFileSync(join(dir, name), source);
  const start = (store: string) =>
    createServer({
      port: 0,
      logging: { level: 'silent' },
      database: { url: 'sqlite::memory:' },
      serverSideSessions: { enabled: true, store },
    });
  for (const [file, expected] of [
    ['named-only.ts', 'NamedOnly'],
    ['factory.mjs', 'MemorySessionStore'],
    ['commonjs.cjs', 'CommonJsStore'],
  ]) {
    const server = await start(join(dir, file));
    t.is(server.sessionStore?.constructor.name, expected, file);
    await server.close();
  }
  const error = await t.throwsAsync(start(join(dir, 'two-named.mjs')));
  t.regex(
    error!.message,
    /^serverSideSessions\.store: module ".*two-named\.mjs" has no default export and several named exports \(A, B\)/,
  );
});

test('a store whose constructor throws is a start-up error naming serverSideSessions.store', async (t) => {
  class NeedsUrl extends MemorySessionStore {
    constructor(context: SessionStoreContext) {
      if (typeof context.options?.url !== 'string') throw new Error('storeOptions.url is required');
      super(context);
    }
  }
  const error = await t.throwsAsync(
    createServer({
      port: 0,
      logging: { level: 'silent' },
      database: { url: 'sqlite::memory:' },
      serverSideSessions: { enabled: true, store: NeedsUrl },
    }),
  );
  t.is(error!.message, 'serverSideSessions.store: building "NeedsUrl" failed: storeOptions.url is required');
  const server = await createServer({
    port: 0,
    logging: { level: 'silent' },
    database: { url: 'sqlite::memory:' },
    serverSideSessions: { enabled: true, store: NeedsUrl, storeOptions: { url: 'memory://' } },
  });
  t.true(server.sessionStore instanceof NeedsUrl, 'built once storeOptions carry the url');
  await server.close();
});
