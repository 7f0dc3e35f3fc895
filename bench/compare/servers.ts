/**
 * The servers under comparison, each in its own child process on loopback (so /proc/<pid> figures are the server's
 * own): Gatehouse through its real CLI (`server/cli.ts start --config <file>`, metrics on a loopback port of their own
 * so the bench can read the database gateway's counters) and the oidc-provider peers (peer-server.ts, one storage
 * each). A server is ready when its discovery document answers; the time from spawn to that answer is its start-up time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVER_NODE_FLAGS } from '../../server/node-flags.js';
import { freePort } from '../../test/helpers/server.js';
import {
  ADMIN_CLIENT,
  BENCH_API,
  CHEAP_HASHING,
  clientMetadata,
  type PeerSettings,
  type PeerStorage,
  type SharedFixtures,
} from './fixtures.js';
import type { PasswordHashing } from '../../server/provider/passwords.js';

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = join(HERE, '..', '..');
const CLI = join(REPO_ROOT, 'server', 'cli.ts');
const PEER = join(HERE, 'peer-server.ts');

/** Node flags of this process that load TypeScript (tsx's loader), for children running .ts files. */
export function loaderArgs(): string[] {
  const args: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--eval' || argv[i] === '-e' || argv[i] === '--print' || argv[i] === '-p') {
      i++;
      continue;
    }
    args.push(argv[i]);
  }
  return args;
}

export interface ServerHandle {
  name: string;
  issuer: string;
  pid: number;
  /** From spawn to the first 200 of the discovery document. */
  startupMs: number;
  logFile: string;
  /** Gatehouse: its Prometheus metrics (loopback). */
  metricsUrl?: string;
  stop(): Promise<void>;
}

/** A child environment without GATEHOUSE_* variables of the caller (they would override the config file). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('GATEHOUSE_')) env[key] = value;
  return { ...env, ...extra };
}

async function waitForDiscovery(
  issuer: string,
  child: ChildProcess,
  logFile: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = `exited (${code ?? signal})`));
  while (Date.now() < deadline) {
    if (exited) throw new Error(`server ${exited} before it was ready:\n${tail(logFile)}`);
    try {
      const response = await fetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(2000) });
      if (response.status === 200) {
        await response.arrayBuffer();
        return;
      }
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`server not ready after ${timeoutMs} ms:\n${tail(logFile)}`);
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-30).join('\n');
  } catch {
    return '(no log)';
  }
}

function stopper(child: ChildProcess, group: boolean): () => Promise<void> {
  let stopped: Promise<void> | undefined;
  return () => {
    stopped ??= new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const kill = (signal: NodeJS.Signals) => {
        try {
          if (group) process.kill(-child.pid!, signal);
          else child.kill(signal);
        } catch {
          // already gone
        }
      };
      const timer = setTimeout(() => kill('SIGKILL'), 15_000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      kill('SIGTERM');
    });
    return stopped;
  };
}

export interface GatehouseOptions {
  name: string;
  databaseUrl: string;
  fixtures: SharedFixtures;
  workDir: string;
  logLevel: string;
  /** Extra node flags for the server process (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Leave out the signing and cookie keys, so the server generates and stores its own (a first start). */
  generatedKeys?: boolean;
  /** Start as `npx tsx server/cli.ts start ...` (the documented command) instead of node with tsx's loader. */
  viaNpx?: boolean;
  /** Start the compiled CLI (dist/server/cli.js) with plain node. */
  compiled?: boolean;
  /** passwordHashing (default: the cheap bench cost). Gatehouse re-hashes a password at this cost on sign-in. */
  hashing?: PasswordHashing;
  /** Serve metrics on a loopback port of their own (the database gateway's counters: `metricsUrl`). */
  metrics?: boolean;
}

/** The compiled CLI, when the package has been built. */
export const COMPILED_CLI = join(REPO_ROOT, 'dist', 'server', 'cli.js');

