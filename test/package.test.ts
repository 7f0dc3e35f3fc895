/**
 * The published package, `gatehouse-idp`: build into a staging folder, `npm pack` it, install the tarball into an
 * empty project, and use it there as a user would: the testing harness with openid-client doing the code exchange,
 * the conformance suite from a plain .mjs ava test against a store the project defines, the installed bin stopped by
 * one SIGTERM however it was started, and the declarations in a strict TypeScript consumer. Serial, and slower than
 * the rest (a build, a pack, two installs from the npm cache or the registry).
 *
 * The tarball is installed with --ignore-scripts next to sqlite3 pinned to this checkout's version, whose native
 * binding is then copied from the checkout: where sqlite3's prebuilt binaries cannot be downloaded (as here), its
 * install script compiles SQLite from source, which takes minutes. GATEHOUSE_TEST_PACKAGE_SCRIPTS=1 runs the install
 * scripts instead (a real user's install; allow several minutes).
 */
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { startGatehouse } from '../testing/index.js';
import { freePort } from './helpers/server.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WITH_SCRIPTS = process.env.GATEHOUSE_TEST_PACKAGE_SCRIPTS === '1';
const SQLITE_BINDING = 'node_modules/sqlite3/build/Release/node_sqlite3.node';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A child process on this test's Node (first on PATH, for npm and npx too), without the caller's GATEHOUSE_* and npm settings. */
function childEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('GATEHOUSE_') && !name.startsWith('npm_')),
  );
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
  if (result.code !== 0)
    throw new Error(`${what} failed (${result.code}):\n${result.stderr.slice(-3000)}\n${result.stdout.slice(-2000)}`);
  return result.stdout;
}

