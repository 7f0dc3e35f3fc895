/**
 * Users, from the directory table (`gatehouse_users`): look-up by username for the login form, by subject for the
 * provider's findAccount, and password checks that take similar time whether or not the user exists.
 *
 * Reads by subject are cached for `directory.cacheMs` (1 s by default), so a change made by the CLI in another process
 * shows within that time; changes made through this object (the admin API) show at once. Sign-in always reads the
 * table. Disabled users are invisible here: they cannot sign in, and their tokens stop working.
 */
import type { Account, AccountClaims, KoaContextWithOIDC } from 'oidc-provider';
import type { SaveOutcome, SequelizeDirectory, UserInput, UserRecord } from '../../stores/sequelize/directory.js';
import {
  createDummyHash,
  describeHashing,
  hashPassword,
  needsRehash,
  verifyPassword,
  type PasswordHashing,
} from './passwords.js';

export type { UserRecord } from '../../stores/sequelize/directory.js';

/** Which claims each scope releases. */
export const SCOPE_CLAIMS: Record<string, string[]> = {
  openid: ['sub'],
  profile: [
    'name',
    'given_name',
    'family_name',
    'middle_name',
    'nickname',
    'preferred_username',
    'profile',
    'picture',
    'website',
    'gender',
    'birthdate',
    'zoneinfo',
    'locale',
    'updated_at',
  ],
  email: ['email', 'email_verified'],
  address: ['address'],
  phone: ['phone_number', 'phone_number_verified'],
};

/** The name to show for a user: the `name` claim, else the username, else the subject. */
export function displayNameOf(
  user: Pick<UserRecord, 'claims' | 'username' | 'subject'> | undefined,
  fallback = '',
): string {
  if (!user) return fallback;
  return typeof user.claims.name === 'string' && user.claims.name ? user.claims.name : user.username || user.subject;
}

interface CacheEntry {
  user: UserRecord | undefined;
  at: number;
}

export class AccountDirectory {
  readonly #directory: SequelizeDirectory;
  readonly #hashing: PasswordHashing;
  readonly #cacheMs: number;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #dummyHash: Promise<string>;

  constructor(directory: SequelizeDirectory, options: { hashing: PasswordHashing; cacheMs: number }) {
    this.#directory = directory;
    this.#hashing = options.hashing;
    this.#cacheMs = options.cacheMs;
    this.#dummyHash = createDummyHash(options.hashing);
    this.#dummyHash.catch(() => undefined); // reported by ready()
  }

  /**
   * Resolves once the dummy hash for unknown users exists, i.e. the configured algorithm works on this runtime;
   * rejects with a message naming `passwordHashing` otherwise (checked at start, before anything is served).
   */
  async ready(): Promise<void> {
    try {
      await this.#dummyHash;
    } catch (error) {
      throw new Error(
        `passwordHashing: ${describeHashing(this.#hashing)} does not work on this runtime (Node.js ${process.version}): ${(error as Error).message}` +
          (this.#hashing.algorithm === 'argon2id'
            ? '; argon2id needs node:crypto argon2 (Node.js >= 24.16 with OpenSSL 3.2 or later), or set passwordHashing.algorithm: scrypt'
            : ''),
      );
    }
  }

