/**
 * Seeding in a separate Node process, for areas that measure this process's memory: the seeding's SQL strings and
 * SQLite page cache would otherwise stay in this process's RSS (freed memory is not always returned to the system).
 *
 * `seedInChildProcess(url, jobs)` runs this file as a child (same Node, same loader flags); the child seeds each job
 * through a seeding connection, rebuilds the indexes, settles the database and exits.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  openSeedingConnection,
  seedSessions,
  settleAfterSeeding,
  withIndexesRebuiltAfter,
  type SessionProfile,
} from './seed.js';

export interface SeedJob {
  profile: SessionProfile;
  from: number;
  count: number;
}

type SerializedJob = Omit<SeedJob, 'profile'> & { profile: Omit<SessionProfile, 'now'> & { now: string } };

const self = fileURLToPath(import.meta.url);

export function seedInChildProcess(url: string, jobs: SeedJob[]): Promise<void> {
  const serialized: SerializedJob[] = jobs.map((job) => ({
    ...job,
    profile: { ...job.profile, now: job.profile.now.toISOString() },
  }));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, self], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, BENCH_SEED_URL: url, BENCH_SEED_JOBS: JSON.stringify(serialized) },
    });
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`seeding process failed (${code ?? signal})`)),
    );
  });
}

async function main(url: string, jobs: SerializedJob[]): Promise<void> {
  const sequelize = await openSeedingConnection(url);
  try {
    await withIndexesRebuiltAfter(sequelize, async () => {
      for (const job of jobs)
        await seedSessions(sequelize, { ...job.profile, now: new Date(job.profile.now) }, job.from, job.count);
    });
    await settleAfterSeeding(sequelize);
  } finally {
    await sequelize.close();
  }
}

if (process.argv[1] === self && process.env.BENCH_SEED_URL && process.env.BENCH_SEED_JOBS) {
  await main(process.env.BENCH_SEED_URL, JSON.parse(process.env.BENCH_SEED_JOBS) as SerializedJob[]);
}
