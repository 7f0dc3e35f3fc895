/**
 * Gatehouse side by side with what an oidc-provider user would deploy instead (`npx tsx bench/compare.ts`,
 * `npm run bench -- compare`).
 *
 * Six servers, each in its own child process on loopback, so the CPU and RSS read from /proc are the server's own:
 *   - Gatehouse on SQLite (a file, WAL), server-side sessions on, started with its compiled CLI (dist/, built first);
 *   - Gatehouse on PostgreSQL (a database created and dropped for the run), server-side sessions on;
 *   - oidc-provider 9 + a Redis adapter (bench/compare/peers/redis-adapter.ts) on a redis-server the bench starts;
 *   - oidc-provider 9 + a Sequelize adapter (bench/compare/peers/sequelize-adapter.ts) on SQLite (a file, WAL);
 *   - the same on PostgreSQL;
 *   - oidc-provider 9 with its in-memory adapter: a reference column (nothing durable, nothing shared).
 * The oidc-provider peers share one server (bench/compare/peer-server.ts) with a minimal login/consent handler. Same
 * clients, same RS256 key, same users (scrypt log2N 10, so a login measures the server, not the KDF), the same bench
 * API (client-credentials tokens for it are RS256 JWTs: Gatehouse's `apis[]`, the peers' resourceIndicators).
 *
 * One loopback load generator (fixed concurrency) drives each operation on each server: a warm-up, then the measured
 * time split into rounds that alternate between the servers (the machine is shared: a busy minute then hits all of them
 * alike). Per operation and server: operations/s, p50/p99 latency, server CPU seconds per 1,000 operations
 * (/proc/<pid>/stat utime+stime before and after each round), plus the database's CPU where it is a server of its own
 * (PostgreSQL backends of that database, the Redis server's process): "system CPU" compares whole systems; peak RSS.
 * Ratios: each Gatehouse server's ops/s and system CPU per operation against each peer.
 * Work per operation: SQL statements, commits and round trips of each Gatehouse flow (login flow, client credentials
 * opaque and JWT, refresh, userinfo, introspection, logout), counted at the database gateway (bench/compare/work-count.ts).
 * Then: logins/s at the production hash cost on a Gatehouse SQLite configured with the default passwordHashing (Gatehouse
 * re-hashes at the configured cost on sign-in; the stored cost is checked after the run); the RSS of a Gatehouse (SQLite)
 * serving logins and admin queries with 1M server-side sessions in its database (seeding is short enough that it
 * runs by default; its time: bench/README.md); start-up time of `npx tsx server/cli.ts start` (and of
 * dist/server/cli.js when built).
 *
 * Targets: RSS with 1M sessions ≤ 250 MB; start-up ≤ 2 s (PASS/MISS, never fatal). The throughput ratios against the
 * in-memory adapter no longer have targets (issue #18); ratios against the durable peers are reported without targets
 * for now.
 *
 * Environment: BENCH_COMPARE_SECONDS (measured seconds per operation and server, default 10; 30 with BENCH_SCALE=full),
 * BENCH_COMPARE_WARMUP_SECONDS (3), BENCH_COMPARE_CONCURRENCY (8), BENCH_COMPARE_ROUNDS (4), BENCH_COMPARE_SESSIONS
 * (records for the RSS measurement, default 1000000), BENCH_COMPARE_LOG_LEVEL (Gatehouse's logging.level, default
 * info, the production default; the request log goes to /dev/null), BENCH_COMPARE_ONLY (comma-separated operations;
 * skips the extra measurements and writes compare-partial.json), BENCH_COMPARE_SERVERS (comma-separated server keys,
 * default all; also a partial run), BENCH_COMPARE_COUNT_BATCHES (batches of the work count, default 5),
 * BENCH_COMPARE_PROFILE (a directory: every server process runs with --cpu-prof and writes its profile there on exit;
 * summarize with bench/compare/profile-summary.ts), BENCH_COMPARE_SOURCE=1 (run Gatehouse from its TypeScript source
 * through tsx instead of the compiled package that the run builds first).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { openDatabase } from '../stores/sequelize/connection.js';
import { createBenchDatabase, databaseVersion, type BenchDatabase } from './support/databases.js';
import { describeMachine, machineInfo } from './support/machine.js';
import { middlewareTarget, throughputTargets, workTargets } from './compare/issue-targets.js';
import {
  formatCount,
  heading,
  progress,
  RESULTS_DIR,
  table,
  targetLines,
  writeResults,
  type Cell,
  type TargetResult,
} from './support/report.js';
import { benchScale, type Scale } from './support/scale.js';
import { round, summarize } from './support/stats.js';
import { QueryTypes } from 'sequelize';
import {
  createFixtures,
  LOGIN_SCOPE,
  OFFLINE_SCOPE,
  PRODUCTION_HASHING,
  type PeerStorage,
  type SharedFixtures,
} from './compare/fixtures.js';
import { Driver, type SignedIn } from './compare/flows.js';
import { measureLargeStore, type LargeStoreResult } from './compare/large-store.js';
import { runLoad } from './compare/load.js';
import { PgBackends } from './compare/pg-backends.js';
import { cpuSeconds, peakRssMiB, rssMiB, sampleRss } from './compare/proc.js';
import { redisServerAvailable, startRedisServer, type RedisServer } from './compare/redis-server.js';
import { REPO_ROOT, startGatehouse, startPeer, type ServerHandle } from './compare/servers.js';
import { measureStartup, type StartupResult } from './compare/startup.js';
import { barChartSvg, type ChartPanel } from './compare/svg.js';
import { countWork, type WorkCount } from './compare/work-count.js';

export const AREA = 'compare';

type ServerKey =
  | 'gatehouse-sqlite'
  | 'gatehouse-postgres'
  | 'redis-adapter'
  | 'sequelize-sqlite'
  | 'sequelize-postgres'
  | 'memory';
type GatehouseKey = 'gatehouse-sqlite' | 'gatehouse-postgres';
type OperationKey =
  | 'login'
  | 'client_credentials'
  | 'client_credentials_jwt'
  | 'refresh'
  | 'userinfo'
  | 'introspection'
  | 'discovery';
type CountedKey = OperationKey | 'logout';

interface ServerSpec {
  key: ServerKey;
  label: string;
  /** What the server keeps its state in. */
  storage: 'sqlite' | 'postgres' | 'redis' | 'memory';
  gatehouse: boolean;
}

