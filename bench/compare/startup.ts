/**
 * Start-up time of Gatehouse as its users start it: `npx tsx server/cli.ts start --config <file>`, from spawn to the
 * discovery document answering. A first start (empty SQLite database: migrations, directory seeding, signing and
 * cookie keys generated and stored) and a restart on the same database, each `runs` times (median reported). When the
 * package has been built (dist/server/cli.js), the compiled CLI is measured the same way.
 */
import { createBenchDatabase } from '../support/databases.js';
import type { SharedFixtures } from './fixtures.js';
import { existsSync } from 'node:fs';
import { COMPILED_CLI, startGatehouse } from './servers.js';

export interface StartupResult {
  command: string;
  /** The same, with the compiled CLI (`node dist/server/cli.js start`), when the package has been built. */
  compiled?: Omit<StartupResult, 'compiled'>;
  runs: number;
  firstStartMs: number[];
  restartMs: number[];
  firstStartMedianMs: number;
  restartMedianMs: number;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)];

export async function measureStartup(options: {
  fixtures: SharedFixtures;
  workDir: string;
  runs: number;
  onProgress(message: string): void;
}): Promise<StartupResult> {
  const result = await measure(options, false);
  if (!existsSync(COMPILED_CLI)) return result;
  try {
    return { ...result, compiled: await measure(options, true) };
  } catch (error) {
    options.onProgress(`start-up of the compiled CLI failed (left out): ${(error as Error).message.split('\n')[0]}`);
    return result;
  }
}

async function measure(
  options: { fixtures: SharedFixtures; workDir: string; runs: number; onProgress(message: string): void },
  compiled: boolean,
): Promise<Omit<StartupResult, 'compiled'>> {
  const firstStartMs: number[] = [];
  const restartMs: number[] = [];
  for (let run = 0; run < options.runs; run++) {
    const database = await createBenchDatabase('sqlite');
    try {
      const common = {
        databaseUrl: database.url,
        fixtures: options.fixtures,
        workDir: options.workDir,
        logLevel: 'info',
        generatedKeys: true,
        viaNpx: !compiled,
        compiled,
      };
      const first = await startGatehouse({ ...common, name: `startup-${run}-first${compiled ? '-compiled' : ''}` });
      firstStartMs.push(first.startupMs);
      await first.stop();
      const again = await startGatehouse({ ...common, name: `startup-${run}-restart${compiled ? '-compiled' : ''}` });
      restartMs.push(again.startupMs);
      await again.stop();
      options.onProgress(
        `start-up${compiled ? ' (compiled)' : ''} run ${run + 1}/${options.runs}: first start ${first.startupMs} ms, restart ${again.startupMs} ms`,
      );
    } finally {
      await database.drop();
    }
  }
  return {
    command: compiled ? 'node dist/server/cli.js start --config <file>' : 'npx tsx server/cli.ts start --config <file>',
    runs: options.runs,
    firstStartMs,
    restartMs,
    firstStartMedianMs: median(firstStartMs),
    restartMedianMs: median(restartMs),
  };
}
