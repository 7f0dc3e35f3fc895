/**
 * Loading and validating configuration: a config file (JSON or YAML, chosen with --config or GATEHOUSE_CONFIG),
 * then environment overrides, then the schema. Any problem is a ConfigError naming the exact path of the bad value.
 */
import { readFileSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { presets } from './defaults.js';
import { readEnvironment, type CommandLineValue } from './environment.js';
import { formatIssues } from './issues.js';
import { typeOf } from './describe-type.js';
import { optionInfo, schemaAt } from './option.js';

export { formatIssues, formatPath } from './issues.js';
import {
  configSchema,
  DEVICE_CODE_GRANT,
  type AccountConfig,
  type ApiConfig,
  type ClientConfig,
  type GatehouseConfig,
  type GatehouseConfigInput,
} from './schema.js';

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[], source?: string) {
    super(`invalid configuration${source ? ` in ${source}` : ''}:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** The reserved client id of Gatehouse's own pages (server/provider/console-client.ts). */
export const RESERVED_CLIENT_ID = 'gatehouse-console';

/** Gatehouse's own scopes (OpenID Connect's and the admin API's); no API may define one of these. */
export const GATEHOUSE_SCOPES = ['openid', 'offline_access', 'profile', 'email', 'address', 'phone', 'gatehouse:admin'];

/** Scopes a client gets only by naming them in its own `scope` list (oidc-provider lets a client without one ask for any). */
export const PRIVILEGED_SCOPES = ['gatehouse:admin'];

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
  if (!isObject(parsed)) {
    throw new ConfigError(['(root): expected an object'], path);
  }
  const sessions = parsed.serverSideSessions;
  if (isObject(sessions) && typeof sessions.store === 'string') {
    const store = sessions.store;
    if (store.startsWith('./') || store.startsWith('../')) sessions.store = resolve(dirname(path), store);
  }
  return parsed as GatehouseConfigInput;
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
    out.clients = input.clients.map((client) =>
      isObject(client) ? { ...clientDefaults, ...definedOnly(client) } : client,
    );
  }
  return out;
}

function definedOnly(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
}

/**
 * Validates and applies defaults. Throws ConfigError listing every problem with its path, or with the environment
 * variable that set it (`sources`: path → variable, from readEnvironment).
 */
export function validateConfig(
  input: unknown,
  source?: string,
  sources: Map<string, string> = new Map(),
): GatehouseConfig {
  const prepared = applyPreset(input);
  const result = configSchema.safeParse(prepared);
  if (!result.success) {
    const issues = result.error.issues.map((issue) => explained(issue, prepared));
    throw new ConfigError(
      formatIssues(issues).map((problem) => namedBySource(problem, sources)),
      source,
    );
  }
  const config = result.data;
  const problems = crossFieldProblems(config).map((problem) => namedBySource(problem, sources));
  if (problems.length) throw new ConfigError(problems, source);
  const issuer = (config.issuer ?? `http://localhost:${config.port}`).replace(/\/$/, '');
  return { ...config, issuer };
}

/**
 * zod says only "Invalid input" when a value fits none of an option's alternatives (`metrics.port: false` or a port):
 * say what the option takes and what it got (unless the option is a secret).
 */
function explained(issue: z.core.$ZodIssue, input: unknown): z.core.$ZodIssue {
  if (issue.code !== 'invalid_union') return issue;
  const schema = schemaAt(configSchema, issue.path);
  if (!schema) return issue;
  const value = issue.path.reduce<unknown>(
    (at, part) => (at !== null && typeof at === 'object' ? (at as Record<PropertyKey, unknown>)[part] : undefined),
    input,
  );
  const got = optionInfo.get(schema)?.secret ? '' : `, got ${(JSON.stringify(value) ?? String(value)).slice(0, 60)}`;
  return { ...issue, message: `expected ${typeOf(schema, { code: false })}${got}` };
}

/** A problem message with every path that an environment variable set renamed to that variable. */
function namedBySource(problem: string, sources: Map<string, string>): string {
  const paths = [...sources.keys()].sort((a, b) => b.length - a.length);
  if (paths.length === 0) return problem;
  const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`(?<![\\w.\\]])(${paths.map(escapeRegExp).join('|')})(?=$|[.[:\\s,;)])`, 'g');
  return problem.replace(pattern, (path) => sources.get(path)!);
}