const SERVERS: ServerSpec[] = [
  { key: 'gatehouse-sqlite', label: 'Gatehouse SQLite', storage: 'sqlite', gatehouse: true },
  { key: 'gatehouse-postgres', label: 'Gatehouse PostgreSQL', storage: 'postgres', gatehouse: true },
  { key: 'redis-adapter', label: 'oidc-provider + Redis adapter', storage: 'redis', gatehouse: false },
  { key: 'sequelize-sqlite', label: 'oidc-provider + Sequelize adapter, SQLite', storage: 'sqlite', gatehouse: false },
  {
    key: 'sequelize-postgres',
    label: 'oidc-provider + Sequelize adapter, PostgreSQL',
    storage: 'postgres',
    gatehouse: false,
  },
  { key: 'memory', label: 'oidc-provider in memory (reference)', storage: 'memory', gatehouse: false },
];
const GATEHOUSE: GatehouseKey[] = ['gatehouse-sqlite', 'gatehouse-postgres'];
const PEERS: ServerKey[] = ['redis-adapter', 'sequelize-sqlite', 'sequelize-postgres', 'memory'];
const SHORT: Record<ServerKey, string> = {
  'gatehouse-sqlite': 'GH SQLite',
  'gatehouse-postgres': 'GH PG',
  'redis-adapter': 'Redis adapter',
  'sequelize-sqlite': 'SQL adapter SQLite',
  'sequelize-postgres': 'SQL adapter PG',
  memory: 'in memory',
};

/** Operations in the order they run. */
const OPERATIONS: { key: OperationKey; label: string }[] = [
  { key: 'login', label: 'login flow' },
  { key: 'client_credentials', label: 'client_credentials' },
  { key: 'client_credentials_jwt', label: 'client_credentials, JWT for an API' },
  { key: 'refresh', label: 'refresh' },
  { key: 'userinfo', label: 'userinfo' },
  { key: 'introspection', label: 'introspection' },
  // No storage on any server: what Gatehouse adds around the provider (the middleware target, compare/issue-targets.ts).
  { key: 'discovery', label: 'discovery document' },
];
/** Flows whose database work is counted, with operations per batch (each batch one after another). */
const COUNTED: { key: CountedKey; label: string; perBatch: number }[] = [
  { key: 'login', label: 'login flow', perBatch: 8 },
  { key: 'client_credentials', label: 'client_credentials', perBatch: 30 },
  { key: 'client_credentials_jwt', label: 'client_credentials, JWT for an API', perBatch: 30 },
  { key: 'refresh', label: 'refresh', perBatch: 30 },
  { key: 'userinfo', label: 'userinfo', perBatch: 30 },
  { key: 'introspection', label: 'introspection', perBatch: 30 },
  { key: 'logout', label: 'logout (RP-initiated, confirmed)', perBatch: 8 },
];

const PROD_LOGIN_LABEL = 'login flow, argon2id m=19456,t=2,p=1';
/** The issue's 250 MB (decimal megabytes), in MiB as /proc reports RSS. */
const RSS_TARGET_MB = 250;
const RSS_TARGET_MIB = (RSS_TARGET_MB * 1e6) / 1048576;
const STARTUP_TARGET_MS = 2000;
const STARTUP_RUNS = 3;
const LARGE_STORE_LOGIN_SECONDS = 5;
/** Keycloak 26 sizing guide, per vCPU (shared/reference/local-idp-anchors.md). */
const KEYCLOAK = { passwordLoginsPerVcpu: 15, refreshPerVcpu: 120, clientCredentialsPerVcpu: 120 };

interface Settings {
  seconds: number;
  warmupSeconds: number;
  concurrency: number;
  rounds: number;
  sessions: number;
  logLevel: string;
  countBatches: number;
  only?: OperationKey[];
  servers?: ServerKey[];
  profileDir?: string;
  /** How Gatehouse runs: `compiled` (dist/, built at the start of the run: what the package ships) or `source` (tsx). */
  gatehouse: 'compiled' | 'source';
}

interface Measurement {
  operation: string;
  server: ServerKey | 'gatehouse-sqlite-prod-hash';
  operations: number;
  errors: number;
  seconds: number;
  opsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  cpuSeconds: number;
  /** The server process's CPU per 1,000 operations. */
  cpuSecondsPer1k: number;
  /** The database server's CPU per 1,000 operations (PostgreSQL backends of this database, the Redis server). */
  dbCpuSecondsPer1k?: number;
  /** Server + database server CPU per 1,000 operations (the whole system; = cpuSecondsPer1k without one). */
  systemCpuSecondsPer1k: number;
  /** PostgreSQL transactions (autocommit statements or BEGIN…COMMIT blocks) per operation (PostgreSQL servers only). */
  dbTransactionsPerOperation?: number;
  peakRssMiB: number;
  firstError?: string;
}

interface Ratio {
  operation: OperationKey;
  server: GatehouseKey;
  peer: ServerKey;
  /** Gatehouse ops/s ÷ peer ops/s. */
  throughput: number;
  /** Peer system CPU per operation ÷ Gatehouse system CPU per operation (> 1: Gatehouse is cheaper). */
  cpuEfficiency: number;
}

interface WorkRow extends WorkCount {
  operation: CountedKey;
  server: GatehouseKey;
}

function intEnv(name: string, fallback: number): number {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) throw new Error(`${name}: expected a positive number, got "${value}"`);
  return number;
}

function listEnv<T extends string>(name: string, known: readonly T[]): T[] | undefined {
  const list = process.env[name]
    ?.split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  const unknown = list?.filter((item) => !(known as readonly string[]).includes(item));
  if (unknown?.length) throw new Error(`${name}: unknown ${unknown.join(', ')} (known: ${known.join(', ')})`);
  return list?.length ? (list as T[]) : undefined;
}