const versionOf = (name: string) =>
  (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;

interface Packed {
  work: string;
  project: string;
  files: string[];
  /** `npm ls --omit=dev --all --parseable` of a project holding only the tarball (and sqlite3 pinned). */
  runtimeTree: string[];
  /** Packages of that install whose install scripts npm's allowScripts policy does not cover yet. */
  unreviewedScripts: string[];
}

let packed: Promise<Packed> | undefined;

/** Builds, packs and installs once for every test of this file. */
function packAndInstall(t: ExecutionContext): Promise<Packed> {
  packed ??= (async () => {
    const work = mkdtempSync(join(tmpdir(), 'gatehouse-package-'));
    const stage = join(work, 'stage');
    const project = join(work, 'project');
    mkdirSync(stage);
    mkdirSync(project);

    // 1. Build into the staging folder (the checkout's dist/ is left alone); stage package.json and what "files" lists.
    let started = Date.now();
    await ok(
      'build',
      process.execPath,
      ['--import=tsx', join(ROOT, 'scripts/build.ts'), '--out-dir', join(stage, 'dist')],
      ROOT,
    );
    t.log(`build: ${Date.now() - started} ms`);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { files: string[] };
    for (const entry of [...pkg.files.filter((file) => file !== 'dist'), 'package.json', 'README.md', 'LICENSE']) {
      mkdirSync(dirname(join(stage, entry)), { recursive: true });
      cpSync(join(ROOT, entry), join(stage, entry), { recursive: true });
    }

    // 2. Pack.
    const [tarball] = JSON.parse(
      await ok('npm pack', 'npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], stage),
    ) as {
      filename: string;
      files: { path: string }[];
    }[];

    // 3. Install the tarball alone (with sqlite3 at the checkout's version, whose binding is copied; see above).
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    started = Date.now();
    const install = (packages: string[]) =>
      ok(
        'npm install',
        'npm',
        [
          'install',
          '--no-audit',
          '--no-fund',
          '--prefer-offline',
          ...(WITH_SCRIPTS ? [] : ['--ignore-scripts']),
          ...packages,
        ],
        project,
        WITH_SCRIPTS ? 600_000 : 120_000,
      );
    await install([join(work, tarball!.filename), `sqlite3@${versionOf('sqlite3')}`]);
    t.log(`npm install of the tarball: ${Date.now() - started} ms`);
    const runtimeTree = (await ok('npm ls', 'npm', ['ls', '--omit=dev', '--all', '--parseable'], project))
      .split('\n')
      .filter(Boolean)
      .map((path) => path.split('node_modules/').slice(1).join('node_modules/'))
      .filter(Boolean);
    const scripts = JSON.parse(
      await ok('npm install-scripts ls', 'npm', ['install-scripts', 'ls', '--json'], project),
    ) as { allowScripts: { name: string }[] };

    // 4. What the project's own tests use beside it: a client library, ava, and TypeScript with the optional @types peers.
    started = Date.now();
    await install(
      ['openid-client', 'ava', 'typescript', '@types/node', '@types/koa', '@types/oidc-provider', 'sqlite3'].map(
        (name) => `${name}@${versionOf(name)}`,
      ),
    );
    t.log(`npm install of the project's test tools: ${Date.now() - started} ms`);
    if (!WITH_SCRIPTS) {
      mkdirSync(dirname(join(project, SQLITE_BINDING)), { recursive: true });
      copyFileSync(join(ROOT, SQLITE_BINDING), join(project, SQLITE_BINDING));
    }
    return {
      work,
      project,
      files: tarball!.files.map((file) => file.path),
      runtimeTree,
      unreviewedScripts: scripts.allowScripts.map((entry) => entry.name),
    };
  })();
  return packed;
}

test.after.always(async () => {
  const done = await packed?.catch(() => undefined);
  if (done) rmSync(done.work, { recursive: true, force: true });
});

test.serial(
  'the tarball: compiled JavaScript, declarations, views, migrations, LICENSE, and every file its READMEs link to',
  async (t) => {
    t.timeout(300_000);
    const { files } = await packAndInstall(t);
    for (const expected of [
      'package.json',
      'README.md',
      'LICENSE',
      'server/bin.js',
      'dist/server/cli.js',
      'dist/server/index.js',
      'dist/server/index.d.ts',
      'dist/testing/index.js',
      'dist/testing/index.d.ts',
      'dist/stores/conformance/index.js',
      'dist/stores/conformance/index.d.ts',
      'dist/stores/sequelize/migrations/0001-operational-store.js',
      'dist/views/login.eta',
      'dist/views/layout.eta',
      'testing/README.md',
      'docs/custom-stores.md',
    ]) {
      t.true(files.includes(expected), `the tarball has ${expected}`);
    }
    t.deepEqual(
      files.filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts')),
      [],
      'no TypeScript sources',
    );
    t.deepEqual(
      files.filter((file) => /(^|\/)test\//.test(file) || file.startsWith('examples/') || file.startsWith('bench/')),
      [],
    );
    t.regex(readFileSync(join(ROOT, 'LICENSE'), 'utf8'), /^MIT License/);

    // Every relative link of every Markdown file in the tarball resolves to a file in it (absolute URLs are fine).
    const broken: string[] = [];
    for (const markdown of files.filter((file) => file.endsWith('.md'))) {
      const text = readFileSync(join(ROOT, markdown), 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target!) || target!.startsWith('#')) continue;
        const path = normalize(join(dirname(markdown), target!.split('#')[0]!)).replace(/\/$/, '');
        if (!files.includes(path) && !files.some((file) => file.startsWith(`${path}/`)))
          broken.push(`${markdown}: ${target}`);
      }
    }
    t.deepEqual(broken, [], 'README links that do not resolve inside the package');
  },
);

test.serial(
  'the installed package has no TypeScript tooling, no database driver but sqlite3, and only sqlite3 has an install script',
  async (t) => {
    t.timeout(300_000);
    const { runtimeTree, unreviewedScripts, project } = await packAndInstall(t);
    const names = new Set(runtimeTree);
    t.true(names.has('gatehouse-idp'));
    for (const tooling of ['typescript', 'tsx', 'esbuild', 'ts-node', 'pg', 'mariadb', 'mysql2'])
      t.false(names.has(tooling), `${tooling} is not installed`);
    t.deepEqual(
      [...names].filter((name) => name.startsWith('@esbuild/')),
      [],
    );
    const own = JSON.parse(readFileSync(join(project, 'node_modules/gatehouse-idp/package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    t.deepEqual(
      Object.keys(own.dependencies).filter((name) => name.startsWith('@types/') || name === 'tsx'),
      [],
      'no @types or tsx among its own dependencies',
    );
    t.deepEqual(
      unreviewedScripts,
      ['sqlite3'],
      'the one install script a user allows (npm install-scripts approve sqlite3)',
    );
    t.log(`${names.size} packages at run time`);
  },
);

test.serial(
  'startGatehouse + authorize() from the installed package, with openid-client exchanging the code',
  async (t) => {
    t.timeout(300_000);
    const { project } = await packAndInstall(t);
    writeFileSync(
      join(project, 'harness.mjs'),
      `import * as client from 'openid-client';
     import { startGatehouse } from 'gatehouse-idp/testing';
     import { createServer } from 'gatehouse-idp';
     const idp = await startGatehouse({
       users: [{ subject: 'alice', password: 'alice-pw', claims: { name: 'Alice' } }],
       clients: [{ client_id: 'app', client_secret: 'app-secret', redirect_uris: ['http://127.0.0.1:9/cb'] }],
     });
     try {
       const config = await client.discovery(new URL(idp.issuer), 'app', 'app-secret', undefined, { execute: [client.allowInsecureRequests] });
       const verifier = client.randomPKCECodeVerifier();
       const state = client.randomState();
       const url = client.buildAuthorizationUrl(config, { redirect_uri: 'http://127.0.0.1:9/cb', scope: 'openid profile', state,
         code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
       const response = await idp.authorize({ subject: 'alice', url });
       const tokens = await client.authorizationCodeGrant(config, response.url, { pkceCodeVerifier: verifier, expectedState: state });
       const userinfo = await client.fetchUserInfo(config, tokens.access_token, 'alice');
       const login = await idp.login({ subject: 'alice', clientId: 'app' });
       const sessions = await idp.sessions.sessionsOf('alice');
       console.log(JSON.stringify({ sub: tokens.claims().sub, name: userinfo.name, sessions: sessions.length, loginSub: login.tokens.claims.sub, createServer: typeof createServer }));
     } finally {
       await idp.stop();
     }`,
    );
    const output = JSON.parse(await ok('harness.mjs', process.execPath, ['harness.mjs'], project, 60_000)) as Record<
      string,
      unknown
    >;
    t.deepEqual(output, { sub: 'alice', name: 'Alice', sessions: 2, loginSub: 'alice', createServer: 'function' });
  },
);

/** The project's own store: the package's memory store, which a test can make fail the way broken storage does. */
const APP_STORE = `import { MemorySessionStore, SessionStoreError } from 'gatehouse-idp';

/** Keys whose record reads fail as corrupt, and keys whose reads fail as unreachable storage. */
export const damaged = { corrupt: new Set(), unreachable: new Set() };

export class AppStore extends MemorySessionStore {
  async get(key) {
    if (damaged.corrupt.has(key)) throw new SessionStoreError('corrupt', 'get: the stored record cannot be read');
    if (damaged.unreachable.has(key)) throw new SessionStoreError('unavailable', 'get: the storage does not answer');
    return super.get(key);
  }
  async delete(key) {
    damaged.corrupt.delete(key);
    return super.delete(key);
  }
}

export default AppStore;
`;

test.serial(
  'the conformance suite from the package, in a plain .mjs ava test: a store of the project passes, skipped checks show, a broken store fails fast',
  async (t) => {
    t.timeout(300_000);
    const { project } = await packAndInstall(t);
    writeFileSync(join(project, 'app-store.mjs'), APP_STORE);
    writeFileSync(
      join(project, 'conformance.test.mjs'),
      `import test from 'ava';
     import { runSessionStoreConformance } from 'gatehouse-idp/conformance';
     import { AppStore } from './app-store.mjs';
     runSessionStoreConformance(test, {
       name: 'app store',
       provides: ['deleteMany'],
       async createStore(clock, { logger }) {
         return { store: new AppStore({ clock, logger }) };
       },
     });`,
    );
    const ava = join(project, 'node_modules/ava/entrypoints/cli.mjs');
    const good = await run(process.execPath, [ava, 'conformance.test.mjs'], project, 180_000);
    const goodOutput = good.stdout + good.stderr;
    t.is(good.code, 0, goodOutput.slice(-3000));
    t.regex(goodOutput, /\d+ tests passed/);
    t.regex(goodOutput, /8 tests skipped/, 'directRead and the 7 corrupt-record checks are listed as skipped');
    t.regex(
      goodOutput,
      /\[skip\] app store: corrupt records: .* \[needs createStore's corrupt hook: not in provides\]/,
    );

    // A store that releases every claim at once (so it hands records out again) and whose page tokens never end.
    writeFileSync(
      join(project, 'broken-store.test.mjs'),
      `import test from 'ava';
     import { runSessionStoreConformance } from 'gatehouse-idp/conformance';
     import { AppStore } from './app-store.mjs';
     class BrokenStore extends AppStore {
       async claimExpired(count, lease) {
         const batch = await super.claimExpired(count, lease);
         for (const record of batch) await super.update(record); // an update releases the claim: the lease is ignored
         return batch;
       }
       async querySessions(query) {
         const page = await super.querySessions(query);
         return { ...page, hasNext: true, nextToken: 'more' };
       }
     }
     runSessionStoreConformance(test, {
       name: 'broken store',
       provides: ['deleteMany'],
       async createStore(clock, { logger }) {
         return { store: new BrokenStore({ clock, logger }) };
       },
     });`,
    );
    const broken = await run(
      process.execPath,
      [
        ava,
        'broken-store.test.mjs',
        '--match',
        '*several concurrent callers*',
        '--match',
        '*exactly once*',
        '--timeout',
        '60s',
      ],
      project,
      180_000,
    );
    const brokenOutput = broken.stdout + broken.stderr;
    t.is(broken.code, 1, brokenOutput.slice(-3000));
    t.regex(brokenOutput, /claimExpired\(7, 300\) still returned records after 201 calls/);
    t.regex(brokenOutput, /querySessions: still a nextToken after 5 pages/);
    t.notRegex(brokenOutput, /Timed out/, 'failed by the bounds, not by the timeout');
  },
);

test.serial(
  'a store module built against the installed package, in a server from this checkout: its store errors are understood',
  async (t) => {
    t.timeout(300_000);
    const { project } = await packAndInstall(t);
    const storeModule = join(project, 'app-store.mjs');
    writeFileSync(storeModule, APP_STORE);
    // The store's SessionStoreError is the installed package's class; the server's is this checkout's.
    const { damaged } = (await import(pathToFileURL(storeModule).href)) as {
      damaged: { corrupt: Set<string>; unreachable: Set<string> };
    };
    const idp = await startGatehouse({
      users: [{ subject: 'alice', password: 'alice-pw' }],
      clients: [{ client_id: 'app', client_secret: 'app-secret', redirect_uris: ['http://127.0.0.1:9/cb'] }],
      config: { serverSideSessions: { store: storeModule } },
    });
    t.teardown(() => idp.stop());
    t.is(idp.server.sessionStore?.constructor.name, 'AppStore');

    const unreachable = await idp.login({ subject: 'alice', clientId: 'app' });
    const unreachableKey = (await idp.server.sessionStore!.getBySessionId(unreachable.sessionId!))!.key;
    damaged.unreachable.add(unreachableKey);
    await t.throwsAsync(
      idp.authorize({ subject: 'alice', clientId: 'app', prompt: 'none', sessionCookie: unreachable.sessionCookie }),
      {
        message: /^authorize: 503 at \/auth/,
      },
    );
    damaged.unreachable.delete(unreachableKey);

    const { sessionCookie, sessionId } = await idp.login({ subject: 'alice', clientId: 'app' });
    damaged.corrupt.add((await idp.server.sessionStore!.getBySessionId(sessionId!))!.key);
    const response = await idp.authorize({ subject: 'alice', clientId: 'app', prompt: 'none', sessionCookie });
    t.is(response.error, 'login_required', 'the unreadable session signs no one in (no server error)');
    t.is(await idp.sessions.getSession(sessionId!), null, 'and its record was deleted');
  },
);

test.serial('a database URL whose driver is not installed is refused naming the package to install', async (t) => {
  t.timeout(300_000);
  const { project } = await packAndInstall(t);
  const bin = join(project, 'node_modules/.bin/gatehouse');
  for (const [url, driver] of [
    ['postgres://127.0.0.1:5432/gatehouse', 'pg'],
    ['mysql://127.0.0.1:3306/gatehouse', 'mysql2'],
    ['mariadb://127.0.0.1:3306/gatehouse', 'mariadb'],
  ] as const) {
    const result = await run(bin, ['migrate', '--db', url], project, 60_000);
    t.is(result.code, 2, result.stderr);
    t.true(
      result.stderr.includes(`needs the "${driver}" package, which is not installed: npm install ${driver}`),
      result.stderr,
    );
  }
});

/** How the installed bin is started; `signalled` is the process the test started and sends its one SIGTERM to. */
const STARTS: { name: string; command: (project: string) => [string, string[]] }[] = [
  { name: 'npx gatehouse start', command: () => ['npx', ['gatehouse', 'start']] },
  { name: 'npm start', command: () => ['npm', ['start', '--']] },
  { name: 'the bin itself', command: (project) => [join(project, 'node_modules/.bin/gatehouse'), ['start']] },
];

test.serial(
  'the installed bin stops on one SIGTERM to the process that was started: npx, npm start, the bin itself',
  async (t) => {
    t.timeout(300_000);
    const { project, work } = await packAndInstall(t);
    writeFileSync(
      join(project, 'gatehouse.yaml'),
      [
        'logging: { level: info }',
        'accounts: [{ subject: alice, password: alice-pw }]',
        'clients: [{ client_id: app, client_secret: app-secret, redirect_uris: ["http://127.0.0.1:9/cb"] }]',
      ].join('\n'),
    );
    const pkg = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(project, 'package.json'), JSON.stringify({ ...pkg, scripts: { start: 'gatehouse start' } }));

    for (const { name, command } of STARTS) {
      const port = await freePort();
      const [file, args] = command(project);
      // Its own process group, so that the teardown can clean up after a failure; the test signals the one process only.
      const child = spawn(
        file,
        [
          ...args,
          '--port',
          String(port),
          '--db',
          `sqlite:${join(work, `${port}.sqlite`)}`,
          '--config',
          'gatehouse.yaml',
        ],
        {
          cwd: project,
          env: childEnv(),
          detached: true,
        },
      );
      t.teardown(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // gone, as it should be
        }
      });
      let output = '';
      child.stdout.on('data', (chunk) => (output += chunk));
      child.stderr.on('data', (chunk) => (output += chunk));
      // The pipes close once every process that writes to them has exited: npm, its shell and the server alike.
      const closed = Promise.all(
        [child.stdout, child.stderr].map(
          (stream) => new Promise<void>((resolve) => stream.on('close', () => resolve())),
        ),
      );
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.on('exit', (code, signal) => resolve({ code, signal })),
      );

      let started = Date.now();
      let discovery: { issuer?: string } | undefined;
      while (!discovery && Date.now() - started < 60_000 && child.exitCode === null) {
        discovery = await fetch(`http://localhost:${port}/.well-known/openid-configuration`)
          .then((response) => (response.ok ? (response.json() as Promise<{ issuer?: string }>) : undefined))
          .catch(() => new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 100)));
      }
      t.is(discovery?.issuer, `http://localhost:${port}`, `${name}: discovery answered; output:\n${output}`);
      t.log(`${name}: discovery after ${Date.now() - started} ms`);

      process.kill(child.pid!, 'SIGTERM');
      const { code, signal } = await exited;
      started = Date.now();
      let listening = true;
      while (listening && Date.now() - started < 20_000) {
        listening = await fetch(`http://localhost:${port}/healthz`).then(
          () => new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 100)),
          () => false,
        );
      }
      t.false(listening, `${name}: the server stopped (not left running, orphaned); output:\n${output}`);
      const allExited = await Promise.race([
        closed.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 20_000)),
      ]);
      t.true(allExited, `${name}: no process is left holding its output`);
      t.regex(
        output,
        /"signal":"SIGTERM","msg":"shutting down"/,
        `${name}: the server itself shut down on the SIGTERM`,
      );
      t.notRegex(output, /"level":50/, `${name}: no errors logged:\n${output}`);
      t.log(`${name}: exited with ${code ?? signal}, stopped ${Date.now() - started} ms after`);
      if (name === 'the bin itself') t.is(code, 0, 'one process: the server itself exits 0');
    }
  },
);

