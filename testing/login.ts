/**
 * A real sign-in through Gatehouse's endpoints, without a browser: the authorization request (code + PKCE S256, state,
 * nonce), the login form (or a one-click button for a user without a password), the consent page if one is shown, the
 * redirect to the client's redirect_uri (captured, not followed) and the code exchange at the token endpoint. Plain
 * fetch and node:crypto: no relying-party library needed at run time.
 */
import { createHash, randomBytes } from 'node:crypto';
import { CookieJar } from './cookie-jar.js';
import { alertText, formEndingWith, type HtmlForm } from './html-forms.js';
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
export interface LoginTarget {
  issuer: string;
  metadata(): Promise<ProviderMetadata>;
  jwks(): Promise<{ keys: Record<string, unknown>[] }>;
  client: { client_id: string; client_secret?: string; redirect_uris?: string[]; token_endpoint_auth_method?: string };
  username: string;
  password?: string;
}

export interface ProviderMetadata {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
  end_session_endpoint?: string;
}

const MAX_STEPS = 20;

/** The login, plus the raw `_session` value (the server-side session's key is its hash). */
export async function login(target: LoginTarget, options: LoginOptions): Promise<Omit<LoginResult, 'sessionId'> & { sessionKey: string }> {
  const { client } = target;
  const metadata = await target.metadata();
  const redirectUri = options.redirectUri ?? client.redirect_uris?.[0];
  if (!redirectUri) throw new Error(`login: client ${client.client_id} has no redirect_uris; pass redirectUri`);
  const scope = options.scope ?? 'openid';
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(16).toString('base64url');
  const nonce = randomBytes(16).toString('base64url');
  const authorization = new URL(metadata.authorization_endpoint);
  authorization.search = new URLSearchParams({
    client_id: client.client_id,
    response_type: 'code',
    redirect_uri: redirectUri,
    scope,
    state,
    nonce,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    ...(scope.split(' ').includes('offline_access') ? { prompt: 'consent' } : {}),
  }).toString();

  const jar = new CookieJar();
  const origin = new URL(target.issuer).origin;
  const send = async (url: URL, form?: Record<string, string>) => {
    const headers: Record<string, string> = { accept: 'text/html' };
    const cookie = jar.header(url);
    if (cookie) headers.cookie = cookie;
    if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
    const response = await fetch(url, { method: form ? 'POST' : 'GET', headers, body: form && new URLSearchParams(form), redirect: 'manual' });
    jar.store(response);
    return response;
  };

  let url = authorization;
  let response = await send(url);
  let submittedLogin = false;
  let captured: URL | undefined;
  for (let step = 0; step < MAX_STEPS && !captured; step++) {
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel();
      const next = new URL(location, url);
      if (sameEndpoint(next, redirectUri)) captured = next;
      else if (next.origin !== origin) throw new Error(`login: redirected away from Gatehouse to ${next.origin}${next.pathname}`);
      else response = await send((url = next));
      continue;
    }
    const html = await response.text();
    if (response.status !== 200) throw new Error(`login: ${response.status} at ${url.pathname}: ${alertText(html) ?? html.slice(0, 300)}`);
    const loginForm = formEndingWith(html, '/login');
    const consentForm = formEndingWith(html, '/confirm');
    if (loginForm) {
      if (submittedLogin) throw new Error(`login: ${options.subject} was not signed in: ${alertText(html) ?? 'the login page came back'}`);
      submittedLogin = true;
      const [action, form] = loginSubmission(html, loginForm, target, options.subject);
      response = await send((url = new URL(action, url)), form);
    } else if (consentForm) {
      response = await send((url = new URL(consentForm.action, url)), consentForm.fields);
    } else {
      throw new Error(`login: unexpected page at ${url.pathname}: ${alertText(html) ?? html.slice(0, 300)}`);
    }
  }
  if (!captured) throw new Error(`login: never redirected to ${redirectUri}`);

  const params = captured.searchParams;
  if (params.get('error')) throw new Error(`login: authorization failed: ${params.get('error')}: ${params.get('error_description') ?? ''}`);
  if (params.get('state') !== state) throw new Error('login: state mismatch in the authorization response');
  if (params.has('iss') && params.get('iss') !== metadata.issuer) throw new Error(`login: iss ${params.get('iss')} in the authorization response`);
  const code = params.get('code');
  if (!code) throw new Error('login: no code in the authorization response');

  const tokens = await exchangeCode(target, metadata, { code, redirectUri, verifier });
  const claims = verifyIdToken(tokens.id_token, (await target.jwks()) as never, { issuer: metadata.issuer, clientId: client.client_id, nonce });
  const session = jar.value('_session');
  if (!session) throw new Error('login: Gatehouse set no _session cookie');
  const signature = jar.value('_session.sig');
  const sessionCookie = `_session=${session}${signature ? `; _session.sig=${signature}` : ''}`;
  return { authorizationResponse: captured, code, tokens: { ...tokens, claims }, sessionCookie, sessionKey: session };
}

/** The password form for a user with a password, else the one-click button (testing and development modes). */
function loginSubmission(html: string, loginForm: HtmlForm, target: LoginTarget, subject: string): [string, Record<string, string>] {
  const password = target.password;
  if (password !== undefined) return [loginForm.action, { ...loginForm.fields, username: target.username, password }];
  const oneClick = formEndingWith(html, '/one-click');
  const button = oneClick?.buttons.find((b) => b.name === 'subject' && b.value === subject);
  if (!oneClick || !button) {
    throw new Error(`login: no password for ${subject}, and no one-click button for it (give the user a password, or use mode testing)`);
  }
  return [oneClick.action, { ...oneClick.fields, subject }];
}

async function exchangeCode(
  target: LoginTarget,
  metadata: ProviderMetadata,
  grant: { code: string; redirectUri: string; verifier: string },
): Promise<Omit<LoginTokens, 'claims'>> {
  const { client } = target;
  const body = new URLSearchParams({ grant_type: 'authorization_code', code: grant.code, redirect_uri: grant.redirectUri, code_verifier: grant.verifier });
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
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
  if (!response.ok) throw new Error(`login: token request failed (${response.status}): ${String(json.error)}: ${String(json.error_description ?? '')}`);
  if (typeof json.access_token !== 'string' || typeof json.id_token !== 'string') throw new Error('login: the token response has no access_token or id_token');
  return json as unknown as Omit<LoginTokens, 'claims'>;
}

/** Same origin and path (the query of a redirect_uri is the response's). */
function sameEndpoint(url: URL, redirectUri: string): boolean {
  const expected = new URL(redirectUri);
  return url.origin === expected.origin && url.pathname === expected.pathname;
}
