/**
 * createServer's provider step: the oidc-provider instance over the storage, the signing keys it follows, and its
 * hooks (errors, the logout audit event).
 */
import type { EventEmitter } from 'node:events';
import type Koa from 'koa';
import Provider from 'oidc-provider';
import type { Logger } from 'pino';
import type { Sequelize } from 'sequelize';
import type { GatehouseConfig } from '../../config/schema.js';
import { latestGrantOf } from '../../stores/sequelize/grants.js';
import type { Clock } from '../../stores/session-store.js';
import type { PageRenderer } from '../http/render.js';
import { ApiRegistry } from '../provider/apis.js';
import { providerConfiguration } from '../provider/configuration.js';
import { DeviceCodeThrottle } from '../provider/device-code-throttle.js';
import { loadDpopNonceSecret } from '../provider/dpop-nonce.js';
import { SigningKeyRing } from '../provider/key-ring.js';
import { useAtomicReplayDetection } from '../provider/replay-detection.js';
import { type DevicePageDeps, devicePageSources } from '../routes/device-pages.js';
import type { ServerErrorReporter } from './server-errors.js';
import type { Storage } from './storage.js';

/** The provider's error events of the endpoints where clients authenticate (or, at /auth, are built). */
const CLIENT_AUTHENTICATING_EVENTS = [
  'authorization.error',
  'grant.error',
  'introspection.error',
  'revocation.error',
  'pushed_authorization_request.error',
  'device_authorization.error',
] as const;

/** A string as sent, for a log line: at most `length` characters, or nothing. */
const clipped = (value: unknown, length = 255) => (typeof value === 'string' ? value.slice(0, length) : undefined);

interface ClientError {
  name?: string;
  error?: string;
  error_detail?: string;
  error_description?: string;
}

/** The client a failed request was for: as authenticated, in the body, or in HTTP Basic's user name. */
function clientIdOf(ctx: ClientErrorContext): string | undefined {
  const known = ctx.oidc?.client?.clientId ?? clipped(ctx.oidc?.params?.client_id);
  if (known) return known;
  const basic = /^Basic +([A-Za-z0-9+/=]+)$/i.exec(ctx.get?.('authorization') ?? '')?.[1];
  if (!basic) return undefined;
  const user = Buffer.from(basic, 'base64').toString('utf8').split(':')[0];
  try {
    return clipped(decodeURIComponent(user));
  } catch {
    return clipped(user);
  }
}

interface ClientErrorContext {
  oidc?: { route?: string; client?: { clientId?: string }; params?: { client_id?: unknown } };
  get?(header: string): string;
}

export interface ProviderParts {
  provider: Provider;
  /** The stored signing keys the provider follows (undefined when the configuration supplies keys.jwks). */
  signingKeys?: SigningKeyRing;
  /** The configured APIs (resource servers). */
  apis: ApiRegistry;
  /** What the device flow's pages use (the code entry middleware is added with the services). */
  devicePages: DevicePageDeps;
}

export async function buildProvider(
  config: GatehouseConfig,
  storage: Storage,
  deps: {
    render: PageRenderer;
    clock: Clock;
    sequelize: Sequelize;
    logger: Logger;
    events: EventEmitter;
    reportError: ServerErrorReporter;
  },
): Promise<ProviderParts> {
  const { render, clock, sequelize, logger, events, reportError } = deps;
  const { keys, accounts, clients } = storage;
  const apis = new ApiRegistry(config.apis, config.ttl);
  const deviceCodes = new DeviceCodeThrottle(
    storage.loginAttempts,
    { ...config.login, maxFailuresPerIp: config.deviceFlow.maxFailuresPerIp },
    clock,
    { logger },
  );
  const devicePages: DevicePageDeps = {
    render,
    throttle: deviceCodes,
    accounts,
    clock,
    charset: config.deviceFlow.userCodeCharset,
    mask: config.deviceFlow.userCodeMask,
  };

  const provider = new Provider(
    config.issuer,
    providerConfiguration({
      config: { ...config, clients: storage.staticClients },
      keys,
      accounts,
      adapter: storage.adapter,
      render,
      clock,
      clients,
      apis,
      dpopNonceSecret: config.dpop.enabled ? await loadDpopNonceSecret(sequelize) : undefined,
      devicePages: devicePageSources(devicePages),
      findAccountGrant: (accountId, clientId) => latestGrantOf(sequelize, clock, accountId, clientId),
    }),
  );
  useAtomicReplayDetection(provider); // one use per DPoP proof and client assertion, also for concurrent requests
  provider.proxy = config.proxy;
  provider.maxIpsCount = config.proxyHops; // the client address: the entry the outermost proxy wrote, not the client's
  // Keys from the database follow rotations without a restart (keys from the configuration are fixed).
  const signingKeys = keys.stored
    ? new SigningKeyRing({
        sequelize,
        clock,
        logger: logger.child({ component: 'keys' }),
        refreshMs: config.keys.refreshMs,
        stored: keys.stored,
      })
    : undefined;
  signingKeys?.attach(provider);
  // Every ID token carries the per-client session id (`sid`), not only for clients that registered back-channel
  // logout with session_required: relying parties use it to match logout notifications and admin revocations.
  provider.Client.prototype.includeSid = () => true;
  // `error` is Koa's event for what escaped every handler (e.g. a session save after the response was set), which Koa
  // would otherwise print to stderr.
  provider.on('server_error', (ctx: { path?: string }, error: Error) =>
    reportError(error, ctx?.path, 'provider error'),
  );
  (provider as unknown as Koa).on('error', (error: Error, ctx?: { path?: string }) =>
    reportError(error, ctx?.path, 'provider error'),
  );
  // A client that fails to authenticate gets only "invalid_client": the reason (a wrong secret, a key that does not
  // verify the assertion, a jwks_uri that cannot be fetched, metadata the provider refuses) goes to the log.
  for (const event of CLIENT_AUTHENTICATING_EVENTS)
    (provider as unknown as EventEmitter).on(event, (ctx: ClientErrorContext, error: ClientError) => {
      const refused = error.name === 'InvalidClientMetadata'; // its code may be invalid_redirect_uri
      if (!refused && error.error !== 'invalid_client') return;
      const detail = {
        event: 'client.authentication_failed',
        endpoint: ctx.oidc?.route,
        clientId: clientIdOf(ctx),
        error: error.error,
        reason: clipped(error.error_detail ?? error.error_description, 300),
      };
      if (refused) logger.warn(detail, 'the provider refuses this client (its metadata): it cannot be used');
      else logger.info(detail, 'client authentication failed');
    });
  provider.on('end_session.success', (ctx: { oidc?: { session?: { uid?: string; accountId?: string } } }) => {
    const detail = { sessionId: ctx.oidc?.session?.uid, subjectId: ctx.oidc?.session?.accountId };
    if (!detail.subjectId) return;
    logger.info({ event: 'session.logged_out', ...detail }, 'session logged out');
    events.emit('session.logged_out', detail);
  });
  return { provider, signingKeys, apis, devicePages };
}
