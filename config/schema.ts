/**
 * Every Gatehouse option, declared once: type and bounds, default, meaning and environment variable(s). This table is
 * the validation schema; `defaults` (./defaults.ts), the environment mapping (./environment.ts: every option is
 * `GATEHOUSE_` + its path in upper snake case, `__` between levels) and docs/configuration.md (`npm run docs:config`)
 * are derived from it. Every value is validated once, at start-up; an invalid or unknown key is reported with its
 * exact path. Durations are in seconds unless the name says otherwise.
 */
import { z } from 'zod';
import { clientJwk } from './client-jwk.js';
import { group, option } from './option.js';

export const MINUTE = 60;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

const positiveInt = z.number().int().positive();
const nonEmpty = z.string().min(1);
const portNumber = z.number().int().min(0).max(65535);
const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' });
const seconds = (value: number, description: string) =>
  option(positiveInt.default(value), { description, unit: 'seconds' });

/** The password hashes Gatehouse can verify (server/provider/passwords.ts). */
const PASSWORD_HASH =
  /^\$(argon2id\$v=19\$m=\d+,t=\d+,p=\d+|scrypt\$ln=\d+,r=\d+,p=\d+)\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}$/;

/**
 * The costs a password hash may have, configured or stored: a hash beyond them is never tried (a hostile or corrupt
 * value in the configuration, the environment or the database must not cost a verification seconds of CPU or
 * gigabytes of memory). Generous against OWASP's recommendations (argon2id m = 19 MiB, t = 2; scrypt N = 2^17).
 */
export const PASSWORD_HASH_LIMITS = {
  argon2id: { maxMemoryKiB: 256 * 1024, maxPasses: 16, maxParallelism: 16 },
  scrypt: { maxLog2N: 20, maxR: 32, maxP: 16 },
  /** Bytes of salt and of hash. */
  maxSaltBytes: 64,
  maxHashBytes: 64,
} as const;

/** The costs a PHC string names, when they are within PASSWORD_HASH_LIMITS; else a message saying which is not. */
export function passwordHashCostProblem(phc: string): string | undefined {
  const { argon2id, scrypt } = PASSWORD_HASH_LIMITS;
  const argon = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(phc);
  if (argon) {
    const [memory, passes, parallelism] = argon.slice(1).map(Number);
    if (memory > argon2id.maxMemoryKiB) return `argon2id m must be at most ${argon2id.maxMemoryKiB} KiB`;
    if (passes < 1 || passes > argon2id.maxPasses) return `argon2id t must be 1 to ${argon2id.maxPasses}`;
    if (parallelism < 1 || parallelism > argon2id.maxParallelism)
      return `argon2id p must be 1 to ${argon2id.maxParallelism}`;
    if (memory < 8 * parallelism) return 'argon2id m must be at least 8 KiB per lane';
  }
  const scryptCost = /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$/.exec(phc);
  if (scryptCost) {
    const [log2N, r, p] = scryptCost.slice(1).map(Number);
    if (log2N < 1 || log2N > scrypt.maxLog2N) return `scrypt ln must be 1 to ${scrypt.maxLog2N}`;
    if (r < 1 || r > scrypt.maxR) return `scrypt r must be 1 to ${scrypt.maxR}`;
    if (p < 1 || p > scrypt.maxP) return `scrypt p must be 1 to ${scrypt.maxP}`;
  }
  const [salt, hash] = phc
    .split('$')
    .slice(-2)
    .map((part) => Buffer.from(part, 'base64').length);
  if (salt > PASSWORD_HASH_LIMITS.maxSaltBytes || hash > PASSWORD_HASH_LIMITS.maxHashBytes) {
    return `salt and hash must be at most ${PASSWORD_HASH_LIMITS.maxSaltBytes} bytes each`;
  }
  return undefined;
}