export interface LoadOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
  overrides?: GatehouseConfigInput;
  /** Options given on the command line (`--port`): applied after the environment, so they win over it. */
  commandLine?: CommandLineValue[];
  /** Told about GATEHOUSE_ variables that look like a misspelt option. */
  warn?: (message: string) => void;
}

/** The whole start-up path: file (optional) + environment + command line + validation. */
export function loadConfig(options: LoadOptions = {}): GatehouseConfig {
  const env = options.env ?? process.env;
  const file = options.file ?? (env.GATEHOUSE_CONFIG || undefined);
  const fromFile = file ? readConfigFile(file) : {};
  const merged = { ...fromFile, ...options.overrides };
  const { config, sources, problems, warnings } = readEnvironment(merged, env, options.commandLine);
  if (problems.length) {
    const fromFlags = problems.filter((problem) => problem.startsWith('--')).length;
    throw new ConfigError(
      problems,
      inputList([fromFlags < problems.length && 'the environment', fromFlags > 0 && 'the command line']),
    );
  }
  for (const warning of warnings) options.warn?.(warning);
  // Problems found in validation name their variable or flag; the header names every input that went into them.
  const setBy = [...sources.values()];
  const inputs = [
    file && resolve(file),
    setBy.some((name) => /^[A-Z]/.test(name)) && 'the environment',
    setBy.some((name) => name.startsWith('--')) && 'the command line',
  ];
  return validateConfig(config, inputList(inputs), sources);
}

/** `a`, `a and b`, `a, b and c` of the given inputs (false ones left out); undefined for none. */
function inputList(inputs: (string | false | undefined)[]): string | undefined {
  const named = inputs.filter((input): input is string => Boolean(input));
  if (named.length === 0) return undefined;
  return named.length === 1 ? named[0] : `${named.slice(0, -1).join(', ')} and ${named.at(-1)}`;
}

function crossFieldProblems(config: z.output<typeof configSchema>): string[] {
  const problems: string[] = [
    ...accountListProblems(config.accounts.map((entry, index) => ({ entry, label: `accounts[${index}]` }))),
    ...clientListProblems(config.clients.map((entry, index) => ({ entry, label: `clients[${index}]` }))),
    ...apiListProblems(config.apis.map((entry, index) => ({ entry, label: `apis[${index}]` }))),
    ...config.clients.flatMap((client, index) => clientFeatureProblems(client, config, `clients[${index}]`)),
    ...apiClientProblems(config.apis, config.clients),
  ];
  if (config.metrics.enabled && config.metrics.port === undefined && !config.metrics.token) {
    problems.push(
      'metrics.enabled: set metrics.port (a separate listener) or metrics.token (bearer auth on the main port)',
    );
  }
  if (config.serverSideSessions.absoluteLifetime < config.serverSideSessions.idleTimeout) {
    problems.push(
      `serverSideSessions.absoluteLifetime: must be at least idleTimeout (${config.serverSideSessions.idleTimeout}), got ${config.serverSideSessions.absoluteLifetime}`,
    );
  }
  if (config.passwordHashing.memory < 8 * config.passwordHashing.parallelism) {
    problems.push(
      `passwordHashing.memory: expected at least 8 KiB per lane (8 × parallelism = ${8 * config.passwordHashing.parallelism}), got ${config.passwordHashing.memory}`,
    );
  }
  if (config.login.maxLockout < config.login.lockout) {
    problems.push(
      `login.maxLockout: must be at least login.lockout (${config.login.lockout}), got ${config.login.maxLockout}`,
    );
  }
  if (config.keys.activationDelay * 1000 < 2 * config.keys.refreshMs) {
    // Every instance must have read a new key (every refreshMs) well before any instance signs with it.
    problems.push(
      `keys.activationDelay: must be at least twice keys.refreshMs (${config.keys.refreshMs} ms), got ${config.keys.activationDelay} s`,
    );
  }
  if (config.login.autoLogin !== undefined && config.mode === 'production') {
    problems.push(
      'login.autoLogin: only allowed in development or testing mode (mode is production); set mode: development or testing',
    );
  }
  return problems;
}

