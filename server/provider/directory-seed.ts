/**
 * Applying the configured users and clients (config file, GATEHOUSE_USERS, GATEHOUSE_CLIENTS) to the directory tables
 * on every start: idempotent, one transaction (see stores/sequelize/directory.ts for the rules).
 *
 * A clear-text `password` is hashed here with the configured cost. When the stored hash of that user already matches
 * it (same password, same cost) the stored hash is kept, so an unchanged configuration writes nothing on restart. The
 * password itself is never logged, and the configuration returned carries only the hash.
 *
 * It also names the configured users this start disabled (no longer configured), so that the caller can end their
 * sessions and tokens (UserOffboarding) once the provider is built.
 */
import type { Logger } from 'pino';
import { ConfigError } from '../../config/load.js';
import type { AccountConfig, GatehouseConfig } from '../../config/schema.js';
import { UsernameTakenError, type SequelizeDirectory } from '../../stores/sequelize/directory.js';
import type { Clock } from '../../stores/session-store.js';
import { toClientInput } from './clients.js';
import { hashPassword, needsRehash, verifyPassword } from './passwords.js';

export interface SeedOutcome {
  /** The configuration with every `password` replaced by its `passwordHash`. */
  config: GatehouseConfig;
  /** Subjects of configured users that this seeding disabled because the configuration no longer lists them. */
  disabledUsers: string[];
}

/** Seeds the directory. `clock` is the directory's (it stamps `updated`). */
export async function seedDirectory(directory: SequelizeDirectory, config: GatehouseConfig, logger: Logger, clock: Clock): Promise<SeedOutcome> {
  const accounts = await Promise.all(config.accounts.map((account) => withHashedPassword(directory, account, config.passwordHashing)));
  // Whole seconds: a DATETIME column without fractions (MariaDB) stores `updated` truncated.
  const started = Math.floor(clock.now().getTime() / 1000) * 1000;
  let disabledUsers: string[] = [];
  try {
    const result = await directory.applySeed({
      users: accounts.map((account) => ({
        subject: account.subject,
        username: account.username ?? account.subject,
        passwordHash: account.passwordHash ?? null,
        claims: account.claims,
        roles: account.roles,
      })),
      clients: config.clients.map(toClientInput),
    });
    logger.info({ users: result.users, clients: result.clients }, 'directory seeded from the configuration');
    if (result.takenOver.length) logger.warn({ entries: result.takenOver }, 'configured entries replaced ones added with the CLI or the API');
    if (result.users.disabled > 0) disabledUsers = await retiredSince(directory, config, started);
  } catch (error) {
    if (error instanceof UsernameTakenError) {
      const index = accounts.findIndex((account) => (account.username ?? account.subject).toLowerCase() === error.username.toLowerCase());
      throw new ConfigError([
        `accounts[${index}].username: ${error.message}; remove or rename that user first (gatehouse users remove --subject ${error.holder})`,
      ]);
    }
    throw error;
  }
  const autoLogin = config.login.autoLogin;
  if (autoLogin && !(await directory.getUser(autoLogin))) {
    logger.warn({ subject: autoLogin }, 'login.autoLogin names no user yet; the login page shows until one with that subject exists');
  }
  return { config: { ...config, accounts }, disabledUsers };
}

/**
 * Configured users, no longer configured, disabled since `started` (by this seeding, or by another instance's seeding
 * the same configuration at the same moment: ending their access twice is harmless). Read only when the seeding
 * disabled someone, so a start that changes nothing never lists the users.
 */
async function retiredSince(directory: SequelizeDirectory, config: GatehouseConfig, started: number): Promise<string[]> {
  const configured = new Set(config.accounts.map((account) => account.subject));
  const users = await directory.listUsers();
  return users.filter((user) => user.source === 'config' && user.disabled && !configured.has(user.subject) && user.updated.getTime() >= started).map((user) => user.subject);
}

async function withHashedPassword(directory: SequelizeDirectory, account: AccountConfig, params: GatehouseConfig['passwordHashing']): Promise<AccountConfig> {
  const { password, ...rest } = account;
  if (password === undefined) return rest;
  const stored = (await directory.getUser(account.subject))?.passwordHash;
  const reuse = stored && !needsRehash(stored, params) && (await verifyPassword(password, stored));
  return { ...rest, passwordHash: reuse ? stored : await hashPassword(password, params) };
}
