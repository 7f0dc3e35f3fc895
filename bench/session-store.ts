/**
 * Benchmark area `session-store`: SequelizeSessionStore on SQLite (file, WAL: the default deployment) and PostgreSQL.
 *
 * For each database and table size, on a fresh database seeded with realistic live sessions (not measured):
 * - lookup latency (p50/p99 over LOOKUPS random lookups, median of LOOKUP_ROUNDS rounds, after a warm-up) by key (`get`), by session id
 *   (`getBySessionId`) and by subject (`getSessions({ subjectId })`), with each statement's query plan;
 * - operations per second, one after another: create (new sessions), get (the by-key lookups above), update (a
 *   sliding renewal of a stored session, as SessionService.slide writes it).
 * Then each lookup's p99 at the largest size against the smallest, to show whether any cost grows with the table.
 * Target (from the issue): every lookup's p99 ≤ 2 ms at 1M records on SQLite. A miss is reported, never fatal.
 */
import type { Sequelize } from 'sequelize';
import { systemClock } from '../stores/clock.js';
import { openDatabase } from '../stores/sequelize/connection.js';
import { migrate } from '../stores/sequelize/migrate.js';
import { SequelizeSessionStore } from '../stores/sequelize/session-store.js';
import type { ServerSideSession, StoreLogger } from '../stores/session-store.js';
import {
  BENCH_DIALECTS,
  createBenchDatabase,
  databaseVersion,
  planSummary,
  queryPlan,
  type BenchDialect,
} from './support/databases.js';
import { describeMachine, machineInfo } from './support/machine.js';
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
import {
  openSeedingConnection,
  seedSessions,
  sessionRecord,
  settleAfterSeeding,
  withIndexesRebuiltAfter,
  type SessionProfile,
} from './support/seed.js';
import { round, seededRandom, summarize, timeSequential, type LatencySummary } from './support/stats.js';

export const AREA = 'session-store';

const WARMUP = 200;
/** Lookups are cheap: a longer warm-up, so the first size measured is not the one that warms up the JIT. */
const LOOKUP_WARMUP = 1000;
const OPERATIONS = 2000;
const LOOKUPS = 2000;
const LOOKUP_ROUNDS = 3;
const TARGET_P99_MS = 2;
const TARGET_RECORDS = 1_000_000;
const SESSIONS_PER_SUBJECT = 3;
/** One session in twenty is anonymous (a visitor who has not signed in yet). */
const ANONYMOUS_EVERY = 20;

const LOOKUP_KINDS = ['byKey', 'bySessionId', 'bySubject'] as const;
type LookupKind = (typeof LOOKUP_KINDS)[number];
const LOOKUP_LABELS: Record<LookupKind, string> = {
  byKey: 'get(key)',
  bySessionId: 'getBySessionId(id)',
  bySubject: 'getSessions({subjectId})',
};

/** The statements the store runs for each lookup (as in stores/sequelize/session-store.ts), for their query plans. */
const LOOKUP_SQL: Record<LookupKind, string> = {
  byKey: 'SELECT * FROM server_side_sessions WHERE "key" = :value',
  bySessionId: 'SELECT * FROM server_side_sessions WHERE session_id = :value',
  bySubject: 'SELECT * FROM server_side_sessions WHERE subject_id = :value ORDER BY created DESC, session_id DESC',
};

const silentLogger: StoreLogger = { debug() {}, info() {}, warn() {}, error() {} };

interface OperationResult extends LatencySummary {
  opsPerSecond: number;
  /** SQL statements sent per operation (transaction control and PRAGMAs included). */
  statementsPerOperation: number;
}

