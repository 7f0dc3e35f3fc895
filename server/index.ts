/** The package root (`import { createServer } from 'gatehouse-idp'`): the programmatic API. */
import './node-version.js'; // first: an unsupported Node is refused before anything else loads
export { createServer, type CreateServerOptions, type GatehouseServer } from './create-server.js';
export { loadConfig, validateConfig, ConfigError } from '../config/load.js';
export type { GatehouseConfig, GatehouseConfigInput, AccountConfig, ClientConfig } from '../config/schema.js';
export { defaults } from '../config/defaults.js';
export { hashPassword, verifyPassword } from './provider/passwords.js';
export type { RemoveSessionsOptions, RemoveSessionsResult } from './sessions/session-service.js';
export * from '../stores/session-store.js';
export { MemorySessionStore } from '../stores/memory/session-store.js';
export { SequelizeSessionStore } from '../stores/sequelize/session-store.js';
export { ManualClock, systemClock } from '../stores/clock.js';
