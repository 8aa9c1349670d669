import * as v from 'valibot';
import { base, CONFLICT, NOT_FOUND } from './base';
import { boundedJsonObject, ChittyIdSchema, NullableTimestampSchema, RoleSchema, TimestampSchema } from './schemas';

const ServerIdSchema = v.pipe(v.string(), v.maxLength(64), v.regex(/^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$/, 'Invalid server_id: 3 to 64 characters a-z, 0-9 and -'));
const UrlSchema = v.pipe(v.string(), v.maxLength(512), v.url('Invalid URL'));
const TagSchema = v.pipe(v.string(), v.maxLength(32), v.regex(/^[a-z0-9][a-z0-9_.-]*$/, 'Invalid tag: lowercase letters, digits, _ . -'));
const ToolNameSchema = v.pipe(v.string(), v.minLength(1), v.maxLength(128));
const ActionSchema = v.picklist(['view', 'connect', 'call', 'admin'], 'Invalid action: view, connect, call or admin');
const StatusSchema = v.picklist(['unknown', 'ready', 'unauthorized', 'error', 'unreachable']);

const AuthInputSchema = v.variant('type', [
  v.strictObject({ type: v.literal('none') }),
  v.strictObject({
    type: v.literal('header'),
    header_name: v.pipe(v.string(), v.maxLength(64), v.regex(/^[A-Za-z0-9-]+$/, 'Invalid header name')),
    header_value: v.pipe(v.string(), v.minLength(1), v.maxLength(4096), v.description('Secret; stored encrypted, never returned')),
  }),
  v.strictObject({
    type: v.literal('oauth'),
    scopes: v.optional(v.pipe(v.array(v.pipe(v.string(), v.maxLength(128))), v.maxLength(16))),
    client_id: v.optional(v.pipe(v.string(), v.maxLength(512), v.description('A pre-registered client id; omitted: Client ID Metadata Document or dynamic registration'))),
    client_secret: v.optional(v.pipe(v.string(), v.maxLength(512), v.description('Secret; stored encrypted, never returned'))),
  }),
]);

const LimitSchema = v.strictObject({
  requests: v.pipe(v.number(), v.integer('Invalid requests: a whole number'), v.minValue(1, 'Invalid requests: at least 1'), v.maxValue(1_000_000, 'Invalid requests: at most 1000000')),
  window_seconds: v.pipe(v.number(), v.integer('Invalid window_seconds: a whole number'), v.minValue(1, 'Invalid window_seconds: at least 1'), v.maxValue(86_400, 'Invalid window_seconds: at most 86400 (one day)')),
});

/** Gateway rate limits; an omitted or null limit is the default (per user 600 / 60 s, per server 6000 / 60 s). */
export const RateLimitsInputSchema = v.pipe(
  v.strictObject({
    per_user: v.optional(v.nullable(LimitSchema)),
    per_server: v.optional(v.nullable(LimitSchema)),
  }),
  v.description('Gateway rate limits: per_user counts each user’s requests to this server, per_server all users’ together. null restores the default (per user 600 per 60 s, per server 6000 per 60 s).'),
);

const LimitOutSchema = v.object({ requests: v.number(), window_seconds: v.number() });

export const ServerSchema = v.object({
  server_id: v.string(),
  name: v.string(),
  description: v.nullable(v.string()),
  version: v.nullable(v.string()),
  endpoints: v.object({ mcp: v.string(), health: v.nullable(v.string()), oauth_callback: v.nullable(v.string()) }),
  transport: v.picklist(['streamable-http', 'sse']),
  auth: v.object({ type: v.string(), header_name: v.nullable(v.string()), scopes: v.nullable(v.array(v.string())), client_id: v.nullable(v.string()), has_secret: v.boolean() }),
  tags: v.array(v.string()),
  owner: v.string(),
  status: StatusSchema,
  status_detail: v.nullable(v.string()),
  latency_ms: v.nullable(v.number()),
  protocol_version: v.nullable(v.string()),
  capabilities: v.nullable(v.record(v.string(), v.unknown())),
  tools: v.array(v.object({ name: v.string(), title: v.nullable(v.string()), description: v.nullable(v.string()) })),
  checked_at: NullableTimestampSchema,
  rate_limits: v.object({ per_user: LimitOutSchema, per_server: LimitOutSchema }),
  reachable: v.pipe(
    v.object({ gateway: v.string(), direct: v.array(v.string()) }),
    v.description('The ways clients can reach the server: through the gateway route (always), and directly at each resource ChittyAuth protects for it (servers.setDirect)'),
  ),
  enabled_for_me: v.boolean(),
  my_access: v.array(ActionSchema),
  created_at: TimestampSchema,
  updated_at: TimestampSchema,
});

