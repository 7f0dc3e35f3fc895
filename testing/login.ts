/**
 * A real sign-in through Gatehouse's endpoints, without a browser: the front channel of authorize.ts with a request
 * of its own (code + PKCE S256, state, nonce), its checks of the response, and the code exchange at the token endpoint.
 * Plain fetch and node:crypto: no relying-party library needed at run time.
 */
import { createHash, randomBytes } from 'node:crypto';
import { authorizationUrl, followAuthorization, type AuthorizeTarget, type ClientDescription } from './authorize.js';
import { verifyIdToken, type IdTokenClaims } from './id-token.js';

export interface LoginOptions {
  /** The user to sign in (their username on the form is looked up from the configured users). */
  subject: string;
  clientId: string;
  /** Default `openid`. With `offline_access`, `prompt=consent` is sent too (OpenID Connect requires it). */
  scope?: string;
  /** Default: the client's first redirect URI. */
  redirectUri?: string;
  /** Default: the password the user was configured with. Without one, the testing mode's one-click button is used. */
  password?: string;
}

export interface LoginTokens {
  access_token: string;
  id_token: string;
  refresh_token?: string;
  expires_in: number;
  token_type: string;
  scope?: string;
  /** The ID token's claims (signature, iss, aud and nonce checked). */
  claims: IdTokenClaims;
}

export interface LoginResult {
  /** The redirect to the client's redirect_uri, as Gatehouse sent it (code, state, iss). */
  authorizationResponse: URL;
  code: string;
  tokens: LoginTokens;
  /**
   * Gatehouse's session cookies after the login, as a Cookie header (`_session=…; _session.sig=…`): send it to the
   * issuer to act as the signed-in browser (the next authorization request skips the login page).
   */
  sessionCookie: string;
  /** The server-side session's id (`sessions.removeSessions({ sessionId })`), when server-side sessions are on. */
  sessionId?: string;
}

/** What a login needs to know about the server, the client and the user. */
export interface LoginTarget extends AuthorizeTarget {
  metadata(): Promise<ProviderMetadata>;
  jwks(): Promise<{ keys: Record<string, unknown>[] }>;
  client: ClientDescription;
}

export interface ProviderMetadata {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
  end_session_endpoint?: string;
}

/** The login, plus the raw `_session` value (the server-side session's key is its hash). */
export async function login(
  target: LoginTarget,
  options: LoginOptions,
): Promise<Omit<LoginResult, 'sessionId'> & { sessionKey: string }> {
  const { client } = target;
  const metadata = await target.metadata();
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(16).toString('base64url');
  const nonce = randomBytes(16).toString('base64url');
  const request = authorizationUrl(
    metadata.authorization_endpoint,
    client,
    { ...options, state, nonce, codeChallenge: createHash('sha256').update(verifier).digest('base64url') },
    'login',
  );
  const redirectUri = request.searchParams.get('redirect_uri')!;
  const { response, sessionCookie, sessionKey } = await followAuthorization(target, request, {
    subject: options.subject,
    label: 'login',
  });

  const params = response.searchParams;
  if (params.get('error'))
    throw new Error(`login: authorization failed: ${params.get('error')}: ${params.get('error_description') ?? ''}`);
  if (params.get('state') !== state) throw new Error('login: state mismatch in the authorization response');
  if (params.has('iss') && params.get('iss') !== metadata.issuer)
    throw new Error(`login: iss ${params.get('iss')} in the authorization response`);
  const code = params.get('code');
  if (!code) throw new Error('login: no code in the authorization response');

  const tokens = await exchangeCode(target, metadata, { code, redirectUri, verifier });
  const claims = verifyIdToken(tokens.id_token, (await target.jwks()) as never, {
    issuer: metadata.issuer,
    clientId: client.client_id,
    nonce,
  });
  if (!sessionKey) throw new Error('login: Gatehouse set no _session cookie');
  return { authorizationResponse: response, code, tokens: { ...tokens, claims }, sessionCookie, sessionKey };
}

async function exchangeCode(
  target: LoginTarget,
  metadata: ProviderMetadata,
  grant: { code: string; redirectUri: string; verifier: string },
): Promise<Omit<LoginTokens, 'claims'>> {
  const { client } = target;
  const body = new URLSearchParams({
    grant_type: 'authorization_code',
    code: grant.code,
    redirect_uri: grant.redirectUri,
    code_verifier: grant.verifier,
  });
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
  };
  const method = client.token_endpoint_auth_method ?? 'client_secret_basic';
  if (method === 'none') {
    body.set('client_id', client.client_id);
  } else if (method === 'client_secret_post') {
    body.set('client_id', client.client_id);
    body.set('client_secret', client.client_secret ?? '');
  } else if (method === 'client_secret_basic') {
    // RFC 6749 §2.3.1: each part form-urlencoded before base64.
    const encode = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');
    headers.authorization = `Basic ${Buffer.from(`${encode(client.client_id)}:${encode(client.client_secret ?? '')}`).toString('base64')}`;
  } else {
    throw new Error(`login: token_endpoint_auth_method ${method} is not supported by the harness`);
  }
  const response = await fetch(metadata.token_endpoint, { method: 'POST', headers, body });
  const json = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok)
    throw new Error(
      `login: token request failed (${response.status}): ${String(json.error)}: ${String(json.error_description ?? '')}`,
    );
  if (typeof json.access_token !== 'string' || typeof json.id_token !== 'string')
    throw new Error('login: the token response has no access_token or id_token');
  return json as unknown as Omit<LoginTokens, 'claims'>;
}
