/**
 * The Redis peer's oidc-provider adapter, written for the benchmark from the description of the one oidc-provider's
 * documentation used to show (example/adapters/redis.js): what an oidc-provider user deploys on Redis.
 *
 * - One key per model instance, `<Model>:<id>`, with the instance's lifetime as its EXPIRE. Models the provider
 *   consumes (codes, refresh tokens, device codes, CIBA requests) are hashes (`payload`, and `consumed` once used), so
 *   `consume` is one HSET; the others are plain strings of JSON.
 * - A list per grant, `grant:<grantId>`, of the keys of its tokens and codes (RPUSH), living as long as the longest of
 *   them; `revokeByGrantId` deletes every key on it and the list.
 * - Pointer keys `uid:<uid>` (sessions) and `userCode:<code>` (device codes) holding the id, with the same EXPIRE.
 * Each upsert is one MULTI (one round trip); a look-up by uid or user code is two.
 */
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { Redis } from 'ioredis';

const GRANTABLE = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);
const CONSUMABLE = new Set(['AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);

const grantKey = (grantId: string) => `grant:${grantId}`;
const uidKey = (uid: string) => `uid:${uid}`;
const userCodeKey = (userCode: string) => `userCode:${userCode}`;

/** An adapter class on this Redis connection, for oidc-provider's `adapter` option. */
export function redisAdapter(client: Redis): new (name: string) => Adapter {
  return class RedisAdapter implements Adapter {
    constructor(readonly name: string) {}

    key(id: string): string {
      return `${this.name}:${id}`;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
      const key = this.key(id);
      const multi = client.multi();
      if (CONSUMABLE.has(this.name)) {
        multi.hset(key, 'payload', JSON.stringify(payload));
        if (expiresIn) multi.expire(key, expiresIn);
      } else if (expiresIn) {
        multi.set(key, JSON.stringify(payload), 'EX', expiresIn);
      } else {
        multi.set(key, JSON.stringify(payload));
      }
      if (GRANTABLE.has(this.name) && payload.grantId) {
        const list = grantKey(payload.grantId);
        multi.rpush(list, key);
        if (expiresIn) {
          // The list lives as long as the longest-lived key on it: set a lifetime if it has none, extend a shorter one.
          multi.expire(list, expiresIn, 'NX');
          multi.expire(list, expiresIn, 'GT');
        }
      }
      for (const pointer of [payload.uid && uidKey(payload.uid), payload.userCode && userCodeKey(payload.userCode)]) {
        if (!pointer) continue;
        if (expiresIn) multi.set(pointer, id, 'EX', expiresIn);
        else multi.set(pointer, id);
      }
      await multi.exec();
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      const key = this.key(id);
      if (CONSUMABLE.has(this.name)) {
        const { payload, consumed } = await client.hgetall(key);
        if (!payload) return undefined;
        return { ...(JSON.parse(payload) as AdapterPayload), ...(consumed ? { consumed: Number(consumed) } : {}) };
      }
      const data = await client.get(key);
      return data ? (JSON.parse(data) as AdapterPayload) : undefined;
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      const id = await client.get(uidKey(uid));
      return id ? this.find(id) : undefined;
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      const id = await client.get(userCodeKey(userCode));
      return id ? this.find(id) : undefined;
    }

    async consume(id: string): Promise<void> {
      await client.hset(this.key(id), 'consumed', Math.floor(Date.now() / 1000));
    }

    async destroy(id: string): Promise<void> {
      await client.del(this.key(id));
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      const list = grantKey(grantId);
      const keys = await client.lrange(list, 0, -1);
      await client.del(...keys, list);
    }
  };
}
