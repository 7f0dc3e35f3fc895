/**
 * The back-channel worker's timing: a failed delivery is retried when its backoff says (a timer to the next due
 * attempt), not at the next idle poll; and a worker that is stopping delivers what it claimed and claims nothing more.
 */
import test from 'ava';
import { Browser } from './helpers/browser.js';
import { discover, LogoutReceiver, signIn, webClient } from './helpers/relying-party.js';
import { startTestServer } from './helpers/server.js';

const RETRY_BASE_DELAY = 1;
const POLL_INTERVAL = 120;

test('a failed back-channel logout is retried when its backoff is due, long before the next poll', async (t) => {
  const receiver = await new LogoutReceiver().start();
  const gatehouse = await startTestServer({
    config: {
      serverSideSessions: { enabled: true },
      backchannelLogout: { retryBaseDelay: RETRY_BASE_DELAY, pollInterval: POLL_INTERVAL, maxAttempts: 3 },
      clients: [webClient(receiver.url, { skipConsent: true })],
    },
  });
  t.teardown(async () => {
    await gatehouse.close();
    await receiver.close();
  });
  const { claims } = await signIn(new Browser(), await discover(gatehouse.issuer, 'web', 'web-secret'), {
    username: 'alice',
    scope: 'openid',
  });
  receiver.statuses.push(503); // the relying party fails the first attempt
  const started = Date.now();
  const retried = new Promise<number>((resolve) =>
    gatehouse.server.events.once('backchannel.delivered', ({ attempt }) => resolve(attempt)),
  );
  await gatehouse.server.sessions.removeSessions({ subjectId: 'alice', actor: 'test' });

  const [token] = await receiver.waitFor(1, 30_000);
  const elapsed = Date.now() - started;
  t.is(await retried, 2, 'delivered by the second attempt');
  t.truthy(token);
  t.log(
    `delivered ${elapsed} ms after the revocation (retry due after ${RETRY_BASE_DELAY} s; poll every ${POLL_INTERVAL} s)`,
  );
  t.true(elapsed >= RETRY_BASE_DELAY * 1000 - 100, `not before its backoff (${elapsed} ms)`);
  t.true(elapsed < 20_000, `long before the next poll at ${POLL_INTERVAL} s (${elapsed} ms)`);
  const [row] = await gatehouse.server.backchannel.outbox.list({ clientId: 'web' });
  t.like(row, { status: 'delivered', attempts: 2, sid: claims.sid });
});

test('a stopping worker delivers the notification it holds and claims no more', async (t) => {
  const receiver = await new LogoutReceiver().start();
  const gatehouse = await startTestServer({
    config: {
      serverSideSessions: { enabled: true },
      backchannelLogout: { batchSize: 1, pollInterval: POLL_INTERVAL },
      clients: [webClient(receiver.url, { skipConsent: true })],
    },
  });
  t.teardown(async () => {
    await gatehouse.close();
    await receiver.close();
  });
  receiver.delayMs = 2000; // a slow relying party: the first delivery is still in flight when the worker stops
  await gatehouse.server.backchannel.outbox.enqueue([
    { clientId: 'web', sid: 'sid-one', subjectId: 'alice', sessionId: null, reason: 'terminated' },
    { clientId: 'web', sid: 'sid-two', subjectId: 'bob', sessionId: null, reason: 'terminated' },
  ]);
  gatehouse.server.backchannel.kick();
  await new Promise((resolve) => setTimeout(resolve, 500));
  await gatehouse.server.backchannel.stop();
  const rows = await gatehouse.server.backchannel.outbox.list({ clientId: 'web' });
  t.deepEqual(
    rows.map((row) => row.status).sort(),
    ['delivered', 'pending'],
    'the one held was delivered, the other left for later',
  );
  t.is(receiver.tokens.length, 1);
});
