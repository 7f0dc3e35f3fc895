/**
 * RedisSessionStore: an example of a custom session store class, built on ioredis.
 *
 * Layout under the key prefix `P` (default `gatehouse:`):
 *   P session:<sessionId>   hash, one field per record field (dates as epoch ms; clients and data as JSON)
 *   P key:<key>             string -> sessionId
 *   P subject:<subjectId>   set of sessionIds
 *   P expires               sorted set, score = expires (ms): unclaimed sessions that have an expiry
 *   P claims                sorted set, score = end of the claim (ms): sessions an expiry sweeper has claimed
 *   P created               sorted set, score = created (ms): every session
 *
 * Every write is one Lua script, so it is atomic: create refuses a taken key or session id, update moves the indexes
 * (and releases a claim), and claimExpired moves due members from `expires` (and claims that ran out) into `claims`
 * with the new lease in one step, so two instances never hold the same session at once. A claimed session stays
 * stored until the sweeper deletes it. The scripts build key names from the prefix: this example targets a single
 * Redis node, not Redis Cluster.
 *
 * A hash that cannot be read (its `data` or `clients` JSON does not parse, a date is not a number, a field is missing)
 * makes get/getBySessionId reject with `corrupt`; listings skip it with a warning; claimExpired deletes it. A Redis that
 * cannot be reached (refused, connection lost, retries used up) rejects with `unavailable`: Gatehouse answers 503.
 *
 * querySessions loads the candidate set (one subject's sessions, or every session) and filters and pages it in memory.
 * Fine for thousands of sessions, not built for millions: use the SQL store for that.
 */
import { Redis } from 'ioredis';
import { pageInMemory, compareForward } from '../../stores/paging-token.js';
import {
  SessionStoreError,
  assertFilter,
  assertKeyList,
  type Clock,
  type ServerSideSession,
  type SessionFilter,
  type SessionQuery,
  type SessionQueryResult,
  type SessionStore,
  type SessionStoreContext,
  type StoreLogger,
} from '../../stores/session-store.js';

/** Given in the context itself (code), or in `serverSideSessions.storeOptions` (a config file: `context.options`). */
export interface RedisSessionStoreOptions {
  /** Default: env GATEHOUSE_REDIS_URL, else redis://127.0.0.1:6379. */
  redisUrl?: string;
  /** Prepended to every key. Default `gatehouse:`. */
  keyPrefix?: string;
}

/** ioredis failures that mean "Redis cannot be reached right now" rather than a refused command. */
const UNREACHABLE =
  /Connection is closed|Reached the max retries per request limit|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND/;

/** Removes one session and its index entries. Shared by the scripts below. */
const REMOVE = `
local function remove(p, sid)
  local hashKey = p .. 'session:' .. sid
  if redis.call('EXISTS', hashKey) == 0 then return false end
  local fields = redis.call('HMGET', hashKey, 'key', 'subjectId')
  if fields[1] and redis.call('GET', p .. 'key:' .. fields[1]) == sid then redis.call('DEL', p .. 'key:' .. fields[1]) end
  if fields[2] then redis.call('SREM', p .. 'subject:' .. fields[2], sid) end
  redis.call('ZREM', p .. 'created', sid)
  redis.call('ZREM', p .. 'expires', sid)
  redis.call('ZREM', p .. 'claims', sid)
  redis.call('DEL', hashKey)
  return true
end
`;

/** Indexes a session whose hash fields are ARGV[8..]. ARGV: prefix, sid, key, hasSubject, subject, created, expires. */
const WRITE = `
local function write(p, sid, key, hasSubject, subject, created, expires)
  local hashKey = p .. 'session:' .. sid
  redis.call('DEL', hashKey)
  redis.call('HSET', hashKey, unpack(ARGV, 8))
  redis.call('SET', p .. 'key:' .. key, sid)
  if hasSubject == '1' then redis.call('SADD', p .. 'subject:' .. subject, sid) end
  redis.call('ZADD', p .. 'created', created, sid)
  redis.call('ZREM', p .. 'claims', sid)
  if expires ~= '' then redis.call('ZADD', p .. 'expires', expires, sid) else redis.call('ZREM', p .. 'expires', sid) end
end
`;

