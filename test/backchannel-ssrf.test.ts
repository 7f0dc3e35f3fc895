import test from 'ava';
import { Browser } from './helpers/browser.js';
import { discover, LogoutReceiver, REDIRECT_URI, signIn } from './helpers/relying-party.js';
import { startTestServer } from './helpers/server.js';

test('with allowPrivateNetworks off (the default), back-channel logout never reaches a loopback address', async (t) => {
  const receiver = await new LogoutReceiver().start();
  const gatehouse = await startTestServer({
    config: {
      backchannelLogout: { allowPrivateNetworks: false, maxAttempts: 1 },
      serverSideSessions: { enabled: true },
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
  await signIn(new Browser(), await discover(gatehouse.issuer, 'web', 'web-secret'), { username: 'alice' });
  await gatehouse.server.sessions.removeSessions({ subjectId: 'alice', actor: 'test' });
  await gatehouse.server.backchannel.runOnce();
  const [row] = await gatehouse.server.backchannel.outbox.list({ clientId: 'web' });
  t.is(row.status, 'failed');
  t.regex(row.lastError ?? '', /special-use IP|fetch failed/);
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.is(receiver.tokens.length, 0, 'nothing arrived');
});