/** Duplicate subjects/usernames (one namespace, as on the login form) and password/passwordHash given together. */
interface Labelled<T> {
  entry: T;
  label: string;
}

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
    if (seen.has(entry.client_id))
      problems.push(`${label}.client_id: "${entry.client_id}" is already used by ${seen.get(entry.client_id)}`);
    seen.set(entry.client_id, label);
    problems.push(...clientProblems(entry as ClientConfig, label));
  }
  return problems;
}

/** The rules one validated client must follow beyond its schema (also for clients added with the CLI or the API). */
export function clientProblems(client: ClientConfig, label: string): string[] {
  const problems: string[] = [];
  const path = (field: string) => (label ? `${label}.${field}` : field);
  if (client.client_id === RESERVED_CLIENT_ID)
    problems.push(`${path('client_id')}: "${RESERVED_CLIENT_ID}" is reserved for Gatehouse's own pages`);
  const isPublic = client.token_endpoint_auth_method === 'none';
  if (!isPublic && !client.client_secret && client.token_endpoint_auth_method !== 'private_key_jwt') {
    problems.push(
      `${path('client_secret')}: required unless token_endpoint_auth_method is "none" (public client) or "private_key_jwt"`,
    );
  }
  if (client.token_endpoint_auth_method === 'private_key_jwt' && !client.jwks && !client.jwks_uri)
    problems.push(`${path('jwks')}: a private_key_jwt client needs its public keys, as jwks or jwks_uri`);
  if (client.jwks && client.jwks_uri) problems.push(`${path('jwks_uri')}: give jwks or jwks_uri, not both`);
  if ((client.grant_types ?? []).includes('authorization_code') && (client.redirect_uris ?? []).length === 0) {
    problems.push(`${path('redirect_uris')}: at least one is required for the authorization_code grant`);
  }
  if (isPublic && (client.grant_types ?? []).includes('client_credentials'))
    problems.push(
      `${path('grant_types')}: a public client (token_endpoint_auth_method "none") cannot use client_credentials: ` +
        'anyone who knows its id would get tokens',
    );
  const scopes = client.scope?.split(' ') ?? [];
  const privileged = scopes.filter((scope) => PRIVILEGED_SCOPES.includes(scope));
  if (isPublic && privileged.length > 0)
    problems.push(`${path('scope')}: a public client cannot hold ${privileged.join(', ')}`);
  if (scopes.includes(''))
    problems.push(`${path('scope')}: scopes are separated by single spaces, without leading or trailing ones`);
  const unknownScopes = scopes.filter((scope) => scope && !GATEHOUSE_SCOPES.includes(scope));
  if (unknownScopes.length > 0)
    problems.push(
      `${path('scope')}: ${unknownScopes.map((scope) => JSON.stringify(scope)).join(', ')} not among ${GATEHOUSE_SCOPES.join(', ')} ` +
        "(an API's scopes are not listed here: its allowedClients says which clients get them)",
    );
  if (client.application_type === 'native')
    for (const field of ['redirect_uris', 'post_logout_redirect_uris'] as const)
      for (const [index, uri] of (client[field] ?? []).entries()) {
        const { protocol, hostname } = new URL(uri);
        const loopback = LOOPBACK_HOSTS.includes(hostname);
        if (protocol === 'http:' && !loopback)
          problems.push(`${path(`${field}[${index}]`)}: a native client's http redirect must go to a loopback address`);
        if (protocol === 'https:' && loopback)
          problems.push(`${path(`${field}[${index}]`)}: a native client's https redirect must not go to ${hostname}`);
      }
  return problems;
}

