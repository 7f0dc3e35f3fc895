/**
 * RedisSessionStore: an example of a custom session store class, built on ioredis.
 *
 * Layout under the key prefix `P` (default `gatehouse:`):
 *   P session:<sessionId>   hash, one field per record field (dates as epoch ms; clients and data as JSON)
 *   P key:<key>             string -> sessionId
 *   P subject:<subjectId>   set of sessionIds
 *   P expires               sorted set, score = expires (ms); sessions with no expiry are not in it
 *   P created               sorted set, score = created (ms): every session
 *
 * Every write is one Lua script, so it is atomic: create refuses a taken key or session id, update moves the indexes,
 * and getAndRemoveExpired pops due members and deletes their records in one step, so two instances never get the same
 * session. The scripts build key names from the prefix: this example targets a single Redis node, not Redis Cluster.
 *
 * querySessions loads the candidate set (one subject's sessions, or every session) and filters and pages it in memory.
 * Fine for thousands of sessions, not built for millions: use the SQL store for that.
 */
import { Redis } from 'ioredis';
import { pageInMemory, compareForward } from '../../stores/paging-token.js';
import {
  SessionStoreError,
  assertFilter,
  type Clock,
  type ServerSideSession,
  type SessionClient,
  type SessionFilter,
  type SessionQuery,
  type SessionQueryResult,
  type SessionStore,
  type SessionStoreContext,
} from '../../stores/session-store.js';

export interface RedisSessionStoreOptions {
  /** Default: env GATEHOUSE_REDIS_URL, else redis://127.0.0.1:6379. */
  redisUrl?: string;
  /** Prepended to every key. Default `gatehouse:`. */
  keyPrefix?: string;
}

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
  /** ARGV: prefix, now (ms), count. Returns each removed session's hash as a flat field/value list. */
  gatehouseSessionPopExpired: `${REMOVE}
local p = ARGV[1]
local due = redis.call('ZRANGEBYSCORE', p .. 'expires', '-inf', '(' .. ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, sid in ipairs(due) do
  local fields = redis.call('HGETALL', p .. 'session:' .. sid)
  if remove(p, sid) then table.insert(out, fields) else redis.call('ZREM', p .. 'expires', sid) end
end
return out`,
} as const;

type ScriptArg = string | number;
type ScriptCommands = { [name in keyof typeof SCRIPTS]: (...args: ScriptArg[]) => Promise<unknown> };

const PIPELINE_CHUNK = 500;

export class RedisSessionStore implements SessionStore {
  readonly #redis: Redis & ScriptCommands;
  readonly #clock: Clock;
  readonly #prefix: string;

