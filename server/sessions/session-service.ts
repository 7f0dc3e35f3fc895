/**
 * The session management service: search sessions, end them on an administrator's or user's request, and end them on
 * expiry. Every path ends a session the same way, in this order:
 *   1. revoke tokens (and, when asked, consents) of the affected clients,
 *   2. record the back-channel logout notifications owed in the durable outbox (delivered by BackchannelDelivery),
 *   3. delete the session record.
 * It reads and changes sessions only through the SessionStore contract, and tokens only through the provider's models.
 */
import type { EventEmitter } from 'node:events';
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import type { Sequelize } from 'sequelize';
import type { LogoutReason, OutboxEntry } from '../../stores/sequelize/backchannel-outbox.js';
import { isDatabaseUnavailable } from '../../stores/sequelize/errors.js';
import { grantResources, grantsOfAccount } from '../../stores/sequelize/grants.js';
import { revokeGrantTokens } from '../../stores/sequelize/operational-adapter.js';
import {
  assertFilter,
  deleteSessionKeys,
  type Clock,
  type ServerSideSession,
  type SessionQuery,
  type SessionQueryResult,
  type SessionStore,
} from '../../stores/session-store.js';
import type { ApiRegistry, ApiTokenDescription } from '../provider/apis.js';
import type { ClientSettings } from '../provider/clients.js';
import type { BackchannelDelivery } from './backchannel-delivery.js';

export interface RemoveSessionsOptions {
  subjectId?: string;
  sessionId?: string;
  /** Only these clients' tokens are revoked and only they are notified. */
  clientIds?: string[];
  revokeTokens?: boolean;
  revokeConsents?: boolean;
  sendBackchannelLogout?: boolean;
  removeSession?: boolean;
  /** Who asked, for the audit trail (an admin's subject or client id, "cli", "self"). */
  actor?: string;
}

/** An API a client of a session was granted, and how the tokens it holds for it end. */
export interface SessionApi extends ApiTokenDescription {
  clientId: string;
}

/** What forgetExpiredSessions needs of an expired session (the sweeper keeps only this between the two steps). */
export type ExpiredSessionRef = Pick<ServerSideSession, 'key' | 'sessionId' | 'subjectId' | 'expires'>;

export interface RemoveSessionsResult {
  sessions: string[];
  grantsRevoked: number;
  notificationsQueued: number;
}

export class SessionManagementDisabledError extends Error {
  readonly status = 409;
  readonly code = 'server_side_sessions_disabled';
  readonly expose = true;
  constructor() {
    super(
      'server-side sessions are disabled (serverSideSessions.enabled: false), so sessions cannot be listed or revoked',
    );
    this.name = 'SessionManagementDisabledError';
  }
}

type GrantAdapter = { adapter: { destroy(id: string): Promise<void> } };

interface SessionServiceDeps {
  provider: Provider;
  store: SessionStore | undefined;
  sequelize: Sequelize;
  clock: Clock;
  logger: Logger;
  events: EventEmitter;
  delivery: BackchannelDelivery;
  clients: ClientSettings;
  /** The configured APIs, to describe which ones a session's clients hold tokens for. */
  apis?: ApiRegistry;
  expiredSessionsTriggerBackchannelLogout: boolean;
  lifetime: { idleTimeout: number; absoluteLifetime: number; renewalWriteInterval: number };
}

export class SessionService {
  readonly #deps: SessionServiceDeps;

  constructor(deps: SessionServiceDeps) {
    this.#deps = deps;
  }

  get enabled(): boolean {
    return this.#deps.store !== undefined;
  }

  #store(): SessionStore {
    if (!this.#deps.store) throw new SessionManagementDisabledError();
    return this.#deps.store;
  }

  querySessions(query: SessionQuery): Promise<SessionQueryResult> {
    return this.#store().querySessions(query);
  }

  /** One session by id, or null (anonymous sessions included). */
  getSession(sessionId: string): Promise<ServerSideSession | null> {
    return this.#store().getBySessionId(sessionId);
  }

  /** A user's sessions, newest first (never anonymous ones). */
  async sessionsOf(subjectId: string): Promise<ServerSideSession[]> {
    const sessions = await this.#store().getSessions({ subjectId });
    return sessions.filter((s) => s.subjectId !== null).sort((a, b) => b.created.getTime() - a.created.getTime());
  }