const ServerInputEntries = {
  name: v.pipe(v.string(), v.minLength(1), v.maxLength(100)),
  description: v.optional(v.pipe(v.string(), v.maxLength(1000))),
  version: v.optional(v.pipe(v.string(), v.maxLength(32))),
  endpoints: v.strictObject({ mcp: UrlSchema, health: v.optional(UrlSchema), oauth_callback: v.optional(UrlSchema) }),
  transport: v.optional(v.picklist(['streamable-http', 'sse']), 'streamable-http'),
  auth: v.optional(AuthInputSchema, { type: 'none' }),
  tags: v.optional(v.pipe(v.array(TagSchema), v.maxLength(16)), []),
  rate_limits: v.optional(RateLimitsInputSchema),
};

const URL_REFUSED = { status: 422, message: 'A URL of the server is not allowed (https and public addresses only)' } as const;

export const registerServer = base
  .route({
    method: 'POST',
    path: '/servers/register',
    tags: ['Registry'],
    summary: 'Register an MCP server',
    description:
      'Registers an MCP server, or updates it when the server_id is already yours (idempotent). MCP servers register themselves with an API key that holds portal:servers:register. URLs must be https to public addresses.',
  })
  .meta({ tool: 'register_mcp_server', permission: 'portal:servers:register', audit: true })
  .errors({ CONFLICT, URL_REFUSED })
  .input(v.strictObject({ server_id: ServerIdSchema, ...ServerInputEntries }))
  .output(v.object({ server: ServerSchema, created: v.boolean() }));

export const listServers = base
  .route({ method: 'GET', path: '/servers', tags: ['Registry'], summary: 'List MCP servers', description: 'The servers you may see, filtered by tag, status or text.' })
  .meta({ tool: 'list_mcp_servers', permission: 'portal:servers:read', readOnly: true })
  .input(
    v.strictObject({
      tag: v.optional(TagSchema),
      status: v.optional(StatusSchema),
      q: v.optional(v.pipe(v.string(), v.maxLength(100))),
      limit: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(200)), 50),
      cursor: v.optional(v.pipe(v.string(), v.maxLength(64))),
    }),
  )
  .output(v.object({ items: v.array(ServerSchema), next_cursor: v.nullable(v.string()) }));

export const getServer = base
  .route({ method: 'GET', path: '/servers/{server_id}', tags: ['Registry'], summary: 'Get an MCP server', description: 'One server with its capabilities and the tools it listed at the last health check.' })
  .meta({ tool: 'get_mcp_server', permission: 'portal:servers:read', readOnly: true })
  .errors({ NOT_FOUND })
  .input(v.strictObject({ server_id: ServerIdSchema }))
  .output(ServerSchema);

export const updateServer = base
  .route({ method: 'PATCH', path: '/servers/{server_id}', tags: ['Registry'], summary: 'Update an MCP server', description: 'For the server’s administrators (its owner, roles with admin access, a grant mcp:<server>:admin) and holders of portal:servers:write.' })
  .meta({ tool: 'update_mcp_server', permission: null, audit: true })
  .errors({ NOT_FOUND, URL_REFUSED })
  .input(
    v.strictObject({
      server_id: ServerIdSchema,
      name: v.optional(ServerInputEntries.name),
      description: v.optional(v.pipe(v.string(), v.maxLength(1000))),
      version: v.optional(v.pipe(v.string(), v.maxLength(32))),
      endpoints: v.optional(v.strictObject({ mcp: UrlSchema, health: v.optional(UrlSchema), oauth_callback: v.optional(UrlSchema) })),
      auth: v.optional(AuthInputSchema),
      tags: v.optional(v.pipe(v.array(TagSchema), v.maxLength(16))),
      rate_limits: v.optional(RateLimitsInputSchema),
    }),
  )
  .output(ServerSchema);

