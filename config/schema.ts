/**
 * The configuration schema: what a config file (or createServer's options) may contain. Every value is validated
 * once, at start-up; an invalid or unknown key is reported with its exact path. Defaults come from ./defaults.ts.
 */
import { z } from 'zod';
import { defaults } from './defaults.js';

const positiveInt = z.number().int().positive();
const nonEmpty = z.string().min(1);
const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' });

/** One user, as configured (config file `accounts[]`, env GATEHOUSE_USERS). */
export const accountSchema = z.strictObject({
  /** Stable subject identifier (the `sub` claim). */
  subject: nonEmpty.max(255),
  /** What the user types on the login form; defaults to the subject. */
  username: nonEmpty.max(255).optional(),
  /** PHC string from `gatehouse hash-password` ($scrypt$...). */
  passwordHash: z.string().regex(/^\$scrypt\$/, 'expected a PHC string starting with $scrypt$ (run: npm run hash-password)').optional(),
  /**
   * A clear-text password, hashed at start with `passwordHashing` and never logged or stored as given. Meant for
   * GATEHOUSE_USERS and throwaway test configs; a config file should carry `passwordHash`. Without either, the user
   * can only sign in with the one-click buttons or `login.autoLogin` (development and testing modes).
   */
  password: z.string().min(1).max(1024).optional(),
  /** Claims released by scope: name, email, email_verified, given_name, family_name, ... */
  claims: z.record(z.string(), z.unknown()).default({}),
  /** Gatehouse roles, e.g. ["admin"]. */
  roles: z.array(nonEmpty.max(64)).default([]),
  /** Shown on the home page in the demo config only. */
  demoPassword: z.string().optional(),
});