test.serial(
  'the declarations type-check in a strict TypeScript consumer (with the optional @types peers installed)',
  async (t) => {
    t.timeout(300_000);
    const { project } = await packAndInstall(t);
    writeFileSync(
      join(project, 'consumer.ts'),
      `import { startGatehouse, type AuthorizeResult, type LoginResult } from 'gatehouse-idp/testing';
     import { createServer, isSessionStoreError, SessionStoreError, type GatehouseServer, type SessionStoreContext } from 'gatehouse-idp';
     import { runSessionStoreConformance, type ConformanceOptions } from 'gatehouse-idp/conformance';
     const gatehouse = await startGatehouse({ users: [{ subject: 'a', password: 'p' }], clients: [{ client_id: 'c', client_secret: 's', redirect_uris: ['http://127.0.0.1/cb'] }] });
     const result: LoginResult = await gatehouse.login({ subject: 'a', clientId: 'c', scope: 'openid' });
     const response: AuthorizeResult = await gatehouse.authorize({ subject: 'a', clientId: 'c', state: 'x', codeChallenge: 'y' });
     const code: string | undefined = response.code;
     const sub: string = result.tokens.claims.sub;
     const count: number = (await gatehouse.sessions.sessionsOf(sub)).length;
     gatehouse.server.app.use(async (ctx, next) => { ctx.set('x-count', String(count)); await next(); });
     const server: GatehouseServer = await createServer({ port: 0, idToken: { scopeClaims: true }, serverSideSessions: { storeOptions: { url: 'x' } } });
     const options: SessionStoreContext['options'] = server.config.serverSideSessions.storeOptions;
     const unavailable: boolean = isSessionStoreError(new SessionStoreError('unavailable', 'down'), 'unavailable');
     const suite: ConformanceOptions['provides'] = ['directRead', 'corrupt', 'deleteMany'];
     export const exported = [server.provider.issuer, code, options, unavailable, suite, typeof runSessionStoreConformance];`,
    );
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2023',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
        },
        files: ['consumer.ts'],
      }),
    );
    await ok(
      'tsc in the consumer',
      process.execPath,
      [join(project, 'node_modules/typescript/bin/tsc'), '-p', project],
      project,
    );
    t.pass('declarations type-check');
  },
);

test.serial('in a checkout the bin runs the TypeScript source, and says what is missing without tsx', async (t) => {
  t.timeout(120_000);
  // A checkout's copy of the bin beside a cli.ts, without node_modules: tsx (a devDependency) cannot be found.
  const checkout = mkdtempSync(join(tmpdir(), 'gatehouse-checkout-'));
  t.teardown(() => rmSync(checkout, { recursive: true, force: true }));
  mkdirSync(join(checkout, 'server'));
  copyFileSync(join(ROOT, 'server/bin.js'), join(checkout, 'server/bin.js'));
  writeFileSync(join(checkout, 'server/cli.ts'), 'console.log("source");\n');
  writeFileSync(join(checkout, 'package.json'), JSON.stringify({ type: 'module' }));
  const withoutTsx = await run(process.execPath, [join(checkout, 'server/bin.js'), 'users', 'list'], checkout);
  t.is(withoutTsx.code, 2);
  t.regex(withoutTsx.stderr, /a checkout runs server\/cli\.ts through tsx, a devDependency: run `npm install`/);
  t.false(existsSync(join(checkout, 'dist')));
});
