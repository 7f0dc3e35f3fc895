/** `gatehouse clients add|list|remove`: the OAuth clients, in the configured database. */
import { clientFeatureProblems, clientProblems, formatIssues, introspectionClientProblems } from '../../config/load.js';
import { clientSchema, type ClientConfig } from '../../config/schema.js';
import { publicClient, toClientConfig, toClientInput } from '../provider/clients.js';
import type { Fail } from './command-group.js';
import {
  checkedId,
  COMMON,
  COMMON_HELP,
  directoryGroup,
  fromConfigNote,
  savedVerb,
  type DirectoryOption,
  type DirectorySubcommand,
  type DirectoryValues,
} from './directory-group.js';
import { CommandError, UsageError } from './errors.js';
import { formatTable, printJson } from './output.js';

export const CLIENTS_USAGE = `Usage:
  gatehouse clients add --client-id ID [--secret S | --public] [--name NAME] [--redirect-uri URL ...]
                        [--post-logout-redirect-uri URL ...] [--grant-type G ...] [--scope "a b"]
                        [--auth-method M] [--jwks-uri URL] [--backchannel-logout-uri URL] [--skip-consent]
                        [--coordinate-with-session] [--require-par] [--dpop-bound] [--replace]
  gatehouse clients add --json '{"client_id": "...", ...}' [--replace]
  gatehouse clients list
  gatehouse clients remove --client-id ID

${COMMON_HELP}

  add      a client (source cli), the same fields as clients[] in a config file; --json takes them as one
           object. Grant types: authorization_code (default), refresh_token, client_credentials,
           urn:ietf:params:oauth:grant-type:device_code (with deviceFlow.enabled). --require-par: its
           authorization requests must be pushed (require_pushed_authorization_requests); --dpop-bound: its
           tokens must be DPoP-bound (dpop_bound_access_tokens). --auth-method private_key_jwt needs the
           client's public keys: --jwks-uri, or "jwks" in --json. A running server knows it within a second,
           without a restart. An existing id needs --replace.
  list     every client, enabled or not (secrets are never shown)
  remove   delete the client and revoke its grants, tokens and codes (one from the configuration comes back at
           the next start)`;

/** The options that set a client's fields (with `clients add --json`, none of them). */
const CLIENT_FIELDS: DirectoryOption[] = [
  'client-id',
  'secret',
  'public',
  'name',
  'redirect-uri',
  'post-logout-redirect-uri',
  'grant-type',
  'scope',
  'auth-method',
  'jwks-uri',
  'backchannel-logout-uri',
  'skip-consent',
  'coordinate-with-session',
  'require-par',
  'dpop-bound',
];

/** Which option sets each client field, for error messages. */
const FLAG_OF: Record<string, string> = {
  client_id: '--client-id',
  client_secret: '--secret',
  client_name: '--name',
  redirect_uris: '--redirect-uri',
  post_logout_redirect_uris: '--post-logout-redirect-uri',
  grant_types: '--grant-type',
  scope: '--scope',
  token_endpoint_auth_method: '--auth-method',
  jwks_uri: '--jwks-uri',
  jwks: '--jwks-uri',
  backchannel_logout_uri: '--backchannel-logout-uri',
  skipConsent: '--skip-consent',
  coordinateLifetimeWithUserSession: '--coordinate-with-session',
  require_pushed_authorization_requests: '--require-par',
  dpop_bound_access_tokens: '--dpop-bound',
};

function clientFromFlags(values: DirectoryValues, fail: Fail): Record<string, unknown> {
  if (values.public && values.secret !== undefined) throw fail('give --secret or --public, not both');
  if (values.public && values['auth-method'] !== undefined && values['auth-method'] !== 'none')
    throw fail('--public means --auth-method none');
  const client: Record<string, unknown> = {
    client_id: checkedId(values, 'client-id', fail, true),
    client_secret: values.secret,
    client_name: values.name,
    redirect_uris: values['redirect-uri'],
    post_logout_redirect_uris: values['post-logout-redirect-uri'],
    grant_types: values['grant-type']?.flatMap((value) => value.split(',')),
    scope: values.scope,
    token_endpoint_auth_method: values.public ? 'none' : values['auth-method'],
    jwks_uri: values['jwks-uri'],
    backchannel_logout_uri: values['backchannel-logout-uri'],
    skipConsent: values['skip-consent'],
    coordinateLifetimeWithUserSession: values['coordinate-with-session'],
    require_pushed_authorization_requests: values['require-par'],
    dpop_bound_access_tokens: values['dpop-bound'],
  };
  return Object.fromEntries(Object.entries(client).filter(([, value]) => value !== undefined));
}

