/**
 * The oidc-provider adapter on `oidc_payloads` and the secrets table, case by case, on every supported database.
 * Each test uses its own ids and its own ManualClock (never sleeps), so tests run concurrently.
 */
import test, { type ExecutionContext } from 'ava';
import { randomUUID } from 'node:crypto';
import { setImmediate as tick } from 'node:timers/promises';
import { QueryTypes, type Sequelize } from 'sequelize';
import type { AdapterPayload } from 'oidc-provider';
import { ManualClock } from '../stores/clock.js';
import { openDatabase } from '../stores/sequelize/connection.js';
import { createMigrator, migrate } from '../stores/sequelize/migrate.js';
import {
  createOperationalAdapter,
  removeExpiredOperationalRows,
  revokeClientRecords,
  type SequelizeOperationalAdapter,
} from '../stores/sequelize/operational-adapter.js';
import { getOrCreateSecret, getSecret, setSecret } from '../stores/sequelize/secrets.js';
import { ALL_DIALECTS, createTestDatabase, type TestDatabase, type TestDialect } from './helpers/databases.js';

/** Every test's clock starts here, except the sweeper test's (far earlier, so it only ever sees its own rows). */
const BASE = Date.UTC(2031, 0, 1);
const SWEEP_BASE = Date.UTC(2001, 0, 1);

interface Env {
  db: TestDatabase;
  sequelize: Sequelize;
}

interface StoredRow {
  model: string;
  id: string;
  payload: string;
  grant_id: string | null;
  uid: string | null;
  user_code: string | null;
  account_id: string | null;
  session_uid: string | null;
  expires_at: Date | string | null;
  consumed_at: Date | string | null;
}

const uniq = (prefix: string) => `${prefix}-${randomUUID()}`;

function asDate(value: Date | string | null): Date | null {
  return value === null || value instanceof Date ? value : new Date(value);
}

/** A second, direct read of the table, not through the adapter. */
async function storedRows(
  sequelize: Sequelize,
  where: { model?: string; id?: string; grantId?: string },
): Promise<StoredRow[]> {
  const conditions: string[] = [];
  if (where.model !== undefined) conditions.push('model = :model');
  if (where.id !== undefined) conditions.push('id = :id');
  if (where.grantId !== undefined) conditions.push('grant_id = :grantId');
  return sequelize.query<StoredRow>(`SELECT * FROM oidc_payloads WHERE ${conditions.join(' AND ')}`, {
    replacements: where,
    type: QueryTypes.SELECT,
  });
}

async function openMigrated(dialect: TestDialect): Promise<Env> {
  const db = await createTestDatabase(dialect);
  const sequelize = await openDatabase({ url: db.url });
  await migrate(sequelize);
  return { db, sequelize };
}

type Body = (t: ExecutionContext, env: Env) => Promise<void>;

