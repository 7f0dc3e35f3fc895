/**
 * The front channel of a sign-in, without a browser: an authorization request to Gatehouse, the login form (or a
 * one-click button for a user without a password), the consent page if one is shown, and the redirect to the client's
 * redirect_uri, captured and not followed. What it resolves to is the authorization response as a relying party would
 * receive it, for the test's own client library to handle (openid-client's `authorizationCodeGrant`, ...).
 *
 * `login()` (login.ts) is this plus the checks and the code exchange done by the harness itself.
 */
import { CookieJar } from './cookie-jar.js';
import { alertText, formEndingWith, type HtmlForm } from './html-forms.js';

export interface AuthorizeOptions {
  /** The user to sign in (their username on the form is looked up from the configured users). */
  subject: string;
  /** Default: the password the user was configured with. Without one, the testing mode's one-click button is used. */
  password?: string;
  /**
   * An authorization URL your client library built (with its state, nonce and PKCE challenge), e.g. openid-client's
   * `buildAuthorizationUrl`. When given, it is sent as it is and the request options below are not used.
   */
  url?: string | URL;
  /** The client. Required unless `url` is given. */
  clientId?: string;
  /** Default: the client's first redirect URI. */
  redirectUri?: string;
  /** Default `openid`. */
  scope?: string;
  /** Sent as given; none by default (your client library checks what it sent). */
  state?: string;
  nonce?: string;
  /** A PKCE challenge (required for public clients), sent with `codeChallengeMethod` (default `S256`). */
  codeChallenge?: string;
  codeChallengeMethod?: string;
  /** Default: `consent` when the scope has `offline_access` (OpenID Connect asks for it), else none. */
  prompt?: string;
  /** `max_age`: with it, the ID token carries `auth_time`. */
  maxAge?: number;
  /** Any other authorization request parameter (`claims`, `login_hint`, `ui_locales`, `resource`, ...). */
  params?: Record<string, string>;
  /** A Cookie header from an earlier `login()` or `authorize()`: act as that browser (its session may skip the login page). */
  sessionCookie?: string;
}

export interface AuthorizeResult {
  /** The redirect to the redirect_uri as Gatehouse sent it (`code`, `state`, `iss`; or `error`): the authorization response. */
  url: URL;
  /** The authorization code, unless the response is an error. */
  code?: string;
  /** The `error` of an error response (`login_required`, `access_denied`, ...). */
  error?: string;
  /** Gatehouse's session cookies after the request, as a Cookie header (`_session=…; _session.sig=…`). */
  sessionCookie: string;
  /** The server-side session's id, when server-side sessions are on and a session exists. */
  sessionId?: string;
}

/** What the front channel needs to know about the server and the user. */
export interface AuthorizeTarget {
  issuer: string;
  /** The username on the login form. */
  username: string;
  password?: string;
}

export interface ClientDescription {
  client_id: string;
  client_secret?: string;
  redirect_uris?: string[];
  token_endpoint_auth_method?: string;
}

const MAX_STEPS = 20;

/** The authorization request for these options (client_id, response_type=code, redirect_uri, scope, and what is given). */
export function authorizationUrl(
  authorizationEndpoint: string,
  client: ClientDescription,
  options: AuthorizeOptions,
  label = 'authorize',
): URL {
  const redirectUri = options.redirectUri ?? client.redirect_uris?.[0];
  if (!redirectUri) throw new Error(`${label}: client ${client.client_id} has no redirect_uris; pass redirectUri`);
  const scope = options.scope ?? 'openid';
  const prompt = options.prompt ?? (scope.split(' ').includes('offline_access') ? 'consent' : undefined);
  const given: Record<string, string | undefined> = {
    client_id: client.client_id,
    response_type: 'code',
    redirect_uri: redirectUri,
    scope,
    state: options.state,
    nonce: options.nonce,
    code_challenge: options.codeChallenge,
    code_challenge_method: options.codeChallenge === undefined ? undefined : (options.codeChallengeMethod ?? 'S256'),
    prompt,
    max_age: options.maxAge === undefined ? undefined : String(options.maxAge),
    ...options.params,
  };
  const url = new URL(authorizationEndpoint);
  url.search = new URLSearchParams(
    Object.entries(given).filter((entry): entry is [string, string] => entry[1] !== undefined),
  ).toString();
  return url;
}

