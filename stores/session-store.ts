/**
 * THE server-side session store contract.
 *
 * Gatehouse keeps every interactive login session (oidc-provider's Session model) in a store that implements this
 * interface when `serverSideSessions.enabled` is true. Built-in implementations: `SequelizeSessionStore`
 * (stores/sequelize/session-store.ts) and `MemorySessionStore` (stores/memory/session-store.ts). A custom class is
 * checked at start-up against `SESSION_STORE_METHODS` and should pass the exported conformance suite
 * (`gatehouse-idp/conformance`).
 *
 * Rules every implementation keeps:
 * - Expected misses return `null` (or an empty list); they never throw.
 * - Failures are never swallowed: they reject with a store error (keeping the cause): an Error whose `name` is
 *   `'SessionStoreError'` and whose `code` is a `SessionStoreErrorCode`. `SessionStoreError` below is one; Gatehouse
 *   recognises any such error by name and code (`isSessionStoreError`), so a store that imports the class from another
 *   copy of this package, or throws an error class of its own, is understood the same way.
 * - `key` is already a hash of the cookie value (see `hashSessionKey`); stores never see the raw cookie.
 * - `sessionId` is unique: two records never share one.
 * - Time comes from `context.clock`, never from `Date.now()` directly.
 */
import { createHash } from 'node:crypto';
import type { Sequelize } from 'sequelize';

/** One login session, as stored. Dates are `Date` objects; `expires === null` means it never expires. */
export interface ServerSideSession {
  /** Hash of the provider's session id (the `_session` cookie value, which rotates). Unique. */
  key: string;
  /** The provider's stable session uid. Unique; never changes for the life of the session. */
  sessionId: string;
  /** The account id, or null for an anonymous session (no login yet). */
  subjectId: string | null;
  /** Copied from the configured claim (`serverSideSessions.displayNameClaim`); null when not configured. */
  displayName: string | null;
  /** The relying parties this session signed in to, each with the `sid` it was given. */
  clients: SessionClient[];
  /** When the session was first stored. */
  created: Date;
  /** Last activity that was recorded. */
  renewed: Date;
  /** When the session ends unless renewed; null = no expiry. */
  expires: Date | null;
  /** When the user last authenticated (the provider's loginTs). */
  authTime: Date | null;
  loginIp: string | null;
  loginUserAgent: string | null;
  lastIp: string | null;
  lastUserAgent: string | null;
  /** The provider's Session payload, stored as-is (JSON). */
  data: Record<string, unknown>;
}

export interface SessionClient {
  clientId: string;
  sid: string;
}

/**
 * Exact-match filter; at least one of the two is required (an empty filter is rejected with `invalid_filter`). An empty
 * string counts as not given: `{ subjectId: '' }` is an empty filter too.
 */
export interface SessionFilter {
  subjectId?: string;
  sessionId?: string;
}

export interface SessionQuery {
  subjectId?: string;
  sessionId?: string;
  /** Case-insensitive prefix of the display name. */
  displayNamePrefix?: string;
  /** Only sessions that include this client. */
  clientId?: string;
  /** Page size; default `DEFAULT_PAGE_SIZE`, at most `MAX_PAGE_SIZE`. */
  pageSize?: number;
  /** Opaque token from a previous result's `nextToken`/`previousToken`. Malformed or foreign = first page. */
  token?: string;
  /** Ask for `totalCount` (costs a count query). */
  countTotal?: boolean;
}

export interface SessionQueryResult {
  /**
   * Always in forward order, whichever direction was paged: `created` descending (newest first), and sessions created
   * at the same instant by `sessionId` descending (plain code-unit comparison, as JavaScript's `<` compares strings).
   */
  results: ServerSideSession[];
  hasPrevious: boolean;
  hasNext: boolean;
  /** Present when `hasNext`. */
  nextToken?: string;
  /** Present when `hasPrevious`. */
  previousToken?: string;
  /** Present when `countTotal` was asked for. */
  totalCount?: number;
}