/** The device authorization grant's grant type (RFC 8628). */
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/** One user, as configured (config file `accounts[]`, env GATEHOUSE_ACCOUNTS / GATEHOUSE_USERS). */
export const accountSchema = z.strictObject({
  subject: option(nonEmpty.max(255), { description: 'Stable subject identifier (the `sub` claim).' }),
  username: option(nonEmpty.max(255).optional(), {
    description: 'What the user types on the login form (unique, case-insensitive).',
    defaultText: 'the subject',
  }),
  passwordHash: option(
    z
      .string()
      .regex(
        PASSWORD_HASH,
        'expected a PHC string $argon2id$v=19$m=…,t=…,p=…$salt$hash or $scrypt$ln=…,r=…,p=…$salt$hash (run: npm run hash-password)',
      )
      .superRefine((phc, ctx) => {
        const problem = PASSWORD_HASH.test(phc) ? passwordHashCostProblem(phc) : undefined;
        if (problem) ctx.addIssue({ code: 'custom', message: `${problem} (run: npm run hash-password)` });
      })
      .optional(),
    {
      description:
        "PHC string from `npm run hash-password -- 'secret'` (`$argon2id$…`; `$scrypt$…` hashes of earlier versions work too).",
      secret: true,
    },
  ),
  password: option(z.string().min(1).max(1024).optional(), {
    description:
      'A clear-text password, hashed at start with `passwordHashing` and never logged or stored as given; meant for ' +
      'GATEHOUSE_USERS and throwaway test configs. Without `password` or `passwordHash` the user can only sign in ' +
      'with the one-click buttons or `login.autoLogin` (development and testing modes).',
    secret: true,
  }),
  claims: option(z.record(z.string(), z.unknown()).default({}), {
    description: 'Claims released by scope: name, email, email_verified, given_name, family_name, ...',
  }),
  roles: option(z.array(nonEmpty.max(64)).default([]), { description: 'Gatehouse roles, e.g. `[admin]`.' }),
  demoPassword: option(z.string().optional(), {
    description: 'Shown on the home page when `pages.showDemoAccounts` is on.',
  }),
});

/** What oidc-provider accepts in a client id or secret: printable ASCII (its `noVSCHAR` check). */
const printableAscii = (what: string) =>
  nonEmpty.regex(
    /^[\x20-\x7e]+$/,
    `expected printable ASCII characters only: the provider refuses any other in a ${what}`,
  );

/** A client's URL: http(s), without a user name or password (they would be shown with the client). */
const clientUrl = httpUrl.refine(
  (value) => {
    const url = URL.parse(value);
    return url === null || (!url.username && !url.password); // an unparsable one is reported by httpUrl
  },
  { error: 'expected a URL without a user name or password' },
);

/** A URL the provider redirects a browser to: no fragment (RFC 6749 §3.1.2). */
const redirectUrl = clientUrl.refine((value) => URL.parse(value) === null || !value.includes('#'), {
  error: 'expected a URL without a fragment (#)',
});

