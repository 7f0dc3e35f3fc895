/**
 * createServer's routes step: the Koa app that hosts everything. Middleware in this order: Retry-After on 503s,
 * metrics, the request log, input hygiene, security headers, the error pages, the metrics endpoint (when it shares the
 * main port), then Gatehouse's routers (health, home, interactions, admin API, admin pages, account pages), and last
 * the provider, which answers whatever no router did. Requests outside the routers' first path segments (every
 * provider endpoint) skip the routers altogether (server/http/router-gate.ts).
 */
import type { EventEmitter } from 'node:events';
import Koa from 'koa';
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import type { Sequelize } from 'sequelize';
import type { GatehouseConfig } from '../../config/schema.js';
import type { Clock } from '../../stores/session-store.js';
import type { DatabaseOutage } from '../database-outage.js';
import { CsrfTokens } from '../http/csrf.js';
import { errorHandler, retryAfterOnUnavailable } from '../http/errors.js';
import { rejectControlCharacters } from '../http/input-hygiene.js';
import type { PageRenderer } from '../http/render.js';
import { requestLog } from '../http/request-log.js';
import { gatedRouters } from '../http/router-gate.js';
import { securityHeaders } from '../http/security-headers.js';
import type { GatehouseMetrics } from '../metrics.js';
import type { ApiRegistry } from '../provider/apis.js';
import { accountPageRoutes } from '../routes/account-pages.js';
import { adminApiRoutes } from '../routes/admin-api.js';
import { adminPageRoutes } from '../routes/admin-pages.js';
import type { RouteDeps } from '../routes/deps.js';
import { healthRoutes } from '../routes/health.js';
import { homeRoutes } from '../routes/home.js';
import { interactionRoutes } from '../routes/interactions.js';
import type { ServerErrorReporter } from './server-errors.js';
import type { Services } from './services.js';
import type { Storage } from './storage.js';

export function buildApp(
  config: GatehouseConfig,
  parts: { storage: Storage; provider: Provider; apis: ApiRegistry; services: Services; metrics: GatehouseMetrics },
  deps: {
    render: PageRenderer;
    clock: Clock;
    sequelize: Sequelize;
    logger: Logger;
    events: EventEmitter;
    outage: DatabaseOutage;
    reportError: ServerErrorReporter;
    /** Whether the server is draining (then `/readyz` answers 503). */
    draining: () => boolean;
  },
): Koa {
  const { storage, provider, apis, services, metrics } = parts;
  const { render, clock, logger, outage } = deps;
  const { accounts, clients, keys } = storage;
  const app = new Koa();
  app.proxy = config.proxy;
  app.maxIpsCount = config.proxyHops;
  app.on('error', (error: Error, ctx?: { path?: string }) => deps.reportError(error, ctx?.path, 'unhandled error'));
  if (config.issuer.startsWith('https:') && !config.proxy) {
    // Gatehouse serves plain HTTP, so an https issuer means a TLS-terminating proxy in front of it; without trusting
    // its X-Forwarded-Proto the cookies are set without Secure (test/tls-proxy.test.ts).
    logger.warn(
      { issuer: config.issuer },
      'the issuer is https but proxy is false: cookies will not be marked Secure; ' +
        'set proxy: true behind a TLS-terminating proxy',
    );
  }
  app.keys = keys.cookieKeys;
  const csrf = new CsrfTokens(keys.cookieKeys[0]);
  app.use(retryAfterOnUnavailable());
  app.use(metrics.middleware());
  app.use(requestLog(logger));
  app.use(rejectControlCharacters());
  app.use(securityHeaders({ https: config.issuer.startsWith('https:') }));
  app.use(errorHandler(logger, render, outage));
  if (config.metrics.enabled && config.metrics.token) app.use(metrics.protectedEndpoint(config.metrics.token));
  const { sessions, delivery, offboarding, throttle } = services;
  const routeDeps: RouteDeps = {
    config,
    provider,
    sessions,
    backchannel: delivery,
    accounts,
    offboarding,
    clients,
    clientDirectory: storage.clientDirectory,
    apis,
    csrf,
    render,
    clock,
    logger,
    events: deps.events,
    throttle,
  };
  const routers = [
    healthRoutes({
      sequelize: deps.sequelize,
      readyTimeoutMs: config.database.readyTimeoutMs,
      draining: deps.draining,
      outage,
    }),
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
        if (await accounts.upgradeHash(user, password)) {
          const detail = { event: 'password.rehashed', subject: user.subject };
          logger.info(detail, 'password hash upgraded to the configured cost');
        }
      },
    }),
    adminApiRoutes(routeDeps),
    adminPageRoutes(routeDeps),
    accountPageRoutes(routeDeps),
  ];
  app.use(gatedRouters(routers));
  const providerCallback = provider.callback();
  app.use(async (ctx) => {
    ctx.respond = false;
    await providerCallback(ctx.req, ctx.res);
  });
  return app;
}