function readSettings(scale: Scale): Settings {
  return {
    seconds: intEnv('BENCH_COMPARE_SECONDS', scale === 'full' ? 30 : 10),
    warmupSeconds: intEnv('BENCH_COMPARE_WARMUP_SECONDS', 3),
    concurrency: Math.round(intEnv('BENCH_COMPARE_CONCURRENCY', 8)),
    rounds: Math.round(intEnv('BENCH_COMPARE_ROUNDS', 4)),
    sessions: Math.round(intEnv('BENCH_COMPARE_SESSIONS', 1_000_000)),
    logLevel: process.env.BENCH_COMPARE_LOG_LEVEL || 'info',
    countBatches: Math.round(intEnv('BENCH_COMPARE_COUNT_BATCHES', 5)),
    only: listEnv(
      'BENCH_COMPARE_ONLY',
      OPERATIONS.map((operation) => operation.key),
    ),
    servers: listEnv(
      'BENCH_COMPARE_SERVERS',
      SERVERS.map((server) => server.key),
    ),
    profileDir: process.env.BENCH_COMPARE_PROFILE ? resolve(process.env.BENCH_COMPARE_PROFILE) : undefined,
    gatehouse: process.env.BENCH_COMPARE_SOURCE === '1' ? 'source' : 'compiled',
  };
}

/** CPU of the database server behind a target, when it is a process of its own. */
interface DatabaseMeter {
  /** pid → CPU seconds so far. */
  snapshot(): Promise<Map<number, number>>;
  /** PostgreSQL: transactions so far in this database. */
  transactions?(): Promise<number>;
  close(): Promise<void>;
}

/** The Redis server's own process. */
function processMeter(pid: number): DatabaseMeter {
  return {
    snapshot: async () => new Map([[pid, cpuSeconds(pid)]]),
    close: async () => undefined,
  };
}

/** One server under test: its process, its load generator, and the per-phase meters. */
interface Target {
  key: ServerKey;
  label: string;
  handle: ServerHandle;
  driver: Driver;
  db?: DatabaseMeter;
  database?: string;
}

/** Accumulates a (operation, server) measurement over its rounds. */
class Accumulator {
  operations = 0;
  errors = 0;
  seconds = 0;
  cpu = 0;
  dbCpu = 0;
  dbTransactions = 0;
  peakRss = 0;
  samples: number[] = [];
  firstError?: string;

  result(
    operation: string,
    server: Measurement['server'],
    meters: { dbCpu: boolean; transactions: boolean },
  ): Measurement {
    const latency = summarize(this.samples.length ? this.samples : [Number.NaN]);
    const per1k = (seconds: number) => (this.operations ? round((seconds / this.operations) * 1000, 3) : Number.NaN);
    return {
      operation,
      server,
      operations: this.operations,
      errors: this.errors,
      seconds: round(this.seconds, 2),
      opsPerSecond: round(this.operations / this.seconds, 1),
      p50Ms: latency.p50Ms,
      p99Ms: latency.p99Ms,
      meanMs: latency.meanMs,
      cpuSeconds: round(this.cpu, 2),
      cpuSecondsPer1k: per1k(this.cpu),
      ...(meters.dbCpu ? { dbCpuSecondsPer1k: per1k(this.dbCpu) } : {}),
      systemCpuSecondsPer1k: per1k(this.cpu + (meters.dbCpu ? this.dbCpu : 0)),
      ...(meters.transactions
        ? { dbTransactionsPerOperation: this.operations ? round(this.dbTransactions / this.operations, 2) : Number.NaN }
        : {}),
      peakRssMiB: this.peakRss,
      firstError: this.firstError,
    };
  }
}

/** One measured stretch of `operation` on `target`, added to `into`. */
async function measure(
  target: Target,
  concurrency: number,
  ms: number,
  operation: (worker: number) => Promise<unknown>,
  into: Accumulator,
): Promise<void> {
  // PostgreSQL backends publish their statistics about a second after they go idle.
  const counting = Boolean(target.db?.transactions);
  const settle = () => new Promise((resolve) => setTimeout(resolve, 1200));
  if (counting) await settle();
  const xactsBefore = await target.db?.transactions?.();
  const dbBefore = await target.db?.snapshot();
  const rss = sampleRss(target.handle.pid);
  const cpuBefore = cpuSeconds(target.handle.pid);
  const load = await runLoad(concurrency, ms, operation);
  const cpuAfter = cpuSeconds(target.handle.pid);
  const peak = rss.stop();
  const dbAfter = await target.db?.snapshot();
  if (counting) {
    await settle();
    // Less the two statements of this meter itself (the snapshot and the first count).
    into.dbTransactions += (await target.db!.transactions!()) - xactsBefore! - 2;
  }
  into.operations += load.operations;
  into.errors += load.errors;
  into.seconds += load.seconds;
  into.cpu += cpuAfter - cpuBefore;
  if (dbBefore && dbAfter) into.dbCpu += PgBackends.used(dbBefore, dbAfter);
  into.peakRss = Math.max(into.peakRss, peak);
  for (const sample of load.samplesMs) into.samples.push(sample);
  into.firstError ??= load.firstError;
}

function operationFor(
  key: OperationKey,
  target: Target,
  fixtures: SharedFixtures,
): (worker: number) => Promise<unknown> {
  const bench = fixtures.users.find((user) => user.subject === 'bench')!;
  switch (key) {
    case 'login':
      return () => target.driver.loginFlow(bench, { scope: LOGIN_SCOPE });
    case 'client_credentials':
      return () => target.driver.clientCredentials();
    case 'client_credentials_jwt':
      return () => target.driver.clientCredentialsJwt();
    case 'refresh':
      return (worker) => target.driver.refresh(worker);
    case 'userinfo':
      return (worker) => target.driver.userinfo(worker);
    case 'introspection':
      return (worker) => target.driver.introspect(worker);
    case 'discovery':
      return () => target.driver.discoveryDocument();
  }
}

