/**
 * Several Gatehouse instances on one PostgreSQL database, as separate processes (test/fixtures/serve.ts) started at the
 * same moment, so their migrations and key generation race. Both share one issuer (http://localhost:<port of A>) while
 * each listens on its own port; the relying party and the browser reach instance B by rewriting the origin of every
 * request meant for it, as a load balancer would route it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import test, { type ExecutionContext } from 'ava';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { QueryTypes, type Sequelize } from 'sequelize';
import { openDatabase } from '../stores/sequelize/connection.js';
import { Browser, formWithAction, type Page } from './helpers/browser.js';
import { createTestDatabase } from './helpers/databases.js';
import type { JsonBody } from './helpers/json-body.js';
import { LogoutReceiver, REDIRECT_URI } from './helpers/relying-party.js';
import { freePort } from './helpers/server.js';

const FIXTURE = new URL('fixtures/serve.ts', import.meta.url).pathname;
const MIGRATIONS = new URL('../stores/sequelize/migrations/', import.meta.url).pathname;
const OFFLINE = 'openid profile email offline_access';

interface Instance {
  name: 'A' | 'B';
  port: number;
  origin: string;
}

interface Cluster {
  issuer: string;
  A: Instance;
  B: Instance;
  databaseUrl: string;
  receiver: LogoutReceiver;
}

/** Starts one serve.ts process; resolves once it prints its ready line, rejects (with its stderr) if it exits first. */
function spawnInstance(env: Record<string, string>): { child: ChildProcess; ready: Promise<number> } {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const ready = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`instance on port ${env.PORT} not ready after 30 s:\n${stderr}`)),
      30_000,
    );
    child.stdout!.on('data', (chunk) => {
      stdout += chunk;
      for (const line of stdout.split('\n')) {
        if (!line.startsWith('{"ready"')) continue;
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port: number }).port);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`instance on port ${env.PORT} exited with ${code} before it was ready:\n${stderr}`));
    });
  });
  return { child, ready };
}

function stopInstance(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Two instances on one fresh PostgreSQL database, spawned in the same tick; stopped and dropped at teardown. */
async function startCluster(t: ExecutionContext, env: Record<string, string> = {}): Promise<Cluster> {
  const database = await createTestDatabase('postgres');
  const receiver = await new LogoutReceiver().start();
  const portA = await freePort();
  let portB = await freePort();
  while (portB === portA) portB = await freePort();
  const issuer = `http://localhost:${portA}`;
  const common = { GATEHOUSE_DATABASE_URL: database.url, GATEHOUSE_ISSUER: issuer, RECEIVER_URL: receiver.url, ...env };
  const processes = [
    spawnInstance({ ...common, PORT: String(portA) }),
    spawnInstance({ ...common, PORT: String(portB) }),
  ];
  t.teardown(async () => {
    await Promise.all(processes.map(({ child }) => stopInstance(child)));
    await receiver.close();
    await database.drop();
  });
  const [readyA, readyB] = await Promise.all(processes.map(({ ready }) => ready));
  t.is(readyA, portA);
  t.is(readyB, portB);
  return {
    issuer,
    A: { name: 'A', port: portA, origin: issuer },
    B: { name: 'B', port: portB, origin: `http://localhost:${portB}` },
    databaseUrl: database.url,
    receiver,
  };
}

/** The same URL on the given instance (URLs of relying parties are left alone). */
function on(cluster: Cluster, url: string | URL, instance: Instance): URL {
  const target = new URL(url);
  if (target.origin === cluster.A.origin || target.origin === cluster.B.origin) target.port = String(instance.port);
  return target;
}

/** An openid-client configuration whose every request (discovery included) goes to the given instance. */
function relyingParty(
  cluster: Cluster,
  instance: Instance,
  clientId: string,
  clientSecret: string,
): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(cluster.issuer), clientId, { client_secret: clientSecret }, undefined, {
    execute: [oidc.allowInsecureRequests],
    [oidc.customFetch]: (url, options) => fetch(on(cluster, url, instance), options as RequestInit),
  });
}

/**
 * A browser behind a round-robin balancer: every request, redirects and form posts included, goes to the other
 * instance than the one before. `hops` records who served what.
 */
class BalancedBrowser {
  readonly browser = new Browser();
  readonly hops: string[] = [];
  #last: Instance;

  constructor(readonly cluster: Cluster) {
    this.#last = cluster.B;
  }

