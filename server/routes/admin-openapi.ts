/**
 * The OpenAPI 3.1 document of the admin API, served without a token at `/admin/api/openapi.json`. Parameters come
 * from the same specs the routes validate with (admin-api-params.ts), so the document cannot drift from the checks.
 */
import {
  BACKCHANNEL_PARAMS,
  MAX_CLAIMS_JSON,
  MAX_CLIENT_ID,
  MAX_PASSWORD,
  MAX_ROLE,
  MAX_ROLES,
  MAX_USERNAME,
  MAX_SESSION_ID,
  MAX_SUBJECT,
  REMOVE_PARAMS,
  SESSION_ID_PATH,
  SESSION_QUERY_PARAMS,
  SUBJECT_PATH,
  USER_PATH,
  type ParamSpec,
} from './admin-api-params.js';
import { CLIENT_PATH } from './admin-api-clients.js';
import { z } from 'zod';
import { optionInfo } from '../../config/option.js';
import { clientSchema } from '../../config/schema.js';

const SCOPE = 'gatehouse:admin';
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object) => ({ 'application/json': { schema } });
const nullable = (type: string, extra: object = {}) => ({ type: [type, 'null'], ...extra });

function schemaOf(spec: ParamSpec): Record<string, unknown> {
  switch (spec.kind) {
    case 'string':
      return { type: 'string', minLength: 1, maxLength: spec.maxLength };
    case 'token':
      return { type: 'string', minLength: 1, maxLength: 2048 };
    case 'boolean':
      return { type: 'boolean', default: spec.default };
    case 'integer':
      return { type: 'integer', minimum: spec.min, maximum: spec.max, default: spec.default };
    case 'list':
      return { type: 'array', items: { type: 'string', minLength: 1, maxLength: spec.maxLength }, maxItems: 50 };
    case 'enum':
      return { type: 'string', enum: [...spec.values] };
  }
}

function parameter(spec: ParamSpec, where: 'query' | 'path') {
  return {
    name: spec.name,
    in: where,
    required: where === 'path',
    description: spec.description,
    schema: schemaOf(spec),
    ...(spec.kind === 'list' ? { style: 'form', explode: false } : {}),
  };
}

const errors = {
  400: { $ref: '#/components/responses/BadRequest' },
  401: { $ref: '#/components/responses/Unauthorized' },
  403: { $ref: '#/components/responses/Forbidden' },
};
const disabled = { 409: { $ref: '#/components/responses/Disabled' } };
const notFound = { 404: { $ref: '#/components/responses/NotFound' } };

/** The client fields, from the schema the configuration and the routes validate with, with its descriptions. */
function clientFields(): Record<string, Record<string, unknown>> {
  const generated = z.toJSONSchema(clientSchema, { io: 'input', unrepresentable: 'any' }) as {
    properties: Record<string, Record<string, unknown>>;
  };
  const properties: Record<string, Record<string, unknown>> = {};
  for (const [name, property] of Object.entries(generated.properties)) {
    if (name === 'client_id') continue; // the path names the client
    const description = optionInfo.get(clientSchema.shape[name as keyof typeof clientSchema.shape])?.description;
    properties[name] = { ...property, ...(description ? { description } : {}) };
  }
  return properties;
}

/** Generated once: the input's fields, and the same without the secret for the answers. */
const CLIENT_FIELDS = clientFields();
const { client_secret: _secret, ...CLIENT_OUTPUT_FIELDS } = CLIENT_FIELDS;

