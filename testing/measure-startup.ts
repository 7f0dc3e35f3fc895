/**
 * Start-up time: from spawning `gatehouse start` to the first 200 from /.well-known/openid-configuration, repeated,
 * median reported. Two variants: the compiled CLI (dist/server/cli.js, what the installed package runs; build it first
 * with `npx tsx scripts/build.ts`) and the TypeScript source through tsx (a checkout). Each on a fresh SQLite file
 * (migrations and key generation included) and on the same file again (a restart).
 *
 *   npx tsx testing/measure-startup.ts [--runs 5]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SERVER_NODE_FLAGS } from '../server/node-flags.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = Number(values.runs);

const variants: { name: string; args: string[] }[] = [
  ...(existsSync(join(root, 'dist/server/cli.js'))
    ? [{ name: 'compiled (node dist/server/cli.js)', args: [...SERVER_NODE_FLAGS, join(root, 'dist/server/cli.js')] }]
    : []),
  {
    name: 'source (node --import tsx server/cli.ts)',
    args: [...SERVER_NODE_FLAGS, '--import', 'tsx', join(root, 'server/cli.ts')],
  },
];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer().once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** Milliseconds from spawn to discovery answering; the server is stopped (SIGTERM) before resolving. */
async function once(args: string[], database: string): Promise<number> {
  const port = await freePort();
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('GATEHOUSE_')));
  const started = performance.now();
  const child = spawn(process.execPath, [...args, 'start', '--port', String(port), '--db', `sqlite:${database}`], {
    cwd: root,
    env: { ...env, GATEHOUSE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`gatehouse exited with ${child.exitCode}`);
      const ok = await fetch(`http://127.0.0.1:${port}/.well-known/openid-configuration`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return performance.now() - started;
      if (performance.now() - started > 60_000) throw new Error('no answer within 60 s');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};
const format = (ms: number[]) =>
  `median ${Math.round(median(ms))} ms (min ${Math.round(Math.min(...ms))}, max ${Math.round(Math.max(...ms))}; ${ms.map(Math.round).join(', ')})`;

console.log(`Node ${process.version}, ${runs} runs each`);
for (const variant of variants) {
  const fresh: number[] = [];
  const restart: number[] = [];
  for (let run = 0; run < runs; run++) {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-startup-'));
    try {
      const database = join(dir, 'gatehouse.sqlite');
      fresh.push(await once(variant.args, database));
      restart.push(await once(variant.args, database));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  console.log(`${variant.name}\n  fresh database: ${format(fresh)}\n  restart:        ${format(restart)}`);
}
