/**
 * `npm run soak`: a bounded mixed load on loopback against a Gatehouse process on SQLite and on PostgreSQL — sign-ins
 * (real login and consent pages, PKCE, code exchange), refreshes, RP-initiated logouts, administrator queries and
 * revocations, and sessions left to expire (a 4 s idle timeout, swept every second) — then a check that nothing was
 * lost: every session that was created ended with its back-channel logout delivered, or is still listed.
 *
 *   npm run soak                      # 60 s per database
 *   SOAK_SECONDS=10 npm run soak      # shorter
 *   npm run soak -- sqlite            # one database
 *
 * Reports: requests, 5xx responses (target 0), sessions created / ended with notification / still listed / lost
 * (target 0 lost), and the server's memory after a warm-up at the same concurrency (a quarter of the run, at least
 * 5 s) and at the end: RSS and heap used right after a full garbage collection (target: RSS growth under 10%; a leak
 * survives the collection), and RSS as sampled through the run (which also holds garbage V8 has not collected yet:
 * under load it lets the heap grow lazily, so that figure says more about V8's heap sizing than about leaks).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { Browser } from '../test/helpers/browser.js';
import { createTestDatabase } from '../test/helpers/databases.js';
import { discover, LogoutReceiver, POST_LOGOUT_URI, signIn } from '../test/helpers/relying-party.js';
import { freePort } from '../test/helpers/server.js';

const FIXTURE = fileURLToPath(new URL('../test/fixtures/serve.ts', import.meta.url));
const USERS = ['alice', 'bob', 'carol', 'dave'];

export interface SoakReport {
  dialect: 'sqlite' | 'postgres';
  seconds: number;
  concurrency: number;
  requests: number;
  serverErrors: number;
  operations: Record<string, number>;
  sessions: { created: number; endedWithNotification: number; stillListed: number; lost: number };
  warmupSeconds: number;
  /** RSS as it was (V8 collects lazily under load, so this includes garbage not yet collected). */
  rssMb: { afterWarmup: number; peak: number; end: number; growthPercent: number };
  /** RSS and heap used right after a full GC, after warm-up and at the end: the target (growth < 10%) applies here. */
  afterGcMb: {
    rssAfterWarmup: number;
    rssEnd: number;
    rssGrowthPercent: number;
    heapUsedAfterWarmup: number;
    heapUsedEnd: number;
  };
}

function mb(bytes: number): number {
  return Math.round((bytes / 1048576) * 10) / 10;
}

function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : 0;
}

/** Counts every response of this process's fetch calls, and the 5xx among them. */
function countResponses(): { requests: number; serverErrors: number; restore(): void } {
  const original = globalThis.fetch;
  const counter = {
    requests: 0,
    serverErrors: 0,
    restore: () => {
      globalThis.fetch = original;
    },
  };
  globalThis.fetch = async (...args: Parameters<typeof fetch>) => {
    const response = await original(...args);
    counter.requests++;
    if (response.status >= 500) counter.serverErrors++;
    return response;
  };
  return counter;
}