const schemas = {
  Session: {
    type: 'object',
    required: [
      'sessionId',
      'subject',
      'displayName',
      'clients',
      'created',
      'lastActivity',
      'expires',
      'authTime',
      'login',
      'last',
    ],
    properties: {
      sessionId: { type: 'string', maxLength: MAX_SESSION_ID },
      subject: { type: 'string', maxLength: MAX_SUBJECT },
      displayName: nullable('string', { description: 'From the configured `serverSideSessions.displayNameClaim`.' }),
      clients: {
        type: 'array',
        items: {
          type: 'object',
          required: ['clientId', 'sid'],
          properties: { clientId: { type: 'string', maxLength: MAX_CLIENT_ID }, sid: { type: 'string' } },
        },
      },
      created: { type: 'string', format: 'date-time' },
      lastActivity: {
        type: 'string',
        format: 'date-time',
        description: 'Last recorded activity (the session was renewed).',
      },
      expires: nullable('string', { format: 'date-time', description: 'null = never expires.' }),
      authTime: nullable('string', { format: 'date-time' }),
      login: ref('Device'),
      last: ref('Device'),
      apis: {
        type: 'array',
        description:
          'Present when APIs are configured (apis[]): the APIs its clients were granted, and so hold or can refresh access tokens for.',
        items: ref('SessionApi'),
      },
    },
  },
  SessionApi: {
    type: 'object',
    required: ['clientId', 'api', 'name', 'tokenFormat', 'accessTokenTtl', 'tokensEnd'],
    properties: {
      clientId: { type: 'string', maxLength: MAX_CLIENT_ID },
      api: { type: 'string', description: "The API identifier (the tokens' audience)." },
      name: { type: 'string' },
      tokenFormat: { type: 'string', enum: ['jwt', 'opaque'] },
      accessTokenTtl: { type: 'integer', description: 'Access-token lifetime in seconds.' },
      tokensEnd: {
        type: 'string',
        enum: ['revoked-with-session', 'revoked-on-revocation', 'until-expiry'],
        description:
          '`revoked-with-session`: reference tokens of a coordinated client, revoked when the session ends in any way. `revoked-on-revocation`: reference tokens revoked when an administrator ends the session; those of an offline_access grant outlive logout and expiry. `until-expiry`: JWTs, which cannot be revoked and live out their lifetime.',
      },
    },
  },
  Device: {
    type: 'object',
    required: ['ip', 'userAgent'],
    properties: { ip: nullable('string'), userAgent: nullable('string') },
  },
  SessionList: {
    type: 'object',
    required: ['sessions', 'paging'],
    properties: {
      sessions: { type: 'array', items: ref('Session') },
      paging: {
        type: 'object',
        required: ['hasNext', 'hasPrevious'],
        properties: {
          hasNext: { type: 'boolean' },
          hasPrevious: { type: 'boolean' },
          next: { type: 'string', description: 'Pass as `page` for the next page; present when `hasNext`.' },
          previous: {
            type: 'string',
            description: 'Pass as `page` for the previous page; present when `hasPrevious`.',
          },
        },
      },
      totalCount: { type: 'integer', minimum: 0, description: 'Every matching session; absent with `count=false`.' },
    },
  },
  RemoveResult: {
    type: 'object',
    required: ['sessions', 'grantsRevoked', 'notificationsQueued'],
    properties: {
      sessions: { type: 'array', items: { type: 'string' }, description: 'Ids of the sessions that ended.' },
      grantsRevoked: { type: 'integer', minimum: 0 },
      notificationsQueued: {
        type: 'integer',
        minimum: 0,
        description: 'Back-channel logout notifications added to the outbox.',
      },
    },
  },
  Notification: {
    type: 'object',
    required: [
      'id',
      'clientId',
      'subject',
      'sessionId',
      'sid',
      'reason',
      'status',
      'attempts',
      'nextAttemptAt',
      'lastError',
      'created',
      'delivered',
    ],
    properties: {
      id: { type: 'string' },
      clientId: { type: 'string' },
      subject: { type: 'string' },
      sessionId: nullable('string'),
      sid: { type: 'string' },
      reason: { type: 'string', enum: ['user_logout', 'terminated', 'session_expiration'] },
      status: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
      attempts: { type: 'integer', minimum: 0 },
      nextAttemptAt: nullable('string', {
        format: 'date-time',
        description: 'When a pending notification is tried next.',
      }),
      lastError: nullable('string'),
      created: { type: 'string', format: 'date-time' },
      delivered: nullable('string', { format: 'date-time' }),
    },
  },
  User: {
    type: 'object',
    required: ['subject', 'username', 'claims', 'roles', 'disabled', 'source', 'hasPassword', 'created', 'updated'],
    properties: {
      subject: { type: 'string', maxLength: MAX_SUBJECT },
      username: {
        type: 'string',
        maxLength: MAX_USERNAME,
        description: 'What the user types on the login form (case-insensitive).',
      },
      claims: {
        type: 'object',
        additionalProperties: true,
        description: 'Released by scope: name, email, email_verified, ...',
      },
      roles: { type: 'array', items: { type: 'string' } },
      disabled: {
        type: 'boolean',
        description: 'A disabled user cannot sign in; disabling one ends their sessions, tokens and grants.',
      },
      source: {
        type: 'string',
        enum: ['config', 'cli', 'api'],
        description: 'Who created the user. `config` users follow the configuration again at the next start.',
      },
      hasPassword: { type: 'boolean' },
      created: { type: 'string', format: 'date-time' },
      updated: { type: 'string', format: 'date-time' },
    },
  },
  UserInput: {
    type: 'object',
    required: ['claims'],
    additionalProperties: false,
    properties: {
      username: {
        type: 'string',
        minLength: 1,
        maxLength: MAX_USERNAME,
        description: 'Default: the current username, or the subject for a new user.',
      },
      claims: {
        type: 'object',
        additionalProperties: true,
        description: `Replaces every claim (not \`sub\`: that is the subject in the path); at most ${MAX_CLAIMS_JSON} characters as JSON.`,
      },
      password: {
        type: 'string',
        minLength: 1,
        maxLength: MAX_PASSWORD,
        writeOnly: true,
        description: 'Hashed at the configured cost. Absent: the current password stays (a new user has none).',
      },
      roles: {
        type: 'array',
        maxItems: MAX_ROLES,
        items: { type: 'string', minLength: 1, maxLength: MAX_ROLE },
        description: 'Absent: unchanged (none for a new user).',
      },
      disabled: { type: 'boolean', description: 'Absent: unchanged (false for a new user).' },
    },
  },
  Client: {
    type: 'object',
    required: ['client_id', 'hasSecret', 'disabled', 'source', 'created', 'updated'],
    properties: {
      client_id: { type: 'string', maxLength: MAX_CLIENT_ID },
      ...CLIENT_OUTPUT_FIELDS,
      hasSecret: { type: 'boolean', description: 'Whether the client has a secret (never shown).' },
      disabled: {
        type: 'boolean',
        description:
          'A disabled client is unknown to the provider: it cannot authenticate and its tokens stop working.',
      },
      source: {
        type: 'string',
        enum: ['config', 'cli', 'api'],
        description: 'Who created the client. `config` clients follow the configuration again at the next start.',
      },
      created: { type: 'string', format: 'date-time' },
      updated: { type: 'string', format: 'date-time' },
    },
  },
  ClientInput: {
    type: 'object',
    description:
      'The fields of `clients[]` in a config file. `client_id`, when given, must be the one in the path. As for ' +
      'users, absent fields keep their values and `null` clears one (a new client starts from the defaults); the ' +
      'secret is dropped when the client no longer authenticates with one (`none`, `private_key_jwt`) unless one is ' +
      'given. The read-only fields of a GET answer (`hasSecret`, `source`, `created`, `updated`) are ignored.',
    properties: {
      client_id: { type: 'string', maxLength: MAX_CLIENT_ID },
      ...CLIENT_FIELDS,
      disabled: { type: 'boolean', description: 'Disable (true) or enable (false) the client.' },
    },
  },
  ClientList: {
    type: 'object',
    required: ['clients'],
    properties: { clients: { type: 'array', items: ref('Client') } },
  },
  ClientRemoved: {
    type: 'object',
    required: ['clientId', 'removed', 'revoked'],
    properties: {
      clientId: { type: 'string' },
      removed: { type: 'boolean', const: true },
      revoked: { type: 'integer', description: 'How many of its grants, tokens and codes were deleted.' },
    },
  },
  UserRemoved: {
    type: 'object',
    required: ['subject', 'removed', 'sessions', 'grantsRevoked', 'notificationsQueued'],
    properties: {
      subject: { type: 'string' },
      removed: { type: 'boolean', const: true },
      sessions: {
        type: 'array',
        items: { type: 'string' },
        description: 'Ids of the sessions that ended (none when server-side sessions are off).',
      },
      grantsRevoked: {
        type: 'integer',
        minimum: 0,
        description: 'Grants revoked, with every token issued under them.',
      },
      notificationsQueued: {
        type: 'integer',
        minimum: 0,
        description: 'Back-channel logout notifications added to the outbox.',
      },
    },
  },
  Lockout: {
    type: 'object',
    required: ['subject', 'username', 'locked', 'untrustedClients', 'addresses', 'devices'],
    description:
      "Sign-in protection for the user's name. Browsers that signed in with it before (device cookie) are never locked " +
      'by failures made elsewhere; everyone else (untrusted clients) is counted per name, per name and address, and per ' +
      'address. Per-address locks across all names are not shown (they are not the user’s).',
    properties: {
      subject: { type: 'string' },
      username: {
        type: 'string',
        description: 'The name the counters belong to (case and surrounding spaces ignored).',
      },
      locked: {
        type: 'boolean',
        description: 'Some untrusted client is locked out of this name now (everywhere, or at an address).',
      },
      untrustedClients: {
        type: 'object',
        required: ['lockedUntil', 'failures', 'level'],
        properties: {
          lockedUntil: nullable('string', {
            format: 'date-time',
            description: 'Untrusted clients are refused until then, from any address.',
          }),
          failures: {
            type: 'integer',
            minimum: 0,
            description: 'Untrusted failures in the current window (`login.failureWindow`).',
          },
          level: {
            type: 'integer',
            minimum: 0,
            description: 'Locks in a row: the next lasts `login.lockout` × 2^level, at most `login.maxLockout`.',
          },
        },
      },
      addresses: {
        type: 'array',
        description:
          'Client addresses (IPv6: /64) with failures for this name in the current window, or locked out of it.',
        items: {
          type: 'object',
          required: ['address', 'failures', 'lockedUntil'],
          properties: {
            address: { type: 'string' },
            failures: { type: 'integer', minimum: 0 },
            lockedUntil: nullable('string', { format: 'date-time' }),
          },
        },
      },
      devices: {
        type: 'object',
        required: ['failing', 'invalidated'],
        properties: {
          failing: {
            type: 'integer',
            minimum: 0,
            description: 'Trusted devices with failures since their last sign-in.',
          },
          invalidated: {
            type: 'integer',
            minimum: 0,
            description: 'Devices that used up their budget (`login.maxFailuresPerDevice`) and are untrusted now.',
          },
        },
      },
      cleared: { type: 'integer', minimum: 0, description: 'DELETE only: how many counters were removed.' },
    },
  },
  NotificationList: {
    type: 'object',
    required: ['counts', 'notifications'],
    properties: {
      counts: {
        type: 'object',
        required: ['pending', 'delivered', 'failed'],
        properties: { pending: { type: 'integer' }, delivered: { type: 'integer' }, failed: { type: 'integer' } },
      },
      notifications: { type: 'array', items: ref('Notification') },
    },
  },
  Error: {
    type: 'object',
    required: ['error', 'message'],
    properties: {
      error: {
        type: 'string',
        description:
          'Stable code, e.g. invalid_request, invalid_token, insufficient_scope, not_found, server_side_sessions_disabled.',
      },
      message: { type: 'string' },
      details: {
        type: 'object',
        additionalProperties: { type: 'string' },
        description: 'One message per bad parameter, by name.',
      },
      requestId: { type: 'string' },
    },
  },
};

