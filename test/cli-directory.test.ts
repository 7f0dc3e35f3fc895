/**
 * `gatehouse users|clients|keys` through the `gatehouse` bin (server/bin.js): adding, listing and removing users and
 * clients, rotating signing keys, --help on every command, and exit code 2 naming the bad argument.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import * as oidc from 'openid-client';
import { ManualClock } from '../stores/clock.js';
import { Browser } from './helpers/browser.js';
import { createTestDatabase } from './helpers/databases.js';
import {
  discover,
  LogoutReceiver,
  REDIRECT_URI,
  signIn,
  startAuthorization,
  webClient,
} from './helpers/relying-party.js';
import { freePort, startTestServer } from './helpers/server.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DAY = 86_400_000;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `server/bin.js ...` on this test's Node, without the caller's GATEHOUSE_* settings (`variables` instead); `input` goes to stdin. */
function gatehouse(args: string[], input = '', variables: Record<string, string> = {}): Promise<Run> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('GATEHOUSE_')));
  env.PATH = [dirname(process.execPath), env.PATH].join(':');
  Object.assign(env, variables);
  return new Promise((resolve) => {
    const child = execFile(
      join(ROOT, 'server/bin.js'),
      args,
      { cwd: ROOT, env, timeout: 60_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
      },
    );
    child.stdin?.end(input);
  });
}

/** Runs `work` over `items`, three at a time (each run starts a Node process). */
async function inBatches<T>(items: T[], work: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += 3) await Promise.all(items.slice(i, i + 3).map(work));
}

async function fileDatabase(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const database = await createTestDatabase('sqlite-file');
  t.teardown(() => database.drop());
  return database.url;
}

test('users add, list, replace and remove', async (t) => {
  const db = await fileDatabase(t);
  const added = await gatehouse(
    [
      'users',
      'add',
      '--db',
      db,
      '--subject',
      'hal',
      '--username',
      'Hal',
      '--password-stdin',
      '--claim',
      'name=Hal Hughes',
      '--claim',
      'email=hal@example.com',
      '--claim',
      'email_verified:=true',
      '--role',
      'admin',
    ],
    'hal-password\n',
  );
  t.is(added.code, 0, added.stderr);
  t.regex(added.stdout, /^Added user hal \(username Hal\)\./);

  const listed = JSON.parse((await gatehouse(['users', 'list', '--db', db, '--json'])).stdout);
  t.like(listed.users[0], {
    subject: 'hal',
    username: 'Hal',
    claims: { name: 'Hal Hughes', email: 'hal@example.com', email_verified: true },
    roles: ['admin'],
    source: 'cli',
    disabled: false,
    hasPassword: true,
  });
  t.false(/\$(argon2id|scrypt)\$/.test(JSON.stringify(listed)), 'no password hash in the output');
  const table = await gatehouse(['users', 'list', '--db', db]);
  t.regex(
    table.stdout,
    /^SUBJECT +USERNAME +NAME +ROLES +SOURCE +STATUS +PASSWORD\nhal +Hal +Hal Hughes +admin +cli +enabled +yes$/m,
  );

  const duplicate = await gatehouse(['users', 'add', '--db', db, '--subject', 'hal']);
  t.is(duplicate.code, 1);
  t.regex(duplicate.stderr, /user "hal" already exists \(source cli\); give --replace/);
  const replaced = await gatehouse([
    'users',
    'add',
    '--db',
    db,
    '--subject',
    'hal',
    '--claim',
    'name=Hal H.',
    '--replace',
  ]);
  t.is(replaced.code, 0, replaced.stderr);
  const after = JSON.parse((await gatehouse(['users', 'list', '--db', db, '--json'])).stdout).users[0];
  t.like(
    after,
    { username: 'Hal', claims: { name: 'Hal H.' }, roles: [], hasPassword: true },
    'username and password kept; claims and roles replaced',
  );

  const removed = await gatehouse(['users', 'remove', '--db', db, '--subject', 'hal']);
  t.is(removed.code, 0, removed.stderr);
  t.is((await gatehouse(['users', 'list', '--db', db])).stdout.trim(), 'No users.');
  const again = await gatehouse(['users', 'remove', '--db', db, '--subject', 'hal']);
  t.is(again.code, 1);
  t.regex(again.stderr, /no user with subject "hal"/);
});

