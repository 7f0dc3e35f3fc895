/**
 * Builds a whole Gatehouse from a configuration and runs its lifecycle (listen, drain, close). The building is a short
 * sequence of named steps in server/assemble/: storage (database, keys, directory, session store, adapters), provider
 * (the oidc-provider instance and its hooks), services (sessions, back-channel delivery, sign-in protection, sweeper)
 * and routes (the Koa app that hosts it all). The programmatic API (exported from the package root):
 *
 *   const server = await createServer({ serverSideSessions: { enabled: true, store: MyStore } });
 *   const { url } = await server.listen();
 *   ...
 *   await server.close();
 */
import { EventEmitter } from 'node:events';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import type { Sequelize } from 'sequelize';
import { validateConfig } from '../config/load.js';
import type { GatehouseConfig, GatehouseConfigInput } from '../config/schema.js';
import { systemClock } from '../stores/clock.js';
import { Database } from '../stores/sequelize/database.js';
import { withRequestMemo } from '../stores/sequelize/request-memo.js';
import type { Clock, SessionStore } from '../stores/session-store.js';
import { buildProvider } from './assemble/provider.js';
import { buildApp } from './assemble/routes.js';
import { serverErrorReporter } from './assemble/server-errors.js';
import { createServices, endAccessOfUnlistedUsers, startBackgroundWork } from './assemble/services.js';
import { openDatabase, openStorage } from './assemble/storage.js';
import { DatabaseOutage } from './database-outage.js';
import { HttpDrain } from './http/drain.js';
import { createRenderer } from './http/render.js';
import { listenError } from './listen-error.js';
import { createLogger } from './logging.js';
import { GatehouseMetrics } from './metrics.js';
import type { AccountDirectory } from './provider/accounts.js';
import { type ClientDirectory, warnUnusableClients } from './provider/clients.js';
import type { SigningKeyRing } from './provider/key-ring.js';
import type { LoginThrottle } from './provider/login-throttle.js';
import type { BackchannelDelivery } from './sessions/backchannel-delivery.js';
import type { ExpirySweeper } from './sessions/expiry-sweeper.js';
import type { SessionService } from './sessions/session-service.js';

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
  /**
   * Audit events: session.created, session.logged_out, session.revoked, session.expired, backchannel.*, login.failed,
   * login.locked, login.unlocked.
   */
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

export async function createServer(
  input: GatehouseConfigInput = {},
  options: CreateServerOptions = {},
): Promise<GatehouseServer> {
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

  const sequelize = await openDatabase(config.database, logger).catch((error: unknown) => {
    httpServer.close(); // bound early for port 0: release it, or the process never exits
    throw error;
  });
  try {
    return await assemble(config, { logger, clock, sequelize, httpServer, seed: options.seedDirectory ?? true });
  } catch (error) {
    await sequelize.close().catch(() => undefined);
    httpServer.close();
    throw error;
  }
}

/** The steps, in order: storage, provider, services, routes; then the lifecycle (listen, drain, close). */
async function assemble(
  configured: GatehouseConfig,
  deps: { logger: Logger; clock: Clock; sequelize: Sequelize; httpServer: HttpServer; seed: boolean },
): Promise<GatehouseServer> {
  const { logger, clock, sequelize, httpServer } = deps;
  const events = new EventEmitter();
  const basics = { logger, clock, sequelize, events };
  // Before the application's request listener, so every request is tracked for the drain from its start.
  const httpDrain = new HttpDrain(httpServer);
  const outage = new DatabaseOutage({
    sequelize,
    logger: logger.child({ component: 'database' }),
    options: { probeTimeoutMs: configured.database.readyTimeoutMs, quietMs: 2 * configured.database.timeoutMs },
  });
  const reportError = serverErrorReporter(logger, outage);

  const storage = await openStorage(configured, { ...basics, seed: deps.seed });
  const config = storage.config;
  const render = createRenderer(config.pages);
  const parts = await buildProvider(config, storage, { ...basics, render, reportError });
  const { provider, signingKeys } = parts;
  await warnUnusableClients(storage.clientDirectory, provider, logger);
  const services = await createServices(config, storage, parts, basics);
  const { sessions, delivery, sweeper } = services;
  startBackgroundWork(config, services, parts);
  await endAccessOfUnlistedUsers(storage.disabledUsers, services.offboarding, logger);

  const metrics = new GatehouseMetrics(events, sessions, Database.of(sequelize));
  const app = buildApp(
    config,
    { storage, provider, apis: parts.apis, services, metrics },
    { ...basics, render, outage, reportError, draining: () => httpDrain.draining },
  );
  const handle = app.callback();
  httpServer.on('request', (req, res) => withRequestMemo(() => handle(req, res), res));

  let closing: Promise<ShutdownResult> | undefined;
  let metricsPort: number | undefined;
  return {
    config,
    app,
    provider,
    sequelize,
    sessionStore: storage.sessionStore,
    events,
    logger,
    sessions,
    backchannel: delivery,
    sweeper,
    metrics,
    accounts: storage.accounts,
    throttle: services.throttle,
    clients: storage.clientDirectory,
    signingKeys,
    async listen() {
      // All or nothing: a listener that cannot bind (a taken metrics port) leaves none bound by this call.
      const bindsMain = !httpServer.listening;
      if (bindsMain) {
        await bind(httpServer, config.port, config.host).catch((error) =>
          Promise.reject(listenError('port', config.host, config.port, error)),
        );
      }
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
        services.throttle.close();
        parts.devicePages.throttle.close();
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
            await (storage.sessionStore as { close?: () => Promise<void> } | undefined)?.close?.();
            await sequelize.close();
          })(),
          Math.max(left(), 1000),
        );
        const result = { drained, cut, backgroundCut, ms: Math.round(performance.now() - started) };
        if (cut || backgroundCut) {
          logger.warn({ event: 'shutdown', ...result }, 'shutdown deadline reached: work in flight was cut');
        } else {
          logger.info({ event: 'shutdown', ...result }, 'shutdown complete: every request in flight was answered');
        }
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
    return await Promise.race([
      work.then(
        () => true,
        () => true,
      ),
      timedOut,
    ]);
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
