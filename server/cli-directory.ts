/**
 * `gatehouse users|clients|keys ...`: the directory, sign-in lockouts and the signing keys, changed in the configured
 * database. They need no running server and are safe while servers run on it: a running server sees a user or client
 * change within `directory.cacheMs` (1 s), an unlock at once, and a key rotation within `keys.refreshMs`
 * (server/provider/key-ring.ts). `users remove` also ends the user's sessions, tokens and grants, through a Gatehouse
 * built on the same database (see cli-sessions.ts).
 *
 * Users and clients added here have source `cli`: the configuration's seeding never touches them. Changing or removing
 * an entry that came from the configuration works too, until the next start applies the configuration again.
 */
import { parseArgs } from 'node:util';
import { commandConfig } from './cli/config.js';
import { commandServer, openStoredDatabase } from './cli/database.js';
import { CommandError } from './cli/errors.js';
import { deliveryLine, deliveryOf } from './cli/logout-delivery.js';
import { formatTable, printJson } from './cli/output.js';
import { readStdin } from './cli/stdin.js';
import type { Sequelize } from 'sequelize';
import { clientFeatureProblems, clientProblems, formatIssues } from '../config/load.js';
import { clientSchema, type ClientConfig, type GatehouseConfig } from '../config/schema.js';
import { systemClock } from '../stores/clock.js';
import { SequelizeDirectory, UsernameTakenError, type ClientRecord, type UserRecord } from '../stores/sequelize/directory.js';
import { publicUser } from './provider/accounts.js';
import { toClientConfig, toClientInput } from './provider/clients.js';
import { listSigningKeys, longestTokenLifetime, rotateSigningKeys } from './provider/keys.js';
import { hashPassword } from './provider/passwords.js';
import { lockoutJson, MAX_CLIENT_ID, MAX_SUBJECT, problemWith } from './routes/admin-api-params.js';
import { LoginThrottle, loginNameKey } from './provider/login-throttle.js';
import { LoginAttempts } from '../stores/sequelize/login-attempts.js';
import { loggableMessage } from './http/errors.js';
import { UserOffboarding, type AccessEnded } from './provider/user-offboarding.js';

const COMMON_HELP = `Every subcommand takes --config FILE and --db URL (env GATEHOUSE_CONFIG, GATEHOUSE_DATABASE__URL; a flag
wins over the environment), --json (machine-readable output) and --help.`;

export const USERS_USAGE = `Usage:
  gatehouse users add --subject S [--username U] [--password P | --password-stdin]
                      [--claim name=value ...] [--claim name:=<JSON> ...] [--role R ...] [--replace]
  gatehouse users list
  gatehouse users remove --subject S
  gatehouse users unlock --subject S

${COMMON_HELP}

  add      a user (source cli). The password is hashed with the configured passwordHashing cost; prefer
           --password-stdin (a --password value shows in the process list). --claim sets a string claim
           (--claim name=Alice) or a JSON one (--claim email_verified:=true); repeat it for more. Without a
           password the user can only use the one-click buttons and login.autoLogin (development, testing).
           An existing subject is refused unless --replace is given (its password is kept unless one is given).
  list     every user, enabled or not, with where it came from (config, cli, api)
  remove   delete the user and end their sessions, tokens and grants, with back-channel logout to their
           relying parties (give the servers' --config, so the logout tokens carry their issuer); a user from
           the configuration comes back at the next start
  unlock   lift every sign-in lock on the user's name and forget its failure counts: untrusted clients, the
           name at every address, the user's devices (docs/sign-in-protection.md); running servers on the
           database see it at once`;

