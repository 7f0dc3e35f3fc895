/**
 * Benchmark area `sweeper`: the expiry sweeper of a whole Gatehouse server (createServer) on SQLite (file, WAL) and
 * PostgreSQL, through the real server path.
 *
 * (a) without notifications: expired sessions of a client that is not coordinated and has no back-channel logout URI,
 *     so ending one is the store's claim and delete. `server.sweeper.runOnce()` is timed while RSS and heap are
 *     sampled every 100 ms (start, peak, end).
 * (b) with one back-channel logout per session: expired sessions of a coordinated client whose
 *     `backchannel_logout_uri` is a loopback LogoutReceiver. Timed from `server.sweeper.runOnce()` until
 *     `server.backchannel.runOnce()` has returned and the receiver holds every logout token (the delivery worker
 *     also runs in the background during the sweep, as in production).
 * The table also holds live sessions (not due), as a real one does. Seeding is not measured. Logging is the
 * production default (info, one line per expired session), written to /dev/null.
 * Target (from the issue): ≥ 5,000 expired sessions per second without notifications on SQLite, with flat memory.
 */
import { decodeJwt } from 'jose';
import { pino } from 'pino';
import { QueryTypes, type Sequelize } from 'sequelize';
import { createServer, type GatehouseServer } from '../server/create-server.js';
import { LogoutReceiver } from '../test/helpers/relying-party.js';
import {
  BENCH_DIALECTS,
  createBenchDatabase,
  databaseVersion,
  planSummary,
  queryPlan,
  type BenchDialect,
} from './support/databases.js';
import { describeMachine, machineInfo } from './support/machine.js';
import { measureMemory, type MemoryReport } from './support/memory.js';
import {
  formatCount,
  heading,
  progress,
  table,
  targetLines,
  writeResults,
  type TargetResult,
} from './support/report.js';
import type { Scale } from './support/scale.js';
import type { SessionProfile } from './support/seed.js';
import { seedInChildProcess } from './support/seed-process.js';
import { runIsolated } from './support/isolated.js';
import { round } from './support/stats.js';

export const AREA = 'sweeper';

const TARGET_PER_SECOND = 5000;
/**
 * Flat memory: nothing is retained per session, in JavaScript (heap after a full GC, after vs before the sweep) or
 * natively (RSS − V8 heap reserve, over the second half of the sweep, so caches filled at the start do not count).
 * A leak of 0.3 KB per session would show as 30 MiB retained, or 15 MiB of second-half growth, over 100k sessions.
 */
const FLAT_RETAINED_HEAP_MIB = 16;
const FLAT_NATIVE_SECOND_HALF_MIB = 16;
const SAMPLE_INTERVAL_MS = 100;
/** Live (not yet due) sessions beside the expired ones, as a share of the expired count. */
const LIVE_SHARE = 0.1;

const PLAIN_CLIENT = 'plain';
const NOTIFIED_CLIENT = 'coord';

/**
 * Sizes: (a) without notifications (the memory run), per database; (b) sessions with a notification each. The default
 * keeps PostgreSQL's (a) smaller: it commits (fsyncs) once per session today, which makes it slow on a busy machine.
 */
function plan(scale: Scale): { withoutNotifications: Record<BenchDialect, number>; withNotifications: number } {
  return scale === 'full'
    ? { withoutNotifications: { sqlite: 1_000_000, postgres: 1_000_000 }, withNotifications: 20_000 }
    : { withoutNotifications: { sqlite: 100_000, postgres: 50_000 }, withNotifications: 3_000 };
}

interface SweepRun {
  dialect: BenchDialect;
  database: string;
  mode: 'without notifications' | 'one back-channel logout each';
  expiredSessions: number;
  liveSessions: number;
  swept: number;
  sweepSeconds: number;
  /** For (b): until every logout token arrived; for (a) the sweep itself. */
  totalSeconds: number;
  sessionsPerSecond: number;
  /** SQL statements the server sent per expired session (claims, deletes, revocations, outbox...). */
  statementsPerSession: number;
  notificationsDelivered?: number;
  deliveredDuringSweep?: number;
  memory?: MemoryReport;
  claimPlan?: string[];
}

