/**
 * Work per operation of a Gatehouse flow, counted where it is sent: the database gateway's totals
 * (`gatehouse_database_*` on the server's metrics port; docs/database-gateway.md) read before and after a batch of
 * operations run one after another. Several batches; per counter the median of the batches, so a background statement
 * that lands in one batch (the outbox's poll every 10 s, a sweep) does not count. A scrape runs statements of its own
 * (the active-session count): measured by two scrapes back to back and taken off every batch.
 */
import type { DatabaseActivity } from '../../stores/sequelize/database.js';
import { median, round } from '../support/stats.js';

export interface WorkCount {
  /** SQL statements (reads + writes; BEGIN/COMMIT/SET/PRAGMA not included). */
  statements: number;
  reads: number;
  writes: number;
  /** COMMITs, plus writes outside a transaction. */
  commits: number;
  /** Everything sent and waited for: statements plus transaction control. */
  roundTrips: number;
  /** Operations counted: batches × per batch. */
  operations: number;
}

const KEYS = ['reads', 'writes', 'commits', 'roundTrips'] as const;

function metric(text: string, line: string): number {
  const found = text.split('\n').find((candidate) => candidate.startsWith(`${line} `));
  if (!found) throw new Error(`metrics: no ${line}`);
  return Number(found.slice(line.length + 1));
}

/** The gateway's totals from a Gatehouse metrics endpoint. */
export async function scrapeActivity(metricsUrl: string): Promise<DatabaseActivity> {
  const response = await fetch(metricsUrl);
  if (response.status !== 200) throw new Error(`metrics: HTTP ${response.status}`);
  const text = await response.text();
  return {
    reads: metric(text, 'gatehouse_database_statements_total{kind="read"}'),
    writes: metric(text, 'gatehouse_database_statements_total{kind="write"}'),
    commits: metric(text, 'gatehouse_database_commits_total'),
    roundTrips: metric(text, 'gatehouse_database_round_trips_total'),
  };
}

function difference(after: DatabaseActivity, before: DatabaseActivity): DatabaseActivity {
  return {
    reads: after.reads - before.reads,
    writes: after.writes - before.writes,
    commits: after.commits - before.commits,
    roundTrips: after.roundTrips - before.roundTrips,
  };
}

/**
 * Counts `operation` (run `perBatch` times per batch, one after another) on the server behind `metricsUrl`. `prepare`,
 * when given, runs before each batch's first scrape and passes what it made to every operation of the batch (a logout
 * needs signed-in browsers).
 */
export async function countWork<S>(
  metricsUrl: string,
  options: {
    batches: number;
    perBatch: number;
    prepare?: (count: number) => Promise<S[]>;
    operation: (index: number, state: S | undefined) => Promise<unknown>;
  },
): Promise<WorkCount> {
  const own: DatabaseActivity[] = [];
  for (let i = 0; i < 3; i++) {
    const first = await scrapeActivity(metricsUrl);
    own.push(difference(await scrapeActivity(metricsUrl), first));
  }
  const scrapeCost = Object.fromEntries(
    KEYS.map((key) => [key, median(own.map((delta) => delta[key]))]),
  ) as unknown as DatabaseActivity;
  const perOperation: DatabaseActivity[] = [];
  for (let batch = 0; batch < options.batches; batch++) {
    const states = options.prepare ? await options.prepare(options.perBatch) : [];
    const before = await scrapeActivity(metricsUrl);
    for (let index = 0; index < options.perBatch; index++) await options.operation(index, states[index]);
    const delta = difference(await scrapeActivity(metricsUrl), before);
    perOperation.push(
      Object.fromEntries(
        KEYS.map((key) => [key, (delta[key] - scrapeCost[key]) / options.perBatch]),
      ) as unknown as DatabaseActivity,
    );
  }
  const [reads, writes, commits, roundTrips] = KEYS.map((key) =>
    round(median(perOperation.map((counts) => counts[key])), 2),
  );
  return {
    statements: round(reads + writes, 2),
    reads,
    writes,
    commits,
    roundTrips,
    operations: options.batches * options.perBatch,
  };
}
