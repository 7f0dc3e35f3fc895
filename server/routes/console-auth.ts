/**
 * Sign-in for Gatehouse's own pages (/admin, /account). They use the provider's own login session: whoever holds a
 * signed-in `_session` cookie is signed in here too, so there is one login, one session and one logout.
 *
 * A visitor without one is sent through a real authorization request of the first-party `gatehouse-console` client
 * (code + PKCE S256 + state). The callback checks the state, then redeems the code in-process instead of calling the
 * token endpoint over HTTP: the pages need no tokens (identity comes from the session on every request), and a
 * server cannot always reach its own public issuer URL behind a proxy. Redeeming means: the code was issued to this
 * client and redirect URI, matches the PKCE verifier, is unexpired and unused, and belongs to the session this browser
 * holds; it is then consumed. Only a local path is ever used as the place to return to.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type Router from '@koa/router';
import type { Context } from 'koa';
import { HttpError } from '../http/errors.js';
import type { UserRecord } from '../provider/accounts.js';
import { CONSOLE_CALLBACK_PATH, CONSOLE_CLIENT_ID } from '../provider/console-client.js';
import type { RouteDeps } from './deps.js';

export interface ConsoleUser {
  accountId: string;
  /** The provider session's uid (stable for the life of the session; the server-side session id). */
  sessionUid: string;
  account: UserRecord;
}

interface PendingSignIn {
  state: string;
  verifier: string;
  returnTo: string;
}

const PENDING_COOKIE = 'gatehouse.console';
const PENDING_MAX_AGE_MS = 10 * 60 * 1000;

/** A path on this site, or undefined: never an absolute or protocol-relative URL (no open redirect). */
export function localPath(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 2048) return undefined;
  if (!value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return undefined;
  if (/[\u0000-\u001f\\]/.test(value)) return undefined;
  return value;
}

function sameString(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

export class ConsoleAuth {
  readonly #deps: RouteDeps;

  constructor(deps: RouteDeps) {
    this.#deps = deps;
  }

  /** The signed-in user of this request (from the provider's `_session` cookie), or undefined. */
  async currentUser(ctx: Context): Promise<ConsoleUser | undefined> {
    const session = await this.#deps.provider.Session.get(ctx);
    const accountId = session.accountId;
    if (!accountId) return undefined;
    const account = await this.#deps.accounts.find(accountId);
    if (!account) return undefined;
    return { accountId, sessionUid: session.uid, account };
  }

  /**
   * The signed-in user, or: for a GET, a redirect to sign in (then back here) and undefined — the handler just returns;
   * for any other method, a 401 (a form posted without a session is not replayed after signing in).
   */
  async requireUser(ctx: Context): Promise<ConsoleUser | undefined> {
    const user = await this.currentUser(ctx);
    if (user) return user;
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD')
      throw new HttpError(401, 'login_required', 'you are not signed in (any more); open the page again to sign in');
    this.startSignIn(ctx, ctx.originalUrl);
    return undefined;
  }

  /** Redirects the browser to an authorization request for the console client; `returnTo` must be a local path. */
  startSignIn(ctx: Context, returnTo: string): void {
    const pending: PendingSignIn = {
      state: randomBytes(16).toString('base64url'),
      verifier: randomBytes(32).toString('base64url'),
      returnTo: localPath(returnTo) ?? '/',
    };
    ctx.cookies.set(PENDING_COOKIE, Buffer.from(JSON.stringify(pending)).toString('base64url'), {
      signed: true,
      httpOnly: true,
      sameSite: 'lax',
      secure: ctx.secure,
      path: CONSOLE_CALLBACK_PATH,
      maxAge: PENDING_MAX_AGE_MS,
    });
    const url = new URL(this.#deps.provider.urlFor('authorization'));
    url.search = new URLSearchParams({
      client_id: CONSOLE_CLIENT_ID,
      response_type: 'code',
      scope: 'openid',
      redirect_uri: this.#callbackUrl(),
      state: pending.state,
      code_challenge: createHash('sha256').update(pending.verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }).toString();
    ctx.redirect(url.href);
  }

  /** Where the sign-out link goes: the provider's RP-initiated logout, then back to the home page. */
  get signOutUrl(): string {
    const url = new URL(this.#deps.provider.urlFor('end_session'));
    url.search = new URLSearchParams({
      client_id: CONSOLE_CLIENT_ID,
      post_logout_redirect_uri: `${this.#deps.config.issuer}/`,
    }).toString();
    return url.href;
  }

  /** A CSRF token for forms of this user's pages, bound to their provider session. */
  csrfToken(user: ConsoleUser): string {
    return this.#deps.csrf.issue(`session:${user.sessionUid}`);
  }

  /** Refuses (403) a POST whose `csrf` field was not issued for this user's session. */
  requireCsrf(ctx: Context, user: ConsoleUser): void {
    const token = (ctx.request.body as Record<string, unknown> | undefined)?.csrf;
    if (!this.#deps.csrf.verify(`session:${user.sessionUid}`, token)) {
      throw new HttpError(
        403,
        'invalid_csrf',
        'the form has expired or was not sent by this site; go back, reload and try again',
      );
    }
  }

  /** Adds `GET /console/callback` to a router (one router of the app must carry it). */
  mountCallback(router: Router): void {
    router.get(CONSOLE_CALLBACK_PATH, async (ctx) => {
      const pending = this.#readPending(ctx);
      ctx.cookies.set(PENDING_COOKIE, null, { path: CONSOLE_CALLBACK_PATH });
      const state = typeof ctx.query.state === 'string' ? ctx.query.state : '';
      if (!pending || !state || !sameString(state, pending.state)) {
        throw new HttpError(
          400,
          'invalid_state',
          'this sign-in was not started here or has expired; open the page again',
        );
      }
      if (typeof ctx.query.error === 'string') {
        throw new HttpError(403, 'access_denied', 'sign-in was cancelled');
      }
      const user = await this.#redeem(ctx, typeof ctx.query.code === 'string' ? ctx.query.code : '', pending.verifier);
      if (!user) throw new HttpError(400, 'invalid_grant', 'the sign-in could not be completed; open the page again');
      ctx.redirect(localPath(pending.returnTo) ?? '/');
    });
  }

  #callbackUrl(): string {
    return `${this.#deps.config.issuer}${CONSOLE_CALLBACK_PATH}`;
  }

  #readPending(ctx: Context): PendingSignIn | undefined {
    const raw = ctx.cookies.get(PENDING_COOKIE, { signed: true });
    if (!raw) return undefined;
    try {
      const value = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as Partial<PendingSignIn>;
      if (typeof value.state !== 'string' || typeof value.verifier !== 'string' || typeof value.returnTo !== 'string')
        return undefined;
      return value as PendingSignIn;
    } catch {
      return undefined;
    }
  }

  /** Checks and consumes the code; the user when it was issued to this browser's current session. */
  async #redeem(ctx: Context, code: string, verifier: string): Promise<ConsoleUser | undefined> {
    if (!code || code.length > 512) return undefined;
    const found = await this.#deps.provider.AuthorizationCode.find(code).catch(() => undefined);
    if (!found?.isValid || found.clientId !== CONSOLE_CLIENT_ID || found.redirectUri !== this.#callbackUrl())
      return undefined;
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    if (found.codeChallengeMethod !== 'S256' || !found.codeChallenge || !sameString(found.codeChallenge, challenge))
      return undefined;
    await found.consume();
    const user = await this.currentUser(ctx);
    if (!user || user.accountId !== found.accountId || user.sessionUid !== found.sessionUid) return undefined;
    return user;
  }
}