/** Each worker's own user, login with offline_access and consent: its refresh token chain. */
async function startChains(target: Target, fixtures: SharedFixtures, concurrency: number): Promise<void> {
  await Promise.all(
    Array.from({ length: concurrency }, (_, worker) =>
      target.driver.startChain(
        worker,
        fixtures.users.find((user) => user.subject === `bench-w${worker + 1}`)!,
        OFFLINE_SCOPE,
      ),
    ),
  );
}

/** Starts one server of the comparison, with the database or Redis server it needs. */
async function startTarget(
  spec: ServerSpec,
  context: {
    fixtures: SharedFixtures;
    workDir: string;
    settings: Settings;
    nodeArgs: string[];
    compiled: boolean;
    databases: BenchDatabase[];
    redis: () => Promise<RedisServer>;
  },
): Promise<Target> {
  const { fixtures, workDir, settings, nodeArgs, compiled, databases } = context;
  let handle: ServerHandle;
  let db: DatabaseMeter | undefined;
  let database: string;
  if (spec.storage === 'memory') {
    handle = await startPeer({ name: spec.key, fixtures, workDir, storage: { adapter: 'memory' }, nodeArgs });
    database = 'in-memory (oidc-provider MemoryAdapter)';
  } else if (spec.storage === 'redis') {
    const redis = await context.redis();
    handle = await startPeer({
      name: spec.key,
      fixtures,
      workDir,
      storage: { adapter: 'redis', url: redis.url },
      nodeArgs,
    });
    db = processMeter(redis.pid);
    database = `Redis ${redis.version} (its own redis-server, append-only file, fsync every second)`;
  } else {
    const created = await createBenchDatabase(spec.storage);
    databases.push(created);
    const storage: PeerStorage = { adapter: 'sequelize', url: created.url };
    handle = spec.gatehouse
      ? await startGatehouse({
          name: spec.key,
          databaseUrl: created.url,
          fixtures,
          workDir,
          logLevel: settings.logLevel,
          nodeArgs,
          compiled,
          metrics: true,
        })
      : await startPeer({ name: spec.key, fixtures, workDir, storage, nodeArgs });
    const sequelize = await openDatabase({ url: created.url });
    try {
      database = await databaseVersion(sequelize);
    } finally {
      await sequelize.close();
    }
    if (spec.storage === 'postgres') db = await PgBackends.connect(created.url);
  }
  const driver = new Driver(handle.issuer, settings.concurrency * 2);
  await driver.discover();
  return { key: spec.key, label: spec.label, handle, driver, db, database };
}

/** Counts the database work of every flow on a Gatehouse target (its metrics: the gateway's counters). */
async function countFlows(target: Target, fixtures: SharedFixtures, batches: number): Promise<WorkRow[]> {
  const bench = fixtures.users.find((user) => user.subject === 'bench')!;
  const rows: WorkRow[] = [];
  for (const flow of COUNTED) {
    const operation = flow.key === 'logout' ? undefined : operationFor(flow.key, target, fixtures);
    const counted = await countWork<SignedIn>(target.handle.metricsUrl!, {
      batches,
      perBatch: flow.perBatch,
      prepare:
        flow.key === 'logout'
          ? (count) => Promise.all(Array.from({ length: count }, () => target.driver.signIn(bench, LOGIN_SCOPE)))
          : undefined,
      operation: (_index, signedIn) => (signedIn ? target.driver.logout(signedIn) : operation!(0)),
    });
    rows.push({ operation: flow.key, server: target.key as GatehouseKey, ...counted });
    progress(
      `work per ${flow.label} on ${target.label}: ${counted.statements} statements (${counted.reads} reads, ${counted.writes} writes), ${counted.commits} commits, ${counted.roundTrips} round trips`,
    );
  }
  return rows;
}

