/**
 * The oidc-provider adapter for the Session model when server-side sessions are on: it maps the provider's session
 * payload onto a ServerSideSession record in the configured SessionStore.
 *
 * - The store key is a hash of the provider's session id (the `_session` cookie value); the raw value is never stored.
 * - The provider's session id (jti) rotates on every completed interaction: `save()` destroys the old id, then upserts
 *   the new id with the same uid. The destroy of a rotating id is skipped and the upsert moves the record to the new
 *   key in one update, so a live session never has two records or none.
 * - A request that only slides the expiry writes at most once per `renewalWriteInterval` seconds.
 * - The session a request started (no session cookie came in) is created without reading first: its uid is new.
 * - An expired or unreadable record is never handed to the provider, nor written again by a request that loaded it
 *   before it expired; a corrupt one is deleted.
 */
import Provider from 'oidc-provider';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import {
  hashSessionKey,
  isSessionStoreError,
  type Clock,
  type ServerSideSession,
  type SessionStore,
  type StoreLogger,
} from '../../stores/session-store.js';

export interface SessionAdapterOptions {
  store: SessionStore;
  clock: Clock;
  logger: StoreLogger;
  /** Seconds: a save that only slides the expiry is skipped if the record was renewed more recently than this. */
  renewalWriteInterval: number;
  /** The display name for an account, from the configured claim; null when none is configured. */
  displayNameFor(accountId: string): string | null;
  /** Called (not awaited by the request) when a request finds an expired record the sweeper has not removed yet. */
  onExpiredSession?(session: ServerSideSession): void;
  /** Called after a record was written for a new sign-in (a new subject or a new auth time on this session). */
  onLogin?(session: ServerSideSession): void;
}

interface SessionPayload extends AdapterPayload {
  uid: string;
  jti?: string;
  accountId?: string;
  loginTs?: number;
  authorizations?: Record<string, { sid?: string; grantId?: string; persistsLogout?: boolean }>;
}

/** Fields that change on every save even when nothing else did. */
const VOLATILE = new Set(['iat', 'exp']);

function sameApartFromTimes(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const strip = (payload: Record<string, unknown>) =>
    JSON.stringify(
      Object.keys(payload)
        .filter((key) => !VOLATILE.has(key))
        .sort()
        .map((key) => [key, payload[key]]),
    );
  return strip(a) === strip(b);
}

function requestDetails(): { ip: string | null; userAgent: string | null } {
  const ctx = Provider.ctx;
  if (!ctx) return { ip: null, userAgent: null };
  const userAgent = ctx.get('user-agent');
  return { ip: ctx.ip || null, userAgent: userAgent ? userAgent.slice(0, 512) : null };
}

/** Session uids marked during the provider request running now (forgotten with the request). */
class RequestUids {
  readonly #byRequest = new WeakMap<object, Set<string>>();

  add(uid: string): void {
    const ctx = Provider.ctx;
    if (!ctx) return;
    const uids = this.#byRequest.get(ctx) ?? new Set<string>();
    uids.add(uid);
    this.#byRequest.set(ctx, uids);
  }

  has(uid: string): boolean {
    const ctx = Provider.ctx;
    return !!ctx && !!this.#byRequest.get(ctx)?.has(uid);
  }
}

/** Session uids this request read from the store (so a record that vanished meanwhile was revoked, not new). */
const loadedInRequest = new RequestUids();

/** Session uids this request created a record for. */
const createdInRequest = new RequestUids();

/**
 * True when `uid` is the session this request started (no session cookie came in, so the provider made a new session
 * with a fresh random uid) and the request has not stored it yet: no record of it can exist, so none is read.
 */
function isUnstoredNewSession(uid: string): boolean {
  const ctx = Provider.ctx;
  const session = ctx?.oidc?.session as { uid?: string; new?: boolean } | undefined;
  return !!ctx && session?.new === true && session.uid === uid && !createdInRequest.has(uid);
}

/** True when the provider is saving this session under a new id and `id` is the one it is leaving behind. */
function isRotationOf(id: string): boolean {
  const session = Provider.ctx?.oidc?.session as { oldId?: string; destroyed?: boolean } | undefined;
  return !!session && session.oldId === id && !session.destroyed;
}

/** True when this request rotated the session id and `id` is the new one. */
function isRotationTo(id: string): boolean {
  const session = Provider.ctx?.oidc?.session as { oldId?: string; jti?: string } | undefined;
  return !!session?.oldId && session.jti === id;
}

/** The stored payload never holds the session id (`jti`, the raw cookie value); `find(id)` puts it back. */
function withoutSessionId(payload: SessionPayload): Record<string, unknown> {
  const { jti: _cookieValue, ...rest } = payload;
  return rest;
}

function isUsablePayload(data: unknown, uid?: string): data is SessionPayload {
  if (!data || typeof data !== 'object' || Array.isArray(data)) return false;
  const payload = data as Record<string, unknown>;
  return typeof payload.uid === 'string' && (uid === undefined || payload.uid === uid) && payload.kind === 'Session';
}

export class SessionAdapter implements Adapter {
  readonly #options: SessionAdapterOptions;

