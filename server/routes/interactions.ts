/**
 * The login and consent pages oidc-provider sends the browser to (`/interaction/:uid`). The `_interaction` cookie is
 * path-scoped to these URLs, and every form carries a CSRF token bound to the interaction.
 *
 * Development and testing modes add two conveniences, never available in production mode: one-click buttons that sign
 * in as an enabled user of the directory (a POST with the CSRF token, like the password form), and `login.autoLogin`,
 * which finishes the login prompt as the configured subject without showing a page (headless tests).
 */
import { formParser } from '../http/input-hygiene.js';
import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import type { Mode } from '../../config/schema.js';
import { displayNameOf, type AccountDirectory } from '../provider/accounts.js';
import type { ApiRegistry } from '../provider/apis.js';
import type { ClientSettings } from '../provider/clients.js';
import type { CsrfTokens } from '../http/csrf.js';
import { HttpError } from '../http/errors.js';
import type { PageRenderer } from '../http/render.js';
import type { Clock } from '../../stores/session-store.js';
import type { LoginThrottle } from '../provider/login-throttle.js';
import type { UserRecord } from '../provider/accounts.js';
import { consentView, type ConsentApiRequest } from './consent-view.js';
import { readDevices, withDevice, withoutDevice, writeDevices } from './device-cookie.js';

export const LOGIN_FAILED_MESSAGE = 'Invalid username or password.';
/** At most this many one-click buttons on the login page. */
export const ONE_CLICK_LIMIT = 25;

export interface InteractionRouteDeps {
  provider: Provider;
  accounts: AccountDirectory;
  clients: ClientSettings;
  /** The configured APIs: their names and scope descriptions on the consent page. */
  apis: ApiRegistry;
  csrf: CsrfTokens;
  render: PageRenderer;
  clock: Clock;
  mode: Mode;
  /** Subject signed in without a page (development and testing modes only; refused at start otherwise). */
  autoLogin?: string;
  throttle: LoginThrottle;
  /** Re-hash a password whose hash was made with other parameters than the configured ones (after a good sign-in). */
  upgradePasswordHash(user: UserRecord, password: string): Promise<void>;
}

