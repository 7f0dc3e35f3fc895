import test from 'ava';
import { decodeJwt } from 'jose';
import { Browser } from './helpers/browser.js';
import { discover, LogoutReceiver, REDIRECT_URI, signIn, startAuthorization } from './helpers/relying-party.js';
import { startTestServer } from './helpers/server.js';
import { ManualClock } from '../stores/clock.js';
import * as oidc from 'openid-client';

test('maxSessionsPerUser ends the oldest session with back-channel logout when a sign-in exceeds it', async (t) => {
  const receiver = await new LogoutReceiver().start();
  const gatehouse = await startTestServer({
    config: {
      serverSideSessions: { enabled: true, maxSessionsPerUser: 2 },
      clients: [
        {
          client_id: 'web',
          client_secret: 'web-secret',
          redirect_uris: [REDIRECT_URI],
          backchannel_logout_uri: receiver.url,
          skipConsent: true,
        },
      ],
    },
  });
  t.teardown(async () => {
    await gatehouse.close();
    await receiver.close();
  });
  const revoked: unknown[] = [];
  gatehouse.server.events.on('session.revoked', (event) => revoked.push(event));
  const web = await discover(gatehouse.issuer, 'web', 'web-secret');
  const [first, second, third] = [new Browser(), new Browser(), new Browser()];
  const firstSignIn = await signIn(first, web, { username: 'alice' });
  await new Promise((resolve) => setTimeout(resolve, 20));
  await signIn(second, web, { username: 'alice' });
  await new Promise((resolve) => setTimeout(resolve, 20));
  await signIn(third, web, { username: 'alice' });

  const [token] = await receiver.waitFor(1);
  t.is(decodeJwt(token).sid, firstSignIn.claims.sid, 'the oldest session was told');
  t.is((await gatehouse.server.sessions.sessionsOf('alice')).length, 2);
  t.true((await startAuthorization(first, web)).body.includes('name="password"'), 'the oldest browser is signed out');
  t.false((await signIn(third, web, { username: 'alice' })).sawLogin, 'the newest stays signed in');
  t.false((await signIn(second, web, { username: 'alice' })).sawLogin);
  t.like(revoked[0], { subjectId: 'alice', actor: 'maxSessionsPerUser' });
});

test('audit events: created, logged out, revoked and expired sessions', async (t) => {
  const clock = new ManualClock();
  const gatehouse = await startTestServer({
    clock,
    config: {
      serverSideSessions: { enabled: true, idleTimeout: 3600 },
      clients: [
        {
          client_id: 'web',
          client_secret: 'web-secret',
          redirect_uris: [REDIRECT_URI],
          post_logout_redirect_uris: ['http://127.0.0.1:9/bye'],
          skipConsent: true,
        },
      ],
    },
  });
  t.teardown(() => gatehouse.close());
  const seen: [string, Record<string, unknown>][] = [];
  for (const name of ['session.created', 'session.logged_out', 'session.revoked', 'session.expired']) {
    gatehouse.server.events.on(name, (detail) => seen.push([name, detail]));
  }
  const web = await discover(gatehouse.issuer, 'web', 'web-secret');
  await signIn(new Browser(), web, { username: 'bob' });
  await gatehouse.server.sessions.removeSessions({ subjectId: 'bob', actor: 'admin:alice' });

  const browser = new Browser();
  const { tokens } = await signIn(browser, web, { username: 'carol' });
  const confirm = await browser.navigate(
    oidc.buildEndSessionUrl(web, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: 'http://127.0.0.1:9/bye',
    }),
  );
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.body)![1];
  await browser.navigate(`${gatehouse.issuer}/session/end/confirm`, { form: { xsrf, logout: 'yes' } });

  await signIn(new Browser(), web, { username: 'dave' });
  clock.advance(3600_000 + 1000);
  await gatehouse.server.sweeper.runOnce();

  t.deepEqual(
    seen.map(([name, detail]) => `${name} ${detail.subjectId}`),
    [
      'session.created bob',
      'session.revoked bob',
      'session.created carol',
      'session.logged_out carol',
      'session.created dave',
      'session.expired dave',
    ],
  );
  t.like(seen[1][1], { subjectId: 'bob', actor: 'admin:alice' });
});