  constructor(options: SessionAdapterOptions) {
    this.#options = options;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const data = payload as SessionPayload;
    const { store, clock } = this.#options;
    const now = clock.now();
    const key = hashSessionKey(id);
    const expires = typeof expiresIn === 'number' && expiresIn > 0 ? new Date(now.getTime() + expiresIn * 1000) : null;
    const { ip, userAgent } = requestDetails();
    const subjectId = data.accountId ?? null;
    const existing = isUnstoredNewSession(data.uid) ? null : await store.getBySessionId(data.uid);
    if (existing?.expires && existing.expires.getTime() <= now.getTime()) {
      // The session expired while this request ran: expiry is final. Saving would revive a record the sweeper may
      // already have claimed and ended (tokens revoked, logout sent), and then deletes.
      this.#options.logger.info({ sessionId: data.uid }, 'not saving a session that expired during the request');
      this.#options.onExpiredSession?.(existing);
      return;
    }
    // A plain save that carries an older id than the record (another request of this browser rotated it meanwhile)
    // must not move the record back: only the rotating request moves the key.
    const storedKey = existing && existing.key !== key && !isRotationTo(id) ? existing.key : key;
    const record: ServerSideSession = {
      key: storedKey,
      sessionId: data.uid,
      subjectId,
      displayName: subjectId ? this.#options.displayNameFor(subjectId) : null,
      clients: Object.entries(data.authorizations ?? {})
        .filter(([, authorization]) => typeof authorization?.sid === 'string')
        .map(([clientId, authorization]) => ({ clientId, sid: authorization.sid as string })),
      created: existing?.created ?? now,
      renewed: now,
      expires,
      authTime: typeof data.loginTs === 'number' ? new Date(data.loginTs * 1000) : null,
      loginIp: existing?.loginIp ?? null,
      loginUserAgent: existing?.loginUserAgent ?? null,
      lastIp: ip ?? existing?.lastIp ?? null,
      lastUserAgent: userAgent ?? existing?.lastUserAgent ?? null,
      data: withoutSessionId(data),
    };
    const freshLogin =
      subjectId !== null &&
      (existing?.subjectId !== subjectId || existing?.authTime?.getTime() !== record.authTime?.getTime());
    if (freshLogin || !existing) {
      record.loginIp = subjectId ? ip : null;
      record.loginUserAgent = subjectId ? userAgent : null;
    }
    if (!existing && loadedInRequest.has(data.uid)) {
      // Revoked (by an administrator, logout elsewhere or expiry) while this request ran: do not bring it back.
      this.#options.logger.info({ sessionId: data.uid }, 'not re-creating a session removed during the request');
      return;
    }
    if (!existing) {
      try {
        await store.create(record);
        createdInRequest.add(data.uid);
      } catch (error) {
        // Two requests of one browser raced to create the same session: the loser updates instead.
        if (!isSessionStoreError(error, 'duplicate')) throw error;
        const winner = await store.getBySessionId(data.uid);
        if (!winner) throw error;
        await store.update({ ...record, created: winner.created });
      }
      if (freshLogin) this.#options.onLogin?.(record);
      return;
    }
    const onlySlides =
      existing.key === storedKey &&
      existing.subjectId === subjectId &&
      sameApartFromTimes(existing.data, record.data) &&
      now.getTime() - existing.renewed.getTime() < this.#options.renewalWriteInterval * 1000;
    if (onlySlides) return;
    await store.update(record);
    if (freshLogin) this.#options.onLogin?.(record);
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const key = hashSessionKey(id);
    const record = await this.#readOrDropCorrupt(
      () => this.#options.store.get(key),
      () => this.#options.store.delete(key),
    );
    const payload = await this.#usable(record);
    return payload && { ...payload, jti: id };
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    const record = await this.#readOrDropCorrupt(
      () => this.#options.store.getBySessionId(uid),
      async () => void (await this.#options.store.deleteSessions({ sessionId: uid })),
    );
    return this.#usable(record, uid);
  }

  /** A record the store cannot read logs the user out: it is deleted and treated as missing. */
  async #readOrDropCorrupt(
    read: () => Promise<ServerSideSession | null>,
    drop: () => Promise<void>,
  ): Promise<ServerSideSession | null> {
    try {
      return await read();
    } catch (error) {
      if (!isSessionStoreError(error, 'corrupt')) throw error;
      this.#options.logger.warn(
        { err: { message: error.message } },
        'removing an unreadable server-side session record',
      );
      await drop();
      return null;
    }
  }

  async destroy(id: string): Promise<void> {
    if (isRotationOf(id)) return; // the upsert that follows moves the record to its new key
    await this.#options.store.delete(hashSessionKey(id));
  }

  async consume(): Promise<void> {
    // Sessions are never consumed.
  }

  async findByUserCode(): Promise<undefined> {
    return undefined;
  }

  async revokeByGrantId(): Promise<void> {
    // Sessions are not grant-bound.
  }

  async #usable(record: ServerSideSession | null, uid?: string): Promise<AdapterPayload | undefined> {
    if (!record) return undefined;
    if (!isUsablePayload(record.data, uid ?? record.sessionId)) {
      this.#options.logger.warn({ sessionId: record.sessionId }, 'removing an unreadable server-side session record');
      await this.#options.store.delete(record.key);
      return undefined;
    }
    if (record.expires && record.expires.getTime() <= this.#options.clock.now().getTime()) {
      this.#options.onExpiredSession?.(record);
      return undefined;
    }
    loadedInRequest.add(record.sessionId);
    return { ...record.data };
  }
}
