/**
 * A session store's `unavailable` (its backing storage cannot be reached), as oidc-provider and Koa read errors: HTTP
 * 503, details not exposed. The provider answers with the status of the error an adapter throws, and a store error
 * has none; Gatehouse's own routes read the store error itself (server/http/errors.ts).
 */
import { isSessionStoreError } from '../../stores/session-store.js';
import { classifyDatabaseError } from '../../stores/sequelize/errors.js';

export class SessionStoreUnavailableError extends Error {
  readonly status = 503;
  readonly statusCode = 503;
  readonly expose = false;
  readonly code = 'session_store_unavailable';
  constructor(cause: unknown) {
    super('the session store is unavailable', { cause });
    this.name = 'SessionStoreUnavailableError';
  }
}

/** Re-throws a store's `unavailable` as SessionStoreUnavailableError and an unreachable database as a 503; anything else unchanged. */
export function classifyAdapterError(error: unknown): never {
  if (isSessionStoreError(error, 'unavailable')) throw new SessionStoreUnavailableError(error);
  return classifyDatabaseError(error);
}
