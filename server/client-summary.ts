/**
 * A client in a few words, for the people reading the home page and the start-up banner: public or not, and what it
 * can do (its grants; none means an API's introspection client). One wording for both, so they cannot disagree.
 */
import { DEVICE_CODE_GRANT, type ClientConfig } from '../config/schema.js';

/** `public: authorization_code, refresh_token`, `client_credentials`, `introspection only (an API)`. */
export function describeClient(client: Pick<ClientConfig, 'token_endpoint_auth_method' | 'grant_types'>): string {
  const grants = (client.grant_types ?? ['authorization_code'])
    .map((grant) => (grant === DEVICE_CODE_GRANT ? 'device_code' : grant))
    .join(', ');
  return `${client.token_endpoint_auth_method === 'none' ? 'public: ' : ''}${grants || 'introspection only (an API)'}`;
}
