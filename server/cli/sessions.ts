/**
 * `gatehouse sessions list|revoke`: the session management service from the command line, on the given database,
 * while servers may be running on it. It builds a Gatehouse without listening (no expiry sweeper), uses
 * `server.sessions`, and closes. `--db URL` alone is enough: the session tables exist whatever the servers'
 * `serverSideSessions.enabled` says, so the command always looks in the session store (the built-in one, unless a
 * configuration names another).
 *
 * A revocation queues its back-channel notifications in the durable outbox. When the issuer is known (a config file,
 * --issuer or GATEHOUSE_ISSUER) the command delivers them right away; otherwise a logout token signed here would carry
 * a wrong `iss`, so it leaves them to the servers running on the database, which deliver the outbox anyway.
 */
import { environmentOptions } from '../../config/environment.js';
import type { GatehouseConfig } from '../../config/schema.js';
import { MAX_PAGE_SIZE } from '../../stores/session-store.js';
import type { GatehouseServer } from '../create-server.js';
import {
  MAX_CLIENT_ID,
  MAX_DISPLAY_NAME,
  MAX_SESSION_ID,
  MAX_SUBJECT,
  problemWith,
  sessionListJson,
  type ParamSpec,
  type SessionJson,
} from '../routes/admin-api-params.js';
import { commandGroup, type Subcommand, type ValuesOf } from './command-group.js';
import { commandServer } from './database.js';
import { CommandError } from './errors.js';
import { deliveryLine, deliveryOf } from './logout-delivery.js';
import { formatTable, printJson } from './output.js';

export const SESSIONS_USAGE = `Usage:
  gatehouse sessions list [--subject S] [--session-id ID] [--display-name PREFIX] [--client-id C]
                          [--page-size N] [--page TOKEN] [--json]
  gatehouse sessions revoke (--session-id ID | --subject S) [--client-ids a,b]
                          [--no-backchannel] [--keep-consents] [--keep-tokens] [--issuer URL] [--json]

Both take --db URL (env GATEHOUSE_DATABASE__URL), which is enough, or --config FILE (env GATEHOUSE_CONFIG) for a custom
session store (a flag wins over the environment); --issuer URL (env GATEHOUSE_ISSUER, or the config file's) lets
revoke deliver back-channel logout at once, otherwise the servers on the database deliver it.

  list     sessions, newest first (--page-size 1..${MAX_PAGE_SIZE}, default 25; --page continues a listing)
  revoke   end the session (or every session of the subject): revoke tokens and consents, send back-channel
           logout, delete the record. --client-ids limits tokens and notifications to those clients;
           --no-backchannel sends none; --keep-consents / --keep-tokens leave those alone.`;

