/**
 * Builds a whole Gatehouse from a configuration: database (migrated), keys, accounts, session store, the provider and
 * the Koa app that hosts it. The programmatic API (exported from the package root):
 *
 *   const server = await createServer({ serverSideSessions: { enabled: true, store: MyStore } });
 *   const { url } = await server.listen();
 *   ...
 *   await server.close();
 */
import { EventEmitter } from 'node:events';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import Provider from 'oidc-provider';
import type { Logger } from 'pino';
import type { Sequelize } from 'sequelize';
import { validateConfig } from '../config/load.js';
import type { GatehouseConfig, GatehouseConfigInput } from '../config/schema.js';
import { systemClock } from '../stores/clock.js';
import { Database } from '../stores/sequelize/database.js';
import { openMigratedDatabase } from '../stores/sequelize/migrate.js';
import type { Clock, SessionStore } from '../stores/session-store.js';
import { CsrfTokens } from './http/csrf.js';
import { errorHandler, loggableMessage, retryAfterOnUnavailable } from './http/errors.js';
import { HttpDrain } from './http/drain.js';
import { DatabaseOutage } from './database-outage.js';
import { isDatabaseUnavailable } from '../stores/sequelize/errors.js';
import { rejectControlCharacters } from './http/input-hygiene.js';
import { createRenderer } from './http/render.js';
import { requestLog } from './http/request-log.js';
import { securityHeaders } from './http/security-headers.js';
import { AccountDirectory } from './provider/accounts.js';
import { ClientDirectory, ClientSettings } from './provider/clients.js';
import { seedDirectory } from './provider/directory-seed.js';
import { UserOffboarding } from './provider/user-offboarding.js';
import { SequelizeDirectory } from '../stores/sequelize/directory.js';
import { providerConfiguration } from './provider/configuration.js';
import { describeKeys, loadKeyMaterial } from './provider/keys.js';
import { SigningKeyRing } from './provider/key-ring.js';
import { healthRoutes } from './routes/health.js';
import { homeRoutes } from './routes/home.js';
import { interactionRoutes } from './routes/interactions.js';
import { accountPageRoutes } from './routes/account-pages.js';
import { adminApiRoutes } from './routes/admin-api.js';
import { adminPageRoutes } from './routes/admin-pages.js';
import type { RouteDeps } from './routes/deps.js';
import { consoleClient } from './provider/console-client.js';
import { GatehouseMetrics } from './metrics.js';
import { listenError } from './listen-error.js';
import { createLogger } from './logging.js';
import { LoginAttempts } from '../stores/sequelize/login-attempts.js';
import { LoginThrottle, loginNameKey } from './provider/login-throttle.js';
import { ApiRegistry } from './provider/apis.js';
import { DeviceCodeThrottle } from './provider/device-code-throttle.js';
import { loadDpopNonceSecret } from './provider/dpop-nonce.js';
import { useAtomicReplayDetection } from './provider/replay-detection.js';
import { deviceCodeEntry, devicePageSources } from './routes/device-pages.js';
import { BackchannelOutbox } from '../stores/sequelize/backchannel-outbox.js';
import { latestGrantOf } from '../stores/sequelize/grants.js';
import { createAdapterFactory, guarded } from './sessions/adapter-factory.js';
import { BackchannelDelivery } from './sessions/backchannel-delivery.js';
import { slideOnClientActivity } from './sessions/coordination.js';
import { ExpirySweeper } from './sessions/expiry-sweeper.js';
import { SessionService } from './sessions/session-service.js';
import { resolveSessionStore } from './sessions/store-loader.js';

export interface CreateServerOptions {
  /** The time source for everything that reasons about expiry (tests pass a ManualClock). */
  clock?: Clock;
  /** A pino logger; default: stdout at `logging.level`, in `logging.format` (server/logging.ts). */
  logger?: Logger;
  /**
   * Apply the configured users and clients to the directory (default true). Tools that only use a running server's
   * database (`gatehouse sessions ...`) pass false, so their configuration never changes the directory.
   */
  seedDirectory?: boolean;
}

