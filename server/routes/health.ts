/**
 * Liveness (`/healthz`: the process answers) and readiness (`/readyz`: the database answers within its own short bound,
 * `database.readyTimeoutMs`, and the server is not shutting down). A probe never waits for the database's longer
 * bound: a silent database makes `/readyz` answer 503 within about a second. From the first shutdown signal on it
 * answers 503 at once, so load balancers stop sending before the listener closes.
 */
import Router from '@koa/router';
import type { Sequelize } from 'sequelize';
import { pingDatabase } from '../../stores/sequelize/connection.js';
import { isDatabaseUnavailable } from '../../stores/sequelize/errors.js';
import type { DatabaseOutage } from '../database-outage.js';

export interface HealthDeps {
  sequelize: Sequelize;
  readyTimeoutMs: number;
  /** True once shutdown has begun. */
  draining(): boolean;
  outage: DatabaseOutage;
}

export function healthRoutes({ sequelize, readyTimeoutMs, draining, outage }: HealthDeps): Router {
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    if (draining()) {
      ctx.status = 503;
      ctx.body = { status: 'shutting_down' };
      return;
    }
    try {
      await pingDatabase(sequelize, readyTimeoutMs);
      outage.succeeded();
      ctx.body = { status: 'ok', database: 'ok' };
    } catch (error) {
      if (isDatabaseUnavailable(error)) outage.failed(error, 'readiness');
      ctx.status = 503;
      ctx.body = { status: 'unavailable', database: 'unreachable' };
    }
  });
  return router;
}