interface LookupResult extends LatencySummary {
  /**
   * CPU time of this process (JavaScript, driver, and SQLite's own work on SQLite) per lookup, median of the rounds.
   * It hardly moves when the machine is busy, while p99 does: a p99 far above it means waiting for a CPU.
   */
  cpuMsPerLookup: number;
  /** p99 of each round (the reported p50/p99/mean are medians over rounds; max is the largest of all). */
  p99MsByRound: number[];
  /** Average number of records a lookup returned (1 for key and session id). */
  recordsPerLookup: number;
  plan: string[];
}

interface SizeResult {
  dialect: BenchDialect;
  database: string;
  records: number;
  seedSeconds: number;
  operations: { create: OperationResult; get: OperationResult; update: OperationResult };
  lookups: Record<LookupKind, LookupResult>;
}

/** Which sizes run: SQLite 100k and 1M; PostgreSQL 100k, and 1M with BENCH_SCALE=full (its seeding is slow). */
function plan(scale: Scale): Record<BenchDialect, number[]> {
  return {
    sqlite: [100_000, 1_000_000],
    postgres: scale === 'full' ? [100_000, 1_000_000] : [100_000],
  };
}

export async function run(scale: Scale): Promise<void> {
  const machine = machineInfo();
  const sizes = plan(scale);
  const ran = BENCH_DIALECTS.map((dialect) => `${dialect}: ${sizes[dialect].map(formatCount).join(' + ')} records`);
  progress(`${AREA}: scale ${scale}; ${ran.join('; ')}`);
  const results: SizeResult[] = [];
  for (const dialect of BENCH_DIALECTS) {
    for (const records of sizes[dialect]) results.push(await benchSize(dialect, records));
  }

  const growth = growthRows(results);
  const targets = targetResults(results);
  console.log(heading(`Session store (SequelizeSessionStore) — ${describeMachine(machine)}`));
  console.log(
    `Scale: ${scale}. Ran: ${ran.join('; ')}.${scale === 'full' ? '' : ' BENCH_SCALE=full adds 1M on PostgreSQL.'}`,
  );
  console.log(`\nOperations per second (sequential; ${formatCount(OPERATIONS)} each after ${WARMUP} warm-up)\n`);
  console.log(
    table(
      [
        'database',
        'records',
        'create/s',
        'get/s',
        'update/s',
        'create p99 ms',
        'update p99 ms',
        'SQL per create/get/update',
      ],
      results.map((r) => {
        const { create, get, update } = r.operations;
        const statements = [create, get, update].map((o) => o.statementsPerOperation).join(' / ');
        return [
          r.database,
          r.records,
          create.opsPerSecond,
          get.opsPerSecond,
          update.opsPerSecond,
          create.p99Ms,
          update.p99Ms,
          statements,
        ];
      }),
    ),
  );
  console.log(
    `\nLookup latency in ms (${LOOKUP_ROUNDS} rounds of ${formatCount(LOOKUPS)} random lookups each, after ${LOOKUP_WARMUP} warm-up; ` +
      'p50/p99/mean: median of the rounds, max: of all)\n',
  );
  console.log(
    table(
      ['database', 'records', 'lookup', 'p50', 'p99', 'p99 by round', 'mean', 'max', 'CPU/lookup', 'records/lookup'],
      results.flatMap((r) =>
        LOOKUP_KINDS.map((kind) => {
          const l = r.lookups[kind];
          const byRound = l.p99MsByRound.map((p99) => p99.toFixed(2)).join(' ');
          return [
            r.database,
            r.records,
            LOOKUP_LABELS[kind],
            l.p50Ms,
            l.p99Ms,
            byRound,
            l.meanMs,
            l.maxMs,
            l.cpuMsPerLookup,
            l.recordsPerLookup,
          ];
        }),
      ),
    ),
  );
  console.log('\nQuery plans (largest size per database)\n');
  for (const dialect of BENCH_DIALECTS) {
    const largest = results.filter((r) => r.dialect === dialect).at(-1);
    if (!largest) continue;
    for (const kind of LOOKUP_KINDS)
      console.log(`${dialect.padEnd(8)} ${LOOKUP_LABELS[kind].padEnd(26)} ${planSummary(largest.lookups[kind].plan)}`);
  }
  console.log('\nGrowth of p99 with table size (ratio ≈ 1 means the cost does not grow with the table)\n');
  console.log(
    growth.length
      ? table(
          ['database', 'lookup', 'p99 ms small', 'p99 ms large', 'sizes', 'ratio'],
          growth.map((g) => [
            g.dialect,
            LOOKUP_LABELS[g.lookup],
            g.smallP99Ms,
            g.largeP99Ms,
            `${formatCount(g.smallRecords)} → ${formatCount(g.largeRecords)}`,
            g.ratio,
          ]),
        )
      : '(only one size ran per database)',
  );
  console.log(`\nTargets\n\n${targetLines(targets)}`);
  const file = writeResults(AREA, {
    area: AREA,
    machine,
    scale,
    ran,
    settings: {
      warmup: WARMUP,
      lookupWarmup: LOOKUP_WARMUP,
      operations: OPERATIONS,
      lookups: LOOKUPS,
      lookupRounds: LOOKUP_ROUNDS,
      sessionsPerSubject: SESSIONS_PER_SUBJECT,
      anonymousEvery: ANONYMOUS_EVERY,
    },
    results,
    growth,
    targets,
  });
  console.log(`\nResults: ${file}`);
}