export const CLIENTS_USAGE = `Usage:
  gatehouse clients add --client-id ID [--secret S | --public] [--name NAME] [--redirect-uri URL ...]
                        [--post-logout-redirect-uri URL ...] [--grant-type G ...] [--scope "a b"]
                        [--auth-method M] [--backchannel-logout-uri URL] [--skip-consent]
                        [--coordinate-with-session] [--require-par] [--dpop-bound] [--replace]
  gatehouse clients add --json '{"client_id": "...", ...}' [--replace]
  gatehouse clients list
  gatehouse clients remove --client-id ID

${COMMON_HELP}

  add      a client (source cli), the same fields as clients[] in a config file; --json takes them as one
           object. Grant types: authorization_code (default), refresh_token, client_credentials,
           urn:ietf:params:oauth:grant-type:device_code (with deviceFlow.enabled). --require-par: its
           authorization requests must be pushed (require_pushed_authorization_requests); --dpop-bound: its
           tokens must be DPoP-bound (dpop_bound_access_tokens). A running server knows it within a second,
           without a restart. An existing id needs --replace.
  list     every client, enabled or not (secrets are never shown)
  remove   delete the client (one from the configuration comes back at the next start)`;

export const KEYS_USAGE = `Usage:
  gatehouse keys rotate
  gatehouse keys list

${COMMON_HELP}

  rotate   stage a new RS256 + ES256 pair: published at once (pending), signing after keys.activationDelay
           (1 h: longer than relying parties cache the JWKS); the keys it replaces stay published until every
           token they signed has expired (its activation + the longest token lifetime). Running servers follow
           the stored keys within keys.refreshMs: no restart.
  list     the stored signing keys and their stage: pending (published, signs from ...), active (signing),
           retiring (published until ...), retired (no longer published; dropped at the next rotation)`;

const USAGES = { users: USERS_USAGE, clients: CLIENTS_USAGE, keys: KEYS_USAGE } as const;
export type DirectoryCommand = keyof typeof USAGES;

/** Bad usage (exit code 2); `usage` is the help text to print with it. */
export class DirectoryUsageError extends Error {
  readonly usage: string;
  constructor(command: DirectoryCommand, message: string) {
    super(message);
    this.usage = USAGES[command];
  }
}

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
  'skip-consent': { type: 'boolean' },
  'coordinate-with-session': { type: 'boolean' },
  'require-par': { type: 'boolean' },
  'dpop-bound': { type: 'boolean' },
} as const;

type OptionName = keyof typeof OPTIONS;
type Values = { [K in OptionName]?: (typeof OPTIONS)[K] extends { multiple: true } ? string[] : (typeof OPTIONS)[K] extends { type: 'boolean' } ? boolean : string };

const COMMON: OptionName[] = ['config', 'db', 'help'];
const CLIENT_FIELDS: OptionName[] = ['client-id', 'secret', 'public', 'name', 'redirect-uri', 'post-logout-redirect-uri', 'grant-type', 'scope', 'auth-method', 'backchannel-logout-uri', 'skip-consent', 'coordinate-with-session', 'require-par', 'dpop-bound'];
const SUBCOMMANDS: Record<DirectoryCommand, Record<string, OptionName[]>> = {
  users: {
    add: [...COMMON, 'subject', 'username', 'password', 'password-stdin', 'claim', 'role', 'replace', 'json'],
    list: [...COMMON, 'json'],
    remove: [...COMMON, 'subject', 'json'],
    unlock: [...COMMON, 'subject', 'json'],
  },
  clients: {
    add: [...COMMON, ...CLIENT_FIELDS, 'replace', 'json'],
    list: [...COMMON, 'json'],
    remove: [...COMMON, 'client-id', 'json'],
  },
  keys: { rotate: [...COMMON, 'json'], list: [...COMMON, 'json'] },
};
/** Subcommands whose --json is a flag (machine-readable output) rather than a value. */
const JSON_FLAG = new Set(['users add', 'users list', 'users remove', 'users unlock', 'clients list', 'clients remove', 'keys rotate', 'keys list']);