export const DEFAULT_PAGE_SIZE = 25;
export const MAX_PAGE_SIZE = 200;

/** What a store is given when it is built. */
export interface SessionStoreContext {
  /** The only source of time a store may use. */
  clock: Clock;
  logger: StoreLogger;
  /** The Gatehouse database connection, for stores that want it (already migrated). */
  sequelize?: Sequelize;
  /**
   * `serverSideSessions.storeOptions` from the configuration (e.g. a connection URL), as given; `{}` when there are none.
   * May hold secrets: never log it.
   */
  options?: Record<string, unknown>;
}

export interface Clock {
  now(): Date;
}

export interface StoreLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface SessionStore {
  /** The record with this key, or null. Expired records are still returned: expiry is the caller's decision. */
  get(key: string): Promise<ServerSideSession | null>;
  /** The record with this session id (the provider's uid), or null. */
  getBySessionId(sessionId: string): Promise<ServerSideSession | null>;
  /** Insert. A duplicate key or session id rejects with SessionStoreError code `duplicate`; never overwrites. */
  create(session: ServerSideSession): Promise<void>;
  /** Replace the record with this session's `sessionId` (its key may change: rotation). Missing = `not_found`. */
  update(session: ServerSideSession): Promise<void>;
  /** Delete the record with this key. Idempotent: a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Every record matching the filter (AND). An empty filter (no field, or only empty strings) rejects with `invalid_filter`. */
  getSessions(filter: SessionFilter): Promise<ServerSideSession[]>;
  /** Delete every record matching the filter; resolves to how many were deleted. Empty filter: `invalid_filter`. */
  deleteSessions(filter: SessionFilter): Promise<number>;
  /**
   * Claims up to `count` records whose `expires` is before `clock.now()` (null never matches) and that no caller holds a
   * live claim on, the longest-expired first (earliest `expires`); each claimed record is held until now +
   * `leaseSeconds`, during which no other caller receives it. The caller completes a claim with `delete(key)`. A claim
   * that runs out without a delete is claimed again (at-least-once). With several callers at once (several
   * instances), a record goes to one caller per lease.
   *
   * `update` of a claimed record releases its claim. Expired records that cannot be read (see `corrupt`) are deleted
   * by the store, logged as a warning and never returned; they do not use up `count`, so an empty result means no
   * readable record is due. `count` and `leaseSeconds` must be positive integers (else `invalid_argument`).
   */
  claimExpired(count: number, leaseSeconds: number): Promise<ServerSideSession[]>;
  /** Admin search with keyset paging (see SessionQuery / SessionQueryResult). */
  querySessions(query: SessionQuery): Promise<SessionQueryResult>;
  /**
   * Optional: delete the records with these keys at once (the sweeper completes a batch of claims with it);
   * resolves to how many were deleted. Missing keys are not an error; an empty list deletes nothing. A store without
   * it gets one `delete` per key (see `deleteSessionKeys`). Anything but an array of strings: `invalid_argument`.
   */
  deleteMany?(keys: string[]): Promise<number>;
}

/** The methods Gatehouse checks for at start-up; a store missing any of them is refused by name. */
export const SESSION_STORE_METHODS = [
  'get',
  'getBySessionId',
  'create',
  'update',
  'delete',
  'getSessions',
  'deleteSessions',
  'claimExpired',
  'querySessions',
] as const satisfies readonly (keyof SessionStore)[];

/** Deletes these keys through `deleteMany` when the store has it, else one `delete` per key. */
export async function deleteSessionKeys(store: SessionStore, keys: string[]): Promise<void> {
  if (keys.length === 0) return;
  if (typeof store.deleteMany === 'function') {
    await store.deleteMany(keys);
    return;
  }
  for (const key of keys) await store.delete(key);
}

