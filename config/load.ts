/**
 * Loading and validating configuration: a config file (JSON or YAML, chosen with --config or GATEHOUSE_CONFIG),
 * then environment overrides, then the schema. Any problem is a ConfigError naming the exact path of the bad value.
 */
import { readFileSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { configSchema, type GatehouseConfig, type GatehouseConfigInput } from './schema.js';

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
} as const;

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
  if (problems.length) throw new ConfigError(problems, 'the environment');
  return config;
}

/** Validates and applies defaults. Throws ConfigError listing every problem with its path. */
export function validateConfig(input: unknown, source?: string): GatehouseConfig {
  const result = configSchema.safeParse(input);
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
  const problems: string[] = [];
  const seen = new Map<string, number>();
  config.accounts.forEach((account, index) => {
    for (const name of new Set([account.subject, account.username ?? account.subject])) {
      if (seen.has(name)) problems.push(`accounts[${index}]: subject/username "${name}" is already used by accounts[${seen.get(name)}]`);
      else seen.set(name, index);
    }
  });
  const clientIds = new Map<string, number>();
  config.clients.forEach((client, index) => {
    if (client.client_id === 'gatehouse-console') problems.push(`clients[${index}].client_id: "gatehouse-console" is reserved for Gatehouse's own pages`);
    if (clientIds.has(client.client_id)) problems.push(`clients[${index}].client_id: "${client.client_id}" is already used by clients[${clientIds.get(client.client_id)}]`);
    clientIds.set(client.client_id, index);
    const isPublic = client.token_endpoint_auth_method === 'none';
    if (!isPublic && !client.client_secret && !['private_key_jwt'].includes(client.token_endpoint_auth_method ?? '')) {
      problems.push(`clients[${index}].client_secret: required unless token_endpoint_auth_method is "none" (public client)`);
    }
    if (client.grant_types.includes('authorization_code') && client.redirect_uris.length === 0) {
      problems.push(`clients[${index}].redirect_uris: at least one is required for the authorization_code grant`);
    }
  });
  if (config.metrics.enabled && config.metrics.port === undefined && !config.metrics.token) {
    problems.push('metrics.enabled: set metrics.port (a separate listener) or metrics.token (bearer auth on the main port)');
  }
  if (config.serverSideSessions.absoluteLifetime < config.serverSideSessions.idleTimeout) {
    problems.push(
      `serverSideSessions.absoluteLifetime: must be at least idleTimeout (${config.serverSideSessions.idleTimeout}), got ${config.serverSideSessions.absoluteLifetime}`,
    );
  }
  return problems;
}

function formatIssues(issues: z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    const path = formatPath(issue.path);
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => `${path ? `${path}.` : ''}${key}: unknown key`).join('\n  ');
    }
    return `${path || '(root)'}: ${issue.message}`;
  });
}

export function formatPath(path: PropertyKey[]): string {
  return path.reduce<string>((out, part) => (typeof part === 'number' ? `${out}[${part}]` : out ? `${out}.${String(part)}` : String(part)), '');
}

function structuredCloneConfig(input: GatehouseConfigInput): GatehouseConfigInput {
  // Shallow copies of the sections we touch; values such as a store class must not be cloned.
  return { ...input, database: input.database && { ...input.database }, serverSideSessions: input.serverSideSessions && { ...input.serverSideSessions } };
}

