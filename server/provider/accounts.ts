/**
 * Accounts from configuration: look-up by username for the login form, by subject for the provider's findAccount,
 * and password checks that take similar time whether or not the user exists.
 */
import type { Account, AccountClaims, KoaContextWithOIDC } from 'oidc-provider';
import type { AccountConfig } from '../../config/schema.js';
import { createDummyHash, verifyPassword, type ScryptParams } from './passwords.js';

/** Which claims each scope releases. */
export const SCOPE_CLAIMS: Record<string, string[]> = {
  openid: ['sub'],
  profile: ['name', 'given_name', 'family_name', 'middle_name', 'nickname', 'preferred_username', 'profile', 'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at'],
  email: ['email', 'email_verified'],
  address: ['address'],
  phone: ['phone_number', 'phone_number_verified'],
};

export class AccountDirectory {
  readonly #bySubject = new Map<string, AccountConfig>();
  readonly #byUsername = new Map<string, AccountConfig>();
  readonly #dummyHash: Promise<string>;

  constructor(accounts: AccountConfig[], hashing: ScryptParams) {
    for (const account of accounts) {
      this.#bySubject.set(account.subject, account);
      this.#byUsername.set((account.username ?? account.subject).toLowerCase(), account);
    }
    this.#dummyHash = createDummyHash(hashing);
  }

  get all(): AccountConfig[] {
    return [...this.#bySubject.values()];
  }

  bySubject(subject: string): AccountConfig | undefined {
    return this.#bySubject.get(subject);
  }

  /** The account whose username and password match, or undefined. Unknown users cost one hash all the same. */
  async authenticate(username: string, password: string): Promise<AccountConfig | undefined> {
    const account = this.#byUsername.get(username.trim().toLowerCase());
    const ok = await verifyPassword(password, account?.passwordHash ?? (await this.#dummyHash));
    return account && ok ? account : undefined;
  }

  /** oidc-provider's `findAccount`. */
  findAccount = async (_ctx: KoaContextWithOIDC, subject: string): Promise<Account | undefined> => {
    const account = this.#bySubject.get(subject);
    if (!account) return undefined;
    return {
      accountId: account.subject,
      async claims(): Promise<AccountClaims> {
        return { ...(account.claims as Record<string, unknown>), sub: account.subject };
      },
    };
  };
}