/** The Gatehouse config file for a bench server. */
export function gatehouseConfig(
  options: GatehouseOptions,
  port: number,
  metricsPort?: number,
): Record<string, unknown> {
  const { fixtures } = options;
  return {
    issuer: `http://127.0.0.1:${port}`,
    port,
    host: '127.0.0.1',
    database: { url: options.databaseUrl },
    logging: { level: options.logLevel },
    ...(options.generatedKeys ? {} : { keys: { jwks: { keys: [fixtures.jwk] }, cookieKeys: fixtures.cookieKeys } }),
    passwordHashing: options.hashing ?? CHEAP_HASHING,
    accounts: fixtures.users.map((user) => ({
      subject: user.subject,
      username: user.username,
      passwordHash: user.passwordHash,
      claims: user.claims,
    })),
    clients: [
      ...clientMetadata(),
      {
        client_id: ADMIN_CLIENT.id,
        client_secret: ADMIN_CLIENT.secret,
        grant_types: ['client_credentials'],
        scope: ADMIN_CLIENT.scope,
      },
    ],
    serverSideSessions: { enabled: true },
    apis: [{ identifier: BENCH_API.identifier, scopes: [{ name: BENCH_API.scope }], tokenFormat: 'jwt' }],
    ...(metricsPort ? { metrics: { enabled: true, port: metricsPort, host: '127.0.0.1' } } : {}),
  };
}

export async function startGatehouse(options: GatehouseOptions): Promise<ServerHandle> {
  const port = await freePort();
  const metricsPort = options.metrics ? await freePort() : undefined;
  const configFile = join(options.workDir, `${options.name}.json`);
  writeFileSync(configFile, JSON.stringify(gatehouseConfig(options, port, metricsPort), null, 2));
  const logFile = join(options.workDir, `${options.name}.log`);
  // stdout (pino's request log at the configured level) goes to /dev/null; stderr (start-up failures) to a file.
  const err = openSync(logFile, 'a');
  const command = options.viaNpx ? 'npx' : process.execPath;
  // Gatehouse runs with its Node flags however it is started (server/node-flags.ts); the oidc-provider peers with Node's defaults.
  const args = options.viaNpx
    ? ['tsx', ...SERVER_NODE_FLAGS, CLI, 'start', '--config', configFile]
    : options.compiled
      ? [...SERVER_NODE_FLAGS, ...(options.nodeArgs ?? []), COMPILED_CLI, 'start', '--config', configFile]
      : [...loaderArgs(), ...SERVER_NODE_FLAGS, ...(options.nodeArgs ?? []), CLI, 'start', '--config', configFile];
  const started = performance.now();
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    env: cleanEnv(),
    stdio: ['ignore', 'ignore', err],
    detached: options.viaNpx,
  });
  closeSync(err);
  const handle = await ready(options.name, `http://127.0.0.1:${port}`, child, {
    logFile,
    started,
    group: Boolean(options.viaNpx),
  });
  return metricsPort ? { ...handle, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` } : handle;
}

/** An oidc-provider peer with the given storage (peer-server.ts). */
export async function startPeer(options: {
  name: string;
  fixtures: SharedFixtures;
  workDir: string;
  storage: PeerStorage;
  nodeArgs?: string[];
}): Promise<ServerHandle> {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const settings: PeerSettings = {
    storage: options.storage,
    issuer,
    port,
    jwk: options.fixtures.jwk,
    cookieKeys: options.fixtures.cookieKeys,
    users: options.fixtures.users.map(({ password: _password, ...user }) => user),
    clients: clientMetadata(),
  };
  const settingsFile = join(options.workDir, `${options.name}.json`);
  writeFileSync(settingsFile, JSON.stringify(settings));
  const logFile = join(options.workDir, `${options.name}.log`);
  const err = openSync(logFile, 'a');
  const started = performance.now();
  const child = spawn(process.execPath, [...loaderArgs(), ...(options.nodeArgs ?? []), PEER], {
    cwd: REPO_ROOT,
    env: cleanEnv({ BENCH_PEER_SETTINGS: settingsFile }),
    stdio: ['ignore', 'ignore', err],
  });
  closeSync(err);
  return ready(options.name, issuer, child, { logFile, started, group: false });
}

/** Waits for a spawned server's discovery document (stopping it if it never comes) and describes it. */
async function ready(
  name: string,
  issuer: string,
  child: ChildProcess,
  options: { logFile: string; started: number; group: boolean },
): Promise<ServerHandle> {
  const stop = stopper(child, options.group);
  try {
    await waitForDiscovery(issuer, child, options.logFile);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    name,
    issuer,
    pid: child.pid!,
    startupMs: Math.round(performance.now() - options.started),
    logFile: options.logFile,
    stop,
  };
}
