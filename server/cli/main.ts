/**
 * The `gatehouse` command line: finds the command word and runs that command, then turns how it ended into an exit
 * code (0 success, 1 runtime failure, 2 bad usage or invalid configuration; `start` keeps the process running).
 *
 *   gatehouse start [--config FILE] [--port N] [--issuer URL] [--db URL]   (start.ts)
 *   gatehouse migrate [--config FILE] [--db URL]                            (migrate.ts)
 *   gatehouse users add|list|remove|unlock ...    (the user directory and sign-in lockouts; users.ts)
 *   gatehouse clients add|list|remove ...         (the OAuth clients; clients.ts)
 *   gatehouse keys rotate|list                    (the signing keys; keys.ts)
 *   gatehouse sessions list|revoke ...            (server-side sessions; sessions.ts)
 *   gatehouse hash-password [PASSWORD]            (a PHC string for the config file; hash-password.ts)
 *
 * Each command module holds its help text beside its handler. The commands with subcommands run through
 * command-group.ts; the others share the option table of command.ts.
 */
import { parseArgs } from 'node:util';
import { clients } from './clients.js';
import type { CommandGroup } from './command-group.js';
import { COMMAND_OPTIONS, type Command } from './command.js';
import { reportFailure, UsageError } from './errors.js';
import { hashPasswordCommand } from './hash-password.js';
import { keys } from './keys.js';
import { migrate } from './migrate.js';
import { sessions } from './sessions.js';
import { start } from './start.js';
import { users } from './users.js';

const USAGE = `Usage: gatehouse <command> [options]

Commands:
  start           run the identity server
  migrate         apply database migrations and exit
  users           add, list, remove or unlock users (gatehouse users --help)
  clients         add, list or remove OAuth clients (gatehouse clients --help)
  keys            rotate or list the signing keys (gatehouse keys --help)
  sessions        list or revoke server-side sessions (gatehouse sessions --help)
  hash-password   print a password hash for the accounts section of a config file

Options (start, migrate):
  --config FILE   configuration file, JSON or YAML (env GATEHOUSE_CONFIG)
  --port N        port to listen on (env GATEHOUSE_PORT or PORT)
  --issuer URL    public issuer URL (env GATEHOUSE_ISSUER)
  --db URL        database URL (env GATEHOUSE_DATABASE__URL)
  --help          show this help (gatehouse <command> --help: that command's)
A flag wins over the environment, which wins over the configuration file.

Exit codes: 0 success, 1 failure, 2 bad usage or invalid configuration.`;

/** The commands with subcommands, each parsing its own options. */
const GROUPS = new Map<string, CommandGroup>([users, clients, keys, sessions].map((group) => [group.name, group]));

/** The commands without, parsed here with their shared options. */
const COMMANDS = new Map<string, Command>(
  [start, migrate, hashPasswordCommand].map((command) => [command.name, command]),
);

/** The command word, found leniently so that each command group may have options of its own. */
function commandOf(argv: string[]): string | undefined {
  return parseArgs({ args: argv, strict: false, allowPositionals: true, options: COMMAND_OPTIONS }).positionals[0];
}

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, options: COMMAND_OPTIONS });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Runs `gatehouse <argv>`; returns the exit code, or KEEP_RUNNING (`start`). */
export async function main(argv: string[]): Promise<number> {
  try {
    const word = commandOf(argv);
    const group = word === undefined ? undefined : GROUPS.get(word);
    if (group) {
      await group.run(argv);
      return 0;
    }
    const { values, positionals } = parse(argv);
    const [name, ...args] = positionals;
    if (!name) {
      console.log(USAGE);
      return values.help ? 0 : 2;
    }
    const command = COMMANDS.get(name);
    if (!command) throw new UsageError(`unknown command "${name}"`);
    if (values.help) {
      console.log(command.usage);
      return 0;
    }
    return await command.run(args, values);
  } catch (error) {
    return reportFailure(error, USAGE);
  }
}
