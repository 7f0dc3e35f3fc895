/**
 * The device authorization grant (RFC 8628) end to end: openid-client as the device, the real pages over HTTP as the
 * user's browser (code entry pre-filled from verification_uri_complete, confirmation, login, consent, success), a
 * server-side session like any sign-in's, cancelled and wrong codes, and throttled code entry.
 */
import test from 'ava';
import fc from 'fast-check';
import * as oidc from 'openid-client';
import { Browser, formWithAction, parseForm, type Page } from './helpers/browser.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const ORDERS = 'https://orders.example.com/';

let gatehouse: TestServer;

test.before(async () => {
  gatehouse = await startTestServer({
    config: {
      // Behind a proxy, so the throttle test can come from its own address (X-Forwarded-For).
      proxy: true,
      serverSideSessions: { enabled: true },
      deviceFlow: { enabled: true, maxFailuresPerIp: 3 },
      clients: [
        {
          client_id: 'tv',
          client_name: 'Living-room TV',
          token_endpoint_auth_method: 'none',
          grant_types: [DEVICE_GRANT, 'refresh_token'],
          scope: 'openid profile offline_access',
        },
        { client_id: 'web', client_secret: 'web-secret', redirect_uris: ['http://127.0.0.1:9/cb'] },
      ],
      apis: [
        { identifier: ORDERS, name: 'Orders', scopes: [{ name: 'orders:read', description: 'Read your orders' }] },
      ],
    },
  });
});

test.after.always(async () => {
  await gatehouse?.close();
});

async function device(): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(gatehouse.issuer), 'tv', undefined, oidc.None(), {
    execute: [oidc.allowInsecureRequests],
  });
}

