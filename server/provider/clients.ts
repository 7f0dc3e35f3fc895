/**
 * OAuth clients. The reserved console client is a static provider client; every other client lives in the directory
 * table (`gatehouse_clients`) and reaches oidc-provider through its `Client` model adapter, whose `find(id)` returns
 * the metadata: the supported way to have clients change while the provider runs. So `gatehouse clients add` on a
 * running server's database works without a restart (after at most `directory.cacheMs`), and a disabled or removed
 * client is simply unknown.
 *
 * ClientSettings holds Gatehouse's own per-client settings (skipConsent, coordinateLifetimeWithUserSession) as last
 * read with the client, for the synchronous checks of the session code.
 */
import type Provider from 'oidc-provider';
import type { Adapter, AdapterPayload, ClientMetadata } from 'oidc-provider';
import { GATEHOUSE_SCOPES, PRIVILEGED_SCOPES } from '../../config/load.js';
import type { ClientConfig } from '../../config/schema.js';
import { classifyDatabaseError } from '../../stores/sequelize/errors.js';
import type {
  ClientInput,
  ClientRecord,
  ClientSettingsRecord,
  SaveOutcome,
  SequelizeDirectory,
} from '../../stores/sequelize/directory.js';

export type { ClientRecord } from '../../stores/sequelize/directory.js';

const UNPRIVILEGED_SCOPES = GATEHOUSE_SCOPES.filter((scope) => !PRIVILEGED_SCOPES.includes(scope)).join(' ');

export function toProviderClients(clients: ClientConfig[]): ClientMetadata[] {
  return clients.map(toProviderClient);
}

/** oidc-provider metadata of one configured client (Gatehouse's own settings removed, defaults filled in). */
export function toProviderClient(client: ClientConfig): ClientMetadata {
  const { skipConsent: _skip, coordinateLifetimeWithUserSession: _coordinate, ...metadata } = client;
  const grantTypes = metadata.grant_types ?? ['authorization_code'];
  const usesCode = grantTypes.includes('authorization_code');
  return {
    ...metadata,
    grant_types: grantTypes,
    response_types: metadata.response_types ?? (usesCode ? ['code'] : []),
    redirect_uris: metadata.redirect_uris ?? [],
    post_logout_redirect_uris: metadata.post_logout_redirect_uris ?? [],
    // oidc-provider lets a client without a scope list ask for any of the provider's scopes; Gatehouse's privileged
    // ones (the admin API's) must be named by the client itself.
    scope: metadata.scope ?? UNPRIVILEGED_SCOPES,
    // Logout tokens carry the sid unless a client explicitly opts out.
    ...(metadata.backchannel_logout_uri
      ? { backchannel_logout_session_required: metadata.backchannel_logout_session_required ?? true }
      : {}),
  } as ClientMetadata;
}

/** A configured client split into what the directory stores: OAuth metadata and Gatehouse settings. */
export function toClientInput(client: ClientConfig): Omit<ClientInput, 'source' | 'disabled'> {
  const { skipConsent, coordinateLifetimeWithUserSession, ...metadata } = client;
  const settings: ClientSettingsRecord = {};
  if (skipConsent !== undefined) settings.skipConsent = skipConsent;
  if (coordinateLifetimeWithUserSession !== undefined)
    settings.coordinateLifetimeWithUserSession = coordinateLifetimeWithUserSession;
  return { clientId: client.client_id, metadata: withoutUndefined(metadata), settings };
}

/** The configured shape of a stored client (metadata and settings together). */
export function toClientConfig(record: Pick<ClientRecord, 'clientId' | 'metadata' | 'settings'>): ClientConfig {
  return {
    ...(record.metadata as Omit<ClientConfig, 'client_id'>),
    ...record.settings,
    client_id: record.clientId,
  } as ClientConfig;
}

/**
 * What oidc-provider refuses in a client's metadata (it checks when it builds the client, at the client's first
 * request): `["field: message"]`, empty when the provider accepts it. The field is the first client field the
 * provider's message names (`client` when none).
 */
export async function providerClientProblems(provider: Provider, client: ClientConfig): Promise<string[]> {
  // Never a network fetch from here: a sector_identifier_uri (which the schema does not take) is left out.
  const { sector_identifier_uri: _fetched, ...metadata } = toProviderClient(client) as ClientMetadata & {
    sector_identifier_uri?: unknown;
  };
  try {
    await provider.Client.validate(metadata);
    return [];
  } catch (error) {
    if ((error as Error).name !== 'InvalidClientMetadata') throw error; // a fault, not a verdict on the client
    const message = String((error as { error_description?: unknown }).error_description ?? (error as Error).message);
    const field = message.match(/\b[a-z]+(?:_[a-z]+)+\b/)?.[0] ?? 'client';
    const said = message.startsWith(`${field} `) ? message.slice(field.length + 1) : message;
    return [`${field}: ${said} (refused by the provider)`];
  }
}

/**
 * At start: a warning for each enabled client the provider would refuse (stored by an older version, or with
 * something Gatehouse's own rules do not check), so an operator learns it before the client's first request fails.
 */
