/**
 * What `gatehouse users`, `clients` and `keys` share: their options, the database they change and what they print
 * about a saved entry. They need no running server and are safe while servers run on the database: a running server
 * sees a user or client change within `directory.cacheMs` (1 s), an unlock at once, and a key rotation within
 * `keys.refreshMs` (server/provider/key-ring.ts).
 *
 * Users and clients added here have source `cli`: the configuration's seeding never touches them. Changing or removing
 * an entry that came from the configuration works too, until the next start applies the configuration again.
 */
import type { Sequelize } from 'sequelize';
import type { GatehouseConfig } from '../../config/schema.js';
import { systemClock } from '../../stores/clock.js';
import { SequelizeDirectory, type SaveOutcome } from '../../stores/sequelize/directory.js';
import { MAX_CLIENT_ID, MAX_SUBJECT, problemWith } from '../routes/admin-api-params.js';
import { commandGroup, type CommandGroup, type Fail, type Subcommand, type ValuesOf } from './command-group.js';
import { openStoredDatabase } from './database.js';

export const COMMON_HELP = `Every subcommand takes --config FILE and --db URL (env GATEHOUSE_CONFIG, GATEHOUSE_DATABASE__URL; a flag
wins over the environment), --json (machine-readable output) and --help.`;

/**
 * The options of the three groups, in one table: an option of another group is refused by name ("--secret is not an
 * option of users add") rather than as unknown.
 */
const OPTIONS = {
  config: { type: 'string' },
  db: { type: 'string' },
  json: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  subject: { type: 'string' },
  username: { type: 'string' },
  password: { type: 'string' },
  'password-stdin': { type: 'boolean' },
  claim: { type: 'string', multiple: true },
  role: { type: 'string', multiple: true },
  replace: { type: 'boolean' },
  'client-id': { type: 'string' },
  secret: { type: 'string' },
  public: { type: 'boolean' },
  name: { type: 'string' },
  'redirect-uri': { type: 'string', multiple: true },
  'post-logout-redirect-uri': { type: 'string', multiple: true },
  'grant-type': { type: 'string', multiple: true },
  scope: { type: 'string' },
  'auth-method': { type: 'string' },
  'backchannel-logout-uri': { type: 'string' },
  'jwks-uri': { type: 'string' },
  'skip-consent': { type: 'boolean' },
  'coordinate-with-session': { type: 'boolean' },
  'require-par': { type: 'boolean' },
  'dpop-bound': { type: 'boolean' },
} as const;

export type DirectoryValues = ValuesOf<typeof OPTIONS>;
export type DirectoryOption = keyof typeof OPTIONS;

/** The options every subcommand takes. */
export const COMMON: DirectoryOption[] = ['config', 'db', 'help'];

/** What a subcommand works on: the migrated database and its directory, closed after it. */
export interface DirectoryContext {
  sequelize: Sequelize;
  directory: SequelizeDirectory;
  config: GatehouseConfig;
  values: DirectoryValues;
  /** --json: machine-readable output. */
  json: boolean;
}

export type DirectorySubcommand<P = void> = Subcommand<DirectoryValues, DirectoryContext, P>;

export function directoryGroup(definition: {
  name: string;
  usage: string;
  subcommands: Record<string, DirectorySubcommand<unknown>>;
  /** The subcommands whose --json carries their input (`clients add --json '{...}'`) rather than asking for JSON output. */
  jsonInput?: string[];
}): CommandGroup {
  const { subcommands, jsonInput = [] } = definition;
  return commandGroup({
    ...definition,
    // --json is a flag, except where it carries the input; a word that is no subcommand parses it as a value.
    options: (word) =>
      word === undefined || (Object.hasOwn(subcommands, word) && !jsonInput.includes(word))
        ? { ...OPTIONS, json: { type: 'boolean' } }
        : OPTIONS,
    async open(config, values) {
      const sequelize = await openStoredDatabase(config);
      const directory = new SequelizeDirectory(sequelize, systemClock);
      return { sequelize, directory, config, values, json: values.json !== undefined, close: () => sequelize.close() };
    },
  });
}

/** A subject, username or client id given as an option, checked as the admin API checks it. */
export function checkedId(
  values: DirectoryValues,
  name: 'subject' | 'username' | 'client-id',
  fail: Fail,
  required: true,
): string;
export function checkedId(
  values: DirectoryValues,
  name: 'subject' | 'username' | 'client-id',
  fail: Fail,
  required: false,
): string | undefined;
export function checkedId(
  values: DirectoryValues,
  name: 'subject' | 'username' | 'client-id',
  fail: Fail,
  required: boolean,
): string | undefined {
  const value = values[name];
  if (value === undefined) {
    if (required) throw fail(`--${name} is required`);
    return undefined;
  }
  const problem = problemWith(
    { name, kind: 'string', maxLength: name === 'client-id' ? MAX_CLIENT_ID : MAX_SUBJECT, description: '' },
    value,
  );
  if (problem) throw fail(`--${name} ${problem}`);
  return value;
}

/** `Added`, `Updated` or `Unchanged:`, for the line that reports a saved user or client. */
export function savedVerb(outcome: SaveOutcome): string {
  return outcome === 'created' ? 'Added' : outcome === 'updated' ? 'Updated' : 'Unchanged:';
}

/** The note after changing an entry that came from the configuration. */
export const fromConfigNote = (what: string) =>
  `Note: ${what} comes from the configuration; the next start applies the configuration again.`;
