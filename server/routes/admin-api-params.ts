/**
 * The admin API's parameters and JSON shapes, in one place: the routes validate with these specs, the OpenAPI document
 * is built from them, and the `gatehouse sessions` CLI checks its arguments and prints its JSON with them. So the
 * documentation, the validation and the CLI cannot drift apart.
 *
 * Validation collects one message per bad parameter (unknown names included) and throws them together as a 400.
 */
import type { ParsedUrlQuery } from 'node:querystring';
import type { OutboxRow } from '../../stores/sequelize/backchannel-outbox.js';
import { MAX_PAGE_SIZE, type ServerSideSession, type SessionQueryResult } from '../../stores/session-store.js';
import { HttpError } from '../http/errors.js';
import type { SessionApi } from '../sessions/session-service.js';
import type { LockoutStatus } from '../provider/login-throttle.js';

/** Column lengths of migrations 0002/0003: longer values cannot match anything, so they are refused. */
export const MAX_SESSION_ID = 128;
export const MAX_SUBJECT = 255;
export const MAX_CLIENT_ID = 255;
export const MAX_DISPLAY_NAME = 255;
const MAX_PAGE_TOKEN = 2048;
const MAX_LIST_ITEMS = 50;

export type ParamSpec =
  | { name: string; kind: 'string'; maxLength: number; description: string }
  | { name: string; kind: 'token'; description: string }
  | { name: string; kind: 'boolean'; default: boolean; description: string }
  | { name: string; kind: 'integer'; min: number; max: number; default: number; description: string }
  | { name: string; kind: 'list'; maxLength: number; description: string }
  | { name: string; kind: 'enum'; values: readonly string[]; description: string };

type ValueOf<S extends ParamSpec> = S extends { kind: 'boolean' }
  ? boolean
  : S extends { kind: 'integer' }
    ? number
    : S extends { kind: 'list' }
      ? string[]
      : S extends { kind: 'enum'; values: readonly (infer V)[] }
        ? V
        : string;
export type ParsedParams<S extends readonly ParamSpec[]> = { [P in S[number] as P['name']]?: ValueOf<P> };

const CONTROL = /[\u0000-\u001f\u007f]/;

const subjectParam = {
  name: 'subject',
  kind: 'string',
  maxLength: MAX_SUBJECT,
  description: 'Exact subject (account id).',
} as const;
const sessionIdParam = {
  name: 'sessionId',
  kind: 'string',
  maxLength: MAX_SESSION_ID,
  description: 'Exact session id.',
} as const;
const clientIdParam = {
  name: 'clientId',
  kind: 'string',
  maxLength: MAX_CLIENT_ID,
  description: 'Only sessions that signed in to this client.',
} as const;

/** GET /admin/api/v1/sessions */
export const SESSION_QUERY_PARAMS = [
  subjectParam,
  sessionIdParam,
  {
    name: 'displayName',
    kind: 'string',
    maxLength: MAX_DISPLAY_NAME,
    description: 'Case-insensitive prefix of the display name.',
  },
  clientIdParam,
  {
    name: 'pageSize',
    kind: 'integer',
    min: 1,
    max: MAX_PAGE_SIZE,
    default: 25,
    description: `Sessions per page, 1 to ${MAX_PAGE_SIZE}.`,
  },
  {
    name: 'page',
    kind: 'token',
    description:
      'Opaque token from `paging.next` or `paging.previous` of an earlier response; absent = the first page.',
  },
  { name: 'count', kind: 'boolean', default: true, description: 'Include `totalCount` (costs one count query).' },
] as const satisfies readonly ParamSpec[];