export async function warnUnusableClients(
  directory: ClientDirectory,
  provider: Provider,
  logger: { warn(detail: object, message: string): void },
): Promise<void> {
  for (const record of await directory.list()) {
    if (record.disabled) continue;
    const problems = await providerClientProblems(provider, toClientConfig(record));
    if (problems.length > 0)
      logger.warn(
        { event: 'client.unusable', clientId: record.clientId, source: record.source, problems },
        'the provider refuses this client: it cannot authenticate or sign users in until it is changed',
      );
  }
}

/** A stored client as the admin API and `gatehouse clients list --json` show it: its fields, never its secret. */
export function publicClient(record: ClientRecord) {
  const { client_secret: secret, ...metadata } = toClientConfig(record);
  return {
    ...metadata,
    hasSecret: typeof secret === 'string',
    disabled: record.disabled,
    source: record.source,
    created: record.created.toISOString(),
    updated: record.updated.toISOString(),
  };
}

function withoutUndefined<T extends object>(value: T): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, item]) => item !== undefined));
}

/** Gatehouse settings that are not OAuth client metadata, as last read. */
export class ClientSettings {
  readonly #byId = new Map<string, ClientSettingsRecord>();
  readonly #static = new Map<string, ClientSettingsRecord>();
  readonly #coordinateByDefault: boolean;

  constructor(staticClients: ClientConfig[], options: { coordinateClientLifetimesWithUserSession: boolean }) {
    for (const client of staticClients) this.#static.set(client.client_id, toClientInput(client).settings);
    this.#coordinateByDefault = options.coordinateClientLifetimesWithUserSession;
  }

  /** Records a client's settings as just read (undefined: the client is gone or disabled). */
  remember(clientId: string, settings: ClientSettingsRecord | undefined): void {
    if (settings) this.#byId.set(clientId, settings);
    else this.#byId.delete(clientId);
  }

  /** Whether this client's tokens live and die with the user's session: `client === true || (global && client !== false)`. */
  coordinated(clientId: string): boolean {
    const own = this.#of(clientId)?.coordinateLifetimeWithUserSession;
    return own === true || (this.#coordinateByDefault && own !== false);
  }

  skipConsent(clientId: string): boolean {
    return this.#of(clientId)?.skipConsent === true;
  }

  #of(clientId: string): ClientSettingsRecord | undefined {
    return this.#static.get(clientId) ?? this.#byId.get(clientId);
  }
}

interface CacheEntry {
  client: ClientRecord | undefined;
  at: number;
}

/** The directory's clients for the provider (the `Client` model adapter) and for the CLI and admin code. */
export class ClientDirectory {
  readonly #directory: SequelizeDirectory;
  readonly #settings: ClientSettings;
  readonly #cacheMs: number;
  readonly #cache = new Map<string, CacheEntry>();

  constructor(directory: SequelizeDirectory, settings: ClientSettings, options: { cacheMs: number }) {
    this.#directory = directory;
    this.#settings = settings;
    this.#cacheMs = options.cacheMs;
  }

  /** Reads every enabled client's settings once (at start), so the session code knows them before first use. */
  async load(): Promise<void> {
    for (const client of await this.#directory.listClients({ enabledOnly: true }))
      this.#remember(client.clientId, client);
  }

  /** The enabled client with this id, or undefined (cached briefly). */
  async find(clientId: string): Promise<ClientRecord | undefined> {
    const cached = this.#cache.get(clientId);
    if (cached && performance.now() - cached.at < this.#cacheMs) return cached.client;
    const client = await this.#directory.getClient(clientId);
    return this.#remember(clientId, client && !client.disabled ? client : undefined);
  }

  /** The client with this id, enabled or not, as stored now (not cached). */
  async get(clientId: string): Promise<ClientRecord | null> {
    return this.#directory.getClient(clientId);
  }

  async list(): Promise<ClientRecord[]> {
    return this.#directory.listClients();
  }

  async save(client: ClientInput): Promise<SaveOutcome> {
    try {
      return await this.#directory.saveClient(client);
    } finally {
      this.#cache.delete(client.clientId);
    }
  }

  /** Deletes the client and revokes its grants, tokens and codes (SequelizeDirectory.deleteClient). */
  async remove(clientId: string): Promise<{ removed: boolean; revoked: number }> {
    try {
      return await this.#directory.deleteClient(clientId);
    } finally {
      this.#cache.delete(clientId);
    }
  }

  /**
   * The provider's adapter for the `Client` model: `find(id)` returns the provider metadata of an enabled client.
   * Dynamic registration is off, so nothing ever writes through it.
   */
  readonly adapter: Adapter = {
    find: async (id: string): Promise<AdapterPayload | undefined> => {
      const client = await this.find(id).catch(classifyDatabaseError);
      return client ? (toProviderClient(toClientConfig(client)) as AdapterPayload) : undefined;
    },
    upsert: async () => {
      throw new Error('clients are managed with gatehouse clients ... or the configuration');
    },
    findByUid: async () => undefined,
    findByUserCode: async () => undefined,
    consume: async () => undefined,
    destroy: async () => {
      throw new Error('clients are managed with gatehouse clients ... or the configuration');
    },
    revokeByGrantId: async () => undefined,
  };

  #remember(clientId: string, client: ClientRecord | undefined): ClientRecord | undefined {
    this.#cache.set(clientId, { client, at: performance.now() });
    if (this.#cache.size > 10_000) this.#cache.delete(this.#cache.keys().next().value!);
    this.#settings.remember(clientId, client?.settings);
    return client;
  }
}
