/**
 * `gatehouse users add|list|remove|unlock`: the user directory and sign-in lockouts, in the configured database.
 * `users remove` also ends the user's sessions, tokens and grants, through a Gatehouse built on the same database (as
 * `gatehouse sessions revoke` does).
 */
import { systemClock } from '../../stores/clock.js';
import { LoginAttempts } from '../../stores/sequelize/login-attempts.js';
import { UsernameTakenError, type SaveOutcome } from '../../stores/sequelize/directory.js';
import { loggableMessage } from '../http/errors.js';
import { publicUser } from '../provider/accounts.js';
import { LoginThrottle, loginNameKey } from '../provider/login-throttle.js';
import { hashPassword } from '../provider/passwords.js';
import { UserOffboarding, type AccessEnded } from '../provider/user-offboarding.js';
import { lockoutJson, problemWith } from '../routes/admin-api-params.js';
import { commandServer } from './database.js';
import {
  checkedId,
  COMMON,
  COMMON_HELP,
  directoryGroup,
  fromConfigNote,
  savedVerb,
  type DirectorySubcommand,
} from './directory-group.js';
import { CommandError } from './errors.js';
import { deliveryLine, deliveryOf } from './logout-delivery.js';
import { formatTable, printJson } from './output.js';
import { readStdin } from './stdin.js';

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
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(name))
    throw fail(`--claim "${raw}": the claim name must be 1 to 64 letters, digits or _ . : -`);
  if (name === 'sub') throw fail('--claim sub: the subject is set with --subject');
  if (!isJson) return [name, value];
  try {
    return [name, JSON.parse(value)];
  } catch {
    throw fail(`--claim ${name}:= the value is not valid JSON`);
  }
}

const add: DirectorySubcommand<UserArgs> = {
  options: [...COMMON, 'subject', 'username', 'password', 'password-stdin', 'claim', 'role', 'replace', 'json'],
  async prepare(values, fail) {
    const subject = checkedId(values, 'subject', fail, true);
    const username = checkedId(values, 'username', fail, false);
    if (values.password !== undefined && values['password-stdin'])
      throw fail('give --password or --password-stdin, not both');
    let password = values.password;
    if (values['password-stdin']) password = await readStdin();
    if (password !== undefined && (password.length < 1 || password.length > 1024)) {
      throw fail(
        `--${values['password-stdin'] ? 'password-stdin' : 'password'}: the password must be 1 to 1024 characters`,
      );
    }
    const claims = Object.fromEntries((values.claim ?? []).map((raw) => parseClaim(raw, fail)));
    const roles = values.role ?? [];
    const badRole = roles.find((role) =>
      problemWith({ name: 'role', kind: 'string', maxLength: 64, description: '' }, role),
    );
    if (badRole !== undefined)
      throw fail(`--role "${badRole}": a role is 1 to 64 characters without control characters`);
    return { subject, username, password, claims, roles: [...new Set(roles)] };
  },
  async run({ directory, config, values, json }, args) {
    const existing = await directory.getUser(args.subject);
    if (existing && !values.replace) {
      throw new CommandError(
        `user "${args.subject}" already exists (source ${existing.source}); give --replace to overwrite it`,
      );
    }
    const passwordHash =
      args.password !== undefined
        ? await hashPassword(args.password, config.passwordHashing)
        : (existing?.passwordHash ?? null);
    let outcome: SaveOutcome;
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
    console.log(
      `${savedVerb(outcome)} user ${user.subject} (username ${user.username}${user.passwordHash ? '' : ', no password'}).`,
    );
    if (user.source === 'config') console.log(fromConfigNote(`user ${user.subject}`));
  },
};

const list: DirectorySubcommand = {
  options: [...COMMON, 'json'],
  async run({ directory, json }) {
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
};

const remove: DirectorySubcommand<string> = {
  options: [...COMMON, 'subject', 'json'],
  async prepare(values, fail) {
    return checkedId(values, 'subject', fail, true);
  },
  async run({ directory, config, json }, subject) {
    const existing = await directory.getUser(subject);
    if (!existing) throw new CommandError(`no user with subject ${JSON.stringify(subject)}`);
    // The user's sessions, tokens and grants end too, through a Gatehouse on this database as `gatehouse sessions
    // revoke` does it. It always looks in the session store: this configuration (perhaps only --db) need not say
    // whether the servers running on the database keep server-side sessions, and a store without any costs one query.
    const server = await commandServer({
      ...config,
      serverSideSessions: { ...config.serverSideSessions, enabled: true },
    });
    try {
      if (!(await server.accounts.remove(subject)))
        throw new CommandError(`no user with subject ${JSON.stringify(subject)}`);
      let ended: AccessEnded;
      try {
        ended = await new UserOffboarding({ sessions: server.sessions, logger: server.logger }).endAccess(
          subject,
          'cli',
        );
      } catch (error) {
        throw new CommandError(
          `removed user ${subject}, but ending their sessions failed (${loggableMessage(error)}); gatehouse sessions revoke --subject ${subject} ends them`,
        );
      }
      // Delivered now, with this configuration's issuer; the outbox is durable, so a failed attempt is retried by a running server.
      if (ended.notificationsQueued > 0) await server.backchannel.runOnce();
      const delivery = await deliveryOf(server, ended.sessions);
      const { sessions, grantsRevoked, notificationsQueued } = ended;
      if (json) return printJson({ removed: subject, sessions, grantsRevoked, notificationsQueued, delivery });
      console.log(`Removed user ${subject}.`);
      console.log(
        `Sessions ended: ${sessions.length}${sessions.length ? ` (${sessions.join(', ')})` : ''}; grants revoked: ${grantsRevoked}`,
      );
      console.log(deliveryLine(notificationsQueued, delivery));
      if (existing.source === 'config') console.log(fromConfigNote(`user ${subject}`));
    } finally {
      await server.close();
    }
  },
};

const unlock: DirectorySubcommand<string> = {
  options: [...COMMON, 'subject', 'json'],
  async prepare(values, fail) {
    return checkedId(values, 'subject', fail, true);
  },
  async run({ sequelize, directory, config, json }, subject) {
    const user = await directory.getUser(subject);
    if (!user) throw new CommandError(`no user with subject ${JSON.stringify(subject)}`);
    const throttle = new LoginThrottle(new LoginAttempts(sequelize, systemClock), config.login, {
      nameKey: await loginNameKey(sequelize),
      clock: systemClock,
    });
    const before = lockoutJson(user, await throttle.status(user.username));
    const cleared = await throttle.unlock(user.username);
    if (json) return printJson({ subject, username: user.username, cleared, before });
    const lifted = [
      ...(before.untrustedClients.lockedUntil
        ? [`untrusted clients (locked until ${before.untrustedClients.lockedUntil})`]
        : []),
      ...before.addresses
        .filter((entry) => entry.lockedUntil)
        .map((entry) => `${entry.address} (locked until ${entry.lockedUntil})`),
      ...(before.devices.invalidated
        ? [`${before.devices.invalidated} invalidated device${before.devices.invalidated > 1 ? 's' : ''}`]
        : []),
    ];
    console.log(
      `Unlocked user ${subject} (username ${user.username}): ${cleared} counter${cleared === 1 ? '' : 's'} cleared.`,
    );
    console.log(lifted.length ? `Lifted: ${lifted.join('; ')}.` : 'Nothing was locked.');
  },
};

export const users = directoryGroup({ name: 'users', usage: USERS_USAGE, subcommands: { add, list, remove, unlock } });
