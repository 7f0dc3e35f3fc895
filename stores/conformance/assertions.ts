/** Assertions shared by the conformance checks. Every loop over a store's answers is bounded: a broken store fails fast. */
import type { ExecutionContext } from 'ava';
import type {
  ServerSideSession,
  SessionQuery,
  SessionQueryResult,
  SessionStore,
  SessionStoreErrorCode,
} from '../session-store.js';
import type { ConformanceStore } from './options.js';

/**
 * `run` rejects with a store error (name `SessionStoreError`) of this code. `call` says which call it was
 * (`getSessions({ subjectId: '' })`), for the failure message: a test makes several such calls.
 */
export async function rejects(
  t: ExecutionContext,
  call: string,
  run: () => Promise<unknown>,
  code: SessionStoreErrorCode,
): Promise<void> {
  let error: unknown;
  let settled = false;
  try {
    await run();
    settled = true;
  } catch (caught) {
    error = caught;
  }
  if (settled) {
    t.fail(`${call}: expected a rejection with code ${code}, but it resolved`);
    return;
  }
  const failure = error as { code?: unknown; name?: unknown } | undefined;
  t.is(failure?.code, code, `${call}: the rejection's code`);
  t.is(failure?.name, 'SessionStoreError', `${call}: the rejection's name`);
}

/** With a directRead hook: the stored row for this session id is gone (null), or holds / no longer holds these values. */
export async function checkDirect(
  t: ExecutionContext,
  direct: ConformanceStore['directRead'],
  sessionId: string,
  expected: null | { contains?: string[]; lacks?: string[] },
): Promise<void> {
  if (!direct) return;
  const row = await direct(sessionId);
  if (expected === null) {
    t.is(row, null, `direct read: no stored row for ${sessionId}`);
    return;
  }
  t.truthy(row, `direct read: a stored row for ${sessionId}`);
  const text = JSON.stringify(row);
  for (const value of expected.contains ?? [])
    t.true(text.includes(value), `direct read: stored row contains ${value}`);
  for (const value of expected.lacks ?? [])
    t.false(text.includes(value), `direct read: stored row no longer has ${value}`);
}

export function expectPage(
  t: ExecutionContext,
  page: SessionQueryResult,
  expected: string[],
  hasPrevious: boolean,
  hasNext: boolean,
) {
  t.deepEqual(ids(page.results), expected);
  t.is(page.hasPrevious, hasPrevious, 'hasPrevious');
  t.is(page.hasNext, hasNext, 'hasNext');
  t.is(typeof page.previousToken === 'string', hasPrevious, 'previousToken present exactly when hasPrevious');
  t.is(typeof page.nextToken === 'string', hasNext, 'nextToken present exactly when hasNext');
}

/**
 * Calls claimExpired until it returns nothing, at most `maxCalls` times: a store that goes on handing records out
 * (it ignores leases, or deletes nothing it should) fails with that explanation instead of looping for ever.
 */
export async function drainClaims(
  store: SessionStore,
  count: number,
  lease: number,
  maxCalls: number,
): Promise<ServerSideSession[]> {
  const claimed: ServerSideSession[] = [];
  for (let calls = 0; calls < maxCalls; calls++) {
    const batch = await store.claimExpired(count, lease);
    if (batch.length === 0) return claimed;
    claimed.push(...batch);
  }
  throw new Error(
    `claimExpired(${count}, ${lease}) still returned records after ${maxCalls} calls; a correct store runs dry sooner ` +
      `(records claimed: ${claimed.length}). Does it hand a claimed record out again before its lease ends?`,
  );
}

/**
 * Follows `nextToken` (or `previousToken`) from `page` until there is none, at most `maxPages` pages, and resolves to
 * every page on the way (`page` excluded) in the order visited. A store whose tokens never end fails with a message.
 */
export async function followPages(
  store: SessionStore,
  query: SessionQuery,
  page: SessionQueryResult,
  direction: 'next' | 'previous',
  maxPages: number,
): Promise<SessionQueryResult[]> {
  const pages: SessionQueryResult[] = [];
  for (let current = page; ; ) {
    const token = direction === 'next' ? current.nextToken : current.previousToken;
    if (!token) return pages;
    if (pages.length >= maxPages) {
      throw new Error(
        `querySessions: still a ${direction}Token after ${maxPages} pages; the records fit in fewer. Do the tokens move the position?`,
      );
    }
    current = await store.querySessions({ ...query, token });
    pages.push(current);
  }
}

export const ids = (records: ServerSideSession[]) => records.map((record) => record.sessionId);
export const sortById = (records: ServerSideSession[]) =>
  [...records].sort((a, b) => (a.sessionId < b.sessionId ? -1 : 1));
