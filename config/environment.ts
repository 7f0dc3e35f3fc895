/**
 * Configuration from the environment, by one rule derived from the options table (./schema.ts): every option is set by
 * `GATEHOUSE_` + its path in upper snake case with `__` between levels (`metrics.port` → `GATEHOUSE_METRICS__PORT`,
 * `serverSideSessions.idleTimeout` → `GATEHOUSE_SERVER_SIDE_SESSIONS__IDLE_TIMEOUT`), plus the older names each
 * option lists as aliases (`PORT`, `GATEHOUSE_DATABASE_URL`, ...). `<NAME>_FILE` reads the value from a file (as
 * container platforms mount secrets). Values are applied over the config file and validated with it; a problem names
 * the variable.
 *
 * Text options take the value as it is; every other kind (numbers, booleans, lists, objects) is read as YAML, which
 * also takes JSON (`9465`, `false`, `["a", "b"]`). Entry lists (`accounts`, `clients`) hold inline JSON/YAML or the
 * path of a JSON/YAML file; their entries replace configured entries with the same key (`subject`, `client_id`).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { formatIssues } from './issues.js';
import { nearestNames } from './nearest-name.js';
import { baseOf, declaredOptions, type DeclaredOption } from './option.js';
import { configSchema, type GatehouseConfigInput } from './schema.js';

/** Variables Gatehouse reads that are not options. */
export const OTHER_VARIABLES: Record<string, string> = {
  GATEHOUSE_CONFIG: 'the configuration file (like --config)',
};

const TEXT_KINDS = new Set(['string', 'enum', 'custom', 'template_literal']);

export interface EnvironmentOption extends DeclaredOption {
  /** The variable derived from the path. */
  name: string;
  /** Every variable that sets it: the derived one first, then the aliases. */
  names: string[];
}

/** `['serverSideSessions', 'idleTimeout']` → `GATEHOUSE_SERVER_SIDE_SESSIONS__IDLE_TIMEOUT`. */
export function variableName(path: string[]): string {
  return `GATEHOUSE_${path.map((part) => part.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('__')}`;
}

let cached: EnvironmentOption[] | undefined;

/** Every option with its environment variables, in the order of the options table. */
export function environmentOptions(): EnvironmentOption[] {
  cached ??= declaredOptions(configSchema.shape).map((declared) => {
    const name = variableName(declared.path);
    return { ...declared, name, names: [name, ...(declared.info.aliases ?? [])] };
  });
  return cached;
}

export interface EnvironmentResult {
  config: GatehouseConfigInput;
  /** Which variable set which path (`metrics.port` → `GATEHOUSE_METRICS__PORT`), to name it in validation errors. */
  sources: Map<string, string>;
  /** Problems found before validation (unreadable files, unparseable values, variables given twice). */
  problems: string[];
  /** Variables that look like a misspelt option. */
  warnings: string[];
}

/**
 * An option's value from the command line (`--port 4000` → `{ flag: '--port', path: 'port', text: '4000' }`). It is
 * read like the option's variable and wins over the environment: flags are what the person typed for this one run.
 */
export interface CommandLineValue {
  flag: string;
  path: string;
  text: string;
}

/**
 * Applies the environment, then the command line's values, over a config object (a copy is returned; the input is not
 * changed). Variables that set the same option (an alias and the derived name, a value and its `_FILE`) must agree.
 */
export function readEnvironment(
  input: GatehouseConfigInput,
  env: NodeJS.ProcessEnv,
  commandLine: CommandLineValue[] = [],
): EnvironmentResult {
  let config = input as Record<string, unknown>;
  const sources = new Map<string, string>();
  const problems: string[] = [];
  for (const option of environmentOptions()) {
    const flag = commandLine.find((value) => value.path === option.path.join('.'));
    const given = flag
      ? [{ name: flag.flag, text: flag.text }]
      : option.names.flatMap((name) => givenValues(name, env, problems));
    if (given.length === 0) continue;
    if (new Set(given.map(({ text }) => text)).size > 1) {
      problems.push(
        `${given.map(({ name }) => name).join(' and ')}: both set ${option.path.join('.')}, to different values; give one`,
      );
      continue;
    }
    const [{ name, text }] = given;
    const value = option.info.key
      ? entries(option, name, text, config, problems, sources)
      : convert(option, name, text, problems);
    if (value === undefined) continue;
    config = setPath(config, option.path, value);
    if (!option.info.key) sources.set(option.path.join('.'), name);
  }
  return { config: config as GatehouseConfigInput, sources, problems, warnings: misspelt(env) };
}

/** The value of `name` or of `name_FILE` (its file's text without the final newline). */
function givenValues(name: string, env: NodeJS.ProcessEnv, problems: string[]): { name: string; text: string }[] {
  const found: { name: string; text: string }[] = [];
  const direct = env[name];
  if (direct !== undefined && direct !== '') found.push({ name, text: direct });
  const file = env[`${name}_FILE`];
  if (file !== undefined && file !== '') {
    try {
      found.push({ name: `${name}_FILE`, text: readFileSync(resolve(file), 'utf8').replace(/\r?\n$/, '') });
    } catch (error) {
      problems.push(`${name}_FILE: cannot read ${resolve(file)}: ${(error as NodeJS.ErrnoException).code ?? error}`);
    }
  }
  return found;
}

