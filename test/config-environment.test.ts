/**
 * Every option from the environment, by the one rule derived from the options table (GATEHOUSE_ + the path in upper
 * snake case, `__` between levels), typed and validated like the file, with `_FILE` variables for secrets; and the
 * demo config started with overrides only.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { stringify } from 'yaml';
import { environmentOptions, readEnvironment, variableName } from '../config/environment.js';
import { ConfigError, loadConfig } from '../config/load.js';
import { nearestNames } from '../config/nearest-name.js';
import { problemsOf, tempFiles } from './helpers/config-files.js';
import { freePort } from './helpers/server.js';

const { dir, file } = tempFiles('gatehouse-config-env-');
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test('variable names follow the rule', (t) => {
  t.is(variableName(['metrics', 'port']), 'GATEHOUSE_METRICS__PORT');
  t.is(variableName(['serverSideSessions', 'idleTimeout']), 'GATEHOUSE_SERVER_SIDE_SESSIONS__IDLE_TIMEOUT');
  t.is(variableName(['passwordHashing', 'log2N']), 'GATEHOUSE_PASSWORD_HASHING__LOG2_N');
  t.is(variableName(['proxy']), 'GATEHOUSE_PROXY');
});

/** A valid value for an option, different from its default where the type allows, as text for the environment. */
function sample(path: string[], fallback: unknown): string | undefined {
  const special: Record<string, string> = {
    mode: 'development',
    preset: 'testing',
    issuer: 'https://id.example.com',
    host: '127.0.0.1',
    proxyHops: '2',
    'database.url': 'sqlite::memory:',
    'database.sqliteBusyTimeoutMs': '400',
    'logging.level': 'warn',
    'logging.format': 'json',
    'keys.jwks': '{"keys": [{"kty": "oct"}]}',
    'keys.cookieKeys': '["0123456789abcdef0123"]',
    'metrics.port': '9465',
    'metrics.host': '0.0.0.0',
    'metrics.token': 'a-metrics-token-of-some-length',
    'login.autoLogin': 'alice',
    'passwordHashing.algorithm': 'scrypt',
    'pages.title': '42',
    'serverSideSessions.store': './my-store.js',
    'serverSideSessions.storeOptions': '{"url": "redis://127.0.0.1:6379"}',
    'serverSideSessions.displayNameClaim': 'email',
    'serverSideSessions.maxSessionsPerUser': '3',
    accounts: '[{"subject": "ivy"}]',
    clients: '[{"client_id": "svc", "client_secret": "s", "grant_types": ["client_credentials"]}]',
    apis: '[{"identifier": "https://api.example.com/", "scopes": [{"name": "api:read"}]}]',
    'deviceFlow.userCodeCharset': 'digits',
    'deviceFlow.userCodeMask': '*** *** ***',
  };
  const key = path.join('.');
  if (special[key] !== undefined) return special[key];
  if (typeof fallback === 'boolean') return String(!fallback);
  if (typeof fallback === 'number') return String(fallback + 1);
  return undefined;
}

test('every option in the table is set by its variable, typed as the schema wants', (t) => {
  const unsampled: string[] = [];
  for (const option of environmentOptions()) {
    const fallback = option.schema.safeParse(undefined);
    const text = sample(option.path, fallback.success ? fallback.data : undefined);
    if (text === undefined) {
      unsampled.push(option.path.join('.'));
      continue;
    }
    const { config, sources, problems } = readEnvironment({}, { [option.name]: text });
    t.deepEqual(problems, [], option.name);
    t.is(sources.get(option.path.join('.')) ?? (option.info.key ? option.name : undefined), option.name);
    const value = option.path.reduce<unknown>((at, part) => (at as Record<string, unknown>)?.[part], config);
    t.true(option.schema.safeParse(value).success, `${option.name}=${text} gives a valid ${option.path.join('.')}`);
    if (option.path.join('.') === 'pages.title') t.is(value, '42', 'a text option keeps digits as text');
  }
  t.deepEqual(unsampled, [], 'every option has a sample value in this test');
});

