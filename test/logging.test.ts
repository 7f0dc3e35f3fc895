import { Writable } from 'node:stream';
import test from 'ava';
import * as oidc from 'openid-client';
import { pino } from 'pino';
import { createServer } from '../server/create-server.js';
import { Browser } from './helpers/browser.js';
import { discover, LogoutReceiver, POST_LOGOUT_URI, REDIRECT_URI, signIn } from './helpers/relying-party.js';
import { testAccounts, TEST_HASHING } from './helpers/server.js';

test('one structured line per request with a request id, and no secret, password, token or cookie in any line', async (t) => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  const receiver = await new LogoutReceiver().start();
  const server = await createServer(
    {
      port: 0,
      database: { url: 'sqlite::memory:' },
      passwordHashing: TEST_HASHING,
      accounts: await testAccounts(),
      backchannelLogout: { allowPrivateNetworks: true },
      serverSideSessions: { enabled: true, removeExpiredSessions: false },
      clients: [
        {
          client_id: 'web',
          client_secret: 'web-client-secret-value',
          redirect_uris: [REDIRECT_URI],
          post_logout_redirect_uris: [POST_LOGOUT_URI],
          grant_types: ['authorization_code', 'refresh_token'],
          scope: 'openid profile offline_access',
          backchannel_logout_uri: receiver.url,
        },
      ],
    },
    { logger: pino({ level: 'debug' }, sink) },
  );
  t.teardown(async () => {
    await server.close();
    await receiver.close();
  });
  await server.listen();
  const issuer = server.config.issuer;
  const web = await discover(issuer, 'web', 'web-client-secret-value');
  const browser = new Browser();
  const { tokens } = await signIn(browser, web, { username: 'alice', scope: 'openid profile offline_access' });
  const refreshed = await oidc.refreshTokenGrant(web, tokens.refresh_token!);
  await oidc.fetchUserInfo(web, refreshed.access_token, 'alice');
  const confirm = await browser.navigate(
    oidc.buildEndSessionUrl(web, {
      id_token_hint: refreshed.id_token ?? tokens.id_token!,
      post_logout_redirect_uri: POST_LOGOUT_URI,
    }),
  );
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.body)![1];
  await browser.navigate(`${issuer}/session/end/confirm`, { form: { xsrf, logout: 'yes' } });
  await receiver.waitFor(1);
  await server.backchannel.runOnce();

  const requests = lines
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.msg === 'request');
  t.true(requests.length >= 10);
  t.true(
    requests.every(
      (line) => typeof line.reqId === 'string' && typeof line.status === 'number' && typeof line.path === 'string',
    ),
  );
  t.true(
    requests.every((line) => !String(line.path).includes('?')),
    'no query strings',
  );

  const secrets = [
    'alice-password',
    'web-client-secret-value',
    tokens.access_token,
    tokens.refresh_token!,
    tokens.id_token!,
    refreshed.access_token,
    refreshed.refresh_token!,
    receiver.tokens[0],
    xsrf,
    ...[...browser.cookies.values()].map((cookie) => cookie.value).filter((value) => value.length > 10),
  ];
  const everything = lines.join('\n');
  for (const secret of secrets) {
    const line = lines.find((l) => l.includes(secret));
    t.is(line, undefined, `leaked: ${secret.slice(0, 12)}…`);
  }
  const jwks = JSON.stringify(
    ((await (await fetch(`${issuer}/jwks`)).json()) as { keys: { n?: string; x?: string }[] }).keys.map(
      (k) => k.n ?? k.x,
    ),
  );
  t.false(/"d":"/.test(everything), 'no private key material');
  t.truthy(jwks);
});