const SCRIPTS = {
  gatehouseSessionCreate: `${WRITE}
local p, sid, key = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', p .. 'session:' .. sid) == 1 then return 'duplicate' end
if redis.call('EXISTS', p .. 'key:' .. key) == 1 then return 'duplicate' end
write(p, sid, key, ARGV[4], ARGV[5], ARGV[6], ARGV[7])
return 'ok'`,
  gatehouseSessionUpdate: `${WRITE}
local p, sid, key = ARGV[1], ARGV[2], ARGV[3]
local hashKey = p .. 'session:' .. sid
if redis.call('EXISTS', hashKey) == 0 then return 'not_found' end
local owner = redis.call('GET', p .. 'key:' .. key)
if owner and owner ~= sid then return 'duplicate' end
local old = redis.call('HMGET', hashKey, 'key', 'subjectId')
if old[1] and old[1] ~= key then redis.call('DEL', p .. 'key:' .. old[1]) end
if old[2] then redis.call('SREM', p .. 'subject:' .. old[2], sid) end
write(p, sid, key, ARGV[4], ARGV[5], ARGV[6], ARGV[7])
return 'ok'`,
  gatehouseSessionDelete: `${REMOVE}
local sid = redis.call('GET', ARGV[1] .. 'key:' .. ARGV[2])
if not sid then return 0 end
if remove(ARGV[1], sid) then return 1 end
return 0`,
  /** ARGV: prefix, key, key, ... */
  gatehouseSessionDeleteMany: `${REMOVE}
local p = ARGV[1]
local removed = 0
for i = 2, #ARGV do
  local sid = redis.call('GET', p .. 'key:' .. ARGV[i])
  if sid and remove(p, sid) then removed = removed + 1 end
end
return removed`,
  /** ARGV: prefix, subjectId ('' = any), sessionId ('' = any). */
  gatehouseSessionDeleteMatching: `${REMOVE}
local p, subject, sid = ARGV[1], ARGV[2], ARGV[3]
local candidates
if sid ~= '' then candidates = { sid } else candidates = redis.call('SMEMBERS', p .. 'subject:' .. subject) end
local removed = 0
for _, candidate in ipairs(candidates) do
  local owner = redis.call('HGET', p .. 'session:' .. candidate, 'subjectId')
  if subject == '' or owner == subject then
    if remove(p, candidate) then removed = removed + 1 end
  end
end
return removed`,
  /**
   * ARGV: prefix, now (ms), count, claim end (ms). Claims up to `count` due sessions: first those whose claim has run
   * out (claim end <= now), then unclaimed ones with expires < now, oldest first. Returns, for each claimed session,
   * its session id followed by its hash as a flat field/value list.
   */
  gatehouseSessionClaimExpired: `
local p, now, count, leaseEnd = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local out = {}
local function claimFrom(index, max)
  while #out < count do
    local due = redis.call('ZRANGEBYSCORE', p .. index, '-inf', max, 'LIMIT', 0, count - #out)
    if #due == 0 then return end
    for _, sid in ipairs(due) do
      redis.call('ZREM', p .. 'expires', sid)
      local fields = redis.call('HGETALL', p .. 'session:' .. sid)
      if #fields == 0 then
        redis.call('ZREM', p .. 'claims', sid) -- an index entry without its session: drop it
      else
        redis.call('ZADD', p .. 'claims', leaseEnd, sid)
        table.insert(out, { sid, fields })
      end
    end
  end
end
claimFrom('claims', now)
claimFrom('expires', '(' .. now)
return out`,
  /** ARGV: prefix, sessionId, claim end (ms). Deletes the session only while it is still under that claim. */
  gatehouseSessionDeleteClaimed: `${REMOVE}
local p, sid = ARGV[1], ARGV[2]
local score = redis.call('ZSCORE', p .. 'claims', sid)
if score and tonumber(score) == tonumber(ARGV[3]) and remove(p, sid) then return 1 end
return 0`,
} as const;

type ScriptArg = string | number;
type ScriptCommands = { [name in keyof typeof SCRIPTS]: (...args: ScriptArg[]) => Promise<unknown> };

