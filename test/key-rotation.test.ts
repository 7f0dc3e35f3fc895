/**
 * Key rotation without restarts, on two instances sharing one PostgreSQL database and one issuer (as behind a load
 * balancer): `gatehouse keys rotate` stages a new pair; both instances publish it, then sign with it after
 * keys.activationDelay, then stop publishing the old pair once everything it signed has expired. At every sampled
 * moment, a token just signed by either instance verifies against the JWKS the other one serves.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import * as oidc from 'openid-client';
import type { GatehouseConfigInput } from '../config/schema.js';
import { generateSigningKeys, keyStages, nextStageChange, providerKeys } from '../server/provider/keys.js';
import { Browser } from './helpers/browser.js';
import { createTestDatabase } from './helpers/databases.js';
import { discover, REDIRECT_URI, signIn } from './helpers/relying-party.js';
import { freePort, startTestServer } from './helpers/server.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Short stages for the test: published 4 s before signing; retired 8 s (the longest ttl) after being superseded. */
const ACTIVATION_DELAY = 4;
const TTL = { accessToken: 6, idToken: 6, authorizationCode: 6, clientCredentials: 6, refreshToken: 8 };
const KEYS = { activationDelay: ACTIVATION_DELAY, refreshMs: 200 };

function gatehouse(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('GATEHOUSE_')));
  env.PATH = [dirname(process.execPath), env.PATH].join(':');
  return new Promise((resolve) => {
    execFile(join(ROOT, 'server/bin.js'), args, { cwd: ROOT, env, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr }),
    );
  });
}