export async function run(scale: Scale): Promise<void> {
  const machine = machineInfo();
  const sizes = plan(scale);
  const ran = BENCH_DIALECTS.map(
    (dialect) =>
      `${dialect}: (a) ${formatCount(sizes.withoutNotifications[dialect])} expired sessions without notifications, ` +
      `(b) ${formatCount(sizes.withNotifications)} with one back-channel logout each`,
  );
  progress(`${AREA}: scale ${scale}; ${ran.join('; ')}`);
  const runs: SweepRun[] = [];
  for (const dialect of BENCH_DIALECTS) {
    // Each database in its own process: its memory figures start from a clean process.
    runs.push(
      ...(await runIsolated<SweepRun[]>(import.meta.url, 'benchDialect', [
        dialect,
        sizes.withoutNotifications[dialect],
        sizes.withNotifications,
      ])),
    );
  }
  const loadAverageEnd = machineInfo().loadAverage;

  const targets = targetResults(runs);
  console.log(heading(`Expiry sweeper (whole server path) — ${describeMachine(machine)}`));
  console.log(`Scale: ${scale}. Ran: ${ran.join('; ')}.`);
  console.log(`Each table also held ${LIVE_SHARE * 100}% live sessions (not due).\n`);
  console.log(
    table(
      [
        'database',
        'mode',
        'expired',
        'swept',
        'sweep s',
        'total s',
        'sessions/s',
        'SQL/session',
        'delivered',
        'of which during sweep',
      ],
      runs.map((r) => [
        r.database,
        r.mode,
        r.expiredSessions,
        r.swept,
        r.sweepSeconds,
        r.totalSeconds,
        r.sessionsPerSecond,
        r.statementsPerSession,
        r.notificationsDelivered ?? null,
        r.deliveredDuringSweep ?? null,
      ]),
    ),
  );
  console.log(`\nMemory while sweeping without notifications (MiB; sampled every ${SAMPLE_INTERVAL_MS} ms)\n`);
  console.log(
    table(
      [
        'database',
        'expired',
        'RSS start',
        'peak',
        'end',
        'heap used start',
        'peak',
        'end',
        'heap after GC before',
        'after',
        'native start',
        'peak',
        'native growth 2nd half',
        'samples',
      ],
      runs
        .filter((r) => r.memory)
        .map((r) => {
          const m = r.memory!;
          return [
            r.database,
            r.expiredSessions,
            m.start.rssMiB,
            m.peakRssMiB,
            m.end.rssMiB,
            m.start.heapUsedMiB,
            m.peakHeapUsedMiB,
            m.end.heapUsedMiB,
            m.heapAfterGcStartMiB,
            m.heapAfterGcEndMiB,
            m.start.nativeMiB,
            m.peakNativeMiB,
            m.nativeGrowthSecondHalfMiB,
            m.samples,
          ];
        }),
    ),
  );
  console.log('\nClaim statement plans\n');
  for (const r of runs.filter((r) => r.claimPlan)) console.log(`${r.dialect.padEnd(8)} ${planSummary(r.claimPlan!)}`);
  console.log(`\nTargets\n\n${targetLines(targets)}`);
  const file = writeResults(AREA, {
    area: AREA,
    machine,
    loadAverageEnd,
    scale,
    ran,
    settings: {
      liveShare: LIVE_SHARE,
      sampleIntervalMs: SAMPLE_INTERVAL_MS,
      flatMemory: {
        maxRetainedHeapMiB: FLAT_RETAINED_HEAP_MIB,
        maxNativeGrowthSecondHalfMiB: FLAT_NATIVE_SECOND_HALF_MIB,
      },
      logging: 'info to /dev/null',
    },
    runs,
    targets,
  });
  console.log(`\nResults: ${file}`);
}