/** One OAuth client, as configured (config file `clients[]`, env GATEHOUSE_CLIENTS, `gatehouse clients add`). */
export const clientSchema = z.strictObject({
  client_id: nonEmpty.max(255),
  client_secret: nonEmpty.optional(),
  client_name: z.string().optional(),
  redirect_uris: z.array(httpUrl).default([]),
  post_logout_redirect_uris: z.array(httpUrl).default([]),
  grant_types: z.array(z.enum(['authorization_code', 'refresh_token', 'client_credentials'])).default(['authorization_code']),
  response_types: z.array(z.enum(['code'])).optional(),
  token_endpoint_auth_method: z
    .enum(['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'none'])
    .optional(),
  scope: z.string().optional(),
  backchannel_logout_uri: httpUrl.optional(),
  backchannel_logout_session_required: z.boolean().optional(),
  id_token_signed_response_alg: z.enum(['RS256', 'ES256']).optional(),
  application_type: z.enum(['web', 'native']).optional(),
  /** Skip the consent page for this client (first-party apps). */
  skipConsent: z.boolean().optional(),
  /** Override serverSideSessions.coordinateClientLifetimesWithUserSession for this client. */
  coordinateLifetimeWithUserSession: z.boolean().optional(),
});

const sessionStoreOption = z.custom<unknown>(
  (value) => value === undefined || typeof value === 'string' || typeof value === 'function' || (typeof value === 'object' && value !== null),
  { error: 'expected a module path, a class, a factory or a store instance' },
);

const jwk = z.record(z.string(), z.unknown());

export const configSchema = z.strictObject({
  mode: z.enum(['production', 'development', 'testing']).default(defaults.mode),
  preset: z.enum(['testing']).optional(),
  issuer: httpUrl.optional(),
  port: z.number().int().min(0).max(65535).default(defaults.port),
  host: z.string().optional(),
  proxy: z.boolean().default(defaults.proxy),
  database: z
    .strictObject({
      url: nonEmpty.default(defaults.database.url),
      sqliteBusyTimeoutMs: positiveInt.default(defaults.database.sqliteBusyTimeoutMs),
      poolMax: positiveInt.default(defaults.database.poolMax),
    })
    .prefault({}),
  logging: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default(defaults.logging.level),
    })
    .prefault({}),
  keys: z
    .strictObject({
      jwks: z.strictObject({ keys: z.array(jwk).min(1) }).optional(),
      cookieKeys: z.array(z.string().min(16, 'expected at least 16 characters')).min(1).optional(),
    })
    .prefault({}),
  ttl: z
    .strictObject({
      accessToken: positiveInt.default(defaults.ttl.accessToken),
      authorizationCode: positiveInt.default(defaults.ttl.authorizationCode),
      clientCredentials: positiveInt.default(defaults.ttl.clientCredentials),
      idToken: positiveInt.default(defaults.ttl.idToken),
      interaction: positiveInt.default(defaults.ttl.interaction),
      grant: positiveInt.default(defaults.ttl.grant),
      refreshToken: positiveInt.default(defaults.ttl.refreshToken),
    })
    .prefault({}),
  passwordHashing: z
    .strictObject({
      log2N: z.number().int().min(1).max(20).default(defaults.passwordHashing.log2N),
      r: positiveInt.default(defaults.passwordHashing.r),
      p: positiveInt.default(defaults.passwordHashing.p),
    })
    .prefault({}),
  backchannelLogout: z
    .strictObject({
      allowPrivateNetworks: z.boolean().default(defaults.backchannelLogout.allowPrivateNetworks),
      maxAttempts: positiveInt.max(100).default(defaults.backchannelLogout.maxAttempts),
      retryBaseDelay: positiveInt.default(defaults.backchannelLogout.retryBaseDelay),
      retryMaxDelay: positiveInt.default(defaults.backchannelLogout.retryMaxDelay),
      pollInterval: positiveInt.default(defaults.backchannelLogout.pollInterval),
      batchSize: positiveInt.max(1000).default(defaults.backchannelLogout.batchSize),
    })
    .prefault({}),
  metrics: z
    .strictObject({
      enabled: z.boolean().default(defaults.metrics.enabled),
      port: z.number().int().min(0).max(65535).optional(),
      host: nonEmpty.default(defaults.metrics.host),
      token: z.string().min(16, 'expected at least 16 characters').optional(),
    })
    .prefault({}),
  login: z
    .strictObject({
      autoLogin: nonEmpty.max(255).optional(),
      maxFailuresPerAccount: positiveInt.default(defaults.login.maxFailuresPerAccount),
      maxFailuresPerIp: positiveInt.default(defaults.login.maxFailuresPerIp),
      failureWindow: positiveInt.default(defaults.login.failureWindow),
      lockout: positiveInt.default(defaults.login.lockout),
      maxLockout: positiveInt.default(defaults.login.maxLockout),
    })
    .prefault({}),
  directory: z
    .strictObject({
      cacheMs: z.number().int().min(0).max(60_000).default(defaults.directory.cacheMs),
    })
    .prefault({}),
  pages: z
    .strictObject({
      showDemoAccounts: z.boolean().default(defaults.pages.showDemoAccounts),
      title: nonEmpty.default(defaults.pages.title),
    })
    .prefault({}),
  serverSideSessions: z
    .strictObject({
      enabled: z.boolean().default(defaults.serverSideSessions.enabled),
      store: sessionStoreOption.optional(),
      displayNameClaim: nonEmpty.optional(),
      idleTimeout: positiveInt.default(defaults.serverSideSessions.idleTimeout),
      absoluteLifetime: positiveInt.default(defaults.serverSideSessions.absoluteLifetime),
      renewalWriteInterval: z.number().int().min(0).default(defaults.serverSideSessions.renewalWriteInterval),
      removeExpiredSessions: z.boolean().default(defaults.serverSideSessions.removeExpiredSessions),
      removeExpiredSessionsFrequency: positiveInt.default(defaults.serverSideSessions.removeExpiredSessionsFrequency),
      fuzzExpiredSessionRemovalStart: z.boolean().default(defaults.serverSideSessions.fuzzExpiredSessionRemovalStart),
      removeExpiredSessionsBatchSize: positiveInt.max(10_000).default(defaults.serverSideSessions.removeExpiredSessionsBatchSize),
      expiredSessionsTriggerBackchannelLogout: z.boolean().default(defaults.serverSideSessions.expiredSessionsTriggerBackchannelLogout),
      coordinateClientLifetimesWithUserSession: z.boolean().default(defaults.serverSideSessions.coordinateClientLifetimesWithUserSession),
      maxSessionsPerUser: positiveInt.optional(),
    })
    .prefault({}),
  accounts: z.array(accountSchema).default([]),
  clients: z.array(clientSchema).default([]),
});

/** What a config file or createServer() accepts (every key optional). */
export type GatehouseConfigInput = z.input<typeof configSchema>;
/** The validated configuration, every default applied. */
export type GatehouseConfig = z.output<typeof configSchema> & { issuer: string };
export type AccountConfig = z.output<typeof accountSchema>;
export type ClientConfig = z.output<typeof clientSchema>;
export type Mode = GatehouseConfig['mode'];
