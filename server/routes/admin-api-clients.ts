/**
 * The admin API's clients (`/admin/api/v1/clients`): list them, read one, create or change one, disable or delete
 * one: the same fields and rules as `clients[]` in a config file and `gatehouse clients add`, stored in the directory
 * (source `api`), and known to this server at once (to other instances within `directory.cacheMs`). Secrets are taken,
 * never shown (`hasSecret`). A disabled or deleted client is unknown to the provider: its tokens stop working and it
 * can no longer authenticate.
 */
import type Router from '@koa/router';
import { UniqueConstraintError } from 'sequelize';
import type { Context, Next } from 'koa';
import { clientFeatureProblems, clientProblems, introspectionClientProblems } from '../../config/load.js';
import { formatPath } from '../../config/issues.js';
import { type ClientConfig, clientSchema } from '../../config/schema.js';
import type { ClientInput } from '../../stores/sequelize/directory.js';
import { providerClientProblems, publicClient, toClientConfig, toClientInput } from '../provider/clients.js';
import { HttpError } from '../http/errors.js';
import { ADMIN_SCOPE } from './admin-api.js';
import { checkPathParam, clip, invalidRequest, MAX_CLIENT_ID, parseQuery } from './admin-api-params.js';
import type { RouteDeps } from './deps.js';

export const CLIENT_PATH = {
  name: 'clientId',
  kind: 'string',
  maxLength: MAX_CLIENT_ID,
  description: 'The client identifier (`client_id`).',
} as const;

/** What GET answers beside the client's fields: accepted in a PUT body (so a GET can be sent back) and ignored. */
const READ_ONLY = ['hasSecret', 'source', 'created', 'updated'];

type Middleware = (ctx: Context, next: Next) => Promise<void>;

export function adminClientRoutes(
  router: Router,
  prefix: string,
  deps: Pick<RouteDeps, 'clientDirectory' | 'config' | 'logger' | 'provider'>,
  guards: { authenticate: Middleware; json: Middleware; adminOf: (ctx: Context) => string },
): void {
  const { clientDirectory: directory, logger } = deps;
  const { authenticate, json, adminOf } = guards;

  router.get(`${prefix}/clients`, authenticate, async (ctx) => {
    parseQuery(ctx.query, []);
    ctx.body = { clients: (await directory.list()).map(publicClient) };
  });

  router.get(`${prefix}/clients/:clientId`, authenticate, async (ctx) => {
    const clientId = ctx.params.clientId;
    parseQuery(ctx.query, [], checkPathParam(CLIENT_PATH, clientId));
    const client = await directory.get(clientId);
    if (!client) throw clientNotFound(clientId);
    ctx.body = publicClient(client);
  });

  router.put(`${prefix}/clients/:clientId`, authenticate, json, async (ctx) => {
    const clientId = ctx.params.clientId;
    parseQuery(ctx.query, [], checkPathParam(CLIENT_PATH, clientId));
    const existing = await directory.get(clientId);
    const stateOnly = existing ? stateChangeOf(ctx.request.body) : undefined;
    let input: ClientInput;
    if (stateOnly !== undefined && existing) {
      // Enabling or disabling keeps the stored fields as they are, even ones today's rules refuse: a client the
      // provider refuses (see the `client.unusable` warning at start) can always be disabled.
      input = { ...existing, disabled: stateOnly, source: 'api' };
    } else {
      const body = parseClientBody(ctx.request.body, clientId, existing && toClientConfig(existing), deps);
      input = { ...toClientInput(body.client), disabled: body.disabled ?? existing?.disabled ?? false, source: 'api' };
    }
    const client = toClientConfig(input);
    const { disabled } = input;
    if (clientId === adminOf(ctx)) {
      const problem = selfLockout(client, disabled);
      if (problem) throw lockout(problem);
    }
    // Last, the provider's own checks, for a client that will be used (a disabled one is never built).
    const refused = disabled ? [] : await providerClientProblems(deps.provider, client);
    if (refused.length > 0) throw invalidRequest(detailsOf(refused));
    // A client that exists keeps its source (from the configuration: the next start applies it again).
    const outcome = await directory.save(input).catch((error: unknown) => {
      if (error instanceof UniqueConstraintError) throw concurrentChange(clientId); // created meanwhile
      throw error;
    });
    logger.info({ event: 'client.saved', clientId, outcome, disabled, actor: adminOf(ctx) }, `client ${outcome}`);
    const saved = await directory.get(clientId);
    if (!saved) throw concurrentChange(clientId); // deleted meanwhile
    ctx.status = outcome === 'created' ? 201 : 200;
    if (outcome === 'created') ctx.set('Location', `${prefix}/clients/${encodeURIComponent(clientId)}`);
    ctx.body = publicClient(saved);
  });

  router.delete(`${prefix}/clients/:clientId`, authenticate, async (ctx) => {
    const clientId = ctx.params.clientId;
    parseQuery(ctx.query, [], checkPathParam(CLIENT_PATH, clientId));
    if (clientId === adminOf(ctx)) throw lockout('deleting it');
    const { removed, revoked } = await directory.remove(clientId);
    if (!removed) throw clientNotFound(clientId);
    logger.info({ event: 'client.removed', clientId, revoked, actor: adminOf(ctx) }, 'client removed');
    ctx.body = { clientId, removed: true, revoked };
  });
}

