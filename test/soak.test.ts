/** The short version of `npm run soak` that CI runs: a bounded mixed load loses nothing and never answers 5xx. */
import test from 'ava';
import { runSoak } from '../bench/soak.js';

for (const dialect of ['sqlite', 'postgres'] as const) {
  test.serial(
    `a short mixed soak on ${dialect}: no 5xx, every session ended with its notification or still listed`,
    async (t) => {
      const report = await runSoak({
        dialect,
        seconds: 8,
        concurrency: 4,
        warmupSeconds: 2,
        log: (line) => t.log(line),
      });
      t.true(report.sessions.created > 5, 'the load ran');
      t.is(report.serverErrors, 0);
      t.is(report.sessions.lost, 0);
      // RSS over a few seconds says little; `npm run soak` (60 s per database) reports the growth against its target.
    },
  );
}