const PIPELINE_CHUNK = 500;

export class RedisSessionStore implements SessionStore {
  readonly #redis: Redis & ScriptCommands;
  readonly #clock: Clock;
  readonly #logger: StoreLogger;
  readonly #prefix: string;

  constructor(context: SessionStoreContext & RedisSessionStoreOptions) {
    this.#clock = context.clock;
    this.#logger = context.logger;
    const option = (name: keyof RedisSessionStoreOptions): string | undefined => {
      const configured = context.options?.[name];
      return context[name] ?? (typeof configured === 'string' ? configured : undefined);
    };
    this.#prefix = option('keyPrefix') ?? 'gatehouse:';
    const url = option('redisUrl') ?? process.env.GATEHOUSE_REDIS_URL ?? 'redis://127.0.0.1:6379';
    this.#redis = new Redis(url, { maxRetriesPerRequest: 2 }) as Redis & ScriptCommands;
    this.#redis.on('error', (error: Error) =>
      context.logger.warn({ err: error }, 'redis session store connection error'),
    );
    for (const [name, lua] of Object.entries(SCRIPTS)) this.#redis.defineCommand(name, { lua, numberOfKeys: 0 });
  }

  /** Closes the Redis connection. */
  async close(): Promise<void> {
    await this.#redis.quit();
  }

  async get(key: string): Promise<ServerSideSession | null> {
    return this.#run('get', async () => {
      const sessionId = await this.#redis.get(`${this.#prefix}key:${key}`);
      if (sessionId === null) return null;
      const hash = await this.#redis.hgetall(`${this.#prefix}session:${sessionId}`);
      // Gone, or the key rotated between the two reads.
      if (Object.keys(hash).length === 0 || (hash.key !== undefined && hash.key !== key)) return null;
      return decodeHash(hash, 'get');
    });
  }

  async getBySessionId(sessionId: string): Promise<ServerSideSession | null> {
    return this.#run('getBySessionId', async () => {
      const hash = await this.#redis.hgetall(`${this.#prefix}session:${sessionId}`);
      return Object.keys(hash).length ? decodeHash(hash, 'getBySessionId') : null;
    });
  }

  async create(session: ServerSideSession): Promise<void> {
    const args = this.#writeArgs(session);
    const outcome = await this.#run('create', () => this.#redis.gatehouseSessionCreate(...args));
    if (outcome === 'duplicate')
      throw new SessionStoreError('duplicate', 'create: a session with this key or session id already exists');
  }

  async update(session: ServerSideSession): Promise<void> {
    const args = this.#writeArgs(session);
    const outcome = await this.#run('update', () => this.#redis.gatehouseSessionUpdate(...args));
    if (outcome === 'not_found') throw new SessionStoreError('not_found', 'update: no session with this session id');
    if (outcome === 'duplicate')
      throw new SessionStoreError('duplicate', 'update: another session already has this key');
  }

  async delete(key: string): Promise<void> {
    await this.#run('delete', () => this.#redis.gatehouseSessionDelete(this.#prefix, key));
  }

  async deleteMany(keys: string[]): Promise<number> {
    assertKeyList(keys);
    let deleted = 0;
    for (let start = 0; start < keys.length; start += PIPELINE_CHUNK) {
      const chunk = keys.slice(start, start + PIPELINE_CHUNK);
      deleted += Number(
        await this.#run('deleteMany', () => this.#redis.gatehouseSessionDeleteMany(this.#prefix, ...chunk)),
      );
    }
    return deleted;
  }

  async getSessions(filter: SessionFilter): Promise<ServerSideSession[]> {
    assertFilter(filter);
    return this.#run('getSessions', async () => {
      const candidates = filter.sessionId
        ? [filter.sessionId]
        : await this.#redis.smembers(`${this.#prefix}subject:${filter.subjectId}`);
      const records = await this.#loadMany(candidates);
      return records
        .filter((record) => !filter.subjectId || record.subjectId === filter.subjectId)
        .sort(compareForward);
    });
  }

  async deleteSessions(filter: SessionFilter): Promise<number> {
    assertFilter(filter);
    const removed = await this.#run('deleteSessions', () =>
      this.#redis.gatehouseSessionDeleteMatching(this.#prefix, filter.subjectId || '', filter.sessionId || ''),
    );
    return Number(removed);
  }

  async claimExpired(count: number, leaseSeconds: number): Promise<ServerSideSession[]> {
    for (const [name, value] of [
      ['count', count],
      ['leaseSeconds', leaseSeconds],
    ] as const) {
      if (!Number.isInteger(value) || value < 1) {
        throw new SessionStoreError('invalid_argument', `${name} must be a positive integer, got ${String(value)}`);
      }
    }
    const now = this.#clock.now().getTime();
    const leaseEnd = now + leaseSeconds * 1000;
    return this.#run('claimExpired', async () => {
      const claimed: ServerSideSession[] = [];
      // Unreadable sessions are deleted and do not count: claim again until `count` readable ones or none is due.
      while (claimed.length < count) {
        const wanted = count - claimed.length;
        const taken = (await this.#redis.gatehouseSessionClaimExpired(this.#prefix, now, wanted, leaseEnd)) as [
          string,
          string[],
        ][];
        for (const [sessionId, flat] of taken) {
          const record = this.#read(
            { sessionId, ...pairsToObject(flat) },
            'claimExpired',
            'unreadable expired session deleted',
          );
          if (record) claimed.push(record);
          // Only while still under this claim: an update meanwhile (which releases it) may have repaired it.
          else await this.#redis.gatehouseSessionDeleteClaimed(this.#prefix, sessionId, leaseEnd);
        }
        if (taken.length < wanted) break;
      }
      return claimed.sort((a, b) => a.expires!.getTime() - b.expires!.getTime());
    });
  }

  async querySessions(query: SessionQuery): Promise<SessionQueryResult> {
    const prefix = query.displayNamePrefix ? query.displayNamePrefix.toLowerCase() : undefined;
    const records = await this.#run('querySessions', async () => {
      const candidates = query.sessionId
        ? [query.sessionId]
        : query.subjectId
          ? await this.#redis.smembers(`${this.#prefix}subject:${query.subjectId}`)
          : await this.#redis.zrange(`${this.#prefix}created`, 0, -1);
      return this.#loadMany(candidates);
    });
    const matching = records.filter(
      (record) =>
        record.subjectId !== null && // anonymous sessions are never listed
        (!query.subjectId || record.subjectId === query.subjectId) &&
        (prefix === undefined || (record.displayName ?? '').toLowerCase().startsWith(prefix)) &&
        (!query.clientId || record.clients.some((client) => client.clientId === query.clientId)),
    );
    return pageInMemory(matching, query);
  }

  /** The readable sessions among these ids (missing ones left out; unreadable ones logged and left out). */
  async #loadMany(sessionIds: string[]): Promise<ServerSideSession[]> {
    const records: ServerSideSession[] = [];
    for (let start = 0; start < sessionIds.length; start += PIPELINE_CHUNK) {
      const pipeline = this.#redis.pipeline();
      for (const sessionId of sessionIds.slice(start, start + PIPELINE_CHUNK))
        pipeline.hgetall(`${this.#prefix}session:${sessionId}`);
      for (const [error, hash] of (await pipeline.exec()) ?? []) {
        if (error) throw error;
        const fields = hash as Record<string, string>;
        if (Object.keys(fields).length === 0) continue;
        const record = this.#read(fields, 'list', 'unreadable server-side session skipped');
        if (record) records.push(record);
      }
    }
    return records;
  }

  #read(hash: Record<string, string>, operation: string, message: string): ServerSideSession | null {
    try {
      return fromHash(hash);
    } catch (error) {
      this.#logger.warn({ operation, sessionId: hash.sessionId, err: { message: (error as Error).message } }, message);
      return null;
    }
  }

  #writeArgs(session: ServerSideSession): ScriptArg[] {
    if (!session?.key || !session.sessionId)
      throw new SessionStoreError('invalid_argument', 'key and sessionId are required');
    const hasSubject = session.subjectId !== null && session.subjectId !== undefined;
    return [
      this.#prefix,
      session.sessionId,
      session.key,
      hasSubject ? '1' : '0',
      hasSubject ? session.subjectId! : '',
      session.created.getTime(),
      session.expires ? session.expires.getTime() : '',
      ...toHash(session),
    ];
  }

  async #run<T>(operation: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof SessionStoreError) throw error;
      const message = error instanceof Error ? error.message : String(error);
      const code = UNREACHABLE.test(
        `${(error as { name?: string })?.name} ${message} ${(error as { code?: string })?.code}`,
      )
        ? 'unavailable'
        : 'storage';
      throw new SessionStoreError(code, `${operation}: redis error: ${message}`, { cause: error });
    }
  }
}

