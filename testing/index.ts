/**
 * `gatehouse-idp/testing`: Gatehouse as the identity provider of another project's tests, in-process.
 *
 *   const gatehouse = await startGatehouse({ users: [{ subject: 'alice', password: 'pw' }], clients: [...] });
 *   const { tokens } = await gatehouse.login({ subject: 'alice', clientId: 'app' });
 *   const { url } = await gatehouse.authorize({ subject: 'alice', url: authorizationUrlBuiltByYourClient });
 *   await gatehouse.stop();
 */
import '../server/node-version.js'; // first: an unsupported Node is refused before anything else loads
export {
  startGatehouse,
  type StartGatehouseOptions,
  type TestGatehouse,
  type TestUser,
  type TestClient,
  type TestApi,
} from './start-gatehouse.js';
export type { LoginOptions, LoginResult, LoginTokens, ProviderMetadata } from './login.js';
export type { AuthorizeOptions, AuthorizeResult } from './authorize.js';
export type { IdTokenClaims } from './id-token.js';
export { ManualClock } from '../stores/clock.js';
