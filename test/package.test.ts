/**
 * The published package: build into a staging folder, `npm pack` it, install the tarball into an empty project, and
 * use it there as a user would: `npx gatehouse start` answers discovery, and `gatehouse-idp/testing` signs a user in with
 * nothing but the package's runtime dependencies. Serial, and slower than the rest (about 40 s: a build, a pack, an
 * install from the npm cache or the registry).
 *
 * The tarball is installed with --ignore-scripts next to sqlite3 pinned to this checkout's version, whose native
 * binding is then copied from the checkout: where sqlite3's prebuilt binaries cannot be downloaded (as here), its
 * install script compiles SQLite from source, which takes minutes. GATEHOUSE_TEST_PACKAGE_SCRIPTS=1 runs the install
 * scripts instead (a real user's install; allow several minutes).
 */
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { freePort } from './helpers/server.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * The package.json changes for the compiled package (see the report). Until package.json has them, the staged copy
 * gets them from here; afterwards the staged copy is package.json as it is, and this can go.
 */
const PACKAGE_FIELDS = {
  exports: {
    '.': { types: './dist/server/index.d.ts', default: './dist/server/index.js' },
    './conformance': { types: './dist/stores/conformance/index.d.ts', default: './dist/stores/conformance/index.js' },
    './testing': { types: './dist/testing/index.d.ts', default: './dist/testing/index.js' },
    './package.json': './package.json',
  },
  files: ['dist', 'server/bin.js'],
};
/** Types that the published declarations import (GatehouseServer.app is a Koa, .provider a Provider). */
const PUBLIC_TYPES = ['@types/koa', '@types/oidc-provider'];

function withPendingChanges(pkg: Record<string, any>, log: (message: string) => void): Record<string, any> {
  if (!pkg.files) {
    log('package.json has no "files" yet: staged with the exports/files of PACKAGE_FIELDS');
    Object.assign(pkg, PACKAGE_FIELDS);
  }
  for (const name of PUBLIC_TYPES) {
    if (pkg.dependencies[name] || !pkg.devDependencies?.[name]) continue;
    log(`${name} is not a dependency yet: staged with it moved from devDependencies`);
    pkg.dependencies[name] = pkg.devDependencies[name];
    delete pkg.devDependencies[name];
  }
  return pkg;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A child process on this test's Node (first on PATH, for npm and npx too), without the caller's GATEHOUSE_* settings. */
function childEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('GATEHOUSE_') && !name.startsWith('npm_')));
  env.PATH = [dirname(process.execPath), env.PATH].join(':');
  return env;
}