  /**
   * Which APIs each session's clients were granted (and so hold, or can refresh, access tokens for), by session id,
   * with how those tokens end: reference tokens with the session (coordinated clients) or on revocation, JWTs only
   * when they expire. APIs no longer configured are left out; with no APIs configured the map is empty.
   */
  async apisOf(sessions: readonly ServerSideSession[]): Promise<Map<string, SessionApi[]>> {
    const apis = this.#deps.apis;
    if (!apis?.enabled) return new Map();
    const out = new Map<string, SessionApi[]>(sessions.map((session) => [session.sessionId, []]));
    const pairs = sessions.flatMap((session) =>
      sessionGrants(session).map(([clientId, grantId]) => ({ session, clientId, grantId })),
    );
    const resources = await grantResources(
      this.#deps.sequelize,
      this.#deps.clock,
      pairs.map((pair) => pair.grantId),
    );
    for (const { session, clientId, grantId } of pairs) {
      for (const identifier of resources.get(grantId) ?? []) {
        const described = apis.describe(identifier, { coordinated: this.#deps.clients.coordinated(clientId) });
        if (described) out.get(session.sessionId)!.push({ clientId, ...described });
      }
    }
    return out;
  }

  /** Ends the sessions matching the filter. Every flag defaults to true. An empty filter is rejected. */
  async removeSessions(options: RemoveSessionsOptions): Promise<RemoveSessionsResult> {
    const store = this.#store();
    const filter = { subjectId: options.subjectId || undefined, sessionId: options.sessionId || undefined };
    assertFilter(filter);
    const revokeTokens = options.revokeTokens ?? true;
    const revokeConsents = options.revokeConsents ?? true;
    const sendBackchannelLogout = options.sendBackchannelLogout ?? true;
    const removeSession = options.removeSession ?? true;
    const onlyClients = options.clientIds?.length ? new Set(options.clientIds) : undefined;
    const affects = (clientId: string) => !onlyClients || onlyClients.has(clientId);

    const sessions = await store.getSessions(filter);

    // 1. tokens and grants
    const grantIds = new Set<string>();
    if (revokeTokens || revokeConsents) {
      for (const session of sessions) {
        for (const [clientId, grantId] of sessionGrants(session)) if (affects(clientId)) grantIds.add(grantId);
      }
      if (filter.subjectId && !filter.sessionId) {
        for (const { grantId, clientId } of await grantsOfAccount(
          this.#deps.sequelize,
          this.#deps.clock,
          filter.subjectId,
        )) {
          if (affects(clientId)) grantIds.add(grantId);
        }
      }
      await this.#revokeGrants([...grantIds], { tokens: revokeTokens, consent: revokeConsents });
    }

    // 2. notifications
    let notificationsQueued = 0;
    if (sendBackchannelLogout) {
      const clients = new ClientCache(this.#deps.provider);
      const entries = (
        await Promise.all(sessions.map((session) => this.#notifications(session, 'terminated', affects, clients)))
      ).flat();
      notificationsQueued = await this.#deps.delivery.enqueue(entries);
    }

    // 3. records
    if (removeSession) {
      await deleteSessionKeys(
        store,
        sessions.map((session) => session.key),
      );
    }

    for (const session of sessions) {
      const detail = {
        sessionId: session.sessionId,
        subjectId: session.subjectId,
        actor: options.actor ?? 'unknown',
        clientIds: options.clientIds ?? null,
        revokeTokens,
        revokeConsents,
        sendBackchannelLogout,
        removeSession,
      };
      this.#deps.logger.info({ event: 'session.revoked', ...detail }, 'session revoked');
      this.#deps.events.emit('session.revoked', detail);
    }
    return { sessions: sessions.map((s) => s.sessionId), grantsRevoked: grantIds.size, notificationsQueued };
  }

  /**
   * Revokes every live grant of the account (tokens, codes and consent) without touching sessions: what ending a
   * user's access comes to when server-side sessions are off. Resolves to how many grants were revoked.
   */
  async revokeAccountGrants(subjectId: string): Promise<number> {
    const grants = await grantsOfAccount(this.#deps.sequelize, this.#deps.clock, subjectId);
    await this.#revokeGrants(
      grants.map((grant) => grant.grantId),
      { tokens: true, consent: true },
    );
    return grants.length;
  }

  /**
   * Keeps a user at `limit` sessions: after a sign-in that exceeds it, the oldest sessions (never `keep`, the one just
   * signed in) are ended like an administrator's revocation, with back-channel logout.
   */
  async enforceSessionLimit(subjectId: string, limit: number, keep: string): Promise<string[]> {
    const sessions = await this.sessionsOf(subjectId); // newest first
    if (sessions.length <= limit) return [];
    const excess = sessions
      .filter((s) => s.sessionId !== keep)
      .slice(Math.max(0, limit - 1))
      .map((s) => s.sessionId);
    for (const sessionId of excess) await this.removeSessions({ sessionId, actor: 'maxSessionsPerUser' });
    return excess;
  }

  /**
   * Ends expired sessions: coordinated clients' tokens are revoked (offline_access included; consents kept); the
   * coordinated clients — or every client, with expiredSessionsTriggerBackchannelLogout — are notified; the records
   * are deleted. Safe to run twice for one session (the sweeper and a request may both find it).
   */
  async expireSessions(sessions: readonly ServerSideSession[]): Promise<void> {
    await this.endExpiredSessions(sessions);
    await this.forgetExpiredSessions(sessions);
  }

  /** Ends one expired session (see expireSessions). */
  expireSession(session: ServerSideSession): Promise<void> {
    return this.expireSessions([session]);
  }

  /**
   * The first half of expireSessions, for a batch: one token DELETE for every coordinated grant and one outbox insert
   * for every notification. The records stay until forgetExpiredSessions; running this again for a session whose
   * record is still there is a no-op (tokens already gone, the outbox keeps one notification per client and sid).
   */
  async endExpiredSessions(sessions: readonly ServerSideSession[]): Promise<void> {
    this.#store();
    const coordinated = (clientId: string) => this.#deps.clients.coordinated(clientId);
    const notify = this.#deps.expiredSessionsTriggerBackchannelLogout ? () => true : coordinated;
    const signedIn = sessions.filter((session) => session.subjectId);
    const grantIds = signedIn.flatMap((session) =>
      sessionGrants(session)
        .filter(([clientId]) => coordinated(clientId))
        .map(([, grantId]) => grantId),
    );
    await this.#revokeGrants(grantIds, { tokens: true, consent: false });
    const clients = new ClientCache(this.#deps.provider);
    const entries: OutboxEntry[] = [];
    for (const session of signedIn)
      entries.push(...(await this.#notifications(session, 'session_expiration', notify, clients)));
    await this.#deps.delivery.enqueue(entries);
  }

  /** The second half of expireSessions: deletes the records (one statement for many) and reports each expiry. */
  async forgetExpiredSessions(sessions: readonly ExpiredSessionRef[]): Promise<void> {
    await deleteSessionKeys(
      this.#store(),
      sessions.map((session) => session.key),
    );
    for (const session of sessions) {
      if (!session.subjectId) continue;
      const detail = { sessionId: session.sessionId, subjectId: session.subjectId, expires: session.expires };
      this.#deps.logger.info({ event: 'session.expired', ...detail }, 'session expired');
      this.#deps.events.emit('session.expired', detail);
    }
  }

  /**
   * Slides a live session forward after activity of a coordinated client: renewed = now, expires = now + idle
   * timeout, capped by the absolute lifetime. At most one write per renewalWriteInterval. Gone or expired: no-op.
   */
  async slide(sessionId: string): Promise<void> {
    const store = this.#store();
    const session = await store.getBySessionId(sessionId).catch(() => null);
    const now = this.#deps.clock.now().getTime();
    if (!session?.subjectId || (session.expires && session.expires.getTime() <= now)) return;
    const { idleTimeout, absoluteLifetime, renewalWriteInterval } = this.#deps.lifetime;
    if (now - session.renewed.getTime() < renewalWriteInterval * 1000) return;
    let expires = now + idleTimeout * 1000;
    if (session.authTime) expires = Math.min(expires, session.authTime.getTime() + absoluteLifetime * 1000);
    if (session.expires && expires <= session.expires.getTime()) expires = session.expires.getTime();
    await store.update({
      ...session,
      renewed: new Date(now),
      expires: new Date(expires),
      data: { ...session.data, exp: Math.floor(expires / 1000) },
    });
  }

  async #notifications(
    session: ServerSideSession,
    reason: LogoutReason,
    include: (clientId: string) => boolean,
    clients: ClientCache,
  ): Promise<OutboxEntry[]> {
    if (!session.subjectId) return [];
    const entries: OutboxEntry[] = [];
    for (const { clientId, sid } of session.clients) {
      if (!include(clientId) || !(await clients.hasBackchannelLogout(clientId))) continue;
      entries.push({ clientId, sid, subjectId: session.subjectId, sessionId: session.sessionId, reason });
    }
    return entries;
  }

  async #revokeGrants(grantIds: string[], what: { tokens: boolean; consent: boolean }): Promise<void> {
    if (grantIds.length === 0) return;
    if (what.tokens) await revokeGrantTokens(this.#deps.sequelize, grantIds);
    if (what.consent) {
      const { Grant } = this.#deps.provider as unknown as Record<'Grant', GrantAdapter>;
      for (const grantId of grantIds) await Grant.adapter.destroy(grantId);
    }
  }
}

/**
 * Which clients have a back-channel logout URI, looked up once per client for one batch of sessions. A client that is
 * gone or whose metadata no longer loads gets no notification; a database that cannot be reached fails the lookup, so
 * the sessions are not ended without their notifications (the sweeper retries them once their claims run out).
 */
class ClientCache {
  readonly #found = new Map<string, Promise<boolean>>();
  constructor(private readonly provider: Provider) {}

  hasBackchannelLogout(clientId: string): Promise<boolean> {
    let found = this.#found.get(clientId);
    if (!found) {
      found = this.provider.Client.find(clientId).then(
        (client) => Boolean(client?.backchannelLogoutUri),
        (error: unknown) => {
          if (isDatabaseUnavailable(error)) throw error;
          return false;
        },
      );
      this.#found.set(clientId, found);
    }
    return found;
  }
}

/** [clientId, grantId] pairs of a session, from the provider payload. */
function sessionGrants(session: ServerSideSession): [string, string][] {
  const authorizations = (session.data.authorizations ?? {}) as Record<string, { grantId?: string }>;
  return Object.entries(authorizations)
    .filter(([, authorization]) => typeof authorization?.grantId === 'string')
    .map(([clientId, authorization]) => [clientId, authorization.grantId as string]);
}
