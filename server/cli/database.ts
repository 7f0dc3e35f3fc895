/**
 * What a command opens on the configured database, beside the servers that may be running on it, and closes when it
 * is done: the migrated database itself (`users`, `clients`, `keys`), or a Gatehouse that does not listen (`sessions`,
 * `users remove`: the session service, tokens, back-channel logout).
 */
import { pino } from 'pino';
import type { Sequelize } from 'sequelize';
import type { GatehouseConfig, GatehouseConfigInput } from '../../config/schema.js';
import { openMigratedDatabase } from '../../stores/sequelize/migrate.js';
import type { GatehouseServer } from '../create-server.js';
import { CommandError } from './errors.js';

/** The configured database, migrated; refused when it is in memory (a change there would be lost at exit). */
export async function openStoredDatabase(config: GatehouseConfig): Promise<Sequelize> {
  const url = config.database.url;
  if (url === 'sqlite::memory:' || url === 'sqlite:') {
    throw new CommandError(
      `the database is in memory (database.url ${url}): there is nothing to change; give --db or a config file with database.url`,
    );
  }
  const { sequelize } = await openMigratedDatabase(config.database);
  return sequelize;
}

/**
 * A Gatehouse for one command on the configured database: it does not listen, runs no expiry sweeper and never seeds
 * the directory (the configuration only locates the database). It always has its session store (the tables exist
 * whether or not the servers keep server-side sessions). Logs go to stderr, warnings only: stdout is the command's
 * output. Close it when done.
 */
export async function commandServer(config: GatehouseConfig): Promise<GatehouseServer> {
  const level =
    config.logging.level === 'silent' || config.logging.level === 'error' || config.logging.level === 'fatal'
      ? config.logging.level
      : 'warn';
  const logger = pino({ level, base: { service: 'gatehouse-cli' } }, pino.destination({ fd: 2, sync: true }));
  const input = {
    ...config,
    serverSideSessions: { ...config.serverSideSessions, enabled: true, removeExpiredSessions: false },
  };
  // Loaded here, not at the top: the commands that need no provider start faster without it.
  const { createServer } = await import('../create-server.js');
  const server = await createServer(input as GatehouseConfigInput, { logger, seedDirectory: false });
  // No background delivery worker: it would deliver what a command queues at once, signed with this process's issuer
  // (wrong without a configuration). The commands deliver explicitly (backchannel.runOnce) when they know the issuer.
  await server.backchannel.stop();
  return server;
}