  #next(): Instance {
    this.#last = this.#last === this.cluster.A ? this.cluster.B : this.cluster.A;
    return this.#last;
  }

  async #request(url: string | URL, init: { form?: Record<string, string> } = {}): Promise<Page> {
    const instance = this.#next();
    const target = on(this.cluster, url, instance);
    this.hops.push(
      `${instance.name} ${init.form ? 'POST' : 'GET'} ${target.pathname.replace(/\/interaction\/[^/]+/, '/interaction/:uid').replace(/\/auth\/[^/]+/, '/auth/:uid')}`,
    );
    return this.browser.request(target, init);
  }

  /** Follows redirects within Gatehouse; a redirect elsewhere (the relying party) is returned unfollowed. */
  async navigate(url: string | URL, init: { form?: Record<string, string> } = {}): Promise<Page> {
    let page = await this.#request(url, init);
    for (let hops = 0; hops < 20; hops++) {
      const location = page.headers.get('location');
      if (!(page.status >= 300 && page.status < 400 && location)) return page;
      const next = new URL(location, page.url);
      if (next.origin !== this.cluster.A.origin && next.origin !== this.cluster.B.origin)
        return { ...page, url: next.href };
      page = await this.#request(next);
    }
    throw new Error('too many redirects');
  }

  /** Starts the next request on the given instance. */
  startOn(instance: Instance): this {
    this.#last = instance === this.cluster.A ? this.cluster.B : this.cluster.A;
    return this;
  }

  hasSessionCookie(): boolean {
    return [...this.browser.cookies.values()].some(
      (cookie) => cookie.name === '_session' && (cookie.expires === undefined || cookie.expires > Date.now()),
    );
  }
}

/** Authorization code + PKCE through the real login and consent pages, each request on the other instance. */
async function signInAcross(
  balanced: BalancedBrowser,
  authorizeWith: oidc.Configuration,
  exchangeWith: oidc.Configuration,
  username: string,
) {
  const verifier = oidc.randomPKCECodeVerifier();
  const nonce = oidc.randomNonce();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(authorizeWith, {
    redirect_uri: REDIRECT_URI,
    scope: OFFLINE,
    prompt: 'consent',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
    state,
  });
  let page = await balanced.navigate(url);
  for (let step = 0; step < 4 && !page.url.startsWith(REDIRECT_URI); step++) {
    const form = page.body.includes('name="password"')
      ? formWithAction(page.body, '/login')
      : formWithAction(page.body, '/confirm');
    const fields = form.action.includes('/login')
      ? { ...form.fields, username, password: `${username}-password` }
      : form.fields;
    page = await balanced.navigate(new URL(form.action, page.url), { form: fields });
  }
  if (!page.url.startsWith(REDIRECT_URI))
    throw new Error(`did not reach the redirect uri: ${page.status} ${page.url}\n${page.body.slice(0, 600)}`);
  const tokens = await oidc.authorizationCodeGrant(exchangeWith, new URL(page.url), {
    pkceCodeVerifier: verifier,
    expectedNonce: nonce,
    expectedState: state,
    idTokenExpected: true,
  });
  return { tokens, claims: tokens.claims()! };
}

async function adminApi(cluster: Cluster, instance: Instance, path: string, token: string, method = 'GET') {
  const response = await fetch(on(cluster, `${cluster.issuer}/admin/api/v1${path}`, instance), {
    method,
    headers: { authorization: `Bearer ${token}` },
  });
  return { status: response.status, body: (await response.json()) as JsonBody };
}

test('two processes started together on one fresh PostgreSQL database share one migration run and one set of keys', async (t) => {
  const cluster = await startCluster(t);
  const [jwksA, jwksB] = await Promise.all(
    [cluster.A, cluster.B].map(async (instance) => {
      const response = await fetch(`${instance.origin}/jwks`);
      t.is(response.status, 200, `/jwks on ${instance.name}`);
      return (await response.json()) as { keys: { kid: string; alg: string }[] };
    }),
  );
  t.deepEqual(jwksB, jwksA, 'both instances publish the same keys');
  t.deepEqual(jwksA.keys.map((key) => key.alg).sort(), ['ES256', 'RS256']);
  for (const instance of [cluster.A, cluster.B]) {
    t.is((await fetch(`${instance.origin}/readyz`)).status, 200, `/readyz on ${instance.name}`);
  }

  const sequelize: Sequelize = await openDatabase({ url: cluster.databaseUrl });
  t.teardown(() => sequelize.close());
  const names = (
    await sequelize.query<{ name: string }>('SELECT name FROM gatehouse_migrations ORDER BY name', {
      type: QueryTypes.SELECT,
    })
  ).map((row) => row.name);
  const expected = readdirSync(MIGRATIONS)
    .filter((file) => /^\d{4}-.*\.ts$/.test(file))
    .map((file) => file.replace(/\.ts$/, ''))
    .sort();
  t.true(expected.length >= 4);
  t.deepEqual(names, expected, 'every migration listed exactly once');
  const secrets = await sequelize.query<{ name: string }>('SELECT name FROM gatehouse_secrets ORDER BY name', {
    type: QueryTypes.SELECT,
  });
  // One of each, whichever instance generated it: the DPoP nonce secret and the sign-in name key too.
  t.deepEqual(
    secrets.map((row) => row.name),
    ['cookie-keys', 'dpop-nonce-secret', 'jwks', 'login-name-key'],
  );
});