/** Runs `gatehouse users|clients|keys ...` (argv includes the command word); prints to stdout. */
export async function directoryCommand(command: DirectoryCommand, argv: string[]): Promise<void> {
  const lenient = parseArgs({ args: argv, strict: false, allowPositionals: true, options: { ...OPTIONS, json: { type: 'boolean' } } });
  const subcommand = lenient.positionals[1];
  const { values, positionals } = parse(command, subcommand, argv);
  if (values.help) {
    console.log(USAGES[command]);
    return;
  }
  const [, , ...extra] = positionals;
  const names = Object.keys(SUBCOMMANDS[command]);
  if (!subcommand || !names.includes(subcommand)) {
    throw new DirectoryUsageError(command, subcommand ? `${command}: unknown subcommand "${subcommand}" (${names.join(', ')})` : `${command}: give a subcommand, ${names.join(', ')}`);
  }
  if (extra.length) throw new DirectoryUsageError(command, `${command} ${subcommand}: unexpected argument "${extra[0]}"`);
  for (const [name, value] of Object.entries(values) as [OptionName, unknown][]) {
    if (value !== undefined && !SUBCOMMANDS[command][subcommand].includes(name)) {
      throw new DirectoryUsageError(command, `--${name} is not an option of ${command} ${subcommand}`);
    }
  }
  const fail = (message: string) => new DirectoryUsageError(command, message);
  const run = RUNNERS[command][subcommand];
  const prepared = await run.prepare(values, fail);
  const config = commandConfig(values);
  const sequelize = await openStoredDatabase(config);
  try {
    await run.execute({ sequelize, directory: new SequelizeDirectory(sequelize, systemClock), config, values, json: values.json !== undefined }, prepared);
  } finally {
    await sequelize.close();
  }
}

function parse(command: DirectoryCommand, subcommand: string | undefined, argv: string[]): { values: Values; positionals: string[] } {
  // --json is a value for `clients add` and a flag everywhere else.
  const jsonIsFlag = subcommand === undefined || JSON_FLAG.has(`${command} ${subcommand}`);
  const options = { ...OPTIONS, json: jsonIsFlag ? ({ type: 'boolean' } as const) : OPTIONS.json };
  try {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options });
    return { values: values as Values, positionals };
  } catch (error) {
    throw new DirectoryUsageError(command, (error as Error).message);
  }
}

interface Context {
  sequelize: Sequelize;
  directory: SequelizeDirectory;
  config: GatehouseConfig;
  values: Values;
  json: boolean;
}

interface Runner<P> {
  /** Checks the arguments before anything is opened (usage errors exit 2). */
  prepare(values: Values, fail: (message: string) => DirectoryUsageError): Promise<P>;
  execute(context: Context, prepared: P): Promise<void>;
}

function runner<P>(definition: Runner<P>): Runner<unknown> {
  return definition as Runner<unknown>;
}

function checked(values: Values, name: 'subject' | 'username' | 'client-id', fail: (message: string) => DirectoryUsageError, required: boolean): string | undefined {
  const value = values[name];
  if (value === undefined) {
    if (required) throw fail(`--${name} is required`);
    return undefined;
  }
  const problem = problemWith({ name, kind: 'string', maxLength: name === 'client-id' ? MAX_CLIENT_ID : MAX_SUBJECT, description: '' }, value);
  if (problem) throw fail(`--${name} ${problem}`);
  return value;
}

// ---- users ----

interface UserArgs {
  subject: string;
  username?: string;
  password?: string;
  claims: Record<string, unknown>;
  roles: string[];
}

/** `name=value` (a string) or `name:=<JSON>` (any JSON value). */
export function parseClaim(raw: string, fail: (message: string) => Error): [string, unknown] {
  const at = raw.indexOf('=');
  if (at <= 0) throw fail(`--claim "${raw}": expected name=value or name:=<JSON>`);
  const isJson = raw[at - 1] === ':';
  const name = raw.slice(0, isJson ? at - 1 : at);
  const value = raw.slice(at + 1);
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(name)) throw fail(`--claim "${raw}": the claim name must be 1 to 64 letters, digits or _ . : -`);
  if (name === 'sub') throw fail('--claim sub: the subject is set with --subject');
  if (!isJson) return [name, value];
  try {
    return [name, JSON.parse(value)];
  } catch {
    throw fail(`--claim ${name}:= the value is not valid JSON`);
  }
}



