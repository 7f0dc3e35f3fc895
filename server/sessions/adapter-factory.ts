/**
 * The adapter factory handed to oidc-provider: `Session` goes to the server-side session store when the feature is
 * on; every other model goes to the operational store.
 */
import type { Adapter } from 'oidc-provider';
import type { Sequelize } from 'sequelize';
import { createOperationalAdapter } from '../../stores/sequelize/operational-adapter.js';
import type { Clock } from '../../stores/session-store.js';
import { SessionAdapter, type SessionAdapterOptions } from './session-adapter.js';

export function createAdapterFactory(options: {
  sequelize: Sequelize;
  clock: Clock;
  sessions?: SessionAdapterOptions;
}): (modelName: string) => Adapter {
  const Operational = createOperationalAdapter(options.sequelize, options.clock);
  const sessionAdapter = options.sessions ? new SessionAdapter(options.sessions) : undefined;
  return (modelName: string) => (modelName === 'Session' && sessionAdapter ? sessionAdapter : new Operational(modelName));
}