/** Rejects anything but an array of strings (shared by the stores' `deleteMany`). */
export function assertKeyList(keys: unknown): asserts keys is string[] {
  if (!Array.isArray(keys) || keys.some((key) => typeof key !== 'string')) {
    throw new SessionStoreError('invalid_argument', 'deleteMany: keys must be an array of strings');
  }
}

/**
 * - `duplicate`: create/update would give two records one key or session id.
 * - `not_found`: update of a session id that is not stored.
 * - `invalid_filter`: a filter with neither subjectId nor sessionId.
 * - `invalid_argument`: a value the store refuses (too long, not a Date, a count below 1...).
 * - `storage`: the backing storage failed (the driver error is the `cause`).
 * - `unavailable`: the backing storage cannot be reached right now (connection refused or lost, timed out, pool
 *   exhausted): a passing condition. Gatehouse answers 503 with Retry-After, as for its own database.
 * - `corrupt`: `get` / `getBySessionId` found a stored record that cannot be read (its `data` or `clients` JSON does
 *   not parse, a date is unreadable...). The caller should delete it by key (`delete`) or session id
 *   (`deleteSessions({ sessionId })`), which always work on such a record. Listings (`getSessions`, `querySessions`)
 *   never reject because of one: they skip it and log a warning; `claimExpired` deletes an expired one and logs it.
 */
export type SessionStoreErrorCode =
  | 'duplicate'
  | 'not_found'
  | 'invalid_filter'
  | 'invalid_argument'
  | 'storage'
  | 'unavailable'
  | 'corrupt';

/** Every code of the contract (what `isSessionStoreError` accepts). */
export const SESSION_STORE_ERROR_CODES = [
  'duplicate',
  'not_found',
  'invalid_filter',
  'invalid_argument',
  'storage',
  'unavailable',
  'corrupt',
] as const satisfies readonly SessionStoreErrorCode[];

/** The error type stores reject with. `cause` keeps the underlying driver error. */
export class SessionStoreError extends Error {
  readonly code: SessionStoreErrorCode;
  constructor(code: SessionStoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SessionStoreError';
    this.code = code;
  }
}

/**
 * Whether `error` is a store error (of this code, when one is given): an Error named `SessionStoreError` with a code of
 * the contract. Checked by name and code rather than `instanceof`, so that it holds for the class of any copy of this
 * package and for a store's own error class.
 */
export function isSessionStoreError(
  error: unknown,
  code?: SessionStoreErrorCode,
): error is Error & { code: SessionStoreErrorCode } {
  if (typeof error !== 'object' || error === null || (error as { name?: unknown }).name !== 'SessionStoreError')
    return false;
  const actual = (error as { code?: unknown }).code;
  return (SESSION_STORE_ERROR_CODES as readonly unknown[]).includes(actual) && (code === undefined || actual === code);
}

/** A store can be given as a class (`new Store(context)`), a factory (`(context) => store`) or an instance. */
export type SessionStoreClass = new (context: SessionStoreContext) => SessionStore;
export type SessionStoreFactory = (context: SessionStoreContext) => SessionStore | Promise<SessionStore>;
export type SessionStoreOption = SessionStoreClass | SessionStoreFactory | SessionStore;

/** Rejects a filter that names neither a subject nor a session id. Shared by every store. */
export function assertFilter(filter: SessionFilter | undefined | null): asserts filter is SessionFilter {
  if (!filter || (isBlank(filter.subjectId) && isBlank(filter.sessionId))) {
    throw new SessionStoreError('invalid_filter', 'a session filter needs subjectId or sessionId');
  }
}

function isBlank(value: unknown): boolean {
  return value === undefined || value === null || value === '';
}

/**
 * The store key for a provider session id (the `_session` cookie value): SHA-256, base64url.
 * The raw cookie value never reaches a store, so a database dump is not a list of live cookies.
 */
export function hashSessionKey(providerSessionId: string): string {
  return createHash('sha256').update(providerSessionId, 'utf8').digest('base64url');
}