export async function run(scale: Scale): Promise<void> {
  const settings = readSettings(scale);
  const machine = machineInfo();
  const partial = Boolean(settings.only || settings.servers);
  const operations = OPERATIONS.filter((operation) => !settings.only || settings.only.includes(operation.key));
  let servers = SERVERS.filter((server) => !settings.servers || settings.servers.includes(server.key));
  const redisMissing = servers.some((server) => server.storage === 'redis') && !redisServerAvailable();
  if (redisMissing) {
    progress(`${AREA}: redis-server is not installed: the Redis peer is left out`);
    servers = servers.filter((server) => server.storage !== 'redis');
  }
  const oidcProviderVersion = (createRequire(import.meta.url)('oidc-provider/package.json') as { version: string })
    .version;
  const workDir = mkdtempSync(join(tmpdir(), 'gatehouse-compare-'));
  const nodeArgs = settings.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${settings.profileDir}`] : [];
  if (settings.profileDir) mkdirSync(settings.profileDir, { recursive: true });
  progress(
    `${AREA}: ${operations.length} operations × ${servers.length} servers, ${settings.warmupSeconds} s warm-up + ${settings.seconds} s measured each ` +
      `(${settings.rounds} alternating rounds), concurrency ${settings.concurrency}; Gatehouse log level ${settings.logLevel}` +
      (settings.profileDir ? `; CPU profiles to ${settings.profileDir}` : ''),
  );

  const compiled = settings.gatehouse === 'compiled';
  if (compiled && servers.some((server) => server.gatehouse)) {
    // What users run: the compiled package. From the TypeScript source (tsx), Node's source-map support rewrites the
    // stack Sequelize captures on every query, which costs the source far more than the shipped code.
    progress(`${AREA}: building dist/ (scripts/build.ts) to measure the compiled Gatehouse`);
    const build = spawnSync(process.execPath, [...process.execArgv, join(REPO_ROOT, 'scripts', 'build.ts')], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    if (build.status !== 0)
      throw new Error(
        `building dist/ failed (exit ${build.status}); BENCH_COMPARE_SOURCE=1 measures the TypeScript source`,
      );
  }
  const fixtures = await createFixtures(settings.concurrency);
  const databases: BenchDatabase[] = [];
  const targets: Target[] = [];
  const measurements: Measurement[] = [];
  const work: WorkRow[] = [];
  const rssBefore: Record<string, number> = {};
  const peakRss: Record<string, number> = {};
  let redis: RedisServer | undefined;
  let prodLogin: (Measurement & { passwordHashCost?: string }) | undefined;
  let benchHashCost: string | undefined;
  try {
    // --- the servers ----------------------------------------------------------------------------------------------
    for (const spec of servers) {
      const target = await startTarget(spec, {
        fixtures,
        workDir,
        settings,
        nodeArgs,
        compiled,
        databases,
        redis: async () => (redis ??= await startRedisServer(workDir)),
      });
      targets.push(target);
      rssBefore[spec.key] = rssMiB(target.handle.pid);
      progress(
        `${spec.label}: ready in ${target.handle.startupMs} ms (pid ${target.handle.pid}, RSS ${rssBefore[spec.key]} MiB; ${target.database})`,
      );
    }

    // --- the operations, alternating between servers --------------------------------------------------------------
    const warmupMs = settings.warmupSeconds * 1000;
    const roundMs = (settings.seconds * 1000) / settings.rounds;
    const chainsStarted = new Set<ServerKey>();
    const ensureChains = async (target: Target) => {
      if (chainsStarted.has(target.key)) return;
      await startChains(target, fixtures, settings.concurrency);
      chainsStarted.add(target.key);
    };
    for (const operation of operations) {
      if (!['login', 'client_credentials', 'client_credentials_jwt'].includes(operation.key)) {
        for (const target of targets) await ensureChains(target);
      }
      const accumulators = new Map<ServerKey, Accumulator>();
      for (const target of targets) {
        accumulators.set(target.key, new Accumulator());
        const warm = await runLoad(settings.concurrency, warmupMs, operationFor(operation.key, target, fixtures));
        if (warm.operations === 0)
          throw new Error(
            `${operation.label} on ${target.label}: nothing succeeded during the warm-up: ${warm.firstError}`,
          );
      }
      for (let roundIndex = 0; roundIndex < settings.rounds; roundIndex++) {
        // Alternate the order too, so no server always runs right after another's burst.
        const order = roundIndex % 2 === 0 ? targets : [...targets].reverse();
        for (const target of order)
          await measure(
            target,
            settings.concurrency,
            roundMs,
            operationFor(operation.key, target, fixtures),
            accumulators.get(target.key)!,
          );
      }
      for (const target of targets) {
        const result = accumulators.get(target.key)!.result(operation.key, target.key, {
          dbCpu: Boolean(target.db),
          transactions: Boolean(target.db?.transactions),
        });
        measurements.push(result);
        progress(
          `${operation.label.padEnd(18)} ${target.label.padEnd(46)} ${String(result.opsPerSecond).padStart(7)} ops/s  p50 ${result.p50Ms} ms  p99 ${result.p99Ms} ms  ` +
            `CPU ${result.cpuSecondsPer1k} s/1k (system ${result.systemCpuSecondsPer1k})${result.errors ? `  errors ${result.errors} (${result.firstError})` : ''}`,
        );
      }
    }

    // Peak RSS over the comparable phases (the production-cost logins below allocate the hash's memory for each
    // concurrent hash; bench/README.md, "Area `compare`").
    for (const target of targets) peakRss[target.key] = peakRssMiB(target.handle.pid);

    // --- work per operation, counted at Gatehouse's database gateway --------------------------------------------------
    for (const target of targets.filter((candidate) => candidate.handle.metricsUrl)) {
      await ensureChains(target);
      work.push(...(await countFlows(target, fixtures, settings.countBatches)));
    }

    // --- logins at the production hash cost: a Gatehouse SQLite configured with it -----------------------------------
    // (Gatehouse re-hashes a password at the configured cost on sign-in, so the cost must be the configured one.)
    if (!partial) {
      const db = await createBenchDatabase('sqlite');
      databases.push(db);
      const handle = await startGatehouse({
        name: 'gatehouse-sqlite-prod-hash',
        databaseUrl: db.url,
        fixtures,
        workDir,
        logLevel: settings.logLevel,
        nodeArgs,
        hashing: PRODUCTION_HASHING,
        compiled,
      });
      const target: Target = {
        key: 'gatehouse-sqlite',
        label: 'Gatehouse SQLite (argon2id)',
        handle,
        driver: new Driver(handle.issuer, settings.concurrency * 2),
      };
      try {
        await target.driver.discover();
        const prod = fixtures.users.find((user) => user.subject === 'bench-prod')!;
        const flow = () => target.driver.loginFlow(prod, { scope: LOGIN_SCOPE });
        await runLoad(settings.concurrency, warmupMs, flow);
        const accumulator = new Accumulator();
        await measure(target, settings.concurrency, settings.seconds * 1000, flow, accumulator);
        prodLogin = {
          ...accumulator.result('login-prod-hash', 'gatehouse-sqlite-prod-hash', { dbCpu: false, transactions: false }),
          passwordHashCost: await storedHashCost(db.url, prod.subject),
        };
        progress(
          `${PROD_LOGIN_LABEL}: ${prodLogin.opsPerSecond} ops/s, CPU ${prodLogin.cpuSecondsPer1k} s/1k, RSS peak ${prodLogin.peakRssMiB} MiB (stored hash: ${prodLogin.passwordHashCost})`,
        );
      } finally {
        target.driver.close();
        await handle.stop();
      }
    }
    const sqliteDb = databases[0];
    benchHashCost =
      sqliteDb && targets[0]?.key === 'gatehouse-sqlite' ? await storedHashCost(sqliteDb.url, 'bench') : undefined;
  } finally {
    for (const target of targets) {
      target.driver.close();
      await target.db?.close();
      await target.handle.stop();
    }
    await redis?.stop();
    for (const database of databases) await database.drop();
  }

  // --- memory with 1M sessions, start-up ---------------------------------------------------------------------------
  let largeStore: LargeStoreResult | undefined;
  let startup: StartupResult | undefined;
  if (!partial) {
    largeStore = await measureLargeStore({
      fixtures,
      workDir,
      records: settings.sessions,
      concurrency: settings.concurrency,
      loginSeconds: LARGE_STORE_LOGIN_SECONDS,
      logLevel: settings.logLevel,
      compiled,
      onProgress: progress,
    });
    progress(
      `large store: RSS ${largeStore.rssAfterStartMiB} MiB after start, ${largeStore.rssEndMiB} MiB at the end, peak ${largeStore.peakRssMiB} MiB`,
    );
    startup = await measureStartup({ fixtures, workDir, runs: STARTUP_RUNS, onProgress: progress });
  }
  rmSync(workDir, { recursive: true, force: true });

  // --- report ------------------------------------------------------------------------------------------------------
  const ratios = ratiosOf(measurements, operations);
  const targetsMet = [
    ...throughputTargets(
      ratios,
      operations.map((operation) => operation.key).filter((key) => key !== 'discovery'),
    ),
    ...workTargets(work),
    middlewareTarget(measurements),
    ...targetResults(largeStore, startup, settings),
  ];
  const keycloak = keycloakRows(measurements, prodLogin);
  const labelOf = (key: string) => SERVERS.find((server) => server.key === key)?.label ?? key;

  console.log(
    heading(
      `Gatehouse and what oidc-provider ${oidcProviderVersion} users deploy instead — ${describeMachine(machine)}`,
    ),
  );
  console.log(
    `Concurrency ${settings.concurrency} on loopback; per operation and server ${settings.warmupSeconds} s warm-up + ${settings.seconds} s measured ` +
      `in ${settings.rounds} alternating rounds. Gatehouse: ${compiled ? 'the compiled package (node dist/server/cli.js start)' : 'the TypeScript source through tsx'}, server-side sessions on, logging.level ${settings.logLevel} (request log to /dev/null). ` +
      `Users hashed with scrypt log2N 10. CPU = the server process (utime+stime); "DB CPU" = the database server's own processes ` +
      `(PostgreSQL backends of that database, the Redis server); system = both. The load generator shares the ${machine.cores} cores.` +
      (redisMissing ? ' redis-server is not installed here: no Redis peer.' : ''),
  );
  for (const target of targets)
    console.log(
      `  ${target.label}: ${target.database}; start ${target.handle.startupMs} ms; RSS ${rssBefore[target.key]} MiB idle, peak ${peakRss[target.key] ?? '-'} MiB over the operations`,
    );
  console.log('');
  const rows: Cell[][] = [];
  for (const operation of operations) {
    for (const server of SERVERS) {
      const m = measurements.find((x) => x.operation === operation.key && x.server === server.key);
      if (!m) continue;
      rows.push([
        operation.label,
        server.label,
        m.opsPerSecond,
        m.p50Ms,
        m.p99Ms,
        m.cpuSecondsPer1k,
        m.dbCpuSecondsPer1k ?? null,
        m.systemCpuSecondsPer1k,
        m.dbTransactionsPerOperation ?? null,
        m.peakRssMiB,
        m.errors,
      ]);
    }
  }
  if (prodLogin) {
    rows.push([
      PROD_LOGIN_LABEL,
      labelOf('gatehouse-sqlite'),
      prodLogin.opsPerSecond,
      prodLogin.p50Ms,
      prodLogin.p99Ms,
      prodLogin.cpuSecondsPer1k,
      null,
      prodLogin.systemCpuSecondsPer1k,
      null,
      prodLogin.peakRssMiB,
      prodLogin.errors,
    ]);
  }
  console.log(
    table(
      [
        'operation',
        'server',
        'ops/s',
        'p50 ms',
        'p99 ms',
        'CPU s/1k',
        'DB CPU s/1k',
        'system CPU s/1k',
        'DB xacts/op',
        'RSS MiB',
        'errors',
      ],
      rows,
    ),
  );
  console.log(
    '\nDB xacts/op: PostgreSQL transactions per operation (each autocommit statement counts one), from pg_stat_database. ' +
      'RSS MiB: peak resident memory of the server process, sampled during that phase.',
  );

  const peersRun = PEERS.filter((peer) => measurements.some((m) => m.server === peer));
  if (ratios.length) {
    const ratioRows = (pick: (ratio: Ratio) => number) =>
      operations.flatMap((operation) =>
        GATEHOUSE.filter((server) => ratios.some((r) => r.operation === operation.key && r.server === server)).map(
          (server) => [
            operation.label,
            labelOf(server),
            ...peersRun.map((peer) => {
              const ratio = ratios.find((r) => r.operation === operation.key && r.server === server && r.peer === peer);
              return ratio ? round(pick(ratio), 2) : null;
            }),
          ],
        ),
      );
    console.log("\nGatehouse ops/s ÷ the peer's ops/s (same run; > 1: Gatehouse serves more)\n");
    console.log(
      table(
        ['operation', 'Gatehouse', ...peersRun.map((peer) => `÷ ${SHORT[peer]}`)],
        ratioRows((r) => r.throughput),
      ),
    );
    console.log(
      "\nThe peer's system CPU per operation ÷ Gatehouse's (server + database server; > 1: Gatehouse uses less)\n",
    );
    console.log(
      table(
        ['operation', 'Gatehouse', ...peersRun.map((peer) => `÷ ${SHORT[peer]}`)],
        ratioRows((r) => r.cpuEfficiency),
      ),
    );
  }

  if (work.length) {
    console.log(
      "\nWork per operation, counted at Gatehouse's database gateway (median of the batches; docs/database-gateway.md)\n",
    );
    console.log(
      table(
        ['flow', 'server', 'statements', 'reads', 'writes', 'commits', 'round trips', 'counted'],
        COUNTED.flatMap((flow) =>
          work
            .filter((row) => row.operation === flow.key)
            .map((row) => [
              flow.label,
              labelOf(row.server),
              row.statements,
              row.reads,
              row.writes,
              row.commits,
              row.roundTrips,
              row.operations,
            ]),
        ),
      ),
    );
    console.log(
      '\nstatements = reads + writes (SQL statements); commits = COMMITs plus writes outside a transaction; round trips = ' +
        'everything sent and waited for (statements, BEGIN, COMMIT, SET, PRAGMA). The login flow includes the code exchange; ' +
        'the logout is RP-initiated with id_token_hint, confirmed on the logout page (back-channel delivery comes later, from the outbox).',
    );
  }

  if (prodLogin) {
    const ok = prodLogin.passwordHashCost === 'argon2id m=19456,t=2,p=1' && benchHashCost === 'scrypt ln=10,r=8,p=1';
    console.log(
      `\nStored password hashes after the run: bench ${benchHashCost ?? '?'} (Gatehouse SQLite), bench-prod ${prodLogin.passwordHashCost ?? '?'} ` +
        `(a Gatehouse SQLite configured with the default passwordHashing)${ok ? '' : ' — WARNING: not the intended cost, the login figures do not measure it'}.`,
    );
  }
  if (keycloak.some((row) => row.sqlite !== null || row.postgres !== null)) {
    console.log(
      '\nPer server CPU-second, next to Keycloak 26 (published sizing guide, per vCPU; Argon2 passwords, Aurora PostgreSQL)\n',
    );
    console.log(
      table(
        ['figure', 'Gatehouse SQLite', 'Gatehouse PostgreSQL', 'Gatehouse PostgreSQL incl. DB', 'Keycloak 26'],
        keycloak.map((row) => [row.figure, row.sqlite, row.postgres, row.postgresWithDb, row.keycloak]),
      ),
    );
  }

  if (largeStore) {
    console.log(
      `\nGatehouse (SQLite) with ${formatCount(largeStore.records)} server-side sessions in its database (seeded in ${largeStore.seedSeconds} s)\n`,
    );
    console.log(
      `RSS ${largeStore.rssAfterStartMiB} MiB after start (${largeStore.startupMs} ms); ${largeStore.logins.operations} login flows in ${LARGE_STORE_LOGIN_SECONDS} s ` +
        `(${largeStore.logins.opsPerSecond}/s, p99 ${largeStore.logins.p99Ms} ms${largeStore.logins.errors ? `, ${largeStore.logins.errors} errors: ${largeStore.logins.firstError}` : ''}); ` +
        `RSS ${largeStore.rssEndMiB} MiB at the end, peak ${largeStore.peakRssMiB} MiB (VmHWM).`,
    );
    console.log(
      `\n${table(
        ['admin query (GET /admin/api/v1/sessions…)', 'status', 'returned', 'totalCount', 'p50 ms', 'max ms'],
        largeStore.adminQueries.map((q) => [q.query, q.status, q.returned, q.totalCount ?? null, q.p50Ms, q.maxMs]),
      )}`,
    );
  }
  if (startup) {
    console.log('');
    for (const variant of [startup, ...(startup.compiled ? [startup.compiled] : [])]) {
      console.log(
        `Start-up, \`${variant.command}\` to discovery answering (${variant.runs} runs, median): first start on an empty SQLite database ` +
          `${variant.firstStartMedianMs} ms (${variant.firstStartMs.join(', ')}); restart ${variant.restartMedianMs} ms (${variant.restartMs.join(', ')}).`,
      );
    }
  }
  console.log(`\nTargets\n\n${targetLines(targetsMet)}`);

  const results = {
    area: AREA,
    machine,
    scale,
    settings: {
      ...settings,
      oidcProviderVersion,
      passwordHashing:
        'scrypt log2N 10 (bench users), argon2id m=19456,t=2,p=1 (bench-prod, on a server configured with it)',
      benchHashCostAfterRun: benchHashCost,
      partial,
    },
    servers: targets.map((t) => ({
      key: t.key,
      label: t.label,
      database: t.database,
      startupMs: t.handle.startupMs,
      idleRssMiB: rssBefore[t.key],
      peakRssMiB: peakRss[t.key],
    })),
    measurements,
    prodHashLogin: prodLogin,
    ratios,
    workPerOperation: work,
    keycloak,
    largeStore,
    startup,
    targets: targetsMet,
  };
  const file = writeResults(partial ? `${AREA}-partial` : AREA, results);
  console.log(`\nResults: ${file}`);
  if (!partial) {
    const svgFile = join(RESULTS_DIR, `${AREA}.svg`);
    writeFileSync(svgFile, chart(measurements, prodLogin, oidcProviderVersion, settings, machine.date));
    console.log(`Chart: ${svgFile}`);
  }
}

