/**
 * APIs (resource servers) from the configuration (`apis[]`), on oidc-provider's resource indicators (RFC 8707):
 *
 * - Which API a request is for: the `resource` it names, or else the API whose scopes it asks for (as in Duende
 *   IdentityServer, where API scopes imply their API). A request naming no API scope gets what it always got: an
 *   opaque token for the userinfo endpoint.
 * - What its tokens are: the API's identifier as `aud`, only the API's scopes, its format (an RFC 9068 JWT signed with
 *   the published keys, or an opaque reference token) and lifetime. A client outside an API's `allowedClients` gets
 *   `invalid_target`.
 * - A code exchange or refresh without `resource` keeps the granted API (useGrantedResource), so refresh keeps the
 *   audience. The ID token then carries the profile claims itself, since the access token cannot call userinfo.
 * - Who may introspect a token: the client it was issued to, and the API it is for (its `introspectionClientId`).
 */
import { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { ApiConfig } from '../../config/schema.js';

type ResourceIndicators = NonNullable<NonNullable<Configuration['features']>['resourceIndicators']>;

/** What a token looks like to the introspection policy. */
export interface IntrospectedToken {
  kind: string;
  clientId?: string;
  aud?: string | string[];
}

/** How an API's tokens end, for the admin views and the docs. */
export type TokenLifetime = 'revoked-with-session' | 'revoked-on-revocation' | 'until-expiry';

export interface ApiTokenDescription {
  identifier: string;
  name: string;
  tokenFormat: ApiConfig['tokenFormat'];
  /** Access-token lifetime in seconds. */
  ttl: number;
  lifetime: TokenLifetime;
}

/** The comparison key of a resource indicator: its URL form, as the provider compares them (`https://a` = `https://a/`). */
function key(identifier: string): string {
  return URL.canParse(identifier) ? new URL(identifier).href : identifier;
}

export class ApiRegistry {
  readonly #byKey = new Map<string, ApiConfig>();
  readonly #byScope = new Map<string, ApiConfig>();
  readonly #ttl: { accessToken: number; clientCredentials: number };

  constructor(apis: readonly ApiConfig[], ttl: { accessToken: number; clientCredentials: number }) {
    for (const api of apis) {
      this.#byKey.set(key(api.identifier), api);
      for (const scope of api.scopes) this.#byScope.set(scope.name, api);
    }
    this.#ttl = ttl;
  }

  /** Whether any API is configured (resource indicators are on only then). */
  get enabled(): boolean {
    return this.#byKey.size > 0;
  }

  /** The API with this identifier (exactly, or the same URL), or undefined. */
  find(identifier: string): ApiConfig | undefined {
    return this.#byKey.get(key(identifier));
  }

  /** The description of a scope of this API for the consent page (its name when it has none). */
  scopeDescription(identifier: string, scope: string): string {
    return this.find(identifier)?.scopes.find((entry) => entry.name === scope)?.description ?? scope;
  }

  /** The API's identifiers whose scopes appear in a space-separated scope string, in order of first mention. */
  namedBy(scope: unknown): string[] {
    const named = new Set<string>();
    for (const name of typeof scope === 'string' ? scope.split(' ') : []) {
      const api = this.#byScope.get(name);
      if (api) named.add(api.identifier);
    }
    return [...named];
  }

  /** oidc-provider's `features.resourceIndicators`. */
  resourceIndicators(): ResourceIndicators {
    return {
      enabled: this.enabled,
      // No resource at the authorization or client-credentials request: the API(s) whose scopes it asks for. At the
      // token endpoint with several granted APIs (`oneOf`): the one whose scopes a refresh names, else all of them,
      // which the provider refuses (the client must say which with `resource`).
      defaultResource: async (ctx: KoaContextWithOIDC, _client, oneOf) => {
        const named = this.namedBy(ctx.oidc.params?.scope);
        if (oneOf) {
          const chosen = oneOf.filter((resource) => named.some((identifier) => key(identifier) === key(resource)));
          return chosen.length === 1 ? chosen[0] : oneOf;
        }
        if (named.length === 0) return undefined;
        return named.length === 1 ? named[0] : named;
      },
      getResourceServerInfo: async (_ctx, resourceIndicator, client) => {
        const api = this.find(resourceIndicator);
        if (!api) throw new errors.InvalidTarget(`unknown API ${JSON.stringify(resourceIndicator.slice(0, 255))}`);
        if (api.allowedClients && !api.allowedClients.includes(client.clientId)) {
          throw new errors.InvalidTarget('this client may not request tokens for this API');
        }
        return {
          scope: api.scopes.map((scope) => scope.name).join(' '),
          audience: api.identifier,
          accessTokenFormat: api.tokenFormat,
          ...(api.accessTokenTtl === undefined ? {} : { accessTokenTTL: api.accessTokenTtl }),
          ...(api.tokenFormat === 'jwt' ? { jwt: { sign: { alg: api.signingAlg } } } : {}),
        };
      },
      useGrantedResource: async () => true,
    };
  }

  /**
   * The introspection policy: a client may introspect its own tokens, and an API's introspection client the access
   * tokens whose audience is that API. Nothing else: not another client's tokens, not refresh tokens for an API.
   */
  mayIntrospect(clientId: string, token: IntrospectedToken): boolean {
    if (token.clientId === clientId) return true;
    if (token.kind === 'RefreshToken') return false;
    const audiences = Array.isArray(token.aud) ? token.aud : token.aud ? [token.aud] : [];
    return audiences.some((audience) => this.find(audience)?.introspectionClientId === clientId);
  }

  /**
   * How the tokens a client holds for an API end. Reference tokens go with their grant when the session is revoked;
   * a coordinated client's also at logout and expiry (they are bound to the session), while another client's
   * offline_access ones outlive those. A JWT cannot be revoked: its lifetime is what bounds it.
   */
  describe(
    identifier: string,
    options: { coordinated: boolean; clientCredentials?: boolean },
  ): ApiTokenDescription | undefined {
    const api = this.find(identifier);
    if (!api) return undefined;
    const ttl = api.accessTokenTtl ?? (options.clientCredentials ? this.#ttl.clientCredentials : this.#ttl.accessToken);
    const lifetime: TokenLifetime =
      api.tokenFormat === 'jwt'
        ? 'until-expiry'
        : options.coordinated
          ? 'revoked-with-session'
          : 'revoked-on-revocation';
    return {
      identifier: api.identifier,
      name: api.name ?? api.identifier,
      tokenFormat: api.tokenFormat,
      ttl,
      lifetime,
    };
  }
}
