/** `gatehouse migrate`: applies pending database migrations and exits. */
import { openMigratedDatabase } from '../../stores/sequelize/migrate.js';
import type { Command } from './command.js';
import { commandConfig } from './config.js';
import { UsageError } from './errors.js';

export const MIGRATE_USAGE = `Usage: gatehouse migrate [--config FILE] [--db URL]

Applies pending database migrations and exits (start does it too).`;

export const migrate: Command = {
  name: 'migrate',
  usage: MIGRATE_USAGE,
  async run(args, values) {
    if (args.length) throw new UsageError(`migrate: unexpected argument "${args[0]}"`);
    const config = commandConfig(values);
    const { sequelize, applied } = await openMigratedDatabase(config.database);
    await sequelize.close();
    console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
    return 0;
  },
};
