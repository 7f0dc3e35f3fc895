/** Clients from configuration, mapped to oidc-provider client metadata, plus Gatehouse's own per-client settings. */
import type { ClientMetadata } from 'oidc-provider';
import type { ClientConfig } from '../../config/schema.js';

export function toProviderClients(clients: ClientConfig[]): ClientMetadata[] {
  return clients.map(({ skipConsent: _skip, coordinateLifetimeWithUserSession: _coordinate, ...metadata }) => {
    const grantTypes = metadata.grant_types;
    const usesCode = grantTypes.includes('authorization_code');
    return {
      ...metadata,
      response_types: metadata.response_types ?? (usesCode ? ['code'] : []),
      redirect_uris: metadata.redirect_uris,
      post_logout_redirect_uris: metadata.post_logout_redirect_uris,
      // Logout tokens carry the sid unless a client explicitly opts out.
      ...(metadata.backchannel_logout_uri ? { backchannel_logout_session_required: metadata.backchannel_logout_session_required ?? true } : {}),
    } as ClientMetadata;
  });
}

/** Gatehouse settings that are not OAuth client metadata. */
export class ClientSettings {
  readonly #byId: Map<string, ClientConfig>;
  readonly #coordinateByDefault: boolean;
  constructor(clients: ClientConfig[], options: { coordinateClientLifetimesWithUserSession: boolean }) {
    this.#byId = new Map(clients.map((client) => [client.client_id, client]));
    this.#coordinateByDefault = options.coordinateClientLifetimesWithUserSession;
  }
  /** Whether this client's tokens live and die with the user's session: `client === true || (global && client !== false)`. */
  coordinated(clientId: string): boolean {
    const own = this.#byId.get(clientId)?.coordinateLifetimeWithUserSession;
    return own === true || (this.#coordinateByDefault && own !== false);
  }
  skipConsent(clientId: string): boolean {
    return this.#byId.get(clientId)?.skipConsent === true;
  }
  get all(): ClientConfig[] {
    return [...this.#byId.values()];
  }
}
