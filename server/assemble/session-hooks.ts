/**
 * What the Session adapter calls back into while the provider runs: the display name it stores with a session, and
 * what happens when a request meets an expired session or a sign-in writes a new one (audit event, session limit).
 */
import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { GatehouseConfig } from '../../config/schema.js';
import type { AccountDirectory } from '../provider/accounts.js';
import type { SessionAdapterOptions } from '../sessions/session-adapter.js';
import type { SessionService } from '../sessions/session-service.js';

type Hooks = Pick<SessionAdapterOptions, 'displayNameFor' | 'onExpiredSession' | 'onLogin'>;

export function sessionAdapterHooks(deps: {
  config: GatehouseConfig;
  accounts: AccountDirectory;
  logger: Logger;
  events: EventEmitter;
}): Required<Hooks> & { attachSessionService(service: SessionService): void } {
  const { config, accounts, logger, events } = deps;
  const displayNameClaim = config.serverSideSessions.displayNameClaim;
  // Late-bound: the adapter needs the service, which needs the provider, which needs the adapter.
  let sessions: SessionService | undefined;
  return {
    attachSessionService: (service) => {
      sessions = service;
    },
    displayNameFor: (accountId) => {
      const value = displayNameClaim ? accounts.bySubject(accountId)?.claims[displayNameClaim] : undefined;
      return typeof value === 'string' ? value.slice(0, 255) : null;
    },
    onExpiredSession: (session) => {
      sessions
        ?.expireSession(session)
        .catch((error) =>
          logger.error(
            { sessionId: session.sessionId, err: { message: (error as Error).message } },
            'ending an expired session failed',
          ),
        );
    },
    onLogin: (session) => {
      const detail = { sessionId: session.sessionId, subjectId: session.subjectId, ip: session.loginIp };
      logger.info({ event: 'session.created', ...detail }, 'session created');
      events.emit('session.created', detail);
      const limit = config.serverSideSessions.maxSessionsPerUser;
      if (limit && session.subjectId) {
        sessions
          ?.enforceSessionLimit(session.subjectId, limit, session.sessionId)
          .catch((error) =>
            logger.error(
              { subjectId: session.subjectId, err: { message: (error as Error).message } },
              'enforcing maxSessionsPerUser failed',
            ),
          );
      }
    },
  };
}