for (const dialect of ALL_DIALECTS) {
  let env: Env | undefined;
  test.before(async () => {
    env = await openMigrated(dialect);
  });
  test.after.always(async () => {
    await env?.sequelize.close();
    await env?.db.drop();
  });

  const it = (title: string, body: Body) => test(`${dialect}: ${title}`, (t) => body(t, env!));
  const adapterFor = (model: string, clock = new ManualClock(BASE)): SequelizeOperationalAdapter =>
    new (createOperationalAdapter(env!.sequelize, clock))(model);

  it('upsert then find returns the payload, and the row holds the promoted columns', async (t, { sequelize }) => {
    const clock = new ManualClock(BASE);
    const adapter = adapterFor('AccessToken', clock);
    const id = uniq('at');
    const [grantId, accountId, sessionUid] = [uniq('grant'), uniq('acct'), uniq('suid')];
    const payload: AdapterPayload = {
      jti: id,
      kind: 'AccessToken',
      grantId,
      accountId,
      sessionUid,
      clientId: 'client-1',
      scope: 'openid profile',
      iat: BASE / 1000,
      exp: BASE / 1000 + 3600,
      extra: { nested: [1, 'two', null] },
    };
    await adapter.upsert(id, payload, 3600);

    t.deepEqual(await adapter.find(id), payload);
    const [row, ...more] = await storedRows(sequelize, { model: 'AccessToken', id });
    t.is(more.length, 0);
    t.deepEqual(JSON.parse(row.payload), payload);
    t.is(row.grant_id, grantId);
    t.is(row.account_id, accountId);
    t.is(row.session_uid, sessionUid);
    t.is(row.uid, null);
    t.is(row.user_code, null);
    t.is(asDate(row.expires_at)?.getTime(), BASE + 3_600_000);
    t.is(row.consumed_at, null);
  });

  it("revokeClientRecords deletes the rows of one client (grants, tokens, codes) and nobody else's", async (t) => {
    const [gone, kept] = [uniq('gone-client'), uniq('kept-client')];
    const written: { model: string; id: string; clientId: string }[] = [];
    for (const clientId of [gone, kept])
      for (const model of ['Grant', 'AccessToken', 'RefreshToken', 'AuthorizationCode', 'ClientCredentials']) {
        const id = uniq(model);
        await adapterFor(model).upsert(id, { jti: id, clientId, accountId: 'acct', grantId: 'g' }, 60);
        written.push({ model, id, clientId });
      }
    const interaction = uniq('interaction');
    await adapterFor('Interaction').upsert(interaction, { jti: interaction, params: { client_id: gone } }, 60);

    t.is(await revokeClientRecords(env!.sequelize, gone), 5);
    for (const { model, id, clientId } of written)
      t.is((await adapterFor(model).find(id)) !== undefined, clientId === kept, `${model} of ${clientId}`);
    t.truthy(await adapterFor('Interaction').find(interaction), 'rows without a client id stay');
    t.is(await revokeClientRecords(env!.sequelize, gone), 0, 'again: nothing left');
  });

  it('many more concurrent calls than the connection pool holds all complete and agree (connections go back)', async (t) => {
    const adapter = adapterFor('AccessToken');
    const ids = Array.from({ length: 300 }, () => uniq('many'));
    await Promise.all(ids.map((id) => adapter.upsert(id, { jti: id, grantId: 'g' }, 60)));
    const found = await Promise.all(ids.map((id) => adapter.find(id)));
    t.deepEqual(
      found.map((payload) => payload?.jti),
      ids,
    );
    await Promise.all(ids.map((id) => adapter.consume(id)));
    t.true(
      (await Promise.all(ids.map((id) => adapter.find(id)))).every((payload) => payload?.consumed === BASE / 1000),
    );
    await Promise.all(ids.map((id) => adapter.destroy(id)));
    t.deepEqual(
      await Promise.all(ids.map((id) => adapter.find(id))),
      ids.map(() => undefined),
    );
  });

  it('upsert replaces the payload, the promoted columns and the expiry', async (t, { sequelize }) => {
    const clock = new ManualClock(BASE);
    const adapter = adapterFor('Grant', clock);
    const id = uniq('grant');
    await adapter.upsert(id, { jti: id, accountId: 'first', clientId: 'c' }, 60);
    await adapter.upsert(id, { jti: id, accountId: 'second', clientId: 'c', scope: 'openid' });

    t.deepEqual(await adapter.find(id), { jti: id, accountId: 'second', clientId: 'c', scope: 'openid' });
    clock.advance(3_600_000);
    t.truthy(await adapter.find(id), 'the replacement has no expiry');
    const rows = await storedRows(sequelize, { model: 'Grant', id });
    t.is(rows.length, 1);
    t.is(rows[0].account_id, 'second');
    t.is(rows[0].expires_at, null);
  });

  it('find of a missing id is undefined', async (t) => {
    const adapter = adapterFor('AuthorizationCode');
    t.is(await adapter.find(uniq('missing')), undefined);
    t.is(await adapter.findByUid(uniq('missing')), undefined);
    t.is(await adapter.findByUserCode(uniq('missing')), undefined);
  });

  it('expiresIn undefined stores no expiry: still found far in the future', async (t, { sequelize }) => {
    const clock = new ManualClock(BASE);
    const adapter = adapterFor('Client', clock);
    const id = uniq('client');
    await adapter.upsert(id, { client_id: id, redirect_uris: ['https://rp.example/cb'] });
    clock.advance(100 * 365 * 24 * 3_600_000);
    t.deepEqual(await adapter.find(id), { client_id: id, redirect_uris: ['https://rp.example/cb'] });
    t.is((await storedRows(sequelize, { model: 'Client', id }))[0].expires_at, null);
  });

  it('an expired row is not returned (expiry at exactly now counts as expired)', async (t) => {
    const clock = new ManualClock(BASE);
    const sessions = adapterFor('Session', clock);
    const codes = adapterFor('DeviceCode', clock);
    const id = uniq('sess');
    const uid = uniq('uid');
    const deviceId = uniq('dc');
    const userCode = uniq('UC');
    await sessions.upsert(id, { jti: id, uid, kind: 'Session' }, 60);
    await codes.upsert(deviceId, { jti: deviceId, userCode }, 60);

    clock.advance(59_999);
    t.truthy(await sessions.find(id));
    t.truthy(await sessions.findByUid(uid));
    t.truthy(await codes.findByUserCode(userCode));

    clock.advance(1);
    t.is(await sessions.find(id), undefined);
    t.is(await sessions.findByUid(uid), undefined);
    t.is(await codes.findByUserCode(userCode), undefined);
    t.is(await codes.find(deviceId), undefined);
  });

  it('consume makes consumed truthy (epoch seconds) and is stored in consumed_at', async (t, { sequelize }) => {
    const clock = new ManualClock(BASE + 1234);
    const adapter = adapterFor('RefreshToken', clock);
    const id = uniq('rt');
    await adapter.upsert(id, { jti: id, grantId: uniq('grant') }, 3600);
    t.is((await adapter.find(id))?.consumed, undefined);

    clock.advance(5000);
    await adapter.consume(id);
    const found = await adapter.find(id);
    t.truthy(found?.consumed);
    t.is(found?.consumed, Math.floor((BASE + 6234) / 1000));
    t.is(asDate((await storedRows(sequelize, { model: 'RefreshToken', id }))[0].consumed_at)?.getTime(), BASE + 6234);

    await t.notThrowsAsync(adapter.consume(uniq('missing')), 'consuming a missing id is not an error');
  });

  it('upsert takes the consumed state from the payload it replaces with', async (t) => {
    const clock = new ManualClock(BASE);
    const adapter = adapterFor('AuthorizationCode', clock);
    const id = uniq('code');
    await adapter.upsert(id, { jti: id }, 600);
    await adapter.consume(id);
    const consumed = await adapter.find(id);
    await adapter.upsert(id, consumed!, 600);
    t.is((await adapter.find(id))?.consumed, Math.floor(BASE / 1000), 're-saving a consumed payload keeps it consumed');

    await adapter.upsert(id, { jti: id }, 600);
    t.is((await adapter.find(id))?.consumed, undefined, 'a payload without consumed replaces the consumed row');
  });

  it('findByUid returns the session and follows id rotation', async (t) => {
    const adapter = adapterFor('Session');
    const uid = uniq('uid');
    const first = uniq('sess');
    await adapter.upsert(first, { jti: first, uid, kind: 'Session', accountId: 'alice' }, 3600);
    t.is((await adapter.findByUid(uid))?.jti, first);

    // What Session#save does on rotation: destroy the old id, then upsert the new id with the same uid.
    const second = uniq('sess');
    await adapter.destroy(first);
    await adapter.upsert(second, { jti: second, uid, kind: 'Session', accountId: 'alice' }, 3600);
    t.is((await adapter.findByUid(uid))?.jti, second);
    t.is(await adapter.find(first), undefined);
  });

  it('findByUserCode returns the device code', async (t, { sequelize }) => {
    const adapter = adapterFor('DeviceCode');
    const id = uniq('dc');
    const userCode = uniq('WDJB-MJHT');
    await adapter.upsert(id, { jti: id, userCode, clientId: 'tv', grantId: uniq('grant') }, 600);
    t.deepEqual((await adapter.findByUserCode(userCode))?.jti, id);
    t.is((await storedRows(sequelize, { model: 'DeviceCode', id }))[0].user_code, userCode);
    t.is(await adapterFor('Session').findByUserCode(userCode), undefined, 'scoped to the model');
  });

  it('destroy deletes the row; destroying a missing id is not an error', async (t, { sequelize }) => {
    const adapter = adapterFor('Interaction');
    const id = uniq('int');
    await adapter.upsert(id, { jti: id, kind: 'Interaction', returnTo: 'https://op.example/auth/x' }, 600);
    await adapter.destroy(id);
    t.is(await adapter.find(id), undefined);
    t.is((await storedRows(sequelize, { model: 'Interaction', id })).length, 0);
    await t.notThrowsAsync(adapter.destroy(id));
  });

  it("revokeByGrantId removes only this model's rows with that grant id", async (t, { sequelize }) => {
    const accessTokens = adapterFor('AccessToken');
    const refreshTokens = adapterFor('RefreshToken');
    const grantId = uniq('grant');
    const otherGrant = uniq('grant');
    const [a1, a2, aOther, r1] = [uniq('at'), uniq('at'), uniq('at'), uniq('rt')];
    await accessTokens.upsert(a1, { jti: a1, grantId }, 3600);
    await accessTokens.upsert(a2, { jti: a2, grantId });
    await accessTokens.upsert(aOther, { jti: aOther, grantId: otherGrant }, 3600);
    await refreshTokens.upsert(r1, { jti: r1, grantId }, 3600);

    await accessTokens.revokeByGrantId(grantId);

    t.is(await accessTokens.find(a1), undefined);
    t.is(await accessTokens.find(a2), undefined);
    t.truthy(await accessTokens.find(aOther), 'another grant is untouched');
    t.truthy(await refreshTokens.find(r1), 'another model is untouched');
    t.is((await storedRows(sequelize, { model: 'AccessToken', grantId })).length, 0);
    t.is((await storedRows(sequelize, { model: 'RefreshToken', grantId })).length, 1);
  });

  it('models are isolated: the same id in two models', async (t) => {
    const sessions = adapterFor('Session');
    const interactions = adapterFor('Interaction');
    const id = uniq('shared');
    await sessions.upsert(id, { jti: id, kind: 'Session', uid: uniq('uid') }, 600);
    await interactions.upsert(id, { jti: id, kind: 'Interaction' }, 600);
    t.is((await sessions.find(id))?.kind, 'Session');
    t.is((await interactions.find(id))?.kind, 'Interaction');

    await interactions.consume(id);
    t.is((await sessions.find(id))?.consumed, undefined);
    await interactions.destroy(id);
    t.is((await sessions.find(id))?.kind, 'Session');
    t.is(await interactions.find(id), undefined);
  });

  it('concurrent upserts of the same id do not fail and leave one row', async (t, { sequelize }) => {
    const adapter = adapterFor('Session');
    const id = uniq('sess');
    const uid = uniq('uid');
    const writes = Array.from({ length: 20 }, (_, n) =>
      adapter.upsert(id, { jti: id, uid, kind: 'Session', state: { n } }, 600),
    );
    await t.notThrowsAsync(Promise.all(writes));
    const found = await adapter.find(id);
    t.is(found?.jti, id);
    t.true(typeof (found?.state as { n?: unknown } | undefined)?.n === 'number');
    t.is((await storedRows(sequelize, { model: 'Session', id })).length, 1);
  });

  it('insertIfAbsent: of 20 concurrent calls with one id exactly one inserts its payload', async (t, { sequelize }) => {
    const adapter = adapterFor('ReplayDetection');
    const id = uniq('replay');
    const calls = Array.from({ length: 20 }, (_, n) => adapter.insertIfAbsent(id, { jti: id, iss: `caller-${n}` }, 60));
    const results = await Promise.all(calls);
    t.is(results.filter(Boolean).length, 1, JSON.stringify(results));
    const rows = await storedRows(sequelize, { model: 'ReplayDetection', id });
    t.is(rows.length, 1);
    t.is(JSON.parse(rows[0].payload).iss, `caller-${results.indexOf(true)}`);
    t.is(asDate(rows[0].expires_at)?.getTime(), BASE + 60_000);
  });

  it('insertIfAbsent: a live row stays; an expired one is replaced by one of concurrent calls', async (t, {
    sequelize,
  }) => {
    const clock = new ManualClock(BASE);
    const adapter = adapterFor('ReplayDetection', clock);
    const id = uniq('replay');
    t.true(await adapter.insertIfAbsent(id, { jti: id, iss: 'first' }, 60));
    clock.advance(59_999);
    t.false(await adapter.insertIfAbsent(id, { jti: id, iss: 'second' }, 60), 'live until its expiry');
    t.is(JSON.parse((await storedRows(sequelize, { model: 'ReplayDetection', id }))[0].payload).iss, 'first');

    clock.advance(1); // expiry at exactly now counts as expired, as for find
    const calls = Array.from({ length: 20 }, (_, n) => adapter.insertIfAbsent(id, { jti: id, iss: `again-${n}` }, 60));
    const results = await Promise.all(calls);
    t.is(results.filter(Boolean).length, 1, JSON.stringify(results));
    const rows = await storedRows(sequelize, { model: 'ReplayDetection', id });
    t.is(rows.length, 1);
    t.is(JSON.parse(rows[0].payload).iss, `again-${results.indexOf(true)}`);
    t.is(asDate(rows[0].expires_at)?.getTime(), BASE + 120_000);
    t.deepEqual(await adapter.find(id), { jti: id, iss: `again-${results.indexOf(true)}` });
  });

  it('insertIfAbsent keeps models apart, and a row without expiry is never replaced', async (t) => {
    const clock = new ManualClock(BASE);
    const replays = adapterFor('ReplayDetection', clock);
    const others = adapterFor('Grant', clock);
    const id = uniq('replay');
    await others.upsert(id, { jti: id });
    t.true(await replays.insertIfAbsent(id, { jti: id }, 60), 'the same id in another model is not this row');
    t.false(await others.insertIfAbsent(id, { jti: id }, 60));
    clock.advance(100 * 365 * 24 * 3_600_000);
    t.false(await others.insertIfAbsent(id, { jti: id }, 60), 'no expiry: live for ever');
    t.true(await replays.insertIfAbsent(id, { jti: id }, 60));
  });

  it('a payload with unicode and 100 KB of data round-trips', async (t, { sequelize }) => {
    const adapter = adapterFor('Session');
    const id = uniq('sess');
    const text = 'Zoë 🦊 — 日本語 \u0000 \\ \' " :name $1 ? \n'.repeat(2_600);
    const payload: AdapterPayload = {
      jti: id,
      uid: uniq('uid'),
      accountId: 'ünïcødé-🦊',
      state: { text, blob: 'x'.repeat(100 * 1024) },
    };
    await adapter.upsert(id, payload, 600);
    t.deepEqual(await adapter.find(id), payload);
    t.deepEqual(JSON.parse((await storedRows(sequelize, { model: 'Session', id }))[0].payload), payload);
  });

  it('database errors propagate (invalid input is not swallowed)', async (t) => {
    const adapter = adapterFor('AccessToken');
    // 300 characters: over the column width on PostgreSQL and MariaDB; SQLite does not enforce widths.
    const tooLong = 'g'.repeat(300);
    if (dialect.startsWith('sqlite')) {
      await t.notThrowsAsync(adapter.upsert(uniq('at'), { grantId: tooLong }, 60));
    } else {
      await t.throwsAsync(adapter.upsert(uniq('at'), { grantId: tooLong }, 60));
    }
  });

  it('removeExpiredOperationalRows deletes up to limit expired rows of any model', async (t, { sequelize }) => {
    const clock = new ManualClock(SWEEP_BASE);
    const expired = [
      [adapterFor('AccessToken', clock), uniq('at')],
      [adapterFor('Session', clock), uniq('sess')],
      [adapterFor('Interaction', clock), uniq('int')],
    ] as const;
    for (const [adapter, id] of expired) await adapter.upsert(id, { jti: id }, 60);
    const sessions = adapterFor('Session', clock);
    const alive = uniq('sess');
    const forever = uniq('sess');
    await sessions.upsert(alive, { jti: alive }, 86_400);
    await sessions.upsert(forever, { jti: forever });
    clock.advance(60_000);

    t.is(await removeExpiredOperationalRows(sequelize, clock, 2), 2);
    t.is(await removeExpiredOperationalRows(sequelize, clock, 100), 1);
    t.is(await removeExpiredOperationalRows(sequelize, clock, 100), 0);
    for (const [adapter, id] of expired) t.is((await storedRows(sequelize, { model: adapter.model, id })).length, 0);
    t.truthy(await sessions.find(alive));
    t.truthy(await sessions.find(forever));
    await t.throwsAsync(removeExpiredOperationalRows(sequelize, clock, 0), { instanceOf: RangeError });
  });

  it('getOrCreateSecret called concurrently returns one stored value everywhere', async (t, { sequelize }) => {
    const name = uniq('cookie-keys').slice(0, 64);
    const candidates: string[] = [];
    const values = await Promise.all(
      Array.from({ length: 10 }, (_, n) =>
        getOrCreateSecret(sequelize, name, async () => {
          await tick();
          const candidate = `secret-${n}-${randomUUID()}`;
          candidates.push(candidate);
          return candidate;
        }),
      ),
    );
    t.is(new Set(values).size, 1);
    t.true(candidates.includes(values[0]));
    t.is(await getSecret(sequelize, name), values[0]);
    const rows = await sequelize.query<{ value: string }>('SELECT value FROM gatehouse_secrets WHERE name = :name', {
      replacements: { name },
      type: QueryTypes.SELECT,
    });
    t.deepEqual(
      rows.map((row) => row.value),
      [values[0]],
    );
    t.is(await getOrCreateSecret(sequelize, name, async () => t.fail('not called once stored') as never), values[0]);
  });

  it('setSecret replaces a value and getSecret is null for a missing name', async (t, { sequelize }) => {
    const name = uniq('jwks').slice(0, 64);
    t.is(await getSecret(sequelize, name), null);
    await setSecret(sequelize, name, 'one');
    t.is(await getSecret(sequelize, name), 'one');
    await setSecret(sequelize, name, 'two');
    t.is(await getSecret(sequelize, name), 'two');
    t.is(await getOrCreateSecret(sequelize, name, async () => 'three'), 'two');
    const rows = await sequelize.query<{ value: string }>('SELECT value FROM gatehouse_secrets WHERE name = :name', {
      replacements: { name },
      type: QueryTypes.SELECT,
    });
    t.deepEqual(
      rows.map((row) => row.value),
      ['two'],
    );
  });

  it('the migrations go down and up again (own database)', async (t) => {
    const own = await openMigrated(dialect);
    try {
      const queryInterface = own.sequelize.getQueryInterface();
      const tables = async () =>
        ((await queryInterface.showAllTables()) as (string | { tableName: string })[])
          .map((table) => (typeof table === 'string' ? table : table.tableName))
          .filter((name) => name !== 'gatehouse_migrations')
          .sort();
      const before = await tables();
      t.true(before.includes('gatehouse_secrets') && before.includes('oidc_payloads'), before.join(', '));
      const indexes = (await queryInterface.showIndex('oidc_payloads')) as { name: string }[];
      const names = indexes.map((index) => index.name);
      const lookups = [
        'oidc_payloads_model_grant_id',
        'oidc_payloads_model_uid',
        'oidc_payloads_model_user_code',
        'oidc_payloads_model_account_client',
      ];
      for (const name of [...lookups, 'oidc_payloads_expires_at']) t.true(names.includes(name), name);
      // 0008: no index for a column nothing looks up by, none that another index's prefix covers.
      for (const name of ['oidc_payloads_model_account_id', 'oidc_payloads_model_session_uid'])
        t.false(names.includes(name), name);
      if (dialect !== 'mariadb' && dialect !== 'mysql') {
        // Partial where the database has them: a row without the column (most tokens) adds no entry.
        for (const name of lookups) {
          const [row] = await own.sequelize.query<{ definition: string }>(
            dialect === 'postgres'
              ? 'SELECT indexdef AS definition FROM pg_indexes WHERE indexname = :name'
              : 'SELECT sql AS definition FROM sqlite_master WHERE name = :name',
            { replacements: { name }, type: QueryTypes.SELECT },
          );
          t.regex(row.definition, /WHERE .*IS NOT NULL/i, name);
        }
      }

      await createMigrator(own.sequelize).down({ to: 0 });
      t.deepEqual(await tables(), []);
      const adapter = new (createOperationalAdapter(own.sequelize, new ManualClock(BASE)))('Session');
      await t.throwsAsync(adapter.find('x'), undefined, 'a missing table is an error, not a miss');

      await migrate(own.sequelize);
      await adapter.upsert('x', { jti: 'x' }, 60);
      t.deepEqual(await adapter.find('x'), { jti: 'x' });
    } finally {
      await own.sequelize.close();
      await own.db.drop();
    }
  });
}