/** A validated client from flags or --json; every problem names the option (or the JSON path) that caused it. */
function validClient(values: DirectoryValues, fail: Fail): ClientConfig {
  const fromJson = values.json !== undefined;
  if (fromJson) {
    const mixed = CLIENT_FIELDS.find((name) => values[name] !== undefined);
    if (mixed) throw fail(`--json cannot be combined with --${mixed}: put every field in the JSON`);
  }
  let raw: unknown;
  if (fromJson) {
    try {
      raw = JSON.parse(values.json as string);
    } catch {
      throw fail('--json: not valid JSON');
    }
  } else {
    raw = clientFromFlags(values, fail);
  }
  const result = clientSchema.safeParse(raw);
  const name = (problem: string) => {
    if (fromJson) return `--json: ${problem}`;
    const match = /^([A-Za-z_]+)(?:\[(\d+)\])?(.*)$/.exec(problem);
    const flag = match && FLAG_OF[match[1]];
    if (!match || !flag) return problem;
    const list = raw as Record<string, unknown>;
    const given = match[2] !== undefined ? (list[match[1]] as unknown[])[Number(match[2])] : undefined;
    return `${flag}${given !== undefined ? ` ${JSON.stringify(given)}` : ''}${match[3]}`;
  };
  if (!result.success) throw fail(formatIssues(result.error.issues).map(name).join('\n  '));
  const problems = clientProblems(result.data, '');
  if (problems.length) throw fail(problems.map(name).join('\n  '));
  return result.data;
}

const add: DirectorySubcommand<ClientConfig> = {
  options: [...COMMON, ...CLIENT_FIELDS, 'replace', 'json'],
  async prepare(values, fail) {
    return validClient(values, fail);
  },
  async run({ directory, values, config }, client) {
    // A setting the configured servers leave off would be dropped (PAR, DPoP) or make the client unusable (device grant).
    const problems = [
      ...clientFeatureProblems(client, config, ''),
      ...introspectionClientProblems(client, config.apis, ''),
    ].map((problem) => problem.replace(/^([a-z_]+)/, (field) => FLAG_OF[field] ?? field));
    // Arguments that contradict the configuration: bad usage, exit code 2 (as the configuration's own check would be).
    if (problems.length)
      throw new UsageError(
        `client "${client.client_id}" does not fit the configuration:\n  ${problems.join('\n  ')}`,
        CLIENTS_USAGE,
      );
    const existing = await directory.getClient(client.client_id);
    if (existing && !values.replace) {
      throw new CommandError(
        `client "${client.client_id}" already exists (source ${existing.source}); give --replace to overwrite it`,
      );
    }
    const outcome = await directory.saveClient({ ...toClientInput(client), disabled: false, source: 'cli' });
    console.log(`${savedVerb(outcome)} client ${client.client_id}.`);
    if (existing?.source === 'config') console.log(fromConfigNote(`client ${client.client_id}`));
  },
};

const list: DirectorySubcommand = {
  options: [...COMMON, 'json'],
  async run({ directory, json }) {
    const clients = await directory.listClients();
    if (json) return printJson({ clients: clients.map(publicClient) });
    if (clients.length === 0) return console.log('No clients.');
    console.log(
      formatTable([
        ['CLIENT ID', 'TYPE', 'GRANTS', 'REDIRECT URIS', 'SOURCE', 'STATUS'],
        ...clients.map((record) => {
          const client = toClientConfig(record);
          return [
            client.client_id,
            client.token_endpoint_auth_method === 'none' ? 'public' : 'confidential',
            (client.grant_types ?? ['authorization_code']).join(','),
            (client.redirect_uris ?? []).join(' ') || '-',
            record.source,
            record.disabled ? 'disabled' : 'enabled',
          ];
        }),
      ]),
    );
  },
};

const remove: DirectorySubcommand<string> = {
  options: [...COMMON, 'client-id', 'json'],
  async prepare(values, fail) {
    return checkedId(values, 'client-id', fail, true);
  },
  async run({ directory, json }, clientId) {
    const existing = await directory.getClient(clientId);
    const { removed, revoked } = await directory.deleteClient(clientId);
    if (!existing || !removed) throw new CommandError(`no client with id ${JSON.stringify(clientId)}`);
    if (json) return printJson({ removed: clientId, revoked });
    console.log(`Removed client ${clientId}; revoked ${revoked} of its grants, tokens and codes.`);
    if (existing.source === 'config') console.log(fromConfigNote(`client ${clientId}`));
  },
};

export const clients = directoryGroup({
  name: 'clients',
  usage: CLIENTS_USAGE,
  subcommands: { add, list, remove },
  jsonInput: ['add'],
});
