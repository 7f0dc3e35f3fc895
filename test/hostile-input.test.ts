/**
 * Property-based tests (fast-check): hostile input at the admin API, the paging token, the login form, the provider's
 * endpoints (percent-encoded bytes that are not UTF-8, NULs) and the config loader never causes a 5xx or an uncaught
 * exception, and nothing is written on rejected input.
 */
import test from 'ava';
import fc from 'fast-check';
import * as oidc from 'openid-client';
import { QueryTypes } from 'sequelize';
import { ConfigError, validateConfig } from '../config/load.js';
import { decodePagingToken } from '../stores/paging-token.js';
import { Browser } from './helpers/browser.js';
import { ALL_DIALECTS } from './helpers/databases.js';
import { discover, REDIRECT_URI, startAuthorization } from './helpers/relying-party.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let gatehouse: TestServer;
let adminToken: string;

test.before(async () => {
  gatehouse = await startTestServer({
    config: {
      serverSideSessions: { enabled: true },
      clients: [
        { client_id: 'web', client_secret: 'web-secret', redirect_uris: [REDIRECT_URI] },
        {
          client_id: 'admin',
          client_secret: 'admin-secret',
          grant_types: ['client_credentials'],
          scope: 'gatehouse:admin',
        },
      ],
    },
  });
  const admin = await discover(gatehouse.issuer, 'admin', 'admin-secret');
  adminToken = (await oidc.clientCredentialsGrant(admin, { scope: 'gatehouse:admin' })).access_token;
});

test.after.always(() => gatehouse?.close());

const hostileString = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.string({ unit: 'grapheme', maxLength: 50 }),
  fc.constantFrom(
    "' OR 1=1 --",
    '%',
    '_',
    '\\',
    '\u0000',
    '../../etc/passwd',
    '<script>alert(1)</script>',
    'a'.repeat(5000),
    '1e309',
    '-1',
    '0',
    'NaN',
    'true,false',
  ),
);

/** Raw bytes, percent-encoded one by one: mostly not UTF-8, sometimes a NUL or another control character. */
const percentEncodedBytes = fc
  .uint8Array({ minLength: 1, maxLength: 12 })
  .map((bytes) => [...bytes].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join(''));

/** What the edge must refuse: bytes that are not UTF-8, or that decode to a control character (tab, LF, CR aside). */
function refusedAtTheEdge(encoded: string): boolean {
  const bytes = Buffer.from(
    encoded
      .split('%')
      .slice(1)
      .map((hex) => Number.parseInt(hex, 16)),
  );
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return true;
  }
  return /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text);
}

async function signedInSessions(): Promise<number> {
  const [row] = await gatehouse.server.sequelize.query<{ n: number }>(
    'SELECT COUNT(*) AS n FROM server_side_sessions WHERE subject_id IS NOT NULL',
    {
      type: QueryTypes.SELECT,
    },
  );
  return Number(row.n);
}

test('the paging token decoder never throws and accepts only well-formed tokens', (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.base64String(), fc.anything()), (value) => {
      const decoded = decodePagingToken(value);
      return decoded === null || (typeof decoded.sessionId === 'string' && Number.isFinite(decoded.created));
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('the config loader rejects anything invalid with a ConfigError, never another exception', (t) => {
  fc.assert(
    fc.property(fc.anything({ maxDepth: 3 }), (input) => {
      try {
        validateConfig(input);
        return true;
      } catch (error) {
        return (
          error instanceof ConfigError &&
          error.problems.length > 0 &&
          error.problems.every((p) => /^[\w.[\]()]+: /.test(p) || /: /.test(p))
        );
      }
    }),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(
      fc.record(
        {
          port: fc.anything(),
          database: fc.anything(),
          serverSideSessions: fc.anything(),
          clients: fc.anything(),
          accounts: fc.anything(),
        },
        { requiredKeys: [] },
      ),
      (input) => {
        try {
          validateConfig(input);
          return true;
        } catch (error) {
          return error instanceof ConfigError;
        }
      },
    ),
    { numRuns: 500 },
  );
  t.pass();
});

test('the admin API answers hostile queries with 200 or 400 JSON, never a 5xx, and writes nothing', async (t) => {
  const before = await signedInSessions();
  const names = fc.constantFrom(
    'subject',
    'sessionId',
    'displayName',
    'clientId',
    'pageSize',
    'page',
    'count',
    'bogus',
    'revokeTokens',
    '__proto__',
  );
  await fc.assert(
    fc.asyncProperty(
      fc.dictionary(names, hostileString, { maxKeys: 5 }),
      fc.constantFrom('GET', 'DELETE'),
      hostileString,
      async (params, method, id) => {
        const query = new URLSearchParams(params as Record<string, string>).toString();
        const path =
          method === 'GET'
            ? `/admin/api/v1/sessions?${query}`
            : `/admin/api/v1/sessions/${encodeURIComponent(id)}?${query}`;
        const response = await fetch(`${gatehouse.issuer}${path}`, {
          method,
          headers: { authorization: `Bearer ${adminToken}` },
        });
        const body = await response.text();
        if (response.status >= 500) throw new Error(`${method} ${path} -> ${response.status} ${body}`);
        JSON.parse(body);
        return [200, 400, 404, 405].includes(response.status);
      },
    ),
    { numRuns: 150 },
  );
  t.is(await signedInSessions(), before);
});

test('hostile bearer tokens get 401, never a 5xx', async (t) => {
  await fc.assert(
    fc.asyncProperty(hostileString, async (token) => {
      const value = `Bearer ${token}`.replace(/[\r\n\u0000-\u001f\u007f-\uffff]/g, '');
      const response = await fetch(`${gatehouse.issuer}/admin/api/v1/sessions`, { headers: { authorization: value } });
      return response.status === 401;
    }),
    { numRuns: 100 },
  );
  t.pass();
});

test('the login form answers hostile fields with the form again or 403, never a 5xx, and signs nobody in', async (t) => {
  const config = await discover(gatehouse.issuer, 'web', 'web-secret');
  const browser = new Browser();
  const login = await startAuthorization(browser, config);
  const action = new URL(/action="([^"]*\/login)"/.exec(login.body)![1], login.url);
  const csrf = /name="csrf" value="([^"]+)"/.exec(login.body)![1];
  const before = await signedInSessions();
  await fc.assert(
    fc.asyncProperty(hostileString, hostileString, fc.option(hostileString), async (username, password, forgedCsrf) => {
      const page = await browser.request(action, { form: { csrf: forgedCsrf ?? csrf, username, password } });
      if (page.status >= 500) throw new Error(`login -> ${page.status}`);
      // Control characters in any field: 400 before anything else. Otherwise a forged token: 403; else the form
      // again (200), or 429 once this address has failed too often (the sign-in throttle).
      if ([username, password, forgedCsrf ?? ''].some((v) => /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(v)))
        return page.status === 400;
      return forgedCsrf === null || forgedCsrf === csrf
        ? page.status === 200 || page.status === 429
        : page.status === 403;
    }),
    { numRuns: 60 },
  );
  t.is(await signedInSessions(), before);
});

