/**
 * Lists the SQL statements each Gatehouse flow of the comparison sends, request by request: a Gatehouse started in
 * this process from its source (the bench's config: users, clients, server-side sessions) on a fresh SQLite file or
 * the given database, the gateway's `observe` labelling each statement with the request that sent it. For finding
 * statements to cut; the counts themselves are the bench's (bench/compare.ts, "Work per operation").
 *
 *   npx tsx bench/compare/trace-statements.ts [database-url] [flow ...]
 *
 * Flows: login, client_credentials, refresh, userinfo, introspection, logout (default: all). Each flow runs twice and
 * the second run is printed, so caches that a first request fills are as warm as in the bench's batches.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from '../../server/create-server.js';
import { Database } from '../../stores/sequelize/database.js';
import { createFixtures, LOGIN_SCOPE, OFFLINE_SCOPE } from './fixtures.js';
import { Driver } from './flows.js';
import { gatehouseConfig } from './servers.js';

const FLOWS = ['login', 'client_credentials', 'refresh', 'userinfo', 'introspection', 'logout'];
const [url = `sqlite:${join(mkdtempSync(join(tmpdir(), 'gatehouse-trace-')), 'trace.db')}`, ...chosen] =
  process.argv.slice(2);
const flows = chosen.length ? chosen : FLOWS;

const fixtures = await createFixtures(1);
const config = gatehouseConfig({ name: 'trace', databaseUrl: url, fixtures, workDir: tmpdir(), logLevel: 'silent' }, 0);
const server = await createServer({ ...config, issuer: undefined, port: 0 } as never);
const { url: issuer } = await server.listen();
const driver = new Driver(issuer, 2);
await driver.discover();

let request = '(none)';
let lines: string[] = [];
Database.of(server.sequelize).observe((event) => {
  const sql = event.sql
    .replace(/^Executing \([^)]*\): /, '')
    .replace(/\s+/g, ' ')
    .slice(0, 160);
  const params = event.params ? ` [${event.params.slice(0, 2).join(', ')}]` : '';
  lines.push(`  ${event.kind.padEnd(8)} ${event.inTransaction ? 'tx ' : '   '}${request.padEnd(28)} ${sql}${params}`);
});
const send = driver.http.send.bind(driver.http);
driver.http.send = (path, options) => {
  request = `${options?.form ? 'POST' : 'GET'} ${new URL(path, issuer).pathname.replace(/[\w-]{20,}/, ':id')}`;
  return send(path, options);
};

const bench = fixtures.users.find((user) => user.subject === 'bench')!;
const worker = fixtures.users.find((user) => user.subject === 'bench-w1')!;
await driver.startChain(0, worker, OFFLINE_SCOPE);
const operations: Record<string, () => Promise<unknown>> = {
  login: () => driver.loginFlow(bench, { scope: LOGIN_SCOPE }),
  client_credentials: () => driver.clientCredentials(),
  refresh: () => driver.refresh(0),
  userinfo: () => driver.userinfo(0),
  introspection: () => driver.introspect(0),
};

for (const flow of flows) {
  for (const pass of [1, 2]) {
    const signedIn = flow === 'logout' ? await driver.signIn(bench, LOGIN_SCOPE) : undefined;
    lines = [];
    if (signedIn) await driver.logout(signedIn);
    else await operations[flow]();
    if (pass === 1) continue;
    const count = (kind: string) => lines.filter((line) => line.trimStart().startsWith(kind)).length;
    console.log(`\n${flow}: ${count('read')} reads, ${count('write')} writes, ${count('commit')} COMMITs`);
    for (const line of lines) console.log(line);
  }
}
await server.close();