/** DELETE /admin/api/v1/sessions/{sessionId} and /admin/api/v1/subjects/{subject}/sessions */
export const REMOVE_PARAMS = [
  {
    name: 'clientIds',
    kind: 'list',
    maxLength: MAX_CLIENT_ID,
    description:
      'Comma-separated client ids: only their tokens are revoked and only they are notified. Absent = every client.',
  },
  {
    name: 'revokeTokens',
    kind: 'boolean',
    default: true,
    description: 'Revoke the access tokens, refresh tokens and codes of the affected clients.',
  },
  {
    name: 'revokeConsents',
    kind: 'boolean',
    default: true,
    description: 'Also forget the consents (grants) of the affected clients.',
  },
  {
    name: 'sendBackchannelLogout',
    kind: 'boolean',
    default: true,
    description: 'Send back-channel logout (reason `terminated`) to the affected clients.',
  },
  {
    name: 'removeSession',
    kind: 'boolean',
    default: true,
    description: 'Delete the session record, so the browser must sign in again.',
  },
] as const satisfies readonly ParamSpec[];

/** GET /admin/api/v1/backchannel */
export const BACKCHANNEL_PARAMS = [
  {
    name: 'status',
    kind: 'enum',
    values: ['pending', 'delivered', 'failed'],
    description: 'Only notifications in this state.',
  },
  sessionIdParam,
  { ...clientIdParam, description: 'Only notifications to this client.' },
  {
    name: 'limit',
    kind: 'integer',
    min: 1,
    max: 1000,
    default: 100,
    description: 'At most this many notifications, newest first.',
  },
] as const satisfies readonly ParamSpec[];

/** Path parameters. */
export const SESSION_ID_PATH = { ...sessionIdParam, description: 'The session id.' } as const;
export const SUBJECT_PATH = { ...subjectParam, description: 'The subject (account id) whose sessions end.' } as const;

/** What is wrong with one raw value, or undefined when it is fine. */
export function problemWith(spec: ParamSpec, raw: string): string | undefined {
  switch (spec.kind) {
    case 'string':
      return stringProblem(raw, spec.maxLength);
    case 'token':
      return raw.length >= 1 && raw.length <= MAX_PAGE_TOKEN && /^[\x21-\x7e]+$/.test(raw)
        ? undefined
        : 'must be a paging token from an earlier response';
    case 'boolean':
      return raw === 'true' || raw === 'false' ? undefined : 'must be true or false';
    case 'integer': {
      const value = /^[0-9]{1,9}$/.test(raw) ? Number(raw) : NaN;
      return value >= spec.min && value <= spec.max ? undefined : `must be an integer from ${spec.min} to ${spec.max}`;
    }
    case 'list': {
      const items = raw.split(',');
      if (items.length > MAX_LIST_ITEMS) return `must list at most ${MAX_LIST_ITEMS} values`;
      const bad = items.map((item) => stringProblem(item, spec.maxLength)).find(Boolean);
      return bad ? `must be a comma-separated list of values that each ${bad.replace(/^must /, '')}` : undefined;
    }
    case 'enum':
      return spec.values.includes(raw) ? undefined : `must be one of ${spec.values.join(', ')}`;
  }
}

function stringProblem(raw: string, maxLength: number): string | undefined {
  if (raw.length < 1 || raw.length > maxLength) return `must be 1 to ${maxLength} characters`;
  if (CONTROL.test(raw)) return 'must not contain control characters';
  return undefined;
}

/** The typed value of a raw value that passed `problemWith`. */
function convert(spec: ParamSpec, raw: string): string | number | boolean | string[] {
  if (spec.kind === 'boolean') return raw === 'true';
  if (spec.kind === 'integer') return Number(raw);
  if (spec.kind === 'list') return raw.split(',');
  return raw;
}

/** Validates a query string against specs; throws one 400 naming every bad parameter. */
export function parseQuery<const S extends readonly ParamSpec[]>(
  query: ParsedUrlQuery,
  specs: S,
  pathParams: Record<string, string> = {},
): ParsedParams<S> {
  const details: Record<string, string> = {};
  const parsed: Record<string, unknown> = {};
  const byName = new Map<string, ParamSpec>(specs.map((spec) => [spec.name, spec]));
  for (const [name, value] of Object.entries(query)) {
    const spec = byName.get(name);
    if (!spec) details[clip(name)] = 'unknown parameter';
    else if (Array.isArray(value)) details[name] = 'must be given at most once';
    else if (value !== undefined) {
      const problem = problemWith(spec, value);
      if (problem) details[name] = problem;
      else parsed[name] = convert(spec, value);
    }
  }
  for (const [name, problem] of Object.entries(pathParams)) details[name] = problem;
  if (Object.keys(details).length) throw invalidRequest(details);
  return parsed as ParsedParams<S>;
}

