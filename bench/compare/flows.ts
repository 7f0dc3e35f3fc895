/**
 * The relying party and browser side of every measured operation, over loopback HTTP with a lean client:
 *
 * - `loginFlow`: authorization request with PKCE (S256) → the real login form, POSTed (its hidden fields, e.g.
 *   Gatehouse's CSRF token, as the page gave them) → consent, when the server asks → the code → `/token`. A fresh cookie
 *   jar each time, as a new browser would have.
 * - client credentials (an opaque token, and a JWT for an API), refresh (each worker its own rotating chain), userinfo
 *   and introspection.
 * - `logout`: RP-initiated logout of a browser a login flow left signed in (`id_token_hint`) → the confirmation page
 *   → its form POSTed with "yes" → the signed-out page.
 *
 * Every response is checked (status and the field that matters), so an error never counts as a fast operation.
 */
import { createHash, randomBytes } from 'node:crypto';
import { formWithAction } from '../../test/helpers/browser.js';
import { ADMIN_CLIENT, BENCH_API, REDIRECT_URI, SERVICE_CLIENT, WEB_CLIENT, type BenchUser } from './fixtures.js';
import { basicAuth, CookieJar, HttpClient, type Response } from './http.js';

export interface TokenSet {
  access_token: string;
  refresh_token?: string;
  id_token?: string;
}

interface Endpoints {
  authorization: string;
  token: string;
  userinfo: string;
  introspection: string;
  endSession: string;
}

/** A browser left signed in by a login flow, and its ID token (for a logout). */
export interface SignedIn {
  jar: CookieJar;
  idToken: string;
}

const WEB_AUTH = basicAuth(WEB_CLIENT.id, WEB_CLIENT.secret);
const SERVICE_AUTH = basicAuth(SERVICE_CLIENT.id, SERVICE_CLIENT.secret);

function fail(what: string, response: Response): never {
  throw new Error(`${what}: HTTP ${response.status} ${response.body.slice(0, 300)}`);
}

export class Driver {
  readonly http: HttpClient;
  #endpoints?: Endpoints;
  /** Each worker's token chain (refresh token and its latest access token). */
  readonly chains: TokenSet[] = [];

  constructor(
    readonly issuer: string,
    maxSockets: number,
  ) {
    this.http = new HttpClient(issuer, maxSockets);
  }

