/**
 * Resolves `serverSideSessions.store` into a SessionStore: a module path (default or named export), a class, a
 * factory or an instance; the built-in SequelizeSessionStore when unset. Before serving, the store is checked for
 * every contract method, and a store missing any is refused with their names.
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  SESSION_STORE_METHODS,
  type SessionStore,
  type SessionStoreContext,
} from '../../stores/session-store.js';
import { SequelizeSessionStore } from '../../stores/sequelize/session-store.js';

export class SessionStoreConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SessionStoreConfigError';
  }
}

function isClass(value: Function): boolean {
  if (/^class[\s{]/.test(Function.prototype.toString.call(value))) return true;
  const proto = value.prototype as Record<string, unknown> | undefined;
  return !!proto && SESSION_STORE_METHODS.some((method) => typeof proto[method] === 'function');
}

async function importStoreModule(path: string): Promise<unknown> {
  const target = path.startsWith('.') || isAbsolute(path) ? pathToFileURL(resolve(path)).href : path;
  let module: Record<string, unknown>;
  try {
    module = await import(target);
  } catch (error) {
    throw new SessionStoreConfigError(`serverSideSessions.store: cannot load module "${path}": ${(error as Error).message}`);
  }
  if (module.default) return module.default;
  const named = Object.values(module).filter((value) => typeof value === 'function');
  if (named.length === 1) return named[0];
  throw new SessionStoreConfigError(
    `serverSideSessions.store: module "${path}" must have a default export or exactly one exported class/factory`,
  );
}

export function missingStoreMethods(store: unknown): string[] {
  if (!store || typeof store !== 'object') return [...SESSION_STORE_METHODS];
  return SESSION_STORE_METHODS.filter((method) => typeof (store as Record<string, unknown>)[method] !== 'function');
}

export async function resolveSessionStore(option: unknown, context: SessionStoreContext): Promise<SessionStore> {
  let candidate: unknown = option ?? SequelizeSessionStore;
  const described = typeof option === 'string' ? `module "${option}"` : typeof option === 'function' ? `"${option.name || 'anonymous'}"` : 'the given store';
  if (typeof candidate === 'string') candidate = await importStoreModule(candidate);
  let store: unknown;
  if (typeof candidate === 'function') {
    store = isClass(candidate) ? new (candidate as new (c: SessionStoreContext) => unknown)(context) : await (candidate as (c: SessionStoreContext) => unknown)(context);
  } else {
    store = candidate;
  }
  const missing = missingStoreMethods(store);
  if (missing.length) {
    throw new SessionStoreConfigError(
      `serverSideSessions.store: ${described} does not implement the session store contract; missing method${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`,
    );
  }
  return store as SessionStore;
}