/** Checks a path parameter; returns `{ name: problem }` (empty when fine) for `parseQuery`'s `pathParams`. */
export function checkPathParam(spec: ParamSpec, raw: string | undefined): Record<string, string> {
  const problem = problemWith(spec, raw ?? '');
  return problem ? { [spec.name]: problem } : {};
}

export function invalidRequest(details: Record<string, string>): HttpError {
  const names = Object.keys(details);
  const message = `invalid ${names.length === 1 ? 'parameter' : 'parameters'}: ${names.map((name) => `${name} ${details[name]}`).join('; ')}`;
  return new HttpError(400, 'invalid_request', message, { details });
}

/** A parameter name as echoed back: never more than 64 characters of whatever the caller sent. */
export function clip(name: string): string {
  const printable = name.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > 64 ? `${printable.slice(0, 61)}...` : printable;
}

// --- JSON shapes -------------------------------------------------------------------------------------------------

export interface SessionJson {
  sessionId: string;
  subject: string | null;
  displayName: string | null;
  clients: { clientId: string; sid: string }[];
  created: string;
  lastActivity: string;
  expires: string | null;
  authTime: string | null;
  login: { ip: string | null; userAgent: string | null };
  last: { ip: string | null; userAgent: string | null };
  /** The APIs its clients hold tokens for, and how those tokens end (admin API, when APIs are configured). */
  apis?: SessionApiJson[];
}

export interface SessionApiJson {
  clientId: string;
  api: string;
  name: string;
  tokenFormat: 'jwt' | 'opaque';
  /** Access-token lifetime in seconds. */
  accessTokenTtl: number;
  /** `revoked-with-session`, `revoked-on-revocation` (offline_access ones outlive logout and expiry: not coordinated) or `until-expiry` (JWT). */
  tokensEnd: string;
}

/** A session as the API shows it: never the store key, never the provider payload. */
export function sessionJson(session: ServerSideSession, apis?: SessionApi[]): SessionJson {
  return {
    sessionId: session.sessionId,
    subject: session.subjectId,
    displayName: session.displayName,
    clients: session.clients.map(({ clientId, sid }) => ({ clientId, sid })),
    created: session.created.toISOString(),
    lastActivity: session.renewed.toISOString(),
    expires: session.expires?.toISOString() ?? null,
    authTime: session.authTime?.toISOString() ?? null,
    login: { ip: session.loginIp, userAgent: session.loginUserAgent },
    last: { ip: session.lastIp, userAgent: session.lastUserAgent },
    ...(apis
      ? {
          apis: apis.map((api) => ({
            clientId: api.clientId,
            api: api.identifier,
            name: api.name,
            tokenFormat: api.tokenFormat,
            accessTokenTtl: api.ttl,
            tokensEnd: api.lifetime,
          })),
        }
      : {}),
  };
}

export interface SessionListJson {
  sessions: SessionJson[];
  paging: { hasNext: boolean; hasPrevious: boolean; next?: string; previous?: string };
  totalCount?: number;
}

export function sessionListJson(result: SessionQueryResult, apis?: Map<string, SessionApi[]>): SessionListJson {
  return {
    sessions: result.results.map((session) => sessionJson(session, apis?.get(session.sessionId))),
    paging: {
      hasNext: result.hasNext,
      hasPrevious: result.hasPrevious,
      ...(result.nextToken ? { next: result.nextToken } : {}),
      ...(result.previousToken ? { previous: result.previousToken } : {}),
    },
    ...(result.totalCount === undefined ? {} : { totalCount: result.totalCount }),
  };
}

export function notificationJson(row: OutboxRow) {
  return {
    id: row.id,
    clientId: row.clientId,
    subject: row.subjectId,
    sessionId: row.sessionId,
    sid: row.sid,
    reason: row.reason,
    status: row.status,
    attempts: row.attempts,
    nextAttemptAt: row.status === 'pending' ? row.nextAttemptAt.toISOString() : null,
    lastError: row.lastError,
    created: row.createdAt.toISOString(),
    delivered: row.deliveredAt?.toISOString() ?? null,
  };
}

