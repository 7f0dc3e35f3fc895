/**
 * The `gatehouse` command line.
 *
 *   gatehouse start [--config FILE] [--port N] [--issuer URL] [--db URL]
 *   gatehouse migrate [--config FILE] [--db URL]
 *   gatehouse users add|list|remove|unlock ...  (the user directory and sign-in lockouts; see cli/users.ts)
 *   gatehouse clients add|list|remove ...  (the OAuth clients)
 *   gatehouse keys rotate|list             (the signing keys)
 *   gatehouse sessions list|revoke ...     (server-side sessions; see cli/sessions.ts)
 *   gatehouse hash-password [PASSWORD]     (reads stdin when no argument; prints a PHC string for the config file)
 *
 * Exit codes: 0 success, 1 runtime failure, 2 bad usage or invalid configuration.
 */
import { parseArgs } from 'node:util';
import { commandConfig } from './cli/config.js';
import { readStdin } from './cli/stdin.js';
import type { GatehouseConfigInput } from '../config/schema.js';
import { openMigratedDatabase } from '../stores/sequelize/migrate.js';
import { clients } from './cli/clients.js';
import type { CommandGroup } from './cli/command-group.js';
import { reportFailure, UsageError } from './cli/errors.js';
import { keys } from './cli/keys.js';
import { sessions } from './cli/sessions.js';
import { users } from './cli/users.js';
import { hashPassword } from './provider/passwords.js';
import { startBanner } from './banner.js';
import { isPretty } from './logging.js';

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

const COMMAND_USAGE: Record<string, string> = {
  start: `Usage: gatehouse start [--config FILE] [--port N] [--issuer URL] [--db URL]

Runs the identity server: migrates the database, applies the configured users and clients (config file,
GATEHOUSE_USERS, GATEHOUSE_CLIENTS), then listens until SIGINT or SIGTERM. The first signal drains: /readyz answers
503, no new connections, requests in flight finish (at most shutdown.timeout, 10 s); exit code 0, or 1 when the
deadline cut work in flight. A second signal exits at once (1).

  --config FILE   configuration file, JSON or YAML (env GATEHOUSE_CONFIG)
  --port N        port to listen on (env GATEHOUSE_PORT or PORT)
  --issuer URL    public issuer URL (env GATEHOUSE_ISSUER)
  --db URL        database URL (env GATEHOUSE_DATABASE__URL)

Every option can be set from the environment: GATEHOUSE_ + its path in upper snake case, __ between levels
(GATEHOUSE_METRICS__PORT=9465); <VARIABLE>_FILE reads a value from a file. The environment wins over the file, and
the flags above over both. The reference: docs/configuration.md.`,
  migrate: `Usage: gatehouse migrate [--config FILE] [--db URL]

Applies pending database migrations and exits (start does it too).`,
  'hash-password': `Usage: gatehouse hash-password [PASSWORD] [--config FILE]

Prints a PHC string for accounts[].passwordHash with the configured passwordHashing (argon2id m=19456,t=2,p=1 by
default: $argon2id$v=19$m=19456,t=2,p=1$...). Without an argument the password is read from standard input (safer: an
argument shows in the process list).`,
};

/** The commands with subcommands, each with its own options and help. */
const GROUPS = new Map<string, CommandGroup>([users, clients, keys, sessions].map((group) => [group.name, group]));

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        port: { type: 'string' },
        issuer: { type: 'string' },
        db: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

async function start(values: ReturnType<typeof parse>['values']): Promise<void> {
  const config = commandConfig(values);
  // Loaded here, not at the top: the other commands (and --help) start faster without the provider.
  const { createServer } = await import('./create-server.js');
  const server = await createServer(config as GatehouseConfigInput);
  let listening: Awaited<ReturnType<typeof server.listen>>;
  try {
    listening = await server.listen();
  } catch (error) {
    // Nothing half-started: close the database and background work too, so the process exits (code 1).
    await server.close({ timeoutMs: 1000 });
    throw error;
  }
  const { url, metricsPort } = listening;
  server.logger.info({ issuer: config.issuer, url, serverSideSessions: config.serverSideSessions.enabled }, `Gatehouse listening on ${url}`);
  if (isPretty(config.logging)) {
    process.stdout.write(`\n${startBanner({ config: server.config, metricsPort, storeName: server.sessionStore?.constructor.name })}\n`);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      // A second signal: the operator (or the orchestrator) wants it over now.
      server.logger.warn({ event: 'shutdown', signal }, 'second signal: exiting at once');
      process.exit(1);
    }
    stopping = true;
    const timeoutMs = config.shutdown.timeout * 1000;
    // (Message and its last field kept as they were: test/package.test.ts and log searches look for them.)
    server.logger.info({ event: 'shutdown.start', timeoutMs, signal }, 'shutting down');
    // Whatever happens inside the drain, the process ends shortly after its deadline (before a SIGKILL would come).
    setTimeout(() => process.exit(1), timeoutMs + 5000).unref();
    server.close({ timeoutMs }).then(
      // Exit code 0 for a clean drain, 1 when the deadline cut requests or background work.
      (result) => process.exit(result.cut || result.backgroundCut ? 1 : 0),
      (error) => {
        server.logger.error({ err: { message: (error as Error).message } }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

async function runMigrations(values: ReturnType<typeof parse>['values']): Promise<void> {
  const config = commandConfig(values);
  const { sequelize, applied } = await openMigratedDatabase(config.database);
  await sequelize.close();
  console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
}


async function hashPasswordCommand(positionals: string[], values: ReturnType<typeof parse>['values']): Promise<void> {
  const password = positionals[0] ?? (await readStdin());
  if (!password) throw new UsageError('hash-password: give a password as an argument or on standard input');
  const config = commandConfig(values);
  console.log(await hashPassword(password, config.passwordHashing));
}

/** The command word, found leniently so that each command may have options of its own. */
function commandOf(argv: string[]): string | undefined {
  const options = { config: { type: 'string' }, port: { type: 'string' }, issuer: { type: 'string' }, db: { type: 'string' } } as const;
  return parseArgs({ args: argv, strict: false, allowPositionals: true, options }).positionals[0];
}

export async function main(argv: string[]): Promise<number> {
  try {
    const word = commandOf(argv);
    const group = word === undefined ? undefined : GROUPS.get(word);
    if (group) {
      await group.run(argv);
      return 0;
    }
    const { values, positionals } = parse(argv);
    const [command, ...rest] = positionals;
    if (!command) {
      console.log(USAGE);
      return values.help ? 0 : 2;
    }
    if (values.help) {
      if (!COMMAND_USAGE[command]) throw new UsageError(`unknown command "${command}"`);
      console.log(COMMAND_USAGE[command]);
      return 0;
    }
    switch (command) {
      case 'start':
        if (rest.length) throw new UsageError(`start: unexpected argument "${rest[0]}"`);
        await start(values);
        return -1; // keep running
      case 'migrate':
        if (rest.length) throw new UsageError(`migrate: unexpected argument "${rest[0]}"`);
        await runMigrations(values);
        return 0;
      case 'hash-password':
        await hashPasswordCommand(rest, values);
        return 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    return reportFailure(error, USAGE);
  }
}

const code = await main(process.argv.slice(2));
if (code >= 0) process.exitCode = code;