test("the provider's endpoints answer hostile parameters without a 5xx", async (t) => {
  const basic = `Basic ${Buffer.from('web:web-secret').toString('base64')}`;
  await fc.assert(
    fc.asyncProperty(
      hostileString,
      hostileString,
      fc.constantFrom('authorization_code', 'refresh_token', 'client_credentials', 'bogus'),
      async (value, clientId, grantType) => {
        const token = await fetch(`${gatehouse.issuer}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
          body: new URLSearchParams({
            grant_type: grantType,
            code: value,
            refresh_token: value,
            redirect_uri: REDIRECT_URI,
            scope: value,
          }).toString(),
        });
        const auth = await fetch(
          `${gatehouse.issuer}/auth?${new URLSearchParams({ client_id: clientId, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT_URI, state: value })}`,
          {
            redirect: 'manual',
          },
        );
        const introspect = await fetch(`${gatehouse.issuer}/token/introspection`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
          body: new URLSearchParams({ token: value }).toString(),
        });
        for (const response of [token, auth, introspect]) {
          if (response.status >= 500) throw new Error(`${response.url} -> ${response.status} ${await response.text()}`);
        }
        return true;
      },
    ),
    { numRuns: 100 },
  );
  t.pass();
});

test('percent-encoded bytes that are not UTF-8 or decode to control characters get 400 at the edge, anywhere in the URL', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      percentEncodedBytes,
      fc.constantFrom('client_id', 'state', 'redirect_uri', 'scope'),
      async (encoded, name) => {
        const response = await fetch(`${gatehouse.issuer}/auth?response_type=code&${name}=${encoded}&client_id=web`, {
          redirect: 'manual',
        });
        const body = await response.text();
        if (response.status >= 500) throw new Error(`${encoded} -> ${response.status} ${body}`);
        return refusedAtTheEdge(encoded)
          ? response.status === 400 && JSON.parse(body).error === 'invalid_request'
          : response.status !== 400 || !body.includes('percent-encoded');
      },
    ),
    { numRuns: 150 },
  );
  t.pass();
});

test("the provider's form endpoints answer bytes that are not UTF-8 and NULs in their bodies without a 5xx", async (t) => {
  await fc.assert(
    fc.asyncProperty(percentEncodedBytes, percentEncodedBytes, async (clientId, token) => {
      for (const [path, body] of [
        ['/token', `grant_type=client_credentials&client_id=${clientId}&client_secret=${token}`],
        ['/token', `grant_type=refresh_token&refresh_token=${token}&client_id=web&client_secret=web-secret`],
        ['/token/introspection', `token=${token}&client_id=${clientId}&client_secret=x`],
        ['/token/revocation', `token=${token}&client_id=web&client_secret=web-secret`],
      ]) {
        const response = await fetch(`${gatehouse.issuer}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body,
        });
        if (response.status >= 500) throw new Error(`${path} ${body} -> ${response.status} ${await response.text()}`);
      }
      return true;
    }),
    { numRuns: 60 },
  );
  t.pass();
});

for (const dialect of ALL_DIALECTS) {
  test(`${dialect}: GET /auth?client_id=%00%ff%fe is a 400, and a NUL client_id in a token request body an unknown client`, async (t) => {
    const server = await startTestServer({
      dialect,
      config: { clients: [{ client_id: 'web', client_secret: 'web-secret', redirect_uris: [REDIRECT_URI] }] },
    });
    t.teardown(() => server.close());
    const response = await fetch(`${server.issuer}/auth?client_id=%00%ff%fe`, { redirect: 'manual' });
    t.is(response.status, 400);
    t.deepEqual(await response.json(), {
      error: 'invalid_request',
      error_description: 'the URL is not valid percent-encoded UTF-8',
    });
    const token = await fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&client_id=%00%ff&client_secret=x',
    });
    t.is(token.status, 401);
    t.is(((await token.json()) as { error: string }).error, 'invalid_client');
  });
}
