import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import { decodeJwt } from 'jose';
import { ManualClock } from '../stores/clock.js';
import { createTestDatabase } from './helpers/databases.js';
import { seedExpiredSessions } from './helpers/expired-sessions.js';
import { LogoutReceiver } from './helpers/relying-party.js';
import { startTestServer } from './helpers/server.js';

const run = promisify(execFile);

function sweepProcess(databaseUrl: string, receiverUrl: string) {
  return run('npx', ['tsx', 'test/fixtures/sweep-once.ts'], {
    env: { ...process.env, GATEHOUSE_DATABASE_URL: databaseUrl, RECEIVER_URL: receiverUrl },
    maxBuffer: 10 * 1024 * 1024,
  }).then(({ stdout }) => JSON.parse(stdout.trim().split('\n').pop()!) as { sessions: number });
}

const coordClient = (receiver: LogoutReceiver) => ({
  client_id: 'coord',
  client_secret: 'coord-secret',
  redirect_uris: ['http://127.0.0.1:9/cb'],
  backchannel_logout_uri: receiver.url,
});

test('two sweeper processes on one PostgreSQL database process 5,000 expired sessions once and only once', async (t) => {
  const database = await createTestDatabase('postgres');
  const receiver = await new LogoutReceiver().start();
  t.teardown(async () => {
    await receiver.close();
    await database.drop();
  });
  // Migrate, generate the shared keys and seed, through one in-process instance.
  const seeder = await startTestServer({
    databaseUrl: database.url,
    config: { serverSideSessions: { enabled: true }, clients: [coordClient(receiver)] },
  });
  const sids = await seedExpiredSessions(seeder.server.sessionStore!, 5000, new Date());
  await seeder.server.close();

  const [a, b] = await Promise.all([
    sweepProcess(database.url, receiver.url),
    sweepProcess(database.url, receiver.url),
  ]);
  t.is(a.sessions + b.sessions, 5000, `instance A ended ${a.sessions}, instance B ${b.sessions}`);
  t.true(a.sessions > 0 && b.sessions > 0, 'both instances took part');

  await receiver.waitFor(5000, 30_000);
  const delivered = receiver.tokens.map((token) => String(decodeJwt(token).sid));
  t.is(delivered.length, 5000, 'exactly one notification per session');
  t.is(new Set(delivered).size, 5000);
  t.deepEqual([...delivered].sort(), [...sids].sort());
});

test('a process killed in mid-sweep leaves nothing behind: the next instance delivers every pending notification', async (t) => {
  const database = await createTestDatabase('sqlite-file');
  const receiver = await new LogoutReceiver().start();
  t.teardown(async () => {
    await receiver.close();
    await database.drop();
  });
  const seeder = await startTestServer({
    databaseUrl: database.url,
    config: { serverSideSessions: { enabled: true }, clients: [coordClient(receiver)] },
  });
  const sids = await seedExpiredSessions(seeder.server.sessionStore!, 300, new Date());
  await seeder.server.close();

  receiver.delayMs = 20; // slow relying party: the sweep is still going when the process dies
  const child = spawn('npx', ['tsx', 'test/fixtures/sweep-once.ts'], {
    env: {
      ...process.env,
      GATEHOUSE_DATABASE_URL: database.url,
      RECEIVER_URL: receiver.url,
      SWEEP_BATCH: '20',
      DELIVERY_BATCH: '10',
    },
    stdio: 'ignore',
    detached: true,
  });
  await receiver.waitFor(10, 60_000);
  process.kill(-child.pid!, 'SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  const beforeRestart = receiver.tokens.length;
  t.true(beforeRestart < 300, `killed mid-way (${beforeRestart} of 300 delivered)`);
  receiver.delayMs = 0;

  // A restarted instance, once the dead one's claims (120 s leases) have run out.
  const clock = new ManualClock(Date.now() + 5 * 60_000);
  const restarted = await startTestServer({
    databaseUrl: database.url,
    clock,
    config: {
      serverSideSessions: { enabled: true, coordinateClientLifetimesWithUserSession: true },
      clients: [coordClient(receiver)],
    },
  });
  t.teardown(() => restarted.server.close());
  await restarted.server.sweeper.runOnce();
  await restarted.server.backchannel.runOnce();
  await receiver.waitFor(300, 30_000);

  const counts = new Map<string, number>();
  for (const token of receiver.tokens) {
    const sid = String(decodeJwt(token).sid);
    counts.set(sid, (counts.get(sid) ?? 0) + 1);
  }
  t.deepEqual([...counts.keys()].sort(), [...sids].sort(), 'every session was notified');
  const repeated = [...counts.values()].filter((n) => n > 1).length;
  // Delivery is at-least-once: only tokens in flight at the moment of the kill (at most one delivery batch, 10 here)
  // can arrive twice.
  t.true(repeated <= 10, `${repeated} notifications arrived twice`);
  t.deepEqual(await restarted.server.backchannel.outbox.countByStatus(), { pending: 0, delivered: 300, failed: 0 });
  t.deepEqual(await restarted.server.sessionStore!.claimExpired(1000, 60), []);
});