test('older variable names still work; giving an option twice is refused', (t) => {
  t.is(loadConfig({ env: { PORT: '4100' } }).port, 4100);
  t.is(loadConfig({ env: { GATEHOUSE_DATABASE_URL: 'sqlite::memory:' } }).database.url, 'sqlite::memory:');
  t.true(loadConfig({ env: { GATEHOUSE_SERVER_SIDE_SESSIONS: 'true' } }).serverSideSessions.enabled);
  t.deepEqual(
    problemsOf(() => loadConfig({ env: { PORT: '1', GATEHOUSE_PORT: '2' } })),
    ['GATEHOUSE_PORT and PORT: both set port, to different values; give one'],
  );
});

test('an alias and the derived variable may both be set when they agree (a platform sets PORT too)', (t) => {
  t.is(loadConfig({ env: { PORT: '4100', GATEHOUSE_PORT: '4100' } }).port, 4100);
  t.is(
    loadConfig({ env: { GATEHOUSE_DATABASE_URL: 'sqlite::memory:', GATEHOUSE_DATABASE__URL: 'sqlite::memory:' } })
      .database.url,
    'sqlite::memory:',
  );
});

test('the message header names every input the values came from: the file, the environment, the command line', (t) => {
  const config = file('header.yaml', 'metrics:\n  enabled: true\n  port: 9464\n');
  const message = (env: NodeJS.ProcessEnv, commandLine = [] as { flag: string; path: string; text: string }[]) =>
    t.throws(() => loadConfig({ file: config, env, commandLine }), { instanceOf: ConfigError })!.message;
  t.is(
    message({ GATEHOUSE_METRICS__PORT: '70000' }),
    `invalid configuration in ${config} and the environment:\n  GATEHOUSE_METRICS__PORT: Too big: expected number to be <=65535`,
  );
  t.is(
    message({ GATEHOUSE_METRICS__PORT: '70000' }, [{ flag: '--port', path: 'port', text: '3000' }]),
    `invalid configuration in ${config}, the environment and the command line:\n  GATEHOUSE_METRICS__PORT: Too big: expected number to be <=65535`,
  );
  const bad = file('bad.yaml', 'metrics:\n  enabled: true\n  port: abc\n');
  const fromFile = t.throws(() => loadConfig({ file: bad, env: {} }), { instanceOf: ConfigError })!;
  t.is(
    fromFile.message,
    `invalid configuration in ${bad}:\n  metrics.port: expected false or integer 0–65535, got "abc"`,
  );
  const beside = t.throws(() => loadConfig({ file: bad, env: { GATEHOUSE_MODE: 'development' } }), {
    instanceOf: ConfigError,
  })!;
  t.is(
    beside.message,
    `invalid configuration in ${bad} and the environment:\n  metrics.port: expected false or integer 0–65535, got "abc"`,
    'the line names the key: it came from the file',
  );
});

test('command-line values win over the environment and are named by their flag', (t) => {
  const port = (text: string) => ({ flag: '--port', path: 'port', text });
  const db = (text: string) => ({ flag: '--db', path: 'database.url', text });
  // The variables may even disagree with each other: the flag decides.
  const config = loadConfig({
    env: { GATEHOUSE_PORT: '3500', PORT: '3600', GATEHOUSE_DATABASE__URL: 'sqlite::memory:' },
    commandLine: [port('3501'), db('sqlite:./x.sqlite')],
  });
  t.is(config.port, 3501);
  t.is(config.database.url, 'sqlite:./x.sqlite');
  t.is(loadConfig({ env: { GATEHOUSE_PORT: '3500' }, commandLine: [] }).port, 3500, 'no flag: the variable');

  const syntax = t.throws(() => loadConfig({ env: {}, commandLine: [port('abc')] }), { instanceOf: ConfigError });
  t.is(syntax!.message, 'invalid configuration in the command line:\n  --port: expected a number, got "abc"');
  const range = t.throws(
    () => loadConfig({ env: { GATEHOUSE_ISSUER: 'http://localhost:1' }, commandLine: [port('70000')] }),
    { instanceOf: ConfigError },
  );
  t.is(
    range!.message,
    'invalid configuration in the environment and the command line:\n  --port: Too big: expected number to be <=65535',
  );
});

