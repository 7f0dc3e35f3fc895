/**
 * A memo of the operational adapter's look-ups for one HTTP request: oidc-provider reads the same row several times
 * in one request (the Interaction in `interactionDetails` and again in `interactionFinished`, a token's Grant after
 * the token), and the answer cannot have changed unless the request changed it itself.
 *
 * - Scope: one request. `withRequestMemo` runs the request's handler (create-server.ts); code outside it (the sweeper,
 *   the back-channel worker, the CLI) has no memo and always reads. Nothing is ever shared between requests, so a
 *   token revoked by another request or instance is refused by the next request as before.
 * - Keys: the database gateway (one table per Sequelize instance), the model and the id. A look-up is kept as its
 *   promise, so look-ups of one request that run at once share one statement.
 * - Invalidation: every write of the request through the adapter (upsert, consume, destroy) forgets its row, before
 *   the statement and again after it, so a look-up that ran in between is not kept; `revokeByGrantId` and
 *   `revokeGrantTokens` forget everything. A later read in the request then reads the database and sees the write.
 * - Other requests' writes: a remembered answer is used for `MEMO_MAX_AGE_MS` at most, so a request that waited
 *   (the sign-in gate, a password check: up to seconds) reads again rather than write back a row another request
 *   changed or deleted meanwhile (a second tab that finished the same Interaction). Within that bound it is the same
 *   read-then-write window oidc-provider itself has between a look-up and its save.
 * - Background work a request starts (a timer, the back-channel worker's kick) inherits the request's async context:
 *   once the response is done (`close`), the memo is ended and answers nothing, so such work always reads.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** A row as the adapter's look-ups return it. */
export interface MemoRow {
  payload: string;
  consumed_at: Date | string | null;
}

type Entry = Promise<MemoRow | undefined>;

/**
 * How long a remembered look-up answers. The repeated reads of one request come within a few milliseconds of each
 * other; a request still reading after this has waited for something and reads again.
 */
export const MEMO_MAX_AGE_MS = 100;

/** The memo of one request and one database. */
export class MemoTable {
  readonly #entries = new Map<string, { entry: Entry; at: number }>();
  #forgotten = 0;

  /** A look-up this request already made (or started) less than `MEMO_MAX_AGE_MS` ago, or undefined. */
  get(model: string, id: string): Entry | undefined {
    const key = `${model}\n${id}`;
    const kept = this.#entries.get(key);
    if (!kept) return undefined;
    if (performance.now() - kept.at > MEMO_MAX_AGE_MS) {
      this.#entries.delete(key);
      return undefined;
    }
    return kept.entry;
  }

  set(model: string, id: string, entry: Entry): void {
    const key = `${model}\n${id}`;
    this.#entries.set(key, { entry, at: performance.now() });
    // A failed look-up is not an answer: the next one reads again.
    entry.catch(() => {
      if (this.#entries.get(key)?.entry === entry) this.#entries.delete(key);
    });
  }

  /**
   * How many times this memo forgot something. A look-up that learns about other rows on the way (a token's Grant)
   * keeps them only if this did not change meanwhile.
   */
  get generation(): number {
    return this.#forgotten;
  }

  forget(model: string, id: string): void {
    this.#forgotten++;
    this.#entries.delete(`${model}\n${id}`);
  }

  forgetAll(): void {
    this.#forgotten++;
    this.#entries.clear();
  }
}

class RequestMemo {
  /** Made on the first look-up: most requests (discovery, JWKS, pages) never read through the adapter. */
  #tables: Map<object, MemoTable> | undefined;
  ended = false;

  table(owner: object): MemoTable | undefined {
    if (this.ended) return undefined;
    this.#tables ??= new Map();
    let table = this.#tables.get(owner);
    if (!table) {
      table = new MemoTable();
      this.#tables.set(owner, table);
    }
    return table;
  }

  end(): void {
    this.ended = true;
    this.#tables = undefined;
  }
}

const current = new AsyncLocalStorage<RequestMemo>();

/**
 * Runs `work` (one request's handling) with a memo of its own, ended when `response` is done (`close`, which follows
 * `finish` or an aborted connection alike).
 */
export function withRequestMemo<T>(
  work: () => T,
  response?: { once(event: 'close', listener: () => void): unknown },
): T {
  const memo = new RequestMemo();
  response?.once('close', () => memo.end());
  return current.run(memo, work);
}

/** The current request's memo for this database (`owner`: its gateway), or undefined outside a request. */
export function requestMemo(owner: object): MemoTable | undefined {
  return current.getStore()?.table(owner);
}