async function benchSize(dialect: BenchDialect, records: number): Promise<SizeResult> {
  const database = await createBenchDatabase(dialect);
  try {
    const profile: SessionProfile = {
      namespace: `live-${records}`,
      now: new Date(),
      state: 'live',
      subjects: Math.ceil(records / SESSIONS_PER_SUBJECT),
      anonymousEvery: ANONYMOUS_EVERY,
    };
    const seeding = await openSeedingConnection(database.url);
    let seedMs: number;
    try {
      await migrate(seeding);
      progress(`${dialect} ${formatCount(records)}: seeding`);
      const seedStarted = Date.now();
      await withIndexesRebuiltAfter(seeding, () =>
        seedSessions(seeding, profile, 0, records, {
          onProgress: (done) => {
            if (done % 200_000 === 0 && done < records)
              progress(`${dialect} ${formatCount(records)}: seeded ${formatCount(done)}`);
          },
        }),
      );
      await settleAfterSeeding(seeding);
      seedMs = Date.now() - seedStarted;
    } finally {
      await seeding.close();
    }
    progress(`${dialect} ${formatCount(records)}: seeded in ${Math.round(seedMs / 1000)} s; measuring`);

    // The measured connection opens as the server opens it (openDatabase: WAL, default page cache on SQLite).
    const sequelize = await openDatabase({ url: database.url });
    try {
      const store = new SequelizeSessionStore({ sequelize, clock: systemClock, logger: silentLogger });
      const counter = { statements: 0 };
      sequelize.addHook('beforeQuery', () => {
        counter.statements++;
      });
      const lookups = await measureLookups(sequelize, store, profile, records, counter);
      const create = await measureCreates(store, profile, counter);
      const update = await measureUpdates(store, profile, records, counter);
      return {
        dialect,
        database: await databaseVersion(sequelize),
        records,
        seedSeconds: round(seedMs / 1000, 1),
        operations: { create, get: lookups.getOperations, update },
        lookups: lookups.results,
      };
    } finally {
      await sequelize.close();
    }
  } finally {
    await database.drop();
  }
}

type Counter = { statements: number };

