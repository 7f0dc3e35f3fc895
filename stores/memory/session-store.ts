/**
 * In-memory session store: for tests and single-process development. Everything is lost on restart.
 *
 * Records are copied in and out (`data` through JSON, like the database stores), so a caller can never change a stored
 * record by mutating an object it passed in or got back. Every operation is synchronous inside, so each is atomic.
 * It cannot hold an unreadable record, so it never rejects with `corrupt`.
 */
import { pageInMemory, compareForward } from '../paging-token.js';
import {
  SessionStoreError,
  assertFilter,
  assertKeyList,
  type ServerSideSession,
  type SessionFilter,
  type SessionQuery,
  type SessionQueryResult,
  type SessionStore,
  type SessionStoreContext,
} from '../session-store.js';

export class MemorySessionStore implements SessionStore {
  readonly #context: SessionStoreContext;
  readonly #bySessionId = new Map<string, ServerSideSession>();
  /** key -> sessionId */
  readonly #byKey = new Map<string, string>();
  /** subjectId -> sessionIds */
  readonly #bySubject = new Map<string, Set<string>>();
  /** sessionId -> end of its claim (epoch ms), for claimExpired. Cleared by update and delete. */
  readonly #claims = new Map<string, number>();

  constructor(context: SessionStoreContext) {
    this.#context = context;
  }

  async get(key: string): Promise<ServerSideSession | null> {
    const sessionId = this.#byKey.get(key);
    return sessionId === undefined ? null : this.#read(sessionId);
  }

  async getBySessionId(sessionId: string): Promise<ServerSideSession | null> {
    return this.#read(sessionId);
  }

  async create(session: ServerSideSession): Promise<void> {
    const record = copySession(session);
    if (this.#bySessionId.has(record.sessionId)) {
      throw new SessionStoreError('duplicate', `a session with this session id already exists`);
    }
    if (this.#byKey.has(record.key)) {
      throw new SessionStoreError('duplicate', `a session with this key already exists`);
    }
    this.#index(record);
  }

  async update(session: ServerSideSession): Promise<void> {
    const record = copySession(session);
    const existing = this.#bySessionId.get(record.sessionId);
    if (!existing) throw new SessionStoreError('not_found', `no session with this session id`);
    const keyOwner = this.#byKey.get(record.key);
    if (keyOwner !== undefined && keyOwner !== record.sessionId) {
      throw new SessionStoreError('duplicate', `another session already has this key`);
    }
    this.#unindex(existing);
    this.#index(record);
    this.#claims.delete(record.sessionId); // an update releases a claim
  }

  async delete(key: string): Promise<void> {
    const sessionId = this.#byKey.get(key);
    if (sessionId !== undefined) this.#unindex(this.#bySessionId.get(sessionId)!);
  }

  async deleteMany(keys: string[]): Promise<number> {
    assertKeyList(keys);
    let deleted = 0;
    for (const key of keys) {
      const sessionId = this.#byKey.get(key);
      if (sessionId === undefined) continue;
      this.#unindex(this.#bySessionId.get(sessionId)!);
      deleted++;
    }
    return deleted;
  }

  async getSessions(filter: SessionFilter): Promise<ServerSideSession[]> {
    assertFilter(filter);
    return this.#matching(filter).map(copySession);
  }

  async deleteSessions(filter: SessionFilter): Promise<number> {
    assertFilter(filter);
    const matching = this.#matching(filter);
    for (const record of matching) this.#unindex(record);
    return matching.length;
  }

  async claimExpired(count: number, leaseSeconds: number): Promise<ServerSideSession[]> {
    assertPositiveInteger(count, 'count');
    assertPositiveInteger(leaseSeconds, 'leaseSeconds');
    const now = this.#context.clock.now().getTime();
    const due: ServerSideSession[] = [];
    for (const record of this.#bySessionId.values()) {
      if (record.expires === null || record.expires.getTime() >= now) continue;
      const claimedUntil = this.#claims.get(record.sessionId);
      if (claimedUntil !== undefined && claimedUntil > now) continue; // a live claim
      due.push(record);
    }
    due.sort((a, b) => a.expires!.getTime() - b.expires!.getTime());
    const claimed = due.slice(0, count);
    const until = now + leaseSeconds * 1000;
    for (const record of claimed) this.#claims.set(record.sessionId, until);
    return claimed.map(copySession);
  }

