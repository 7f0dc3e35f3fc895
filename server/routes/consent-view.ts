/**
 * What the consent page (views/consent.eta) lists: every scope and claim the client will receive once the user
 * allows, in the order the client asked for them, each marked when the user allowed it before (a repeated consent,
 * e.g. with `prompt=consent`, lists everything again rather than an empty list).
 *
 * oidc-provider's consent prompt only names what is missing from the grant; the rest of the request is what the
 * existing grant already covers. So the list is the requested items that are either missing or already granted,
 * which is exactly what the provider will put into the tokens after the user allows.
 *
 * To show more on the page (API scopes with their own descriptions, device-flow details), add fields to
 * `ConsentView` and items of the same `ConsentItem` shape; the template renders each item's `description`, its
 * `name` and, when `allowedBefore`, an "allowed before" tag.
 */

/** One line of the consent page. */
export interface ConsentItem {
  /** The scope or claim as the protocol names it, e.g. `profile`. */
  name: string;
  /** What it means to the user, e.g. "Your name and profile" (the name when there is no description). */
  description: string;
  /** True when the user allowed it before (it is in the grant already); false when it is new. */
  allowedBefore: boolean;
}

/** The data views/consent.eta receives besides the client name, account name and form actions. */
export interface ConsentView {
  scopes: ConsentItem[];
  /**
   * Claims asked for one by one (the `claims` request parameter), beyond those the scopes bring. Empty while the
   * provider's `claimsParameter` feature is off, as it is today.
   */
  claims: ConsentItem[];
  /** Each API (resource server) asked for, with its scopes described as the API's configuration describes them. */
  apis: ConsentApi[];
}

/** The scopes of one API on the consent page. */
export interface ConsentApi {
  /** The API's identifier (the audience of its tokens). */
  identifier: string;
  /** Its configured name (the identifier when it has none). */
  name: string;
  scopes: ConsentItem[];
}

/** One API of a consent request: the descriptions of its scopes, what the grant lacks and what it covers already. */
export interface ConsentApiRequest {
  identifier: string;
  name: string;
  /** Scope name → what it lets the client do there. */
  descriptions: Readonly<Record<string, string>>;
  missing: ReadonlySet<string>;
  granted: ReadonlySet<string>;
}

/** Descriptions of the OpenID Connect scopes Gatehouse serves; other scopes are shown by name. */
export const SCOPE_DESCRIPTIONS: Readonly<Record<string, string>> = {
  openid: 'Sign you in',
  profile: 'Your name and profile',
  email: 'Your email address',
  address: 'Your postal address',
  phone: 'Your phone number',
  offline_access: 'Stay connected while you are away',
};

/** Claims every ID token carries; oidc-provider never asks consent for them, and neither does the page. */
const ALWAYS_ISSUED_CLAIMS = new Set(['sub', 'sid', 'auth_time', 'acr', 'amr', 'iss']);

export interface ConsentRequest {
  /** The authorization request's `scope` parameter as the provider kept it (space-separated). */
  scope?: unknown;
  /** The authorization request's `claims` parameter (JSON with `userinfo` and `id_token` members), if any. */
  claims?: unknown;
  /** The consent prompt's details: what the grant does not cover yet. */
  missingOIDCScope?: readonly string[];
  missingOIDCClaims?: readonly string[];
  /** What the existing grant of this account and client already covers (empty when there is none). */
  grantedScopes: ReadonlySet<string>;
  grantedClaims: ReadonlySet<string>;
  /** The APIs asked for (server/provider/apis.ts); none when no API is configured. */
  apis?: readonly ConsentApiRequest[];
}

export function consentView(request: ConsentRequest): ConsentView {
  const missingScopes = new Set(request.missingOIDCScope ?? []);
  const missingClaims = new Set(request.missingOIDCClaims ?? []);
  const scopes = unique(typeof request.scope === 'string' ? request.scope.split(' ') : [])
    .filter((name) => missingScopes.has(name) || request.grantedScopes.has(name))
    .map((name) => ({ name, description: SCOPE_DESCRIPTIONS[name] ?? name, allowedBefore: !missingScopes.has(name) }));
  const claims = unique([...requestedClaims(request.claims), ...missingClaims])
    .filter((name) => !ALWAYS_ISSUED_CLAIMS.has(name) && (missingClaims.has(name) || request.grantedClaims.has(name)))
    .map((name) => ({ name, description: name, allowedBefore: !missingClaims.has(name) }));
  // An API's scopes in the order the request names them, then any the prompt adds (a resource= without its scopes).
  const requested = typeof request.scope === 'string' ? request.scope.split(' ') : [];
  const apis = (request.apis ?? [])
    .map((api) => ({
      identifier: api.identifier,
      name: api.name,
      scopes: unique([...requested.filter((name) => name in api.descriptions), ...api.missing])
        .filter((name) => api.missing.has(name) || api.granted.has(name))
        .map((name) => ({ name, description: api.descriptions[name] ?? name, allowedBefore: !api.missing.has(name) })),
    }))
    .filter((api) => api.scopes.length > 0);
  return { scopes, claims, apis };
}

function unique(names: Iterable<string>): string[] {
  return [...new Set([...names].filter(Boolean))];
}

/** The claim names of a `claims` request parameter (already validated by the provider; anything else gives none). */
function requestedClaims(parameter: unknown): string[] {
  if (typeof parameter !== 'string') return [];
  try {
    const parsed = JSON.parse(parameter) as { userinfo?: unknown; id_token?: unknown };
    return [parsed.userinfo, parsed.id_token].flatMap((member) =>
      member && typeof member === 'object' ? Object.keys(member) : [],
    );
  } catch {
    return [];
  }
}
