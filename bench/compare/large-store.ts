/**
 * Memory of a Gatehouse (SQLite) process whose database holds many server-side sessions: the records are bulk-inserted
 * (bench/support/seed-process.ts, in its own process) into server_side_sessions / server_side_session_clients, then
 * the server starts on that database, serves login flows and admin API queries, and its RSS is read from /proc.
 */
import { openDatabase } from '../../stores/sequelize/connection.js';
import { migrate } from '../../stores/sequelize/migrate.js';
import { createBenchDatabase } from '../support/databases.js';
import { seedInChildProcess } from '../support/seed-process.js';
import { sessionRecord, subjectIdOf, type SessionProfile } from '../support/seed.js';
import { round, summarize, type LatencySummary } from '../support/stats.js';
import { LOGIN_SCOPE, type SharedFixtures } from './fixtures.js';
import { Driver } from './flows.js';
import { runLoad } from './load.js';
import { peakRssMiB, rssMiB, sampleRss } from './proc.js';
import { startGatehouse } from './servers.js';

export interface AdminQueryResult extends LatencySummary {
  query: string;
  status: number;
  returned: number;
  totalCount?: number;
}

export interface LargeStoreResult {
  records: number;
  seedSeconds: number;
  startupMs: number;
  rssAfterStartMiB: number;
  logins: {
    operations: number;
    errors: number;
    opsPerSecond: number;
    p50Ms: number;
    p99Ms: number;
    firstError?: string;
  };
  adminQueries: AdminQueryResult[];
  rssEndMiB: number;
  /** Largest VmRSS sample while serving. */
  peakSampledRssMiB: number;
  /** VmHWM: the process's peak RSS since it started. */
  peakRssMiB: number;
}

const ADMIN_REPEATS = 5;

export async function measureLargeStore(options: {
  fixtures: SharedFixtures;
  workDir: string;
  records: number;
  concurrency: number;
  loginSeconds: number;
  logLevel: string;
  /** Run the compiled CLI (dist/) rather than the TypeScript source. */
  compiled?: boolean;
  onProgress(message: string): void;
}): Promise<LargeStoreResult> {
  const database = await createBenchDatabase('sqlite');
  try {
    const schema = await openDatabase({ url: database.url });
    try {
      await migrate(schema);
    } finally {
      await schema.close();
    }
    const profile: SessionProfile = {
      namespace: 'compare-rss',
      now: new Date(),
      state: 'live',
      subjects: Math.ceil(options.records / 3),
      anonymousEvery: 20,
    };
    options.onProgress(`large store: seeding ${options.records.toLocaleString('en-US')} server-side sessions (SQLite)`);
    const seedStarted = performance.now();
    await seedInChildProcess(database.url, [{ profile, from: 0, count: options.records }]);
    const seedSeconds = round((performance.now() - seedStarted) / 1000, 1);
    options.onProgress(`large store: seeded in ${seedSeconds} s; starting Gatehouse on it`);

    const server = await startGatehouse({
      name: 'gatehouse-large-store',
      databaseUrl: database.url,
      fixtures: options.fixtures,
      workDir: options.workDir,
      logLevel: options.logLevel,
      compiled: options.compiled,
    });
    const driver = new Driver(server.issuer, options.concurrency * 2);
    try {
      const rssAfterStartMiB = rssMiB(server.pid);
      const sampler = sampleRss(server.pid);
      await driver.discover();
      const bench = options.fixtures.users.find((user) => user.subject === 'bench')!;
      const load = await runLoad(options.concurrency, options.loginSeconds * 1000, () =>
        driver.loginFlow(bench, { scope: LOGIN_SCOPE }),
      );
      const loginSummary = summarize(load.samplesMs);

      const token = await driver.adminToken();
      const seededSession = sessionRecord(profile, 1000);
      const queries: [string, string][] = [
        [
          'subject=<seeded subject>',
          `/admin/api/v1/sessions?subject=${encodeURIComponent(subjectIdOf(profile.namespace, 42))}`,
        ],
        ['sessions/<seeded session id>', `/admin/api/v1/sessions/${encodeURIComponent(seededSession.sessionId)}`],
        ['subject=bench (the logins above), pageSize 100', '/admin/api/v1/sessions?subject=bench&pageSize=100'],
        ['displayName=alice (prefix), with count', '/admin/api/v1/sessions?displayName=alice'],
        ['clientId=portal, no count', '/admin/api/v1/sessions?clientId=portal&count=false'],
        ['clientId=portal, with count', '/admin/api/v1/sessions?clientId=portal'],
      ];
      const adminQueries: AdminQueryResult[] = [];
      for (const [label, query] of queries) adminQueries.push(await timeAdminQuery(driver, token, query, label));
      // The second page of the largest listing, through its paging token.
      const first = await driver.http.send('/admin/api/v1/sessions?clientId=portal&pageSize=100&count=false', {
        headers: { authorization: `Bearer ${token}` },
      });
      const next = (JSON.parse(first.body) as { paging?: { next?: string } }).paging?.next;
      if (next)
        adminQueries.push(
          await timeAdminQuery(
            driver,
            token,
            `/admin/api/v1/sessions?clientId=portal&pageSize=100&count=false&page=${encodeURIComponent(next)}`,
            'clientId=portal, page 2 (pageSize 100)',
          ),
        );

      const peakSampledRssMiB = sampler.stop();
      return {
        records: options.records,
        seedSeconds,
        startupMs: server.startupMs,
        rssAfterStartMiB,
        logins: {
          operations: load.operations,
          errors: load.errors,
          opsPerSecond: round(load.operations / load.seconds, 1),
          p50Ms: loginSummary.p50Ms,
          p99Ms: loginSummary.p99Ms,
          firstError: load.firstError,
        },
        adminQueries,
        rssEndMiB: rssMiB(server.pid),
        peakSampledRssMiB,
        peakRssMiB: peakRssMiB(server.pid),
      };
    } finally {
      driver.close();
      await server.stop();
    }
  } finally {
    await database.drop();
  }
}

async function timeAdminQuery(driver: Driver, token: string, path: string, label: string): Promise<AdminQueryResult> {
  const samples: number[] = [];
  let status = 0;
  let returned = 0;
  let totalCount: number | undefined;
  for (let i = 0; i < ADMIN_REPEATS; i++) {
    const before = performance.now();
    const response = await driver.http.send(path, { headers: { authorization: `Bearer ${token}` } });
    samples.push(performance.now() - before);
    status = response.status;
    if (status === 200) {
      const body = JSON.parse(response.body) as { sessions?: unknown[]; totalCount?: number; sessionId?: string };
      returned = body.sessions ? body.sessions.length : body.sessionId ? 1 : 0;
      totalCount = body.totalCount;
    }
  }
  return { query: label, status, returned, totalCount, ...summarize(samples) };
}