export default RedisSessionStore;

/** A record as hash field/value pairs; null fields are left out. */
function toHash(session: ServerSideSession): string[] {
  const fields: Record<string, string | null> = {
    key: session.key,
    sessionId: session.sessionId,
    subjectId: session.subjectId ?? null,
    displayName: session.displayName ?? null,
    clients: JSON.stringify(session.clients.map(({ clientId, sid }) => ({ clientId, sid }))),
    created: String(session.created.getTime()),
    renewed: String(session.renewed.getTime()),
    expires: session.expires ? String(session.expires.getTime()) : null,
    authTime: session.authTime ? String(session.authTime.getTime()) : null,
    loginIp: session.loginIp ?? null,
    loginUserAgent: session.loginUserAgent ?? null,
    lastIp: session.lastIp ?? null,
    lastUserAgent: session.lastUserAgent ?? null,
    data: JSON.stringify(session.data ?? {}),
  };
  return Object.entries(fields).flatMap(([name, value]) => (value === null ? [] : [name, value]));
}

/** A hash as a record; throws (a plain Error naming the field) when any part of it cannot be read. */
function fromHash(hash: Record<string, string>): ServerSideSession {
  const required = (name: string) => {
    if (hash[name] === undefined) throw new Error(`missing ${name}`);
    return hash[name];
  };
  const optional = (name: string) => hash[name] ?? null;
  const date = (name: string) => {
    if (hash[name] === undefined) return null;
    const value = Number(hash[name]);
    if (hash[name] === '' || !Number.isFinite(value) || Number.isNaN(new Date(value).getTime()))
      throw new Error(`unreadable ${name}`);
    return new Date(value);
  };
  const json = (name: string) => {
    try {
      return JSON.parse(required(name)) as unknown;
    } catch {
      throw new Error(`unreadable ${name}: not JSON`);
    }
  };
  const clients = json('clients');
  if (!Array.isArray(clients)) throw new Error('unreadable clients: not a list');
  const data = json('data');
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    throw new Error('unreadable data: not an object');
  const created = date('created');
  const renewed = date('renewed');
  if (!created || !renewed) throw new Error('missing created or renewed');
  return {
    key: required('key'),
    sessionId: required('sessionId'),
    subjectId: optional('subjectId'),
    displayName: optional('displayName'),
    clients: clients.map((client: unknown) => {
      const { clientId, sid } = (client ?? {}) as Record<string, unknown>;
      if (typeof clientId !== 'string' || typeof sid !== 'string')
        throw new Error('unreadable clients: not {clientId, sid}');
      return { clientId, sid };
    }),
    created,
    renewed,
    expires: date('expires'),
    authTime: date('authTime'),
    loginIp: optional('loginIp'),
    loginUserAgent: optional('loginUserAgent'),
    lastIp: optional('lastIp'),
    lastUserAgent: optional('lastUserAgent'),
    data: data as Record<string, unknown>,
  };
}

/** A hash as a record, or SessionStoreError `corrupt` (the caller can delete it by key or session id). */
function decodeHash(hash: Record<string, string>, operation: string): ServerSideSession {
  try {
    return fromHash(hash);
  } catch (error) {
    throw new SessionStoreError(
      'corrupt',
      `${operation}: the stored session cannot be read (${(error as Error).message})`,
      {
        cause: error,
      },
    );
  }
}

function pairsToObject(flat: string[]): Record<string, string> {
  const object: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) object[flat[i]] = flat[i + 1];
  return object;
}
