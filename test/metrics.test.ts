import { createServer as createNetServer, type AddressInfo } from 'node:net';
import test from 'ava';
import { createServer } from '../server/create-server.js';
import { Browser } from './helpers/browser.js';
import { discover, REDIRECT_URI, signIn } from './helpers/relying-party.js';
import { freePort, startTestServer } from './helpers/server.js';
import { ConfigError, validateConfig } from '../config/load.js';

const TOKEN = 'metrics-token-0123456789';
const clients = [
  {
    client_id: 'web',
    client_secret: 'web-secret',
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code' as const],
  },
];

function value(text: string, metric: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${metric} `) || l.startsWith(`${metric}{`));
  return line ? Number(line.split(' ').pop()) : undefined;
}

test('metrics on the main port need the bearer token and count sessions, logins, revocations and requests', async (t) => {
  const gatehouse = await startTestServer({
    config: { clients, serverSideSessions: { enabled: true }, metrics: { enabled: true, token: TOKEN } },
  });
  t.teardown(() => gatehouse.close());
  const url = `${gatehouse.issuer}/metrics`;
  t.is((await fetch(url)).status, 401);
  t.is((await fetch(url, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status, 401);

  await signIn(new Browser(), await discover(gatehouse.issuer, 'web', 'web-secret'), { username: 'alice' });
  await signIn(new Browser(), await discover(gatehouse.issuer, 'web', 'web-secret'), { username: 'bob' });
  await gatehouse.server.sessions.removeSessions({ subjectId: 'bob', actor: 'test' });
  await gatehouse.server.sweeper.runOnce();

  const response = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
  t.is(response.status, 200);
  const text = await response.text();
  t.is(value(text, 'gatehouse_active_sessions'), 1);
  t.is(value(text, 'gatehouse_logins_total'), 2);
  t.is(value(text, 'gatehouse_session_revocations_total'), 1);
  t.is(value(text, 'gatehouse_sweeper_runs_total'), 1);
  t.regex(text, /gatehouse_http_request_duration_seconds_count\{method="POST",route="\/token",status="200"\} 2/);
  t.regex(text, /route="\/auth\/:uid"/);
  t.notRegex(text, /route="\/interaction\/[A-Za-z0-9_-]{10,}/, 'no raw ids in labels');

  // The database gateway's totals, read as scraped: a sign-in reads and writes, and commits what it writes.
  const reads = value(text, 'gatehouse_database_statements_total{kind="read"}')!;
  const writes = value(text, 'gatehouse_database_statements_total{kind="write"}')!;
  const commits = value(text, 'gatehouse_database_commits_total')!;
  const roundTrips = value(text, 'gatehouse_database_round_trips_total')!;
  t.true(reads > 0 && writes > 0 && commits > 0, `reads ${reads}, writes ${writes}, commits ${commits}`);
  t.true(roundTrips >= reads + writes, 'every statement is a round trip');
  const again = await (await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
  t.true(
    value(again, 'gatehouse_database_round_trips_total')! > roundTrips,
    'the active-session count of the scrape itself went to the database',
  );
});

test('metrics can be served on their own port instead', async (t) => {
  const gatehouse = await startTestServer({ config: { metrics: { enabled: true, port: await freePort() } } });
  t.teardown(() => gatehouse.close());
  const { metricsPort } = await gatehouse.server.listen();
  t.truthy(metricsPort);
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  t.regex(text, /gatehouse_logins_total 0/);
  t.is((await fetch(`${gatehouse.issuer}/metrics`)).status, 404, 'not on the main port');
});

test('a listen that cannot bind the metrics port rejects naming metrics.port and leaves no listener bound', async (t) => {
  const holder = createNetServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  t.teardown(() => holder.close());
  const taken = (holder.address() as AddressInfo).port;
  const mainPort = await freePort();
  const server = await createServer({
    port: mainPort,
    host: '127.0.0.1',
    logging: { level: 'silent' },
    database: { url: 'sqlite::memory:' },
    metrics: { enabled: true, port: taken },
  });
  t.teardown(() => server.close());
  const error = await t.throwsAsync(server.listen());
  t.regex(
    error!.message,
    new RegExp(
      `^metrics\\.port: cannot listen on 127\\.0\\.0\\.1:${taken}: the port is in use by another process \\(EADDRINUSE\\)`,
    ),
  );
  const refused = await fetch(`http://127.0.0.1:${mainPort}/healthz`).then(
    () => 'answered',
    (failure: Error) => (failure.cause as NodeJS.ErrnoException)?.code,
  );
  t.is(refused, 'ECONNREFUSED', 'the main port was released');
});

test('metrics.port 0 or false switches their own listener off', async (t) => {
  for (const port of [0, false] as const) {
    const gatehouse = await startTestServer({ config: { metrics: { enabled: true, port } } });
    t.teardown(() => gatehouse.close());
    const { metricsPort } = await gatehouse.server.listen();
    t.is(metricsPort, undefined, `port ${port}: no listener`);
    t.is((await fetch(`${gatehouse.issuer}/metrics`)).status, 404, `port ${port}: not on the main port either`);
  }
});

test('enabling metrics without a port or a token is a configuration error', (t) => {
  const error = t.throws(() => validateConfig({ metrics: { enabled: true } }));
  t.true(error instanceof ConfigError);
  t.regex(error!.message, /metrics\.enabled: set metrics\.port/);
});