test("users remove ends the user's sessions, tokens and grants while a server runs on the same database", async (t) => {
  const db = await fileDatabase(t);
  const receiver = await new LogoutReceiver().start();
  const web = webClient(receiver.url, { skipConsent: true });
  const server = await startTestServer({
    databaseUrl: db,
    config: { serverSideSessions: { enabled: true }, clients: [web] } as never,
  });
  t.teardown(async () => {
    await server.close();
    await receiver.close();
  });
  // The CLI delivers the notification it queues itself and reports what became of it. The running server's delivery
  // worker polls the same outbox (every backchannelLogout.pollInterval): had its poll claimed the notification between
  // the CLI's enqueue and the CLI's own round, the CLI would rightly report it pending (delivered once all the same).
  // What this test pins down is the CLI's own delivery, so the server's worker stays out of it; the server still runs.
  await server.server.backchannel.stop();
  // The CLI's configuration gives the issuer (for the logout tokens) and lets it post to loopback; it does not say
  // that the server keeps server-side sessions: `users remove` looks in the session store all the same.
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-users-remove-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'gatehouse.json');
  writeFileSync(
    config,
    JSON.stringify({
      issuer: server.issuer,
      logging: { level: 'warn' },
      backchannelLogout: { allowPrivateNetworks: true },
    }),
  );

  const rp = await discover(server.issuer, 'web', 'web-secret');
  const browser = new Browser();
  const { tokens, claims } = await signIn(browser, rp, { username: 'dave', scope: 'openid profile offline_access' });
  await signIn(new Browser(), rp, { username: 'bob' });
  const [session] = await server.server.sessions.sessionsOf('dave');

  const removed = await gatehouse(['users', 'remove', '--db', db, '--config', config, '--subject', 'dave', '--json']);
  t.is(removed.code, 0, removed.stderr);
  t.deepEqual(JSON.parse(removed.stdout), {
    removed: 'dave',
    sessions: [session.sessionId],
    grantsRevoked: 1,
    notificationsQueued: 1,
    delivery: { delivered: 1, pending: 0, failed: 0 },
  });

  const [logoutToken] = await receiver.waitFor(1);
  const { payload } = await jwtVerify(logoutToken, createRemoteJWKSet(new URL(`${server.issuer}/jwks`)), {
    issuer: server.issuer,
    audience: 'web',
    typ: 'logout+jwt',
  });
  t.is(payload.sub, 'dave');
  t.is(payload.sid, claims.sid);
  t.is(
    await server.server.sessions.getSession(session.sessionId),
    null,
    'the running server no longer knows the session',
  );
  const refresh = await t.throwsAsync<oidc.ResponseBodyError>(oidc.refreshTokenGrant(rp, tokens.refresh_token!));
  t.is(refresh?.error, 'invalid_grant');
  t.false((await oidc.tokenIntrospection(rp, tokens.access_token)).active);
  t.true((await startAuthorization(browser, rp)).body.includes('name="password"'), 'the browser must sign in again');
  await t.throwsAsync(signIn(new Browser(), rp, { username: 'dave' }), { message: 'login failed' });
  t.is((await server.server.sessions.sessionsOf('bob')).length, 1, "bob's session is untouched");

  // Without --json, and a user without sessions (from the configuration, so the note shows).
  const text = await gatehouse(['users', 'remove', '--db', db, '--subject', 'carol']);
  t.is(text.code, 0, text.stderr);
  t.regex(
    text.stdout,
    /^Removed user carol\.\nSessions ended: 0; grants revoked: 0\nBack-channel logout: 0 queued, 0 delivered\nNote: user carol comes from the configuration/,
  );
  t.is(receiver.tokens.length, 1);
});