/** One poll of the token endpoint, as the device would send it. */
async function pollOnce(deviceCode: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${gatehouse.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: 'tv' }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** From the confirmation page: Continue, then the login and consent pages, until the success page. */
async function approve(
  browser: Browser,
  confirmPage: Page,
  user: string,
): Promise<{ page: Page; sawConsent: string | undefined }> {
  let page = await browser.navigate(new URL(parseForm(confirmPage.body, 0).action, confirmPage.url), {
    form: parseForm(confirmPage.body, 0).fields,
  });
  let sawConsent: string | undefined;
  for (let step = 0; step < 4; step++) {
    if (page.body.includes('name="password"')) {
      const form = formWithAction(page.body, '/login');
      page = await browser.navigate(new URL(form.action, page.url), {
        form: { ...form.fields, username: user, password: `${user}-password` },
      });
    } else if (page.body.includes('/confirm"')) {
      sawConsent = page.body;
      const form = formWithAction(page.body, '/confirm');
      page = await browser.navigate(new URL(form.action, page.url), { form: form.fields });
    } else break;
  }
  return { page, sawConsent };
}

test('a device signs in through the code entry, confirmation, login and consent pages', async (t) => {
  const config = await device();
  const authorization = await oidc.initiateDeviceAuthorization(config, {
    scope: 'openid profile offline_access orders:read',
  });
  t.regex(authorization.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
  t.is(authorization.verification_uri, `${gatehouse.issuer}/device`);

  const pending = await pollOnce(authorization.device_code);
  t.is(pending.status, 400);
  t.is(pending.body.error, 'authorization_pending');

  // verification_uri_complete opens the entry page with the code in the field, for the user to check and submit.
  const browser = new Browser();
  const entry = await browser.navigate(authorization.verification_uri_complete!);
  t.is(entry.status, 200);
  t.regex(entry.body, /<h1>Connect a device<\/h1>/);
  const entryForm = parseForm(entry.body, 0);
  t.is(entryForm.fields.user_code, authorization.user_code);
  t.regex(entry.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);

  const confirm = await browser.navigate(new URL(entryForm.action, entry.url), { form: entryForm.fields });
  t.is(confirm.status, 200);
  t.regex(confirm.body, /Connect Living-room TV\?/);
  t.true(confirm.body.includes(authorization.user_code));

  const { page: done, sawConsent } = await approve(browser, confirm, 'alice');
  t.truthy(sawConsent, 'the consent page is shown (the client does not skip it)');
  t.regex(sawConsent!, /Read your orders/, 'the consent page lists the API scope with its description');
  t.regex(sawConsent!, /Orders/);
  t.is(done.status, 200);
  t.regex(done.body, /Device connected/);
  t.regex(done.body, /Living-room TV/);
  t.regex(done.body, /Alice Anderson/);

  const tokens = await oidc.pollDeviceAuthorizationGrant(config, { ...authorization, interval: 0 });
  t.is(tokens.claims()?.sub, 'alice');
  t.truthy(tokens.refresh_token);
  t.is(
    tokens.scope?.split(' ').sort().join(' '),
    'orders:read',
    'the access token is for the API the device asked for',
  );
  const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
  t.truthy(refreshed.access_token);

  // The sign-in made a server-side session like any other, which the device's client is part of.
  const sessions = await gatehouse.server.sessions.sessionsOf('alice');
  t.true(sessions.some((session) => session.clients.some((client) => client.clientId === 'tv')));

  // The code is used up: entering it again is refused on the entry page.
  const again = await browser.navigate(new URL(entryForm.action, entry.url), {
    form: {
      ...parseForm((await browser.navigate(`${gatehouse.issuer}/device`)).body, 0).fields,
      user_code: authorization.user_code,
    },
  });
  t.regex(again.body, /already been used/);
});

test('cancelling on the confirmation page denies the device', async (t) => {
  const config = await device();
  const authorization = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
  const browser = new Browser();
  const entry = await browser.navigate(`${gatehouse.issuer}/device`);
  const entryForm = parseForm(entry.body, 0);
  t.is(entryForm.fields.user_code, '', 'the plain entry page has an empty field');
  // Typed the way people type: lower case, no dash.
  const confirm = await browser.navigate(new URL(entryForm.action, entry.url), {
    form: { ...entryForm.fields, user_code: authorization.user_code.replace('-', '').toLowerCase() },
  });
  t.regex(confirm.body, /Connect Living-room TV\?/);
  // Cancel is the form's second button: abort=yes.
  t.regex(confirm.body, /<button type="submit" name="abort" value="yes" class="secondary">Cancel<\/button>/);
  const form = parseForm(confirm.body, 0);
  const cancelled = await browser.navigate(new URL(form.action, confirm.url), {
    form: { ...form.fields, abort: 'yes' },
  });
  t.regex(cancelled.body, /Sign-in cancelled/);
  const denied = await pollOnce(authorization.device_code);
  t.is(denied.body.error, 'access_denied');
});

test('a wrong code is refused on the entry page, and too many lock code entry from that address', async (t) => {
  const config = await device();
  const authorization = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
  const browser = new Browser();
  const from = { 'x-forwarded-for': '203.0.113.77' };
  const submit = async (userCode: string) => {
    const entry = await browser.request(`${gatehouse.issuer}/device`, { headers: from });
    const form = parseForm(entry.body, 0);
    return browser.request(new URL(form.action, entry.url), {
      form: { ...form.fields, user_code: userCode },
      headers: from,
    });
  };
  for (let attempt = 1; attempt <= 3; attempt++) {
    const wrong = await submit('BCDF-GHJK');
    t.is(wrong.status, 200);
    t.regex(wrong.body, /That code is not valid/);
    t.true(wrong.body.includes('value="BCDF-GHJK"'), 'the wrong code stays in the field to be corrected');
  }
  // Locked: even the right code is refused, before it is looked up.
  const locked = await submit(authorization.user_code);
  t.is(locked.status, 429);
  t.truthy(Number(locked.headers.get('retry-after')) > 0);
  t.regex(locked.body, /Too many wrong codes/);
  t.false(locked.body.includes('Connect Living-room TV'));

  // Another address is not affected.
  const other = await browser.navigate(
    `${gatehouse.issuer}/device?user_code=${encodeURIComponent(authorization.user_code)}`,
  );
  const confirm = await browser.navigate(new URL(parseForm(other.body, 0).action, other.url), {
    form: parseForm(other.body, 0).fields,
  });
  t.regex(confirm.body, /Connect Living-room TV\?/);
});

test('a burst of parallel wrong codes from one address gets no more look-ups than the limit', async (t) => {
  const browser = new Browser();
  const from = { 'x-forwarded-for': '203.0.113.88' };
  const entry = await browser.request(`${gatehouse.issuer}/device`, { headers: from });
  const form = parseForm(entry.body, 0);
  const answers = await Promise.all(
    Array.from({ length: 30 }, () =>
      browser.request(new URL(form.action, entry.url), {
        form: { ...form.fields, user_code: 'BCDF-GHJK' },
        headers: from,
      }),
    ),
  );
  const lookedUp = answers.filter((answer) => /That code is not valid/.test(answer.body)).length;
  t.is(lookedUp, 3, 'deviceFlow.maxFailuresPerIp is 3 here');
  t.is(answers.filter((answer) => answer.status === 429).length, 27);
});

test("a forged X-Forwarded-For entry does not lock out the address it names: the proxy's own entry is counted", async (t) => {
  const browser = new Browser();
  const submit = async (forwardedFor: string) => {
    const from = { 'x-forwarded-for': forwardedFor };
    const entry = await browser.request(`${gatehouse.issuer}/device`, { headers: from });
    const form = parseForm(entry.body, 0);
    return browser.request(new URL(form.action, entry.url), {
      form: { ...form.fields, user_code: 'BCDF-GHJK' },
      headers: from,
    });
  };
  // The attacker (198.18.5.5, as the proxy appends it) writes the victim's address first.
  for (let attempt = 1; attempt <= 3; attempt++) t.is((await submit('198.51.100.5, 198.18.5.5')).status, 200);
  t.is((await submit('198.51.100.5, 198.18.5.5')).status, 429, 'the attacker is locked out');
  t.is((await submit('198.51.100.5')).status, 200, 'the victim is not');
});

test('IPv6 addresses of one /64 share one code-entry budget, as they do for sign-in', async (t) => {
  const browser = new Browser();
  const submit = async (address: string) => {
    const from = { 'x-forwarded-for': address };
    const entry = await browser.request(`${gatehouse.issuer}/device`, { headers: from });
    const form = parseForm(entry.body, 0);
    return browser.request(new URL(form.action, entry.url), {
      form: { ...form.fields, user_code: 'BCDF-GHJK' },
      headers: from,
    });
  };
  for (let host = 1; host <= 3; host++) t.is((await submit(`2001:db8:77:1::${host}`)).status, 200);
  t.is((await submit('2001:db8:77:1:ffff::9')).status, 429, 'another address of the same /64 is locked too');
  t.is((await submit('2001:db8:77:2::1')).status, 200, 'the next /64 is not');
});

test('discovery advertises the device endpoint and grant when the device flow is on, and not when it is off', async (t) => {
  const on = (await (await fetch(`${gatehouse.issuer}/.well-known/openid-configuration`)).json()) as Record<
    string,
    unknown
  >;
  t.is(on.device_authorization_endpoint, `${gatehouse.issuer}/device/auth`);
  t.true((on.grant_types_supported as string[]).includes(DEVICE_GRANT));

  const off = await startTestServer({ config: { deviceFlow: { enabled: false } } });
  try {
    const metadata = (await (await fetch(`${off.issuer}/.well-known/openid-configuration`)).json()) as Record<
      string,
      unknown
    >;
    t.is(metadata.device_authorization_endpoint, undefined);
    t.false((metadata.grant_types_supported as string[]).includes(DEVICE_GRANT));
    t.is((await fetch(`${off.issuer}/device`)).status, 404);
  } finally {
    await off.close();
  }
});

test('hostile codes and parameters get a page or a 4xx, never a 5xx, and never an unescaped echo', async (t) => {
  const hostile = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.constantFrom(
      '<script>alert(1)</script>',
      '\u0000',
      '%',
      'a'.repeat(5000),
      '"><img src=x>',
      'BCDF-GHJK\r\nSet-Cookie: x=1',
    ),
  );
  const browser = new Browser();
  let run = 0;
  await fc.assert(
    fc.asyncProperty(hostile, hostile, async (code, scope) => {
      // Each run from its own address, so the lockout never hides a page that would echo the code.
      const from = { 'x-forwarded-for': `198.51.${Math.floor(run / 250)}.${run++ % 250}` };
      const entry = await browser.request(`${gatehouse.issuer}/device?user_code=${encodeURIComponent(code)}`, {
        headers: from,
      });
      const posted = await browser.request(`${gatehouse.issuer}/device`, {
        form: {
          xsrf: parseForm(entry.body.includes('<form') ? entry.body : '<form></form>', 0).fields.xsrf ?? '',
          user_code: code,
        },
        headers: from,
      });
      const started = await fetch(`${gatehouse.issuer}/device/auth`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ client_id: 'tv', scope }),
      });
      for (const response of [entry, posted, { status: started.status, body: await started.text() }]) {
        if (response.status >= 500) throw new Error(`${response.status}: ${response.body.slice(0, 300)}`);
        if (response.body.includes('<script>alert(1)</script>') || response.body.includes('"><img src=x>'))
          throw new Error('an unescaped echo');
      }
      return true;
    }),
    { numRuns: 40 },
  );
  t.pass();
});

test('a code entry without a session the provider stored (no cookie, a forged one) goes back to the entry page, not a 500', async (t) => {
  for (const cookie of [undefined, '_session=abc; _session.sig=def']) {
    const response = await fetch(`${gatehouse.issuer}/device`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-forwarded-for': '203.0.113.77',
        ...(cookie ? { cookie } : {}),
      },
      body: new URLSearchParams({ user_code: 'BCDF-GHJK', xsrf: 'b' }),
    });
    t.is(response.status, 303, `cookie ${cookie ?? '(none)'}`);
    t.is(response.headers.get('location'), '/device?user_code=BCDF-GHJK');
  }
  // And the page it leads to starts a session whose form works (a wrong code is refused as such, on the page).
  const browser = new Browser();
  const entry = await browser.request(`${gatehouse.issuer}/device?user_code=BCDF-GHJK`);
  t.is(entry.status, 200);
  t.regex(entry.body, /value="BCDF-GHJK"/);
});