const fromConfigNote = (what: string) => `Note: ${what} comes from the configuration; the next start applies the configuration again.`;

const usersAdd = runner<UserArgs>({
  async prepare(values, fail) {
    const subject = checked(values, 'subject', fail, true)!;
    const username = checked(values, 'username', fail, false);
    if (values.password !== undefined && values['password-stdin']) throw fail('give --password or --password-stdin, not both');
    let password = values.password;
    if (values['password-stdin']) password = await readStdin();
    if (password !== undefined && (password.length < 1 || password.length > 1024)) {
      throw fail(`--${values['password-stdin'] ? 'password-stdin' : 'password'}: the password must be 1 to 1024 characters`);
    }
    const claims = Object.fromEntries((values.claim ?? []).map((raw) => parseClaim(raw, fail)));
    const roles = values.role ?? [];
    const badRole = roles.find((role) => problemWith({ name: 'role', kind: 'string', maxLength: 64, description: '' }, role));
    if (badRole !== undefined) throw fail(`--role "${badRole}": a role is 1 to 64 characters without control characters`);
    return { subject, username, password, claims, roles: [...new Set(roles)] };
  },
  async execute({ directory, config, values, json }, args) {
    const existing = await directory.getUser(args.subject);
    if (existing && !values.replace) {
      throw new CommandError(`user "${args.subject}" already exists (source ${existing.source}); give --replace to overwrite it`);
    }
    const passwordHash = args.password !== undefined ? await hashPassword(args.password, config.passwordHashing) : (existing?.passwordHash ?? null);
    let outcome;
    try {
      outcome = await directory.saveUser({
        subject: args.subject,
        username: args.username ?? existing?.username ?? args.subject,
        passwordHash,
        claims: args.claims,
        roles: args.roles,
        disabled: false,
        source: 'cli',
      });
    } catch (error) {
      if (error instanceof UsernameTakenError) throw new CommandError(`--username: ${error.message}`);
      throw error;
    }
    const user = (await directory.getUser(args.subject))!;
    if (json) return printJson({ outcome, user: publicUser(user) });
    console.log(`${outcome === 'created' ? 'Added' : outcome === 'updated' ? 'Updated' : 'Unchanged:'} user ${user.subject} (username ${user.username}${user.passwordHash ? '' : ', no password'}).`);
    if (user.source === 'config') console.log(fromConfigNote(`user ${user.subject}`));
  },
});

const usersList = runner<void>({
  async prepare() {},
  async execute({ directory, json }) {
    const users = await directory.listUsers();
    if (json) return printJson({ users: users.map(publicUser) });
    if (users.length === 0) return console.log('No users.');
    console.log(
      formatTable([
        ['SUBJECT', 'USERNAME', 'NAME', 'ROLES', 'SOURCE', 'STATUS', 'PASSWORD'],
        ...users.map((user) => [
          user.subject,
          user.username,
          typeof user.claims.name === 'string' ? user.claims.name : '',
          user.roles.join(',') || '-',
          user.source,
          user.disabled ? 'disabled' : 'enabled',
          user.passwordHash ? 'yes' : 'no',
        ]),
      ]),
    );
  },
});