/** The algorithm and cost of a user's stored password hash (`scrypt ln=10,r=8,p=1`), read from the directory table after the run. */
async function storedHashCost(url: string, subject: string): Promise<string | undefined> {
  const sequelize = await openDatabase({ url });
  try {
    const [row] = await sequelize.query<{ password_hash: string | null }>(
      'SELECT password_hash FROM gatehouse_users WHERE subject = :subject',
      {
        type: QueryTypes.SELECT,
        replacements: { subject },
      },
    );
    const match = /^\$(scrypt|argon2id)\$(?:v=\d+\$)?([^$]+)\$/.exec(row?.password_hash ?? '');
    return match ? `${match[1]} ${match[2]}` : undefined;
  } catch {
    return undefined;
  } finally {
    await sequelize.close();
  }
}

function ratiosOf(measurements: Measurement[], operations: typeof OPERATIONS): Ratio[] {
  const ratios: Ratio[] = [];
  for (const operation of operations) {
    for (const server of GATEHOUSE) {
      const m = measurements.find((x) => x.operation === operation.key && x.server === server);
      if (!m) continue;
      for (const peer of PEERS) {
        const other = measurements.find((x) => x.operation === operation.key && x.server === peer);
        if (!other) continue;
        ratios.push({
          operation: operation.key,
          server,
          peer,
          throughput: round(m.opsPerSecond / other.opsPerSecond, 3),
          cpuEfficiency: round(other.systemCpuSecondsPer1k / m.systemCpuSecondsPer1k, 3),
        });
      }
    }
  }
  return ratios;
}

