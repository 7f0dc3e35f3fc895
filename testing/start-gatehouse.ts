/**
 * `startGatehouse()`: a real Gatehouse in this process for a test run, on port 0 of the loopback interface, with the
 * testing preset (in-memory SQLite, fast password hash, skipConsent, loopback back-channel logout, server-side
 * sessions, testing mode), the expiry sweeper off, logs silent, and the given users and clients.
 */
import type { Logger } from 'pino';
import type { GatehouseConfigInput } from '../config/schema.js';
import { createServer, type GatehouseServer } from '../server/create-server.js';
import type { SessionService } from '../server/sessions/session-service.js';
import { hashSessionKey, type Clock } from '../stores/session-store.js';
import { authorizationUrl, followAuthorization, type AuthorizeOptions, type AuthorizeResult } from './authorize.js';
import { login, type LoginOptions, type LoginResult, type ProviderMetadata } from './login.js';

/** A user; `password` is hashed at start (argon2id m=1024,t=1 under the testing preset: about a millisecond). */
export interface TestUser {
  subject: string;
  /** Without one, the user signs in with the login page's one-click button (and `login()` uses it). */
  password?: string;
  /** What the login form takes; default: the subject. */
  username?: string;
  claims?: Record<string, unknown>;
  roles?: string[];
}

/** An OAuth client, as in the config file's `clients[]` (skipConsent defaults to true here). */
export type TestClient = NonNullable<GatehouseConfigInput['clients']>[number];

/** An API (resource server), as in the config file's `apis[]`. */
export type TestApi = NonNullable<GatehouseConfigInput['apis']>[number];

/** What startGatehouse takes; every option is optional, and later versions may add more. */
export interface StartGatehouseOptions {
  users?: TestUser[];
  clients?: TestClient[];
  /** APIs whose access tokens the clients can ask for (resource indicators or the APIs' scopes). */
  apis?: TestApi[];
  /** Anything else; merged over the testing settings one section deep (e.g. `serverSideSessions: { idleTimeout: 60 }`). */
  config?: GatehouseConfigInput;
  /** The server's time source (a ManualClock lets tests move time instead of sleeping). */
  clock?: Clock;
  /** Default: silent, or the level in GATEHOUSE_LOG_LEVEL (`config.logging.level` wins). */
  logger?: Logger;
}

export interface TestGatehouse {
  /** The issuer (http://localhost:<port>): give it to your OpenID Connect client library. */
  issuer: string;
  /** Where the server listens (the same as the issuer here). */
  url: string;
  /** The whole server (provider, config, events, sweeper, accounts, clients...). */
  server: GatehouseServer;
  /** The session management service: querySessions, sessionsOf, removeSessions. */
  sessions: SessionService;
  /** Signs a configured user in to a configured client through the real endpoints, without a browser. */
  login(options: LoginOptions): Promise<LoginResult>;
  /**
   * The front channel only: an authorization request (built from the options, or the URL your client library built),
   * the login as `subject`, and the redirect to the redirect_uri, captured. Resolves to that authorization response
   * (with the code) for your own client library to exchange; an error response (`error=login_required`, ...) too.
   */
  authorize(options: AuthorizeOptions): Promise<AuthorizeResult>;
  /** Closes the server and its in-memory database. Idempotent. */
  stop(): Promise<void>;
}

export async function startGatehouse(options: StartGatehouseOptions = {}): Promise<TestGatehouse> {
  const given = options.config ?? {};
  const users = options.users ?? [];
  const clients = [...(given.clients ?? []), ...(options.clients ?? [])];
  const level = (process.env.GATEHOUSE_LOG_LEVEL || 'silent') as NonNullable<GatehouseConfigInput['logging']>['level'];
  const server = await createServer(
    {
      ...given,
      preset: given.preset ?? 'testing',
      port: given.port ?? 0,
      host: given.host ?? '127.0.0.1',
      logging: { level, ...given.logging },
      // Tests run the sweeper themselves (server.sweeper.runOnce()) unless they ask for the timer.
      serverSideSessions: { removeExpiredSessions: false, ...given.serverSideSessions },
      accounts: [...(given.accounts ?? []), ...users.map((user) => ({ ...user }))],
      clients,
      apis: [...(given.apis ?? []), ...(options.apis ?? [])],
    },
    { clock: options.clock, logger: options.logger },
  );
  let url: string;
  try {
    ({ url } = await server.listen());
  } catch (error) {
    await server.close();
    throw error;
  }
  const issuer = server.config.issuer;

  let metadata: Promise<ProviderMetadata> | undefined;
  let jwks: Promise<{ keys: Record<string, unknown>[] }> | undefined;
  const getJson = async <T>(target: string): Promise<T> => {
    const response = await fetch(target);
    if (!response.ok) throw new Error(`GET ${target}: ${response.status}`);
    return (await response.json()) as T;
  };
  const discovery = () => (metadata ??= getJson<ProviderMetadata>(`${issuer}/.well-known/openid-configuration`));

  const sessionIdOf = async (sessionKey: string | undefined) =>
    sessionKey ? (await server.sessionStore?.get(hashSessionKey(sessionKey)))?.sessionId : undefined;
  const userOf = (subject: string) => {
    const user = users.find((entry) => entry.subject === subject);
    return { username: user?.username ?? subject, password: user?.password };
  };

  return {
    issuer,
    url,
    server,
    sessions: server.sessions,
    async authorize(options) {
      let request: URL;
      if (options.url !== undefined) {
        request = new URL(options.url);
        if (request.origin !== new URL(issuer).origin)
          throw new Error(`authorize: ${request.origin} is not this Gatehouse (${issuer})`);
      } else {
        const client = clients.find((entry) => entry.client_id === options.clientId);
        if (!client)
          throw new Error(
            options.clientId === undefined
              ? 'authorize: give clientId, or the url of an authorization request'
              : `authorize: no client ${options.clientId} was given to startGatehouse`,
          );
        request = authorizationUrl((await discovery()).authorization_endpoint, client, options);
      }
      const { username, password } = userOf(options.subject);
      const { response, sessionCookie, sessionKey } = await followAuthorization(
        { issuer, username, password: options.password ?? password },
        request,
        { subject: options.subject, sessionCookie: options.sessionCookie },
      );
      const code = response.searchParams.get('code') ?? undefined;
      const error = response.searchParams.get('error') ?? undefined;
      return {
        url: response,
        ...(code ? { code } : {}),
        ...(error ? { error } : {}),
        sessionCookie,
        sessionId: await sessionIdOf(sessionKey),
      };
    },
    async login(loginOptions) {
      const client = clients.find((entry) => entry.client_id === loginOptions.clientId);
      if (!client) throw new Error(`login: no client ${loginOptions.clientId} was given to startGatehouse`);
      const { username, password } = userOf(loginOptions.subject);
      const result = await login(
        {
          issuer,
          metadata: discovery,
          jwks: async () => (jwks ??= getJson((await discovery()).jwks_uri)),
          client,
          username,
          password: loginOptions.password ?? password,
        },
        loginOptions,
      );
      const { sessionKey, ...rest } = result;
      return { ...rest, sessionId: await sessionIdOf(sessionKey) };
    },
    stop: async () => {
      await server.close();
    },
  };
}
