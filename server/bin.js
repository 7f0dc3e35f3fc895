#!/usr/bin/env node
// The `gatehouse` command: one process, however it is started (npx, npm start, the bin directly, a container's PID 1),
// so that one SIGTERM to the process a user started stops the server (docs/package.md, "Signals").
//
// Node flags. `gatehouse start` runs the server with Gatehouse's Node flags (server/node-flags.ts says why). Node takes
// them only on its command line and a portable shebang cannot carry them (BusyBox env has no -S), so a start without
// them replaces itself with `node <flags> bin.js start ...` through process.execve (not on Windows): the same
// process and PID, so signals reach the server itself. Where execve is missing, the server runs without the flags (they
// tune memory, nothing else). A --max-semi-space-size of your own (command line or NODE_OPTIONS) is kept.
//
// npm. `npx gatehouse start` and `npm start` run the bin through `sh -c`. npm passes SIGINT/SIGTERM on to that shell,
// and a shell that does not exec its last command (Debian's dash) dies of it without passing it on, which would leave
// the server running, orphaned. A server that npm started therefore also stops, as on SIGTERM, when its parent goes.
//
// Source or compiled. In a checkout (server/cli.ts beside this file) it runs the TypeScript source through tsx, a
// devDependency; the installed package runs the compiled dist/server/cli.js and needs no TypeScript tooling.
//
// Node version. package.json `engines` says which Node Gatehouse needs, but npm only warns; an older Node would fail
// on a missing node:crypto export with a stack trace. This file runs on any Node, so it checks first and says so in
// one line (server/node-version.ts does the same for the package's import entry points).
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const SERVER_FLAGS = ['--max-semi-space-size=8'];
const PARENT_POLL_MS = 250;

const source = new URL('./cli.ts', import.meta.url);
const compiled = new URL('../dist/server/cli.js', import.meta.url);

const nodeProblem = unsupportedNode();
if (nodeProblem) {
  console.error(`gatehouse: ${nodeProblem}`);
  process.exit(1);
}

if (process.argv[2] === 'start') {
  const flagName = (flag) => flag.split('=')[0];
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  const missing = SERVER_FLAGS.filter((flag) => !given.some((arg) => flagName(arg) === flagName(flag)));
  if (missing.length > 0 && typeof process.execve === 'function') {
    try {
      process.execve(process.execPath, [
        process.execPath,
        ...process.execArgv,
        ...missing,
        fileURLToPath(import.meta.url),
        ...process.argv.slice(2),
      ]);
    } catch {
      // Not on this platform (Windows): run without the flags.
    }
  }
  stopWhenNpmParentExits();
}

if (existsSync(source)) {
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    if (!existsSync(compiled)) {
      console.error(
        'gatehouse: a checkout runs server/cli.ts through tsx, a devDependency: run `npm install` (or `npm run build`)',
      );
      process.exit(2);
    }
  }
  if (register) {
    register();
    await import(source.href);
  } else {
    await import(compiled.href);
  }
} else {
  await import(compiled.href);
}

/** Why this Node cannot run Gatehouse (older than package.json `engines.node`, ">=X.Y.Z"), or undefined. */
function unsupportedNode() {
  const range = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).engines?.node;
  const minimum = /^>=\s*(\d+)\.(\d+)\.(\d+)$/.exec(range ?? '');
  if (!minimum) return undefined; // no such rule to check (test/node-version.test.ts keeps Gatehouse's in this form)
  const need = minimum.slice(1).map(Number);
  const have = process.versions.node.split('.').map(Number);
  const differs = need.findIndex((part, index) => have[index] !== part);
  if (differs === -1 || have[differs] > need[differs]) return undefined;
  const checkout = existsSync(source)
    ? ' In a checkout, `npm start` and `npx gatehouse ...` run the Node 24 of its `node` devDependency.'
    : '';
  return `Gatehouse needs Node.js ${need.join('.')} or later (this is ${process.version}): it hashes passwords with node:crypto's argon2.${checkout}`;
}

/** Started by npm (npx, npm start, npm run): stop, as on SIGTERM, once the shell npm started us through is gone. */
function stopWhenNpmParentExits() {
  if (process.env.npm_lifecycle_event === undefined || process.platform === 'win32') return;
  const parent = process.ppid;
  if (parent <= 1) return;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    process.kill(process.pid, 'SIGTERM');
  }, PARENT_POLL_MS);
  timer.unref();
}
