/**
 * One use per DPoP proof and per client assertion, also when the copies arrive at once: of 20 concurrent requests
 * carrying one proof (same jti, htm, htu, iat) exactly one passes and the others get the provider's replay error, on
 * every database family; a fresh proof then works. Proofs and assertions are made by hand with jose, so each burst
 * sends the very same one. A provider whose adapter cannot insert atomically keeps oidc-provider's own check.
 */
import test, { type ExecutionContext } from 'ava';
import { createHash, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import Provider, { type Adapter, type AdapterPayload } from 'oidc-provider';
import { useAtomicReplayDetection } from '../server/provider/replay-detection.js';
import type { TestDialect } from './helpers/databases.js';
import { Browser, discover, REDIRECT_URI, signIn } from './helpers/relying-party.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const BURST = 20;
const DIALECTS: TestDialect[] = ['sqlite-file', 'postgres', 'mariadb'];
const JWT_SECRET = 'replay-jwt-secret-of-at-least-32-bytes';

const CLIENTS = [
  {
    client_id: 'replay-svc',
    client_secret: 'replay-svc-secret',
    grant_types: ['client_credentials' as const],
    dpop_bound_access_tokens: true,
  },
  {
    client_id: 'replay-jwt',
    client_secret: JWT_SECRET,
    token_endpoint_auth_method: 'client_secret_jwt' as const,
    grant_types: ['client_credentials' as const],
  },
  { client_id: 'replay-web', client_secret: 'replay-web-secret', redirect_uris: [REDIRECT_URI], skipConsent: true },
];

const BASIC = `Basic ${Buffer.from('replay-svc:replay-svc-secret').toString('base64')}`;
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

interface ProofClaims {
  htm: string;
  htu: string;
  nonce?: string;
  /** Binds the proof to an access token, for a resource request. */
  ath?: string;
}

/** A DPoP proof made by hand, with a new jti. */
async function dpopProof(keys: CryptoKeyPair, claims: ProofClaims): Promise<string> {
  return new SignJWT({ ...claims, jti: randomUUID() })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(keys.publicKey) })
    .setIssuedAt()
    .sign(keys.privateKey);
}

/** A client credentials request with these headers (client authentication, proof) and body parameters. */
function clientCredentials(issuer: string, headers: Record<string, string>, body: Record<string, string> = {}) {
  return fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { ...FORM, ...headers },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...body }),
  });
}

/** A DPoP nonce of the server (nonces are required by default), from a token request whose proof has none. */
async function dpopNonce(issuer: string, keys: CryptoKeyPair): Promise<string> {
  const proof = await dpopProof(keys, { htm: 'POST', htu: `${issuer}/token` });
  const response = await clientCredentials(issuer, { authorization: BASIC, dpop: proof });
  const nonce = response.headers.get('dpop-nonce');
  if (response.status !== 400 || !nonce) throw new Error(`expected a use_dpop_nonce answer, got ${response.status}`);
  return nonce;
}

/** Sends BURST copies of one request at once; resolves to each one's status and body. */
async function burst(send: () => Promise<Response>): Promise<{ status: number; body: string; challenge: string }[]> {
  const responses = await Promise.all(Array.from({ length: BURST }, send));
  return Promise.all(
    responses.map(async (response) => ({
      status: response.status,
      body: await response.text(),
      challenge: response.headers.get('www-authenticate') ?? '',
    })),
  );
}

/**
 * How many errors with this detail the provider reports from now on (its `grant.error` / `userinfo.error` events):
 * the responses say only `invalid_grant`, `invalid_token` or `invalid_client`, the detail says why.
 */
function providerErrors(t: ExecutionContext, gatehouse: TestServer, event: string, detail: string): () => number {
  let seen = 0;
  const listener = (_ctx: unknown, error: { error_detail?: string }) => {
    if (error.error_detail === detail) seen++;
  };
  const { provider } = gatehouse.server;
  provider.on(event as 'grant.error', listener);
  t.teardown(() => provider.off(event as 'grant.error', listener));
  return () => seen;
}

