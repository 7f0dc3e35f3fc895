/**
 * Keyset paging for `querySessions`, shared by every store.
 *
 * Sort order everywhere: `created` DESC, then `sessionId` DESC (newest first). A token names one row's position
 * (its `created` and `sessionId`) and a direction: `next` = the rows after it, `previous` = the rows before it.
 * Positions, not page numbers or offsets, so pages stay stable while rows are added or removed.
 *
 * The token is opaque to callers: versioned base64url JSON. It carries no secret (it is only a position), so it is not
 * signed; anything that does not decode to the exact shape is treated as no token at all (the first page).
 */
import {
  DEFAULT_PAGE_SIZE,
  MAX_PAGE_SIZE,
  SessionStoreError,
  type ServerSideSession,
  type SessionQuery,
  type SessionQueryResult,
} from './session-store.js';

export type PageDirection = 'next' | 'previous';

export interface PagingPosition {
  direction: PageDirection;
  /** `created` of the anchor row, epoch milliseconds. */
  created: number;
  sessionId: string;
}

const VERSION = 1;
/** Longer than any token this module writes (a session id is at most a few hundred characters). */
const MAX_TOKEN_LENGTH = 2048;

export function encodePagingToken(position: PagingPosition): string {
  const body = { v: VERSION, d: position.direction === 'next' ? 'n' : 'p', c: position.created, s: position.sessionId };
  return Buffer.from(JSON.stringify(body), 'utf8').toString('base64url');
}

/** The position a token names, or null for anything malformed, foreign or of another version. Never throws. */
export function decodePagingToken(token: unknown): PagingPosition | null {
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) return null;
  if (!/^[A-Za-z0-9_-]+$/.test(token)) return null;
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return null;
  const { v, d, c, s } = body as Record<string, unknown>;
  if (v !== VERSION || (d !== 'n' && d !== 'p')) return null;
  if (typeof c !== 'number' || !Number.isSafeInteger(c)) return null;
  if (typeof s !== 'string' || s.length === 0) return null;
  return { direction: d === 'n' ? 'next' : 'previous', created: c, sessionId: s };
}

/** The page size a query asks for: default 25, clamped to MAX_PAGE_SIZE; < 1 or not an integer is `invalid_argument`. */
export function resolvePageSize(pageSize: number | undefined): number {
  if (pageSize === undefined || pageSize === null) return DEFAULT_PAGE_SIZE;
  if (typeof pageSize !== 'number' || !Number.isInteger(pageSize) || pageSize < 1) {
    throw new SessionStoreError('invalid_argument', `pageSize must be a positive integer, got ${String(pageSize)}`);
  }
  return Math.min(pageSize, MAX_PAGE_SIZE);
}

/** Forward order: negative when `a` comes first (newer `created`, then greater `sessionId`). */
export function compareForward(
  a: { created: Date | number; sessionId: string },
  b: { created: Date | number; sessionId: string },
): number {
  const ca = +a.created;
  const cb = +b.created;
  if (ca !== cb) return cb - ca;
  return a.sessionId === b.sessionId ? 0 : a.sessionId < b.sessionId ? 1 : -1;
}

/** The tokens and flags of a page whose neighbours are known. Tokens only when there is such a page. */
export function pageResult(
  results: ServerSideSession[],
  hasPrevious: boolean,
  hasNext: boolean,
): Omit<SessionQueryResult, 'totalCount'> {
  const result: Omit<SessionQueryResult, 'totalCount'> = { results, hasPrevious, hasNext };
  if (results.length === 0) return { results, hasPrevious: false, hasNext: false };
  const first = results[0];
  const last = results[results.length - 1];
  if (hasNext)
    result.nextToken = encodePagingToken({ direction: 'next', created: +last.created, sessionId: last.sessionId });
  if (hasPrevious) {
    result.previousToken = encodePagingToken({
      direction: 'previous',
      created: +first.created,
      sessionId: first.sessionId,
    });
  }
  return result;
}

/**
 * One page of an already filtered list, for stores that hold the candidates in memory (the memory store, the Redis
 * example). Sorts a copy. A token whose page is now empty (its rows were deleted) yields the first page.
 */
export function pageInMemory(candidates: ServerSideSession[], query: SessionQuery): SessionQueryResult {
  const pageSize = resolvePageSize(query.pageSize);
  const sorted = [...candidates].sort(compareForward);
  const position = decodePagingToken(query.token);
  let start = 0;
  let end = Math.min(pageSize, sorted.length);
  if (position) {
    const anchor = { created: position.created, sessionId: position.sessionId };
    // Index of the first row strictly after the anchor in forward order (= how many rows are at or before it).
    let after = sorted.findIndex((row) => compareForward(row, anchor) > 0);
    if (after === -1) after = sorted.length;
    if (position.direction === 'next') {
      start = after;
      end = Math.min(after + pageSize, sorted.length);
    } else {
      // Rows strictly before the anchor.
      let before = sorted.findIndex((row) => compareForward(row, anchor) >= 0);
      if (before === -1) before = sorted.length;
      end = before;
      start = Math.max(0, before - pageSize);
    }
    if (start >= end) {
      start = 0;
      end = Math.min(pageSize, sorted.length);
    }
  }
  const page = pageResult(sorted.slice(start, end), start > 0, end < sorted.length);
  return query.countTotal ? { ...page, totalCount: sorted.length } : page;
}
