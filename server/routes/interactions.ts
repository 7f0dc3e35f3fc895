/**
 * The login and consent pages oidc-provider sends the browser to (`/interaction/:uid`). The `_interaction` cookie is
 * path-scoped to these URLs, and every form carries a CSRF token bound to the interaction.
 */
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import type { AccountDirectory } from '../provider/accounts.js';
import type { ClientSettings } from '../provider/clients.js';
import type { CsrfTokens } from '../http/csrf.js';
import { HttpError } from '../http/errors.js';
import type { PageRenderer } from '../http/render.js';
import type { Clock } from '../../stores/session-store.js';

export const LOGIN_FAILED_MESSAGE = 'Invalid username or password.';

const SCOPE_DESCRIPTIONS: Record<string, string> = {
  openid: 'Sign you in',
  profile: 'Your name and profile',
  email: 'Your email address',
  address: 'Your postal address',
  phone: 'Your phone number',
  offline_access: 'Stay connected while you are away',
};

export interface InteractionRouteDeps {
  provider: Provider;
  accounts: AccountDirectory;
  clients: ClientSettings;
  csrf: CsrfTokens;
  render: PageRenderer;
  clock: Clock;
}

export function interactionRoutes({ provider, accounts, clients, csrf, render, clock }: InteractionRouteDeps): Router {
  const router = new Router({ prefix: '/interaction/:uid' });
  const form = bodyParser({ enableTypes: ['form'], formLimit: '16kb' });

  async function details(ctx: Context) {
    const interaction = await provider.interactionDetails(ctx.req, ctx.res);
    if (interaction.uid !== ctx.params.uid) throw new HttpError(400, 'invalid_request', 'interaction mismatch');
    return interaction;
  }

  function clientName(client: { clientName?: string; clientId: string } | undefined, fallback: string) {
    return client?.clientName ?? client?.clientId ?? fallback;
  }

  function requireCsrf(ctx: Context, uid: string) {
    const token = (ctx.request.body as Record<string, unknown> | undefined)?.csrf;
    if (!csrf.verify(uid, token)) throw new HttpError(403, 'invalid_csrf', 'the form has expired or was not sent by this site; go back and try again');
  }

  async function finishConsent(ctx: Context, interaction: Awaited<ReturnType<typeof details>>) {
    const { prompt, params, session } = interaction;
    if (!session) throw new HttpError(400, 'invalid_request', 'no session for consent');
    let grant = interaction.grantId ? await provider.Grant.find(interaction.grantId) : undefined;
    grant ??= new provider.Grant({ accountId: session.accountId, clientId: String(params.client_id) });
    const missing = prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();
    const result: InteractionResults = { consent: interaction.grantId ? {} : { grantId } };
    await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: true });
  }

  router.get('/', async (ctx) => {
    const interaction = await details(ctx);
    const client = await provider.Client.find(String(interaction.params.client_id));
    const uid = interaction.uid;
    const common = { csrf: csrf.issue(uid), abortAction: `/interaction/${uid}/abort`, clientName: clientName(client, String(interaction.params.client_id)) };
    if (interaction.prompt.name === 'login') {
      render(ctx, 'login', { ...common, action: `/interaction/${uid}/login`, username: String(interaction.params.login_hint ?? ''), error: undefined });
      return;
    }
    if (interaction.prompt.name === 'consent') {
      if (clients.skipConsent(String(interaction.params.client_id))) {
        await finishConsent(ctx, interaction);
        ctx.respond = false;
        return;
      }
      const missing = interaction.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
      const account = accounts.bySubject(interaction.session?.accountId ?? '');
      render(ctx, 'consent', {
        ...common,
        action: `/interaction/${uid}/confirm`,
        accountName: (account?.claims.name as string | undefined) ?? account?.username ?? interaction.session?.accountId,
        scopes: (missing.missingOIDCScope ?? []).map((name) => ({ name, description: SCOPE_DESCRIPTIONS[name] ?? name })),
        claims: (missing.missingOIDCClaims ?? []).filter((claim) => !['sub', 'sid', 'auth_time', 'acr', 'amr', 'iss'].includes(claim)),
      });
      return;
    }
    throw new HttpError(400, 'invalid_request', `unsupported interaction prompt ${interaction.prompt.name}`);
  });

  router.post('/login', form, async (ctx) => {
    const interaction = await details(ctx);
    if (interaction.prompt.name !== 'login') throw new HttpError(400, 'invalid_request', 'this interaction does not ask for a login');
    requireCsrf(ctx, interaction.uid);
    const body = ctx.request.body as Record<string, unknown>;
    const username = typeof body.username === 'string' ? body.username.slice(0, 255) : '';
    const password = typeof body.password === 'string' ? body.password.slice(0, 1024) : '';
    const account = username && password ? await accounts.authenticate(username, password) : undefined;
    if (!account) {
      const client = await provider.Client.find(String(interaction.params.client_id));
      ctx.status = 200;
      render(ctx, 'login', {
        csrf: csrf.issue(interaction.uid),
        action: `/interaction/${interaction.uid}/login`,
        abortAction: `/interaction/${interaction.uid}/abort`,
        clientName: clientName(client, String(interaction.params.client_id)),
        username,
        error: LOGIN_FAILED_MESSAGE,
      });
      return;
    }
    const result: InteractionResults = {
      login: { accountId: account.subject, ts: Math.floor(clock.now().getTime() / 1000), amr: ['pwd'] },
    };
    await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    ctx.respond = false;
  });

  router.post('/confirm', form, async (ctx) => {
    const interaction = await details(ctx);
    if (interaction.prompt.name !== 'consent') throw new HttpError(400, 'invalid_request', 'this interaction does not ask for consent');
    requireCsrf(ctx, interaction.uid);
    await finishConsent(ctx, interaction);
    ctx.respond = false;
  });

  router.post('/abort', form, async (ctx) => {
    const interaction = await details(ctx);
    requireCsrf(ctx, interaction.uid);
    await provider.interactionFinished(
      ctx.req,
      ctx.res,
      { error: 'access_denied', error_description: 'End-User aborted interaction' },
      { mergeWithLastSubmission: false },
    );
    ctx.respond = false;
  });

  return router;
}