export async function runSoak(options: {
  dialect: 'sqlite' | 'postgres';
  seconds: number;
  concurrency?: number;
  /** Load before RSS is first read (default: a quarter of `seconds`, at least 5). */
  warmupSeconds?: number;
  log?: (line: string) => void;
}): Promise<SoakReport> {
  const log = options.log ?? ((line: string) => console.log(line));
  const concurrency = options.concurrency ?? 6;
  const database = await createTestDatabase(options.dialect === 'sqlite' ? 'sqlite-file' : 'postgres');
  const receiver = await new LogoutReceiver().start();
  const port = await freePort();
  const issuer = `http://localhost:${port}`;
  // --expose-gc: the memory readings (SIGUSR2, see the fixture) follow a full garbage collection.
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', FIXTURE], {
    env: {
      ...process.env,
      GATEHOUSE_DATABASE_URL: database.url,
      GATEHOUSE_ISSUER: issuer,
      PORT: String(port),
      RECEIVER_URL: receiver.url,
      IDLE_TIMEOUT: '4',
      SWEEP_FREQUENCY: '1',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const counter = countResponses();
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the server did not start within 30 s')), 30_000);
      child.stdout!.on('data', (chunk: Buffer) => {
        if (String(chunk).includes('"ready"')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`the server exited with ${code}`)));
    });
    /** The server's memory right after a full GC (a leak survives it; garbage V8 has not collected yet does not). */
    const memoryAfterGc = () =>
      new Promise<{ rss: number; heapUsed: number }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no memory reading from the server within 10 s')), 10_000);
        const onData = (chunk: Buffer) => {
          const line = String(chunk)
            .split('\n')
            .find((text) => text.startsWith('{"memory"'));
          if (!line) return;
          clearTimeout(timer);
          child.stdout!.off('data', onData);
          resolve((JSON.parse(line) as { memory: { rss: number; heapUsed: number } }).memory);
        };
        child.stdout!.on('data', onData);
        child.kill('SIGUSR2');
      });
    const web = await discover(issuer, 'web', 'web-secret');
    const admin = await discover(issuer, 'gatehouse-admin', 'admin-secret');
    const adminToken = async () =>
      (await oidc.clientCredentialsGrant(admin, { scope: 'gatehouse:admin' })).access_token;
    let token = await adminToken();

    const created = new Map<string, string>(); // sid -> subject
    const operations: Record<string, number> = {
      login: 0,
      refresh: 0,
      logout: 0,
      adminQuery: 0,
      adminRevoke: 0,
      idle: 0,
    };
    const worker = async (deadline: number) => {
      while (Date.now() < deadline) {
        const username = USERS[Math.floor(Math.random() * USERS.length)];
        const browser = new Browser();
        const { tokens, claims } = await signIn(browser, web, { username, scope: 'openid profile offline_access' });
        operations.login++;
        created.set(String(claims.sid), username);
        let refresh = tokens.refresh_token!;
        const signedInAt = Date.now();
        for (let i = 0; i < 2; i++) {
          try {
            refresh = (await oidc.refreshTokenGrant(web, refresh)).refresh_token!;
            operations.refresh++;
          } catch (error) {
            throw new Error(
              `refresh #${i + 1} of ${username} (sid ${claims.sid}) ${Date.now() - signedInAt} ms after sign-in: ${(error as Error).message}`,
            );
          }
        }
        const choice = Math.random();
        if (choice < 0.35) {
          const confirm = await browser.navigate(
            oidc.buildEndSessionUrl(web, {
              id_token_hint: tokens.id_token!,
              post_logout_redirect_uri: POST_LOGOUT_URI,
            }),
          );
          const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.body)?.[1];
          if (xsrf) await browser.navigate(`${issuer}/session/end/confirm`, { form: { xsrf, logout: 'yes' } });
          operations.logout++;
        } else if (choice < 0.55) {
          const response = await fetch(`${issuer}/admin/api/v1/sessions?subject=${username}&pageSize=5`, {
            headers: { authorization: `Bearer ${token}` },
          });
          if (response.status === 401) token = await adminToken();
          operations.adminQuery++;
        } else if (choice < 0.7) {
          // Revoke this worker's own session (found by its sid), so workers never pull the rug from each other.
          const list = (await (
            await fetch(`${issuer}/admin/api/v1/sessions?subject=${username}&pageSize=200`, {
              headers: { authorization: `Bearer ${token}` },
            })
          ).json()) as {
            sessions?: { sessionId: string; clients: { sid: string }[] }[];
          };
          const target = list.sessions?.find((session) =>
            session.clients.some((client) => client.sid === claims.sid),
          )?.sessionId;
          if (target)
            await fetch(`${issuer}/admin/api/v1/sessions/${target}`, {
              method: 'DELETE',
              headers: { authorization: `Bearer ${token}` },
            });
          operations.adminRevoke++;
        } else {
          operations.idle++; // left to expire: the sweeper ends it and tells the client
        }
      }
    };

    // Warm-up at the measured concurrency (V8's heap, SQLite's page cache and the pools grow to the load first), then
    // RSS is sampled every second: growth is end vs after warm-up, so only what keeps growing under the load counts.
    const warmupSeconds = options.warmupSeconds ?? Math.max(5, Math.round(options.seconds / 4));
    await Promise.all(Array.from({ length: concurrency }, () => worker(Date.now() + warmupSeconds * 1000)));
    const afterWarmup = rssMb(child.pid!);
    const gcAfterWarmup = await memoryAfterGc();
    const samples = [afterWarmup];
    const sampler = setInterval(() => samples.push(rssMb(child.pid!)), 1000);
    const deadline = Date.now() + options.seconds * 1000;
    try {
      await Promise.all(Array.from({ length: concurrency }, () => worker(deadline)));
    } finally {
      clearInterval(sampler);
    }
    const end = rssMb(child.pid!);
    samples.push(end);
    const gcEnd = await memoryAfterGc();

    // Every session ends within idle timeout + one sweep; give delivery time, then account for each one.
    const settleUntil = Date.now() + 20_000;
    const delivered = () => new Set(receiver.tokens.map((t) => String(decodeJwt(t).sid)));
    while (Date.now() < settleUntil && [...created.keys()].some((sid) => !delivered().has(sid)))
      await new Promise((r) => setTimeout(r, 250));
    const notified = delivered();
    token = await adminToken();
    const listed = new Set<string>();
    for (const username of USERS) {
      const body = (await (
        await fetch(`${issuer}/admin/api/v1/sessions?subject=${username}&pageSize=200`, {
          headers: { authorization: `Bearer ${token}` },
        })
      ).json()) as {
        sessions?: { clients: { sid: string }[] }[];
      };
      for (const session of body.sessions ?? []) for (const client of session.clients) listed.add(client.sid);
    }
    const sids = [...created.keys()];
    const endedWithNotification = sids.filter((sid) => notified.has(sid)).length;
    const stillListed = sids.filter((sid) => !notified.has(sid) && listed.has(sid)).length;
    const report: SoakReport = {
      dialect: options.dialect,
      seconds: options.seconds,
      concurrency,
      warmupSeconds,
      requests: counter.requests,
      serverErrors: counter.serverErrors,
      operations,
      sessions: {
        created: sids.length,
        endedWithNotification,
        stillListed,
        lost: sids.length - endedWithNotification - stillListed,
      },
      afterGcMb: {
        rssAfterWarmup: mb(gcAfterWarmup.rss),
        rssEnd: mb(gcEnd.rss),
        rssGrowthPercent: Math.round(((gcEnd.rss - gcAfterWarmup.rss) / gcAfterWarmup.rss) * 1000) / 10,
        heapUsedAfterWarmup: mb(gcAfterWarmup.heapUsed),
        heapUsedEnd: mb(gcEnd.heapUsed),
      },
      rssMb: {
        afterWarmup: Math.round(afterWarmup),
        peak: Math.round(Math.max(...samples)),
        end: Math.round(end),
        growthPercent: Math.round(((end - afterWarmup) / afterWarmup) * 1000) / 10,
      },
    };
    log(
      `soak ${report.dialect}: ${report.seconds}s x${concurrency}, ${report.requests} requests, ${report.serverErrors} 5xx (target 0) | ` +
        `sessions created ${report.sessions.created}, ended+notified ${endedWithNotification}, still listed ${stillListed}, lost ${report.sessions.lost} (target 0) | ` +
        `after a full GC: RSS ${report.afterGcMb.rssAfterWarmup} -> ${report.afterGcMb.rssEnd} MB (${report.afterGcMb.rssGrowthPercent}%, target < 10%), ` +
        `heap used ${report.afterGcMb.heapUsedAfterWarmup} -> ${report.afterGcMb.heapUsedEnd} MB | ` +
        `RSS as sampled: ${report.rssMb.afterWarmup} after ${warmupSeconds}s warm-up -> ${report.rssMb.end} MB at the end (peak ${report.rssMb.peak}; ${report.rssMb.growthPercent}%) | ops ${JSON.stringify(operations)}`,
    );
    return report;
  } finally {
    counter.restore();
    child.kill('SIGTERM');
    await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(undefined)));
    await receiver.close();
    await database.drop();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const seconds = Number(process.env.SOAK_SECONDS ?? 60);
  const only = process.argv[2] as 'sqlite' | 'postgres' | undefined;
  const reports: SoakReport[] = [];
  for (const dialect of only ? [only] : (['sqlite', 'postgres'] as const))
    reports.push(await runSoak({ dialect, seconds }));
  mkdirSync(new URL('results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL('results/soak.json', import.meta.url),
    JSON.stringify({ date: new Date().toISOString(), reports }, null, 2),
  );
  const failed = reports.some((r) => r.serverErrors > 0 || r.sessions.lost > 0 || r.afterGcMb.rssGrowthPercent >= 10);
  console.log(
    failed
      ? 'soak: MISS (5xx, lost sessions or RSS growth of 10% or more, see above)'
      : 'soak: PASS (no 5xx, nothing lost, RSS growth under 10%)',
  );
}