const usersRemove = runner<string>({
  async prepare(values, fail) {
    return checked(values, 'subject', fail, true)!;
  },
  async execute({ directory, config, json }, subject) {
    const existing = await directory.getUser(subject);
    if (!existing) throw new CommandError(`no user with subject ${JSON.stringify(subject)}`);
    // The user's sessions, tokens and grants end too, through a Gatehouse on this database as `gatehouse sessions
    // revoke` does it. It always looks in the session store: this configuration (perhaps only --db) need not say
    // whether the servers running on the database keep server-side sessions, and a store without any costs one query.
    const server = await commandServer({ ...config, serverSideSessions: { ...config.serverSideSessions, enabled: true } });
    try {
      if (!(await server.accounts.remove(subject))) throw new CommandError(`no user with subject ${JSON.stringify(subject)}`);
      let ended: AccessEnded;
      try {
        ended = await new UserOffboarding({ sessions: server.sessions, logger: server.logger }).endAccess(subject, 'cli');
      } catch (error) {
        throw new CommandError(`removed user ${subject}, but ending their sessions failed (${loggableMessage(error)}); gatehouse sessions revoke --subject ${subject} ends them`);
      }
      // Delivered now, with this configuration's issuer; the outbox is durable, so a failed attempt is retried by a running server.
      if (ended.notificationsQueued > 0) await server.backchannel.runOnce();
      const delivery = await deliveryOf(server, ended.sessions);
      const { sessions, grantsRevoked, notificationsQueued } = ended;
      if (json) return printJson({ removed: subject, sessions, grantsRevoked, notificationsQueued, delivery });
      console.log(`Removed user ${subject}.`);
      console.log(`Sessions ended: ${sessions.length}${sessions.length ? ` (${sessions.join(', ')})` : ''}; grants revoked: ${grantsRevoked}`);
      console.log(deliveryLine(notificationsQueued, delivery));
      if (existing.source === 'config') console.log(fromConfigNote(`user ${subject}`));
    } finally {
      await server.close();
    }
  },
});

const usersUnlock = runner<string>({
  async prepare(values, fail) {
    return checked(values, 'subject', fail, true)!;
  },
  async execute({ sequelize, directory, config, json }, subject) {
    const user = await directory.getUser(subject);
    if (!user) throw new CommandError(`no user with subject ${JSON.stringify(subject)}`);
    const throttle = new LoginThrottle(new LoginAttempts(sequelize, systemClock), config.login, { nameKey: await loginNameKey(sequelize), clock: systemClock });
    const before = lockoutJson(user, await throttle.status(user.username));
    const cleared = await throttle.unlock(user.username);
    if (json) return printJson({ subject, username: user.username, cleared, before });
    const lifted = [
      ...(before.untrustedClients.lockedUntil ? [`untrusted clients (locked until ${before.untrustedClients.lockedUntil})`] : []),
      ...before.addresses.filter((entry) => entry.lockedUntil).map((entry) => `${entry.address} (locked until ${entry.lockedUntil})`),
      ...(before.devices.invalidated ? [`${before.devices.invalidated} invalidated device${before.devices.invalidated > 1 ? 's' : ''}`] : []),
    ];
    console.log(`Unlocked user ${subject} (username ${user.username}): ${cleared} counter${cleared === 1 ? '' : 's'} cleared.`);
    console.log(lifted.length ? `Lifted: ${lifted.join('; ')}.` : 'Nothing was locked.');
  },
});

// ---- clients ----

/** Which option sets each client field, for error messages. */
const FLAG_OF: Record<string, string> = {
  client_id: '--client-id',
  client_secret: '--secret',
  client_name: '--name',
  redirect_uris: '--redirect-uri',
  post_logout_redirect_uris: '--post-logout-redirect-uri',
  grant_types: '--grant-type',
  scope: '--scope',
  token_endpoint_auth_method: '--auth-method',
  backchannel_logout_uri: '--backchannel-logout-uri',
  skipConsent: '--skip-consent',
  coordinateLifetimeWithUserSession: '--coordinate-with-session',
  require_pushed_authorization_requests: '--require-par',
  dpop_bound_access_tokens: '--dpop-bound',
};

