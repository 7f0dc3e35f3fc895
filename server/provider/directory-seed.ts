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
import { toClientInput } from './clients.js';
import { hashPassword, needsRehash, verifyPassword } from './passwords.js';

export interface SeedOutcome {
  /** The configuration with every `password` replaced by its `passwordHash`. */
  config: GatehouseConfig;
  /**
   * Subjects of configured users the configuration no longer lists (so disabled), whether this seeding or an earlier one
   * disabled them: the caller ends their access on every start, a no-op once done, so a start that failed to (or
   * stopped first) is made good by the next one.
   */
  disabledUsers: string[];
}

/** Seeds the directory. */
export async function seedDirectory(
  directory: SequelizeDirectory,
  config: GatehouseConfig,
  logger: Logger,
): Promise<SeedOutcome> {
  const accounts = await Promise.all(
    config.accounts.map((account) => withHashedPassword(directory, account, config.passwordHashing)),
  );
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
    if (result.takenOver.length)
      logger.warn({ entries: result.takenOver }, 'configured entries replaced ones added with the CLI or the API');
    disabledUsers = await retired(directory, config);
  } catch (error) {
    if (error instanceof UsernameTakenError) {
      const index = accounts.findIndex(
        (account) => (account.username ?? account.subject).toLowerCase() === error.username.toLowerCase(),
      );
      throw new ConfigError([
        `accounts[${index}].username: ${error.message}; remove or rename that user first (gatehouse users remove --subject ${error.holder})`,
      ]);
    }
    throw error;
  }
  const autoLogin = config.login.autoLogin;
  if (autoLogin && !(await directory.getUser(autoLogin))) {
    logger.warn(
      { subject: autoLogin },
      'login.autoLogin names no user yet; the login page shows until one with that subject exists',
    );
  }
  return { config: { ...config, accounts }, disabledUsers };
}

/** Configured users the configuration no longer lists (the seeding disabled them). */
async function retired(directory: SequelizeDirectory, config: GatehouseConfig): Promise<string[]> {
  const configured = new Set(config.accounts.map((account) => account.subject));
  const users = await directory.listUsers({ source: 'config', disabledOnly: true });
  return users.filter((user) => !configured.has(user.subject)).map((user) => user.subject);
}

async function withHashedPassword(
  directory: SequelizeDirectory,
  account: AccountConfig,
  params: GatehouseConfig['passwordHashing'],
): Promise<AccountConfig> {
  const { password, ...rest } = account;
  if (password === undefined) return rest;
  const stored = (await directory.getUser(account.subject))?.passwordHash;
  const reuse = stored && !needsRehash(stored, params) && (await verifyPassword(password, stored));
  return { ...rest, passwordHash: reuse ? stored : await hashPassword(password, params) };
}