/**
 * A PUT body as a valid client: the fields of `clients[]` (client_id, when given, must be the one in the path) and
 * `disabled`, every problem in `details` named by its field. As for users, absent fields keep their values and `null`
 * clears one (a new client starts from the defaults); the secret is dropped when the client no longer authenticates
 * with one (`none`, `private_key_jwt`) unless the body gives one.
 */
export function parseClientBody(
  body: unknown,
  clientId: string,
  existing: ClientConfig | null,
  deps: Pick<RouteDeps, 'config'>,
): { client: ClientConfig; disabled?: boolean } {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw invalidRequest({ body: 'must be a JSON object' });
  const details: Record<string, string> = Object.create(null);
  const { disabled, client_id: given, ...fields } = body as Record<string, unknown>;
  for (const name of READ_ONLY) delete fields[name];
  if (given !== undefined && given !== clientId) details.client_id = 'must be the client id in the path, or left out';
  if (disabled !== undefined && typeof disabled !== 'boolean') details.disabled = 'must be true or false';

  const merged: Record<string, unknown> = { ...existing, ...fields, client_id: clientId };
  for (const [name, value] of Object.entries(merged)) if (value === null) delete merged[name];
  const method = merged.token_endpoint_auth_method;
  if (fields.client_secret === undefined && (method === 'none' || method === 'private_key_jwt'))
    delete merged.client_secret;

  const parsed = clientSchema.safeParse(merged);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = formatPath(issue.path);
      if (issue.code === 'unrecognized_keys')
        for (const key of issue.keys) details[clip(path ? `${path}.${key}` : key)] = 'unknown field';
      else details[clip(path) || 'body'] = issue.message;
    }
    throw invalidRequest(details);
  }
  const client = parsed.data;
  // Gatehouse's own rules, as at load: their problems name fields of the schema ("field: message").
  Object.assign(
    details,
    detailsOf([
      ...clientProblems(client, ''),
      ...clientFeatureProblems(client, deps.config, ''),
      ...introspectionClientProblems(client, deps.config.apis, ''),
    ]),
  );
  if (Object.keys(details).length > 0) throw invalidRequest(details);
  return { client, ...(disabled === undefined ? {} : { disabled: disabled as boolean }) };
}

/** Problems written "field: message" (Gatehouse's rules, the provider's checks) as `details`. */
function detailsOf(problems: string[]): Record<string, string> {
  const details: Record<string, string> = Object.create(null);
  for (const problem of problems) {
    const split = problem.indexOf(': ');
    details[problem.slice(0, split)] = problem.slice(split + 2);
  }
  return details;
}

/** `disabled` when the body only enables or disables (`{"disabled": true|false}`), else undefined. */
function stateChangeOf(body: unknown): boolean | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const fields = Object.keys(body).filter((name) => !READ_ONLY.includes(name));
  const { disabled } = body as { disabled?: unknown };
  return fields.length === 1 && typeof disabled === 'boolean' ? disabled : undefined;
}

/** What in this change would shut the admin API to the client making the request, or undefined. */
function selfLockout(client: ClientConfig, disabled: boolean): string | undefined {
  if (disabled) return 'disabling it';
  if (!(client.scope ?? '').split(' ').includes(ADMIN_SCOPE)) return `taking ${ADMIN_SCOPE} from its scope`;
  if (!(client.grant_types ?? []).includes('client_credentials')) return 'taking its client_credentials grant';
  if (client.dpop_bound_access_tokens) return 'binding its tokens to DPoP (the admin API takes bearer tokens)';
  return undefined;
}

/** 409 for a change to the client whose token makes the request that would shut the admin API to it. */
function lockout(what: string): HttpError {
  return new HttpError(
    409,
    'conflict',
    `this is the client your access token was issued to: ${what} would lock it out of the admin API; use another ` +
      'administrator client, or the configuration or `gatehouse clients` on the database',
  );
}

/** Another request created or deleted the client between this one's read and write: the caller repeats it. */
function concurrentChange(clientId: string): HttpError {
  return new HttpError(
    409,
    'conflict',
    `client ${JSON.stringify(clientId)} was changed by another request at the same time; repeat the request`,
  );
}

function clientNotFound(clientId: string): HttpError {
  return new HttpError(404, 'not_found', `no client with id ${JSON.stringify(clientId)}`);
}
