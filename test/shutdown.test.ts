/**
 * Graceful drain of a real `gatehouse start` process (server/bin.js, as an operator runs it), from outside: clients on
 * keep-alive connections keep sending through SIGTERM. Every request sent before the signal gets its whole response;
 * later ones are answered whole or refused/closed, never half-answered; the process exits with 0 well before the
 * deadline. A request that outlives `shutdown.timeout` is cut at the deadline (exit 1, counted in the log), and a
 * second signal ends the process at once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import sqlite3 from 'sqlite3';
import { openDatabase } from '../stores/sequelize/connection.js';
import { createTestDatabase, type TestDialect } from './helpers/databases.js';
import { freePort } from './helpers/server.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLIENTS = 8;
/** Answers received before the signal is sent. */
const WARM_UP = 100;
const ADMIN = {
  client_id: 'admin',
  client_secret: 'admin-secret',
  grant_types: ['client_credentials'],
  scope: 'gatehouse:admin',
};

interface Started {
  child: ChildProcess;
  port: number;
  lines: Record<string, unknown>[];
  exited: Promise<{ code: number | null; at: number }>;
}

/** `gatehouse start` with a config file, through server/bin.js; resolves once it listens. */
async function start(t: ExecutionContext, config: Record<string, unknown>): Promise<Started> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-shutdown-'));
  const port = await freePort();
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ port, logging: { level: 'info' }, clients: [ADMIN], ...config }));
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('GATEHOUSE_')));
  const child = spawn(process.execPath, [join(ROOT, 'server/bin.js'), 'start', '--config', file], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  let stderr = '';
  let buffer = '';
  child.stdout!.on('data', (chunk) => {
    buffer += chunk;
    const complete = buffer.split('\n');
    buffer = complete.pop()!;
    for (const line of complete) if (line.startsWith('{')) lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
    child.once('exit', (code) => resolve({ code, at: performance.now() })),
  );
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      child.kill('SIGTERM'); // a second signal: at once
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });
  for (let i = 0; i < 600 && !lines.some((line) => String(line.msg).includes('listening')); i++) {
    if (child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (!lines.some((line) => String(line.msg).includes('listening')))
    throw new Error(`gatehouse start did not listen:\n${stderr}`);
  return { child, port, lines, exited };
}

interface Outcome {
  path: string;
  /** When the request's bytes had all been handed to the operating system. */
  sent?: number;
  status?: number;
  connection?: string;
  /** complete: the whole response; refused/closed: no response at all; half: a response cut short. */
  result: 'complete' | 'refused' | 'closed' | 'half';
  error?: string;
}

const form = new URLSearchParams({ grant_type: 'client_credentials', scope: 'gatehouse:admin' }).toString();
const basic = `Basic ${Buffer.from(`${ADMIN.client_id}:${ADMIN.client_secret}`).toString('base64')}`;
const REQUESTS = [
  { method: 'GET', path: '/.well-known/openid-configuration' },
  {
    method: 'POST',
    path: '/token',
    body: form,
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
  },
  { method: 'GET', path: '/readyz' },
  { method: 'GET', path: '/jwks' },
];

function send(port: number, agent: Agent, spec: (typeof REQUESTS)[number]): Promise<Outcome> {
  return new Promise((resolve) => {
    const outcome: Outcome = { path: spec.path, result: 'closed' };
    const req = request(
      { host: '127.0.0.1', port, method: spec.method, path: spec.path, agent, headers: spec.headers },
      (res) => {
        outcome.status = res.statusCode;
        outcome.connection = res.headers.connection;
        res.resume();
        res.on('close', () => {
          outcome.result = res.complete ? 'complete' : 'half';
          resolve(outcome);
        });
      },
    );
    req.on('finish', () => (outcome.sent = performance.now()));
    req.on('error', (error: NodeJS.ErrnoException) => {
      outcome.error = error.code ?? error.message;
      if (outcome.status !== undefined) outcome.result = 'half';
      else outcome.result = error.code === 'ECONNREFUSED' ? 'refused' : 'closed';
      resolve(outcome);
    });
    req.end(spec.body);
  });
}

/** Closed-loop clients, each on its own keep-alive connection, sending until `done()` says stop. */
function load(port: number, done: () => boolean, completed: { count: number }): Promise<Outcome[]>[] {
  return Array.from({ length: CLIENTS }, async (_, client) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const outcomes: Outcome[] = [];
    for (let i = client; !done(); i++) {
      const outcome = await send(port, agent, REQUESTS[i % REQUESTS.length]);
      outcomes.push(outcome);
      if (outcome.result === 'complete') completed.count++;
      if (outcome.result === 'refused') await new Promise((resolve) => setTimeout(resolve, 20));
    }
    agent.destroy();
    return outcomes;
  });
}

