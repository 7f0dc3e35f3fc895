/** What every route module may use. Routes know HTTP; they reach sessions only through the SessionService. */
import type { EventEmitter } from 'node:events';
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import type { GatehouseConfig } from '../../config/schema.js';
import type { Clock } from '../../stores/session-store.js';
import type { CsrfTokens } from '../http/csrf.js';
import type { PageRenderer } from '../http/render.js';
import type { AccountDirectory } from '../provider/accounts.js';
import type { ApiRegistry } from '../provider/apis.js';
import type { ClientDirectory, ClientSettings } from '../provider/clients.js';
import type { LoginThrottle } from '../provider/login-throttle.js';
import type { UserOffboarding } from '../provider/user-offboarding.js';
import type { BackchannelDelivery } from '../sessions/backchannel-delivery.js';
import type { SessionService } from '../sessions/session-service.js';

export interface RouteDeps {
  config: GatehouseConfig;
  provider: Provider;
  sessions: SessionService;
  backchannel: BackchannelDelivery;
  accounts: AccountDirectory;
  /** Ends a removed or disabled user's sessions, tokens and grants. */
  offboarding: UserOffboarding;
  clients: ClientSettings;
  /** The clients of the directory (the admin API's clients). */
  clientDirectory: ClientDirectory;
  /** The configured APIs (resource servers). */
  apis: ApiRegistry;
  csrf: CsrfTokens;
  render: PageRenderer;
  clock: Clock;
  logger: Logger;
  events: EventEmitter;
  /** Sign-in protection: lockout status and unlock. */
  throttle: LoginThrottle;
}
