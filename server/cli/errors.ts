/**
 * How a command fails, and the exit code each failure gets: 0 success, 1 runtime failure, 2 bad usage or invalid
 * configuration (an install step the configuration needs counts as configuration: a database driver, a session store
 * module that loads).
 */
import { ConfigError } from '../../config/load.js';
import { DatabaseDriverMissingError } from '../../stores/sequelize/drivers.js';
import { SessionStoreConfigError } from '../sessions/store-config-error.js';

/** Bad usage (exit code 2); `usage` is the help text printed with it, the general one when not given. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly usage?: string,
  ) {
    super(message);
  }
}

/** A runtime failure with a message for the user (exit code 1). */
export class CommandError extends Error {}

/** Prints why a command failed, on stderr, and returns its exit code. */
export function reportFailure(error: unknown, generalUsage: string): number {
  if (error instanceof UsageError) {
    console.error(`gatehouse: ${error.message}\n\n${error.usage ?? generalUsage}`);
    return 2;
  }
  console.error(`gatehouse: ${(error as Error).message}`);
  return error instanceof ConfigError ||
    error instanceof DatabaseDriverMissingError ||
    error instanceof SessionStoreConfigError
    ? 2
    : 1;
}
