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
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** A row as the adapter's look-ups return it. */
export interface MemoRow {
  payload: string;
  consumed_at: Date | string | null;
}

type Entry = Promise<MemoRow | undefined>;

/** The memo of one request and one database. */
export class MemoTable {
  readonly #entries = new Map<string, Entry>();
  #forgotten = 0;

  /** A look-up this request already made (or started), or undefined. */
  get(model: string, id: string): Entry | undefined {
    return this.#entries.get(`${model}\n${id}`);
  }

  set(model: string, id: string, entry: Entry): void {
    const key = `${model}\n${id}`;
    this.#entries.set(key, entry);
    // A failed look-up is not an answer: the next one reads again.
    entry.catch(() => {
      if (this.#entries.get(key) === entry) this.#entries.delete(key);
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
  #tables: WeakMap<object, MemoTable> | undefined;

  table(owner: object): MemoTable {
    this.#tables ??= new WeakMap();
    let table = this.#tables.get(owner);
    if (!table) {
      table = new MemoTable();
      this.#tables.set(owner, table);
    }
    return table;
  }
}

const current = new AsyncLocalStorage<RequestMemo>();

/** Runs `work` (one request's handling) with a memo of its own. */
export function withRequestMemo<T>(work: () => T): T {
  return current.run(new RequestMemo(), work);
}

/** The current request's memo for this database (`owner`: its gateway), or undefined outside a request. */
export function requestMemo(owner: object): MemoTable | undefined {
  return current.getStore()?.table(owner);
}