export const deleteServer = base
  .route({ method: 'DELETE', path: '/servers/{server_id}', tags: ['Registry'], summary: 'Remove an MCP server', description: 'Removes a server with its access policy and preferences. For the server’s administrators and holders of portal:servers:write.' })
  .meta({ tool: 'delete_mcp_server', permission: null, audit: true })
  .errors({ NOT_FOUND })
  .input(v.strictObject({ server_id: ServerIdSchema }))
  .output(v.object({ deleted: v.boolean() }));

export const checkServer = base
  .route({
    method: 'POST',
    path: '/servers/{server_id}/check',
    tags: ['Registry'],
    summary: 'Check an MCP server now',
    description:
      "Probes the server over MCP (initialize, tools/list) and records its status, latency, protocol version, capabilities and tools. An OAuth upstream is probed through the gateway's connection of the server's owner when the owner checks (never anyone else's); otherwise it answers unauthorized and the tools listed last are kept.",
  })
  .meta({ tool: 'check_mcp_server', permission: 'portal:servers:check', audit: true })
  .errors({ NOT_FOUND })
  .input(v.strictObject({ server_id: ServerIdSchema }))
  .output(ServerSchema);

const ToolRuleSchema = v.strictObject({
  tool: ToolNameSchema,
  effect: v.picklist(['allow', 'deny']),
  role: v.optional(RoleSchema),
  chitty_id: v.optional(ChittyIdSchema),
});

export const PolicySchema = v.object({
  server_id: v.string(),
  access: v.object({ view: v.array(v.string()), connect: v.array(v.string()), call: v.array(v.string()), admin: v.array(v.string()) }),
  tools: v.array(v.object({ tool: v.string(), effect: v.picklist(['allow', 'deny']), role: v.nullable(v.string()), chitty_id: v.nullable(v.string()) })),
});

export const getServerPolicy = base
  .route({ method: 'GET', path: '/servers/{server_id}/policy', tags: ['Access'], summary: 'Get a server’s access policy', description: 'Which roles may view, connect to, call and administer the server, and the per-tool rules.' })
  .meta({ tool: 'get_mcp_server_policy', permission: 'portal:servers:read', readOnly: true })
  .errors({ NOT_FOUND })
  .input(v.strictObject({ server_id: ServerIdSchema }))
  .output(PolicySchema);

export const setServerPolicy = base
  .route({
    method: 'PUT',
    path: '/servers/{server_id}/policy',
    tags: ['Access'],
    summary: 'Set a server’s access policy',
    description:
      'Replaces the roles allowed per action and the per-tool rules. A deny rule wins over an allow; a tool with allow rules is callable only by those they name. For the server’s administrators and holders of portal:policies:write.',
  })
  .meta({ tool: 'set_mcp_server_policy', permission: null, audit: true })
  .errors({ NOT_FOUND })
  .input(
    v.strictObject({
      server_id: ServerIdSchema,
      access: v.strictObject({
        view: v.pipe(v.array(RoleSchema), v.maxLength(3)),
        connect: v.pipe(v.array(RoleSchema), v.maxLength(3)),
        call: v.pipe(v.array(RoleSchema), v.maxLength(3)),
        admin: v.pipe(v.array(RoleSchema), v.maxLength(3)),
      }),
      tools: v.optional(
        v.pipe(
          v.array(v.pipe(ToolRuleSchema, v.check((r) => (r.role === undefined) !== (r.chitty_id === undefined), 'Invalid tool rule: give exactly one of role or chitty_id'))),
          v.maxLength(200),
        ),
        [],
      ),
    }),
  )
  .output(PolicySchema);

export const setServerEnabled = base
  .route({ method: 'PUT', path: '/servers/{server_id}/enabled', tags: ['Access'], summary: 'Enable or disable a server for me', description: 'Turns a server on or off for the caller only.' })
  .meta({ tool: 'set_mcp_server_enabled', permission: 'portal:servers:use', audit: true })
  .errors({ NOT_FOUND })
  .input(v.strictObject({ server_id: ServerIdSchema, enabled: v.boolean() }))
  .output(ServerSchema);

