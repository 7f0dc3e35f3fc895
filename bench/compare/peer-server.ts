/**
 * An oidc-provider peer: plain oidc-provider 9 (the installed package), configured like Gatehouse (same clients, one
 * RS256 key, cookie keys, introspection/revocation/userinfo/client credentials on, refresh tokens rotated on every use,
 * the same lifetimes) and a minimal interaction handler of its own: a login form that checks the bench users' scrypt
 * hashes, and a consent form whose Grant is remembered per account and client (the same rule as Gatehouse's
 * `loadExistingGrant`, kept in a Map in every peer: the in-memory adapter cannot be queried, and the examples' adapters
 * offer no such look-up either). Its storage (settings.storage):
 *   - `memory`: oidc-provider's own in-memory adapter (the reference: nothing durable, nothing shared);
 *   - `redis`: the bench's Redis adapter (peers/redis-adapter.ts) on the Redis server the bench started;
 *   - `sequelize`: the bench's Sequelize adapter (peers/sequelize-adapter.ts) on SQLite (a file: WAL, synchronous
 *     NORMAL and the busy timeout, as Gatehouse opens it) or PostgreSQL (a pool of 10, Gatehouse's default).
 *
 * Run as a child process: BENCH_PEER_SETTINGS=<json file> (bench/compare/fixtures.ts PeerSettings). Prints
 * `{"ready":true,"port":N}` once it listens; stops on SIGTERM/SIGINT.
 */
