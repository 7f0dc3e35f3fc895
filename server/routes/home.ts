/** The home page: issuer, discovery link and — in the demo configuration only — the demo accounts and clients. */
import Router from '@koa/router';
import type { GatehouseConfig } from '../../config/schema.js';
import { describeClient } from '../client-summary.js';
import type { PageRenderer } from '../http/render.js';

export function homeRoutes(config: GatehouseConfig, render: PageRenderer): Router {
  const router = new Router();
  const demo = config.pages.showDemoAccounts;
  const demoAccounts = demo
    ? config.accounts.map((account) => ({
        username: account.username ?? account.subject,
        password: account.demoPassword ?? '(not shown)',
        name: String(account.claims.name ?? ''),
      }))
    : [];
  const demoClients = demo
    ? config.clients.map((client) => ({
        clientId: client.client_id,
        type: describeClient(client),
        redirectUris: client.redirect_uris,
      }))
    : [];
  const demoApis = demo
    ? config.apis.map((api) => ({
        identifier: api.identifier,
        name: api.name ?? '',
        tokenFormat: api.tokenFormat,
        scopes: api.scopes.map((scope) => scope.name).join(' '),
      }))
    : [];
  router.get('/', (ctx) => {
    render(ctx, 'home', {
      issuer: config.issuer,
      discoveryUrl: `${config.issuer}/.well-known/openid-configuration`,
      serverSideSessions: config.serverSideSessions.enabled,
      demoAccounts,
      demoClients,
      demoApis,
    });
  });
  return router;
}