export interface GatehouseServer {
  config: GatehouseConfig;
  app: Koa;
  provider: Provider;
  sequelize: Sequelize;
  /** The server-side session store, when the feature is on. */
  sessionStore?: SessionStore;
  /** Audit events: session.created, session.logged_out, session.revoked, session.expired, backchannel.*, login.failed, login.locked, login.unlocked. */
  events: EventEmitter;
  /** The session management service (query, revoke, expire). */
  sessions: SessionService;
  /** The back-channel logout outbox worker. */
  backchannel: BackchannelDelivery;
  /** The expiry sweeper (runs on its own when serverSideSessions.removeExpiredSessions; `runOnce()` for tests). */
  sweeper: ExpirySweeper;
  /** Prometheus metrics (also when not exposed). */
  metrics: GatehouseMetrics;
  /** The stored signing keys this server follows (undefined when the configuration supplies keys.jwks). */
  signingKeys?: SigningKeyRing;
  /** Users in the directory (find, authenticate, save, remove). */
  accounts: AccountDirectory;
  /** Sign-in protection: lockout status and unlock by username (the admin API and the CLI use it). */
  throttle: LoginThrottle;
  /** OAuth clients in the directory (find, list, save, remove). */
  clients: ClientDirectory;
  logger: Logger;
  /** Starts listening (if not already) and resolves to the bound address. */
  listen(): Promise<{ port: number; url: string; metricsPort?: number }>;
  /**
   * Drains and stops: `/readyz` answers 503 at once, the listener stops accepting, requests in flight get their whole
   * response (with `Connection: close`) and idle keep-alive connections are closed; background work (expiry sweeper,
   * back-channel worker, key refresh) takes nothing new and finishes what it holds. Whatever is still running after
   * `timeoutMs` (default `shutdown.timeout`) is cut. Then the database is closed. Idempotent (later calls get the
   * first call's result).
   */
  close(options?: { timeoutMs?: number }): Promise<ShutdownResult>;
}

/** How a shutdown went (also logged as `event: shutdown`). */
export interface ShutdownResult {
  /** Requests that finished with a complete response during the drain. */
  drained: number;
  /** Requests cut at the deadline. */
  cut: number;
  /** Whether background work was still running at the deadline (its leases run out; another instance takes over). */
  backgroundCut: boolean;
  /** Time from the start of the drain to the database being closed. */
  ms: number;
}

export async function createServer(input: GatehouseConfigInput = {}, options: CreateServerOptions = {}): Promise<GatehouseServer> {
  const preliminary = validateConfig(input);
  const logger = options.logger ?? createLogger(preliminary.logging);
  const clock = options.clock ?? systemClock;

  // With port 0 and no issuer, the issuer depends on the port: bind first, then build the provider around it.
  const httpServer = createHttpServer();
  let config = preliminary;
  // (`http://localhost:0` is what a loaded configuration says for port 0 without an issuer: also unset.)
  if ((input.issuer === undefined || input.issuer === 'http://localhost:0') && preliminary.port === 0) {
    const port = await bind(httpServer, 0, preliminary.host);
    config = { ...preliminary, issuer: `http://localhost:${port}` };
  }

  const { sequelize, applied } = await openMigratedDatabase(config.database).catch((error: unknown) => {
    httpServer.close(); // bound early for port 0: release it, or the process never exits
    throw error;
  });
  try {
    if (applied.length) logger.info({ migrations: applied }, 'database migrated');
    return await assemble(config, { logger, clock, sequelize, httpServer, seed: options.seedDirectory ?? true });
  } catch (error) {
    await sequelize.close().catch(() => undefined);
    httpServer.close();
    throw error;
  }
}