test('clients add from options and from --json, list without secrets, remove', async (t) => {
  const db = await fileDatabase(t);
  const fromFlags = await gatehouse([
    'clients',
    'add',
    '--db',
    db,
    '--client-id',
    'shop',
    '--secret',
    'shop-secret',
    '--name',
    'Shop',
    '--redirect-uri',
    'http://localhost:8080/cb',
    '--grant-type',
    'authorization_code,refresh_token',
    '--scope',
    'openid profile offline_access',
    '--backchannel-logout-uri',
    'http://localhost:8080/bcl',
    '--skip-consent',
  ]);
  t.is(fromFlags.code, 0, fromFlags.stderr);
  const fromJson = await gatehouse([
    'clients',
    'add',
    '--db',
    db,
    '--json',
    JSON.stringify({
      client_id: 'spa',
      token_endpoint_auth_method: 'none',
      redirect_uris: ['http://localhost:5173/cb'],
    }),
  ]);
  t.is(fromJson.code, 0, fromJson.stderr);

  const listed = JSON.parse((await gatehouse(['clients', 'list', '--db', db, '--json'])).stdout).clients;
  t.like(listed[0], {
    client_id: 'shop',
    client_name: 'Shop',
    hasSecret: true,
    grant_types: ['authorization_code', 'refresh_token'],
    skipConsent: true,
    source: 'cli',
  });
  t.like(listed[1], { client_id: 'spa', token_endpoint_auth_method: 'none', hasSecret: false });
  t.false(JSON.stringify(listed).includes('shop-secret'), 'secrets are never shown');
  t.regex(
    (await gatehouse(['clients', 'list', '--db', db])).stdout,
    /^shop +confidential +authorization_code,refresh_token +http:\/\/localhost:8080\/cb +cli +enabled$/m,
  );

  t.is(
    (
      await gatehouse([
        'clients',
        'add',
        '--db',
        db,
        '--client-id',
        'spa',
        '--public',
        '--redirect-uri',
        'http://localhost:5173/cb',
      ])
    ).code,
    1,
    'exists',
  );
  t.is((await gatehouse(['clients', 'remove', '--db', db, '--client-id', 'spa'])).code, 0);
  t.is((await gatehouse(['clients', 'remove', '--db', db, '--client-id', 'spa'])).code, 1);
});

test('keys rotate: the running server publishes the new pair at once, signs with it after the activation delay, and drops the old one once it retired', async (t) => {
  const db = await fileDatabase(t);
  const port = await freePort();
  const keys = { activationDelay: 8, refreshMs: 200 };
  const config = {
    port,
    issuer: `http://localhost:${port}`,
    keys,
    clients: [{ client_id: 'web', client_secret: 'web-secret', redirect_uris: [REDIRECT_URI], skipConsent: true }],
  };
  const jwksOf = async (issuer: string) => (await (await fetch(`${issuer}/jwks`)).json()) as JSONWebKeySet;
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-keys-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const configFile = join(dir, 'gatehouse.json');
  writeFileSync(configFile, JSON.stringify({ database: { url: db }, keys }));

  const first = await startTestServer({ databaseUrl: db, config });
  t.teardown(async () => {
    await first.server.close();
  });
  const before = await jwksOf(first.issuer);
  const web = await discover(first.issuer, 'web', 'web-secret');
  const { tokens: oldTokens } = await signIn(new Browser(), web, { username: 'alice' });
  const oldKid = decodeProtectedHeader(oldTokens.id_token!).kid;

  const rotated = await gatehouse(['keys', 'rotate', '--config', configFile]); // while the server runs
  t.is(rotated.code, 0, rotated.stderr);
  t.regex(
    rotated.stdout,
    /^New signing keys: \S+ \(RS256\), \S+ \(ES256\)\.\nPublished now; they sign from \S+ \(keys\.activationDelay 8 s\)\./,
  );
  t.regex(rotated.stdout, /no restart/);
  const listed = JSON.parse((await gatehouse(['keys', 'list', '--config', configFile, '--json'])).stdout).keys;
  const activateAt = Date.parse(listed[0].activateAt);
  // (Each command starts a Node process: on a busy machine the activation may have come meanwhile.)
  const stagesNow =
    Date.now() < activateAt ? ['pending', 'pending', 'active', 'active'] : ['active', 'active', 'retiring', 'retiring'];
  t.deepEqual(
    listed.map((key: { status: string }) => key.status),
    stagesNow,
  );
  const retireAfter = Date.parse(listed[2].retireAfter);
  t.true(
    Math.abs(retireAfter - (activateAt + 14 * DAY)) < 2000,
    'the old keys retire the longest token lifetime (refresh tokens, 14 days) after the new ones sign',
  );
  t.regex(
    (await gatehouse(['keys', 'list', '--config', configFile])).stdout,
    /^KID +ALG +STATUS +SIGNS FROM +PUBLISHED UNTIL\n\S+ +RS256 +(pending|active) /,
  );

  // The running server publishes the new keys within keys.refreshMs, and signs with the old ones until activation.
  const allFour = [...listed.map((key: { kid: string }) => key.kid)].sort().join();
  let published = await jwksOf(first.issuer);
  for (
    let i = 0;
    i < 100 &&
    published.keys
      .map((key) => key.kid)
      .sort()
      .join() !== allFour;
    i++
  ) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    published = await jwksOf(first.issuer);
  }
  t.is(
    published.keys
      .map((key) => key.kid)
      .sort()
      .join(),
    allFour,
    'all four published, no restart',
  );
  if (Date.now() < activateAt - 300) {
    const { tokens } = await signIn(new Browser(), web, { username: 'alice' });
    t.is(decodeProtectedHeader(tokens.id_token!).kid, oldKid, 'the old key still signs while the new one is pending');
  }
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, activateAt - Date.now())));
  let { tokens } = await signIn(new Browser(), web, { username: 'alice' });
  // (The server applies the stage at its boundary: allow its timer a moment on a busy machine.)
  for (let i = 0; i < 20 && decodeProtectedHeader(tokens.id_token!).kid !== listed[0].kid; i++) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    ({ tokens } = await signIn(new Browser(), web, { username: 'alice' }));
  }
  t.is(
    decodeProtectedHeader(tokens.id_token!).kid,
    listed[0].kid,
    'the new RS256 key signs after its activation, without a restart',
  );
  const jwks = createLocalJWKSet(await jwksOf(first.issuer));
  await t.notThrowsAsync(
    jwtVerify(oldTokens.id_token!, jwks, { issuer: first.issuer }),
    'a token signed before the rotation still verifies',
  );
  await t.notThrowsAsync(jwtVerify(tokens.id_token!, jwks, { issuer: first.issuer }));
  await first.server.close();

  const later = await startTestServer({ databaseUrl: db, config, clock: new ManualClock(retireAfter + 1000) });
  t.teardown(async () => {
    await later.server.close();
  });
  t.deepEqual(
    (await jwksOf(later.issuer)).keys.map((key) => key.kid),
    listed.slice(0, 2).map((key: { kid: string }) => key.kid),
    'retired keys are no longer published',
  );
  t.deepEqual(
    before.keys.map((key) => key.kid),
    listed.slice(2).map((key: { kid: string }) => key.kid),
  );
});