function targetResults(
  largeStore: LargeStoreResult | undefined,
  startup: StartupResult | undefined,
  settings: Settings,
): TargetResult[] {
  const results: TargetResult[] = [];
  const rssTarget = `RSS of Gatehouse (SQLite) with ${formatCount(settings.sessions)} server-side sessions ≤ ${RSS_TARGET_MB} MB (${round(RSS_TARGET_MIB, 1)} MiB)`;
  results.push(
    largeStore
      ? {
          target: rssTarget,
          value: `peak ${largeStore.peakRssMiB} MiB, ${largeStore.rssEndMiB} MiB at the end`,
          status: largeStore.peakRssMiB <= RSS_TARGET_MIB ? 'PASS' : 'MISS',
        }
      : { target: rssTarget, value: 'not measured', status: 'NOT RUN' },
  );
  for (const [which, value] of [
    ['first start (empty database)', startup?.firstStartMedianMs],
    ['restart', startup?.restartMedianMs],
    ...(startup?.compiled
      ? ([
          ['compiled CLI, first start', startup.compiled.firstStartMedianMs],
          ['compiled CLI, restart', startup.compiled.restartMedianMs],
        ] as const)
      : []),
  ] as const) {
    const target = `start-up to discovery, ${which}, ≤ ${STARTUP_TARGET_MS / 1000} s`;
    results.push(
      value === undefined
        ? { target, value: 'not measured', status: 'NOT RUN' }
        : { target, value: `${value} ms (median)`, status: value <= STARTUP_TARGET_MS ? 'PASS' : 'MISS' },
    );
  }
  if (settings.sessions < 1_000_000 && largeStore)
    results.push({
      target: 'the RSS target is set for 1M sessions',
      value: `measured with ${formatCount(settings.sessions)}`,
      status: 'NOT RUN',
    });
  return results;
}

