/**
 * Maps a validated Gatehouse configuration onto oidc-provider's configuration object. Every provider option Gatehouse
 * relies on is set here explicitly (no devInteractions, every ttl, every feature), so the provider prints no
 * WARNING/NOTICE lines.
 */
import { interactionPolicy, type Configuration, type ErrorOut, type KoaContextWithOIDC } from 'oidc-provider';
import type { GatehouseConfig } from '../../config/schema.js';
import type { Clock } from '../../stores/session-store.js';
import type { AccountDirectory } from './accounts.js';
import { displayNameOf, SCOPE_CLAIMS } from './accounts.js';
import { toProviderClients, type ClientSettings } from './clients.js';
import { expiresWithSession } from '../sessions/coordination.js';
import type { KeyMaterial } from './keys.js';
import type { PageRenderer } from '../http/render.js';
import { sessionTtl } from '../sessions/lifetime.js';
import { GATEHOUSE_SCOPES } from '../../config/load.js';
import type { ApiRegistry } from './apis.js';
import { DEVICE_PATH, type devicePageSources } from '../routes/device-pages.js';

export { GATEHOUSE_SCOPES };

export interface ProviderConfigurationInput {
  config: GatehouseConfig;
  keys: KeyMaterial;
  accounts: AccountDirectory;
  adapter: NonNullable<Configuration['adapter']>;
  render: PageRenderer;
  clock: Clock;
  clients: ClientSettings;
  /** The configured APIs (resource servers). */
  apis: ApiRegistry;
  /** The DPoP nonce secret (32 bytes, the same on every instance); needed when dpop.enabled. */
  dpopNonceSecret?: Buffer;
  /** The device flow's pages (server/routes/device-pages.ts). */
  devicePages: ReturnType<typeof devicePageSources>;
  /** A live grant (remembered consent) of this account for this client, from any earlier session. */
  findAccountGrant(accountId: string, clientId: string): Promise<string | undefined>;
}

