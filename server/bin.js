#!/usr/bin/env node
// The `gatehouse` command. In a checkout it runs the TypeScript source through tsx; from the installed package
// (which ships compiled JavaScript, see scripts/build.ts) it runs dist/server/cli.js.
//
// `gatehouse start` runs the server with Gatehouse's Node flags (server/node-flags.ts says why). Node takes them only
// on its command line and a portable shebang cannot carry them (BusyBox env has no -S), so a start without them runs
// itself again with them, passing signals on and exiting with the server's code. A --max-semi-space-size of your own
// (command line or NODE_OPTIONS) is kept.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';

const SERVER_FLAGS = ['--max-semi-space-size=8'];
const flagName = (flag) => flag.split('=')[0];
const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
const missing = SERVER_FLAGS.filter((flag) => !given.some((arg) => flagName(arg) === flagName(flag)));

if (process.argv[2] === 'start' && missing.length > 0) {
  const child = spawn(process.execPath, [...process.execArgv, ...missing, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? 128 + (constants.signals[signal] ?? 0)));
} else {
  const source = new URL('./cli.ts', import.meta.url);
  if (existsSync(source)) {
    const { register } = await import('tsx/esm/api');
    register();
    await import(source.href);
  } else {
    await import(new URL('../dist/server/cli.js', import.meta.url).href);
  }
}