function convert(option: EnvironmentOption, name: string, text: string, problems: string[]): unknown {
  const kind = kindOf(option.schema);
  const got = option.info.secret ? '' : `, got "${text.slice(0, 60)}"`;
  if (kind === 'enum') {
    const allowed = (baseOf(option.schema) as z.ZodEnum).options as string[];
    if (!allowed.includes(text)) problems.push(`${name}: expected one of ${allowed.join(', ')}${got}`);
    return allowed.includes(text) ? text : undefined;
  }
  if (TEXT_KINDS.has(kind)) return text;
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (error) {
    problems.push(
      `${name}: cannot read the value as YAML or JSON${option.info.secret ? '' : `: ${(error as Error).message.split('\n')[0]}`}`,
    );
    return undefined;
  }
  if (kind === 'boolean' && typeof value !== 'boolean') problems.push(`${name}: expected true or false${got}`);
  else if (kind === 'number' && typeof value !== 'number') problems.push(`${name}: expected a number${got}`);
  else return value;
  return undefined;
}

function kindOf(schema: z.ZodType): string {
  return (baseOf(schema) as z.ZodType & { def: { type: string } }).def.type;
}

/**
 * An entry list from the environment: inline JSON or YAML (a value starting with `[`, `{` or `-`, or spanning lines),
 * otherwise the path of a JSON or YAML file. Entries are validated here, so problems are named `NAME[i].field`; an
 * entry replaces the configured entry with the same key. Parse errors never quote the value (it may hold secrets).
 */
function entries(
  option: EnvironmentOption,
  name: string,
  raw: string,
  config: Record<string, unknown>,
  problems: string[],
  sources: Map<string, string>,
): unknown[] | undefined {
  const text = raw.trim();
  const inline = /^[[{-]/.test(text) || text.includes('\n');
  let source = text;
  if (!inline) {
    try {
      source = readFileSync(resolve(text), 'utf8');
    } catch (error) {
      problems.push(
        `${name}: not inline JSON or YAML, and cannot read it as a file ${resolve(text)}: ${(error as NodeJS.ErrnoException).code ?? error}`,
      );
      return undefined;
    }
  }
  let parsed: unknown;
  try {
    // YAML 1.2 is a superset of JSON: one parser for inline JSON, inline YAML and both kinds of file.
    parsed = parseYaml(source);
  } catch (error) {
    problems.push(
      `${name}: cannot parse ${inline ? 'the inline value' : resolve(text)}: ${(error as Error).message.split('\n')[0]}`,
    );
    return undefined;
  }
  if (!Array.isArray(parsed)) {
    problems.push(
      `${name}: expected a list (an array) of ${option.path.join('.')}, got ${parsed === null ? 'nothing' : typeof parsed}`,
    );
    return undefined;
  }
  const entrySchema = (baseOf(option.schema) as z.ZodArray<z.ZodType>).element;
  const before = problems.length;
  const fromEnv: Record<string, unknown>[] = [];
  parsed.forEach((entry, index) => {
    const result = entrySchema.safeParse(entry);
    if (result.success) fromEnv.push(result.data as Record<string, unknown>);
    else problems.push(...formatIssues(result.error.issues, `${name}[${index}]`));
  });
  if (problems.length !== before) return undefined;
  const key = option.info.key!;
  const replaced = new Set(fromEnv.map((entry) => entry[key]));
  const section = option.path.join('.');
  const configured = Array.isArray(config[option.path[0]]) ? (config[option.path[0]] as unknown[]) : [];
  const kept = configured.flatMap((entry, index) =>
    isObject(entry) && replaced.has(entry[key]) ? [] : [{ entry, index }],
  );
  // Problems found later name entries by their place in the merged list: name each by where it came from.
  for (const [at, { index }] of kept.entries()) {
    if (at !== index) sources.set(`${section}[${at}]`, `${section}[${index}]`);
  }
  for (const at of fromEnv.keys()) sources.set(`${section}[${kept.length + at}]`, `${name}[${at}]`);
  return [...kept.map(({ entry }) => entry), ...fromEnv];
}

function setPath(config: Record<string, unknown>, path: string[], value: unknown): Record<string, unknown> {
  const [head, ...rest] = path;
  if (rest.length === 0) return { ...config, [head]: value };
  const inner = isObject(config[head]) ? (config[head] as Record<string, unknown>) : {};
  return { ...config, [head]: setPath(inner, rest, value) };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * GATEHOUSE_ variables that are no option but look like one: a name within a letter or two of an option's variable
 * (`GATEHOUSE_METRIC__PORT`, `GATEHOUSE_SERVER_SIDE_SESSION__IDLE_TIMEOUT`), underscores not counted
 * (`GATEHOUSE_METRICS_PORT`). Other variables with the prefix are left alone: other tools use it too (the examples'
 * `GATEHOUSE_REDIS_URL`, the tests' `GATEHOUSE_TEST_*`).
 */
function misspelt(env: NodeJS.ProcessEnv): string[] {
  const variables = [...environmentOptions().flatMap(({ names }) => names), ...Object.keys(OTHER_VARIABLES)];
  const known = new Set(variables.flatMap((name) => [name, `${name}_FILE`]));
  const compared = (name: string) => name.replace(/^GATEHOUSE_/, '').replace(/_/g, '');
  // One suggestion per spelling: an option's own name rather than its alias that differs only in underscores.
  const bySpelling = new Map<string, string>();
  for (const name of variables)
    if (name.startsWith('GATEHOUSE_') && !bySpelling.has(compared(name))) bySpelling.set(compared(name), name);
  const prefixed = [...bySpelling.values()];
  return Object.keys(env)
    .filter((name) => name.startsWith('GATEHOUSE_') && !known.has(name))
    .flatMap((name) => {
      const file = name.endsWith('_FILE') ? '_FILE' : '';
      const nearest = nearestNames(name.slice(0, name.length - file.length), prefixed, compared);
      if (nearest.length === 0) return [];
      return [
        `${name} is not a Gatehouse setting and is ignored; did you mean ${nearest.map((suggestion) => `${suggestion}${file}`).join(' or ')}?`,
      ];
    });
}