const challenge = { 'WWW-Authenticate': { description: 'Bearer challenge (RFC 6750)', schema: { type: 'string' } } };
const responses = {
  BadRequest: {
    description: 'Invalid parameters (`invalid_request`), each named in `details`.',
    content: json(ref('Error')),
  },
  Unauthorized: {
    description: 'No token, or an invalid or expired one (`invalid_token`).',
    headers: challenge,
    content: json(ref('Error')),
  },
  Forbidden: {
    description: `The token lacks the \`${SCOPE}\` scope (\`insufficient_scope\`).`,
    headers: challenge,
    content: json(ref('Error')),
  },
  NotFound: { description: 'No such session, user or client (`not_found`).', content: json(ref('Error')) },
  Disabled: {
    description: 'Server-side sessions are turned off (`server_side_sessions_disabled`).',
    content: json(ref('Error')),
  },
};

const removeParameters = REMOVE_PARAMS.map((spec) => parameter(spec, 'query'));

export function buildOpenApiDocument(issuer: string) {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Gatehouse admin API',
      version: '1.0.0',
      description:
        'Search and end server-side login sessions, follow back-channel logout delivery, manage the users of the ' +
        'directory and their sign-in lockouts, and the clients. Authenticate with an access token ' +
        `from Gatehouse's own token endpoint (client_credentials grant) whose scope includes \`${SCOPE}\`.`,
    },
    servers: [{ url: issuer }],
    security: [{ bearerAuth: [SCOPE] }, { clientCredentials: [SCOPE] }],
    paths: {
      '/admin/api/v1/sessions': {
        get: {
          operationId: 'listSessions',
          summary: 'Search sessions, newest first, with keyset paging',
          parameters: SESSION_QUERY_PARAMS.map((spec) => parameter(spec, 'query')),
          responses: {
            200: { description: 'One page of sessions.', content: json(ref('SessionList')) },
            ...errors,
            ...disabled,
          },
        },
      },
      '/admin/api/v1/sessions/{sessionId}': {
        parameters: [parameter(SESSION_ID_PATH, 'path')],
        get: {
          operationId: 'getSession',
          summary: 'One session',
          responses: {
            200: { description: 'The session.', content: json(ref('Session')) },
            ...errors,
            ...notFound,
            ...disabled,
          },
        },
        delete: {
          operationId: 'endSession',
          summary: 'End one session: revoke tokens (and consents), notify clients, delete the record',
          parameters: removeParameters,
          responses: {
            200: { description: 'What was done.', content: json(ref('RemoveResult')) },
            ...errors,
            ...notFound,
            ...disabled,
          },
        },
      },
      '/admin/api/v1/subjects/{subject}/sessions': {
        parameters: [parameter(SUBJECT_PATH, 'path')],
        delete: {
          operationId: 'endSubjectSessions',
          summary: "Sign a user out everywhere: end every session of the subject and revoke the subject's grants",
          parameters: removeParameters,
          responses: {
            200: { description: 'What was done (possibly nothing).', content: json(ref('RemoveResult')) },
            ...errors,
            ...disabled,
          },
        },
      },
      '/admin/api/v1/users/{subject}': {
        parameters: [parameter(USER_PATH, 'path')],
        get: {
          operationId: 'getUser',
          summary: 'One user of the directory (enabled or not)',
          responses: { 200: { description: 'The user.', content: json(ref('User')) }, ...errors, ...notFound },
        },
        put: {
          operationId: 'putUser',
          summary: 'Create or change a user: claims, password, roles, username, disabled',
          description:
            '`claims` replaces the claims; absent optional fields keep their current values. Changes apply at once on this ' +
            'server and within `directory.cacheMs` on others. A user from the configuration keeps source `config`, so the ' +
            'next start applies the configuration to it again. Disabling a user ends their sessions, tokens and grants, as ' +
            'DELETE does.',
          requestBody: { required: true, content: json(ref('UserInput')) },
          responses: {
            200: { description: 'The user was changed (or already had these values).', content: json(ref('User')) },
            201: {
              description: 'The user was created (source `api`).',
              headers: { Location: { schema: { type: 'string' } } },
              content: json(ref('User')),
            },
            ...errors,
            409: { description: 'Another enabled user has this username (`conflict`).', content: json(ref('Error')) },
            413: { description: 'The body is larger than 64 KB (`payload_too_large`).', content: json(ref('Error')) },
            415: { description: 'The body is not `application/json`.', content: json(ref('Error')) },
          },
        },
        delete: {
          operationId: 'deleteUser',
          summary: 'Delete a user and end their access: sessions, tokens and grants, with back-channel logout',
          description:
            'Like DELETE /subjects/{subject}/sessions with every flag on: tokens and grants are revoked, relying parties are ' +
            'notified (reason `terminated`), the session records are deleted. With server-side sessions off, the grants and ' +
            'their tokens are revoked, and no notifications are sent.',
          responses: {
            200: { description: 'The user is gone.', content: json(ref('UserRemoved')) },
            ...errors,
            ...notFound,
          },
        },
      },
      '/admin/api/v1/users/{subject}/lockout': {
        parameters: [parameter(USER_PATH, 'path')],
        get: {
          operationId: 'getUserLockout',
          summary: "The user's sign-in lockout: untrusted clients, addresses and devices",
          responses: {
            200: { description: 'What is counted and locked now.', content: json(ref('Lockout')) },
            ...errors,
            ...notFound,
          },
        },
        delete: {
          operationId: 'unlockUser',
          summary: "Lift every sign-in lock on the user's name and forget its counts",
          description:
            'Clears the untrusted-client lock and its escalation, the locks of the name at every address, and the failure ' +
            'counts of its devices (so a device invalidated by its own failures is trusted again if the browser still holds ' +
            'its cookie). Per-address locks across all names stay. Works on every instance at once (the counters are in the ' +
            'database); audited as `login.unlocked`.',
          responses: {
            200: {
              description: 'The lockout after the unlock, and how many counters were removed.',
              content: json(ref('Lockout')),
            },
            ...errors,
            ...notFound,
          },
        },
      },
      '/admin/api/v1/clients': {
        get: {
          operationId: 'listClients',
          summary: 'Every client of the directory, enabled or not (secrets are never shown)',
          responses: { 200: { description: 'The clients.', content: json(ref('ClientList')) }, ...errors },
        },
      },
      '/admin/api/v1/clients/{clientId}': {
        parameters: [parameter(CLIENT_PATH, 'path')],
        get: {
          operationId: 'getClient',
          summary: 'One client (enabled or not)',
          responses: { 200: { description: 'The client.', content: json(ref('Client')) }, ...errors, ...notFound },
        },
        put: {
          operationId: 'putClient',
          summary: 'Create or change a client: the same fields and rules as clients[] in a config file',
          description:
            'Known to this server at once and to other instances within `directory.cacheMs`, without a restart. A ' +
            'client that asks for a feature the configuration turns off (PAR, DPoP, the device grant) is refused, as at ' +
            'start. A client from the configuration keeps source `config`, so the next start applies the configuration ' +
            'to it again.',
          requestBody: { required: true, content: json(ref('ClientInput')) },
          responses: {
            200: {
              description: 'The client was replaced (or already had these values).',
              content: json(ref('Client')),
            },
            201: {
              description: 'The client was created (source `api`).',
              headers: { Location: { schema: { type: 'string' } } },
              content: json(ref('Client')),
            },
            ...errors,
            409: {
              description:
                'Another request created or deleted the client at the same time (`conflict`): repeat it. Or the change ' +
                'would disable the client making the request, or take `gatehouse:admin` from its scope.',
              content: json(ref('Error')),
            },
            413: { description: 'The body is larger than 64 KB (`payload_too_large`).', content: json(ref('Error')) },
            415: { description: 'The body is not `application/json`.', content: json(ref('Error')) },
          },
        },
        delete: {
          operationId: 'deleteClient',
          summary: 'Delete a client: it can no longer authenticate, and its tokens stop working',
          responses: {
            200: { description: 'The client is gone.', content: json(ref('ClientRemoved')) },
            ...errors,
            ...notFound,
            409: {
              description: 'The client making the request cannot delete itself (`conflict`).',
              content: json(ref('Error')),
            },
          },
        },
      },
      '/admin/api/v1/backchannel': {
        get: {
          operationId: 'listNotifications',
          summary: 'The back-channel logout outbox: recent notifications and their delivery outcome',
          parameters: BACKCHANNEL_PARAMS.map((spec) => parameter(spec, 'query')),
          responses: {
            200: {
              description: 'Counts by status and the most recent notifications.',
              content: json(ref('NotificationList')),
            },
            ...errors,
          },
        },
      },
    },
    components: {
      schemas,
      responses,
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          description: `An access token Gatehouse issued with the client_credentials grant; its scope must include \`${SCOPE}\`.`,
        },
        clientCredentials: {
          type: 'oauth2',
          flows: {
            clientCredentials: {
              tokenUrl: `${issuer}/token`,
              scopes: {
                [SCOPE]:
                  'Search and end sessions; read the back-channel outbox; manage users and unlock their sign-in; manage clients.',
              },
            },
          },
        },
      },
    },
  };
}
