/**
 * The relying-party side of tests: openid-client against the real server, a loopback back-channel logout receiver,
 * and `signIn`, which walks the real login (and consent) pages with a Browser.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import type { GatehouseConfigInput } from '../../config/schema.js';
import { Browser, formWithAction, type Page } from './browser.js';

type ClientInput = NonNullable<GatehouseConfigInput['clients']>[number];

export const REDIRECT_URI = 'http://127.0.0.1:9/callback';
export const POST_LOGOUT_URI = 'http://127.0.0.1:9/logged-out';

/** The confidential `web` client of most tests: code and refresh, offline_access, back-channel logout to a receiver. */
export function webClient(backchannelLogoutUri: string, extra: Partial<ClientInput> = {}): ClientInput {
  return {
    client_id: 'web',
    client_secret: 'web-secret',
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    scope: 'openid profile email offline_access',
    backchannel_logout_uri: backchannelLogoutUri,
    ...extra,
  };
}

/** `/auth?...` for client `web` with a fixed PKCE challenge: for tests that look at the response, not the login. */
export function authorizationPath(): string {
  const params = new URLSearchParams({
    client_id: 'web',
    response_type: 'code',
    scope: 'openid',
    redirect_uri: REDIRECT_URI,
    code_challenge: 'a'.repeat(43),
    code_challenge_method: 'S256',
  });
  return `/auth?${params}`;
}

export async function discover(issuer: string, clientId: string, clientSecret?: string): Promise<oidc.Configuration> {
  return oidc.discovery(
    new URL(issuer),
    clientId,
    clientSecret ? { client_secret: clientSecret } : undefined,
    clientSecret ? undefined : oidc.None(),
    {
      execute: [oidc.allowInsecureRequests],
    },
  );
}

export interface SignInResult {
  tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
  claims: oidc.IDToken;
  nonce: string;
}

/** Runs authorization code + PKCE through the real pages: login form (if asked), consent (if asked), code exchange. */
export async function signIn(
  browser: Browser,
  config: oidc.Configuration,
  options: {
    username: string;
    password?: string;
    scope?: string;
    prompt?: string;
    redirectUri?: string;
    expectConsent?: boolean;
    /** Bind the tokens to this DPoP key (the code exchange sends its proofs). */
    dpop?: oidc.DPoPHandle;
  },
): Promise<SignInResult & { sawLogin: boolean; sawConsent: boolean }> {
  const verifier = oidc.randomPKCECodeVerifier();
  const nonce = oidc.randomNonce();
  const state = oidc.randomState();
  const redirectUri = options.redirectUri ?? REDIRECT_URI;
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: options.scope ?? 'openid profile email',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
    state,
    // OpenID Connect only grants offline_access together with prompt=consent.
    ...(options.prompt
      ? { prompt: options.prompt }
      : (options.scope ?? '').includes('offline_access')
        ? { prompt: 'consent' }
        : {}),
  });
  const issuerOrigin = new URL(config.serverMetadata().issuer).origin;
  let page = await browser.navigate(url, {}, issuerOrigin);
  let sawLogin = false;
  let sawConsent = false;
  for (let step = 0; step < 4 && !page.url.startsWith(redirectUri); step++) {
    if (page.body.includes('name="password"')) {
      sawLogin = true;
      const form = formWithAction(page.body, '/login');
      page = await browser.navigate(
        new URL(form.action, page.url),
        {
          form: {
            ...form.fields,
            username: options.username,
            password: options.password ?? `${options.username}-password`,
          },
        },
        issuerOrigin,
      );
      if (page.body.includes('Invalid username or password')) throw new Error('login failed');
      continue;
    }
    if (page.body.includes('/confirm')) {
      sawConsent = true;
      const form = formWithAction(page.body, '/confirm');
      page = await browser.navigate(new URL(form.action, page.url), { form: form.fields }, issuerOrigin);
      continue;
    }
    throw new Error(`unexpected page ${page.status} ${page.url}:\n${page.body.slice(0, 600)}`);
  }
  if (!page.url.startsWith(redirectUri)) throw new Error(`did not reach the redirect uri: ${page.url}`);
  const tokens = await oidc.authorizationCodeGrant(
    config,
    new URL(page.url),
    {
      pkceCodeVerifier: verifier,
      expectedNonce: nonce,
      expectedState: state,
      idTokenExpected: true,
    },
    undefined,
    { DPoP: options.dpop },
  );
  return { tokens, claims: tokens.claims()!, nonce, sawLogin, sawConsent };
}

/** Starts an authorization request and returns the first page the browser lands on (login page, or the redirect). */
export async function startAuthorization(
  browser: Browser,
  config: oidc.Configuration,
  extra: Record<string, string> = {},
): Promise<Page> {
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...extra,
  });
  return browser.navigate(url, {}, new URL(config.serverMetadata().issuer).origin);
}

/** A loopback endpoint that records back-channel logout tokens; answers with the queued statuses, then 200. */
export class LogoutReceiver {
  readonly tokens: string[] = [];
  readonly statuses: number[] = [];
  /** Milliseconds to wait before answering (a slow relying party). */
  delayMs = 0;
  #server: Server;
  #waiters: (() => void)[] = [];
  url = '';

  constructor() {
    this.#server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', async () => {
        if (this.delayMs) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
        const status = this.statuses.shift() ?? 200;
        if (status === 200) this.tokens.push(new URLSearchParams(body).get('logout_token') ?? '');
        res.statusCode = status;
        res.end();
        for (const waiter of this.#waiters.splice(0)) waiter();
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/backchannel-logout`;
    return this;
  }

  /** Resolves when at least `count` tokens have arrived (fails after `timeoutMs`). */
  async waitFor(count: number, timeoutMs = 10_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.tokens.length < count) {
      if (Date.now() > deadline) throw new Error(`expected ${count} logout tokens, got ${this.tokens.length}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
    return this.tokens;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

export { Browser };
