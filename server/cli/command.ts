/**
 * The commands without subcommands (`start`, `migrate`, `hash-password`): they share one option table, and a usage
 * error of theirs prints the general help (server/cli/main.ts).
 */
import type { ValuesOf } from './command-group.js';

export const COMMAND_OPTIONS = {
  config: { type: 'string' },
  port: { type: 'string' },
  issuer: { type: 'string' },
  db: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export type CommandValues = ValuesOf<typeof COMMAND_OPTIONS>;

/** What `start` returns instead of an exit code: the process keeps running until a signal ends it. */
export const KEEP_RUNNING = -1;

export interface Command {
  /** The command word (`start`). */
  name: string;
  /** The help text of `gatehouse <name> --help`. */
  usage: string;
  /** Runs the command with the arguments after its word; returns the exit code, or KEEP_RUNNING. */
  run(args: string[], values: CommandValues): Promise<number>;
}