test('a wrong value names the variable, and secrets are not echoed', (t) => {
  t.deepEqual(
    problemsOf(() => loadConfig({ env: { GATEHOUSE_METRICS__PORT: 'ninety' } })),
    ['GATEHOUSE_METRICS__PORT: expected false or integer 0–65535, got "ninety"'],
  );
  t.deepEqual(
    problemsOf(() => loadConfig({ env: { GATEHOUSE_SERVER_SIDE_SESSIONS__IDLE_TIMEOUT: '-5' } })),
    ['GATEHOUSE_SERVER_SIDE_SESSIONS__IDLE_TIMEOUT: Too small: expected number to be >0'],
  );
  t.deepEqual(
    problemsOf(() => loadConfig({ env: { GATEHOUSE_PROXY: 'maybe' } })),
    ['GATEHOUSE_PROXY: expected true or false, got "maybe"'],
  );
  t.deepEqual(
    problemsOf(() => loadConfig({ env: { GATEHOUSE_LOGGING__LEVEL: 'loud' } })),
    ['GATEHOUSE_LOGGING__LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"'],
  );
  const secret = problemsOf(() => loadConfig({ env: { GATEHOUSE_METRICS__TOKEN: 'short-secret' } }));
  t.deepEqual(secret, ['GATEHOUSE_METRICS__TOKEN: expected at least 16 characters']);
  const list = problemsOf(() => loadConfig({ env: { GATEHOUSE_KEYS__COOKIE_KEYS: '["too-short-secret!"' } }));
  t.regex(list[0], /^GATEHOUSE_KEYS__COOKIE_KEYS: cannot read the value as YAML or JSON$/);
  t.false(JSON.stringify(list).includes('too-short-secret'));
  t.deepEqual(
    problemsOf(() => loadConfig({ env: { GATEHOUSE_KEYS__COOKIE_KEYS: '["0123456789abcdef", "short"]' } })),
    ['GATEHOUSE_KEYS__COOKIE_KEYS[1]: expected at least 16 characters'],
  );
});

test('the environment wins over the file, option by option', (t) => {
  const config = loadConfig({
    file: 'config/demo.yaml',
    env: { GATEHOUSE_METRICS__PORT: '9465', GATEHOUSE_SERVER_SIDE_SESSIONS__IDLE_TIMEOUT: '900' },
  });
  t.is(config.metrics.port, 9465);
  t.true(config.metrics.enabled, 'the rest of the section stays as the file says');
  t.is(config.serverSideSessions.idleTimeout, 900);
  t.true(config.serverSideSessions.enabled);
  t.is(loadConfig({ file: 'config/demo.yaml', env: { GATEHOUSE_METRICS__PORT: 'false' } }).metrics.port, false);
});

test('a _FILE variable reads the value from a file; a missing file or both forms are errors', (t) => {
  const token = file('token', 'token-from-a-mounted-secret\n');
  const config = loadConfig({ env: { GATEHOUSE_METRICS__ENABLED: 'true', GATEHOUSE_METRICS__TOKEN_FILE: token } });
  t.is(config.metrics.token, 'token-from-a-mounted-secret', 'the final newline is dropped');
  t.is(
    loadConfig({ env: { GATEHOUSE_DATABASE_URL_FILE: file('url', 'sqlite::memory:') } }).database.url,
    'sqlite::memory:',
  );
  t.regex(
    problemsOf(() => loadConfig({ env: { GATEHOUSE_METRICS__TOKEN_FILE: join(dir, 'nope') } }))[0],
    /^GATEHOUSE_METRICS__TOKEN_FILE: cannot read .*nope: ENOENT/,
  );
  t.deepEqual(
    problemsOf(() =>
      loadConfig({ env: { GATEHOUSE_METRICS__TOKEN: 'x'.repeat(20), GATEHOUSE_METRICS__TOKEN_FILE: token } }),
    ),
    [
      'GATEHOUSE_METRICS__TOKEN and GATEHOUSE_METRICS__TOKEN_FILE: both set metrics.token, to different values; give one',
    ],
  );
});

