/**
 * The request memo of the operational adapter (stores/sequelize/request-memo.ts): a look-up repeated within one request
 * reads the database once, a write of the request is seen by its later reads, and nothing carries over to another
 * request (a token revoked in one request is refused by the next). On SQLite and PostgreSQL; reads are counted at the
 * database gateway (`observe`).
 */
import { EventEmitter } from 'node:events';
import test from 'ava';
import type { Sequelize } from 'sequelize';
import * as oidc from 'openid-client';
import { ManualClock } from '../stores/clock.js';
import { openDatabase } from '../stores/sequelize/connection.js';
import { Database } from '../stores/sequelize/database.js';
import { migrate } from '../stores/sequelize/migrate.js';
import { createOperationalAdapter, type SequelizeOperationalAdapter } from '../stores/sequelize/operational-adapter.js';
import { MEMO_MAX_AGE_MS, withRequestMemo } from '../stores/sequelize/request-memo.js';
import { createTestDatabase, type TestDialect } from './helpers/databases.js';
import { startTestServer } from './helpers/server.js';
import { Browser } from './helpers/browser.js';
import { discover, REDIRECT_URI, signIn } from './helpers/relying-party.js';

const BASE = Date.UTC(2031, 0, 1);

async function withAdapter(
  dialect: TestDialect,
  work: (context: {
    adapter: (model: string) => SequelizeOperationalAdapter;
    sequelize: Sequelize;
    reads: () => number;
  }) => Promise<void>,
): Promise<void> {
  const db = await createTestDatabase(dialect);
  const sequelize = await openDatabase({ url: db.url });
  try {
    await migrate(sequelize);
    let reads = 0;
    Database.of(sequelize).observe((event) => {
      if (event.kind === 'read') reads++;
    });
    const Adapter = createOperationalAdapter(sequelize, new ManualClock(BASE));
    await work({ adapter: (model) => new Adapter(model), sequelize, reads: () => reads });
  } finally {
    await sequelize.close();
    await db.drop();
  }
}