function run(command: string, args: string[], cwd: string, timeout = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, env: childEnv(), timeout, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

async function ok(what: string, command: string, args: string[], cwd: string, timeout?: number): Promise<string> {
  const result = await run(command, args, cwd, timeout);
  if (result.code !== 0) throw new Error(`${what} failed (${result.code}):\n${result.stderr.slice(-3000)}\n${result.stdout.slice(-2000)}`);
  return result.stdout;
}

test.serial('the packed tarball installs into an empty project and runs: gatehouse start, gatehouse/testing', async (t) => {
  t.timeout(180_000);
  const work = mkdtempSync(join(tmpdir(), 'gatehouse-package-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const stage = join(work, 'stage');
  const project = join(work, 'project');
  mkdirSync(join(stage, 'server'), { recursive: true });
  mkdirSync(project);

  // 1. Build into the staging folder (the checkout's dist/ is left alone) and stage package.json, bin and README.
  let started = Date.now();
  await ok('build', process.execPath, ['--import=tsx', join(ROOT, 'scripts/build.ts'), '--out-dir', join(stage, 'dist')], ROOT);
  t.log(`build: ${Date.now() - started} ms`);
  const pkg = withPendingChanges(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')), (message) => t.log(message));
  writeFileSync(join(stage, 'package.json'), JSON.stringify(pkg, null, 2));
  copyFileSync(join(ROOT, 'server/bin.js'), join(stage, 'server/bin.js'));
  copyFileSync(join(ROOT, 'README.md'), join(stage, 'README.md'));

  // 2. Pack: compiled JavaScript, declarations, views and migrations; no TypeScript sources, no tests.
  const [packed] = JSON.parse(await ok('npm pack', 'npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], stage)) as {
    filename: string;
    files: { path: string }[];
  }[];
  const files = packed!.files.map((file) => file.path);
  for (const expected of [
    'package.json',
    'README.md',
    'server/bin.js',
    'dist/server/cli.js',
    'dist/server/index.js',
    'dist/server/index.d.ts',
    'dist/testing/index.js',
    'dist/testing/index.d.ts',
    'dist/stores/conformance/index.js',
    'dist/stores/sequelize/migrations/0001-operational-store.js',
    'dist/views/login.eta',
    'dist/views/layout.eta',
  ]) {
    t.true(files.includes(expected), `the tarball has ${expected}`);
  }
  t.deepEqual(files.filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts')), [], 'no TypeScript sources');
  t.deepEqual(files.filter((file) => /(^|\/)test\//.test(file) || file.startsWith('examples/') || file.startsWith('bench/')), []);

  // 3. Install the tarball into an empty project.
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  const withScripts = process.env.GATEHOUSE_TEST_PACKAGE_SCRIPTS === '1';
  const binding = 'node_modules/sqlite3/build/Release/node_sqlite3.node';
  const versionOf = (name: string) => (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  // sqlite3 at the checkout's version (see above); typescript and @types/node to type-check a consumer (step 6).
  const extras = ['sqlite3', 'typescript', '@types/node'].map((name) => `${name}@${versionOf(name)}`);
  started = Date.now();
  await ok(
    'npm install',
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      ...(withScripts ? [] : ['--ignore-scripts']),
      join(work, packed!.filename),
      ...extras,
    ],
    project,
    withScripts ? 600_000 : 120_000,
  );
  if (!withScripts) {
    // sqlite3 pinned to the checkout's version above, so the checkout's binding fits.
    mkdirSync(dirname(join(project, binding)), { recursive: true });
    copyFileSync(join(ROOT, binding), join(project, binding));
  }
  t.log(`npm install: ${Date.now() - started} ms`);
  t.false(existsSync(join(project, 'node_modules/openid-client')), 'no relying-party library in the installed tree');

  // 4. `npx gatehouse start` with a tiny config, on a SQLite file: discovery answers; SIGTERM stops it cleanly.
  const port = await freePort();
  writeFileSync(
    join(project, 'gatehouse.yaml'),
    ['logging: { level: info }', 'accounts: [{ subject: alice, password: alice-pw }]', 'clients: [{ client_id: app, client_secret: app-secret, redirect_uris: ["http://127.0.0.1:9/cb"] }]'].join('\n'),
  );
  const child = spawn('npx', ['gatehouse', 'start', '--port', String(port), '--db', `sqlite:${join(work, 'gatehouse.sqlite')}`, '--config', 'gatehouse.yaml'], {
    cwd: project,
    env: childEnv(),
    detached: true,
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  // npx does not pass signals on to the command it runs: signal the whole process group (npx and gatehouse).
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // the group is gone
    }
  };
  t.teardown(() => signalGroup('SIGKILL'));
  started = Date.now();
  let discovery: { issuer?: string; token_endpoint?: string } | undefined;
  while (!discovery && Date.now() - started < 30_000 && child.exitCode === null) {
    discovery = await fetch(`http://localhost:${port}/.well-known/openid-configuration`)
      .then((response) => (response.ok ? response.json() : undefined))
      .catch(() => new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 50)));
  }
  t.log(`npx gatehouse start -> discovery: ${Date.now() - started} ms`);
  t.truthy(discovery, `discovery answered; output:\n${output}`);
  t.is(discovery?.issuer, `http://localhost:${port}`);
  t.is(discovery?.token_endpoint, `http://localhost:${port}/token`);
  signalGroup('SIGTERM');
  await exited;
  const stopping = Date.now();
  let listening = true;
  while (listening && Date.now() - stopping < 10_000) {
    listening = await fetch(`http://localhost:${port}/healthz`).then(
      () => new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 50)),
      () => false,
    );
  }
  t.false(listening, 'the server stopped on SIGTERM');
  t.regex(output, /"msg":"shutting down"/);
  t.notRegex(output, /"level":50/, `no errors logged:\n${output}`);

  // 5. `gatehouse-idp/testing` from the installed package: start, a real login, stop (fetch and node:crypto only).
  writeFileSync(
    join(project, 'harness.js'),
    `import { startGatehouse } from 'gatehouse-idp/testing';
     import { createServer } from 'gatehouse-idp';
     const gatehouse = await startGatehouse({
       users: [{ subject: 'alice', password: 'alice-pw' }],
       clients: [{ client_id: 'app', client_secret: 'app-secret', redirect_uris: ['http://127.0.0.1:9/cb'] }],
     });
     const { tokens, sessionId } = await gatehouse.login({ subject: 'alice', clientId: 'app' });
     const sessions = await gatehouse.sessions.sessionsOf('alice');
     await gatehouse.stop();
     console.log(JSON.stringify({ sub: tokens.claims.sub, session: sessions[0]?.sessionId === sessionId, createServer: typeof createServer }));`,
  );
  const harness = JSON.parse(await ok('gatehouse-idp/testing', process.execPath, ['harness.js'], project, 60_000)) as Record<string, unknown>;
  t.deepEqual(harness, { sub: 'alice', session: true, createServer: 'function' });

  // 6. The declarations type-check in a strict TypeScript consumer, without skipLibCheck.
  writeFileSync(
    join(project, 'consumer.ts'),
    `import { startGatehouse, type LoginResult } from 'gatehouse-idp/testing';
     import { createServer, type GatehouseServer } from 'gatehouse-idp';
     const gatehouse = await startGatehouse({ users: [{ subject: 'a', password: 'p' }], clients: [{ client_id: 'c', client_secret: 's', redirect_uris: ['http://127.0.0.1/cb'] }] });
     const result: LoginResult = await gatehouse.login({ subject: 'a', clientId: 'c', scope: 'openid' });
     const sub: string = result.tokens.claims.sub;
     const count: number = (await gatehouse.sessions.sessionsOf(sub)).length;
     gatehouse.server.app.use(async (ctx, next) => { ctx.set('x-count', String(count)); await next(); });
     const server: GatehouseServer = await createServer({ port: 0 });
     export const issuer: string = server.provider.issuer;`,
  );
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { target: 'ES2023', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false, types: ['node'] }, files: ['consumer.ts'] }),
  );
  await ok('tsc in the consumer', process.execPath, [join(project, 'node_modules/typescript/bin/tsc'), '-p', project], project);
  t.pass('declarations type-check');
});
