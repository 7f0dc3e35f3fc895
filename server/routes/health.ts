/** Liveness (`/healthz`: the process answers) and readiness (`/readyz`: the database answers). */
import Router from '@koa/router';
import type { Sequelize } from 'sequelize';

export function healthRoutes(sequelize: Sequelize): Router {
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    try {
      await sequelize.query('SELECT 1', { raw: true });
      ctx.body = { status: 'ok', database: 'ok' };
    } catch {
      ctx.status = 503;
      ctx.body = { status: 'unavailable', database: 'unreachable' };
    }
  });
  return router;
}
