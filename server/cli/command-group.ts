/**
 * A command with subcommands (`gatehouse users add ...`, `gatehouse sessions list ...`), run the same way for every
 * group: the arguments are checked before anything is opened (bad usage exits with 2 and prints the group's help),
 * then the command's configuration is loaded, the group opens what its subcommands work on (the database, or a
 * Gatehouse that does not listen), the subcommand runs and prints to stdout, and what was opened is closed.
 */
import { parseArgs } from 'node:util';
import type { GatehouseConfig } from '../../config/schema.js';
import { commandConfig } from './config.js';
import { UsageError } from './errors.js';

/** A parseArgs option table. */
export type OptionTable = Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }>;

/** The values parseArgs gives for a table. */
export type ValuesOf<T extends OptionTable> = {
  [K in keyof T]?: T[K] extends { multiple: true } ? string[] : T[K] extends { type: 'boolean' } ? boolean : string;
};

/** A usage error of the group: exit code 2, with the group's help. */
export type Fail = (message: string) => UsageError;

export interface Subcommand<V, C, P = void> {
  /** The options it takes: any other option of the group is refused by name. */
  options: readonly (keyof V & string)[];
  /** Checks the arguments before anything is opened (and reads what it needs, such as a password on stdin). */
  prepare?(values: V, fail: Fail): P | Promise<P>;
  /** Does the work on what the group opened; prints to stdout. */
  run(context: C, prepared: P): Promise<void>;
}

export interface CommandGroupDefinition<T extends OptionTable, C> {
  /** The command word (`users`). */
  name: string;
  /** The help text, printed for --help and with every usage error. */
  usage: string;
  /** The options of the group; a function when an option's type depends on the subcommand word. */
  options: T | ((subcommand: string | undefined) => OptionTable);
  /** The subcommands by name (each prepares arguments of its own type, which only its run sees). */
  subcommands: Record<string, Subcommand<ValuesOf<T>, C, unknown>>;
  /** The subcommands as messages name them; their names joined by commas unless given. */
  listed?: string;
  /** A check of one given value, while its option is checked against the subcommand's: a problem, or undefined. */
  checkValue?(name: string, value: unknown): string | undefined;
  /** Opens what the subcommands work on; `close` ends it when the subcommand is done, whatever happened. */
  open(config: GatehouseConfig, values: ValuesOf<T>): Promise<C & { close(): Promise<unknown> }>;
}

export interface CommandGroup {
  name: string;
  usage: string;
  /** Runs the command; `argv` starts with the command word. */
  run(argv: string[]): Promise<void>;
}

export function commandGroup<T extends OptionTable, C>(group: CommandGroupDefinition<T, C>): CommandGroup {
  const { name, usage, subcommands } = group;
  const fail: Fail = (message) => new UsageError(message, usage);
  const optionsFor = (word: string | undefined) =>
    typeof group.options === 'function' ? group.options(word) : group.options;
  const names = Object.keys(subcommands);
  const listed = group.listed ?? names.join(', ');

  async function run(argv: string[]): Promise<void> {
    // The subcommand word first, leniently: the options to parse with may depend on it.
    const word = parseArgs({ args: argv, strict: false, allowPositionals: true, options: optionsFor(undefined) })
      .positionals[1];
    let parsed: ReturnType<typeof parseArgs>;
    try {
      parsed = parseArgs({ args: argv, allowPositionals: true, options: optionsFor(word) });
    } catch (error) {
      throw fail((error as Error).message);
    }
    const values = parsed.values as ValuesOf<T>;
    if (values.help) {
      console.log(usage);
      return;
    }
    if (!word || !names.includes(word)) {
      throw fail(word ? `${name}: unknown subcommand "${word}" (${listed})` : `${name}: give a subcommand, ${listed}`);
    }
    const subcommand = subcommands[word];
    const [, , ...extra] = parsed.positionals;
    if (extra.length) throw fail(`${name} ${word}: unexpected argument "${extra[0]}"`);
    for (const [option, value] of Object.entries(values)) {
      if (value === undefined) continue;
      if (!(subcommand.options as readonly string[]).includes(option))
        throw fail(`--${option} is not an option of ${name} ${word}`);
      const problem = group.checkValue?.(option, value);
      if (problem) throw fail(`--${option} ${problem}`);
    }
    const prepared = await subcommand.prepare?.(values, fail);
    const context = await group.open(commandConfig(values as Parameters<typeof commandConfig>[0]), values);
    try {
      await subcommand.run(context, prepared);
    } finally {
      await context.close();
    }
  }

  return { name, usage, run };
}