export const checkServerAccess = base
  .route({ method: 'POST', path: '/servers/{server_id}/access', tags: ['Access'], summary: 'Check access to a server', description: 'Whether a ChittyID (default: the caller) may view, connect to, call or administer a server, or call one of its tools.' })
  .meta({ tool: 'check_mcp_access', permission: 'portal:servers:read', readOnly: true })
  .errors({ NOT_FOUND })
  .input(v.strictObject({ server_id: ServerIdSchema, chitty_id: v.optional(ChittyIdSchema), action: ActionSchema, tool: v.optional(ToolNameSchema) }))
  .output(v.object({ allowed: v.boolean(), reason: v.string() }));

/** Our own fields in server.json live under this reverse-DNS key of `_meta`. */
export const SERVER_JSON_META_KEY = 'cc.chitty.auth/portal';
export const SERVER_JSON_SCHEMA = 'https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json';

const RemoteSchema = v.looseObject({
  type: v.picklist(['streamable-http', 'sse'], 'Invalid remote type: streamable-http or sse'),
  url: UrlSchema,
  headers: v.optional(
    v.pipe(
      v.array(v.looseObject({ name: v.pipe(v.string(), v.maxLength(64)), isSecret: v.optional(v.boolean()), isRequired: v.optional(v.boolean()), description: v.optional(v.pipe(v.string(), v.maxLength(500))) })),
      v.maxLength(8),
    ),
  ),
});

/** The official MCP Registry server.json (remote servers), as far as the portal uses it. */
export const ServerJsonSchema = v.looseObject({
  $schema: v.optional(v.pipe(v.string(), v.maxLength(200))),
  name: v.pipe(v.string(), v.maxLength(200), v.regex(/^[a-zA-Z0-9.-]+\/[a-zA-Z0-9._-]+$/, 'Invalid name: expected reverse-DNS namespace/name, e.g. com.example/weather')),
  title: v.optional(v.pipe(v.string(), v.maxLength(100))),
  description: v.optional(v.pipe(v.string(), v.maxLength(1000))),
  version: v.optional(v.pipe(v.string(), v.maxLength(32))),
  remotes: v.pipe(v.array(RemoteSchema), v.minLength(1, 'Invalid remotes: the portal registers remote servers; give at least one remote'), v.maxLength(4)),
  _meta: v.optional(boundedJsonObject('_meta', { maxKeyLength: 200 })),
});

export const importServer = base
  .route({
    method: 'POST',
    path: '/servers/import',
    tags: ['Registry'],
    summary: 'Import a server.json',
    description:
      'Registers a server from an official MCP Registry server.json (its streamable-http remote, else sse). Our own settings are read from `_meta["cc.chitty.auth/portal"]`; a secret header the document declares takes its value from `header_value`.',
  })
  .meta({ tool: 'import_mcp_server', permission: 'portal:servers:register', audit: true })
  .errors({ CONFLICT, URL_REFUSED })
  .input(
    v.strictObject({
      server: ServerJsonSchema,
      server_id: v.optional(ServerIdSchema),
      header_value: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(4096))),
    }),
  )
  .output(v.object({ server: ServerSchema, created: v.boolean() }));

export const exportServer = base
  .route({ method: 'GET', path: '/servers/{server_id}/server.json', tags: ['Registry'], summary: 'Export as server.json', description: 'The server as an official MCP Registry server.json, with the portal settings (never secrets) under `_meta`.' })
  .meta({ tool: 'export_mcp_server', permission: 'portal:servers:read', readOnly: true })
  .errors({ NOT_FOUND })
  .input(v.strictObject({ server_id: ServerIdSchema }))
  .output(
    v.object({
      $schema: v.string(),
      name: v.string(),
      title: v.string(),
      description: v.string(),
      version: v.string(),
      remotes: v.array(v.object({ type: v.string(), url: v.string(), headers: v.optional(v.array(v.object({ name: v.string(), isSecret: v.boolean(), isRequired: v.boolean() }))) })),
      _meta: v.record(v.string(), v.unknown()),
    }),
  );

/** RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). */
const ScopeTokenSchema = v.pipe(v.string(), v.minLength(1), v.maxLength(128), v.regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'Invalid scope: RFC 6749 scope-token characters only (no spaces, quotes or backslashes)'));
const DirectActionSchema = v.picklist(['connect', 'call', 'admin'], 'Invalid action: connect, call or admin');

export const DirectSchema = v.object({
  server_id: v.string(),
  authorization_server: v.pipe(v.string(), v.description('The issuer resource servers must name in their RFC 9728 metadata and check as `iss`')),
  resources: v.array(v.object({ resource: v.string(), metadata_url: v.pipe(v.string(), v.description('Where the resource server serves its RFC 9728 metadata')) })),
  scopes: v.array(v.object({ name: v.string(), description: v.nullable(v.string()), action: DirectActionSchema, default: v.boolean() })),
  introspection_client_id: v.nullable(v.string()),
});

export const getServerDirect = base
  .route({
    method: 'GET',
    path: '/servers/{server_id}/direct',
    tags: ['Access'],
    summary: 'Get a server’s direct protection',
    description: 'The resource URLs ChittyAuth issues access tokens for on this server’s behalf (RFC 8707, RFC 9068 `aud`), the scopes it defines, and the client it introspects tokens with. No resources: the server is reachable through the gateway only.',
  })
  .meta({ tool: 'get_mcp_server_direct', permission: 'portal:servers:read', readOnly: true })
  .errors({ NOT_FOUND })
  .input(v.strictObject({ server_id: ServerIdSchema }))
  .output(DirectSchema);

export const setServerDirect = base
  .route({
    method: 'PUT',
    path: '/servers/{server_id}/direct',
    tags: ['Access'],
    summary: 'Protect a server directly',
    description:
      'Makes ChittyAuth the authorization server of the MCP server itself: clients ask for `resource=<one of resources>` and get an RFC 9068 access token with that `aud`, scopes narrowed to the ones defined here and to what the portal policy lets the user do (each scope names the action it needs; `connect` decides who gets a token at all). Resource URLs are canonicalised: lowercase scheme and host, no default port, no trailing slash (`https://mcp.example.com/mcp/` is stored as `https://mcp.example.com/mcp`); no fragment, query or user info; https (http on loopback in development); on the origin of the server’s MCP endpoint. Proof of control: each new resource’s RFC 9728 metadata (`/.well-known/oauth-protected-resource` + its path) must already name it as `resource` and ChittyAuth among `authorization_servers` (422 UNVERIFIED otherwise). `introspection_client_id` is a confidential OAuth client of yours that may introspect tokens for these resources (RFC 7662). Replaces the whole setting; removing a resource revokes the grants issued for it. For the server’s administrators and holders of portal:servers:write.',
  })
  .meta({ tool: 'set_mcp_server_direct', permission: null, audit: true })
  .errors({ NOT_FOUND, CONFLICT, UNVERIFIED: { status: 422, message: 'The resource server does not name ChittyAuth in its RFC 9728 metadata' } })
  .input(
    v.strictObject({
      server_id: ServerIdSchema,
      resources: v.pipe(v.array(UrlSchema), v.maxLength(8, 'Invalid resources: at most 8')),
      scopes: v.optional(
        v.pipe(
          v.array(
            v.strictObject({
              name: ScopeTokenSchema,
              description: v.optional(v.pipe(v.string(), v.maxLength(200))),
              action: v.optional(DirectActionSchema, 'call'),
              default: v.optional(v.boolean(), true),
            }),
          ),
          v.maxLength(32, 'Invalid scopes: at most 32'),
          v.check((list) => new Set(list.map((s) => s.name)).size === list.length, 'Invalid scopes: each name once'),
        ),
        [],
      ),
      introspection_client_id: v.optional(v.nullable(v.pipe(v.string(), v.minLength(1), v.maxLength(512)))),
    }),
  )
  .output(DirectSchema);

export const servers = {
  register: registerServer,
  list: listServers,
  get: getServer,
  update: updateServer,
  delete: deleteServer,
  check: checkServer,
  policy: getServerPolicy,
  setPolicy: setServerPolicy,
  setEnabled: setServerEnabled,
  access: checkServerAccess,
  direct: getServerDirect,
  setDirect: setServerDirect,
  import: importServer,
  export: exportServer,
};
