/**
 * `npm run bench` — every benchmark area; `npm run bench -- <area> [<area>...]` — only those.
 * `BENCH_SCALE=full` runs the largest sizes. Each area prints plain-text tables to stdout, progress to stderr, and
 * writes bench/results/<area>.json. With more than one area, each runs in its own Node process, so one area's
 * heap never shows up in another's memory figures.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { benchScale, type Scale } from './support/scale.js';

type Area = { run(scale: Scale): Promise<void> };

/** Area name → its module. A new area is one file plus one line here. */
const AREAS: Record<string, () => Promise<Area>> = {
  'session-store': () => import('./session-store.js'),
  sweeper: () => import('./sweeper.js'),
  compare: () => import('./compare.js'),
};

const requested = process.argv.slice(2).filter((arg) => arg !== '--');
const unknown = requested.filter((name) => !(name in AREAS));
if (unknown.length) {
  console.error(`unknown benchmark area: ${unknown.join(', ')} (areas: ${Object.keys(AREAS).join(', ')})`);
  process.exit(2);
}
const areas = requested.length ? [...new Set(requested)] : Object.keys(AREAS);
const scale = benchScale();

if (areas.length === 1) {
  await (await AREAS[areas[0]]()).run(scale);
  // Database pools and timers of the area must not keep the process alive.
  process.exit(0);
} else {
  let failed = 0;
  for (const area of areas) {
    const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), area], {
      stdio: 'inherit',
    });
    if (child.status !== 0) {
      failed++;
      console.error(`benchmark area ${area} failed (exit ${child.status ?? child.signal})`);
    }
  }
  process.exit(failed ? 1 : 0);
}