async function measureLookups(
  sequelize: Sequelize,
  store: SequelizeSessionStore,
  profile: SessionProfile,
  records: number,
  counter: Counter,
) {
  const random = seededRandom(records);
  // Targets are picked and rebuilt before timing: the loop only calls the store.
  const pickSeeded = (count: number, signedIn: boolean): ServerSideSession[] => {
    const picked: ServerSideSession[] = [];
    while (picked.length < count) {
      const session = sessionRecord(profile, Math.floor(random() * records));
      if (!signedIn || session.subjectId) picked.push(session);
    }
    return picked;
  };
  const lookup: Record<LookupKind, (session: ServerSideSession) => Promise<number>> = {
    byKey: async (session) => ((await store.get(session.key)) ? 1 : 0),
    bySessionId: async (session) => ((await store.getBySessionId(session.sessionId)) ? 1 : 0),
    bySubject: async (session) => (await store.getSessions({ subjectId: session.subjectId! })).length,
  };
  for (const kind of LOOKUP_KINDS) {
    for (const session of pickSeeded(LOOKUP_WARMUP, kind === 'bySubject')) await lookup[kind](session);
  }
  // Rounds take turns between the kinds, so a burst of load from elsewhere on the machine lands in one round of one
  // kind rather than in every sample of one kind; each figure is the median of the rounds.
  const rounds: Record<
    LookupKind,
    { summary: LatencySummary; found: number; totalMs: number; cpuMs: number; statements: number }[]
  > = {
    byKey: [],
    bySessionId: [],
    bySubject: [],
  };
  for (let pass = 0; pass < LOOKUP_ROUNDS; pass++) {
    for (const kind of LOOKUP_KINDS) {
      const measured = pickSeeded(LOOKUPS, kind === 'bySubject');
      let found = 0;
      counter.statements = 0;
      const cpuBefore = process.cpuUsage();
      const { samplesMs, totalMs } = await timeSequential(LOOKUPS, async (i) => {
        found += await lookup[kind](measured[i]);
      });
      const cpu = process.cpuUsage(cpuBefore);
      const cpuMs = (cpu.user + cpu.system) / 1000;
      if (kind !== 'bySubject' && found !== LOOKUPS)
        throw new Error(`${kind}: ${LOOKUPS - found} seeded sessions were not found`);
      rounds[kind].push({ summary: summarize(samplesMs), found, totalMs, cpuMs, statements: counter.statements });
    }
  }
  const results = {} as Record<LookupKind, LookupResult>;
  for (const kind of LOOKUP_KINDS) {
    const of = (field: keyof LatencySummary) => rounds[kind].map((r) => r.summary[field]);
    const sample = pickSeeded(1, kind === 'bySubject')[0];
    const value = kind === 'byKey' ? sample.key : kind === 'bySessionId' ? sample.sessionId : sample.subjectId;
    results[kind] = {
      count: LOOKUPS * LOOKUP_ROUNDS,
      meanMs: median(of('meanMs')),
      p50Ms: median(of('p50Ms')),
      p99Ms: median(of('p99Ms')),
      maxMs: Math.max(...of('maxMs')),
      p99MsByRound: of('p99Ms'),
      cpuMsPerLookup: median(rounds[kind].map((r) => round(r.cpuMs / LOOKUPS))),
      recordsPerLookup: round(rounds[kind].reduce((sum, r) => sum + r.found, 0) / (LOOKUPS * LOOKUP_ROUNDS), 2),
      plan: await queryPlan(sequelize, LOOKUP_SQL[kind], { value }),
    };
  }
  const byKey = rounds.byKey;
  const lookupsByKey = LOOKUPS * byKey.length;
  const getOperations: OperationResult = {
    ...results.byKey,
    opsPerSecond: Math.round((lookupsByKey / byKey.reduce((sum, r) => sum + r.totalMs, 0)) * 1000),
    statementsPerOperation: round(byKey.reduce((sum, r) => sum + r.statements, 0) / lookupsByKey, 2),
  };
  return { results, getOperations };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : round((sorted[middle - 1] + sorted[middle]) / 2);
}