  async discover(): Promise<void> {
    const response = await this.http.send('/.well-known/openid-configuration');
    if (response.status !== 200) fail('discovery', response);
    const metadata = JSON.parse(response.body) as Record<string, string>;
    const path = (url: string) => new URL(url).pathname;
    this.#endpoints = {
      authorization: path(metadata.authorization_endpoint),
      token: path(metadata.token_endpoint),
      userinfo: path(metadata.userinfo_endpoint),
      introspection: path(metadata.introspection_endpoint),
      endSession: path(metadata.end_session_endpoint),
    };
  }

  /** The discovery document, as a client fetches it: no storage on any server. */
  async discoveryDocument(): Promise<void> {
    const response = await this.http.send('/.well-known/openid-configuration');
    if (response.status !== 200 || !response.body.includes('"issuer"')) fail('discovery', response);
  }

  get endpoints(): Endpoints {
    if (!this.#endpoints) throw new Error('discover() first');
    return this.#endpoints;
  }

  /** One complete interactive login; resolves to the tokens and whether the consent page was shown. */
  async loginFlow(
    user: BenchUser,
    options: { scope: string; prompt?: string },
    jar = new CookieJar(),
  ): Promise<TokenSet & { sawConsent: boolean }> {
    const verifier = randomBytes(32).toString('base64url');
    const params = new URLSearchParams({
      client_id: WEB_CLIENT.id,
      response_type: 'code',
      redirect_uri: REDIRECT_URI,
      scope: options.scope,
      state: randomBytes(12).toString('base64url'),
      nonce: randomBytes(12).toString('base64url'),
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      ...(options.prompt ? { prompt: options.prompt } : {}),
    });
    let url = new URL(`${this.endpoints.authorization}?${params}`, this.issuer);
    let response = await this.http.send(url.href, { cookies: jar });
    let code: string | null = null;
    let sawConsent = false;
    let sawLogin = false;
    for (let step = 0; step < 12 && code === null; step++) {
      const location = response.headers.location;
      if (response.status >= 300 && response.status < 400 && typeof location === 'string') {
        const next = new URL(location, url);
        if (next.href.startsWith(REDIRECT_URI)) {
          code = next.searchParams.get('code');
          if (!code) throw new Error(`no code in the redirect: ${next.search.slice(0, 200)}`);
          break;
        }
        url = next;
        response = await this.http.send(url.href, { cookies: jar });
        continue;
      }
      if (response.status === 200 && response.body.includes('name="password"')) {
        if (sawLogin) throw new Error('the login form was refused');
        sawLogin = true;
        const form = formWithAction(response.body, '/login');
        url = new URL(form.action, url);
        response = await this.http.send(url.href, {
          cookies: jar,
          form: { ...form.fields, username: user.username, password: user.password },
        });
        continue;
      }
      if (response.status === 200 && response.body.includes('/confirm')) {
        sawConsent = true;
        const form = formWithAction(response.body, '/confirm');
        url = new URL(form.action, url);
        response = await this.http.send(url.href, { cookies: jar, form: form.fields });
        continue;
      }
      fail(`login flow at ${url.pathname}`, response);
    }
    if (!code) throw new Error('the login flow did not reach the redirect URI');
    if (!sawLogin) throw new Error('the login flow skipped the login form (a session was reused)');
    const tokens = await this.#token(WEB_AUTH, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT_URI,
      code_verifier: verifier,
    });
    if (!tokens.id_token) throw new Error('the code exchange returned no id_token');
    return { ...tokens, sawConsent };
  }

  /** A login flow whose browser stays signed in, for `logout`. */
  async signIn(user: BenchUser, scope: string): Promise<SignedIn> {
    const jar = new CookieJar();
    const tokens = await this.loginFlow(user, { scope }, jar);
    return { jar, idToken: tokens.id_token! };
  }

  /** RP-initiated logout of a signed-in browser, confirmed on the logout page. */
  async logout(session: SignedIn): Promise<void> {
    const query = new URLSearchParams({ id_token_hint: session.idToken, client_id: WEB_CLIENT.id });
    const page = await this.http.send(`${this.endpoints.endSession}?${query}`, { cookies: session.jar });
    if (page.status !== 200 || !page.body.includes('name="logout"')) fail('logout page', page);
    const form = formWithAction(page.body, '/session/end/confirm');
    const confirmed = await this.http.send(new URL(form.action, this.issuer).pathname, {
      cookies: session.jar,
      form: { ...form.fields, logout: 'yes' },
    });
    const location = confirmed.headers.location;
    if (confirmed.status < 300 || confirmed.status >= 400 || typeof location !== 'string')
      fail('logout confirmation', confirmed);
    const done = await this.http.send(new URL(location, this.issuer).href, { cookies: session.jar });
    if (done.status !== 200) fail('signed-out page', done);
  }

  async clientCredentials(): Promise<void> {
    await this.#token(SERVICE_AUTH, { grant_type: 'client_credentials' });
  }

  /** Client credentials for the bench API: an RS256-signed JWT access token (nothing stored). */
  async clientCredentialsJwt(): Promise<void> {
    const tokens = await this.#token(SERVICE_AUTH, {
      grant_type: 'client_credentials',
      resource: BENCH_API.identifier,
      scope: BENCH_API.scope,
    });
    if (tokens.access_token.split('.').length !== 3)
      throw new Error('client_credentials for the bench API returned no JWT access token');
  }

  /** An admin API token (Gatehouse only). */
  async adminToken(): Promise<string> {
    return (
      await this.#token(basicAuth(ADMIN_CLIENT.id, ADMIN_CLIENT.secret), {
        grant_type: 'client_credentials',
        scope: ADMIN_CLIENT.scope,
      })
    ).access_token;
  }

  /** Worker `worker`'s chain: a login with offline_access (consent asked, as OpenID Connect requires for it). */
  async startChain(worker: number, user: BenchUser, scope: string): Promise<void> {
    const tokens = await this.loginFlow(user, { scope, prompt: 'consent' });
    if (!tokens.refresh_token) throw new Error('no refresh token (offline_access not granted)');
    this.chains[worker] = tokens;
  }

  async refresh(worker: number): Promise<void> {
    const chain = this.chains[worker];
    const tokens = await this.#token(WEB_AUTH, { grant_type: 'refresh_token', refresh_token: chain.refresh_token! });
    if (!tokens.refresh_token) throw new Error('the refresh grant returned no refresh token');
    this.chains[worker] = tokens;
  }

  async userinfo(worker: number): Promise<void> {
    const response = await this.http.send(this.endpoints.userinfo, {
      headers: { authorization: `Bearer ${this.chains[worker].access_token}` },
    });
    if (response.status !== 200 || !response.body.includes('"sub"')) fail('userinfo', response);
  }

  async introspect(worker: number): Promise<void> {
    const response = await this.http.send(this.endpoints.introspection, {
      headers: { authorization: WEB_AUTH, accept: 'application/json' },
      form: { token: this.chains[worker].access_token },
    });
    if (response.status !== 200 || !response.body.includes('"active":true')) fail('introspection', response);
  }

  async #token(authorization: string, form: Record<string, string>): Promise<TokenSet> {
    const response = await this.http.send(this.endpoints.token, {
      headers: { authorization, accept: 'application/json' },
      form,
    });
    if (response.status !== 200) fail(`token (${form.grant_type})`, response);
    const tokens = JSON.parse(response.body) as TokenSet;
    if (!tokens.access_token) fail(`token (${form.grant_type}) without access_token`, response);
    return tokens;
  }

  close(): void {
    this.http.close();
  }
}