function clientFromFlags(values: Values, fail: (message: string) => DirectoryUsageError): Record<string, unknown> {
  if (values.public && values.secret !== undefined) throw fail('give --secret or --public, not both');
  if (values.public && values['auth-method'] !== undefined && values['auth-method'] !== 'none') throw fail('--public means --auth-method none');
  const client: Record<string, unknown> = {
    client_id: checked(values, 'client-id', fail, true),
    client_secret: values.secret,
    client_name: values.name,
    redirect_uris: values['redirect-uri'],
    post_logout_redirect_uris: values['post-logout-redirect-uri'],
    grant_types: values['grant-type']?.flatMap((value) => value.split(',')),
    scope: values.scope,
    token_endpoint_auth_method: values.public ? 'none' : values['auth-method'],
    backchannel_logout_uri: values['backchannel-logout-uri'],
    skipConsent: values['skip-consent'],
    coordinateLifetimeWithUserSession: values['coordinate-with-session'],
    require_pushed_authorization_requests: values['require-par'],
    dpop_bound_access_tokens: values['dpop-bound'],
  };
  return Object.fromEntries(Object.entries(client).filter(([, value]) => value !== undefined));
}

/** A validated client from flags or --json; every problem names the option (or the JSON path) that caused it. */
function validClient(values: Values, fail: (message: string) => DirectoryUsageError): ClientConfig {
  const fromJson = values.json !== undefined;
  if (fromJson) {
    const mixed = CLIENT_FIELDS.find((name) => values[name] !== undefined);
    if (mixed) throw fail(`--json cannot be combined with --${mixed}: put every field in the JSON`);
  }
  let raw: unknown;
  if (fromJson) {
    try {
      raw = JSON.parse(values.json as string);
    } catch {
      throw fail('--json: not valid JSON');
    }
  } else {
    raw = clientFromFlags(values, fail);
  }
  const result = clientSchema.safeParse(raw);
  const name = (problem: string) => {
    if (fromJson) return `--json: ${problem}`;
    const match = /^([A-Za-z_]+)(?:\[(\d+)\])?(.*)$/.exec(problem);
    const flag = match && FLAG_OF[match[1]];
    if (!match || !flag) return problem;
    const list = raw as Record<string, unknown>;
    const given = match[2] !== undefined ? (list[match[1]] as unknown[])[Number(match[2])] : undefined;
    return `${flag}${given !== undefined ? ` ${JSON.stringify(given)}` : ''}${match[3]}`;
  };
  if (!result.success) throw fail(formatIssues(result.error.issues).map(name).join('\n  '));
  const problems = clientProblems(result.data, '');
  if (problems.length) throw fail(problems.map(name).join('\n  '));
  return result.data;
}

function clientJson(client: ClientRecord) {
  const { client_secret: secret, ...metadata } = toClientConfig(client);
  return {
    ...metadata,
    hasSecret: typeof secret === 'string',
    disabled: client.disabled,
    source: client.source,
    created: client.created.toISOString(),
    updated: client.updated.toISOString(),
  };
}

const clientsAdd = runner<ClientConfig>({
  async prepare(values, fail) {
    return validClient(values, fail);
  },
  async execute({ directory, values, config }, client) {
    // A setting the configured servers leave off would be dropped (PAR, DPoP) or make the client unusable (device grant).
    const problems = clientFeatureProblems(client, config, '').map((problem) => problem.replace(/^([a-z_]+)/, (field) => FLAG_OF[field] ?? field));
    // Arguments that contradict the configuration: bad usage, exit code 2 (as the configuration's own check would be).
    if (problems.length) throw new DirectoryUsageError('clients', `client "${client.client_id}" asks for what the configuration turns off:\n  ${problems.join('\n  ')}`);
    const existing = await directory.getClient(client.client_id);
    if (existing && !values.replace) {
      throw new CommandError(`client "${client.client_id}" already exists (source ${existing.source}); give --replace to overwrite it`);
    }
    const outcome = await directory.saveClient({ ...toClientInput(client), disabled: false, source: 'cli' });
    console.log(`${outcome === 'created' ? 'Added' : outcome === 'updated' ? 'Updated' : 'Unchanged:'} client ${client.client_id}.`);
    if (existing?.source === 'config') console.log(fromConfigNote(`client ${client.client_id}`));
  },
});

