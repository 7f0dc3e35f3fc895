/**
 * Starts a real Gatehouse for one test file: a fresh database, port 0, test accounts with a cheap password hash,
 * loopback back-channel allowed. Each call is independent, so test files (and tests) run concurrently.
 */
import type { Logger } from 'pino';
import { createServer, type GatehouseServer } from '../../server/create-server.js';
import type { GatehouseConfigInput } from '../../config/schema.js';
import { hashPassword } from '../../server/provider/passwords.js';
import type { Clock } from '../../stores/session-store.js';
import { createTestDatabase, type TestDialect } from './databases.js';

/** argon2id (the default algorithm) at a cost of about a millisecond: tests sign in hundreds of times. */
export const TEST_HASHING = { algorithm: 'argon2id' as const, memory: 1024, passes: 1, parallelism: 1 };

let accountsPromise: Promise<NonNullable<GatehouseConfigInput['accounts']>> | undefined;

/** alice (admin) and bob, with passwords "<name>-password", plus carol and dave for tests that need more users. */
export function testAccounts() {
  accountsPromise ??= Promise.all(
    [
      { subject: 'alice', name: 'Alice Anderson', roles: ['admin'] },
      { subject: 'bob', name: 'Bob Brown', roles: [] },
      { subject: 'carol', name: 'Carol Clark', roles: [] },
      { subject: 'dave', name: 'Dave Davis', roles: [] },
    ].map(async ({ subject, name, roles }) => ({
      subject,
      username: subject,
      passwordHash: await hashPassword(`${subject}-password`, TEST_HASHING),
      roles,
      claims: { name, email: `${subject}@example.com`, email_verified: true },
    })),
  );
  return accountsPromise;
}

export interface TestServer {
  server: GatehouseServer;
  issuer: string;
  databaseUrl: string;
  close(): Promise<void>;
}

export async function startTestServer(
  options: {
    dialect?: TestDialect;
    databaseUrl?: string;
    config?: GatehouseConfigInput;
    clock?: Clock;
    logger?: Logger;
  } = {},
): Promise<TestServer> {
  const database = options.databaseUrl
    ? { url: options.databaseUrl, drop: async () => undefined }
    : await createTestDatabase(options.dialect ?? 'sqlite-memory');
  const server = await createServer(
    {
      port: 0,
      logging: { level: (process.env.GATEHOUSE_TEST_LOG as 'info' | undefined) ?? 'silent' },
      passwordHashing: TEST_HASHING,
      accounts: await testAccounts(),
      ...options.config,
      backchannelLogout: { allowPrivateNetworks: true, ...options.config?.backchannelLogout },
      database: { url: database.url, ...options.config?.database },
      // Tests run the sweeper themselves (server.sweeper.runOnce()) unless they ask for the timer.
      serverSideSessions: { removeExpiredSessions: false, ...options.config?.serverSideSessions },
    },
    { clock: options.clock, logger: options.logger },
  );
  await server.listen();
  return {
    server,
    issuer: server.config.issuer,
    databaseUrl: database.url,
    async close() {
      await server.close();
      await database.drop();
    },
  };
}

/** A port that was free a moment ago (for tests that must restart a server on the same issuer). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
