/**
 * Password storage: argon2id by default (PHC `$argon2id$v=19$m=19456,t=2,p=1$…`), checked against the reference
 * implementation's published vector; scrypt hashes of earlier versions keep verifying and are replaced by argon2id at
 * the next successful sign-in; `gatehouse hash-password`, `users add` and the admin API make argon2id; unknown users
 * are checked against a dummy hash of the configured cost.
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { QueryTypes } from 'sequelize';
import { validateConfig } from '../config/load.js';
import { defaults } from '../config/defaults.js';
import {
  createDummyHash,
  hashPassword,
  needsRehash,
  parsePasswordHash,
  verifyPassword,
} from '../server/provider/passwords.js';
import { Browser } from './helpers/browser.js';
import { createTestDatabase } from './helpers/databases.js';
import { discover, REDIRECT_URI, signIn } from './helpers/relying-party.js';
import { startTestServer, TEST_HASHING } from './helpers/server.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const clients = [{ client_id: 'web', client_secret: 'web-secret', redirect_uris: [REDIRECT_URI], skipConsent: true }];

function gatehouse(args: string[], input = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('GATEHOUSE_')));
  env.PATH = [dirname(process.execPath), env.PATH].join(':');
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

test('the default is argon2id at OWASP m=19 MiB, t=2, p=1, and a hash verifies only its own password', async (t) => {
  const hashing = validateConfig({}).passwordHashing;
  t.like(hashing, { algorithm: 'argon2id', memory: 19456, passes: 2, parallelism: 1 });
  const phc = await hashPassword('correct horse', hashing);
  t.regex(phc, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
  t.true(await verifyPassword('correct horse', phc));
  t.false(await verifyPassword('correct horsE', phc));
  t.not(await hashPassword('correct horse', hashing), phc, 'a fresh salt every time');
  t.false(needsRehash(phc, hashing));
  t.true(needsRehash(phc, { ...hashing, passes: 3 }), 'another cost is re-hashed');
  t.true(needsRehash(phc, { ...defaults.passwordHashing, algorithm: 'scrypt' }), 'another algorithm is re-hashed');
});

test('argon2id PHC strings from the reference implementation verify (interoperable format)', async (t) => {
  // `echo -n password | argon2 somesalt -id -t 2 -m 16 -p 4 -l 32 -e` (P-H-C/phc-winner-argon2).
  const reference = '$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo';
  t.like(parsePasswordHash(reference), { algorithm: 'argon2id', memory: 65536, passes: 2, parallelism: 4 });
  t.true(await verifyPassword('password', reference));
  t.false(await verifyPassword('passwore', reference));
});

test('malformed or hostile hashes never match and cost nothing', async (t) => {
  for (const phc of [
    '',
    '$argon2id$v=16$m=1024,t=1,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo', // another version
    '$argon2i$v=19$m=1024,t=1,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo', // another variant
    '$argon2id$v=19$m=99999999,t=1,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo', // ~95 GiB
    '$argon2id$v=19$m=8,t=1,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo', // below 8 KiB per lane
    '$scrypt$ln=10,r=8,p=1$c2FsdA$aGFzaA', // a hash too short to mean anything
  ]) {
    t.false(await verifyPassword('password', phc), phc);
  }
  // Costs that a hostile or corrupt stored hash could name: each would stall a verification for seconds (4 GiB of
  // memory for the first); none is even parsed, so none is ever tried.
  const salt = 'c29tZXNhbHRzb21lc2FsdA';
  const hash = 'GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo';
  for (const cost of [
    'argon2id$v=19$m=4194304,t=1,p=1',
    'argon2id$v=19$m=19456,t=999,p=1',
    'argon2id$v=19$m=19456,t=2,p=99',
    'scrypt$ln=15,r=8,p=20',
    'scrypt$ln=15,r=999,p=1',
  ]) {
    t.is(parsePasswordHash(`$${cost}$${salt}$${hash}`), null, cost);
  }
  t.is(parsePasswordHash(`$argon2id$v=19$m=19456,t=2,p=1$${'A'.repeat(200)}$${hash}`), null, 'a 150-byte salt');
  t.truthy(
    parsePasswordHash(`$argon2id$v=19$m=19456,t=2,p=1$${salt}$${hash}`),
    'the default cost is within the limits',
  );
  const problems = t.throws(() =>
    validateConfig({ accounts: [{ subject: 'a', passwordHash: `$argon2id$v=19$m=19456,t=999,p=1$${salt}$${hash}` }] }),
  );
  t.regex(problems!.message, /accounts\[0\]\.passwordHash: argon2id t must be 1 to 16/);
  t.throws(() => validateConfig({ passwordHashing: { passes: 50 } }), { message: /passwordHashing\.passes/ });
});

test('passwords are NFKC-normalised: a composed and a decomposed é are the same password', async (t) => {
  const phc = await hashPassword('caf\u00e9', TEST_HASHING);
  t.true(await verifyPassword('cafe\u0301', phc));
});

test('scrypt stays available, at OWASP N = 2^17 by default', async (t) => {
  const hashing = validateConfig({ passwordHashing: { algorithm: 'scrypt' } }).passwordHashing;
  t.like(hashing, { algorithm: 'scrypt', log2N: 17, r: 8, p: 1 });
  const cheap = { ...hashing, log2N: 10 };
  const phc = await hashPassword('pw', cheap);
  t.regex(phc, /^\$scrypt\$ln=10,r=8,p=1\$/);
  t.true(await verifyPassword('pw', phc));
  t.false(needsRehash(phc, cheap));
});

test('the configuration names bad hashing settings and accepts both hash formats', (t) => {
  t.throws(() => validateConfig({ passwordHashing: { algorithm: 'bcrypt' as never } }), {
    message: /passwordHashing\.algorithm/,
  });
  t.throws(() => validateConfig({ passwordHashing: { memory: 16, parallelism: 4 } }), {
    message: /passwordHashing\.memory: expected at least 8 KiB per lane/,
  });
  t.notThrows(() =>
    validateConfig({
      accounts: [
        {
          subject: 'a',
          passwordHash:
            '$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo',
        },
        { subject: 'b', passwordHash: '$scrypt$ln=15,r=8,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo' },
      ],
    }),
  );
  t.throws(() => validateConfig({ accounts: [{ subject: 'a', passwordHash: '$argon2id$x' }] }), {
    message: /accounts\[0\]\.passwordHash: expected a PHC string/,
  });
});

test('an account seeded with an scrypt hash signs in and its hash is upgraded to argon2id', async (t) => {
  const legacy = await hashPassword('erin-password', { log2N: 15, r: 8, p: 1 }); // the default of earlier versions
  const gatehouse = await startTestServer({
    config: {
      clients,
      passwordHashing: { algorithm: 'argon2id', memory: 2048, passes: 2, parallelism: 1 },
      accounts: [{ subject: 'erin', passwordHash: legacy }],
    },
  });
  t.teardown(() => gatehouse.close());
  const stored = async () =>
    (
      await gatehouse.server.sequelize.query<{ password_hash: string }>(
        'SELECT password_hash FROM gatehouse_users WHERE subject = :s',
        { replacements: { s: 'erin' }, type: QueryTypes.SELECT },
      )
    )[0].password_hash;
  t.is(await stored(), legacy);
  const web = await discover(gatehouse.issuer, 'web', 'web-secret');
  t.is((await signIn(new Browser(), web, { username: 'erin' })).claims.sub, 'erin');
  const upgraded = await stored();
  t.regex(upgraded, /^\$argon2id\$v=19\$m=2048,t=2,p=1\$/, 'stored again as argon2id at the configured cost');
  t.true(await verifyPassword('erin-password', upgraded));
  t.is((await signIn(new Browser(), web, { username: 'erin' })).claims.sub, 'erin', 'the new hash works');
  t.is(await stored(), upgraded, 'and is not replaced again');
});

test("a re-hash at sign-in changes only the hash, and loses to an administrator's change made meanwhile", async (t) => {
  const legacy = await hashPassword('erin-password', { log2N: 10, r: 8, p: 1 });
  const gatehouse = await startTestServer({
    config: {
      clients,
      passwordHashing: { algorithm: 'argon2id', memory: 2048, passes: 2, parallelism: 1 },
      accounts: [{ subject: 'erin', passwordHash: legacy }],
    },
  });
  t.teardown(() => gatehouse.close());
  const { accounts } = gatehouse.server;
  const input = (user: NonNullable<Awaited<ReturnType<typeof accounts.get>>>) => {
    const { created: _created, updated: _updated, ...rest } = user;
    return rest;
  };

  // The sign-in read erin; an administrator disables her and changes a claim before the re-hash lands.
  const seen = (await accounts.get('erin'))!;
  await accounts.save({ ...input(seen), disabled: true, claims: { name: 'Erin (left)' } });
  t.true(await accounts.upgradeHash(seen, 'erin-password'));
  const after = (await accounts.get('erin'))!;
  t.true(after.disabled, 'still disabled');
  t.deepEqual(after.claims, { name: 'Erin (left)' }, 'the claim change stays');
  t.regex(after.passwordHash!, /^\$argon2id\$/);

  // Another stale read, then an administrator's password reset: the re-hash of the old password loses.
  const stale = { ...after, passwordHash: legacy };
  await accounts.save({ ...input(after), passwordHash: await accounts.hashPassword('reset-by-admin') });
  const reset = (await accounts.get('erin'))!.passwordHash!;
  t.false(await accounts.upgradeHash(stale, 'erin-password'));
  t.is((await accounts.get('erin'))!.passwordHash, reset, "the administrator's password stays");
});

test('hash-password, users add and the admin API make argon2id hashes at the configured cost', async (t) => {
  const printed = await gatehouse(['hash-password'], 'a password\n');
  t.is(printed.code, 0, printed.stderr);
  t.regex(printed.stdout.trim(), /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
  t.true(await verifyPassword('a password', printed.stdout.trim()));

  const database = await createTestDatabase('sqlite-file');
  t.teardown(() => database.drop());
  const added = await gatehouse(
    ['users', 'add', '--db', database.url, '--subject', 'kim', '--password-stdin'],
    'kim-password\n',
  );
  t.is(added.code, 0, added.stderr);
  const gatehouseServer = await startTestServer({
    databaseUrl: database.url,
    config: {
      passwordHashing: TEST_HASHING,
      clients: [
        {
          client_id: 'admin',
          client_secret: 'admin-secret',
          grant_types: ['client_credentials'],
          scope: 'gatehouse:admin',
        },
      ],
    },
  });
  t.teardown(() => gatehouseServer.close());
  t.regex(
    (await gatehouseServer.server.accounts.get('kim'))!.passwordHash!,
    /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/,
    'users add: the default cost (no config given)',
  );

  const tokenResponse = await fetch(`${gatehouseServer.issuer}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from('admin:admin-secret').toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials&scope=gatehouse%3Aadmin',
  });
  const { access_token: token } = (await tokenResponse.json()) as { access_token: string };
  const put = await fetch(`${gatehouseServer.issuer}/admin/api/v1/users/lee`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ claims: {}, password: 'lee-password' }),
  });
  t.is(put.status, 201);
  t.regex(
    (await gatehouseServer.server.accounts.get('lee'))!.passwordHash!,
    /^\$argon2id\$v=19\$m=1024,t=1,p=1\$/,
    'admin API: the configured cost',
  );
});

test.serial('unknown users are checked against a dummy hash of the configured algorithm and cost', async (t) => {
  t.regex(await createDummyHash(defaults.passwordHashing), /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  t.regex(await createDummyHash({ log2N: 12, r: 8, p: 1 }), /^\$scrypt\$ln=12,r=8,p=1\$/);

  // The same CPU for a wrong password of a real user as for a user who does not exist (CPU time of this process,
  // thread pool included, so a busy machine does not skew it; the hash dominates, the bounds are generous).
  const hashing = { algorithm: 'argon2id' as const, memory: 32768, passes: 2, parallelism: 1 };
  const gatehouse = await startTestServer({
    config: {
      passwordHashing: hashing,
      accounts: [{ subject: 'mia', passwordHash: await hashPassword('mia-password', hashing) }],
    },
  });
  t.teardown(() => gatehouse.close());
  const cpuOf = async (username: string) => {
    const before = process.cpuUsage();
    for (let i = 0; i < 6; i++) t.false((await gatehouse.server.accounts.checkPassword(username, `wrong-${i}`)).ok);
    const used = process.cpuUsage(before);
    return used.user + used.system;
  };
  await cpuOf('mia'); // warm-up
  const known = await cpuOf('mia');
  const unknown = await cpuOf('nobody-at-all');
  t.log(`6 checks: known user ${(known / 1000).toFixed(0)} ms CPU, unknown user ${(unknown / 1000).toFixed(0)} ms CPU`);
  t.true(unknown > known * 0.6 && unknown < known * 1.6, `known ${known} µs, unknown ${unknown} µs`);
});
