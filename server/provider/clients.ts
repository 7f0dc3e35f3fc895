/** Clients from configuration, mapped to oidc-provider client metadata, plus Gatehouse's own per-client settings. */
import type { ClientMetadata } from 'oidc-provider';
import type { ClientConfig } from '../../config/schema.js';

export function toProviderClients(clients: ClientConfig[]): ClientMetadata[] {
  return clients.map(({ skipConsent: _skip, ...metadata }) => {
    const grantTypes = metadata.grant_types;
    const usesCode = grantTypes.includes('authorization_code');
    return {
      ...metadata,
      response_types: metadata.response_types ?? (usesCode ? ['code'] : []),
      redirect_uris: metadata.redirect_uris,
      post_logout_redirect_uris: metadata.post_logout_redirect_uris,
    } as ClientMetadata;
  });
}

/** Gatehouse settings that are not OAuth client metadata. */
export class ClientSettings {
  readonly #byId: Map<string, ClientConfig>;
  constructor(clients: ClientConfig[]) {
    this.#byId = new Map(clients.map((client) => [client.client_id, client]));
  }
  skipConsent(clientId: string): boolean {
    return this.#byId.get(clientId)?.skipConsent === true;
  }
  get all(): ClientConfig[] {
    return [...this.#byId.values()];
  }
}
