/**
 * `gatehouse keys rotate|list`: the signing keys stored in the configured database. Running servers follow a rotation
 * within `keys.refreshMs` (server/provider/key-ring.ts).
 */
import type { GatehouseConfig } from '../../config/schema.js';
import { systemClock } from '../../stores/clock.js';
import { listSigningKeys, longestTokenLifetime, rotateSigningKeys } from '../provider/keys.js';
import { COMMON, COMMON_HELP, directoryGroup, type DirectorySubcommand } from './directory-group.js';
import { CommandError } from './errors.js';
import { formatTable, printJson } from './output.js';

export const KEYS_USAGE = `Usage:
  gatehouse keys rotate
  gatehouse keys list

${COMMON_HELP}

  rotate   stage a new RS256 + ES256 pair: published at once (pending), signing after keys.activationDelay
           (1 h: longer than relying parties cache the JWKS); the keys it replaces stay published until every
           token they signed has expired (its activation + the longest token lifetime). Running servers follow
           the stored keys within keys.refreshMs: no restart.
  list     the stored signing keys and their stage: pending (published, signs from ...), active (signing),
           retiring (published until ...), retired (no longer published; dropped at the next rotation)`;

function refuseConfiguredKeys(config: GatehouseConfig): void {
  if (config.keys.jwks)
    throw new CommandError('keys.jwks is set in the configuration: rotate the keys there (put the new key first)');
}

const rotate: DirectorySubcommand = {
  options: [...COMMON, 'json'],
  async run({ sequelize, config, json }) {
    refuseConfiguredKeys(config);
    const result = await rotateSigningKeys(sequelize, {
      activationDelaySeconds: config.keys.activationDelay,
      retireAfterSeconds: longestTokenLifetime(config.ttl, config.apis),
      clock: systemClock,
    });
    if (json) return printJson(result);
    const when = result.added[0]?.activateAt;
    console.log(`New signing keys: ${result.added.map((key) => `${key.kid} (${key.alg})`).join(', ')}.`);
    if (when && result.added[0].status === 'pending') {
      console.log(
        `Published now; they sign from ${when.toISOString()} (keys.activationDelay ${config.keys.activationDelay} s).`,
      );
    }
    for (const key of result.retiring)
      console.log(`Signs until then, published until ${key.retireAfter!.toISOString()}: ${key.kid} (${key.alg})`);
    if (result.dropped.length) console.log(`Dropped (past their retire-after time): ${result.dropped.join(', ')}`);
    console.log(`Running servers follow within keys.refreshMs (${config.keys.refreshMs} ms): no restart.`);
  },
};

const list: DirectorySubcommand = {
  options: [...COMMON, 'json'],
  async run({ sequelize, config, json }) {
    refuseConfiguredKeys(config);
    const keys = (await listSigningKeys(sequelize, systemClock)) ?? [];
    if (json) return printJson({ keys });
    if (keys.length === 0) return console.log('No signing keys yet: the first start generates them.');
    console.log(
      formatTable([
        ['KID', 'ALG', 'STATUS', 'SIGNS FROM', 'PUBLISHED UNTIL'],
        ...keys.map((key) => [
          key.kid,
          key.alg,
          key.status,
          key.activateAt?.toISOString() ?? '-',
          key.retireAfter?.toISOString() ?? '-',
        ]),
      ]),
    );
  },
};

export const keys = directoryGroup({ name: 'keys', usage: KEYS_USAGE, subcommands: { rotate, list } });
