/**
 * Loading and validating configuration: a config file (JSON or YAML, chosen with --config or GATEHOUSE_CONFIG),
 * then environment overrides, then the schema. Any problem is a ConfigError naming the exact path of the bad value.
 */
import { readFileSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { presets } from './defaults.js';
import { accountSchema, clientSchema, configSchema, type AccountConfig, type ClientConfig, type GatehouseConfig, type GatehouseConfigInput } from './schema.js';

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[], source?: string) {
    super(`invalid configuration${source ? ` in ${source}` : ''}:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** The environment variables Gatehouse reads, and the config path each one overrides. */
export const ENVIRONMENT_OVERRIDES = {
  PORT: 'port',
  GATEHOUSE_ISSUER: 'issuer',
  GATEHOUSE_DATABASE_URL: 'database.url',
  GATEHOUSE_SERVER_SIDE_SESSIONS: 'serverSideSessions.enabled',
  GATEHOUSE_LOG_LEVEL: 'logging.level',
  GATEHOUSE_PRESET: 'preset',
  GATEHOUSE_MODE: 'mode',
  GATEHOUSE_AUTO_LOGIN: 'login.autoLogin',
  /** Inline JSON, inline YAML or a file path: an array like `accounts`; entries replace file entries with their subject. */
  GATEHOUSE_USERS: 'accounts',
  /** Inline JSON, inline YAML or a file path: an array like `clients`; entries replace file entries with their client_id. */
  GATEHOUSE_CLIENTS: 'clients',
} as const;

/** The reserved client id of Gatehouse's own pages (server/provider/console-client.ts). */
export const RESERVED_CLIENT_ID = 'gatehouse-console';

/** Reads a config file. Relative module paths inside it (serverSideSessions.store) resolve against its folder. */
export function readConfigFile(file: string): GatehouseConfigInput {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError([`cannot read config file ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`]);
  }
  let parsed: unknown;
  try {
    parsed = extname(path) === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new ConfigError([`cannot parse ${path}: ${(error as Error).message.split('\n')[0]}`]);
  }
  if (parsed === null || parsed === undefined) parsed = {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(['(root): expected an object'], path);
  }
  const config = parsed as Record<string, any>;
  const store = config.serverSideSessions?.store;
  if (typeof store === 'string' && (store.startsWith('./') || store.startsWith('../'))) {
    config.serverSideSessions.store = resolve(dirname(path), store);
  }
  return config as GatehouseConfigInput;
}

/** Applies PORT, GATEHOUSE_* variables on top of a config object (a copy is returned). */
export function applyEnvironment(input: GatehouseConfigInput, env: NodeJS.ProcessEnv = process.env): GatehouseConfigInput {
  const config = structuredCloneConfig(input);
  const problems: string[] = [];
  if (env.PORT !== undefined && env.PORT !== '') {
    const port = Number(env.PORT);
    if (!Number.isInteger(port) || port < 0 || port > 65535) problems.push(`PORT: expected a port number, got "${env.PORT}"`);
    else config.port = port;
  }
  if (env.GATEHOUSE_ISSUER) config.issuer = env.GATEHOUSE_ISSUER;
  if (env.GATEHOUSE_DATABASE_URL) config.database = { ...config.database, url: env.GATEHOUSE_DATABASE_URL };
  if (env.GATEHOUSE_LOG_LEVEL) config.logging = { ...config.logging, level: env.GATEHOUSE_LOG_LEVEL as never };
  const flag = env.GATEHOUSE_SERVER_SIDE_SESSIONS;
  if (flag !== undefined && flag !== '') {
    if (flag !== 'true' && flag !== 'false') {
      problems.push(`GATEHOUSE_SERVER_SIDE_SESSIONS: expected true or false, got "${flag}"`);
    } else {
      config.serverSideSessions = { ...config.serverSideSessions, enabled: flag === 'true' };
    }
  }
  if (env.GATEHOUSE_PRESET) {
    if (env.GATEHOUSE_PRESET in presets) config.preset = env.GATEHOUSE_PRESET as never;
    else problems.push(`GATEHOUSE_PRESET: expected one of ${Object.keys(presets).join(', ')}, got "${env.GATEHOUSE_PRESET}"`);
  }
  if (env.GATEHOUSE_MODE) {
    if (['production', 'development', 'testing'].includes(env.GATEHOUSE_MODE)) config.mode = env.GATEHOUSE_MODE as never;
    else problems.push(`GATEHOUSE_MODE: expected production, development or testing, got "${env.GATEHOUSE_MODE}"`);
  }
  if (env.GATEHOUSE_AUTO_LOGIN) config.login = { ...(config.login as object), autoLogin: env.GATEHOUSE_AUTO_LOGIN };
  if (env.GATEHOUSE_USERS) {
    const users = environmentList('GATEHOUSE_USERS', env.GATEHOUSE_USERS, accountSchema, problems);
    if (users) {
      const merged = mergeBy(asArray(config.accounts), users, 'subject', 'accounts', 'GATEHOUSE_USERS');
      problems.push(...onlyMentioning('GATEHOUSE_USERS', accountListProblems(merged)));
      config.accounts = merged.map(({ entry }) => entry) as never;
    }
  }
  if (env.GATEHOUSE_CLIENTS) {
    const clients = environmentList('GATEHOUSE_CLIENTS', env.GATEHOUSE_CLIENTS, clientSchema, problems);
    if (clients) {
      const merged = mergeBy(asArray(config.clients), clients, 'client_id', 'clients', 'GATEHOUSE_CLIENTS');
      problems.push(...onlyMentioning('GATEHOUSE_CLIENTS', clientListProblems(merged)));
      config.clients = merged.map(({ entry }) => entry) as never;
    }
  }
  if (problems.length) throw new ConfigError(problems, 'the environment');
  return config;
}

/**
 * The array a GATEHOUSE_USERS / GATEHOUSE_CLIENTS value holds: inline JSON or YAML (a value starting with `[`, `{` or
 * `-`, or spanning lines), otherwise a path to a JSON or YAML file. Each entry is validated with `schema`; problems are
 * named `NAME[i].path`. Parse errors never quote the value (it may hold passwords or secrets).
 */
function environmentList<T>(name: string, raw: string, schema: z.ZodType<T>, problems: string[]): T[] | undefined {
  const text = raw.trim();
  const inline = /^[[{-]/.test(text) || text.includes('\n');
  let source = text;
  if (!inline) {
    try {
      source = readFileSync(resolve(text), 'utf8');
    } catch (error) {
      problems.push(`${name}: not inline JSON or YAML, and cannot read it as a file ${resolve(text)}: ${(error as NodeJS.ErrnoException).code ?? error}`);
      return undefined;
    }
  }
  let parsed: unknown;
  try {
    // YAML 1.2 is a superset of JSON: one parser for inline JSON, inline YAML and both kinds of file.
    parsed = parseYaml(source);
  } catch (error) {
    problems.push(`${name}: cannot parse ${inline ? 'the inline value' : resolve(text)}: ${(error as Error).message.split('\n')[0]}`);
    return undefined;
  }
  if (!Array.isArray(parsed)) {
    problems.push(`${name}: expected an array (a list of ${name === 'GATEHOUSE_USERS' ? 'users' : 'clients'}), got ${parsed === null ? 'nothing' : typeof parsed}`);
    return undefined;
  }
  const entries: T[] = [];
  const before = problems.length;
  parsed.forEach((entry, index) => {
    const result = schema.safeParse(entry);
    if (result.success) entries.push(result.data);
    else problems.push(...formatIssues(result.error.issues, `${name}[${index}]`));
  });
  return problems.length === before ? entries : undefined;
}

interface Labelled<T> {
  entry: T;
  label: string;
}

/** File entries (labelled `section[i]`) with environment entries (labelled `NAME[j]`): same key = replaced. */
function mergeBy<T>(fromFile: unknown[], fromEnv: T[], key: string, section: string, name: string): Labelled<unknown>[] {
  const envKeys = new Set(fromEnv.map((entry) => (entry as Record<string, unknown>)[key]));
  const kept = fromFile
    .map((entry, index) => ({ entry, label: `${section}[${index}]` }))
    .filter(({ entry }) => !(isObject(entry) && envKeys.has(entry[key])));
  return [...kept, ...fromEnv.map((entry, index) => ({ entry, label: `${name}[${index}]` }))];
}

function onlyMentioning(name: string, problems: string[]): string[] {
  return problems.filter((problem) => problem.includes(`${name}[`));
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The configuration with its preset's values applied under it: anything given explicitly wins. Unknown presets are
 * left for the schema to report.
 */
export function applyPreset(input: unknown): unknown {
  if (!isObject(input) || typeof input.preset !== 'string' || !(input.preset in presets)) return input;
  const { clientDefaults, ...preset } = presets[input.preset as keyof typeof presets];
  const out: Record<string, unknown> = { ...input };
  for (const [key, value] of Object.entries(preset)) {
    if (isObject(value)) {
      const given = isObject(input[key]) ? definedOnly(input[key]) : input[key];
      out[key] = given === undefined || isObject(given) ? { ...value, ...(given as object | undefined) } : given;
    } else if (input[key] === undefined) {
      out[key] = value;
    }
  }
  if (Array.isArray(input.clients)) {
    out.clients = input.clients.map((client) => (isObject(client) ? { ...clientDefaults, ...definedOnly(client) } : client));
  }
  return out;
}

function definedOnly(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
}

/** Validates and applies defaults. Throws ConfigError listing every problem with its path. */
export function validateConfig(input: unknown, source?: string): GatehouseConfig {
  const result = configSchema.safeParse(applyPreset(input));
  if (!result.success) throw new ConfigError(formatIssues(result.error.issues), source);
  const config = result.data;
  const problems = crossFieldProblems(config);
  if (problems.length) throw new ConfigError(problems, source);
  const issuer = (config.issuer ?? `http://localhost:${config.port}`).replace(/\/$/, '');
  return { ...config, issuer };
}

/** The whole start-up path: file (optional) + environment + validation. */
export function loadConfig(options: { file?: string; env?: NodeJS.ProcessEnv; overrides?: GatehouseConfigInput } = {}): GatehouseConfig {
  const env = options.env ?? process.env;
  const file = options.file ?? (env.GATEHOUSE_CONFIG || undefined);
  const fromFile = file ? readConfigFile(file) : {};
  const merged = { ...fromFile, ...options.overrides };
  return validateConfig(applyEnvironment(merged, env), file ? resolve(file) : undefined);
}

function crossFieldProblems(config: z.output<typeof configSchema>): string[] {
  const problems: string[] = [
    ...accountListProblems(config.accounts.map((entry, index) => ({ entry, label: `accounts[${index}]` }))),
    ...clientListProblems(config.clients.map((entry, index) => ({ entry, label: `clients[${index}]` }))),
  ];
  if (config.metrics.enabled && config.metrics.port === undefined && !config.metrics.token) {
    problems.push('metrics.enabled: set metrics.port (a separate listener) or metrics.token (bearer auth on the main port)');
  }
  if (config.serverSideSessions.absoluteLifetime < config.serverSideSessions.idleTimeout) {
    problems.push(
      `serverSideSessions.absoluteLifetime: must be at least idleTimeout (${config.serverSideSessions.idleTimeout}), got ${config.serverSideSessions.absoluteLifetime}`,
    );
  }
  if (config.login.autoLogin !== undefined && config.mode === 'production') {
    problems.push('login.autoLogin: only allowed in development or testing mode (mode is production); set mode: development or testing');
  }
  return problems;
}

/** Duplicate subjects/usernames (one namespace, as on the login form) and password/passwordHash given together. */
function accountListProblems(accounts: Labelled<unknown>[]): string[] {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  const usernames = new Map<string, string>();
  for (const { entry, label } of accounts) {
    if (!isObject(entry) || typeof entry.subject !== 'string') continue;
    const account = entry as Partial<AccountConfig>;
    const username = typeof account.username === 'string' ? account.username : account.subject!;
    for (const name of new Set([account.subject!, username])) {
      if (seen.has(name)) problems.push(`${label}: subject/username "${name}" is already used by ${seen.get(name)}`);
      else seen.set(name, label);
    }
    // The login form matches usernames case-insensitively, so the directory keeps them unique that way.
    const key = username.toLowerCase();
    const other = usernames.get(key);
    if (other && !problems.some((problem) => problem.startsWith(`${label}:`))) {
      problems.push(`${label}.username: "${username}" differs only in case from the username of ${other}`);
    }
    if (!other) usernames.set(key, label);
    if (account.password !== undefined && account.passwordHash !== undefined) {
      problems.push(`${label}.password: give either password or passwordHash, not both`);
    }
  }
  return problems;
}

function clientListProblems(clients: Labelled<unknown>[]): string[] {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const { entry, label } of clients) {
    if (!isObject(entry) || typeof entry.client_id !== 'string') continue;
    if (seen.has(entry.client_id)) problems.push(`${label}.client_id: "${entry.client_id}" is already used by ${seen.get(entry.client_id)}`);
    seen.set(entry.client_id, label);
    problems.push(...clientProblems(entry as ClientConfig, label));
  }
  return problems;
}

/** The rules one validated client must follow beyond its schema (also for clients added with the CLI or the API). */
export function clientProblems(client: ClientConfig, label: string): string[] {
  const problems: string[] = [];
  const path = (field: string) => (label ? `${label}.${field}` : field);
  if (client.client_id === RESERVED_CLIENT_ID) problems.push(`${path('client_id')}: "${RESERVED_CLIENT_ID}" is reserved for Gatehouse's own pages`);
  const isPublic = client.token_endpoint_auth_method === 'none';
  if (!isPublic && !client.client_secret && client.token_endpoint_auth_method !== 'private_key_jwt') {
    problems.push(`${path('client_secret')}: required unless token_endpoint_auth_method is "none" (public client)`);
  }
  if ((client.grant_types ?? []).includes('authorization_code') && (client.redirect_uris ?? []).length === 0) {
    problems.push(`${path('redirect_uris')}: at least one is required for the authorization_code grant`);
  }
  return problems;
}

/** One message per zod issue, each starting with its path (under `prefix`, e.g. `GATEHOUSE_USERS[1]`). */
export function formatIssues(issues: z.core.$ZodIssue[], prefix = ''): string[] {
  const join = (path: string) => (prefix && path ? `${prefix}${path.startsWith('[') ? '' : '.'}${path}` : prefix || path);
  return issues.map((issue) => {
    const path = formatPath(issue.path);
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => `${join(path ? `${path}.${key}` : key)}: unknown key`).join('\n  ');
    }
    return `${join(path) || '(root)'}: ${issue.message}`;
  });
}

export function formatPath(path: PropertyKey[]): string {
  return path.reduce<string>((out, part) => (typeof part === 'number' ? `${out}[${part}]` : out ? `${out}.${String(part)}` : String(part)), '');
}

function structuredCloneConfig(input: GatehouseConfigInput): GatehouseConfigInput {
  // Shallow copies of the sections we touch; values such as a store class must not be cloned.
  return {
    ...input,
    database: input.database && { ...input.database },
    serverSideSessions: input.serverSideSessions && { ...input.serverSideSessions },
    login: input.login && { ...input.login },
  };
}