  constructor(context: SessionStoreContext & RedisSessionStoreOptions) {
    this.#clock = context.clock;
    this.#prefix = context.keyPrefix ?? 'gatehouse:';
    const url = context.redisUrl ?? process.env.GATEHOUSE_REDIS_URL ?? 'redis://127.0.0.1:6379';
    this.#redis = new Redis(url, { maxRetriesPerRequest: 2 }) as Redis & ScriptCommands;
    this.#redis.on('error', (error: Error) => context.logger.warn({ err: error }, 'redis session store connection error'));
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
      const record = await this.#load(sessionId);
      // The key may have rotated between the two reads.
      return record && record.key === key ? record : null;
    });
  }

  async getBySessionId(sessionId: string): Promise<ServerSideSession | null> {
    return this.#run('getBySessionId', () => this.#load(sessionId));
  }

  async create(session: ServerSideSession): Promise<void> {
    const args = this.#writeArgs(session);
    const outcome = await this.#run('create', () => this.#redis.gatehouseSessionCreate(...args));
    if (outcome === 'duplicate') throw new SessionStoreError('duplicate', 'create: a session with this key or session id already exists');
  }

  async update(session: ServerSideSession): Promise<void> {
    const args = this.#writeArgs(session);
    const outcome = await this.#run('update', () => this.#redis.gatehouseSessionUpdate(...args));
    if (outcome === 'not_found') throw new SessionStoreError('not_found', 'update: no session with this session id');
    if (outcome === 'duplicate') throw new SessionStoreError('duplicate', 'update: another session already has this key');
  }

  async delete(key: string): Promise<void> {
    await this.#run('delete', () => this.#redis.gatehouseSessionDelete(this.#prefix, key));
  }

  async getSessions(filter: SessionFilter): Promise<ServerSideSession[]> {
    assertFilter(filter);
    return this.#run('getSessions', async () => {
      const candidates = filter.sessionId
        ? [filter.sessionId]
        : await this.#redis.smembers(`${this.#prefix}subject:${filter.subjectId}`);
      const records = await this.#loadMany(candidates);
      return records.filter((record) => !filter.subjectId || record.subjectId === filter.subjectId).sort(compareForward);
    });
  }

  async deleteSessions(filter: SessionFilter): Promise<number> {
    assertFilter(filter);
    const removed = await this.#run('deleteSessions', () =>
      this.#redis.gatehouseSessionDeleteMatching(this.#prefix, filter.subjectId || '', filter.sessionId || ''),
    );
    return Number(removed);
  }

  async getAndRemoveExpired(count: number): Promise<ServerSideSession[]> {
    if (!Number.isInteger(count) || count < 1) {
      throw new SessionStoreError('invalid_argument', `count must be a positive integer, got ${String(count)}`);
    }
    const now = this.#clock.now().getTime();
    return this.#run('getAndRemoveExpired', async () => {
      const popped = (await this.#redis.gatehouseSessionPopExpired(this.#prefix, now, count)) as string[][];
      return popped.map((flat) => fromHash(pairsToObject(flat)));
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

  async #load(sessionId: string): Promise<ServerSideSession | null> {
    const hash = await this.#redis.hgetall(`${this.#prefix}session:${sessionId}`);
    return Object.keys(hash).length ? fromHash(hash) : null;
  }

  async #loadMany(sessionIds: string[]): Promise<ServerSideSession[]> {
    const records: ServerSideSession[] = [];
    for (let start = 0; start < sessionIds.length; start += PIPELINE_CHUNK) {
      const pipeline = this.#redis.pipeline();
      for (const sessionId of sessionIds.slice(start, start + PIPELINE_CHUNK)) pipeline.hgetall(`${this.#prefix}session:${sessionId}`);
      for (const [error, hash] of (await pipeline.exec()) ?? []) {
        if (error) throw error;
        const fields = hash as Record<string, string>;
        if (Object.keys(fields).length) records.push(fromHash(fields));
      }
    }
    return records;
  }

  #writeArgs(session: ServerSideSession): ScriptArg[] {
    if (!session?.key || !session.sessionId) throw new SessionStoreError('invalid_argument', 'key and sessionId are required');
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
      throw new SessionStoreError('storage', `${operation}: redis error: ${message}`, { cause: error });
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

function fromHash(hash: Record<string, string>): ServerSideSession {
  const optional = (name: string) => hash[name] ?? null;
  const date = (name: string) => (hash[name] === undefined ? null : new Date(Number(hash[name])));
  return {
    key: hash.key,
    sessionId: hash.sessionId,
    subjectId: optional('subjectId'),
    displayName: optional('displayName'),
    clients: JSON.parse(hash.clients) as SessionClient[],
    created: date('created')!,
    renewed: date('renewed')!,
    expires: date('expires'),
    authTime: date('authTime'),
    loginIp: optional('loginIp'),
    loginUserAgent: optional('loginUserAgent'),
    lastIp: optional('lastIp'),
    lastUserAgent: optional('lastUserAgent'),
    data: JSON.parse(hash.data) as Record<string, unknown>,
  };
}

function pairsToObject(flat: string[]): Record<string, string> {
  const object: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) object[flat[i]] = flat[i + 1];
  return object;
}
