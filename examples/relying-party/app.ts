/**
 * A minimal relying-party web app on node:http: sign-in with authorization code + PKCE (openid-client), a page
 * showing the signed-in user, RP-initiated logout with post_logout_redirect_uri, and a back-channel logout endpoint
 * that verifies the logout token (jose, against the issuer's JWKS) and ends this app's sessions with that `sid`.
 *
 * Its own sessions live in memory, keyed by an opaque `rp_session` cookie (HttpOnly, SameSite=Lax).
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as oidc from 'openid-client';
import { verifyLogoutToken } from './logout-token.js';

export interface RelyingPartyOptions {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** This app's public URL (no trailing slash): redirect URI `<appUrl>/callback`, post-logout `<appUrl>/`. */
  appUrl: string;
  scope?: string;
}

interface AppSession {
  /** While signing in: the PKCE verifier, state and nonce of the pending authorization request. */
  pending?: { verifier: string; state: string; nonce: string };
  user?: { sub: string; name?: string; sid?: string; idToken: string };
}

export interface RelyingParty {
  /** The node:http request listener. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** `login` ({ sub, sid }) and `backchannel-logout` ({ sub, sid, ended }: how many local sessions it ended). */
  events: EventEmitter;
}

const COOKIE = 'rp_session';

export function createRelyingParty(options: RelyingPartyOptions): RelyingParty {
  const appUrl = options.appUrl.replace(/\/$/, '');
  const redirectUri = `${appUrl}/callback`;
  const postLogoutRedirectUri = `${appUrl}/`;
  const sessions = new Map<string, AppSession>();
  const events = new EventEmitter();

  let discovered: Promise<oidc.Configuration> | undefined;
  const configuration = () => {
    discovered ??= oidc
      .discovery(new URL(options.issuer), options.clientId, options.clientSecret, undefined, {
        // Plain http is for an issuer on this machine only (development, tests).
        execute: options.issuer.startsWith('http:') ? [oidc.allowInsecureRequests] : [],
      })
      .catch((error: unknown) => {
        discovered = undefined;
        throw error;
      });
    return discovered;
  };

  function sessionOf(req: IncomingMessage): [string, AppSession] | [undefined, undefined] {
    const id = readCookie(req, COOKIE);
    const session = id ? sessions.get(id) : undefined;
    return id && session ? [id, session] : [undefined, undefined];
  }

  function newSession(res: ServerResponse, session: AppSession): void {
    const id = randomBytes(24).toString('base64url');
    sessions.set(id, session);
    const secure = appUrl.startsWith('https:') ? '; Secure' : '';
    res.setHeader('Set-Cookie', `${COOKIE}=${id}; Path=/; HttpOnly; SameSite=Lax${secure}`);
  }

  async function home(req: IncomingMessage, res: ServerResponse) {
    const [, session] = sessionOf(req);
    const user = session?.user;
    const body = user
      ? `<p id="status">Signed in as <strong id="user">${escapeHtml(user.name ?? user.sub)}</strong></p>
         <dl><dt>sub</dt><dd id="sub">${escapeHtml(user.sub)}</dd><dt>sid</dt><dd id="sid">${escapeHtml(user.sid ?? '')}</dd></dl>
         <form method="post" action="/logout"><button type="submit">Sign out</button></form>`
      : `<p id="status">Signed out</p><p><a id="sign-in" href="/login">Sign in</a></p>`;
    page(res, 200, body);
  }

  async function login(_req: IncomingMessage, res: ServerResponse) {
    const config = await configuration();
    const pending = { verifier: oidc.randomPKCECodeVerifier(), state: oidc.randomState(), nonce: oidc.randomNonce() };
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: options.scope ?? 'openid profile',
      code_challenge: await oidc.calculatePKCECodeChallenge(pending.verifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce,
    });
    newSession(res, { pending });
    redirect(res, url.href);
  }

  async function callback(req: IncomingMessage, res: ServerResponse) {
    const [id, session] = sessionOf(req);
    if (!id || !session.pending)
      return page(res, 400, '<p id="status">No sign-in in progress.</p><p><a href="/">Home</a></p>');
    const { verifier, state, nonce } = session.pending;
    sessions.delete(id); // a fresh session id after sign-in (no fixation)
    let tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
    try {
      tokens = await oidc.authorizationCodeGrant(await configuration(), new URL(req.url!, appUrl), {
        pkceCodeVerifier: verifier,
        expectedState: state,
        expectedNonce: nonce,
        idTokenExpected: true,
      });
    } catch (error) {
      return page(
        res,
        400,
        `<p id="status">Sign-in failed: ${escapeHtml((error as Error).message)}</p><p><a href="/">Home</a></p>`,
      );
    }
    const claims = tokens.claims()!;
    // The ID token of the code flow carries little more than `sub` and `sid`; the profile comes from userinfo.
    const profile = await oidc
      .fetchUserInfo(await configuration(), tokens.access_token, claims.sub)
      .catch(() => undefined);
    const name = typeof profile?.name === 'string' ? profile.name : undefined;
    const sid = typeof claims.sid === 'string' ? claims.sid : undefined;
    newSession(res, { user: { sub: claims.sub, name, sid, idToken: tokens.id_token! } });
    events.emit('login', { sub: claims.sub, sid });
    redirect(res, '/');
  }

  async function logout(req: IncomingMessage, res: ServerResponse) {
    const [id, session] = sessionOf(req);
    if (id) sessions.delete(id);
    res.setHeader('Set-Cookie', `${COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0`);
    if (!session?.user) return redirect(res, '/');
    const url = oidc.buildEndSessionUrl(await configuration(), {
      id_token_hint: session.user.idToken,
      post_logout_redirect_uri: postLogoutRedirectUri,
    });
    redirect(res, url.href);
  }

  async function backchannelLogout(req: IncomingMessage, res: ServerResponse) {
    res.setHeader('Cache-Control', 'no-store');
    const form = new URLSearchParams(await readBody(req, 64 * 1024));
    const config = await configuration();
    let claims: { sub?: string; sid?: string };
    try {
      claims = await verifyLogoutToken(form.get('logout_token') ?? '', {
        issuer: config.serverMetadata().issuer,
        clientId: options.clientId,
        jwksUri: config.serverMetadata().jwks_uri!,
      });
    } catch (error) {
      res.writeHead(400, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: 'invalid_request', error_description: (error as Error).message }));
      return;
    }
    let ended = 0;
    for (const [id, session] of sessions) {
      const user = session.user;
      if (user && (claims.sid ? user.sid === claims.sid : user.sub === claims.sub)) {
        sessions.delete(id);
        ended++;
      }
    }
    res.writeHead(200).end();
    events.emit('backchannel-logout', { ...claims, ended });
  }

  const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => Promise<void>> = {
    'GET /': home,
    'GET /login': login,
    'GET /callback': callback,
    'POST /logout': logout,
    'POST /backchannel-logout': backchannelLogout,
  };

  return {
    events,
    handle(req, res) {
      const route = routes[`${req.method} ${new URL(req.url ?? '/', appUrl).pathname}`];
      if (!route) return page(res, 404, '<p id="status">Not found.</p>');
      route(req, res).catch((error: unknown) => {
        console.error(error);
        if (!res.headersSent) page(res, 500, '<p id="status">Something went wrong.</p>');
        else res.end();
      });
    },
  };
}

function page(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Security-Policy': "default-src 'none'",
  });
  res.end(
    `<!doctype html><html><head><meta charset="utf-8"><title>Example app</title></head><body><h1>Example app</h1>${body}</body></html>`,
  );
}

function redirect(res: ServerResponse, location: string): void {
  res.writeHead(303, { Location: location, 'Cache-Control': 'no-store' }).end();
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function readCookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}

async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > limit) throw new Error('request body too large');
  }
  return body;
}
