import test from 'ava';
import * as oidc from 'openid-client';
import { Browser } from './helpers/browser.js';
import { createTestDatabase } from './helpers/databases.js';
import { discover, REDIRECT_URI, signIn } from './helpers/relying-party.js';
import { freePort, startTestServer } from './helpers/server.js';

for (const serverSideSessions of [false, true]) {
  test(`after a restart on the same SQLite file the browser session, refresh token and JWKS still work (server-side sessions ${serverSideSessions ? 'on' : 'off'})`, async (t) => {
    const database = await createTestDatabase('sqlite-file');
    const port = await freePort();
    const config = {
      port,
      issuer: `http://localhost:${port}`,
      serverSideSessions: { enabled: serverSideSessions },
      clients: [
        {
          client_id: 'web',
          client_secret: 'web-secret',
          redirect_uris: [REDIRECT_URI],
          grant_types: ['authorization_code' as const, 'refresh_token' as const],
          scope: 'openid profile offline_access',
        },
      ],
    };
    try {
      const first = await startTestServer({ databaseUrl: database.url, config });
      const jwksBefore = await (await fetch(`${first.issuer}/jwks`)).json();
      const browser = new Browser();
      const client = await discover(first.issuer, 'web', 'web-secret');
      const { tokens } = await signIn(browser, client, { username: 'alice', scope: 'openid profile offline_access' });
      await first.close();

      const second = await startTestServer({ databaseUrl: database.url, config });
      try {
        t.deepEqual(await (await fetch(`${second.issuer}/jwks`)).json(), jwksBefore, 'same signing keys');
        const again = await signIn(browser, await discover(second.issuer, 'web', 'web-secret'), {
          username: 'alice',
          scope: 'openid profile',
        });
        t.false(again.sawLogin, 'the cookie session survived the restart');
        t.is(again.claims.sub, 'alice');
        const refreshed = await oidc.refreshTokenGrant(
          await discover(second.issuer, 'web', 'web-secret'),
          tokens.refresh_token!,
        );
        t.truthy(refreshed.access_token);
      } finally {
        await second.close();
      }
    } finally {
      await database.drop();
    }
  });
}
