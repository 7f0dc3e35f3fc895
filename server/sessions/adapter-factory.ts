/**
 * The adapter factory handed to oidc-provider: `Session` goes to the server-side session store when the feature is
 * on; every other model goes to the operational store.
 */
import type { Adapter } from 'oidc-provider';
import type { Sequelize } from 'sequelize';
import { createOperationalAdapter } from '../../stores/sequelize/operational-adapter.js';
import type { Clock } from '../../stores/session-store.js';
import { SessionAdapter, type SessionAdapterOptions } from './session-adapter.js';
import { classifyAdapterError } from './store-unavailable.js';

const ADAPTER_METHODS = [
  'upsert',
  'insertIfAbsent',
  'find',
  'findByUid',
  'findByUserCode',
  'consume',
  'destroy',
  'revokeByGrantId',
] as const;

/** Calls that store what they are given run whatever the id (a skipped insertIfAbsent would read "already there"). */
const STORING = new Set<string>(['upsert', 'insertIfAbsent']);

/** Identifiers the provider generates never hold control characters; one that does comes from hostile input. */
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Guards every adapter call: a look-up by an identifier with control characters is a miss (a NUL must never reach
 * SQLite, where it would cut the statement short), and a call that fails because the database (or the session store's
 * storage: store error `unavailable`) is unreachable fails as a 503.
 */
export function guarded(adapter: Adapter): Adapter {
  const wrapped = Object.create(adapter) as Record<string, unknown>;
  for (const method of ADAPTER_METHODS) {
    const original = (adapter as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[method];
    if (typeof original !== 'function') continue;
    wrapped[method] = (...args: unknown[]) => {
      const hostileId = typeof args[0] === 'string' && CONTROL.test(args[0]);
      if (hostileId && !STORING.has(method)) return Promise.resolve(undefined);
      return original.apply(adapter, args).catch(classifyAdapterError);
    };
  }
  return wrapped as unknown as Adapter;
}

export function createAdapterFactory(options: {
  sequelize: Sequelize;
  clock: Clock;
  sessions?: SessionAdapterOptions;
}): (modelName: string) => Adapter {
  const Operational = createOperationalAdapter(options.sequelize, options.clock);
  const sessionAdapter = options.sessions ? new SessionAdapter(options.sessions) : undefined;
  const sessions = sessionAdapter && guarded(sessionAdapter);
  return (modelName: string) => (modelName === 'Session' && sessions ? sessions : guarded(new Operational(modelName)));
}
