/**
 * Gatehouse behind a TLS-terminating proxy, end to end over real HTTP(S): a loopback HTTPS proxy (a throwaway
 * self-signed certificate, trusted by this test process only) terminates TLS and forwards plain HTTP to Gatehouse with
 * X-Forwarded-Proto/Host/For, the way nginx or a load balancer does. With `proxy: true` and an `https:` issuer every
 * response carries Strict-Transport-Security and every cookie (`_interaction`, `_interaction_resume`, `_session`,
 * the console's) is `Secure; HttpOnly; SameSite=Lax`. With an `http:` issuer there is no HSTS and no Secure flag.
 *
 * What happens without the proxy setting (`proxy: false`, https issuer, plain HTTP): oidc-provider derives the Secure
 * flag from the connection (`ctx.secure`), never from the issuer, and Gatehouse does not force `secure: true` (the
 * `cookies` module would then throw "Cannot send secure cookie over unencrypted connection" on every plain request).
 * So the request succeeds and the cookies silently lose `Secure`; a forged X-Forwarded-Proto is ignored. HSTS follows
 * the issuer and is still sent (browsers ignore it over plain HTTP, RFC 6797 §8.1; behind a TLS proxy they get it over
 * HTTPS even if `proxy: true` was forgotten).
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { Browser, formWithAction, type Page } from './helpers/browser.js';
import { authorizationPath, discover, REDIRECT_URI, signIn } from './helpers/relying-party.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const run = promisify(execFile);

const HSTS = 'max-age=31536000; includeSubDomains';
/** The browser's address as the proxy reports it (a documentation address: only ever a header value here). */
const CLIENT_IP = '198.51.100.23';
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
  'te',
  'trailer',
]);

const CLIENTS = [{ client_id: 'web', client_secret: 'web-secret', redirect_uris: [REDIRECT_URI], skipConsent: true }];

/** Terminates TLS on a loopback port and forwards plain HTTP to Gatehouse, like nginx with the usual X-Forwarded-* lines. */
class TlsTerminatingProxy {
  readonly #server: HttpsServer;
  port = 0;
  upstreamPort = 0;

  constructor(credentials: { key: string; cert: string }) {
    this.#server = createHttpsServer(credentials, (req, res) => {
      const headers: IncomingHttpHeaders = {};
      for (const [name, value] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(name)) headers[name] = value;
      // The upstream sees its own address as Host (nginx's default `proxy_set_header Host $proxy_host`).
      headers.host = `127.0.0.1:${this.upstreamPort}`;
      headers['x-forwarded-proto'] = 'https';
      headers['x-forwarded-host'] = req.headers.host;
      headers['x-forwarded-for'] = CLIENT_IP;
      const upstream = httpRequest(
        { host: '127.0.0.1', port: this.upstreamPort, method: req.method, path: req.url, headers },
        (response) => {
          const out: IncomingHttpHeaders = {};
          for (const [name, value] of Object.entries(response.headers)) if (!HOP_BY_HOP.has(name)) out[name] = value;
          res.writeHead(response.statusCode ?? 502, out);
          response.pipe(res);
        },
      );
      upstream.on('error', () => {
        res.statusCode = 502;
        res.end();
      });
      req.pipe(upstream);
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as AddressInfo).port;
    return this;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}

/** A Browser that keeps every response it received (status, headers, body), redirects included. */
class RecordingBrowser extends Browser {
  readonly responses: Page[] = [];

  override async request(url: string | URL, init: Parameters<Browser['request']>[1] = {}): Promise<Page> {
    const page = await super.request(url, init);
    this.responses.push(page);
    return page;
  }

  setCookies(): string[] {
    return this.responses.flatMap((page) => page.headers.getSetCookie());
  }
}

interface SetCookie {
  name: string;
  value: string;
  attributes: Map<string, string>;
  raw: string;
}

function parseSetCookie(raw: string): SetCookie {
  const [pair, ...rest] = raw.split(';').map((part) => part.trim());
  const eq = pair.indexOf('=');
  const attributes = new Map<string, string>();
  for (const attribute of rest) {
    const [key, ...value] = attribute.split('=');
    attributes.set(key.toLowerCase(), value.join('='));
  }
  return { name: pair.slice(0, eq), value: pair.slice(eq + 1), attributes, raw };
}