/** New sessions (one or two clients each), as a login stores them. */
async function measureCreates(
  store: SequelizeSessionStore,
  seeded: SessionProfile,
  counter: Counter,
): Promise<OperationResult> {
  const profile: SessionProfile = { ...seeded, namespace: `${seeded.namespace}-new`, now: new Date() };
  for (let i = 0; i < WARMUP; i++) await store.create(sessionRecord(profile, i));
  const sessions = Array.from({ length: OPERATIONS }, (_, i) => sessionRecord(profile, WARMUP + i));
  counter.statements = 0;
  const { samplesMs, totalMs } = await timeSequential(OPERATIONS, (i) => store.create(sessions[i]));
  return operationResult(samplesMs, totalMs, counter);
}

/** A sliding renewal of a stored session (renewed, expires, last IP, payload exp), as SessionService.slide writes it. */
async function measureUpdates(
  store: SequelizeSessionStore,
  profile: SessionProfile,
  records: number,
  counter: Counter,
): Promise<OperationResult> {
  const random = seededRandom(records + 1);
  const indexes = new Set<number>();
  while (indexes.size < WARMUP + OPERATIONS) indexes.add(Math.floor(random() * records));
  const renewals: ServerSideSession[] = [];
  for (const index of indexes) {
    const stored = await store.get(sessionRecord(profile, index).key);
    if (!stored) throw new Error(`update: seeded session ${index} was not found`);
    const now = Date.now();
    const expires = now + 10 * 3_600_000;
    renewals.push({
      ...stored,
      renewed: new Date(now),
      expires: new Date(expires),
      lastIp: '192.0.2.10',
      data: { ...stored.data, exp: Math.floor(expires / 1000) },
    });
  }
  for (const session of renewals.slice(0, WARMUP)) await store.update(session);
  const measured = renewals.slice(WARMUP);
  counter.statements = 0;
  const { samplesMs, totalMs } = await timeSequential(OPERATIONS, (i) => store.update(measured[i]));
  return operationResult(samplesMs, totalMs, counter);
}

function operationResult(samplesMs: number[], totalMs: number, counter: Counter): OperationResult {
  return {
    ...summarize(samplesMs),
    opsPerSecond: Math.round((samplesMs.length / totalMs) * 1000),
    statementsPerOperation: round(counter.statements / samplesMs.length, 2),
  };
}

interface GrowthRow {
  dialect: BenchDialect;
  lookup: LookupKind;
  smallRecords: number;
  largeRecords: number;
  smallP99Ms: number;
  largeP99Ms: number;
  ratio: number;
}

function growthRows(results: SizeResult[]): GrowthRow[] {
  const rows: GrowthRow[] = [];
  for (const dialect of BENCH_DIALECTS) {
    const sized = results.filter((r) => r.dialect === dialect).sort((a, b) => a.records - b.records);
    if (sized.length < 2) continue;
    const [small, large] = [sized[0], sized[sized.length - 1]];
    for (const lookup of LOOKUP_KINDS) {
      rows.push({
        dialect,
        lookup,
        smallRecords: small.records,
        largeRecords: large.records,
        smallP99Ms: small.lookups[lookup].p99Ms,
        largeP99Ms: large.lookups[lookup].p99Ms,
        ratio: round(large.lookups[lookup].p99Ms / small.lookups[lookup].p99Ms, 2),
      });
    }
  }
  return rows;
}

function targetResults(results: SizeResult[]): TargetResult[] {
  const atTarget = results.find((r) => r.dialect === 'sqlite' && r.records === TARGET_RECORDS);
  return LOOKUP_KINDS.map((kind) => {
    const target = `SQLite ${LOOKUP_LABELS[kind]} p99 ≤ ${TARGET_P99_MS} ms at ${formatCount(TARGET_RECORDS)} records`;
    if (!atTarget) return { target, value: 'not measured', status: 'NOT RUN' as const };
    const p99 = atTarget.lookups[kind].p99Ms;
    return { target, value: `${p99} ms`, status: p99 <= TARGET_P99_MS ? ('PASS' as const) : ('MISS' as const) };
  });
}
