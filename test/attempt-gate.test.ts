/**
 * The attempt gate (server/provider/attempt-gate.ts) in the two situations that let a burst get more password checks
 * than its budget: an attempt ends (its failure written, its place freed) while another attempt's read of the counters
 * is on its way back; and a failure that cannot be written (here another connection holds SQLite's write lock) while
 * the check happened all the same. The sign-in and device-code throttles run on the real counter store (SQLite and
 * PostgreSQL); the only thing added is a hook that holds one read's answer, already fetched from the database, until
 * the test lets it go, so the interleaving is the same on every run.
 */
import test, { type ExecutionContext } from 'ava';
import sqlite3 from 'sqlite3';
import { type AttemptGateOptions, PendingRecords } from '../server/provider/attempt-gate.js';
import { DeviceCodeThrottle } from '../server/provider/device-code-throttle.js';
import { type LoginAttempt, LoginThrottle } from '../server/provider/login-throttle.js';
import { ManualClock } from '../stores/clock.js';
import { openDatabase } from '../stores/sequelize/connection.js';
import { type AttemptRow, LoginAttempts } from '../stores/sequelize/login-attempts.js';
import { migrate } from '../stores/sequelize/migrate.js';
import { createTestDatabase, type TestDialect } from './helpers/databases.js';

/** The real store, whose next read can be held after the database answered (an answer that arrives late). */
class HeldReads extends LoginAttempts {
  #held: { reached: () => void; go: Promise<void> } | undefined;

  /** Holds the next read: `reached` resolves once it has its rows, `release()` hands them to its caller. */
  holdNextRead(): { reached: Promise<void>; release: () => void } {
    let reached!: () => void;
    let release!: () => void;
    const reachedPromise = new Promise<void>((resolve) => {
      reached = resolve;
    });
    const go = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.#held = { reached, go };
    return { reached: reachedPromise, release };
  }

  override async read(keys: string[]): Promise<Map<string, AttemptRow>> {
    const rows = await super.read(keys);
    const held = this.#held;
    if (held) {
      this.#held = undefined;
      held.reached();
      await held.go;
    }
    return rows;
  }
}

/** A second connection to a SQLite file that holds the write lock (`BEGIN IMMEDIATE`), as another process would. */
class WriteLock {
  static async take(url: string): Promise<WriteLock> {
    const file = url.slice('sqlite:'.length);
    const db = await new Promise<sqlite3.Database>((resolve, reject) => {
      const opened: sqlite3.Database = new sqlite3.Database(file, sqlite3.OPEN_READWRITE, (error) =>
        error ? reject(error) : resolve(opened),
      );
    });
    await new Promise<void>((resolve, reject) =>
      db.run('BEGIN IMMEDIATE', (error) => (error ? reject(error) : resolve())),
    );
    return new WriteLock(db);
  }

  private constructor(private readonly db: sqlite3.Database) {}

  async release(): Promise<void> {
    await new Promise<void>((resolve, reject) => this.db.run('COMMIT', (error) => (error ? reject(error) : resolve())));
    await new Promise<void>((resolve, reject) => this.db.close((error) => (error ? reject(error) : resolve())));
  }
}

const LIMIT = 2;

async function store(t: ExecutionContext, dialect: TestDialect) {
  const db = await createTestDatabase(dialect);
  // On a SQLite file, a short bound: a write that meets another connection's lock fails within a second instead of
  // 2.5 s. Elsewhere the default bounds: 300 ms is too short to open a PostgreSQL connection on a loaded machine.
  const sequelize = await openDatabase(dialect === 'sqlite-file' ? { url: db.url, timeoutMs: 300 } : { url: db.url });
  t.teardown(async () => {
    await sequelize.close();
    await db.drop();
  });
  await migrate(sequelize);
  const clock = new ManualClock(Date.UTC(2031, 0, 1));
  return { attempts: new HeldReads(sequelize, clock), clock, url: db.url };
}

async function loginThrottle(t: ExecutionContext, dialect: TestDialect, gate: AttemptGateOptions = {}) {
  const { attempts, clock, url } = await store(t, dialect);
  const failed: unknown[] = [];
  const throttle = new LoginThrottle(
    attempts,
    {
      maxFailuresPerDevice: 10,
      maxFailuresPerAccount: LIMIT,
      maxFailuresPerAccountAndIp: 5,
      maxFailuresPerIp: 100,
      failureWindow: 900,
      lockout: 300,
      maxLockout: 86_400,
      deviceCookieLifetime: 31_536_000,
    },
    {
      nameKey: 'attempt-gate-test',
      clock,
      gate,
      audit: (event, detail) => {
        if (event === 'login.failed') failed.push(detail);
      },
    },
  );
  t.teardown(() => throttle.close());
  return { attempts, throttle, failed, url };
}