  /** The enabled user with this subject, or undefined (cached briefly). */
  async find(subject: string): Promise<UserRecord | undefined> {
    const cached = this.#cache.get(subject);
    if (cached && performance.now() - cached.at < this.#cacheMs) return cached.user;
    const user = await this.#directory.getUser(subject);
    return this.#remember(subject, user && !user.disabled ? user : undefined);
  }

  /**
   * The user as last read by `find` or `authenticate`, without a database read (for synchronous callers, such as
   * the session record's display name right after a sign-in). Undefined when never read or disabled.
   */
  bySubject(subject: string): UserRecord | undefined {
    return this.#cache.get(subject)?.user;
  }

  /** The user with this subject, enabled or not, straight from the table (admin API). */
  async get(subject: string): Promise<UserRecord | undefined> {
    return (await this.#directory.getUser(subject)) ?? undefined;
  }

  /** Enabled users, by subject, at most `limit` (the one-click sign-in buttons). */
  async listEnabled(limit: number): Promise<UserRecord[]> {
    return this.#directory.listUsers({ enabledOnly: true, limit });
  }

  /** The enabled user whose username and password match, or undefined. Unknown users cost one hash all the same. */
  async authenticate(username: string, password: string): Promise<UserRecord | undefined> {
    const { user, ok } = await this.checkPassword(username, password);
    return ok ? user : undefined;
  }

  /**
   * The enabled user with this username (if any) and whether the password is theirs. Unknown users, disabled ones and
   * users without a password are checked against the dummy hash, so every answer costs one hash at the configured
   * cost. `user` is for the caller's audit trail only: it must never change what the browser is told.
   */
  async checkPassword(username: string, password: string): Promise<{ user: UserRecord | undefined; ok: boolean }> {
    const user = (await this.#directory.findEnabledUserByUsername(username.trim())) ?? undefined;
    const ok = await verifyPassword(password, user?.passwordHash ?? (await this.#dummyHash));
    if (user) this.#remember(user.subject, user);
    return { user, ok: Boolean(user?.passwordHash) && ok };
  }

  /**
   * After a good sign-in: when the stored hash was made with another algorithm or cost than the configured ones
   * (an scrypt hash of an earlier version, say), store a new hash of the same password at the configured cost.
   * Resolves to whether it did.
   */
  async upgradeHash(user: UserRecord, password: string): Promise<boolean> {
    if (!user.passwordHash || !needsRehash(user.passwordHash, this.#hashing)) return false;
    // Only the hash, and only if it is the one just checked: `user` may be a stale copy (an administrator may have
    // disabled the user or reset the password while the sign-in ran), and writing it back would undo that.
    try {
      return await this.#directory.replacePasswordHash(
        user.subject,
        user.passwordHash,
        await this.hashPassword(password),
      );
    } finally {
      this.#cache.delete(user.subject);
    }
  }

  /** A PHC string of this password at the configured cost. */
  hashPassword(password: string): Promise<string> {
    return hashPassword(password, this.#hashing);
  }

  /** Creates or updates a user (UsernameTakenError when another enabled user has the username). */
  async save(user: UserInput): Promise<SaveOutcome> {
    try {
      return await this.#directory.saveUser(user);
    } finally {
      this.#cache.delete(user.subject);
    }
  }

  /** Deletes a user; false when there was none. */
  async remove(subject: string): Promise<boolean> {
    try {
      return await this.#directory.deleteUser(subject);
    } finally {
      this.#cache.delete(subject);
    }
  }

  /** oidc-provider's `findAccount`: enabled users only, so a disabled user's tokens and sessions stop working. */
  findAccount = async (_ctx: KoaContextWithOIDC, subject: string): Promise<Account | undefined> => {
    const user = await this.find(subject);
    if (!user) return undefined;
    return {
      accountId: user.subject,
      async claims(): Promise<AccountClaims> {
        return { ...user.claims, sub: user.subject };
      },
    };
  };

  #remember(subject: string, user: UserRecord | undefined): UserRecord | undefined {
    this.#cache.set(subject, { user, at: performance.now() });
    if (this.#cache.size > 10_000) this.#cache.delete(this.#cache.keys().next().value!);
    return user;
  }
}

/** A user as the admin API and the CLI show it: never the password hash. */
export interface PublicUser {
  subject: string;
  username: string;
  claims: Record<string, unknown>;
  roles: string[];
  disabled: boolean;
  source: string;
  hasPassword: boolean;
  created: string;
  updated: string;
}

export function publicUser(user: UserRecord): PublicUser {
  return {
    subject: user.subject,
    username: user.username,
    claims: user.claims,
    roles: user.roles,
    disabled: user.disabled,
    source: user.source,
    hasPassword: user.passwordHash !== null,
    created: user.created.toISOString(),
    updated: user.updated.toISOString(),
  };
}