const clientsList = runner<void>({
  async prepare() {},
  async execute({ directory, json }) {
    const clients = await directory.listClients();
    if (json) return printJson({ clients: clients.map(clientJson) });
    if (clients.length === 0) return console.log('No clients.');
    console.log(
      formatTable([
        ['CLIENT ID', 'TYPE', 'GRANTS', 'REDIRECT URIS', 'SOURCE', 'STATUS'],
        ...clients.map((record) => {
          const client = toClientConfig(record);
          return [
            client.client_id,
            client.token_endpoint_auth_method === 'none' ? 'public' : 'confidential',
            (client.grant_types ?? ['authorization_code']).join(','),
            (client.redirect_uris ?? []).join(' ') || '-',
            record.source,
            record.disabled ? 'disabled' : 'enabled',
          ];
        }),
      ]),
    );
  },
});

const clientsRemove = runner<string>({
  async prepare(values, fail) {
    return checked(values, 'client-id', fail, true)!;
  },
  async execute({ directory, json }, clientId) {
    const existing = await directory.getClient(clientId);
    if (!existing || !(await directory.deleteClient(clientId))) throw new CommandError(`no client with id ${JSON.stringify(clientId)}`);
    if (json) return printJson({ removed: clientId });
    console.log(`Removed client ${clientId}.`);
    if (existing.source === 'config') console.log(fromConfigNote(`client ${clientId}`));
  },
});

// ---- keys ----

function refuseConfiguredKeys(config: GatehouseConfig): void {
  if (config.keys.jwks) throw new CommandError('keys.jwks is set in the configuration: rotate the keys there (put the new key first)');
}

const keysRotate = runner<void>({
  async prepare() {},
  async execute({ sequelize, config, json }) {
    refuseConfiguredKeys(config);
    const result = await rotateSigningKeys(sequelize, {
      activationDelaySeconds: config.keys.activationDelay,
      retireAfterSeconds: longestTokenLifetime(config.ttl, config.apis),
      clock: systemClock,
    });
    if (json) return printJson(result);
    const when = result.added[0]?.activateAt;
    console.log(`New signing keys: ${result.added.map((key) => `${key.kid} (${key.alg})`).join(', ')}.`);
    if (when && result.added[0].status === 'pending') {
      console.log(`Published now; they sign from ${when.toISOString()} (keys.activationDelay ${config.keys.activationDelay} s).`);
    }
    for (const key of result.retiring) console.log(`Signs until then, published until ${key.retireAfter!.toISOString()}: ${key.kid} (${key.alg})`);
    if (result.dropped.length) console.log(`Dropped (past their retire-after time): ${result.dropped.join(', ')}`);
    console.log(`Running servers follow within keys.refreshMs (${config.keys.refreshMs} ms): no restart.`);
  },
});

const keysList = runner<void>({
  async prepare() {},
  async execute({ sequelize, config, json }) {
    refuseConfiguredKeys(config);
    const keys = (await listSigningKeys(sequelize, systemClock)) ?? [];
    if (json) return printJson({ keys });
    if (keys.length === 0) return console.log('No signing keys yet: the first start generates them.');
    console.log(
      formatTable([
        ['KID', 'ALG', 'STATUS', 'SIGNS FROM', 'PUBLISHED UNTIL'],
        ...keys.map((key) => [key.kid, key.alg, key.status, key.activateAt?.toISOString() ?? '-', key.retireAfter?.toISOString() ?? '-']),
      ]),
    );
  },
});

const RUNNERS: Record<DirectoryCommand, Record<string, Runner<unknown>>> = {
  users: { add: usersAdd, list: usersList, remove: usersRemove, unlock: usersUnlock },
  clients: { add: clientsAdd, list: clientsList, remove: clientsRemove },
  keys: { rotate: keysRotate, list: keysList },
};