const OPTIONS = {
  config: { type: 'string' },
  db: { type: 'string' },
  issuer: { type: 'string' },
  subject: { type: 'string' },
  'session-id': { type: 'string' },
  'display-name': { type: 'string' },
  'client-id': { type: 'string' },
  'page-size': { type: 'string' },
  page: { type: 'string' },
  json: { type: 'boolean' },
  'client-ids': { type: 'string' },
  'no-backchannel': { type: 'boolean' },
  'keep-consents': { type: 'boolean' },
  'keep-tokens': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ValuesOf<typeof OPTIONS>;
type OptionName = keyof typeof OPTIONS;

/** What both subcommands work on: a Gatehouse on the database, and what the command knows of the servers' setup. */
interface SessionsContext {
  server: GatehouseServer;
  config: GatehouseConfig;
  values: Values;
  /** A configuration file was given (--config or GATEHOUSE_CONFIG). */
  configured: boolean;
  /** The servers' issuer is known, so logout tokens signed here carry the right `iss`. */
  issuerKnown: boolean;
}

const COMMON: OptionName[] = ['config', 'db', 'json', 'help'];
const REVOKE_ONLY: OptionName[] = ['issuer', 'client-ids', 'no-backchannel', 'keep-consents', 'keep-tokens'];

/** The argument checks of the admin API, by option name. */
const CHECKS: Partial<Record<string, ParamSpec>> = {
  subject: { name: 'subject', kind: 'string', maxLength: MAX_SUBJECT, description: '' },
  'session-id': { name: 'session-id', kind: 'string', maxLength: MAX_SESSION_ID, description: '' },
  'display-name': { name: 'display-name', kind: 'string', maxLength: MAX_DISPLAY_NAME, description: '' },
  'client-id': { name: 'client-id', kind: 'string', maxLength: MAX_CLIENT_ID, description: '' },
  'client-ids': { name: 'client-ids', kind: 'list', maxLength: MAX_CLIENT_ID, description: '' },
  'page-size': { name: 'page-size', kind: 'integer', min: 1, max: MAX_PAGE_SIZE, default: 25, description: '' },
  page: { name: 'page', kind: 'token', description: '' },
};

/**
 * Why a listing may be empty although people signed in: sessions are recorded only where the servers keep them
 * server-side (`serverSideSessions.enabled`, off by default). With a configuration the command knows the setting;
 * with --db alone it does not.
 */
function emptyListNote(config: GatehouseConfig, configured: boolean): string | undefined {
  const enabledBy = environmentOptions().find(
    (option) => option.path.join('.') === 'serverSideSessions.enabled',
  )!.names;
  const known = configured || enabledBy.some((name) => process.env[name] || process.env[`${name}_FILE`]);
  if (known && !config.serverSideSessions.enabled) {
    return 'Server-side sessions are off in this configuration (serverSideSessions.enabled: false): sign-ins are not recorded.';
  }
  if (!known) {
    return 'Only server-side sessions are listed: servers record them with serverSideSessions.enabled: true (off by default).';
  }
  return undefined;
}

const list: Subcommand<Values, SessionsContext> = {
  options: [...COMMON, 'subject', 'session-id', 'display-name', 'client-id', 'page-size', 'page'],
  async run({ server, config, values, configured }) {
    const result = await server.sessions.querySessions({
      subjectId: values.subject,
      sessionId: values['session-id'],
      displayNamePrefix: values['display-name'],
      clientId: values['client-id'],
      pageSize: values['page-size'] === undefined ? undefined : Number(values['page-size']),
      token: values.page,
      countTotal: true,
    });
    const body = sessionListJson(result);
    if (values.json) {
      printJson(body);
      return;
    }
    console.log(table(body.sessions));
    const emptyNote = emptyListNote(config, configured);
    if (body.sessions.length === 0 && emptyNote) console.log(emptyNote);
    console.log(`\n${body.sessions.length} shown, ${body.totalCount} in total.`);
    if (body.paging.next) console.log(`Next page:     --page ${body.paging.next}`);
    if (body.paging.previous) console.log(`Previous page: --page ${body.paging.previous}`);
  },
};

const revoke: Subcommand<Values, SessionsContext> = {
  options: [...COMMON, 'subject', 'session-id', ...REVOKE_ONLY],
  prepare(values, fail) {
    const given = [values['session-id'] && '--session-id', values.subject && '--subject'].filter(Boolean);
    if (given.length !== 1)
      throw fail(`sessions revoke needs exactly one of --session-id or --subject${given.length ? ', not both' : ''}`);
  },
  async run({ server, values, issuerKnown }) {
    const sessionId = values['session-id'];
    const result = await server.sessions.removeSessions({
      sessionId,
      subjectId: values.subject,
      clientIds: values['client-ids']?.split(','),
      revokeTokens: !values['keep-tokens'],
      revokeConsents: !values['keep-consents'],
      sendBackchannelLogout: !values['no-backchannel'],
      actor: 'cli',
    });
    if (sessionId && result.sessions.length === 0)
      throw new CommandError(`no session with id ${JSON.stringify(sessionId)}`);
    if (result.notificationsQueued > 0 && issuerKnown) await server.backchannel.runOnce();
    const delivery = await deliveryOf(server, result.sessions);
    if (values.json) {
      printJson({ ...result, delivery });
      return;
    }
    const who = sessionId
      ? `session ${sessionId}`
      : `${values.subject}: ${result.sessions.length} session(s)${result.sessions.length ? ` (${result.sessions.join(', ')})` : ''}`;
    console.log(`Revoked ${who}.`);
    console.log(`Grants revoked: ${result.grantsRevoked}`);
    console.log(deliveryLine(result.notificationsQueued, delivery, issuerKnown ? 'to be retried' : 'to be delivered'));
  },
};

function table(sessions: SessionJson[]): string {
  if (sessions.length === 0) return 'No sessions.';
  const time = (iso: string | null) => (iso ? `${iso.slice(0, 19).replace('T', ' ')}Z` : 'never');
  return formatTable([
    ['SUBJECT', 'SESSION ID', 'DISPLAY NAME', 'CLIENTS', 'CREATED', 'LAST ACTIVITY', 'EXPIRES', 'LAST IP'],
    ...sessions.map((s) => [
      s.subject ?? '',
      s.sessionId,
      s.displayName ?? '',
      s.clients.map((c) => c.clientId).join(',') || '-',
      time(s.created),
      time(s.lastActivity),
      time(s.expires),
      s.last.ip ?? '',
    ]),
  ]);
}

export const sessions = commandGroup({
  name: 'sessions',
  usage: SESSIONS_USAGE,
  options: OPTIONS,
  subcommands: { list, revoke },
  listed: 'list or revoke',
  checkValue(name, value) {
    const spec = CHECKS[name];
    return spec && typeof value === 'string' ? problemWith(spec, value) : undefined;
  },
  async open(config, values) {
    const configured = Boolean(values.config ?? process.env.GATEHOUSE_CONFIG);
    const issuerKnown = configured || Boolean(values.issuer ?? process.env.GATEHOUSE_ISSUER);
    const server = await commandServer(config);
    return { server, config, values, configured, issuerKnown, close: () => server.close() };
  },
});