/** Host names oidc-provider treats as loopback in redirect URIs. */
const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'];

/**
 * A client that asks for a feature the configuration leaves off: the provider would drop the setting without a word
 * (PAR, DPoP) or refuse the whole client (the device grant), so it is refused here, by name.
 */
export function clientFeatureProblems(
  client: ClientConfig,
  features: Pick<GatehouseConfig, 'deviceFlow' | 'pushedAuthorizationRequests' | 'dpop'>,
  label: string,
): string[] {
  const problems: string[] = [];
  const path = (field: string) => (label ? `${label}.${field}` : field);
  if ((client.grant_types ?? []).includes(DEVICE_CODE_GRANT) && !features.deviceFlow.enabled) {
    problems.push(`${path('grant_types')}: ${DEVICE_CODE_GRANT} needs deviceFlow.enabled: true`);
  }
  if (client.require_pushed_authorization_requests && !features.pushedAuthorizationRequests.enabled) {
    problems.push(`${path('require_pushed_authorization_requests')}: needs pushedAuthorizationRequests.enabled: true`);
  }
  if (client.dpop_bound_access_tokens && !features.dpop.enabled) {
    problems.push(`${path('dpop_bound_access_tokens')}: needs dpop.enabled: true`);
  }
  return problems;
}

/**
 * Unique identifiers (compared as URLs, as the provider does), and scope names that say which API a request is for:
 * unique across APIs and none of Gatehouse's own.
 */
function apiListProblems(apis: Labelled<ApiConfig>[]): string[] {
  const problems: string[] = [];
  const identifiers = new Map<string, string>();
  const scopes = new Map<string, string>();
  for (const { entry: api, label } of apis) {
    const key = URL.canParse(api.identifier) ? new URL(api.identifier).href : api.identifier;
    if (identifiers.has(key))
      problems.push(`${label}.identifier: "${api.identifier}" is already used by ${identifiers.get(key)}`);
    else identifiers.set(key, label);
    api.scopes.forEach((scope, index) => {
      const at = `${label}.scopes[${index}].name`;
      const owner = scopes.get(scope.name);
      if (GATEHOUSE_SCOPES.includes(scope.name))
        problems.push(`${at}: "${scope.name}" is one of Gatehouse's own scopes`);
      else if (owner?.startsWith(`${label}.`)) problems.push(`${at}: "${scope.name}" is listed twice`);
      else if (owner) problems.push(`${at}: "${scope.name}" is already a scope of ${owner.replace(/\.scopes.*$/, '')}`);
      else scopes.set(scope.name, at);
    });
  }
  return problems;
}

/** An API's introspection client must be confidential when the configuration defines it. */
/**
 * For one client added while the configuration stands (CLI, admin API): a public client cannot be the one an API
 * introspects as (the provider would accept a bare client_id at the introspection endpoint).
 */
export function introspectionClientProblems(client: ClientConfig, apis: ApiConfig[], label: string): string[] {
  const api = apis.find((entry) => entry.introspectionClientId === client.client_id);
  if (!api || client.token_endpoint_auth_method !== 'none') return [];
  const field = label ? `${label}.token_endpoint_auth_method` : 'token_endpoint_auth_method';
  return [
    `${field}: "none" is refused: the API ${api.identifier} introspects as this client, which must be confidential`,
  ];
}

function apiClientProblems(apis: ApiConfig[], clients: ClientConfig[]): string[] {
  const problems: string[] = [];
  apis.forEach((api, index) => {
    const client = api.introspectionClientId
      ? clients.find((entry) => entry.client_id === api.introspectionClientId)
      : undefined;
    if (client?.token_endpoint_auth_method === 'none') {
      problems.push(
        `apis[${index}].introspectionClientId: "${client.client_id}" is a public client; an API introspects as a confidential one`,
      );
    }
  });
  return problems;
}