test('--help on every command and subcommand exits 0 with its usage', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--help'], /^Usage: gatehouse <command>/],
    [['start', '--help'], /^Usage: gatehouse start/],
    [['migrate', '--help'], /^Usage: gatehouse migrate/],
    [['hash-password', '--help'], /^Usage: gatehouse hash-password/],
    [['users', '--help'], /gatehouse users add --subject S/],
    [['users', 'add', '--help'], /gatehouse users add --subject S/],
    [['users', 'list', '-h'], /gatehouse users list/],
    [['clients', '--help'], /gatehouse clients add --client-id ID/],
    [['clients', 'remove', '--help'], /gatehouse clients remove --client-id ID/],
    [['keys', '--help'], /gatehouse keys rotate/],
    [['keys', 'rotate', '--help'], /gatehouse keys rotate/],
    [['sessions', '--help'], /gatehouse sessions list/],
  ];
  await inBatches(cases, async ([args, usage]) => {
    const run = await gatehouse(args);
    t.is(run.code, 0, `${args.join(' ')}: ${run.stderr}`);
    t.regex(run.stdout, usage, args.join(' '));
  });
});

test('bad arguments exit 2 with a message naming the argument', async (t) => {
  const db = await fileDatabase(t);
  const cases: [string[], RegExp][] = [
    [['users', 'add', '--db', db], /--subject is required/],
    [
      ['users', 'add', '--db', db, '--subject', 'x', '--claim', 'nameAlice'],
      /--claim "nameAlice": expected name=value or name:=<JSON>/,
    ],
    [
      ['users', 'add', '--db', db, '--subject', 'x', '--claim', 'email_verified:=yes'],
      /--claim email_verified:= the value is not valid JSON/,
    ],
    [
      ['users', 'add', '--db', db, '--subject', 'x', '--password', 'a', '--password-stdin'],
      /give --password or --password-stdin, not both/,
    ],
    [['users', 'add', '--db', db, '--subject', 'x', '--secret', 's'], /--secret is not an option of users add/],
    [['users', 'add', '--db', db, '--subject', 'x'.repeat(256)], /--subject must be 1 to 255 characters/],
    [['users', 'remove', '--db', db], /--subject is required/],
    [['users', 'purge'], /users: unknown subcommand "purge" \(add, list, remove, unlock\)/],
    [['users'], /users: give a subcommand, add, list, remove, unlock/],
    [
      ['clients', 'add', '--db', db, '--client-id', 'c', '--secret', 's', '--redirect-uri', 'notaurl'],
      /--redirect-uri "notaurl": expected an http\(s\) URL/,
    ],
    [
      ['clients', 'add', '--db', db, '--client-id', 'c', '--redirect-uri', 'http://localhost/cb'],
      /--secret: required unless token_endpoint_auth_method is "none"/,
    ],
    [
      ['clients', 'add', '--db', db, '--client-id', 'c', '--secret', 's', '--grant-type', 'password'],
      /--grant-type "password": Invalid option/,
    ],
    [
      [
        'clients',
        'add',
        '--db',
        db,
        '--client-id',
        'gatehouse-console',
        '--public',
        '--redirect-uri',
        'http://localhost/cb',
      ],
      /--client-id: "gatehouse-console" is reserved/,
    ],
    [
      ['clients', 'add', '--db', db, '--json', '{"client_id": "c", "redirect_uris": ["x"]}'],
      /--json: redirect_uris\[0\]: expected an http\(s\) URL/,
    ],
    [
      ['clients', 'add', '--db', db, '--json', '{"client_id": "c"}', '--secret', 's'],
      /--json cannot be combined with --secret/,
    ],
    [['clients', 'add', '--db', db, '--json', '{nope'], /--json: not valid JSON/],
    [
      [
        'clients',
        'add',
        '--db',
        db,
        '--client-id',
        'tv',
        '--public',
        '--grant-type',
        'urn:ietf:params:oauth:grant-type:device_code',
      ],
      /client "tv" does not fit the configuration:\n {2}--grant-type: urn:ietf:params:oauth:grant-type:device_code needs deviceFlow\.enabled: true/,
    ],
    [['keys', 'spin'], /keys: unknown subcommand "spin" \(rotate, list\)/],
    [['keys', 'rotate', '--frobnicate'], /--frobnicate/],
    [['start', 'now'], /start: unexpected argument "now"/],
    [['frobnicate'], /unknown command "frobnicate"/],
  ];
  await inBatches(cases, async ([args, message]) => {
    const run = await gatehouse(args);
    t.is(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    t.regex(run.stderr, message, args.join(' '));
  });
});

test('a flag wins over the environment, and a misspelt variable gets a warning', async (t) => {
  const db = await fileDatabase(t);
  const variables = { GATEHOUSE_DATABASE__URL: 'sqlite::memory:', GATEHOUSE_DATABSE__URL: 'sqlite::memory:' };
  const added = await gatehouse(['users', 'add', '--db', db, '--subject', 'flagged', '--json'], '', variables);
  t.is(added.code, 0, added.stderr);
  const listed = await gatehouse(['users', 'list', '--db', db, '--json'], '', variables);
  t.is(listed.code, 0, listed.stderr);
  t.deepEqual(
    (JSON.parse(listed.stdout) as { users: { subject: string }[] }).users.map((user) => user.subject),
    ['flagged'],
  );
  t.regex(
    listed.stderr,
    /^gatehouse: warning: GATEHOUSE_DATABSE__URL is not a Gatehouse setting and is ignored; did you mean GATEHOUSE_DATABASE__URL\?$/m,
  );
});

test('directory commands refuse an in-memory database (exit 1), and keys commands refuse configured keys', async (t) => {
  const memory = await gatehouse(['users', 'list', '--db', 'sqlite::memory:']);
  t.is(memory.code, 1);
  t.regex(memory.stderr, /the database is in memory/);

  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-keys-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'gatehouse.json');
  writeFileSync(
    config,
    JSON.stringify({
      database: { url: await fileDatabase(t) },
      keys: { jwks: { keys: [{ kty: 'RSA', kid: 'mine' }] } },
    }),
  );
  const rotate = await gatehouse(['keys', 'rotate', '--config', config]);
  t.is(rotate.code, 1);
  t.regex(rotate.stderr, /keys\.jwks is set in the configuration/);
});
