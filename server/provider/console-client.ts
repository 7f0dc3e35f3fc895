/**
 * Gatehouse's own first-party client: the admin and account pages sign users in through the provider like any relying
 * party (authorization code + PKCE), so there is one login, one session and one logout for everything.
 */
import { RESERVED_CLIENT_ID } from '../../config/load.js';
import type { ClientConfig } from '../../config/schema.js';

/** Reserved: configuration, GATEHOUSE_CLIENTS, the CLI and the API refuse it (config/load.ts). */
export const CONSOLE_CLIENT_ID = RESERVED_CLIENT_ID;
export const CONSOLE_CALLBACK_PATH = '/console/callback';

export function consoleClient(issuer: string): ClientConfig {
  return {
    client_id: CONSOLE_CLIENT_ID,
    client_name: 'Gatehouse console',
    token_endpoint_auth_method: 'none',
    redirect_uris: [`${issuer}${CONSOLE_CALLBACK_PATH}`],
    post_logout_redirect_uris: [`${issuer}/`],
    grant_types: ['authorization_code'],
    scope: 'openid profile',
    skipConsent: true,
  };
}