/** One OAuth client, as configured (config file `clients[]`, env GATEHOUSE_CLIENTS, `gatehouse clients add`). */
export const clientSchema = z.strictObject({
  client_id: option(printableAscii('client id').max(255), { description: 'The client identifier.' }),
  client_secret: option(printableAscii('client secret').optional(), {
    description: 'Required unless `token_endpoint_auth_method` is `none` or `private_key_jwt`.',
    secret: true,
  }),
  jwks: option(z.strictObject({ keys: z.array(clientJwk).min(1).max(20) }).optional(), {
    description:
      'The public keys (`{ keys: [...] }`) that verify the client assertions of a `private_key_jwt` client; or `jwks_uri`.',
  }),
  jwks_uri: option(clientUrl.optional(), {
    description: 'Where the public keys of a `private_key_jwt` client are fetched from (instead of `jwks`).',
  }),
  client_name: option(nonEmpty.optional(), { description: 'Shown on the consent and logout pages.' }),
  redirect_uris: option(z.array(redirectUrl).default([]), {
    description: 'Allowed redirect URIs (at least one for authorization_code).',
  }),
  post_logout_redirect_uris: option(z.array(redirectUrl).default([]), {
    description: 'Allowed `post_logout_redirect_uri` values.',
  }),
  grant_types: option(
    z
      .array(z.enum(['authorization_code', 'refresh_token', 'client_credentials', DEVICE_CODE_GRANT]))
      .default(['authorization_code']),
    {
      description: `Grants the client may use; \`${DEVICE_CODE_GRANT}\` needs \`deviceFlow.enabled\`.`,
    },
  ),
  response_types: option(z.array(z.enum(['code'])).optional(), { description: 'Response types (only `code`).' }),
  token_endpoint_auth_method: option(
    z.enum(['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'none']).optional(),
    {
      description: 'How the client authenticates at the token endpoint; `none` makes a public client (PKCE required).',
    },
  ),
  scope: option(nonEmpty.optional(), {
    description:
      "Space-separated OpenID Connect scopes the client may ask for. API scopes are not limited by it: an API's " +
      '`allowedClients` says which clients may get its tokens.',
  }),
  backchannel_logout_uri: option(clientUrl.optional(), { description: 'Where back-channel logout tokens are POSTed.' }),
  backchannel_logout_session_required: option(z.boolean().optional(), { description: 'Logout tokens carry `sid`.' }),
  id_token_signed_response_alg: option(z.enum(['RS256', 'ES256']).optional(), {
    description: 'ID token signing algorithm.',
  }),
  application_type: option(z.enum(['web', 'native']).optional(), { description: 'OAuth application type.' }),
  require_pushed_authorization_requests: option(z.boolean().optional(), {
    description:
      'Refuse its authorization requests unless pushed first (RFC 9126; needs `pushedAuthorizationRequests.enabled`).',
  }),
  dpop_bound_access_tokens: option(z.boolean().optional(), {
    description:
      'Refuse its token requests without a DPoP proof, so all its tokens are DPoP-bound (RFC 9449; needs `dpop.enabled`).',
  }),
  skipConsent: option(z.boolean().optional(), {
    description: 'Skip the consent page for this client (first-party apps).',
  }),
  coordinateLifetimeWithUserSession: option(z.boolean().optional(), {
    description: 'Override `serverSideSessions.coordinateClientLifetimesWithUserSession` for this client.',
  }),
});

/** An OAuth scope token (RFC 6749 §3.3): printable ASCII without spaces, double quotes or backslashes. */
const scopeToken = z
  .string()
  .regex(
    /^[\x21\x23-\x5B\x5D-\x7E]{1,128}$/,
    'expected a scope: 1 to 128 printable ASCII characters without spaces, quotes or backslashes',
  );

/** RFC 8707: an absolute URI without a fragment. */
const resourceIndicator = z
  .string()
  .max(255)
  .refine((value) => URL.canParse(value) && !value.includes('#'), {
    error: 'expected an absolute URI without a fragment (e.g. https://api.example.com/orders)',
  });

/** One API (resource server), as configured (config file `apis[]`, env GATEHOUSE_APIS). See docs/apis-and-devices.md. */
export const apiSchema = z.strictObject({
  identifier: option(resourceIndicator, {
    description: 'The resource indicator clients send (`resource=`) and the `aud` of its tokens: an absolute URI.',
  }),
  name: option(z.string().min(1).max(255).optional(), {
    description: 'Shown on the consent page and in the admin views.',
    defaultText: 'the identifier',
  }),
  scopes: option(
    z
      .array(
        z.strictObject({
          name: scopeToken,
          /** What the consent page says the client may do; default: the scope's name. */
          description: z.string().min(1).max(255).optional(),
        }),
      )
      .min(1),
    {
      description:
        'The scopes this API understands, each `{ name, description }` (the description is shown on the consent page). ' +
        'Unique across APIs: a request for any of them, with or without `resource=`, is a request for this API.',
    },
  ),
  tokenFormat: option(z.enum(['jwt', 'opaque']).default('jwt'), {
    description:
      '`jwt`: an RFC 9068 JWT signed with the published keys, verified by the API from the JWKS; it cannot be revoked, so ' +
      'its lifetime bounds it. `opaque`: a reference token the API introspects, revoked with its grant. JWT is the ' +
      'default, as in Duende IdentityServer and Keycloak.',
  }),
  accessTokenTtl: option(positiveInt.optional(), {
    description: "Lifetime of this API's access tokens.",
    defaultText: '`ttl.accessToken` (`ttl.clientCredentials` for client credentials)',
    unit: 'seconds',
  }),
  signingAlg: option(z.enum(['RS256', 'ES256']).default('RS256'), {
    description: "The algorithm that signs its JWT access tokens (one of the published keys').",
  }),
  allowedClients: option(z.array(nonEmpty.max(255)).optional(), {
    description: "Only these clients may get tokens for it (a client's own `scope` does not limit API scopes).",
    defaultText: 'any client',
  }),
  introspectionClientId: option(nonEmpty.max(255).optional(), {
    description:
      'The confidential client this API authenticates as at the introspection endpoint: it may introspect tokens whose ' +
      'audience is this API (and its own), nothing else.',
  }),
});

const sessionStoreOption = z.custom<unknown>(
  (value) =>
    value === undefined ||
    typeof value === 'string' ||
    typeof value === 'function' ||
    (typeof value === 'object' && value !== null),
  { error: 'expected a module path, a class, a factory or a store instance' },
);

const jwk = z.record(z.string(), z.unknown());

export const configSchema = z.strictObject({
  mode: option(z.enum(['production', 'development', 'testing']).default('production'), {
    description:
      'What this instance is for: `production` (no conveniences), `development` (the demo config) or `testing`. ' +
      'Development and testing show one-click sign-in buttons and allow `login.autoLogin`.',
  }),
  preset: option(z.enum(['testing']).optional(), {
    description:
      'A bundle of defaults applied under the configuration (explicit values still win). `testing`: in-memory SQLite, ' +
      '`skipConsent` for configured clients, a fast password hash (argon2id m=1024,t=1, or scrypt log2N 10), sign-in ' +
      'lockouts of seconds (`login.lockout` 1, `maxLockout` 5), loopback back-channel logout allowed, server-side ' +
      'sessions on, mode testing.',
  }),
  issuer: option(httpUrl.optional(), {
    description: 'Public URL of the provider; every token carries it as `iss`.',
    defaultText: 'http://localhost:<port>',
  }),
  port: option(portNumber.default(3000), {
    description: 'TCP port to listen on (0: any free port).',
    aliases: ['PORT'],
  }),
  host: option(z.string().optional(), { description: 'Interface to bind.', defaultText: 'all interfaces' }),
  proxy: option(z.boolean().default(false), {
    description:
      'Trust `X-Forwarded-*` headers. Set it behind a TLS-terminating proxy, or cookies lose `Secure` (an https issuer ' +
      'without it logs a warning at start).',
  }),
  proxyHops: option(z.number().int().min(1).max(10).default(1), {
    description:
      'With `proxy`: how many proxies in front of Gatehouse append to `X-Forwarded-For`. The client address (what ' +
      'sign-in and device-code limits count) is the entry this many places from the end, the one your outermost proxy ' +
      'wrote; entries further left are whatever the client sent and are never trusted.',
  }),
  database: group('The database every instance shares.', {
    url: option(nonEmpty.default('sqlite:./data/gatehouse.sqlite'), {
      description:
        '`sqlite:./file`, `sqlite::memory:`, `postgres://…`, `mysql://…` (the mysql2 driver) or `mariadb://…` (the mariadb ' +
        'driver). A relative SQLite path is relative to the current directory (where the command runs), not to the ' +
        "config file's folder. PostgreSQL through a pooler: " +
        'session mode, or transaction mode only where it keeps prepared statements (PgBouncer ≥ 1.21 with ' +
        '`max_prepared_statements`).',
      aliases: ['GATEHOUSE_DATABASE_URL'],
      secret: true,
    }),
    timeoutMs: option(positiveInt.max(600_000).default(2500), {
      description:
        'The longest wait for the database: connecting, waiting for a pooled connection, each statement (PostgreSQL ' +
        '`connectionTimeoutMillis`, `statement_timeout`, `query_timeout`; MariaDB `connectTimeout`, `queryTimeout`, ' +
        "`socketTimeout`; MySQL `connectTimeout` and a per-query timeout; SQLite's lock wait and write queue). A silent " +
        'database gives 503 + Retry-After after about this long (docs/operations.md). Migrations run without it.',
      unit: 'ms',
    }),
    sqliteBusyTimeoutMs: option(positiveInt.optional(), {
      description:
        "SQLite: how long one attempt waits on another process's write lock (SQLITE_BUSY is retried, five attempts in all).",
      unit: 'ms',
      defaultText: 'derived from `timeoutMs`: the five attempts and their backoff fit in it (407 ms)',
    }),
    readyTimeoutMs: option(positiveInt.max(60_000).default(1000), {
      description:
        '`/readyz` answers 503 when the database has not answered within this (its own bound, below `timeoutMs`).',
      unit: 'ms',
    }),
    poolMax: option(positiveInt.default(10), { description: 'PostgreSQL / MariaDB / MySQL connection pool size.' }),
  }),
  shutdown: group('Stopping: the drain on SIGTERM/SIGINT (docs/operations.md).', {
    timeout: option(z.number().positive().max(3600).default(10), {
      description:
        'How long requests in flight and background work may take to finish after the first signal; whatever is left ' +
        "then is cut (exit code 1). Fits Kubernetes' default grace period of 30 s.",
      unit: 'seconds',
    }),
  }),
  logging: group('What the server logs.', {
    level: option(z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'), {
      description: 'pino level; one line per request (no query strings, tokens or passwords).',
      aliases: ['GATEHOUSE_LOG_LEVEL'],
    }),
    format: option(z.enum(['auto', 'json', 'pretty']).default('auto'), {
      description:
        '`json`: JSON lines (for log collectors); `pretty`: readable lines and a start-up banner with the URLs, users ' +
        'and clients; `auto`: pretty when standard output is a terminal, JSON when it is piped or redirected.',
      aliases: ['GATEHOUSE_LOG_FORMAT'],
    }),
  }),
  keys: group('Signing and cookie keys.', {
    jwks: option(z.strictObject({ keys: z.array(jwk).min(1) }).optional(), {
      description:
        'Your own private JWKS (`{ keys: [...] }`); otherwise RS256 + ES256 keys are generated once and kept in the database.',
      defaultText: 'generated',
      secret: true,
    }),
    cookieKeys: option(z.array(z.string().min(16, 'expected at least 16 characters')).min(1).optional(), {
      description:
        'Your own cookie-signing keys (≥ 16 characters each); otherwise generated once and kept in the database.',
      defaultText: 'generated',
      secret: true,
    }),
    activationDelay: option(z.number().positive().default(HOUR), {
      description:
        '`gatehouse keys rotate`: a new key is published this long before it signs. Make it longer than your relying ' +
        'parties cache the JWKS.',
      unit: 'seconds',
    }),
    refreshMs: option(positiveInt.max(3_600_000).default(10_000), {
      description: 'How often a running server reads the stored signing keys: a rotation needs no restart.',
      unit: 'ms',
    }),
  }),
  ttl: group('Token and artefact lifetimes.', {
    accessToken: seconds(HOUR, 'Access tokens.'),
    authorizationCode: seconds(MINUTE, 'Authorization codes.'),
    clientCredentials: seconds(10 * MINUTE, 'Client-credentials access tokens.'),
    idToken: seconds(HOUR, 'ID tokens.'),
    interaction: seconds(HOUR, 'How long a login page stays valid.'),
    grant: seconds(14 * DAY, 'Remembered consent.'),
    refreshToken: seconds(14 * DAY, 'Refresh tokens.'),
    deviceCode: option(positiveInt.max(HOUR).default(10 * MINUTE), {
      description: 'How long a device-flow user code (and its device code) can be entered and polled for.',
      unit: 'seconds',
    }),
  }),
  idToken: group('What ID tokens carry (docs/claims.md).', {
    scopeClaims: option(z.boolean().default(false), {
      description:
        "Also put the granted scopes' claims (profile: name, ...; email: email, email_verified; ...) into ID tokens, as " +
        'Keycloak does. Off: an ID token issued with an access token carries `sub`, `sid` and the protocol claims, and ' +
        "the scope claims come from userinfo (OpenID Connect Core 5.4; oidc-provider's `conformIdTokenClaims`). For " +
        'every client: the provider has no per-client switch.',
    }),
  }),
  passwordHashing: group(
    'How new password hashes are made (`hash-password`, the CLI, the admin API, clear-text passwords in the configuration, ' +
      're-hashing at sign-in, the unknown-user check). A stored hash of another algorithm or cost is replaced at the ' +
      "user's next successful sign-in (docs/sign-in-protection.md).",
    {
      algorithm: option(z.enum(['argon2id', 'scrypt']).default('argon2id'), {
        description:
          "`argon2id` (OWASP's first choice; node:crypto, Node.js ≥ 24.16) or `scrypt` (OWASP's alternative).",
      }),
      memory: option(z.number().int().min(8).max(PASSWORD_HASH_LIMITS.argon2id.maxMemoryKiB).default(19456), {
        description:
          "argon2id memory in KiB: 19456 is OWASP's m = 19 MiB (its CPU per hash: docs/sign-in-protection.md).",
      }),
      passes: option(z.number().int().min(1).max(PASSWORD_HASH_LIMITS.argon2id.maxPasses).default(2), {
        description: 'argon2id passes over that memory (t).',
      }),
      parallelism: option(z.number().int().min(1).max(PASSWORD_HASH_LIMITS.argon2id.maxParallelism).default(1), {
        description: 'argon2id lanes (p); `memory` must be at least 8 KiB per lane.',
      }),
      log2N: option(z.number().int().min(1).max(PASSWORD_HASH_LIMITS.scrypt.maxLog2N).default(17), {
        description: "scrypt cost as log2(N): 17 is OWASP's minimum, 128 MiB of memory per hash with r = 8.",
      }),
      r: option(positiveInt.max(PASSWORD_HASH_LIMITS.scrypt.maxR).default(8), { description: 'scrypt block size.' }),
      p: option(positiveInt.max(PASSWORD_HASH_LIMITS.scrypt.maxP).default(1), { description: 'scrypt parallelism.' }),
    },
  ),
  backchannelLogout: group('Back-channel logout delivery (a durable outbox with retries).', {
    allowPrivateNetworks: option(z.boolean().default(false), {
      description:
        'Let back-channel logout (and other outbound) requests reach loopback and private addresses (relying parties on ' +
        'localhost). Keep it off for a public IdP: it must not be made to call into its own network (SSRF).',
    }),
    maxAttempts: option(positiveInt.max(100).default(8), {
      description: 'Delivery attempts per notification before it is marked failed.',
    }),
    retryBaseDelay: seconds(5, 'Wait before the first retry; doubles with every attempt.'),
    retryMaxDelay: seconds(HOUR, 'Longest wait between two attempts.'),
    pollInterval: seconds(10, 'How often the delivery worker looks for due notifications when idle.'),
    batchSize: option(positiveInt.max(1000).default(50), { description: 'Notifications claimed per delivery round.' }),
  }),
  metrics: group('Prometheus metrics at `/metrics`.', {
    enabled: option(z.boolean().default(false), { description: 'Serve Prometheus metrics.' }),
    port: option(z.union([z.literal(false), portNumber]).optional(), {
      description:
        'Serve them on their own port (no auth; bind it to a private interface). `0` or `false` switches this listener ' +
        'off (then only `metrics.token` serves them).',
    }),
    host: option(nonEmpty.default('127.0.0.1'), { description: 'The interface of the metrics port.' }),
    token: option(z.string().min(16, 'expected at least 16 characters').optional(), {
      description:
        'Serve them on the main port behind `Authorization: Bearer <token>`. With `enabled`, set a port or a token.',
      secret: true,
    }),
  }),
  login: group('Sign-in.', {
    autoLogin: option(nonEmpty.max(255).optional(), {
      description:
        'Sign this subject in without showing the login page (headless tests). Development and testing modes only.',
      aliases: ['GATEHOUSE_AUTO_LOGIN'],
    }),
    maxFailuresPerDevice: option(positiveInt.max(100).default(10), {
      description:
        'Sign-in protection (docs/sign-in-protection.md). A browser that signed in with a name gets a device cookie for it; ' +
        'its later attempts for that name are trusted and count only here: consecutive failures (since its last sign-in) ' +
        'before the device is invalidated and becomes an untrusted client.',
    }),
    maxFailuresPerAccount: option(positiveInt.max(100).default(10), {
      description:
        'Untrusted failures for one name, from any address, within `maxLockout` before untrusted clients are locked out ' +
        'of it (trusted devices never are): the bound on guessing one password through many addresses.',
    }),
    maxFailuresPerAccountAndIp: option(positiveInt.max(100).default(5), {
      description:
        'Untrusted failures for one name from one address within `failureWindow` before that address is locked out of it.',
    }),
    maxFailuresPerIp: option(positiveInt.default(100), {
      description:
        'Untrusted failures from one address (IPv6: one /64) across all names within `failureWindow` before it is locked.',
    }),
    failureWindow: seconds(
      15 * MINUTE,
      'The window over which failures per address and per name at an address are counted.',
    ),
    lockout: seconds(
      5 * MINUTE,
      'First lockout (HTTP 429 with Retry-After); a further lockout of the same key doubles it, up to `maxLockout`. The ' +
        'doubling is forgotten after `maxLockout` without a lock; every lock ends by itself.',
    ),
    maxLockout: seconds(DAY, 'The longest lockout.'),
    deviceCookieLifetime: option(positiveInt.max(400 * DAY).default(365 * DAY), {
      description:
        'How long a device cookie (and with it the trust of that browser) lasts after its last sign-in (at most 400 days, as browsers cap it).',
      unit: 'seconds',
    }),
  }),
  deviceFlow: group(
    'The device authorization grant (RFC 8628) for devices without a browser (CLIs, TVs): the device shows a code, the ' +
      'user enters it at `<issuer>/device` and signs in there.',
    {
      enabled: option(z.boolean().default(false), {
        description:
          'Serve the device grant and its pages. Off by default: it lets anyone who starts a flow send a sign-in link to ' +
          'someone else (device-code phishing), so it is turned on deliberately, for the clients that need it.',
      }),
      userCodeCharset: option(z.enum(['base-20', 'digits']).default('base-20'), {
        description: 'Characters of user codes: `base-20` (consonants, no look-alikes) or `digits`.',
      }),
      userCodeMask: option(
        z
          .string()
          .regex(/^[*\- ]{1,64}$/, 'expected only *, - and spaces')
          .refine((mask) => (mask.match(/\*/g)?.length ?? 0) >= 6, {
            error: 'expected at least 6 * (random characters)',
          })
          .default('****-****'),
        {
          description:
            'User code pattern: each `*` a random character; `-` and spaces for readability (8 of base-20 ≈ 34 bits).',
        },
      ),
      maxFailuresPerIp: option(positiveInt.default(10), {
        description:
          'Wrong user codes from one IP address within `login.failureWindow` before code entry from it is locked (for ' +
          '`login.lockout`, doubling up to `login.maxLockout`), counted in the database like sign-in failures.',
      }),
    },
  ),
  pushedAuthorizationRequests: group(
    'Pushed authorization requests (RFC 9126): the client POSTs its authorization request to `/request` and sends the browser with only a `request_uri`.',
    {
      enabled: option(z.boolean().default(true), {
        description:
          'Serve the PAR endpoint. On by default: it adds no capability, only a way to keep the request out of the browser and have it authenticated.',
      }),
      required: option(z.boolean().default(false), {
        description:
          'Refuse every authorization request that was not pushed. Off by default: it would break every client that does ' +
          'not push. Per client: `clients[].require_pushed_authorization_requests`.',
      }),
    },
  ),
  dpop: group(
    'DPoP (RFC 9449): access and refresh tokens bound to a key the client proves it holds on every use, so a stolen token alone is useless.',
    {
      enabled: option(z.boolean().default(true), {
        description:
          'Bind the tokens of clients that send a DPoP proof (or that register `dpop_bound_access_tokens`, which then ' +
          'must). On by default: nothing changes for clients that send none.',
      }),
      requireNonce: option(z.boolean().default(true), {
        description:
          'Every proof must carry a nonce from Gatehouse (`DPoP-Nonce`), so a proof made in advance by someone with brief ' +
          'access to the key expires within minutes; clients retry once with the nonce (RFC 9449 §8). The nonces derive ' +
          'from a secret kept in the database, shared by every instance.',
      }),
    },
  ),
  directory: group('Users and clients in the database.', {
    cacheMs: option(z.number().int().min(0).max(60_000).default(1000), {
      description:
        'How long a user or client read from the database is reused (changes by other processes show after this).',
      unit: 'ms',
    }),
  }),
  pages: group('The login, consent, account and admin pages.', {
    showDemoAccounts: option(z.boolean().default(false), {
      description: 'List the accounts and their `demoPassword` on the home page (demo only).',
    }),
    title: option(nonEmpty.default('Gatehouse'), { description: 'Product name shown on pages.' }),
  }),
  serverSideSessions: group(
    'Server-side sessions: login sessions kept in a store that can be listed, revoked and expired on the server.',
    {
      enabled: option(z.boolean().default(false), {
        description: 'Keep login sessions in the server-side session store.',
        aliases: ['GATEHOUSE_SERVER_SIDE_SESSIONS'],
      }),
      store: option(sessionStoreOption.optional(), {
        description:
          'A custom store: a module path (config file, environment) or a class / factory / instance (code). A relative ' +
          "path (`./my-store.js`) in a config file is relative to the file's folder; from the environment, to the current " +
          'directory.',
        defaultText: 'the built-in Sequelize store',
      }),
      storeOptions: option(z.record(z.string(), z.unknown()).optional(), {
        description:
          'Settings for that store (e.g. its connection URL), handed to it as `context.options` (`{}` when unset); never logged. ' +
          'How a store configured by module path gets settings of its own (docs/custom-stores.md).',
        secret: true,
      }),
      displayNameClaim: option(nonEmpty.optional(), {
        description: "Claim copied into the session's display name (PII, so unset by default).",
      }),
      idleTimeout: seconds(10 * HOUR, 'A session ends after this long without activity (sliding).'),
      absoluteLifetime: seconds(14 * DAY, 'Hard cap from sign-in, whatever the activity.'),
      renewalWriteInterval: option(z.number().int().min(0).default(60), {
        description: 'A request that only slides the expiry writes to the store at most once per interval.',
        unit: 'seconds',
      }),
      removeExpiredSessions: option(z.boolean().default(true), {
        description: 'Run the expiry sweeper (ends expired sessions on the server, with their notifications).',
      }),
      removeExpiredSessionsFrequency: seconds(10 * MINUTE, 'Time between sweeps.'),
      fuzzExpiredSessionRemovalStart: option(z.boolean().default(true), {
        description:
          'First sweep at a random point of the first interval, so instances started together do not collide.',
      }),
      removeExpiredSessionsBatchSize: option(positiveInt.max(10_000).default(100), {
        description: 'Sessions claimed per batch; a sweep repeats until none is left.',
      }),
      expiredSessionsTriggerBackchannelLogout: option(z.boolean().default(false), {
        description: 'On expiry, notify every client of the session, not only the coordinated ones.',
      }),
      coordinateClientLifetimesWithUserSession: option(z.boolean().default(false), {
        description:
          "Tie clients' tokens to the user's session: refresh, userinfo and introspection fail once it has ended, and their " +
          'use keeps it alive. Per client: `clients[].coordinateLifetimeWithUserSession`.',
      }),
      maxSessionsPerUser: option(positiveInt.optional(), {
        description: "End a user's oldest session when a sign-in would exceed this many.",
        defaultText: 'no limit',
      }),
    },
  ),
  accounts: option(z.array(accountSchema).default([]), {
    description: 'Users, seeded into the directory at every start (fields below).',
    aliases: ['GATEHOUSE_USERS'],
    key: 'subject',
  }),
  clients: option(z.array(clientSchema).default([]), {
    description: 'OAuth clients, seeded into the directory at every start (fields below).',
    key: 'client_id',
  }),
  apis: option(z.array(apiSchema).default([]), {
    description:
      'APIs (resource servers) that accept Gatehouse access tokens, asked for by their scopes or `resource=` (fields ' +
      'below). None by default: every access token is then an opaque one for the userinfo endpoint.',
    key: 'identifier',
  }),
});

/** What a config file or createServer() accepts (every key optional). */
export type GatehouseConfigInput = z.input<typeof configSchema>;
/** The validated configuration, every default applied. */
export type GatehouseConfig = z.output<typeof configSchema> & { issuer: string };
export type AccountConfig = z.output<typeof accountSchema>;
export type ClientConfig = z.output<typeof clientSchema>;
export type ApiConfig = z.output<typeof apiSchema>;
export type Mode = GatehouseConfig['mode'];
