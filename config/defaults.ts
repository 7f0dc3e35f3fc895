/**
 * Every Gatehouse default, documented once. The README's configuration reference is written from this file;
 * nothing else in the code repeats a default (use `??` against these values, never `||`).
 *
 * Durations are in seconds unless the name says otherwise.
 */
export const MINUTE = 60;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

export const defaults = {
  /**
   * What this instance is for: `production` (the default: no conveniences), `development` (the demo config) or
   * `testing`. Development and testing show one-click sign-in buttons and allow `login.autoLogin`.
   */
  mode: 'production' as 'production' | 'development' | 'testing',
  /**
   * A bundle of defaults (env GATEHOUSE_PRESET). `testing`: in-memory SQLite, skipConsent for configured clients, a
   * fast password hash (scrypt log2N 10), loopback back-channel logout allowed, server-side sessions on, mode testing.
   * Explicit values in the file or the environment still win.
   */
  preset: undefined as 'testing' | undefined,
  /** Public URL of the provider; tokens carry it as `iss`. Default: http://localhost:<port>. */
  issuer: undefined as string | undefined,
  /** TCP port to listen on (env PORT). */
  port: 3000,
  /** Interface to bind; undefined = all interfaces. */
  host: undefined as string | undefined,
  /** Trust X-Forwarded-* headers (set true behind a TLS-terminating proxy). */
  proxy: false,

  database: {
    /** Database URL (env GATEHOUSE_DATABASE_URL): sqlite:./file, sqlite::memory:, postgres://..., mysql://..., mariadb://... */
    url: 'sqlite:./data/gatehouse.sqlite',
    /** SQLite: how long a writer waits on a lock before failing, in ms. */
    sqliteBusyTimeoutMs: 5000,
    /** PostgreSQL / MariaDB connection pool size. */
    poolMax: 10,
  },

  logging: {
    /** pino level: fatal, error, warn, info, debug, trace, silent. */
    level: 'info' as 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent',
  },

  keys: {
    /** Your own private JWKS ({ keys: [...] }); when unset, RS256 and ES256 keys are generated once and kept in the database. */
    jwks: undefined as { keys: Record<string, unknown>[] } | undefined,
    /** Your own cookie-signing keys; when unset, generated once and kept in the database. */
    cookieKeys: undefined as string[] | undefined,
  },

  /** Token and artefact lifetimes. */
  ttl: {
    accessToken: HOUR,
    authorizationCode: MINUTE,
    clientCredentials: 10 * MINUTE,
    idToken: HOUR,
    interaction: HOUR,
    grant: 14 * DAY,
    refreshToken: 14 * DAY,
  },

  passwordHashing: {
    /** scrypt cost as log2(N): 2^15 = 32 MiB of memory per hash with r=8. */
    log2N: 15,
    r: 8,
    p: 1,
  },

  backchannelLogout: {
    /**
     * Allow back-channel logout (and other outbound) requests to loopback and private addresses. Off by default: a
     * public IdP must not be made to call into its own network (SSRF). Turn it on for relying parties on localhost.
     */
    allowPrivateNetworks: false,
    /** Delivery attempts per notification before it is marked failed. */
    maxAttempts: 8,
    /** Seconds before the first retry; doubles with every attempt. */
    retryBaseDelay: 5,
    /** Longest wait between two attempts, in seconds. */
    retryMaxDelay: HOUR,
    /** How often the delivery worker looks for due notifications when idle, in seconds. */
    pollInterval: 10,
    /** Notifications claimed per delivery round. */
    batchSize: 50,
  },

  metrics: {
    /** Prometheus metrics at /metrics. */
    enabled: false,
    /** Serve them on their own port (no auth; bind to a private interface)... */
    port: undefined as number | undefined,
    /** ...on this interface. */
    host: '127.0.0.1',
    /** ...or on the main port behind `Authorization: Bearer <token>`. One of port/token is required when enabled. */
    token: undefined as string | undefined,
  },

  login: {
    /**
     * Sign this subject in without showing the login page (headless tests). Development and testing modes only: any
     * other mode refuses to start with it.
     */
    autoLogin: undefined as string | undefined,
    /** Failed sign-ins for one account name within `failureWindow` before it is locked. */
    maxFailuresPerAccount: 5,
    /** Failed sign-ins from one IP address within `failureWindow` before it is locked. */
    maxFailuresPerIp: 100,
    /** Seconds over which failures are counted. */
    failureWindow: 15 * MINUTE,
    /** First lockout in seconds; every further lockout of the same key doubles it, up to `maxLockout`. */
    lockout: 5 * MINUTE,
    maxLockout: DAY,
  },

  directory: {
    /** How long a user or client read from the database is reused before it is read again, in ms (CLI changes show after this). */
    cacheMs: 1000,
  },

  pages: {
    /** Show the configured accounts and their demo passwords on the home page (demo config only). */
    showDemoAccounts: false,
    /** Product name shown on pages. */
    title: 'Gatehouse',
  },

  serverSideSessions: {
    /** Keep login sessions in the server-side session store (env GATEHOUSE_SERVER_SIDE_SESSIONS). */
    enabled: false,
    /** A custom store: module path (config file) or class / factory / instance (code). Default: the Sequelize store. */
    store: undefined as unknown,
    /** Claim copied into the session's display name (e.g. "name" or "email"); unset because it is PII. */
    displayNameClaim: undefined as string | undefined,
    /** Sliding lifetime: a session ends after this long without activity. */
    idleTimeout: 10 * HOUR,
    /** Hard cap from sign-in, whatever the activity. */
    absoluteLifetime: 14 * DAY,
    /** A request that only slides the expiry writes to the store at most once per this many seconds. */
    renewalWriteInterval: 60,
    /** Run the expiry sweeper (ends expired sessions on the server, with their notifications). */
    removeExpiredSessions: true,
    /** Seconds between sweeps. */
    removeExpiredSessionsFrequency: 10 * MINUTE,
    /** Start the first sweep at a random point of the first interval, so instances started together don't collide. */
    fuzzExpiredSessionRemovalStart: true,
    /** Sessions claimed per batch; a sweep repeats batches until none is left. */
    removeExpiredSessionsBatchSize: 100,
    /** On expiry, notify every client of the session, not only the coordinated ones (as in the reference: off). */
    expiredSessionsTriggerBackchannelLogout: false,
    /**
     * Tie clients' tokens to the user's session: refresh, userinfo and introspection fail once the session has ended,
     * and their use keeps it alive. Per client: `clients[].coordinateLifetimeWithUserSession` (true/false/unset).
     */
    coordinateClientLifetimesWithUserSession: false,
    /** End a user's oldest session when a login would exceed this many; unset = no limit. */
    maxSessionsPerUser: undefined as number | undefined,
  },
} as const;

export type Defaults = typeof defaults;

/**
 * Presets (`preset:` in a config file, env GATEHOUSE_PRESET): values applied under the configuration, so anything set
 * explicitly (file, environment, createServer options) still wins. `clientDefaults` apply to every configured client.
 */
export const presets = {
  testing: {
    mode: 'testing',
    database: { url: 'sqlite::memory:' },
    passwordHashing: { log2N: 10 },
    backchannelLogout: { allowPrivateNetworks: true },
    serverSideSessions: { enabled: true },
    clientDefaults: { skipConsent: true },
  },
} as const;

export type PresetName = keyof typeof presets;