async function deviceCodeThrottle(t: ExecutionContext, dialect: TestDialect) {
  const { attempts, clock, url } = await store(t, dialect);
  const throttle = new DeviceCodeThrottle(
    attempts,
    { maxFailuresPerIp: LIMIT, failureWindow: 900, lockout: 300, maxLockout: 86_400 },
    clock,
  );
  t.teardown(() => throttle.close());
  /** Admits an entry that the test expects to be admitted. */
  const admit = async (ip: string) => {
    const admission = await throttle.admit(ip);
    if (!('entry' in admission)) throw new Error(`expected ${ip} to be admitted`);
    return admission.entry;
  };
  return { attempts, throttle, admit, url };
}

const admitted = (attempt: LoginAttempt) => attempt.blockedUntil === undefined;

for (const dialect of ['sqlite-memory', 'postgres'] as const) {
  test(`${dialect}: a guess that fails while another reads the counters does not give that one an extra check`, async (t) => {
    const { attempts, throttle, failed } = await loginThrottle(t, dialect);
    const first = await throttle.begin('bob', '198.51.100.1', []);
    const second = await throttle.begin('bob', '198.51.100.2', []);
    t.true(admitted(first) && admitted(second), 'the budget of 2 admits two guesses');

    // A third guess reads the counters (no failure yet); the first guess fails before that answer is used.
    const hold = attempts.holdNextRead();
    const third = throttle.begin('bob', '198.51.100.3', []);
    await hold.reached;
    await throttle.failed(first);
    hold.release();
    await throttle.failed(second);

    t.false(admitted(await third), 'the third guess is refused unchecked: the budget was spent');
    t.is(failed.length, LIMIT, `${LIMIT} password checks for a budget of ${LIMIT}`);
    t.truthy((await throttle.status('bob')).untrustedLockedUntil, 'and the name is locked');
  });

  test(`${dialect}: a sign-in that succeeds while another reads the counters leaves that one its turn`, async (t) => {
    const { attempts, throttle } = await loginThrottle(t, dialect);
    const first = await throttle.begin('carol', '198.51.100.1', []);
    const second = await throttle.begin('carol', '198.51.100.2', []);
    const hold = attempts.holdNextRead();
    const third = throttle.begin('carol', '198.51.100.3', []);
    await hold.reached;
    await throttle.succeeded(first);
    hold.release();
    t.true(admitted(await third), 'admitted without waiting for the second attempt: nothing was counted');
    await throttle.succeeded(second);
    await throttle.succeeded(await third);
    t.is((await throttle.status('carol')).untrustedLockedUntil, null);
  });

  test(`${dialect}: a wrong device code entered while another entry reads the counter does not give that one an extra look-up`, async (t) => {
    const { attempts, throttle, admit } = await deviceCodeThrottle(t, dialect);
    const first = await admit('203.0.113.9');
    const second = await admit('203.0.113.9');

    const hold = attempts.holdNextRead();
    const third = throttle.admit('203.0.113.9');
    await hold.reached;
    await first.failed();
    first.release();
    hold.release();
    await second.failed();
    second.release();

    t.true('blockedUntil' in (await third), 'the third entry is refused before its code is looked up');
  });
}

test('sqlite-file: a guess whose failure cannot be written still counts: it keeps its place until a retry writes it', async (t) => {
  const { attempts, throttle, failed, url } = await loginThrottle(t, 'sqlite-file');
  const first = await throttle.begin('bob', '198.51.100.1', []);
  const second = await throttle.begin('bob', '198.51.100.2', []);

  const lock = await WriteLock.take(url);
  await t.throwsAsync(throttle.failed(first), undefined, 'the request fails: its failure could not be written');
  const hold = attempts.holdNextRead(); // to know when the third guess has read the counters (reads still work)
  const third = throttle.begin('bob', '198.51.100.3', []);
  await hold.reached;
  hold.release();
  await lock.release();
  await throttle.failed(second);

  t.false(admitted(await third), 'the third guess is refused unchecked: the unwritten failure counted');
  t.is(failed.length, LIMIT, `${LIMIT} password checks for a budget of ${LIMIT}`);
  const status = await throttle.status('bob');
  t.truthy(status.untrustedLockedUntil, 'the retry wrote the failure, and the name is locked');
});

test('sqlite-file: a wrong device code whose failure cannot be written still counts until a retry writes it', async (t) => {
  const { attempts, throttle, admit, url } = await deviceCodeThrottle(t, 'sqlite-file');
  const first = await admit('203.0.113.9');
  const second = await admit('203.0.113.9');

  const lock = await WriteLock.take(url);
  await t.throwsAsync(first.failed());
  first.release();
  const hold = attempts.holdNextRead();
  const third = throttle.admit('203.0.113.9');
  await hold.reached;
  hold.release();
  await lock.release();
  await second.failed();
  second.release();

  t.true('blockedUntil' in (await third), 'the third entry is refused before its code is looked up');
  t.truthy(await attempts.lockedUntil(['device:ip:203.0.113.9']), 'the retry wrote the failure: the address is locked');
});