export function interactionRoutes({
  provider,
  accounts,
  clients,
  apis,
  csrf,
  render,
  clock,
  mode,
  autoLogin,
  throttle,
  upgradePasswordHash,
}: InteractionRouteDeps): Router {
  const conveniences = mode !== 'production';
  const router = new Router({ prefix: '/interaction/:uid' });
  const form = formParser();

  type Interaction = Awaited<ReturnType<typeof details>>;

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
    if (!csrf.verify(uid, token))
      throw new HttpError(
        403,
        'invalid_csrf',
        'the form has expired or was not sent by this site; go back and try again',
      );
  }

  async function finishConsent(ctx: Context, interaction: Awaited<ReturnType<typeof details>>) {
    const { prompt, params, session } = interaction;
    if (!session) throw new HttpError(400, 'invalid_request', 'no session for consent');
    let grant = interaction.grantId ? await provider.Grant.find(interaction.grantId) : undefined;
    grant ??= new provider.Grant({ accountId: session.accountId, clientId: String(params.client_id) });
    const missing = prompt.details as {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {}))
      grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();
    const result: InteractionResults = { consent: interaction.grantId ? {} : { grantId } };
    await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: true });
  }

  async function renderLogin(ctx: Context, interaction: Interaction, page: { username: string; error?: string }) {
    const uid = interaction.uid;
    const client = await provider.Client.find(String(interaction.params.client_id));
    const users = conveniences ? await accounts.listEnabled(ONE_CLICK_LIMIT) : [];
    render(ctx, 'login', {
      csrf: csrf.issue(uid),
      action: `/interaction/${uid}/login`,
      abortAction: `/interaction/${uid}/abort`,
      oneClickAction: `/interaction/${uid}/one-click`,
      clientName: clientName(client, String(interaction.params.client_id)),
      mode,
      users: users.map((user) => ({ subject: user.subject, label: displayNameOf(user) })),
      ...page,
    });
  }

  async function finishLogin(ctx: Context, subject: string, amr?: string[]) {
    const result: InteractionResults = {
      login: { accountId: subject, ts: Math.floor(clock.now().getTime() / 1000), ...(amr ? { amr } : {}) },
    };
    await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    ctx.respond = false;
  }

  router.get('/', async (ctx) => {
    const interaction = await details(ctx);
    const client = await provider.Client.find(String(interaction.params.client_id));
    const uid = interaction.uid;
    const common = {
      csrf: csrf.issue(uid),
      abortAction: `/interaction/${uid}/abort`,
      clientName: clientName(client, String(interaction.params.client_id)),
    };
    if (interaction.prompt.name === 'login') {
      if (conveniences && autoLogin) {
        if (await accounts.find(autoLogin)) return finishLogin(ctx, autoLogin);
        return renderLogin(ctx, interaction, {
          username: '',
          error: `login.autoLogin: there is no enabled user with subject "${autoLogin}".`,
        });
      }
      return renderLogin(ctx, interaction, { username: String(interaction.params.login_hint ?? '') });
    }
    if (interaction.prompt.name === 'consent') {
      if (clients.skipConsent(String(interaction.params.client_id))) {
        await finishConsent(ctx, interaction);
        ctx.respond = false;
        return;
      }
      const missing = interaction.prompt.details as {
        missingOIDCScope?: string[];
        missingOIDCClaims?: string[];
        missingResourceScopes?: Record<string, string[]>;
      };
      const accountId = interaction.session?.accountId ?? '';
      const grant = interaction.grantId ? await provider.Grant.find(interaction.grantId) : undefined;
      render(ctx, 'consent', {
        ...common,
        action: `/interaction/${uid}/confirm`,
        accountName: displayNameOf(await accounts.find(accountId), accountId),
        ...consentView({
          scope: interaction.params.scope,
          claims: interaction.params.claims,
          missingOIDCScope: missing.missingOIDCScope,
          missingOIDCClaims: missing.missingOIDCClaims,
          grantedScopes: new Set(grant?.getOIDCScope().split(' ') ?? []),
          grantedClaims: new Set(grant?.getOIDCClaims() ?? []),
          apis: apiConsent(apis, interaction.params.scope, missing.missingResourceScopes ?? {}, grant),
        }),
      });
      return;
    }
    throw new HttpError(400, 'invalid_request', `unsupported interaction prompt ${interaction.prompt.name}`);
  });

  router.post('/login', form, async (ctx) => {
    const interaction = await details(ctx);
    if (interaction.prompt.name !== 'login')
      throw new HttpError(400, 'invalid_request', 'this interaction does not ask for a login');
    requireCsrf(ctx, interaction.uid);
    const body = ctx.request.body as Record<string, unknown>;
    // Control characters can never be part of a username (and a NUL would cut an SQLite statement short).
    const username =
      typeof body.username === 'string' ? body.username.replace(/[\u0000-\u001f\u007f]/g, '').slice(0, 255) : '';
    const password = typeof body.password === 'string' ? body.password.slice(0, 1024) : '';
    if (!username.trim()) {
      ctx.status = 200;
      return renderLogin(ctx, interaction, { username, error: LOGIN_FAILED_MESSAGE });
    }
    // Trusted when this browser signed in with this name before (device cookie), else untrusted. Every answer below
    // is the same for names that exist and names that do not.
    const devices = readDevices(ctx);
    const attempt = await throttle.begin(username, ctx.ip, devices);
    const forgetRevoked = () =>
      attempt.revokedDevice &&
      writeDevices(ctx, withoutDevice(devices, attempt.revokedDevice), throttle.deviceLifetime);
    if (attempt.blockedUntil) {
      forgetRevoked();
      const seconds = Math.max(1, Math.ceil((attempt.blockedUntil.getTime() - clock.now().getTime()) / 1000));
      const wait =
        seconds < 60
          ? `${seconds} second${seconds > 1 ? 's' : ''}`
          : `${Math.ceil(seconds / 60)} minute${seconds > 60 ? 's' : ''}`;
      ctx.status = 429;
      ctx.set('Retry-After', String(seconds));
      return renderLogin(ctx, interaction, {
        username,
        error: `Too many failed sign-ins. Try again in ${wait}, or sign in from a browser you have used before.`,
      });
    }
    const checking = password
      ? accounts.checkPassword(username, password)
      : Promise.resolve({ user: undefined, ok: false });
    const { user, ok } = await checking.catch((error: unknown) => {
      throttle.release(attempt); // the check failed (the database, say): free the attempt's place at the gate
      throw error;
    });
    if (!ok || !user) {
      await throttle.failed(attempt, user?.subject);
      forgetRevoked();
      ctx.status = 200;
      return renderLogin(ctx, interaction, { username, error: LOGIN_FAILED_MESSAGE });
    }
    await throttle.succeeded(attempt);
    writeDevices(ctx, withDevice(devices, throttle.issueDevice(username)), throttle.deviceLifetime);
    await upgradePasswordHash(user, password);
    await finishLogin(ctx, user.subject, ['pwd']);
  });

  // One-click sign-in as an enabled user: development and testing modes only (no such route in production).
  if (conveniences) {
    router.post('/one-click', form, async (ctx) => {
      const interaction = await details(ctx);
      if (interaction.prompt.name !== 'login')
        throw new HttpError(400, 'invalid_request', 'this interaction does not ask for a login');
      requireCsrf(ctx, interaction.uid);
      const subject = (ctx.request.body as Record<string, unknown>).subject;
      const user = typeof subject === 'string' && subject.length <= 255 ? await accounts.find(subject) : undefined;
      if (!user) {
        ctx.status = 200;
        return renderLogin(ctx, interaction, { username: '', error: 'There is no enabled user with that subject.' });
      }
      await finishLogin(ctx, user.subject);
    });
  }

  router.post('/confirm', form, async (ctx) => {
    const interaction = await details(ctx);
    if (interaction.prompt.name !== 'consent')
      throw new HttpError(400, 'invalid_request', 'this interaction does not ask for consent');
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

/**
 * The APIs a consent is asked for: those whose scopes the request names and those the prompt says are missing, each
 * with the scopes missing from the grant and those it covers already (resource indicators compared as the registry
 * does, so `https://api` and `https://api/` are one API).
 */
function apiConsent(
  apis: ApiRegistry,
  scope: unknown,
  missingResourceScopes: Record<string, string[]>,
  grant: { resources?: Record<string, unknown>; getResourceScope(resource: string): string } | undefined,
): ConsentApiRequest[] {
  const byIdentifier = new Map<string, ConsentApiRequest & { missing: Set<string>; granted: Set<string> }>();
  const entry = (resource: string) => {
    const api = apis.find(resource);
    const identifier = api?.identifier ?? resource;
    let found = byIdentifier.get(identifier);
    if (!found) {
      const descriptions = Object.fromEntries(
        (api?.scopes ?? []).map((item) => [item.name, item.description ?? item.name]),
      );
      found = { identifier, name: api?.name ?? identifier, descriptions, missing: new Set(), granted: new Set() };
      byIdentifier.set(identifier, found);
    }
    return found;
  };
  for (const identifier of apis.namedBy(scope)) entry(identifier);
  for (const [resource, scopes] of Object.entries(missingResourceScopes))
    for (const name of scopes) entry(resource).missing.add(name);
  // What the grant covers already, for the APIs asked for only.
  for (const resource of Object.keys(grant?.resources ?? {})) {
    const identifier = apis.find(resource)?.identifier;
    if (!identifier || !byIdentifier.has(identifier)) continue;
    for (const name of grant!.getResourceScope(resource).split(' ').filter(Boolean)) entry(resource).granted.add(name);
  }
  return [...byIdentifier.values()];
}