/** Both sweeps on one database; run through runIsolated (exported for it). */
export async function benchDialect(
  dialect: BenchDialect,
  plainCount: number,
  notifiedCount: number,
): Promise<SweepRun[]> {
  const database = await createBenchDatabase(dialect);
  const receiver = await new LogoutReceiver().start();
  let server: GatehouseServer | undefined;
  try {
    server = await createServer(
      {
        issuer: 'http://localhost:1',
        port: 0,
        database: { url: database.url },
        backchannelLogout: { allowPrivateNetworks: true },
        serverSideSessions: { enabled: true, removeExpiredSessions: false },
        clients: [
          {
            client_id: PLAIN_CLIENT,
            client_secret: 'plain-secret',
            redirect_uris: ['http://127.0.0.1:9/cb'],
            coordinateLifetimeWithUserSession: false,
          },
          {
            client_id: NOTIFIED_CLIENT,
            client_secret: 'coord-secret',
            redirect_uris: ['http://127.0.0.1:9/cb'],
            backchannel_logout_uri: receiver.url,
            coordinateLifetimeWithUserSession: true,
          },
        ],
      },
      {
        logger: pino(
          { level: 'info', base: { service: 'gatehouse' } },
          pino.destination({ dest: '/dev/null', sync: true }),
        ),
      },
    );
    const version = await databaseVersion(server.sequelize);
    let statements = 0;
    server.sequelize.addHook('beforeQuery', () => {
      statements++;
    });
    let swept = 0;
    server.events.on('session.expired', () => swept++);
    const runs: SweepRun[] = [];

    // (a) without notifications, with memory sampling.
    await seed(database.url, dialect, 'plain', PLAIN_CLIENT, plainCount);
    progress(`${dialect}: sweeping ${formatCount(plainCount)} expired sessions without notifications`);
    swept = 0;
    statements = 0;
    const started = process.hrtime.bigint();
    const { value: result, memory } = await measureMemory(
      SAMPLE_INTERVAL_MS,
      () => swept,
      () => server!.sweeper.runOnce(),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    await checkSwept(server.sequelize, result.sessions, plainCount, 'plain');
    // Taken after the sweep, through the server's own connection: the plan of the claims it just ran.
    const claimPlan = await claimStatementPlan(server.sequelize);
    runs.push({
      dialect,
      database: version,
      mode: 'without notifications',
      expiredSessions: plainCount,
      liveSessions: Math.round(plainCount * LIVE_SHARE),
      swept: result.sessions,
      sweepSeconds: round(seconds, 2),
      totalSeconds: round(seconds, 2),
      sessionsPerSecond: Math.round(result.sessions / seconds),
      statementsPerSession: round(statements / result.sessions, 2),
      memory,
      claimPlan,
    });
    progress(`${dialect}: ${Math.round(result.sessions / seconds)} sessions/s without notifications`);

    // (b) one back-channel logout per session, delivered to the loopback receiver.
    await seed(database.url, dialect, 'notified', NOTIFIED_CLIENT, notifiedCount);
    progress(`${dialect}: sweeping ${formatCount(notifiedCount)} expired sessions with a back-channel logout each`);
    statements = 0;
    const tokensBefore = receiver.tokens.length;
    const bStarted = process.hrtime.bigint();
    const bResult = await server.sweeper.runOnce();
    const sweepSeconds = Number(process.hrtime.bigint() - bStarted) / 1e9;
    const deliveredDuringSweep = receiver.tokens.length - tokensBefore;
    await server.backchannel.runOnce();
    await receiver.waitFor(tokensBefore + notifiedCount, 300_000);
    const totalSeconds = Number(process.hrtime.bigint() - bStarted) / 1e9;
    await checkSwept(server.sequelize, bResult.sessions, notifiedCount, 'notified');
    const sids = new Set(receiver.tokens.slice(tokensBefore).map((token) => String(decodeJwt(token).sid)));
    if (sids.size !== notifiedCount)
      throw new Error(`expected ${notifiedCount} distinct logout tokens, got ${sids.size}`);
    const outbox = await server.backchannel.outbox.countByStatus();
    if (outbox.failed || outbox.pending) throw new Error(`outbox not drained: ${JSON.stringify(outbox)}`);
    runs.push({
      dialect,
      database: version,
      mode: 'one back-channel logout each',
      expiredSessions: notifiedCount,
      liveSessions: Math.round(notifiedCount * LIVE_SHARE),
      swept: bResult.sessions,
      sweepSeconds: round(sweepSeconds, 2),
      totalSeconds: round(totalSeconds, 2),
      sessionsPerSecond: Math.round(notifiedCount / totalSeconds),
      statementsPerSession: round(statements / notifiedCount, 2),
      notificationsDelivered: sids.size,
      deliveredDuringSweep,
    });
    progress(`${dialect}: ${Math.round(notifiedCount / totalSeconds)} sessions/s with a back-channel logout each`);
    return runs;
  } finally {
    await server?.close();
    await receiver.close();
    await database.drop();
  }
}

/** Seeds `count` expired sessions of one client, plus LIVE_SHARE live ones, in a child process (see seed-process.ts). */
async function seed(
  url: string,
  dialect: BenchDialect,
  namespace: string,
  clientId: string,
  count: number,
): Promise<void> {
  progress(`${dialect}: seeding ${formatCount(count)} expired sessions (${namespace})`);
  const now = new Date();
  const expired: SessionProfile = {
    namespace: `${namespace}-expired`,
    now,
    state: 'expired',
    subjects: Math.ceil(count / 3),
    clientIds: [clientId],
  };
  const live: SessionProfile = { ...expired, namespace: `${namespace}-live`, state: 'live' };
  await seedInChildProcess(url, [
    { profile: expired, from: 0, count },
    { profile: live, from: 0, count: Math.round(count * LIVE_SHARE) },
  ]);
}

/** Every expired session of the namespace is gone; every live one is still there. */
async function checkSwept(sequelize: Sequelize, reported: number, expected: number, namespace: string): Promise<void> {
  if (reported !== expected)
    throw new Error(`${namespace}: the sweeper reported ${reported} sessions, expected ${expected}`);
  const [{ due }] = await sequelize.query<{ due: number | string }>(
    'SELECT COUNT(*) AS due FROM server_side_sessions WHERE expires < :now',
    { type: QueryTypes.SELECT, replacements: { now: new Date() } },
  );
  if (Number(due) !== 0) throw new Error(`${namespace}: ${due} expired sessions are still stored after the sweep`);
}

/** The plan of the store's claim statement (stores/sequelize/session-store.ts, #claim) on a seeded table. */
async function claimStatementPlan(sequelize: Sequelize): Promise<string[]> {
  const now = new Date();
  const sql = `UPDATE server_side_sessions SET claimed_until = :until WHERE session_id IN (
      SELECT session_id FROM server_side_sessions WHERE expires < :now AND (claimed_until IS NULL OR claimed_until <= :now)
      ORDER BY expires LIMIT 100${sequelize.getDialect() === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : ''}) RETURNING session_id`;
  return queryPlan(sequelize, sql, { now, until: new Date(now.getTime() + 120_000) });
}

function targetResults(runs: SweepRun[]): TargetResult[] {
  const sqlite = runs.find((r) => r.dialect === 'sqlite' && r.mode === 'without notifications');
  const throughput = `SQLite sweep without notifications ≥ ${formatCount(TARGET_PER_SECOND)} expired sessions/s`;
  const flat = `SQLite sweep memory flat (heap retained after GC ≤ ${FLAT_RETAINED_HEAP_MIB} MiB, native growth in 2nd half ≤ ${FLAT_NATIVE_SECOND_HALF_MIB} MiB)`;
  if (!sqlite?.memory)
    return [
      { target: throughput, value: 'not measured', status: 'NOT RUN' },
      { target: flat, value: 'not measured', status: 'NOT RUN' },
    ];
  const m = sqlite.memory;
  const isFlat =
    m.retainedHeapMiB <= FLAT_RETAINED_HEAP_MIB && m.nativeGrowthSecondHalfMiB <= FLAT_NATIVE_SECOND_HALF_MIB;
  return [
    {
      target: throughput,
      value: `${sqlite.sessionsPerSecond.toLocaleString('en-US')}/s over ${formatCount(sqlite.expiredSessions)}`,
      status: sqlite.sessionsPerSecond >= TARGET_PER_SECOND ? 'PASS' : 'MISS',
    },
    {
      target: flat,
      value:
        `retained heap ${m.retainedHeapMiB} MiB, native +${m.nativeGrowthSecondHalfMiB} MiB in 2nd half ` +
        `(RSS ${m.start.rssMiB} → peak ${m.peakRssMiB} → end ${m.end.rssMiB} MiB, native +${m.nativeGrowthMiB} MiB in all, ` +
        `heap used peak +${m.heapGrowthMiB} MiB) over ${formatCount(sqlite.expiredSessions)} sessions`,
      status: isFlat ? 'PASS' : 'MISS',
    },
  ];
}
