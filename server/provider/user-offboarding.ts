/**
 * Ending a user's access when the user is removed or disabled: `DELETE /admin/api/v1/users/{subject}`, `PUT` with
 * `disabled: true`, `gatehouse users remove`, and a start whose configuration no longer lists a configured user.
 *
 * With server-side sessions on, this is an administrator's "sign out everywhere" (SessionService.removeSessions by
 * subject, every flag on): the user's tokens and grants are revoked, their relying parties get a back-channel logout
 * (`terminated`, through the durable outbox) and the session records are deleted. With the feature off there is no
 * index of a user's sessions: the grants (and every token issued under them) are still revoked, but no back-channel
 * logout is sent; the browser's session no longer signs anyone in, because the provider finds no account for it
 * (findAccount sees enabled users only, and the login prompt asks again, see configuration.ts).
 *
 * Call it after the user is removed or disabled, so no new sign-in can start in between.
 */
import type { Logger } from 'pino';
import type { RemoveSessionsResult, SessionService } from '../sessions/session-service.js';

export interface AccessEnded extends RemoveSessionsResult {
  /** False when server-side sessions are off: grants and tokens were revoked, but no sessions or notifications. */
  serverSideSessions: boolean;
}

export interface UserOffboardingDeps {
  sessions: SessionService;
  logger: Logger;
}

export class UserOffboarding {
  readonly #deps: UserOffboardingDeps;

  constructor(deps: UserOffboardingDeps) {
    this.#deps = deps;
  }

  /** Ends every session, token and grant of the subject. `actor` is for the audit trail (admin client id, "cli", "config"). */
  async endAccess(subject: string, actor: string): Promise<AccessEnded> {
    const { sessions, logger } = this.#deps;
    let result: AccessEnded;
    if (sessions.enabled) {
      result = { ...(await sessions.removeSessions({ subjectId: subject, actor })), serverSideSessions: true };
    } else {
      result = {
        sessions: [],
        grantsRevoked: await sessions.revokeAccountGrants(subject),
        notificationsQueued: 0,
        serverSideSessions: false,
      };
    }
    // Logged when something ended (a start re-checks users the configuration dropped earlier: usually nothing left).
    if (result.sessions.length || result.grantsRevoked || result.notificationsQueued)
      logger.info(
        {
          event: 'user.access_ended',
          subject,
          actor,
          sessions: result.sessions.length,
          grantsRevoked: result.grantsRevoked,
          notificationsQueued: result.notificationsQueued,
        },
        'access of a removed or disabled user ended',
      );
    return result;
  }
}