test('two instances rotate keys without a restart: each always publishes every key the other signs with', async (t) => {
  const database = await createTestDatabase('postgres');
  const portA = await freePort();
  const issuer = `http://localhost:${portA}`;
  const config: GatehouseConfigInput = {
    issuer,
    ttl: TTL,
    keys: KEYS,
    clients: [
      {
        client_id: 'web',
        client_secret: 'web-secret',
        redirect_uris: [REDIRECT_URI],
        grant_types: ['authorization_code', 'refresh_token'],
        scope: 'openid offline_access',
        skipConsent: true,
      },
    ],
  };
  const A = await startTestServer({ databaseUrl: database.url, config: { ...config, port: portA } });
  const B = await startTestServer({ databaseUrl: database.url, config: { ...config, port: await freePort() } });
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-rotation-'));
  t.teardown(async () => {
    await A.server.close();
    await B.server.close();
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  });
  const portB = new URL(`http://${B.server.config.host ?? 'localhost'}:${(await B.server.listen()).port}`).port;

  // A relying party whose requests go to one instance (the issuer names A; B is reached by its port, as a balancer would).
  const on = (port: string | number) => (url: URL | string) => {
    const target = new URL(url);
    if (target.origin === issuer) target.port = String(port);
    return target;
  };
  const rpFor = (port: string | number) =>
    oidc.discovery(new URL(issuer), 'web', { client_secret: 'web-secret' }, undefined, {
      execute: [oidc.allowInsecureRequests],
      [oidc.customFetch]: (url, options) => fetch(on(port)(url), options as RequestInit),
    });
  const rp = { A: await rpFor(portA), B: await rpFor(portB) };
  const web = await discover(issuer, 'web', 'web-secret');
  const refreshTokens = {
    A: (await signIn(new Browser(), web, { username: 'alice', scope: 'openid offline_access' })).tokens.refresh_token!,
    B: (await signIn(new Browser(), web, { username: 'bob', scope: 'openid offline_access' })).tokens.refresh_token!,
  };
  const jwksOf = async (port: string | number) =>
    (await (await fetch(`http://localhost:${port}/jwks`)).json()) as JSONWebKeySet;
  const before = await jwksOf(portA);
  t.deepEqual(
    (await jwksOf(portB)).keys.map((key) => key.kid),
    before.keys.map((key) => key.kid),
    'one set of keys',
  );
  const oldRsa = before.keys.find((key) => key.alg === 'RS256')!.kid!;

  // Rotate with the real command, on the same database, while both serve.
  const configFile = join(dir, 'gatehouse.json');
  writeFileSync(configFile, JSON.stringify({ database: { url: database.url }, ttl: TTL, keys: KEYS }));
  const rotation = gatehouse(['keys', 'rotate', '--config', configFile]);

  interface Sample {
    at: number;
    signedBy: Record<'A' | 'B', string>;
    published: Record<'A' | 'B', string[]>;
  }
  const samples: Sample[] = [];
  const failures: string[] = [];
  const started = Date.now();
  let rotated: Awaited<typeof rotation> | undefined;
  void rotation.then((result) => (rotated = result));
  for (;;) {
    const signed = { A: '', B: '' };
    for (const name of ['A', 'B'] as const) {
      const tokens = await oidc.refreshTokenGrant(rp[name], refreshTokens[name]);
      refreshTokens[name] = tokens.refresh_token!;
      signed[name] = tokens.id_token!;
    }
    const published = { A: await jwksOf(portA), B: await jwksOf(portB) };
    for (const [signer, verifier] of [
      ['A', 'B'],
      ['B', 'A'],
    ] as const) {
      try {
        await jwtVerify(signed[signer], createLocalJWKSet(published[verifier]), { issuer, audience: 'web' });
      } catch (error) {
        failures.push(
          `${Date.now() - started} ms: a token signed by ${signer} (kid ${decodeProtectedHeader(signed[signer]).kid}) fails against ${verifier}'s JWKS: ${(error as Error).message}`,
        );
      }
    }
    samples.push({
      at: Date.now() - started,
      signedBy: { A: String(decodeProtectedHeader(signed.A).kid), B: String(decodeProtectedHeader(signed.B).kid) },
      published: { A: published.A.keys.map((key) => key.kid!), B: published.B.keys.map((key) => key.kid!) },
    });
    const last = samples.at(-1)!;
    const oldGone = !last.published.A.includes(oldRsa) && !last.published.B.includes(oldRsa);
    if ((rotated && oldGone) || Date.now() - started > 60_000) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  t.is(rotated?.code, 0, rotated?.stderr);
  t.regex(rotated!.stdout, /Published now; they sign from /);
  t.deepEqual(failures, [], 'every token verified against the other instance at every sample');

  const newRsa = samples.at(-1)!.signedBy.A;
  t.not(newRsa, oldRsa, 'A signs with a new key at the end');
  t.is(samples.at(-1)!.signedBy.B, newRsa, 'and so does B');
  const pendingSeen = samples.filter(
    (s) =>
      s.signedBy.A === oldRsa &&
      s.signedBy.B === oldRsa &&
      s.published.A.includes(newRsa) &&
      s.published.B.includes(newRsa),
  );
  const overlapSeen = samples.filter(
    (s) => s.signedBy.A === newRsa && s.published.A.includes(oldRsa) && s.published.B.includes(oldRsa),
  );
  t.true(pendingSeen.length > 0, 'the new key was published by both while the old one still signed');
  t.true(overlapSeen.length > 0, 'the old key stayed published after the new one signed');
  t.false(samples.at(-1)!.published.A.includes(oldRsa), 'and was dropped once everything it signed had expired');
  const firstPublished = samples.find((s) => s.published.A.includes(newRsa) || s.published.B.includes(newRsa))!.at;
  const firstSigned = samples.find((s) => s.signedBy.A === newRsa || s.signedBy.B === newRsa)!.at;
  t.log(
    `${samples.length} samples over ${samples.at(-1)!.at} ms; new key published at ${firstPublished} ms, signing at ${firstSigned} ms, old key gone at ${samples.at(-1)!.at} ms; no restart`,
  );

  const listed = await gatehouse(['keys', 'list', '--config', configFile, '--json']);
  const statuses = (JSON.parse(listed.stdout) as { keys: { kid: string; status: string }[] }).keys;
  t.is(statuses.find((key) => key.kid === newRsa)?.status, 'active');
  t.is(statuses.find((key) => key.kid === oldRsa)?.status, 'retired');
});

test('stages follow from the stored times alone; keys stored before staged rotation keep their meaning', async (t) => {
  const [rsa1, ec1] = (await generateSigningKeys()).keys;
  const [rsa2, ec2] = (await generateSigningKeys()).keys;
  const [rsa3] = (await generateSigningKeys()).keys;
  const at = (seconds: number) => new Date(seconds * 1000);
  // The stored form of an earlier rotation: the new pair first, the old one with a retire time only.
  const legacy = { keys: [rsa2, ec2, rsa1, ec1], retireAfter: { [String(rsa1.kid)]: 1000, [String(ec1.kid)]: 1000 } };
  t.deepEqual(
    keyStages(legacy, at(500)).map((info) => info.status),
    ['active', 'active', 'retiring', 'retiring'],
  );
  t.deepEqual(
    keyStages(legacy, at(1000)).map((info) => info.status),
    ['active', 'active', 'retired', 'retired'],
  );
  t.deepEqual(
    providerKeys(legacy, at(500)).map((key) => [key.kid, key.key_ops]),
    [
      [rsa2.kid, undefined],
      [ec2.kid, undefined],
      [rsa1.kid, ['verify']],
      [ec1.kid, ['verify']],
    ],
  );

  // Two rotations in a row: each pending key signs from its own activation; the one in between signs until the next.
  const staged = {
    keys: [rsa3, rsa2, rsa1],
    activateAt: { [String(rsa2.kid)]: 100, [String(rsa3.kid)]: 200 },
    retireAfter: { [String(rsa1.kid)]: 150, [String(rsa2.kid)]: 250 },
  };
  const statuses = (seconds: number) => keyStages(staged, at(seconds)).map((info) => info.status);
  t.deepEqual(statuses(50), ['pending', 'pending', 'active']);
  t.deepEqual(statuses(120), ['pending', 'active', 'retiring']);
  t.deepEqual(statuses(210), ['active', 'retiring', 'retired']);
  t.deepEqual(statuses(300), ['active', 'retired', 'retired']);
  t.deepEqual(nextStageChange(staged, at(120)), at(150));
  t.is(providerKeys(staged, at(120))[0].kid, rsa2.kid, 'the active key comes first: the provider signs with it');
});