for (const dialect of DIALECTS) {
  let gatehouse: TestServer;
  test.before(async () => {
    gatehouse = await startTestServer({ dialect, config: { clients: CLIENTS } });
  });
  test.after.always(async () => {
    await gatehouse?.close();
  });

  test(`${dialect}: of ${BURST} concurrent token requests with one DPoP proof exactly one gets a token`, async (t) => {
    const { issuer } = gatehouse;
    const keys = (await generateKeyPair('ES256')) as CryptoKeyPair;
    const nonce = await dpopNonce(issuer, keys);
    const proof = await dpopProof(keys, { htm: 'POST', htu: `${issuer}/token`, nonce });
    const replays = providerErrors(t, gatehouse, 'grant.error', 'DPoP proof JWT Replay detected');

    const answers = await burst(() => clientCredentials(issuer, { authorization: BASIC, dpop: proof }));
    const passed = answers.filter((answer) => answer.status === 200);
    t.is(passed.length, 1, JSON.stringify(answers.map((answer) => answer.status)));
    t.is(JSON.parse(passed[0].body).token_type, 'DPoP');
    for (const answer of answers.filter((item) => item.status !== 200)) {
      t.is(answer.status, 400);
      t.is(JSON.parse(answer.body).error, 'invalid_grant');
    }
    t.is(replays(), BURST - 1, 'every other copy was refused as a replay');

    const another = await dpopProof(keys, { htm: 'POST', htu: `${issuer}/token`, nonce });
    const fresh = await clientCredentials(issuer, { authorization: BASIC, dpop: another });
    t.is(fresh.status, 200, 'a new proof of the same key works');
  });

  test(`${dialect}: of ${BURST} concurrent userinfo requests with one DPoP proof exactly one is served`, async (t) => {
    const { issuer } = gatehouse;
    const config = await discover(issuer, 'replay-web', 'replay-web-secret');
    const keys = (await generateKeyPair('ES256')) as CryptoKeyPair;
    const dpop = oidc.getDPoPHandle(config, keys);
    const { tokens } = await signIn(new Browser(), config, { username: 'alice', dpop });
    t.is(tokens.token_type, 'dpop');
    const userinfo = config.serverMetadata().userinfo_endpoint!;
    const ath = createHash('sha256').update(tokens.access_token).digest('base64url');
    const nonce = await dpopNonce(issuer, keys);
    const authorization = `DPoP ${tokens.access_token}`;
    const ask = (proof: string) => fetch(userinfo, { headers: { authorization, dpop: proof } });
    const proof = await dpopProof(keys, { htm: 'GET', htu: userinfo, nonce, ath });
    const replays = providerErrors(t, gatehouse, 'userinfo.error', 'DPoP proof JWT Replay detected');

    const answers = await burst(() => ask(proof));
    const passed = answers.filter((answer) => answer.status === 200);
    t.is(passed.length, 1, JSON.stringify(answers.map((answer) => answer.status)));
    t.is(JSON.parse(passed[0].body).sub, 'alice');
    for (const answer of answers.filter((item) => item.status !== 200)) {
      t.is(answer.status, 401);
      t.regex(answer.challenge, /^DPoP .*error="invalid_token"/);
    }
    t.is(replays(), BURST - 1, 'every other copy was refused as a replay');

    const fresh = await ask(await dpopProof(keys, { htm: 'GET', htu: userinfo, nonce, ath }));
    t.is(fresh.status, 200, 'a new proof of the same key works');
  });

  test(`${dialect}: of ${BURST} concurrent token requests carrying one client assertion one passes`, async (t) => {
    const { issuer } = gatehouse;
    const assertion = () =>
      new SignJWT({ jti: randomUUID() })
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer('replay-jwt')
        .setSubject('replay-jwt')
        .setAudience(`${issuer}/token`)
        .setIssuedAt()
        .setExpirationTime('1m')
        .sign(new TextEncoder().encode(JWT_SECRET));
    const authenticate = (jwt: string) => ({
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: jwt,
    });
    const once = await assertion();
    const replays = providerErrors(t, gatehouse, 'grant.error', 'client assertion tokens must only be used once');

    const answers = await burst(() => clientCredentials(issuer, {}, authenticate(once)));
    const passed = answers.filter((answer) => answer.status === 200);
    t.is(passed.length, 1, JSON.stringify(answers.map((answer) => answer.status)));
    t.truthy(JSON.parse(passed[0].body).access_token);
    for (const answer of answers.filter((item) => item.status !== 200)) {
      t.is(answer.status, 401);
      t.is(JSON.parse(answer.body).error, 'invalid_client');
    }
    t.is(replays(), BURST - 1, 'every other copy was refused as a replay');

    const fresh = await clientCredentials(issuer, {}, authenticate(await assertion()));
    t.is(fresh.status, 200, 'a new assertion works');
  });
}

/** A custom adapter (no insertIfAbsent) in memory, recording the calls the provider makes. */
class MemoryAdapter implements Adapter {
  static readonly rows = new Map<string, AdapterPayload>();
  static readonly calls: string[] = [];
  constructor(readonly model: string) {}
  async upsert(id: string, payload: AdapterPayload): Promise<void> {
    MemoryAdapter.calls.push(`${this.model}.upsert`);
    MemoryAdapter.rows.set(`${this.model}:${id}`, payload);
  }
  async find(id: string): Promise<AdapterPayload | undefined> {
    MemoryAdapter.calls.push(`${this.model}.find`);
    return MemoryAdapter.rows.get(`${this.model}:${id}`);
  }
  async findByUid(): Promise<undefined> {}
  async findByUserCode(): Promise<undefined> {}
  async consume(): Promise<void> {}
  async destroy(): Promise<void> {}
  async revokeByGrantId(): Promise<void> {}
}

test('an adapter without insertIfAbsent keeps the provider’s own replay check (find, then save)', async (t) => {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const provider = new Provider('http://localhost:3999', {
    adapter: MemoryAdapter,
    jwks: { keys: [await exportJWK(privateKey)] } as never,
    features: { devInteractions: { enabled: false } },
  });
  useAtomicReplayDetection(provider);
  const exp = Math.floor(Date.now() / 1000) + 60;
  t.true(await provider.ReplayDetection.unique('client', 'jti-1', exp));
  t.false(await provider.ReplayDetection.unique('client', 'jti-1', exp), 'the same jti again is a replay');
  t.true(await provider.ReplayDetection.unique('client', 'jti-2', exp));
  const [find, upsert] = ['ReplayDetection.find', 'ReplayDetection.upsert'];
  t.deepEqual(MemoryAdapter.calls, [find, upsert, find, find, upsert]);
});