import { scrypt, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import Provider, {
  errors,
  type Adapter,
  type Configuration,
  type InteractionResults,
  type KoaContextWithOIDC,
} from 'oidc-provider';
import { BENCH_API, type PeerSettings } from './fixtures.js';

const settings = JSON.parse(readFileSync(process.env.BENCH_PEER_SETTINGS!, 'utf8')) as PeerSettings;
const closers: (() => Promise<unknown>)[] = [];

/** The adapter class of the configured storage (undefined: oidc-provider's in-memory one). */
async function storageAdapter(): Promise<(new (name: string) => Adapter) | undefined> {
  const storage = settings.storage;
  if (storage.adapter === 'redis') {
    const { Redis } = await import('ioredis');
    const { redisAdapter } = await import('./peers/redis-adapter.js');
    const client = new Redis(storage.url, { lazyConnect: false });
    closers.push(() => client.quit());
    return redisAdapter(client);
  }
  if (storage.adapter === 'sequelize') {
    const { Sequelize } = await import('sequelize');
    const { sequelizeAdapter } = await import('./peers/sequelize-adapter.js');
    const url = storage.url;
    const sequelize = url.startsWith('sqlite:')
      ? new Sequelize({ dialect: 'sqlite', storage: url.slice('sqlite:'.length), logging: false })
      : new Sequelize(url, { logging: false, pool: { max: 10 } });
    if (url.startsWith('sqlite:')) {
      await sequelize.query('PRAGMA journal_mode = WAL');
      await sequelize.query('PRAGMA synchronous = NORMAL');
      await sequelize.query('PRAGMA busy_timeout = 5000');
    }
    closers.push(() => sequelize.close());
    return sequelizeAdapter(sequelize);
  }
  return undefined;
}
const users = new Map(settings.users.map((user) => [user.username, user]));
const bySubject = new Map(settings.users.map((user) => [user.subject, user]));
/** Remembered consent: `${accountId} ${clientId}` → grant id. */
const grants = new Map<string, string>();

const PHC = /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

function verifyPassword(password: string, phc: string): Promise<boolean> {
  const match = PHC.exec(phc);
  if (!match) return Promise.resolve(false);
  const [N, r, p] = [2 ** Number(match[1]), Number(match[2]), Number(match[3])];
  const salt = Buffer.from(match[4], 'base64');
  const expected = Buffer.from(match[5], 'base64');
  return new Promise((resolve, reject) =>
    scrypt(
      password.normalize('NFKC'),
      salt,
      expected.length,
      { N, r, p, maxmem: 256 * N * r * p + 2 ** 20 },
      (error, key) => (error ? reject(error) : resolve(timingSafeEqual(key, expected))),
    ),
  );
}

const adapter = await storageAdapter();

const configuration: Configuration = {
  ...(adapter ? { adapter } : {}),
  clients: settings.clients as Configuration['clients'],
  jwks: { keys: [settings.jwk] } as Configuration['jwks'],
  cookies: {
    keys: settings.cookieKeys,
    long: { signed: true, sameSite: 'lax', httpOnly: true },
    short: { signed: true, sameSite: 'lax', httpOnly: true },
  },
  async findAccount(_ctx, subject) {
    const user = bySubject.get(subject);
    if (!user) return undefined;
    return { accountId: subject, claims: async () => ({ ...user.claims, sub: subject }) };
  },
  claims: {
    openid: ['sub'],
    profile: [
      'name',
      'given_name',
      'family_name',
      'middle_name',
      'nickname',
      'preferred_username',
      'profile',
      'picture',
      'website',
      'gender',
      'birthdate',
      'zoneinfo',
      'locale',
      'updated_at',
    ],
    email: ['email', 'email_verified'],
  },
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  responseTypes: ['code', 'none'],
  rotateRefreshToken: true,
  async loadExistingGrant(ctx: KoaContextWithOIDC) {
    const clientId = ctx.oidc.client!.clientId;
    const accountId = ctx.oidc.session!.accountId;
    const grantId =
      (ctx.oidc.result?.consent as { grantId?: string } | undefined)?.grantId ??
      ctx.oidc.session!.grantIdFor(clientId) ??
      (accountId ? grants.get(`${accountId} ${clientId}`) : undefined);
    return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    introspection: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    clientCredentials: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    // The bench API: client-credentials tokens for it are RS256 JWTs, as Gatehouse's apis[] entry makes them.
    resourceIndicators: {
      enabled: true,
      async getResourceServerInfo(_ctx, resource) {
        if (resource !== BENCH_API.identifier) throw new errors.InvalidTarget();
        return {
          scope: BENCH_API.scope,
          audience: BENCH_API.identifier,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 60,
    ClientCredentials: 600,
    IdToken: 3600,
    Interaction: 3600,
    Grant: 1_209_600,
    RefreshToken: 1_209_600,
    Session: 36_000,
  },
};

const provider = new Provider(settings.issuer, configuration);
const providerCallback = provider.callback();

function page(res: ServerResponse, html: string): void {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html><body>${html}</body></html>`);
}

function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > 16_384) req.destroy(new Error('form too large'));
    });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

const loginForm = (uid: string, error = '') =>
  `${error ? `<p>${error}</p>` : ''}<form method="post" action="/interaction/${uid}/login">` +
  '<input type="text" name="username" value=""><input type="password" name="password"><button type="submit">Sign in</button></form>';
const consentForm = (uid: string) =>
  `<form method="post" action="/interaction/${uid}/confirm"><button type="submit">Continue</button></form>`;

async function interaction(req: IncomingMessage, res: ServerResponse, path: string[]): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== path[0]) throw new Error('interaction mismatch');
  const action = path[1];
  if (req.method === 'GET' && !action) {
    return page(res, details.prompt.name === 'login' ? loginForm(details.uid) : consentForm(details.uid));
  }
  if (req.method === 'POST' && action === 'login' && details.prompt.name === 'login') {
    const form = await readForm(req);
    const user = users.get(form.get('username') ?? '');
    if (!user || !(await verifyPassword(form.get('password') ?? '', user.passwordHash)))
      return page(res, loginForm(details.uid, 'Invalid username or password.'));
    const result: InteractionResults = { login: { accountId: user.subject } };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }
  if (req.method === 'POST' && action === 'confirm' && details.prompt.name === 'consent') {
    await readForm(req);
    const accountId = details.session!.accountId;
    const clientId = String(details.params.client_id);
    let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
    grant ??= new provider.Grant({ accountId, clientId });
    const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    const grantId = await grant.save();
    grants.set(`${accountId} ${clientId}`, grantId);
    const result: InteractionResults = { consent: details.grantId ? {} : { grantId } };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
  }
  res.writeHead(400).end(`bad interaction request: ${req.method} ${action ?? ''} during prompt ${details.prompt.name}`);
}

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  if (url.startsWith('/interaction/')) {
    interaction(req, res, url.slice('/interaction/'.length).split('?')[0].split('/')).catch((error: Error) => {
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(error.message);
    });
    return;
  }
  void providerCallback(req, res);
});

server.listen(settings.port, '127.0.0.1', () => {
  const address = server.address() as { port: number };
  console.log(JSON.stringify({ ready: true, port: address.port }));
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    server.close(() => void Promise.allSettled(closers.map((close) => close())).then(() => process.exit(0)));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
