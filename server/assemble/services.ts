/**
 * createServer's services step: what works beside the provider. Back-channel logout delivery, the session service,
 * sign-in protection, the expiry sweeper and user offboarding; and the provider middleware that needs them (sessions
 * slide on client activity, the device-code entry gate).
 */
import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Sequelize } from 'sequelize';
import type { GatehouseConfig } from '../../config/schema.js';
import { BackchannelOutbox } from '../../stores/sequelize/backchannel-outbox.js';
import type { Clock } from '../../stores/session-store.js';
import { loggableMessage } from '../http/errors.js';
import { LoginThrottle, loginNameKey } from '../provider/login-throttle.js';
import { UserOffboarding } from '../provider/user-offboarding.js';
import { deviceCodeEntry } from '../routes/device-pages.js';
import { BackchannelDelivery } from '../sessions/backchannel-delivery.js';
import { slideOnClientActivity } from '../sessions/coordination.js';
import { ExpirySweeper } from '../sessions/expiry-sweeper.js';
import { SessionService } from '../sessions/session-service.js';
import type { ProviderParts } from './provider.js';
import type { Storage } from './storage.js';

export interface Services {
  delivery: BackchannelDelivery;
  sessions: SessionService;
  throttle: LoginThrottle;
  sweeper: ExpirySweeper;
  offboarding: UserOffboarding;
}

/** Builds the services (nothing runs yet: see startBackgroundWork). */
export async function createServices(
  config: GatehouseConfig,
  storage: Storage,
  parts: ProviderParts,
  deps: { clock: Clock; sequelize: Sequelize; logger: Logger; events: EventEmitter },
): Promise<Services> {
  const { clock, sequelize, logger, events } = deps;
  const { provider, apis } = parts;
  const { clients, sessionStore: store } = storage;
  const delivery = new BackchannelDelivery({
    provider,
    outbox: new BackchannelOutbox(sequelize, clock),
    clock,
    logger: logger.child({ component: 'backchannel' }),
    events,
    options: config.backchannelLogout,
  });
  const sessions = new SessionService({
    provider,
    store,
    sequelize,
    clock,
    logger: logger.child({ component: 'sessions' }),
    events,
    delivery,
    clients,
    apis,
    expiredSessionsTriggerBackchannelLogout: config.serverSideSessions.expiredSessionsTriggerBackchannelLogout,
    lifetime: config.serverSideSessions,
  });
  storage.attachSessionService(sessions);
  const throttle = new LoginThrottle(storage.loginAttempts, config.login, {
    nameKey: await loginNameKey(sequelize),
    clock,
    gate: { logger },
    audit: (event, detail) => {
      const msg = event === 'login.locked' ? `sign-in locked (${String(detail.scope)})` : 'sign-in failed';
      logger.info({ event, ...detail }, msg);
      events.emit(event, detail);
    },
  });
  const sweeper = new ExpirySweeper({
    store,
    service: sessions,
    sequelize,
    clock,
    logger: logger.child({ component: 'sweeper' }),
    onSweep: (result) => events.emit('sweep', result),
    housekeeping: () => throttle.prune(),
    options: {
      frequency: config.serverSideSessions.removeExpiredSessionsFrequency,
      fuzzStart: config.serverSideSessions.fuzzExpiredSessionRemovalStart,
      batchSize: config.serverSideSessions.removeExpiredSessionsBatchSize,
      leaseSeconds: 120,
    },
  });
  provider.use(slideOnClientActivity(clients, sessions));
  if (config.deviceFlow.enabled) provider.use(deviceCodeEntry(parts.devicePages));
  const offboarding = new UserOffboarding({ sessions, logger: logger.child({ component: 'users' }) });
  return { delivery, sessions, throttle, sweeper, offboarding };
}

/** Starts the back-channel worker, the expiry sweeper (when configured) and the key refresh. */
export function startBackgroundWork(config: GatehouseConfig, services: Services, parts: ProviderParts): void {
  services.delivery.start();
  if (config.serverSideSessions.removeExpiredSessions) services.sweeper.start();
  parts.signingKeys?.start();
}

/** Users the configuration no longer lists were disabled by the seeding: ends their sessions and tokens now. */
export async function endAccessOfUnlistedUsers(subjects: string[], offboarding: UserOffboarding, logger: Logger) {
  for (const subject of subjects) {
    await offboarding
      .endAccess(subject, 'config')
      .catch((error) =>
        logger.error(
          { subject, err: { message: loggableMessage(error) } },
          'ending the sessions of a user the configuration no longer lists failed',
        ),
      );
  }
}
