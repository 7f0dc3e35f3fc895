/**
 * Resolves `serverSideSessions.store` into a SessionStore: a module path (its default export, or its only named export),
 * a class, a factory or an instance; the built-in SequelizeSessionStore when unset. The store is built with the
 * context (clock, logger, sequelize, and `serverSideSessions.storeOptions` as `options`) and checked for every contract
 * method before serving. Anything that goes wrong on the way is a SessionStoreConfigError naming
 * `serverSideSessions.store` (the CLI exits with code 2).
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SESSION_STORE_METHODS, type SessionStore, type SessionStoreContext } from '../../stores/session-store.js';
import { SequelizeSessionStore } from '../../stores/sequelize/session-store.js';
import { SessionStoreConfigError } from './store-config-error.js';

export { SessionStoreConfigError } from './store-config-error.js';

/** The store in use, and how to name it in the start-up log (never its options: they may hold secrets). */
export interface ResolvedSessionStore {
  store: SessionStore;
  /** The class (or factory) name, e.g. `SequelizeSessionStore`. */
  name: string;
  /** The module it came from, when configured by path. */
  module?: string;
}

function isClass(value: { prototype?: unknown }): boolean {
  if (/^class[\s{]/.test(Function.prototype.toString.call(value))) return true;
  const proto = value.prototype as Record<string, unknown> | undefined;
  return !!proto && SESSION_STORE_METHODS.some((method) => typeof proto[method] === 'function');
}

/** Something a store can be built from (class or factory) or a store itself. */
function isStoreLike(value: unknown): boolean {
  return typeof value === 'function' || missingStoreMethods(value).length === 0;
}

/**
 * The module's default export, else its only named export. A CommonJS module's `default` is its whole `exports`
 * object: when that is not a store itself, its named exports are what counts.
 */
function pickExport(path: string, module: Record<string, unknown>): unknown {
  // (`module.exports` is how Node 23+ names a CommonJS module's whole exports object among its named exports.)
  const named = Object.keys(module).filter(
    (name) => !['default', '__esModule', 'module.exports'].includes(name) && module[name] !== undefined,
  );
  if (module.default !== undefined && (isStoreLike(module.default) || named.length === 0)) return module.default;
  if (named.length === 1) return module[named[0]];
  throw new SessionStoreConfigError(
    named.length === 0
      ? `serverSideSessions.store: module "${path}" exports no store: give it a default export (the class, a factory or an instance)`
      : `serverSideSessions.store: module "${path}" has no default export and several named exports (${named.join(', ')}): export the store as default, or export only it`,
  );
}

async function importStoreModule(path: string): Promise<unknown> {
  const target = path.startsWith('.') || isAbsolute(path) ? pathToFileURL(resolve(path)).href : path;
  let module: Record<string, unknown>;
  try {
    module = await import(target);
  } catch (error) {
    throw new SessionStoreConfigError(
      `serverSideSessions.store: cannot load module "${path}": ${(error as Error).message}`,
      { cause: error },
    );
  }
  return pickExport(path, module);
}

export function missingStoreMethods(store: unknown): string[] {
  if (!store || typeof store !== 'object') return [...SESSION_STORE_METHODS];
  return SESSION_STORE_METHODS.filter((method) => typeof (store as Record<string, unknown>)[method] !== 'function');
}

export async function resolveSessionStore(
  option: unknown,
  context: SessionStoreContext,
): Promise<ResolvedSessionStore> {
  const module = typeof option === 'string' ? option : undefined;
  const candidate: unknown = module !== undefined ? await importStoreModule(module) : (option ?? SequelizeSessionStore);
  const label =
    typeof candidate === 'function'
      ? candidate.name || 'anonymous'
      : (candidate as object | null)?.constructor?.name || 'the given store';
  const described = module !== undefined ? `"${label}" from module "${module}"` : `"${label}"`;
  let store: unknown;
  try {
    if (typeof candidate !== 'function') store = candidate;
    else if (isClass(candidate)) store = new (candidate as new (c: SessionStoreContext) => unknown)(context);
    else store = await (candidate as (c: SessionStoreContext) => unknown)(context);
  } catch (error) {
    throw new SessionStoreConfigError(
      `serverSideSessions.store: building ${described} failed: ${(error as Error)?.message ?? String(error)}`,
      { cause: error },
    );
  }
  const missing = missingStoreMethods(store);
  if (missing.length) {
    throw new SessionStoreConfigError(
      `serverSideSessions.store: ${described} does not implement the session store contract; missing method${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`,
    );
  }
  const name =
    (store as object).constructor?.name && (store as object).constructor !== Object
      ? (store as object).constructor.name
      : label;
  return { store: store as SessionStore, name, ...(module !== undefined ? { module } : {}) };
}