/** HttpOnly and SameSite=Lax always; Secure exactly when `secure`. */
function assertCookieFlags(t: ExecutionContext, cookies: SetCookie[], secure: boolean) {
  t.true(cookies.length > 0, 'some cookies were set');
  for (const cookie of cookies) {
    t.is(cookie.attributes.has('secure'), secure, `Secure ${secure ? 'expected' : 'unexpected'}: ${cookie.raw}`);
    t.true(cookie.attributes.has('httponly'), `HttpOnly expected: ${cookie.raw}`);
    t.is(cookie.attributes.get('samesite'), 'lax', `SameSite=Lax expected: ${cookie.raw}`);
  }
}

function named(cookies: SetCookie[], name: string): SetCookie[] {
  return cookies.filter((cookie) => cookie.name === name && cookie.value !== '');
}

let certificateDir: string;
let proxy: TlsTerminatingProxy;
let proxied: TestServer;
let publicIssuer: string;
let listenerUrl: string;

test.before(async () => {
  // A certificate for 127.0.0.1, made now and trusted by this process only (no key material in the repository).
  certificateDir = mkdtempSync(join(tmpdir(), 'gatehouse-tls-'));
  const key = join(certificateDir, 'key.pem');
  const cert = join(certificateDir, 'cert.pem');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
  ]);
  const credentials = { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
  tls.setDefaultCACertificates([...tls.getCACertificates('default'), credentials.cert]);

  proxy = await new TlsTerminatingProxy(credentials).start();
  publicIssuer = `https://127.0.0.1:${proxy.port}`;
  proxied = await startTestServer({
    config: { issuer: publicIssuer, proxy: true, serverSideSessions: { enabled: true }, clients: CLIENTS },
  });
  const { port } = await proxied.server.listen();
  proxy.upstreamPort = port;
  listenerUrl = `http://127.0.0.1:${port}`;
});

test.after.always(async () => {
  await proxy?.close();
  await proxied?.close();
  if (certificateDir) rmSync(certificateDir, { recursive: true, force: true });
});

