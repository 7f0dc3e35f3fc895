/**
 * `/readyz` on every database Gatehouse supports: in-memory and file SQLite, PostgreSQL, MariaDB (the mariadb driver)
 * and a `mysql://` URL (the mysql2 driver, against the local MariaDB server through its MySQL protocol). Ready means
 * the database answered a query within `database.readyTimeoutMs`; a shutting-down server is never ready; every 503
 * carries Retry-After.
 */
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { ALL_DIALECTS } from './helpers/databases.js';
import { startTestServer } from './helpers/server.js';

for (const dialect of ALL_DIALECTS) {
  test(`${dialect}: /readyz answers 200 while the database answers, and 503 with Retry-After once shutdown begins`, async (t) => {
    const gatehouse = await startTestServer({ dialect });
    t.teardown(() => gatehouse.close());
    const ready = await fetch(`${gatehouse.issuer}/readyz`);
    t.is(ready.status, 200);
    t.deepEqual(await ready.json(), { status: 'ok', database: 'ok' });
    t.is(ready.headers.get('cache-control'), 'no-store');

    // The same application behind a second listener: it still answers once the server's own listener is closed.
    const probe = createHttpServer(gatehouse.server.app.callback());
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    t.teardown(() => new Promise<void>((resolve) => probe.close(() => resolve())));
    const closing = gatehouse.server.close();
    const draining = await fetch(`http://127.0.0.1:${(probe.address() as AddressInfo).port}/readyz`);
    t.is(draining.status, 503);
    t.deepEqual(await draining.json(), { status: 'shutting_down' });
    t.is(draining.headers.get('retry-after'), '5');
    t.like(await closing, { cut: 0, backgroundCut: false });
  });
}