async function assemble(
  configured: GatehouseConfig,
  deps: { logger: Logger; clock: Clock; sequelize: Sequelize; httpServer: HttpServer; seed: boolean },
): Promise<GatehouseServer> {
  const { logger, clock, sequelize, httpServer } = deps;
  const events = new EventEmitter();
  // Before the application's request listener, so every request is tracked for the drain from its start.
  const httpDrain = new HttpDrain(httpServer);
  const outage = new DatabaseOutage({ sequelize, logger: logger.child({ component: 'database' }), options: { probeTimeoutMs: configured.database.readyTimeoutMs, quietMs: 2 * configured.database.timeoutMs } });
  const keys = await loadKeyMaterial(sequelize, configured, clock);
  logger.info({ keys: describeKeys(keys.jwks), source: keys.source }, 'signing keys loaded');
  // Users and clients live in the directory tables, seeded from the configuration (passwords hashed on the way).
  const directory = new SequelizeDirectory(sequelize, clock);
  const accounts = new AccountDirectory(directory, { hashing: configured.passwordHashing, cacheMs: configured.directory.cacheMs });
  await accounts.ready(); // the configured hashing works here (argon2id needs Node.js >= 24.16), before any is seeded
  const seeded = deps.seed ? await seedDirectory(directory, configured, logger) : { config: configured, disabledUsers: [] };
  const config = seeded.config;
  const staticClients = [consoleClient(config.issuer)];
  const clients = new ClientSettings(staticClients, config.serverSideSessions);
  const clientDirectory = new ClientDirectory(directory, clients, { cacheMs: config.directory.cacheMs });
  await clientDirectory.load();
  const render = createRenderer(config.pages);
  const storeLogger = logger.child({ component: 'session-store' });

  let sessionStore: SessionStore | undefined;
  if (config.serverSideSessions.enabled) {
    const { store, name, module } = await resolveSessionStore(config.serverSideSessions.store, {
      clock,
      logger: storeLogger,
      sequelize,
      options: config.serverSideSessions.storeOptions ?? {},
    });
    sessionStore = store;
    logger.info({ sessionStore: name, ...(module ? { module } : {}) }, `server-side sessions in ${name}`);
  }
  const displayNameClaim = config.serverSideSessions.displayNameClaim;
  // Late-bound: the adapter needs the service, which needs the provider, which needs the adapter.
  let sessions: SessionService | undefined;
  const operationalAdapters = createAdapterFactory({
    sequelize,
    clock,
    sessions: sessionStore && {
      store: sessionStore,
      clock,
      logger: storeLogger,
      renewalWriteInterval: config.serverSideSessions.renewalWriteInterval,
      displayNameFor: (accountId) => {
        const value = displayNameClaim ? accounts.bySubject(accountId)?.claims[displayNameClaim] : undefined;
        return typeof value === 'string' ? value.slice(0, 255) : null;
      },
      onExpiredSession: (session) => {
        sessions?.expireSession(session).catch((error) => logger.error({ sessionId: session.sessionId, err: { message: (error as Error).message } }, 'ending an expired session failed'));
      },
      onLogin: (session) => {
        const detail = { sessionId: session.sessionId, subjectId: session.subjectId, ip: session.loginIp };
        logger.info({ event: 'session.created', ...detail }, 'session created');
        events.emit('session.created', detail);
        const limit = config.serverSideSessions.maxSessionsPerUser;
        if (limit && session.subjectId) {
          sessions?.enforceSessionLimit(session.subjectId, limit, session.sessionId).catch((error) =>
            logger.error({ subjectId: session.subjectId, err: { message: (error as Error).message } }, 'enforcing maxSessionsPerUser failed'),
          );
        }
      },
    },
  });

  // The Client model reads the directory (clients can change while the provider runs); the rest as configured.
  // (Guarded like the others: a client_id with a NUL, e.g. from a form body the provider parses itself, is unknown.)
  const clientAdapter = guarded(clientDirectory.adapter);
  const adapter = (modelName: string) => (modelName === 'Client' ? clientAdapter : operationalAdapters(modelName));
  const apis = new ApiRegistry(config.apis, config.ttl);
  const loginAttempts = new LoginAttempts(sequelize, clock);
  const deviceCodes = new DeviceCodeThrottle(loginAttempts, { ...config.login, maxFailuresPerIp: config.deviceFlow.maxFailuresPerIp }, clock);
  const devicePages = { render, throttle: deviceCodes, accounts, clock, charset: config.deviceFlow.userCodeCharset, mask: config.deviceFlow.userCodeMask };

  const provider = new Provider(config.issuer, providerConfiguration({
      config: { ...config, clients: staticClients },
      keys,
      accounts,
      adapter,
      render,
      clock,
      clients,
      apis,
      dpopNonceSecret: config.dpop.enabled ? await loadDpopNonceSecret(sequelize) : undefined,
      devicePages: devicePageSources(devicePages),
      findAccountGrant: (accountId, clientId) => latestGrantOf(sequelize, clock, accountId, clientId),
    }));
  useAtomicReplayDetection(provider); // one use per DPoP proof and client assertion, also for concurrent requests
  provider.proxy = config.proxy;
  provider.maxIpsCount = config.proxyHops; // the client address: the entry the outermost proxy wrote, not the client's
  // Keys from the database follow rotations without a restart (keys from the configuration are fixed).
  const signingKeys = keys.stored
    ? new SigningKeyRing({ sequelize, clock, logger: logger.child({ component: 'keys' }), refreshMs: config.keys.refreshMs, stored: keys.stored })
    : undefined;
  signingKeys?.attach(provider);
  // Every ID token carries the per-client session id (`sid`), not only for clients that registered back-channel
  // logout with session_required: relying parties use it to match logout notifications and admin revocations.
  provider.Client.prototype.includeSid = () => true;
  // The provider's own 503 (its adapter found the database unavailable) is one warn line per outage, not one per
  // request; other server errors are logged with their stack. `error` is Koa's event for what escaped every handler
  // (e.g. a session save after the response was set), which Koa would otherwise print to stderr.
  const serverError = (error: Error, path: string | undefined, msg: string) => {
    if (isDatabaseUnavailable(error)) return outage.failed(error, path ?? 'provider');
    logger.error({ err: { name: error.name, message: loggableMessage(error), stack: error.stack?.split('\n').slice(1, 8).join('\n') } }, msg);
  };
  provider.on('server_error', (ctx: { path?: string }, error: Error) => serverError(error, ctx?.path, 'provider error'));
  (provider as unknown as Koa).on('error', (error: Error, ctx?: { path?: string }) => serverError(error, ctx?.path, 'provider error'));
  provider.on('end_session.success', (ctx: { oidc?: { session?: { uid?: string; accountId?: string } } }) => {
    const detail = { sessionId: ctx.oidc?.session?.uid, subjectId: ctx.oidc?.session?.accountId };
    if (!detail.subjectId) return;
    logger.info({ event: 'session.logged_out', ...detail }, 'session logged out');
    events.emit('session.logged_out', detail);
  });

  const delivery = new BackchannelDelivery({
    provider,
    outbox: new BackchannelOutbox(sequelize, clock),
    clock,
    logger: logger.child({ component: 'backchannel' }),
    events,
    options: config.backchannelLogout,
  });
  sessions = new SessionService({
    provider,
    store: sessionStore,
    sequelize,
    clock,
    logger: logger.child({ component: 'sessions' }),
    events,
    delivery,
    clients,
    apis,
    expiredSessionsTriggerBackchannelLogout: config.serverSideSessions.expiredSessionsTriggerBackchannelLogout,
    lifetime: config.serverSideSessions,
  });
  const throttle = new LoginThrottle(loginAttempts, config.login, {
    nameKey: await loginNameKey(sequelize),
    clock,
    audit: (event, detail) => {
      logger.info({ event, ...detail }, event === 'login.locked' ? `sign-in locked (${String(detail.scope)})` : 'sign-in failed');
      events.emit(event, detail);
    },
  });
  const sweeper = new ExpirySweeper({
    store: sessionStore,
    service: sessions,
    sequelize,
    clock,
    logger: logger.child({ component: 'sweeper' }),
    onSweep: (result) => events.emit('sweep', result),
    housekeeping: () => throttle.prune(),
    options: {
      frequency: config.serverSideSessions.removeExpiredSessionsFrequency,
      fuzzStart: config.serverSideSessions.fuzzExpiredSessionRemovalStart,
      batchSize: config.serverSideSessions.removeExpiredSessionsBatchSize,
      leaseSeconds: 120,
    },
  });
  provider.use(slideOnClientActivity(clients, sessions));
  if (config.deviceFlow.enabled) provider.use(deviceCodeEntry(devicePages));
  delivery.start();
  if (config.serverSideSessions.removeExpiredSessions) sweeper.start();
  signingKeys?.start();
  const offboarding = new UserOffboarding({ sessions, logger: logger.child({ component: 'users' }) });
  // Users the configuration no longer lists were disabled by the seeding: end their sessions and tokens now.
  for (const subject of seeded.disabledUsers) {
    await offboarding.endAccess(subject, 'config').catch((error) =>
      logger.error({ subject, err: { message: loggableMessage(error) } }, 'ending the sessions of a user the configuration no longer lists failed'),
    );
  }

  const app = new Koa();
  app.proxy = config.proxy;
  app.maxIpsCount = config.proxyHops;
  app.on('error', (error: Error, ctx?: { path?: string }) => serverError(error, ctx?.path, 'unhandled error'));
  if (config.issuer.startsWith('https:') && !config.proxy) {
    // Gatehouse serves plain HTTP, so an https issuer means a TLS-terminating proxy in front of it; without trusting
    // its X-Forwarded-Proto the cookies are set without Secure (test/tls-proxy.test.ts).
    logger.warn({ issuer: config.issuer }, 'the issuer is https but proxy is false: cookies will not be marked Secure; set proxy: true behind a TLS-terminating proxy');
  }
  app.keys = keys.cookieKeys;
  const csrf = new CsrfTokens(keys.cookieKeys[0]);
  const metrics = new GatehouseMetrics(events, sessions, Database.of(sequelize));
  app.use(retryAfterOnUnavailable());
  app.use(metrics.middleware());
  app.use(requestLog(logger));
  app.use(rejectControlCharacters());
  app.use(securityHeaders({ https: config.issuer.startsWith('https:') }));
  app.use(errorHandler(logger, render, outage));
  if (config.metrics.enabled && config.metrics.token) app.use(metrics.protectedEndpoint(config.metrics.token));
  const routeDeps: RouteDeps = { config, provider, sessions, backchannel: delivery, accounts, offboarding, clients, apis, csrf, render, clock, logger, events, throttle };
  for (const router of [
    healthRoutes({ sequelize, readyTimeoutMs: config.database.readyTimeoutMs, draining: () => httpDrain.draining, outage }),
    homeRoutes(config, render),
    interactionRoutes({
      provider,
      accounts,
      clients,
      apis,
      csrf,
      render,
      clock,
      mode: config.mode,
      autoLogin: config.login.autoLogin,
      throttle,
      upgradePasswordHash: async (user, password) => {
        if (await accounts.upgradeHash(user, password)) logger.info({ event: 'password.rehashed', subject: user.subject }, 'password hash upgraded to the configured cost');
      },
    }),
    adminApiRoutes(routeDeps),
    adminPageRoutes(routeDeps),
    accountPageRoutes(routeDeps),
  ]) {
    app.use(router.routes());
    app.use(router.allowedMethods());
  }
  const providerCallback = provider.callback();
  app.use(async (ctx) => {
    ctx.respond = false;
    await providerCallback(ctx.req, ctx.res);
  });

  httpServer.on('request', app.callback());

  let closing: Promise<ShutdownResult> | undefined;
  let metricsPort: number | undefined;
  return {
    config,
    app,
    provider,
    sequelize,
    sessionStore,
    events,
    logger,
    sessions,
    backchannel: delivery,
    sweeper,
    metrics,
    accounts,
    throttle,
    clients: clientDirectory,
    signingKeys,
    async listen() {
      // All or nothing: a listener that cannot bind (a taken metrics port) leaves none bound by this call.
      const bindsMain = !httpServer.listening;
      if (bindsMain) await bind(httpServer, config.port, config.host).catch((error) => Promise.reject(listenError('port', config.host, config.port, error)));
      const { port } = httpServer.address() as AddressInfo;
      // metrics.port 0 or false: no listener of their own (metrics.token may still serve them on the main port).
      const sidecar = config.metrics.enabled && config.metrics.port ? config.metrics.port : undefined;
      try {
        metricsPort ??= sidecar ? await metrics.listenSidecar(sidecar, config.metrics.host) : undefined;
      } catch (error) {
        if (bindsMain) await new Promise((resolve) => httpServer.close(resolve));
        throw listenError('metrics.port', config.metrics.host, sidecar!, error as NodeJS.ErrnoException);
      }
      return { port, url: config.issuer, metricsPort };
    },
    close(options = {}) {
      closing ??= (async () => {
        const started = performance.now();
        const timeoutMs = options.timeoutMs ?? config.shutdown.timeout * 1000;
        const left = () => Math.max(0, timeoutMs - (performance.now() - started));
        // Background work takes nothing new from now on and finishes what it holds, beside the requests.
        signingKeys?.stop();
        const background = Promise.all([sweeper.stop(), delivery.stop()]).then(() => true);
        const http = httpDrain.drain(timeoutMs);
        const { drained, cut } = await http;
        const backgroundCut = !(await within(background, left()));
        outage.stop();
        await metrics.close();
        // Closing waits for statements still running (a silent database, a cut request's statement): bounded too, by
        // what is left of the deadline or one more second.
        await within(
          (async () => {
            await (sessionStore as { close?: () => Promise<void> } | undefined)?.close?.();
            await sequelize.close();
          })(),
          Math.max(left(), 1000),
        );
        const result = { drained, cut, backgroundCut, ms: Math.round(performance.now() - started) };
        if (cut || backgroundCut) logger.warn({ event: 'shutdown', ...result }, 'shutdown deadline reached: work in flight was cut');
        else logger.info({ event: 'shutdown', ...result }, 'shutdown complete: every request in flight was answered');
        return result;
      })();
      return closing;
    },
  };
}

/** Whether `work` settled within `ms` (its result or error is not needed). */
async function within(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([work.then(() => true, () => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

function bind(server: HttpServer, port: number, host?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
