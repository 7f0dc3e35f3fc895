/**
 * The database driver for a dialect, loaded from Gatehouse's own package and handed to Sequelize (`dialectModule`).
 *
 * sqlite3 (the embedded default) is a dependency, handed over by sqlite-driver.ts with its busy timeout; the drivers
 * of the server databases are optional peer dependencies
 * that a user installs when a database URL needs one (`npm install pg`). Without it the URL is refused naming the
 * package, instead of Sequelize's "Please install pg package manually" from deep inside a connection attempt.
 */
import { createRequire } from 'node:module';
import type { Dialect } from './connection.js';

/** The npm package that drives each dialect. */
export const DRIVER_PACKAGES: Record<Dialect, string> = {
  sqlite: 'sqlite3',
  postgres: 'pg',
  mysql: 'mysql2',
  mariadb: 'mariadb',
};

/** A database URL whose driver package is not installed (exit code 2 from the CLI: an install step is missing). */
export class DatabaseDriverMissingError extends Error {
  readonly driver: string;
  constructor(dialect: Dialect, driver: string, cause: unknown) {
    super(
      `database.url: a ${dialect} database needs the "${driver}" package, which is not installed: npm install ${driver}`,
      { cause },
    );
    this.name = 'DatabaseDriverMissingError';
    this.driver = driver;
  }
}

const require = createRequire(import.meta.url);

/** The driver module for this dialect, or DatabaseDriverMissingError naming the package to install. */
export function loadDriver(dialect: Dialect): object {
  const driver = DRIVER_PACKAGES[dialect];
  try {
    return require(driver) as object;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    // Only the driver itself missing; a driver that is there but fails to load (a broken native build) says so itself.
    if (
      (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') &&
      String((error as Error).message).includes(`'${driver}'`)
    ) {
      throw new DatabaseDriverMissingError(dialect, driver, error);
    }
    throw error;
  }
}
