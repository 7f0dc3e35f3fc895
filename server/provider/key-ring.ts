/**
 * A running server follows the stored signing keys (keys.ts): it reads them every `keys.refreshMs` and at each stage
 * change, and hands the provider exactly the keys of the current stage. So `gatehouse keys rotate` needs no restart,
 * and every instance on the database publishes a new key before any instance signs with it.
 *
 * How the provider is given new keys. oidc-provider reads `jwks` once, when it is constructed: it builds a keystore it
 * signs and verifies with (ID tokens and logout tokens sign with the first key of their algorithm that may sign;
 * id_token_hint verifies against any key with its kid) and the JWKS its `/jwks` endpoint serves. Its maintainer's
 * answer to rotation is a (rolling) restart. Three ways were weighed:
 * - Rebuilding the provider on every change: only public API, but a Provider is wired into a dozen consumers
 *   (interactions, session service, back-channel delivery, admin API, its middleware and event listeners), which would
 *   all have to follow a replaced instance, and any `provider.use`/`provider.on` added later would silently miss the
 *   next rebuild.
 * - ExternalSigningKey (`features.externalSigningSupport`): a public export, but an experimental feature whose key
 *   objects are fixed at construction, so the set of keys could only change through a fixed number of "slots", and
 *   `/jwks` would have to be served beside the provider.
 * - Changing the keys in the provider's own keystore, in place (chosen): the provider selects keys from it at every
 *   use (`selectForSign({ alg })` takes the first key allowed to sign; `selectForVerify({ alg, kid })`) and serves
 *   `/jwks` from the JWKS kept beside it, so replacing both together is all a new stage needs. They are reached through
 *   the provider's internal accessor (`lib/helpers/weak_cache.js`, the package has no exports map), checked when the
 *   server starts: an oidc-provider version that keeps them elsewhere fails the start with a clear message instead of
 *   silently never rotating (test/key-rotation.test.ts covers it).
 * Keys that must not sign (pending, retiring) carry `key_ops: ["verify"]` in the keystore; the published JWKS has the
 * public parts only.
 */
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import type { Sequelize } from 'sequelize';
import { getSecret } from '../../stores/sequelize/secrets.js';
import type { Clock } from '../../stores/session-store.js';
import { keyStages, nextStageChange, providerKeys, type Jwk, type StoredJwks } from './keys.js';

/** The provider's internals this module changes (oidc-provider 9: `instance(provider)`). */
interface ProviderInternals {
  keystore: { clear(): void; add(key: Jwk): void };
  jwks: { keys: Jwk[] };
}

// A specifier TypeScript does not resolve (the file has no types); Node resolves it in the installed package.
const WEAK_CACHE: string = 'oidc-provider/lib/helpers/weak_cache.js';
const { default: internalsOf } = (await import(WEAK_CACHE)) as {
  default: (provider: object) => ProviderInternals | undefined;
};

const PUBLIC_MEMBERS = ['kty', 'use', 'kid', 'alg', 'crv', 'e', 'n', 'x', 'y'] as const;

function publicJwk(key: Jwk): Jwk {
  return Object.fromEntries(
    PUBLIC_MEMBERS.filter((member) => key[member] !== undefined).map((member) => [member, key[member]]),
  );
}

export class SigningKeyRing {
  readonly #sequelize: Sequelize;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #refreshMs: number;
  #internals: ProviderInternals | undefined;
  #stored: StoredJwks;
  /** What the provider holds now: kid:status of every key, to apply only changes. */
  #applied = '';
  #timer: NodeJS.Timeout | undefined;
  #stopped = true;

  constructor(deps: { sequelize: Sequelize; clock: Clock; logger: Logger; refreshMs: number; stored: StoredJwks }) {
    this.#sequelize = deps.sequelize;
    this.#clock = deps.clock;
    this.#logger = deps.logger;
    this.#refreshMs = deps.refreshMs;
    this.#stored = deps.stored;
  }

  /** Takes over the keys of a provider built with `providerKeys(stored)`; throws when its internals are not where expected. */
  attach(provider: Provider): void {
    const internals = internalsOf(provider);
    if (
      typeof internals?.keystore?.clear !== 'function' ||
      typeof internals.keystore.add !== 'function' ||
      !Array.isArray(internals.jwks?.keys)
    ) {
      throw new Error(
        'this oidc-provider version keeps its keystore elsewhere than Gatehouse expects (lib/helpers/weak_cache.js): signing keys could not follow rotations; use the oidc-provider version in package-lock.json, or set keys.jwks',
      );
    }
    this.#internals = internals;
    this.#apply();
  }

  /** Follows the stored keys: a read every refreshMs, and the provider's keys changed at each stage boundary. */
  start(): void {
    this.#stopped = false;
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Reads the stored keys now and applies their current stage (a failed read keeps the last keys read). */
  async refresh(): Promise<void> {
    try {
      const raw = await getSecret(this.#sequelize, 'jwks');
      if (raw !== null) this.#stored = JSON.parse(raw) as StoredJwks;
    } catch (error) {
      this.#logger.debug(
        { err: { message: (error as Error).message } },
        'reading the signing keys failed; keeping the last ones read',
      );
    }
    this.#apply();
  }

  /** The stages as this server applies them now. */
  stages() {
    return keyStages(this.#stored, this.#clock.now());
  }

  #apply(): void {
    if (!this.#internals) return;
    const now = this.#clock.now();
    const stages = keyStages(this.#stored, now);
    const signature = stages.map((info) => `${info.kid}:${info.status}`).join(',');
    if (signature === this.#applied) return;
    const keys = providerKeys(this.#stored, now);
    // Both at once, in one synchronous step: no request sees a keystore and a JWKS of different stages.
    this.#internals.keystore.clear();
    for (const key of keys) this.#internals.keystore.add(structuredClone(key));
    this.#internals.jwks = { keys: keys.map(publicJwk) };
    const first = this.#applied === '';
    this.#applied = signature;
    const summary = stages
      .filter((info) => info.status !== 'retired')
      .map(({ kid, alg, status }) => ({ kid, alg, status }));
    if (first) this.#logger.debug({ keys: summary }, 'signing keys applied');
    else this.#logger.info({ event: 'keys.changed', keys: summary }, 'signing keys changed (rotation stage)');
  }

  #schedule(): void {
    if (this.#stopped) return;
    const now = this.#clock.now();
    const change = nextStageChange(this.#stored, now);
    const delay = Math.min(this.#refreshMs, change ? Math.max(0, change.getTime() - now.getTime()) + 5 : Infinity);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.refresh().finally(() => this.#schedule());
    }, delay);
    this.#timer.unref();
  }
}