test('one relying party and one browser alternating between two instances: login, tokens, revocation and expiry', async (t) => {
  const IDLE_TIMEOUT = 3;
  const cluster = await startCluster(t, { IDLE_TIMEOUT: String(IDLE_TIMEOUT), SWEEP_FREQUENCY: '1' });
  const { A, B, receiver } = cluster;
  const webA = await relyingParty(cluster, A, 'web', 'web-secret');
  const webB = await relyingParty(cluster, B, 'web', 'web-secret');
  const jwks = createRemoteJWKSet(new URL(`${cluster.issuer}/jwks`));
  const verify = async (token: string) =>
    (await jwtVerify(token, jwks, { issuer: cluster.issuer, audience: 'web', typ: 'logout+jwt' })).payload;

  // Login: authorization on A, the login page from B posted to A, the consent page from A posted to B; code exchange on B.
  const balanced = new BalancedBrowser(cluster).startOn(A);
  const first = await signInAcross(balanced, webA, webB, 'alice');
  t.deepEqual(balanced.hops, [
    'A GET /auth',
    'B GET /interaction/:uid',
    'A POST /interaction/:uid/login',
    'B GET /auth/:uid',
    'A GET /interaction/:uid',
    'B POST /interaction/:uid/confirm',
    'A GET /auth/:uid',
  ]);
  t.is(first.claims.sub, 'alice');
  t.is(first.claims.iss, cluster.issuer);

  // Refresh on A, userinfo on B.
  const refreshed = await oidc.refreshTokenGrant(webA, first.tokens.refresh_token!);
  t.like(await oidc.fetchUserInfo(webB, refreshed.access_token, 'alice'), { sub: 'alice', email: 'alice@example.com' });

  // An admin token from B revokes the session on A; the session is gone on B too.
  const admin = await relyingParty(cluster, B, 'gatehouse-admin', 'admin-secret');
  const adminToken = (await oidc.clientCredentialsGrant(admin, { scope: 'gatehouse:admin' })).access_token;
  const listed = await adminApi(cluster, A, '/sessions?subject=alice', adminToken);
  t.is(listed.body.totalCount, 1, 'one session for the whole cross-instance login');
  const sessionId: string = listed.body.sessions[0].sessionId;
  const revoked = await adminApi(cluster, A, `/sessions/${sessionId}`, adminToken, 'DELETE');
  t.deepEqual(revoked.body, { sessions: [sessionId], grantsRevoked: 1, notificationsQueued: 1 });
  t.is((await adminApi(cluster, B, `/sessions/${sessionId}`, adminToken)).status, 404);
  t.is(
    (await t.throwsAsync<oidc.ResponseBodyError>(oidc.refreshTokenGrant(webB, refreshed.refresh_token!)))?.error,
    'invalid_grant',
  );
  t.true(balanced.hasSessionCookie(), 'the browser still holds its session cookie');
  const again = await balanced.startOn(B).navigate(
    oidc.buildAuthorizationUrl(webA, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    }),
  );
  t.true(again.body.includes('name="password"'), 'the next authorization shows the login page');
  const revocation = await verify((await receiver.waitFor(1))[0]);
  t.is(revocation.sub, 'alice');
  t.is(revocation.sid, first.claims.sid);

  // A fresh login, then no activity: one of the two sweepers ends the session after the idle timeout, once.
  const second = await signInAcross(balanced.startOn(B), webB, webA, 'alice');
  t.not(second.claims.sid, first.claims.sid);
  const lastActivity = Date.now();
  const [, expiry] = await receiver.waitFor(2, (IDLE_TIMEOUT + 5) * 1000);
  const waited = Date.now() - lastActivity;
  t.true(waited >= (IDLE_TIMEOUT - 1) * 1000, `ended by the sweeper after the idle timeout (${waited} ms)`);
  const expired = await verify(expiry);
  t.is(expired.sub, 'alice');
  t.is(expired.sid, second.claims.sid);
  await new Promise((resolve) => setTimeout(resolve, 1500)); // both sweepers run again at least once
  t.is(receiver.tokens.length, 2, 'the expired session was notified exactly once');

  const outbox = await adminApi(cluster, B, `/backchannel?clientId=web`, adminToken);
  t.is(outbox.body.notifications.length, 2);
  t.like(
    outbox.body.notifications.find((row: { sid: string }) => row.sid === second.claims.sid),
    { reason: 'session_expiration', status: 'delivered', attempts: 1 },
  );
  t.is((await adminApi(cluster, A, '/sessions?subject=alice', adminToken)).body.totalCount, 0);
  t.is(
    (await t.throwsAsync<oidc.ResponseBodyError>(oidc.refreshTokenGrant(webA, second.tokens.refresh_token!)))?.error,
    'invalid_grant',
  );
});