for (const dialect of ['sqlite-memory', 'postgres'] as const) {
  test(`${dialect}: a connection's SQL log sees the adapter's driver statements, as text without their values`, async (t) => {
    const db = await createTestDatabase(dialect);
    const lines: string[] = [];
    const sequelize = await openDatabase({ url: db.url, logSql: (sql) => lines.push(sql) });
    try {
      await migrate(sequelize);
      const adapter = new (createOperationalAdapter(sequelize, new ManualClock(BASE)))('AccessToken');
      lines.length = 0;
      await adapter.upsert('token-value-not-logged', { jti: 'token-value-not-logged' }, 60);
      t.truthy(await adapter.find('token-value-not-logged'));
      t.true(
        lines.some((line) => line.includes('INSERT INTO oidc_payloads')),
        lines.join('\n'),
      );
      t.true(
        lines.some((line) => line.includes('SELECT payload, consumed_at FROM oidc_payloads')),
        lines.join('\n'),
      );
      t.false(lines.some((line) => line.includes('token-value-not-logged')));
    } finally {
      await sequelize.close();
      await db.drop();
    }
  });
}

for (const dialect of ['sqlite-memory', 'sqlite-file'] as const) {
  test(`${dialect}: the adapter's prepared statements do not keep the connection from closing`, async (t) => {
    const db = await createTestDatabase(dialect);
    const sequelize = await openDatabase({ url: db.url });
    try {
      await migrate(sequelize);
      const adapter = new (createOperationalAdapter(sequelize, new ManualClock(BASE)))('AccessToken');
      await Promise.all(
        Array.from({ length: 50 }, (_, index) => adapter.upsert(`close-${index}`, { jti: `close-${index}` }, 60)),
      );
      await Promise.all(Array.from({ length: 50 }, (_, index) => adapter.find(`close-${index}`)));
      await adapter.consume('close-0');
      await adapter.destroy('close-1');
    } finally {
      // sqlite3 refuses to close a connection with unfinalized statements (SQLITE_BUSY): this would reject.
      await t.notThrowsAsync(sequelize.close());
      await db.drop();
    }
  });
}

for (const dialect of ALL_DIALECTS) {
  test(`${dialect}: migration 0008 can run again over itself (a start that failed half-way is re-run)`, async (t) => {
    const own = await openMigrated(dialect);
    try {
      const queryInterface = own.sequelize.getQueryInterface();
      const lean = await import('../stores/sequelize/migrations/0008-lean-payload-indexes.js');
      await t.notThrowsAsync(lean.up({ context: queryInterface }));
      const names = ((await queryInterface.showIndex('oidc_payloads')) as { name: string }[]).map(
        (index) => index.name,
      );
      for (const name of [
        'oidc_payloads_model_grant_id',
        'oidc_payloads_model_uid',
        'oidc_payloads_model_user_code',
        'oidc_payloads_model_account_client',
      ]) {
        t.true(names.includes(name), name);
      }
      t.false(
        names.some((name) => name.endsWith('_partial')),
        'no temporary index left',
      );
    } finally {
      await own.sequelize.close();
      await own.db.drop();
    }
  });
}