test('behind a TLS-terminating proxy (proxy: true): HSTS on the pages, Secure HttpOnly SameSite=Lax cookies through a real sign-in', async (t) => {
  t.is(proxied.issuer, publicIssuer);

  // Discovery and the home page, over real TLS through the proxy.
  const discovery = await fetch(`${publicIssuer}/.well-known/openid-configuration`);
  t.is(discovery.status, 200);
  t.is(discovery.headers.get('strict-transport-security'), HSTS);
  const metadata = (await discovery.json()) as Record<string, unknown>;
  t.is(metadata.issuer, publicIssuer);
  t.true(String(metadata.authorization_endpoint).startsWith(`${publicIssuer}/`));
  const home = await fetch(`${publicIssuer}/`);
  t.is(home.status, 200);
  t.is(home.headers.get('strict-transport-security'), HSTS);

  // A whole sign-in: authorization request, login page, login form, resume, code exchange.
  const web = await discover(publicIssuer, 'web', 'web-secret');
  const browser = new RecordingBrowser();
  const { claims, sawLogin } = await signIn(browser, web, { username: 'alice', scope: 'openid' });
  t.true(sawLogin);
  t.is(claims.iss, publicIssuer);
  t.is(claims.sub, 'alice');

  const loginPage = browser.responses.find((page) => page.status === 200 && page.body.includes('name="password"'));
  t.truthy(loginPage, 'the login page was shown');
  t.true(new URL(loginPage!.url).pathname.startsWith('/interaction/'));
  t.regex(loginPage!.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  for (const page of browser.responses) {
    t.is(page.headers.get('strict-transport-security'), HSTS, `HSTS on ${page.status} ${new URL(page.url).pathname}`);
  }

  // Every cookie set during the flow, including the .sig companions and the cleared interaction cookies.
  const cookies = browser.setCookies().map(parseSetCookie);
  t.log([
    ...new Set(
      cookies.map(
        (cookie) =>
          `${cookie.name}; ${cookie.raw
            .split(';')
            .slice(1)
            .map((part) => part.trim())
            .filter((part) => !/^expires=/i.test(part))
            .join('; ')}`,
      ),
    ),
  ]);
  assertCookieFlags(t, cookies, true);
  const [interaction] = named(cookies, '_interaction');
  t.truthy(interaction, '_interaction was set');
  t.regex(
    interaction.attributes.get('path') ?? '',
    /^\/interaction\/[\w-]+$/,
    '_interaction is scoped to its interaction',
  );
  const [resume] = named(cookies, '_interaction_resume');
  t.truthy(resume, '_interaction_resume was set');
  t.regex(resume.attributes.get('path') ?? '', /^\/auth\/[\w-]+$/, '_interaction_resume is scoped to its resume path');
  const [session] = named(cookies, '_session');
  t.truthy(session, '_session was set');
  t.is(session.attributes.get('path'), '/');
  t.true(Date.parse(session.attributes.get('expires') ?? '') > Date.now(), '_session is persistent');
  t.is(named(cookies, '_session.sig').length, named(cookies, '_session').length, '_session is signed');
  const [device] = named(cookies, 'gatehouse.device');
  t.truthy(device, 'the sign-in left a device cookie (sign-in protection), Secure like the rest');
  t.is(device.attributes.get('path'), '/interaction');
  t.is(named(cookies, 'gatehouse.device.sig').length, 1, 'the device cookie is signed');

  // X-Forwarded-For is trusted: the server-side session records the browser's address, not the proxy's.
  const [stored] = await proxied.server.sessionStore!.getSessions({ subjectId: 'alice' });
  t.is(stored.loginIp, CLIENT_IP);

  // X-Forwarded-Host is trusted: the logout confirmation names the public host, not the upstream's 127.0.0.1:<port>.
  const logout = await browser.navigate(`${web.serverMetadata().end_session_endpoint}?client_id=web`);
  t.is(logout.status, 200);
  t.true(logout.body.includes(`signed in to 127.0.0.1:${proxy.port} as`), logout.body.slice(0, 400));
  t.is(logout.headers.get('strict-transport-security'), HSTS);
  const form = formWithAction(logout.body, '/session/end/confirm');
  const before = browser.responses.length;
  await browser.navigate(new URL(form.action, logout.url), { form: form.fields });
  const cleared = browser.responses
    .slice(before)
    .flatMap((page) => page.headers.getSetCookie())
    .map(parseSetCookie);
  t.true(
    cleared.some((cookie) => cookie.name === '_session'),
    'logout rewrites the session cookie',
  );
  assertCookieFlags(t, cleared, true);
});

test('behind the proxy, the console sign-in cookie is Secure too', async (t) => {
  const response = await fetch(`${publicIssuer}/admin/sessions`, { redirect: 'manual' });
  t.is(response.status, 302);
  t.true(
    (response.headers.get('location') ?? '').startsWith(`${publicIssuer}/auth?`),
    'redirected to the public authorization endpoint',
  );
  t.is(response.headers.get('strict-transport-security'), HSTS);
  const cookies = response.headers.getSetCookie().map(parseSetCookie);
  t.truthy(named(cookies, 'gatehouse.console')[0], 'the pending sign-in cookie was set');
  assertCookieFlags(t, cookies, true);
});

test('with proxy: true the Secure flag follows X-Forwarded-Proto per request: a request that bypasses the proxy gets none', async (t) => {
  const direct = await fetch(`${listenerUrl}${authorizationPath()}`, { redirect: 'manual' });
  t.is(direct.status, 303);
  t.regex(direct.headers.get('location') ?? '', /^\/interaction\/[\w-]+$/);
  assertCookieFlags(t, direct.headers.getSetCookie().map(parseSetCookie), false);

  const forwarded = await fetch(`${listenerUrl}${authorizationPath()}`, {
    redirect: 'manual',
    headers: { 'x-forwarded-proto': 'https' },
  });
  t.is(forwarded.status, 303);
  assertCookieFlags(t, forwarded.headers.getSetCookie().map(parseSetCookie), true);
});

test('an http issuer sends no Strict-Transport-Security and no Secure cookies', async (t) => {
  const gatehouse = await startTestServer({ config: { serverSideSessions: { enabled: true }, clients: CLIENTS } });
  t.teardown(() => gatehouse.close());
  t.regex(gatehouse.issuer, /^http:\/\//);

  const discovery = await fetch(`${gatehouse.issuer}/.well-known/openid-configuration`);
  t.is(discovery.status, 200);
  t.is(discovery.headers.get('strict-transport-security'), null);
  t.is(discovery.headers.get('x-content-type-options'), 'nosniff', 'the other security headers are there');
  t.is((await fetch(`${gatehouse.issuer}/`)).headers.get('strict-transport-security'), null);

  const browser = new RecordingBrowser();
  const { sawLogin } = await signIn(browser, await discover(gatehouse.issuer, 'web', 'web-secret'), {
    username: 'bob',
    scope: 'openid',
  });
  t.true(sawLogin);
  for (const page of browser.responses) {
    t.is(
      page.headers.get('strict-transport-security'),
      null,
      `no HSTS on ${page.status} ${new URL(page.url).pathname}`,
    );
  }
  const cookies = browser.setCookies().map(parseSetCookie);
  assertCookieFlags(t, cookies, false);
  for (const name of ['_interaction', '_interaction_resume', '_session'])
    t.truthy(named(cookies, name)[0], `${name} was set`);
});

test('an https issuer with proxy: false over plain HTTP: the request works, cookies lose Secure, a forged X-Forwarded-Proto is ignored', async (t) => {
  const issuer = 'https://idp.example.test';
  const warnings: string[] = [];
  const sink = new Writable({
    write: (chunk, _encoding, done) => {
      warnings.push(String(chunk));
      done();
    },
  });
  const logger = pino({ level: 'warn' }, sink);
  const gatehouse = await startTestServer({
    config: { issuer, proxy: false, serverSideSessions: { enabled: true }, clients: CLIENTS },
    logger,
  });
  t.teardown(() => gatehouse.close());
  t.true(
    warnings.some((line) => line.includes('the issuer is https but proxy is false')),
    'the start-up warns that cookies will not be Secure',
  );
  const { port } = await gatehouse.server.listen();
  const listener = `http://127.0.0.1:${port}`;

  const discovery = await fetch(`${listener}/.well-known/openid-configuration`);
  t.is(discovery.status, 200);
  t.is(
    ((await discovery.json()) as { issuer: string }).issuer,
    issuer,
    'URLs come from the issuer, whatever the request',
  );
  t.is(
    discovery.headers.get('strict-transport-security'),
    HSTS,
    'HSTS follows the issuer (ignored by browsers over plain HTTP)',
  );

  // A forged "this came over TLS": not trusted without proxy: true, so no Secure flag and no error either.
  const forged = {
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'idp.example.test',
    'x-forwarded-for': '203.0.113.9',
  };
  const authorization = await fetch(`${listener}${authorizationPath()}`, { redirect: 'manual', headers: forged });
  t.is(authorization.status, 303, 'no "Cannot send secure cookie over unencrypted connection" 500');
  const location = new URL(authorization.headers.get('location') ?? '', listener);
  t.regex(location.pathname, /^\/interaction\/[\w-]+$/);
  const cookies = authorization.headers.getSetCookie().map(parseSetCookie);
  assertCookieFlags(t, cookies, false);
  t.truthy(named(cookies, '_interaction')[0]);

  // The login page, reached on the listener with those cookies, still renders (and carries HSTS).
  const browser = new Browser();
  browser.store(authorization.headers.getSetCookie());
  const page = await browser.request(`${listener}${location.pathname}`, { headers: forged });
  t.is(page.status, 200);
  t.true(page.body.includes('name="password"'));
  t.is(page.headers.get('strict-transport-security'), HSTS);
  t.deepEqual(page.headers.getSetCookie(), [], 'the login page sets no cookie');
});