// ---- users (PUT/GET/DELETE /admin/api/v1/users/{subject}) ----

export const MAX_USERNAME = 255;
export const MAX_PASSWORD = 1024;
export const MAX_ROLE = 64;
export const MAX_ROLES = 50;
/** A user's claims, serialized, may not exceed this (the column holds far more; a claim set this big is a mistake). */
export const MAX_CLAIMS_JSON = 16 * 1024;

export const USER_PATH = { ...subjectParam, description: 'The subject (the `sub` claim) of the user.' } as const;

/** A valid PUT body. Absent optional fields keep the user's current values (or the defaults, for a new user). */
export interface UserBody {
  username?: string;
  claims: Record<string, unknown>;
  password?: string;
  roles?: string[];
  disabled?: boolean;
}

const USER_FIELDS = ['username', 'claims', 'password', 'roles', 'disabled'] as const;

/** Validates a PUT body; throws one 400 naming every bad field (`claims.sub`, `roles[2]`, ...). Never echoes values. */
export function parseUserBody(body: unknown): UserBody {
  const details: Record<string, string> = {};
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw invalidRequest({ body: 'must be a JSON object' });
  const input = body as Record<string, unknown>;
  for (const name of Object.keys(input))
    if (!(USER_FIELDS as readonly string[]).includes(name)) details[clip(name)] = 'unknown field';
  const { username, claims, password, roles, disabled } = input;
  if (username !== undefined) {
    const problem = typeof username === 'string' ? stringProblem(username, MAX_USERNAME) : 'must be a string';
    if (problem) details.username = problem;
  }
  if (claims === undefined) details.claims = 'is required (an object of claims, e.g. {"name": "Alice"})';
  else if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) details.claims = 'must be an object';
  else {
    if ('sub' in claims) details['claims.sub'] = 'is the subject in the path; leave it out';
    for (const name of Object.keys(claims))
      if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(name))
        details[`claims.${clip(name)}`] = 'claim names are 1 to 64 letters, digits or _ . : -';
    if (JSON.stringify(claims).length > MAX_CLAIMS_JSON)
      details.claims = `must be at most ${MAX_CLAIMS_JSON} characters as JSON`;
  }
  if (
    password !== undefined &&
    (typeof password !== 'string' || password.length < 1 || password.length > MAX_PASSWORD)
  ) {
    details.password = `must be a string of 1 to ${MAX_PASSWORD} characters`;
  }
  if (roles !== undefined) {
    if (!Array.isArray(roles)) details.roles = 'must be an array of strings';
    else if (roles.length > MAX_ROLES) details.roles = `must list at most ${MAX_ROLES} roles`;
    else
      roles.forEach((role, index) => {
        const problem = typeof role === 'string' ? stringProblem(role, MAX_ROLE) : 'must be a string';
        if (problem) details[`roles[${index}]`] = problem;
      });
  }
  if (disabled !== undefined && typeof disabled !== 'boolean') details.disabled = 'must be true or false';
  if (Object.keys(details).length) throw invalidRequest(details);
  return input as unknown as UserBody;
}

export { publicUser as userJson, type PublicUser as UserJson } from '../provider/accounts.js';

/** A user's sign-in lockout state as the admin API and `gatehouse users unlock --json` show it. */
export function lockoutJson(user: { subject: string; username: string }, status: LockoutStatus) {
  const iso = (date: Date | null) => (date ? date.toISOString() : null);
  return {
    subject: user.subject,
    username: user.username,
    locked: status.untrustedLockedUntil !== null || status.addresses.some((entry) => entry.lockedUntil !== null),
    untrustedClients: {
      lockedUntil: iso(status.untrustedLockedUntil),
      failures: status.untrustedFailures,
      level: status.level,
    },
    addresses: status.addresses.map((entry) => ({
      address: entry.address,
      failures: entry.failures,
      lockedUntil: iso(entry.lockedUntil),
    })),
    devices: status.devices,
  };
}
