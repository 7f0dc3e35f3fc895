/**
 * The defaults of every option, read off the options table (./schema.ts, where each one is declared with its meaning),
 * and the presets. Nothing else in the code repeats a default: use `??` against these values, never `||`.
 */
import { configSchema } from './schema.js';

export { DAY, HOUR, MINUTE } from './schema.js';

/** Every option's default (options without one are absent). */
export const defaults = configSchema.parse({});

export type Defaults = typeof defaults;

/**
 * Presets (`preset:` in a config file, env GATEHOUSE_PRESET): values applied under the configuration, so anything set
 * explicitly (file, environment, createServer options) still wins. `clientDefaults` apply to every configured client.
 */
export const presets = {
  testing: {
    mode: 'testing',
    database: { url: 'sqlite::memory:' },
    // Cheap for whichever algorithm is chosen: a test suite signs in hundreds of times.
    passwordHashing: { memory: 1024, passes: 1, log2N: 10 },
    // Protection stays on (a suite can test its own negative cases against it), but a lockout lasts seconds.
    login: { lockout: 1, maxLockout: 5 },
    backchannelLogout: { allowPrivateNetworks: true },
    serverSideSessions: { enabled: true },
    clientDefaults: { skipConsent: true },
  },
} as const;

export type PresetName = keyof typeof presets;