test('a misspelt variable is warned about with the right name; unrelated GATEHOUSE_ variables are left alone', (t) => {
  const warnings: string[] = [];
  loadConfig({
    env: {
      GATEHOUSE_METRICS_PORT: '1', // underscores
      GATEHOUSE_METRIC__PORT: '9999', // a letter missing
      GATEHOUSE_SERVER_SIDE_SESSION__IDLE_TIMEOUT: '900',
      GATEHOUSE_SEVRER_SIDE_SESSIONS__IDEL_TIMEOUT: '900', // two swaps in a long name
      GATEHOUSE_PORTS: '4000',
      GATEHOUSE_METRIC__TOKEN_FILE: '/run/secrets/token',
      GATEHOUSE_CONFG: 'x.yaml',
      // Not near any option: other tools' variables, left alone.
      GATEHOUSE_REDIS_URL: 'redis://x',
      GATEHOUSE_TEST_POSTGRES: '1',
      GATEHOUSE_SCREENSHOTS: '1',
      GATEHOUSE_HOME: '/srv',
      GATEHOUSE_SERVICE_PORT: '80',
    },
    warn: (message) => warnings.push(message),
  });
  const ignored = (name: string, suggestion: string) =>
    `${name} is not a Gatehouse setting and is ignored; did you mean ${suggestion}?`;
  t.deepEqual(warnings, [
    ignored('GATEHOUSE_METRICS_PORT', 'GATEHOUSE_METRICS__PORT'),
    ignored('GATEHOUSE_METRIC__PORT', 'GATEHOUSE_METRICS__PORT'),
    ignored('GATEHOUSE_SERVER_SIDE_SESSION__IDLE_TIMEOUT', 'GATEHOUSE_SERVER_SIDE_SESSIONS__IDLE_TIMEOUT'),
    ignored('GATEHOUSE_SEVRER_SIDE_SESSIONS__IDEL_TIMEOUT', 'GATEHOUSE_SERVER_SIDE_SESSIONS__IDLE_TIMEOUT'),
    ignored('GATEHOUSE_PORTS', 'GATEHOUSE_PORT'),
    ignored('GATEHOUSE_METRIC__TOKEN_FILE', 'GATEHOUSE_METRICS__TOKEN_FILE'),
    ignored('GATEHOUSE_CONFG', 'GATEHOUSE_CONFIG'),
  ]);
});

test('nearest names: within one edit up to 7 letters, two from 8; ties are all named', (t) => {
  t.deepEqual(nearestNames('PROT', ['PORT', 'HOST']), ['PORT'], 'a swap is one edit');
  t.deepEqual(nearestNames('HOME', ['MODE', 'HOST']), [], 'two edits in a short name: no suggestion');
  t.deepEqual(nearestNames('METRCSPRT', ['METRICSPORT']), ['METRICSPORT']);
  t.deepEqual(nearestNames('METRCPRT', ['METRICSPORT']), [], 'three edits');
  t.deepEqual(nearestNames('POST', ['PORT', 'HOST']), ['PORT', 'HOST']);
});

test('the demo config starts with its metrics port and idle timeout from the environment, no file edited', async (t) => {
  const metricsPort = await freePort();
  const env = {
    ...process.env,
    PORT: '0',
    GATEHOUSE_DATABASE_URL: `sqlite:${join(dir, 'demo.sqlite')}`,
    GATEHOUSE_METRICS__PORT: String(metricsPort),
    GATEHOUSE_SERVER_SIDE_SESSIONS__IDLE_TIMEOUT: '900',
    GATEHOUSE_PASSWORD_HASHING__LOG2_N: '10',
  };
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/cli.ts', 'start', '--config', 'config/demo.yaml'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const deadline = Date.now() + 60_000;
  let metrics: Response | undefined;
  while (!metrics && Date.now() < deadline) {
    metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).catch(() => undefined);
    if (!metrics) await new Promise((resolve) => setTimeout(resolve, 200));
  }
  t.is(metrics?.status, 200, output);
  t.regex(await metrics!.text(), /gatehouse_/);
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
});

test('a wrong value from the environment stops the server with exit code 2, naming the variable', async (t) => {
  const env = {
    ...process.env,
    PORT: '0',
    GATEHOUSE_METRICS__PORT: 'ninety',
    GATEHOUSE_DATABASE_URL: 'sqlite::memory:',
  };
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/cli.ts', 'start', '--config', 'config/demo.yaml'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.is(code, 2);
  t.regex(stderr, /GATEHOUSE_METRICS__PORT: /);
});

test('YAML in a list variable', (t) => {
  const clients = stringify([{ client_id: 'svc', client_secret: 's', grant_types: ['client_credentials'] }]);
  t.is(loadConfig({ env: { GATEHOUSE_CLIENTS: clients } }).clients[0].client_id, 'svc');
});