/** A logger whose warn lines the test can wait for. */
function warnings() {
  const lines: Record<string, unknown>[] = [];
  let next: (() => void) | undefined;
  return {
    lines,
    logger: {
      warn: (detail: Record<string, unknown>) => {
        lines.push(detail);
        next?.();
      },
    } as never,
    /** Resolves at the next warn line. */
    next: () =>
      new Promise<void>((resolve) => {
        next = resolve;
      }),
  };
}

const shortRetries = { firstMs: 20, maxMs: 40, giveUpMs: 200, burstMs: 1 };

test('sqlite-file: a failure that cannot be written for longer than the bound is dropped and frees its place', async (t) => {
  const warned = warnings();
  const { attempts, throttle, url } = await loginThrottle(t, 'sqlite-file', {
    retry: shortRetries,
    pending: new PendingRecords(100),
    logger: warned.logger,
  });
  const first = await throttle.begin('erin', '198.51.100.1', []);
  const second = await throttle.begin('erin', '198.51.100.2', []);
  const lock = await WriteLock.take(url);
  t.teardown(() => lock.release().catch(() => undefined));
  const givenUp = warned.next();
  await t.throwsAsync(throttle.failed(first));
  await givenUp;
  t.like(warned.lines[0], { event: 'attempts.unwritten-dropped', givenUp: 1, overCap: 0 });
  t.false(JSON.stringify(warned.lines).includes('erin'), 'no name in the log line');
  // With the second still in flight, the first's place is free again: a third guess is checked.
  const third = await throttle.begin('erin', '198.51.100.3', []);
  t.true(admitted(third), 'the dropped failure no longer holds a place');
  throttle.release(second);
  throttle.release(third);
  await lock.release();
  t.is((await throttle.status('erin')).untrustedLockedUntil, null);
  t.is((await attempts.read(['ip:198.51.100.1'])).size, 0, 'the dropped failure was never written');
});

test('sqlite-file: beyond the cap on failures waiting to be written, a failure is dropped at once', async (t) => {
  const warned = warnings();
  const pending = new PendingRecords(1);
  const { throttle, url } = await loginThrottle(t, 'sqlite-file', {
    retry: { ...shortRetries, giveUpMs: 60_000 },
    pending,
    logger: warned.logger,
  });
  const first = await throttle.begin('frank', '198.51.100.1', []);
  const second = await throttle.begin('frank', '198.51.100.2', []);
  const lock = await WriteLock.take(url);
  t.teardown(() => lock.release().catch(() => undefined));
  await t.throwsAsync(throttle.failed(first));
  t.is(pending.count, 1, 'the first waits to be written');
  const overCap = warned.next();
  await t.throwsAsync(throttle.failed(second));
  await overCap;
  t.like(warned.lines[0], { givenUp: 0, overCap: 1, stillPending: 1 });
  t.is(pending.count, 1, 'the second was not added');
  const third = await throttle.begin('frank', '198.51.100.3', []);
  t.true(admitted(third), 'the second freed its place: one place held of two');
  throttle.release(third);
  throttle.close();
  t.is(pending.count, 0, 'closing forgets the waiting failure');
});

test('sqlite-file: a successful sign-in cancels a failure of that name and address still waiting to be written', async (t) => {
  const pending = new PendingRecords(100);
  const { attempts, throttle, url } = await loginThrottle(t, 'sqlite-file', {
    retry: { ...shortRetries, giveUpMs: 60_000 },
    pending,
  });
  const lock = await WriteLock.take(url);
  t.teardown(() => lock.release().catch(() => undefined));
  await t.throwsAsync(throttle.failed(await throttle.begin('gina', '198.51.100.1', [])), undefined, 'wrong password');
  t.is(pending.count, 1);
  const right = await throttle.begin('gina', '198.51.100.1', []);
  t.true(admitted(right));
  await throttle.succeeded(right); // nothing written to reset: the counts in the database are 0
  t.is(pending.count, 0, 'the waiting failure is cancelled');
  const [again, andAgain] = await Promise.all([0, 1].map(() => throttle.begin('gina', '198.51.100.1', [])));
  t.true(admitted(again) && admitted(andAgain), 'its place is free: the budget of 2 admits two at once');
  throttle.release(again);
  throttle.release(andAgain);
  await lock.release();
  const nameId = throttle.nameIdOf('gina');
  t.is((await attempts.read([`usr:${nameId}`, `uip:${nameId}:198.51.100.1`])).size, 0, 'nothing was counted');
});