for (const dialect of ['sqlite-memory', 'postgres', 'mariadb'] as const) {
  test(`${dialect}: a look-up repeated in one request reads the database once`, async (t) => {
    await withAdapter(dialect, async ({ adapter, reads }) => {
      const interactions = adapter('Interaction');
      await interactions.upsert('i-1', { jti: 'i-1', kind: 'Interaction' }, 60);
      const before = reads();
      await withRequestMemo(async () => {
        const [first, second] = await Promise.all([interactions.find('i-1'), interactions.find('i-1')]);
        const third = await interactions.find('i-1');
        t.deepEqual(
          [first, second, third],
          [
            { jti: 'i-1', kind: 'Interaction' },
            { jti: 'i-1', kind: 'Interaction' },
            { jti: 'i-1', kind: 'Interaction' },
          ],
        );
        // Each look-up gets its own copy: the provider may change what it was given.
        t.not(first, third);
      });
      t.is(reads() - before, 1);
      // Outside a request nothing is kept.
      await interactions.find('i-1');
      await interactions.find('i-1');
      t.is(reads() - before, 3);
    });
  });

  test(`${dialect}: a write in the same request is seen by its later reads`, async (t) => {
    await withAdapter(dialect, async ({ adapter }) => {
      const codes = adapter('AuthorizationCode');
      await codes.upsert('c-1', { jti: 'c-1', scope: 'openid' }, 60);
      await withRequestMemo(async () => {
        t.deepEqual(await codes.find('c-1'), { jti: 'c-1', scope: 'openid' });
        await codes.upsert('c-1', { jti: 'c-1', scope: 'openid email' }, 60);
        t.deepEqual(await codes.find('c-1'), { jti: 'c-1', scope: 'openid email' });
        await codes.consume('c-1');
        t.truthy((await codes.find('c-1'))?.consumed);
        await codes.destroy('c-1');
        t.is(await codes.find('c-1'), undefined);
        // A miss is forgotten by a write too.
        await codes.upsert('c-1', { jti: 'c-1', scope: 'profile' }, 60);
        t.deepEqual(await codes.find('c-1'), { jti: 'c-1', scope: 'profile' });
      });
    });
  });

  test(`${dialect}: revoking a grant's tokens in a request is seen by that request's later reads`, async (t) => {
    await withAdapter(dialect, async ({ adapter }) => {
      const tokens = adapter('AccessToken');
      await tokens.upsert('at-1', { jti: 'at-1', grantId: 'g-1' }, 60);
      await withRequestMemo(async () => {
        t.truthy(await tokens.find('at-1'));
        await tokens.revokeByGrantId('g-1');
        t.is(await tokens.find('at-1'), undefined);
      });
    });
  });

  test(`${dialect}: a token look-up brings its Grant and the other token types of the value along, in one read`, async (t) => {
    await withAdapter(dialect, async ({ adapter, reads }) => {
      const [tokens, credentials, refresh, grants] = ['AccessToken', 'ClientCredentials', 'RefreshToken', 'Grant'].map(
        adapter,
      );
      await grants.upsert('g-2', { jti: 'g-2', kind: 'Grant', accountId: 'alice' }, 60);
      await tokens.upsert('at-3', { jti: 'at-3', grantId: 'g-2' }, 60);
      await tokens.upsert('at-4', { jti: 'at-4', grantId: 'g-gone' }, 60);
      const before = reads();
      await withRequestMemo(async () => {
        // What introspection without a hint does: the three token types at once, then the token's Grant.
        const found = await Promise.all([tokens.find('at-3'), credentials.find('at-3'), refresh.find('at-3')]);
        t.deepEqual(found, [{ jti: 'at-3', grantId: 'g-2' }, undefined, undefined]);
        t.deepEqual(await grants.find('g-2'), { jti: 'g-2', kind: 'Grant', accountId: 'alice' });
        t.is(reads() - before, 1);
        // A Grant that is gone is a miss, remembered as one.
        t.truthy(await tokens.find('at-4'));
        t.is(await grants.find('g-gone'), undefined);
        t.is(reads() - before, 2);
      });
    });
  });

  test(`${dialect}: a Grant the request writes after a token brought it along is read again`, async (t) => {
    await withAdapter(dialect, async ({ adapter }) => {
      const [tokens, grants] = ['RefreshToken', 'Grant'].map(adapter);
      await grants.upsert('g-3', { jti: 'g-3', scope: 'openid' }, 60);
      await tokens.upsert('rt-1', { jti: 'rt-1', grantId: 'g-3' }, 60);
      await withRequestMemo(async () => {
        const lookUp = tokens.find('rt-1');
        // Written while the token's look-up is still running: the Grant it brings must not be kept.
        const write = grants.upsert('g-3', { jti: 'g-3', scope: 'openid email' }, 60);
        await Promise.all([lookUp, write]);
        t.deepEqual(await grants.find('g-3'), { jti: 'g-3', scope: 'openid email' });
        await grants.destroy('g-3');
        t.is(await grants.find('g-3'), undefined);
      });
    });
  });

  test(`${dialect}: a token revoked in one request is not served from a memo to the next`, async (t) => {
    await withAdapter(dialect, async ({ adapter }) => {
      const tokens = adapter('AccessToken');
      await tokens.upsert('at-2', { jti: 'at-2' }, 60);
      // Request 1 reads the token and is still running while request 2 revokes it.
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let read!: () => void;
      const wasRead = new Promise<void>((resolve) => (read = resolve));
      const first = withRequestMemo(async () => {
        t.truthy(await tokens.find('at-2'));
        read();
        await held;
        // Still the same request, but past the memo's age bound: it reads again and sees the revocation.
        await new Promise((resolve) => setTimeout(resolve, MEMO_MAX_AGE_MS + 20));
        t.is(await tokens.find('at-2'), undefined);
      });
      await wasRead;
      await withRequestMemo(() => tokens.destroy('at-2'));
      release();
      await first;
      await withRequestMemo(async () => t.is(await tokens.find('at-2'), undefined));
    });
  });

  test(`${dialect}: a request that waited past the memo's bound sees another request's delete`, async (t) => {
    await withAdapter(dialect, async ({ adapter, reads }) => {
      const interactions = adapter('Interaction');
      await interactions.upsert('i-9', { jti: 'i-9', kind: 'Interaction' }, 60);
      await withRequestMemo(async () => {
        t.truthy(await interactions.find('i-9'));
        // Another request (a second tab finishing the same interaction) deletes it while this one waits (the gate).
        await withRequestMemo(() => interactions.destroy('i-9'));
        await new Promise((resolve) => setTimeout(resolve, MEMO_MAX_AGE_MS + 20));
        const before = reads();
        t.is(await interactions.find('i-9'), undefined, 'read again, not remembered');
        t.is(reads() - before, 1);
      });
    });
  });

  test(`${dialect}: work a request started that runs after its response is done has no memo`, async (t) => {
    await withAdapter(dialect, async ({ adapter }) => {
      const tokens = adapter('RefreshToken');
      await tokens.upsert('rt-9', { jti: 'rt-9' }, 60);
      const response = new EventEmitter();
      let later!: Promise<unknown>;
      await withRequestMemo(async () => {
        t.truthy(await tokens.find('rt-9'));
        // A timer started by the request (as the back-channel worker's kick is), running after the response.
        later = new Promise((resolve) => setTimeout(() => resolve(tokens.find('rt-9')), 30));
      }, response);
      response.emit('close');
      await withRequestMemo(() => tokens.destroy('rt-9'));
      t.is(await later, undefined, 'the timer read the database, not the ended request memo');
    });
  });
}

test('an access token revoked at the revocation endpoint is refused by the next userinfo request', async (t) => {
  const server = await startTestServer({
    config: {
      clients: [
        { client_id: 'memo-web', client_secret: 'memo-secret', redirect_uris: [REDIRECT_URI], scope: 'openid profile' },
      ],
    },
  });
  t.teardown(() => server.close());
  const config = await discover(server.issuer, 'memo-web', 'memo-secret');
  const { tokens } = await signIn(new Browser(), config, { username: 'alice', scope: 'openid profile' });
  t.is((await oidc.fetchUserInfo(config, tokens.access_token, 'alice')).sub, 'alice');
  await oidc.tokenRevocation(config, tokens.access_token);
  await t.throwsAsync(oidc.fetchUserInfo(config, tokens.access_token, 'alice'));
  t.false((await oidc.tokenIntrospection(config, tokens.access_token)).active);
});