export function providerConfiguration(input: ProviderConfigurationInput): Configuration {
  const { config, keys, accounts, adapter, render, clock, clients, apis, findAccountGrant } = input;
  const accountName = async (accountId: string | undefined) =>
    displayNameOf(accountId ? await accounts.find(accountId) : undefined, accountId ?? '');
  return {
    adapter,
    // Only the reserved console client is static; every other client comes from the directory (the Client adapter).
    clients: toProviderClients(config.clients),
    jwks: keys.jwks as Configuration['jwks'],
    cookies: {
      keys: keys.cookieKeys,
      long: { signed: true, sameSite: 'lax', httpOnly: true },
      short: { signed: true, sameSite: 'lax', httpOnly: true },
    },
    findAccount: accounts.findAccount,
    claims: Object.fromEntries(
      Object.entries(SCOPE_CLAIMS).map(([scope, claims]) => [scope, scope === 'openid' ? ['sub'] : claims]),
    ),
    scopes: GATEHOUSE_SCOPES,
    // Scope claims in ID tokens too (idToken.scopeClaims), or only in userinfo (the provider's conformant default).
    conformIdTokenClaims: !config.idToken.scopeClaims,
    responseTypes: ['code', 'none'],
    pkce: { required: (_ctx, client) => client.clientAuthMethod === 'none' },
    rotateRefreshToken: true,
    expiresWithSession: expiresWithSession(clients),
    // Consent is remembered per account and client, not per session: a new session (after a logout that kept the
    // grant, an expiry, or an administrator's revocation with revokeConsents=false) does not ask again. The new
    // session gets its own copy of the remembered grant, so its tokens never share a grant with another session's
    // (ending one session must not revoke the tokens of another).
    async loadExistingGrant(ctx) {
      const { Grant } = ctx.oidc.provider;
      const clientId = ctx.oidc.client!.clientId;
      const accountId = ctx.oidc.session!.accountId;
      const own =
        (ctx.oidc.result?.consent as { grantId?: string } | undefined)?.grantId ??
        ctx.oidc.session!.grantIdFor(clientId);
      if (own) return Grant.find(own);
      const rememberedId = accountId ? await findAccountGrant(accountId, clientId) : undefined;
      const remembered = rememberedId ? await Grant.find(rememberedId) : undefined;
      if (!remembered || !accountId) return undefined;
      const copy = new Grant({ accountId, clientId });
      const scope = remembered.getOIDCScope();
      if (scope) copy.addOIDCScope(scope);
      const claims = remembered.getOIDCClaims();
      if (claims.length) copy.addOIDCClaims(claims);
      for (const resource of Object.keys(remembered.resources ?? {})) {
        const resourceScope = remembered.getResourceScope(resource);
        if (resourceScope) copy.addResourceScope(resource, resourceScope);
      }
      await copy.save();
      return copy;
    },
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
      policy: interactionPolicyWithAccountCheck(),
    },
    routes: {
      code_verification: DEVICE_PATH,
      device_authorization: `${DEVICE_PATH}/auth`,
      pushed_authorization_request: '/request',
    },
    features: {
      devInteractions: { enabled: false },
      // A client may introspect its own tokens; an API (its introspectionClientId) the tokens whose audience it is,
      // while the client they were issued to is known (the provider itself does not check: a disabled client's reference
      // tokens would stay active at the API).
      introspection: {
        enabled: true,
        allowedPolicy: async (ctx, client, token) =>
          apis.mayIntrospect(client.clientId, token as Parameters<ApiRegistry['mayIntrospect']>[1]) &&
          (token.clientId === client.clientId || Boolean(await ctx.oidc.provider.Client.find(token.clientId!))),
      },
      // A client may only revoke its own tokens; the revocation endpoint answers 200 either way (RFC 7009).
      revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      userinfo: { enabled: true },
      clientCredentials: { enabled: true },
      backchannelLogout: { enabled: true },
      resourceIndicators: apis.resourceIndicators(),
      deviceFlow: {
        enabled: config.deviceFlow.enabled,
        charset: config.deviceFlow.userCodeCharset,
        mask: config.deviceFlow.userCodeMask,
        ...input.devicePages,
      },
      pushedAuthorizationRequests: {
        enabled: config.pushedAuthorizationRequests.enabled,
        requirePushedAuthorizationRequests: config.pushedAuthorizationRequests.required,
        allowUnregisteredRedirectUris: false,
      },
      dPoP: config.dpop.enabled
        ? {
            enabled: true,
            nonceSecret: requireSecret(input.dpopNonceSecret),
            requireNonce: () => config.dpop.requireNonce,
            allowReplay: false,
          }
        : { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx: KoaContextWithOIDC, form: string) {
          render(ctx, 'logout', {
            form,
            host: ctx.host,
            clientName: ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId,
            accountName: await accountName(ctx.oidc.session?.accountId),
          });
        },
        async postLogoutSuccessSource(ctx: KoaContextWithOIDC) {
          render(ctx, 'logged-out', { clientName: ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId });
        },
      },
    },
    ttl: {
      // An API's own lifetime (apis[].accessTokenTtl) wins for its tokens.
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? config.ttl.accessToken,
      AuthorizationCode: config.ttl.authorizationCode,
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? config.ttl.clientCredentials,
      IdToken: config.ttl.idToken,
      Interaction: config.ttl.interaction,
      Grant: config.ttl.grant,
      RefreshToken: config.ttl.refreshToken,
      Session: (_ctx, session) => sessionTtl(session, config.serverSideSessions, clock),
      DeviceCode: config.ttl.deviceCode,
      BackchannelAuthenticationRequest: 600,
    },
    async renderError(ctx: KoaContextWithOIDC, out: ErrorOut) {
      ctx.status = Math.max(ctx.status, 400);
      render(ctx, 'error', {
        error: String(out.error ?? 'server_error'),
        description: out.error_description ? String(out.error_description) : undefined,
        requestId: ctx.state.requestId,
      });
    },
    // Outbound requests (back-channel logout): the provider's SSRF guard refuses loopback and private addresses.
    // `backchannelLogout.allowPrivateNetworks` lifts it for relying parties running on this machine or LAN.
    fetch: config.backchannelLogout.allowPrivateNetworks
      ? (url, options) => {
          const { dispatcher: _guard, ...rest } = options as RequestInit & { dispatcher?: unknown };
          return globalThis.fetch(url, rest);
        }
      : (url, options) => globalThis.fetch(url, options),
  };
}

function requireSecret(secret: Buffer | undefined): Buffer {
  if (secret?.length !== 32) throw new Error('dpop.enabled needs a 32-byte nonce secret (loadDpopNonceSecret)');
  return secret;
}

/**
 * The provider's default prompts, with one more login check: a session whose account is gone (the user was removed
 * or disabled, so findAccount finds nobody) signs no one in. Without it the provider would go on to consent with no
 * account and fail with a server error; with it the browser sees the login page (`login_required` for prompt=none).
 */
function interactionPolicyWithAccountCheck() {
  const policy = interactionPolicy.base();
  const login = policy.get('login')!;
  const accountGone = new interactionPolicy.Check(
    'account_unavailable',
    'End-User authentication is required',
    'login_required',
    (ctx) =>
      ctx.oidc.session?.accountId && !ctx.oidc.account
        ? interactionPolicy.Check.REQUEST_PROMPT
        : interactionPolicy.Check.NO_NEED_TO_PROMPT,
  );
  login.checks.splice(login.checks.findIndex((check) => check.reason === 'no_session') + 1, 0, accountGone);
  return policy;
}
