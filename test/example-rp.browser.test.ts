/**
 * The example relying party (examples/relying-party) against a Gatehouse from `gatehouse-idp/testing`, in headless
 * Chromium: sign in on Gatehouse's login page, see the user, sign out through Gatehouse (RP-initiated logout), sign in
 * again, and have an administrator's revocation reach the app by back-channel logout.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { generateKeyPair, SignJWT } from 'jose';
import type { Browser as Chromium } from 'playwright-core';
import { launchChromium } from './helpers/chromium.js';
import { createRelyingParty, type RelyingParty } from '../examples/relying-party/app.js';
import { startGatehouse, type TestGatehouse } from '../testing/index.js';

let chromiumBrowser: Chromium;

test.before(async () => {
  chromiumBrowser = await launchChromium();
});

test.after.always(async () => {
  await chromiumBrowser?.close();
});

interface Setup {
  gatehouse: TestGatehouse;
  app: RelyingParty;
  appUrl: string;
}

/** The app's port first (its URIs go into the client), then Gatehouse, then the app pointed at Gatehouse's issuer. */
async function setUp(t: { teardown(fn: () => Promise<void>): void }): Promise<Setup> {
  const http: Server = createServer();
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  const appUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const gatehouse = await startGatehouse({
    users: [{ subject: 'alice', password: 'alice-pw', claims: { name: 'Alice Anderson' } }],
    clients: [
      {
        client_id: 'example-app',
        client_name: 'Example app',
        client_secret: 'example-app-secret',
        redirect_uris: [`${appUrl}/callback`],
        post_logout_redirect_uris: [`${appUrl}/`],
        backchannel_logout_uri: `${appUrl}/backchannel-logout`,
        scope: 'openid profile',
      },
    ],
  });
  const app = createRelyingParty({
    issuer: gatehouse.issuer,
    clientId: 'example-app',
    clientSecret: 'example-app-secret',
    appUrl,
  });
  http.on('request', app.handle);
  t.teardown(async () => {
    await gatehouse.stop();
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
  });
  return { gatehouse, app, appUrl };
}

/** Resolves with the next back-channel logout the app handled for `sid`. */
function backchannelLogoutOf(app: RelyingParty, sid: string): Promise<{ sid?: string; ended: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no back-channel logout for ${sid} within 10 s`)), 10_000);
    const listener = (event: { sid?: string; ended: number }) => {
      if (event.sid !== sid) return;
      clearTimeout(timer);
      app.events.off('backchannel-logout', listener);
      resolve(event);
    };
    app.events.on('backchannel-logout', listener);
  });
}

test('sign in, sign out through Gatehouse, sign in again, and a revocation signs the app out by back-channel', async (t) => {
  const { gatehouse, app, appUrl } = await setUp(t);
  const context = await chromiumBrowser.newContext();
  t.teardown(() => context.close());
  const page = await context.newPage();

  const signIn = async () => {
    await Promise.all([page.waitForURL(/\/interaction\//), page.getByRole('link', { name: 'Sign in' }).click()]);
    t.is(new URL(page.url()).origin, gatehouse.issuer, "on Gatehouse's login page");
    t.regex((await page.textContent('main')) ?? (await page.textContent('body')) ?? '', /Example app/);
    await page.fill('#username', 'alice');
    await page.fill('#password', 'alice-pw');
    await Promise.all([
      page.waitForURL(`${appUrl}/`),
      page.getByRole('button', { name: 'Sign in', exact: true }).click(),
    ]);
    t.is(await page.textContent('#status'), 'Signed in as Alice Anderson');
    return (await page.textContent('#sid'))!;
  };

  await page.goto(appUrl);
  t.is(await page.textContent('#status'), 'Signed out');

  // 1. Sign in, then sign out through Gatehouse (RP-initiated logout, back to the post_logout_redirect_uri).
  const firstSid = await signIn();
  t.is(await page.textContent('#sub'), 'alice');
  const [session] = await gatehouse.sessions.sessionsOf('alice');
  t.deepEqual(
    session!.clients.map((client) => client.sid),
    [firstSid],
    "Gatehouse's session knows the app's sid",
  );

  const firstLogoutToken = backchannelLogoutOf(app, firstSid);
  await Promise.all([page.waitForURL(/\/session\/end/), page.getByRole('button', { name: 'Sign out' }).click()]);
  t.regex((await page.textContent('h1')) ?? '', /Sign out of Example app\?/);
  await Promise.all([page.waitForURL(`${appUrl}/`), page.getByRole('button', { name: 'Yes, sign me out' }).click()]);
  t.is(await page.textContent('#status'), 'Signed out');
  t.deepEqual(await gatehouse.sessions.sessionsOf('alice'), [], 'the Gatehouse session ended too');
  t.is(
    (await firstLogoutToken).ended,
    0,
    'the logout also reached the back-channel endpoint (nothing left to end there)',
  );

  // 2. Sign in again: Gatehouse asks for the password again (its session is gone).
  const secondSid = await signIn();
  t.not(secondSid, firstSid);

  // 3. An administrator revokes the session: the app's back-channel endpoint ends its local session.
  const revoked = backchannelLogoutOf(app, secondSid);
  const result = await gatehouse.sessions.removeSessions({ subjectId: 'alice', actor: 'test' });
  t.is(result.sessions.length, 1);
  t.is((await revoked).ended, 1);
  await page.reload();
  t.is(await page.textContent('#status'), 'Signed out');

  // ...and signing in shows Gatehouse's login page again.
  await Promise.all([page.waitForURL(/\/interaction\//), page.getByRole('link', { name: 'Sign in' }).click()]);
  t.true(await page.locator('#password').isVisible());
});

test("the app's back-channel endpoint refuses a missing, malformed or forged logout token", async (t) => {
  const { gatehouse, app, appUrl } = await setUp(t);
  // A real login token for this client (an ID token) is signed by the issuer but is not a logout token.
  const { tokens } = await gatehouse.login({ subject: 'alice', clientId: 'example-app' });
  // A well-formed logout token for the app's sid, signed by a key that is not the issuer's (with one of its kids).
  const { keys } = (await (await fetch(`${gatehouse.issuer}/jwks`)).json()) as { keys: { kid: string; kty: string }[] };
  const { privateKey } = await generateKeyPair('ES256');
  const forged = await new SignJWT({
    sid: tokens.claims.sid,
    events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
  })
    .setProtectedHeader({ alg: 'ES256', typ: 'logout+jwt', kid: keys.find((key) => key.kty === 'EC')!.kid })
    .setIssuer(gatehouse.issuer)
    .setAudience('example-app')
    .setSubject('alice')
    .setIssuedAt()
    .setJti('forged')
    .sign(privateKey);
  let handled = 0;
  app.events.on('backchannel-logout', () => handled++);
  for (const token of [undefined, 'not-a-jwt', tokens.id_token, forged]) {
    const response = await fetch(`${appUrl}/backchannel-logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: token === undefined ? '' : new URLSearchParams({ logout_token: token }),
    });
    t.is(response.status, 400);
    const body = (await response.json()) as { error: string; error_description: string };
    t.is(body.error, 'invalid_request');
    if (token === forged) t.regex(body.error_description, /signature verification failed/);
  }
  t.is(handled, 0);
});
