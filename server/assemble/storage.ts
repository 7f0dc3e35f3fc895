/**
 * createServer's first steps: the database (opened and migrated) and what lives in it. The signing keys, the directory
 * (users and clients, seeded from the configuration), the session store, the sign-in counters and the adapter factory
 * the provider keeps its models through.
 */
import type { EventEmitter } from 'node:events';
import type { Adapter } from 'oidc-provider';
import type { Logger } from 'pino';
import type { Sequelize } from 'sequelize';
import type { ClientConfig, GatehouseConfig } from '../../config/schema.js';
import { SequelizeDirectory } from '../../stores/sequelize/directory.js';
import { LoginAttempts } from '../../stores/sequelize/login-attempts.js';
import { openMigratedDatabase } from '../../stores/sequelize/migrate.js';
import type { Clock, SessionStore } from '../../stores/session-store.js';
import { AccountDirectory } from '../provider/accounts.js';
import { ClientDirectory, ClientSettings } from '../provider/clients.js';
import { consoleClient } from '../provider/console-client.js';
import { seedDirectory } from '../provider/directory-seed.js';
import { describeKeys, type KeyMaterial, loadKeyMaterial } from '../provider/keys.js';
import { createAdapterFactory, guarded } from '../sessions/adapter-factory.js';
import type { SessionService } from '../sessions/session-service.js';
import { resolveSessionStore } from '../sessions/store-loader.js';
import { sessionAdapterHooks } from './session-hooks.js';

/** Opens the configured database and applies the migrations it lacks. */
export async function openDatabase(database: GatehouseConfig['database'], logger: Logger): Promise<Sequelize> {
  const { sequelize, applied } = await openMigratedDatabase(database);
  if (applied.length) logger.info({ migrations: applied }, 'database migrated');
  return sequelize;
}

export interface Storage {
  /** The configuration as seeded: every configured `password` replaced by its hash. */
  config: GatehouseConfig;
  /** Configured users the configuration no longer lists: their access ends once the provider runs. */
  disabledUsers: string[];
  keys: KeyMaterial;
  accounts: AccountDirectory;
  /** Clients built in rather than configured (the admin console). */
  staticClients: ClientConfig[];
  clients: ClientSettings;
  clientDirectory: ClientDirectory;
  /** The server-side session store, when the feature is on. */
  sessionStore?: SessionStore;
  loginAttempts: LoginAttempts;
  /** The provider's adapter factory: Client from the directory, Session from the session store, others operational. */
  adapter: (modelName: string) => Adapter;
  /** Hands the session service to the Session adapter (it needs the provider, which needs the adapter). */
  attachSessionService(service: SessionService): void;
}

export async function openStorage(
  configured: GatehouseConfig,
  deps: { logger: Logger; clock: Clock; sequelize: Sequelize; events: EventEmitter; seed: boolean },
): Promise<Storage> {
  const { logger, clock, sequelize } = deps;
  const keys = await loadKeyMaterial(sequelize, configured, clock);
  logger.info({ keys: describeKeys(keys.jwks), source: keys.source }, 'signing keys loaded');
  // Users and clients live in the directory tables, seeded from the configuration (passwords hashed on the way).
  const directory = new SequelizeDirectory(sequelize, clock);
  const accounts = new AccountDirectory(directory, {
    hashing: configured.passwordHashing,
    cacheMs: configured.directory.cacheMs,
  });
  await accounts.ready(); // the configured hashing works here (argon2id needs Node.js >= 24.16), before any is seeded
  const seeded = deps.seed
    ? await seedDirectory(directory, configured, logger)
    : { config: configured, disabledUsers: [] };
  const config = seeded.config;
  const staticClients = [consoleClient(config.issuer)];
  const clients = new ClientSettings(staticClients, config.serverSideSessions);
  const clientDirectory = new ClientDirectory(directory, clients, { cacheMs: config.directory.cacheMs });
  await clientDirectory.load();
  const storeLogger = logger.child({ component: 'session-store' });

  let sessionStore: SessionStore | undefined;
  if (config.serverSideSessions.enabled) {
    const { store, name, module } = await resolveSessionStore(config.serverSideSessions.store, {
      clock,
      logger: storeLogger,
      sequelize,
      options: config.serverSideSessions.storeOptions ?? {},
    });
    sessionStore = store;
    logger.info({ sessionStore: name, ...(module ? { module } : {}) }, `server-side sessions in ${name}`);
  }
  const { attachSessionService, ...hooks } = sessionAdapterHooks({ config, accounts, logger, events: deps.events });
  const operationalAdapters = createAdapterFactory({
    sequelize,
    clock,
    sessions: sessionStore && {
      store: sessionStore,
      clock,
      logger: storeLogger,
      renewalWriteInterval: config.serverSideSessions.renewalWriteInterval,
      ...hooks,
    },
  });
  // The Client model reads the directory (clients can change while the provider runs); the rest as configured.
  // (Guarded like the others: a client_id with a NUL, e.g. from a form body the provider parses itself, is unknown.)
  const clientAdapter = guarded(clientDirectory.adapter);
  return {
    config,
    disabledUsers: seeded.disabledUsers,
    keys,
    accounts,
    staticClients,
    clients,
    clientDirectory,
    sessionStore,
    loginAttempts: new LoginAttempts(sequelize, clock),
    adapter: (modelName) => (modelName === 'Client' ? clientAdapter : operationalAdapters(modelName)),
    attachSessionService,
  };
}