interface KeycloakRow {
  figure: string;
  sqlite: number | null;
  postgres: number | null;
  postgresWithDb: number | null;
  keycloak: number;
}

function keycloakRows(measurements: Measurement[], prodLogin: Measurement | undefined): KeycloakRow[] {
  const perCpuSecond = (m: Measurement | undefined, withDb = false) => {
    if (!m || !(m.cpuSecondsPer1k > 0)) return null;
    const cpu = m.cpuSecondsPer1k + (withDb ? (m.dbCpuSecondsPer1k ?? 0) : 0);
    return round(1000 / cpu, 1);
  };
  const find = (operation: string, server: string) =>
    measurements.find((m) => m.operation === operation && m.server === server);
  return [
    {
      figure: 'password logins per CPU-s (production hash: argon2id m=19456,t=2,p=1)',
      sqlite: perCpuSecond(prodLogin),
      postgres: null,
      postgresWithDb: null,
      keycloak: KEYCLOAK.passwordLoginsPerVcpu,
    },
    {
      figure: 'password logins per CPU-s (bench hash: scrypt log2N 10)',
      sqlite: perCpuSecond(find('login', 'gatehouse-sqlite')),
      postgres: perCpuSecond(find('login', 'gatehouse-postgres')),
      postgresWithDb: perCpuSecond(find('login', 'gatehouse-postgres'), true),
      keycloak: KEYCLOAK.passwordLoginsPerVcpu,
    },
    {
      figure: 'refresh grants per CPU-s',
      sqlite: perCpuSecond(find('refresh', 'gatehouse-sqlite')),
      postgres: perCpuSecond(find('refresh', 'gatehouse-postgres')),
      postgresWithDb: perCpuSecond(find('refresh', 'gatehouse-postgres'), true),
      keycloak: KEYCLOAK.refreshPerVcpu,
    },
    {
      figure: 'client_credentials grants per CPU-s',
      sqlite: perCpuSecond(find('client_credentials', 'gatehouse-sqlite')),
      postgres: perCpuSecond(find('client_credentials', 'gatehouse-postgres')),
      postgresWithDb: perCpuSecond(find('client_credentials', 'gatehouse-postgres'), true),
      keycloak: KEYCLOAK.clientCredentialsPerVcpu,
    },
  ];
}

export function chart(
  measurements: Measurement[],
  prodLogin: Measurement | undefined,
  version: string,
  settings: Settings,
  date: string,
): string {
  const servers = SERVERS.filter((server) => measurements.some((m) => m.server === server.key));
  const series = servers.map((server) => server.label);
  /** Under each Gatehouse bar: its ratio to the Sequelize-adapter peer on the same database. */
  const sqlPeer: Partial<Record<ServerKey, ServerKey>> = {
    'gatehouse-sqlite': 'sequelize-sqlite',
    'gatehouse-postgres': 'sequelize-postgres',
  };
  const panels: ChartPanel[] = OPERATIONS.map((operation) => ({
    title: operation.label,
    bars: servers.map((server) => {
      const value =
        measurements.find((m) => m.operation === operation.key && m.server === server.key)?.opsPerSecond ?? null;
      const peer = sqlPeer[server.key];
      const peerValue =
        peer && measurements.find((m) => m.operation === operation.key && m.server === peer)?.opsPerSecond;
      return {
        series: server.label,
        value,
        note: value !== null && peerValue ? `${(value / peerValue).toFixed(2)}×` : undefined,
      };
    }),
  }));
  if (prodLogin)
    panels.push({ title: 'login (argon2id)', bars: [{ series: SERVERS[0].label, value: prodLogin.opsPerSecond }] });
  return barChartSvg({
    title: `Gatehouse and oidc-provider ${version} with the adapters its users deploy: operations per second`,
    subtitle: `concurrency ${settings.concurrency}, ${settings.seconds} s per operation and server, loopback, ${date.slice(0, 10)}; each panel has its own scale; under a Gatehouse bar: ÷ the Sequelize adapter on the same database`,
    series,
    panels,
    unit: 'ops/s',
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await run(benchScale());
  process.exit(0);
}