for (const dialect of ['sqlite-file', 'postgres'] as TestDialect[]) {
  test(`${dialect}: SIGTERM under keep-alive load drains: requests sent before it answered whole, later ones refused or closed, exit 0`, async (t) => {
    const database = await createTestDatabase(dialect);
    t.teardown(() => database.drop());
    const TIMEOUT = 10;
    const server = await start(t, { database: { url: database.url }, shutdown: { timeout: TIMEOUT } });
    let exited = false;
    void server.exited.then(() => (exited = true));
    const completed = { count: 0 };
    const clients = load(server.port, () => exited, completed);
    // Under way: every client has had answers on its connection (however slow the machine is today).
    for (let i = 0; i < 600 && completed.count < WARM_UP; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    const signalAt = performance.now();
    server.child.kill('SIGTERM');
    const { code, at } = await server.exited;
    const outcomes = (await Promise.all(clients)).flat();
    const drainMs = Math.round(at - signalAt);

    t.is(code, 0, 'a clean drain exits 0');
    t.true(drainMs < TIMEOUT * 1000 + 5000, `exited ${drainMs} ms after the signal (deadline ${TIMEOUT} s)`);
    const before = outcomes.filter((outcome) => outcome.sent !== undefined && outcome.sent < signalAt);
    const after = outcomes.filter((outcome) => !before.includes(outcome));
    t.true(before.length >= WARM_UP, `the load was real (${before.length} requests before the signal)`);
    t.deepEqual(
      before.filter((outcome) => outcome.result !== 'complete'),
      [],
      'every request sent before the signal got its whole response',
    );
    t.deepEqual(
      outcomes.filter((outcome) => outcome.result === 'half'),
      [],
      'nothing half-answered',
    );
    t.true(
      before.every((outcome) => (outcome.status !== undefined && outcome.status < 500) || outcome.path === '/readyz'),
      'no 5xx but a draining /readyz',
    );
    const answeredAfter = after.filter((outcome) => outcome.result === 'complete');
    // A client may have sent one more request on its connection before it saw `Connection: close`: at most that.
    t.true(
      answeredAfter.length <= CLIENTS,
      `the open connections were not kept serving (${answeredAfter.length} answered after the signal)`,
    );
    t.true(after.every((outcome) => ['complete', 'refused', 'closed'].includes(outcome.result)));
    const drained = server.lines.find((line) => line.event === 'shutdown');
    t.like(drained, { cut: 0, backgroundCut: false }, JSON.stringify(drained));
    t.log(
      `${before.length} requests before the signal, all answered whole; after it: ${answeredAfter.length} answered, ` +
        `${after.filter((o) => o.result === 'refused').length} refused, ${after.filter((o) => o.result === 'closed').length} closed; ` +
        `${before.filter((o) => o.connection === 'close').length} responses carried Connection: close; drained ${drained?.drained}, exit after ${drainMs} ms`,
    );
  });
}

/**
 * A server whose token writes wait for a lock the test holds (a real slow request): on SQLite another connection holds
 * the write lock (five busy waits of 400 ms: about 2.5 s in all); on PostgreSQL a transaction holds the token table
 * (the statement waits up to database.timeoutMs, here a minute).
 */
async function startWithSlowWrites(t: ExecutionContext, dialect: TestDialect, shutdownTimeout: number) {
  const database = await createTestDatabase(dialect);
  t.teardown(() => database.drop());
  const server = await start(t, {
    database: {
      url: database.url,
      timeoutMs: 60_000,
      ...(dialect === 'sqlite-file' ? { sqliteBusyTimeoutMs: 400 } : {}),
    },
    shutdown: { timeout: shutdownTimeout },
  });
  const release =
    dialect === 'sqlite-file'
      ? await holdSqliteWriteLock(database.url.slice('sqlite:'.length))
      : await holdPostgresTable(database.url, 'oidc_payloads');
  t.teardown(release);
  const slow = send(server.port, new Agent({ keepAlive: true }), REQUESTS[1]); // a client_credentials grant: its token write waits
  await new Promise((resolve) => setTimeout(resolve, 700));
  return { server, slow };
}

async function holdSqliteWriteLock(file: string): Promise<() => Promise<void>> {
  const db = await new Promise<sqlite3.Database>((resolve, reject) => {
    const opened: sqlite3.Database = new sqlite3.Database(file, sqlite3.OPEN_READWRITE, (error) =>
      error ? reject(error) : resolve(opened),
    );
  });
  await new Promise<void>((resolve, reject) =>
    db.run('BEGIN IMMEDIATE', (error) => (error ? reject(error) : resolve())),
  );
  return () => new Promise<void>((resolve) => db.run('ROLLBACK', () => db.close(() => resolve())));
}

async function holdPostgresTable(url: string, table: string): Promise<() => Promise<void>> {
  const sequelize = await openDatabase({ url });
  const transaction = await sequelize.transaction();
  await sequelize.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`, { transaction });
  return async () => {
    await transaction.rollback();
    await sequelize.close();
  };
}

for (const dialect of ['sqlite-file', 'postgres'] as TestDialect[]) {
  test(`${dialect}: a request still running at the deadline is cut: exit 1, logged with the count, no half answer`, async (t) => {
    const TIMEOUT = 1;
    const { server, slow } = await startWithSlowWrites(t, dialect, TIMEOUT);
    const signalAt = performance.now();
    server.child.kill('SIGTERM');
    const { code, at } = await server.exited;
    const ms = Math.round(at - signalAt);
    const outcome = await slow;
    t.is(code, 1, 'the deadline cut a request: non-zero exit');
    t.true(ms >= TIMEOUT * 1000 - 100, `it waited for the deadline (${ms} ms)`);
    t.true(ms < TIMEOUT * 1000 + 8000, `and not much longer (${ms} ms)`);
    t.is(outcome.result, 'closed', 'the slow request was closed, not half-answered');
    const line = server.lines.find((entry) => entry.event === 'shutdown');
    t.like(line, { cut: 1, level: 40 }, JSON.stringify(line));
    t.log(`cut at the deadline: exit ${code} after ${ms} ms; ${JSON.stringify(line)}`);
  });

  test(`${dialect}: a second signal ends the drain at once`, async (t) => {
    const { server, slow } = await startWithSlowWrites(t, dialect, 30);
    server.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const secondAt = performance.now();
    server.child.kill('SIGTERM');
    const { code, at } = await server.exited;
    const ms = Math.round(at - secondAt);
    t.is(code, 1);
    t.true(ms < 5000, `exited ${ms} ms after the second signal (deadline 30 s)`);
    t.not((await slow).result, 'half');
    t.truthy(server.lines.find((line) => line.msg === 'second signal: exiting at once'));
  });
}