/**
 * Sends `request` and walks Gatehouse's pages as `subject` until the redirect to the request's redirect_uri, which it
 * returns (with the session cookies and the raw `_session` value, whose hash is the server-side session's key).
 */
export async function followAuthorization(
  target: AuthorizeTarget,
  request: URL,
  options: { subject: string; sessionCookie?: string; label?: string },
): Promise<{ response: URL; sessionCookie: string; sessionKey?: string }> {
  const label = options.label ?? 'authorize';
  const redirectUri = request.searchParams.get('redirect_uri');
  if (!redirectUri) throw new Error(`${label}: the authorization URL has no redirect_uri`);
  const jar = new CookieJar();
  if (options.sessionCookie) jar.add(options.sessionCookie);
  const origin = new URL(target.issuer).origin;
  const send = async (url: URL, form?: Record<string, string>) => {
    const headers: Record<string, string> = { accept: 'text/html' };
    const cookie = jar.header(url);
    if (cookie) headers.cookie = cookie;
    if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
    const response = await fetch(url, {
      method: form ? 'POST' : 'GET',
      headers,
      body: form && new URLSearchParams(form),
      redirect: 'manual',
    });
    jar.store(response);
    return response;
  };

  let url = request;
  let response = await send(url);
  let submittedLogin = false;
  let captured: URL | undefined;
  for (let step = 0; step < MAX_STEPS && !captured; step++) {
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel();
      const next = new URL(location, url);
      if (sameEndpoint(next, redirectUri)) captured = next;
      else if (next.origin !== origin)
        throw new Error(`${label}: redirected away from Gatehouse to ${next.origin}${next.pathname}`);
      else {
        url = next;
        response = await send(url);
      }
      continue;
    }
    const html = await response.text();
    if (response.status !== 200)
      throw new Error(`${label}: ${response.status} at ${url.pathname}: ${alertText(html) ?? html.slice(0, 300)}`);
    const loginForm = formEndingWith(html, '/login');
    const consentForm = formEndingWith(html, '/confirm');
    if (loginForm) {
      if (submittedLogin)
        throw new Error(
          `${label}: ${options.subject} was not signed in: ${alertText(html) ?? 'the login page came back'}`,
        );
      submittedLogin = true;
      const [action, form] = loginSubmission(html, loginForm, target, options.subject, label);
      url = new URL(action, url);
      response = await send(url, form);
    } else if (consentForm) {
      url = new URL(consentForm.action, url);
      response = await send(url, consentForm.fields);
    } else {
      throw new Error(`${label}: unexpected page at ${url.pathname}: ${alertText(html) ?? html.slice(0, 300)}`);
    }
  }
  if (!captured) throw new Error(`${label}: never redirected to ${redirectUri}`);
  const session = jar.value('_session');
  const signature = jar.value('_session.sig');
  const sessionCookie = session ? `_session=${session}${signature ? `; _session.sig=${signature}` : ''}` : '';
  return { response: captured, sessionCookie, sessionKey: session };
}

/** The password form for a user with a password, else the one-click button (testing and development modes). */
function loginSubmission(
  html: string,
  loginForm: HtmlForm,
  target: AuthorizeTarget,
  subject: string,
  label: string,
): [string, Record<string, string>] {
  const password = target.password;
  if (password !== undefined) return [loginForm.action, { ...loginForm.fields, username: target.username, password }];
  const oneClick = formEndingWith(html, '/one-click');
  const button = oneClick?.buttons.find((b) => b.name === 'subject' && b.value === subject);
  if (!oneClick || !button) {
    throw new Error(
      `${label}: no password for ${subject}, and no one-click button for it (give the user a password, or use mode testing)`,
    );
  }
  return [oneClick.action, { ...oneClick.fields, subject }];
}

/** Same origin and path (the query of a redirect_uri is the response's). */
function sameEndpoint(url: URL, redirectUri: string): boolean {
  const expected = new URL(redirectUri);
  return url.origin === expected.origin && url.pathname === expected.pathname;
}
