/**
 * What a person sees: `gatehouse start` in a terminal (a real pseudo-terminal from util-linux `script`) prints
 * readable log lines and a banner with the URLs, users and clients — never a client secret; piped, or with
 * GATEHOUSE_LOG_FORMAT=json, every line is JSON as before.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { loadConfig } from '../config/load.js';
import { redactedDatabaseUrl, startBanner } from '../server/banner.js';
import { describeClient } from '../server/client-summary.js';
import { freePort, startTestServer } from './helpers/server.js';

const ROOT = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-terminal-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const quote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;
const strip = (text: string) => text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').replace(/\r/g, '');

/**
 * Runs the demo configuration until `/healthz` answers and one request was logged, then stops it with SIGTERM;
 * resolves to everything it wrote. `terminal`: under a pseudo-terminal (stdout is a TTY), else piped.
 */
async function runDemo(name: string, terminal: boolean, extraEnv: Record<string, string> = {}): Promise<string> {
  const port = await freePort();
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    PORT: String(port),
    GATEHOUSE_DATABASE_URL: `sqlite:${join(dir, `${name}.sqlite`)}`,
    GATEHOUSE_METRICS__PORT: 'false',
    GATEHOUSE_PASSWORD_HASHING__LOG2_N: '10',
    ...extraEnv,
  };
  const command = [process.execPath, '--import', 'tsx', 'server/cli.ts', 'start', '--config', 'config/demo.yaml'];
  // `script -qfec CMD /dev/null` runs CMD on a new pseudo-terminal and copies what it writes to our pipe.
  const child = terminal
    ? spawn('script', ['-qfec', command.map(quote).join(' '), '/dev/null'], {
        cwd: ROOT,
        env,
        stdio: ['pipe', 'pipe', 'pipe'],
      })
    : spawn(command[0], command.slice(1), { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stdout += chunk));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const deadline = Date.now() + 60_000;
    let ok = false;
    while (!ok && Date.now() < deadline) {
      ok = (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.ok ?? false;
      if (!ok) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    if (!ok) throw new Error(`the server did not start:\n${stdout}`);
    await new Promise((resolve) => setTimeout(resolve, 300)); // let the request line reach the output
  } finally {
    // Under `script`, the server is its grandchild: end the session by closing the terminal's input side too.
    if (terminal) spawn('pkill', ['-TERM', '-f', `--config config/demo.yaml`, '-P', String(child.pid)]);
    child.kill('SIGTERM');
    child.stdin?.end();
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
    child.kill('SIGKILL');
  }
  // `script` reports its own end ("Session terminated, killing shell..."): not the server's output.
  return strip(stdout)
    .split('\n')
    .filter((line) => !/^Session terminated/.test(line))
    .join('\n');
}

test('in a terminal: readable lines and a banner with the URLs, users and clients, and no secret', async (t) => {
  const output = await runDemo('tty', true);
  t.regex(output, /Gatehouse is running \(development mode\)/);
  t.regex(output, /Discovery\s+http:\/\/localhost:\d+\/\.well-known\/openid-configuration/);
  t.regex(output, /alice — password alice-password — roles admin/, 'demo passwords, as the demo home page shows them');
  t.regex(output, /demo-web \(authorization_code, refresh_token\) → http:\/\/localhost:8080\/callback/);
  t.regex(output, /INFO: GET \/healthz 200 /, 'request lines read as words');
  t.false(output.includes('demo-web-secret'), 'no client secret');
  t.false(
    output.split('\n').some((line) => line.startsWith('{"level"')),
    'no JSON lines',
  );
});

test('piped: JSON lines only, no banner', async (t) => {
  const output = await runDemo('piped', false);
  const lines = output.split('\n').filter(Boolean);
  t.true(lines.length > 3);
  for (const line of lines) t.notThrows(() => JSON.parse(line), line);
  t.false(output.includes('Gatehouse is running'));
});

test('in a terminal with GATEHOUSE_LOG_FORMAT=json: JSON lines', async (t) => {
  const output = await runDemo('tty-json', true, { GATEHOUSE_LOG_FORMAT: 'json' });
  const lines = output.split('\n').filter((line) => line.trim());
  t.true(lines.some((line) => line.includes('"msg":"request"')));
  for (const line of lines) t.notThrows(() => JSON.parse(line), line);
});

test('the banner names the database without its password', (t) => {
  t.is(
    redactedDatabaseUrl('postgres://app:s3cret@db.example:5432/gatehouse'),
    'postgres://app:***@db.example:5432/gatehouse',
  );
  t.is(redactedDatabaseUrl('mysql://root@localhost/test?password=s3cret'), 'mysql://root@localhost/test?password=***');
  t.is(redactedDatabaseUrl('sqlite:./data/gatehouse.sqlite'), 'sqlite:./data/gatehouse.sqlite');
});

test('the banner describes each client as the home page does: device-code, API and public clients', async (t) => {
  const config = loadConfig({ file: join(ROOT, 'config/demo.yaml'), env: {} });
  const banner = startBanner({ config });
  t.regex(banner, /^ {2}demo-tv \(public: device_code, refresh_token\)$/m);
  t.regex(banner, /^ {2}demo-ledger-api \(introspection only \(an API\)\)$/m);
  t.regex(banner, /^ {2}demo-spa \(public: authorization_code, refresh_token\) → http:\/\/localhost:5173\/callback$/m);
  t.regex(banner, /^ {2}demo-service \(client_credentials\)$/m);
  // The home page (demo config: it lists the clients) uses the same words.
  const gatehouse = await startTestServer({
    config: {
      ...config,
      issuer: undefined,
      port: 0,
      host: '127.0.0.1',
      logging: { level: 'silent' },
      metrics: { enabled: false },
      database: { url: 'sqlite::memory:' },
    },
  });
  t.teardown(() => gatehouse.close());
  const home = await (await fetch(`${gatehouse.issuer}/`)).text();
  for (const client of config.clients) {
    const cells = describeClient(client).split(', ').join('<br>');
    t.true(
      home.includes(`<code>${client.client_id}</code></td><td>${cells}<br></td>`),
      `${client.client_id}: ${describeClient(client)}`,
    );
  }
});

test('with no users or clients in the configuration, the banner says how to add them', (t) => {
  const banner = startBanner({ config: loadConfig({ env: {} }) });
  t.regex(banner, /Users\n {2}none in the configuration: add them with `gatehouse users add` or GATEHOUSE_USERS/);
  t.regex(banner, /Clients\n {2}none in the configuration: add them with `gatehouse clients add` or GATEHOUSE_CLIENTS/);
});