  async querySessions(query: SessionQuery): Promise<SessionQueryResult> {
    const prefix = query.displayNamePrefix ? query.displayNamePrefix.toLowerCase() : undefined;
    let candidates: Iterable<ServerSideSession>;
    if (query.sessionId) {
      const one = this.#bySessionId.get(query.sessionId);
      candidates = one ? [one] : [];
    } else if (query.subjectId) {
      candidates = [...(this.#bySubject.get(query.subjectId) ?? [])].map((id) => this.#bySessionId.get(id)!);
    } else {
      candidates = this.#bySessionId.values();
    }
    const matching: ServerSideSession[] = [];
    for (const record of candidates) {
      if (record.subjectId === null) continue; // anonymous sessions are never listed
      if (query.subjectId && record.subjectId !== query.subjectId) continue;
      if (prefix !== undefined && !(record.displayName ?? '').toLowerCase().startsWith(prefix)) continue;
      if (query.clientId && !record.clients.some((client) => client.clientId === query.clientId)) continue;
      matching.push(record);
    }
    const page = pageInMemory(matching, query);
    return { ...page, results: page.results.map(copySession) };
  }

  #read(sessionId: string): ServerSideSession | null {
    const record = this.#bySessionId.get(sessionId);
    return record ? copySession(record) : null;
  }

  #matching(filter: SessionFilter): ServerSideSession[] {
    let records: ServerSideSession[];
    if (filter.sessionId) {
      const one = this.#bySessionId.get(filter.sessionId);
      records = one ? [one] : [];
    } else {
      records = [...(this.#bySubject.get(filter.subjectId!) ?? [])].map((id) => this.#bySessionId.get(id)!);
    }
    if (filter.subjectId) records = records.filter((record) => record.subjectId === filter.subjectId);
    return records.sort(compareForward);
  }

  #index(record: ServerSideSession): void {
    this.#bySessionId.set(record.sessionId, record);
    this.#byKey.set(record.key, record.sessionId);
    if (record.subjectId !== null) {
      let set = this.#bySubject.get(record.subjectId);
      if (!set) {
        set = new Set();
        this.#bySubject.set(record.subjectId, set);
      }
      set.add(record.sessionId);
    }
  }

  #unindex(record: ServerSideSession): void {
    this.#bySessionId.delete(record.sessionId);
    this.#claims.delete(record.sessionId);
    if (this.#byKey.get(record.key) === record.sessionId) this.#byKey.delete(record.key);
    if (record.subjectId !== null) {
      const set = this.#bySubject.get(record.subjectId);
      set?.delete(record.sessionId);
      if (set?.size === 0) this.#bySubject.delete(record.subjectId);
    }
  }
}

function assertPositiveInteger(value: number, name: string): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new SessionStoreError('invalid_argument', `${name} must be a positive integer, got ${String(value)}`);
  }
}

const copyDate = (date: Date) => new Date(date.getTime());
const copyOptionalDate = (date: Date | null) => (date === null ? null : copyDate(date));

/** A deep copy; `data` goes through JSON so it behaves exactly as it would in a database store. */
function copySession(session: ServerSideSession): ServerSideSession {
  return {
    key: session.key,
    sessionId: session.sessionId,
    subjectId: session.subjectId ?? null,
    displayName: session.displayName ?? null,
    clients: session.clients.map(({ clientId, sid }) => ({ clientId, sid })),
    created: copyDate(session.created),
    renewed: copyDate(session.renewed),
    expires: copyOptionalDate(session.expires ?? null),
    authTime: copyOptionalDate(session.authTime ?? null),
    loginIp: session.loginIp ?? null,
    loginUserAgent: session.loginUserAgent ?? null,
    lastIp: session.lastIp ?? null,
    lastUserAgent: session.lastUserAgent ?? null,
    data: JSON.parse(JSON.stringify(session.data ?? {})) as Record<string, unknown>,
  };
}
