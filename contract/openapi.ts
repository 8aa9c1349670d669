import { OpenAPIGenerator } from '@orpc/openapi';
import { ValibotToJsonSchemaConverter } from './json-schema';
import { walkContract } from './walk';

const toOpenApiPath = (route: string) => `/v1${route}`;

/** Endpoints whose wire format is fixed elsewhere (health, JWKS): hand-written, documented here. */
const HANDWRITTEN_PATHS = {
  '/health': {
    get: {
      tags: ['Service'],
      summary: 'Health',
      description: 'Unauthenticated liveness and database check.',
      operationId: 'health',
      security: [],
      responses: {
        '200': {
          description: 'Healthy',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                properties: { status: { const: 'ok' }, version: { type: 'string' }, database: { const: 'ok' }, time: { type: 'string', format: 'date-time' } },
                required: ['status', 'version', 'database', 'time'],
              },
            },
          },
        },
        '503': { description: 'The database does not answer' },
      },
    },
  },
  '/.well-known/jwks.json': {
    get: {
      tags: ['Service'],
      summary: 'JSON Web Key Set',
      description: 'The public keys that verify every JWT ChittyAuth signs (RFC 7517), including retired keys until their tokens expire.',
      operationId: 'jwks',
      security: [],
      responses: {
        '200': {
          description: 'The key set',
          content: {
            'application/json': {
              schema: { type: 'object', properties: { keys: { type: 'array', items: { type: 'object' } } }, required: ['keys'] },
            },
          },
        },
      },
    },
  },
} as const;

/** The OpenAPI 3.1 document of the whole contract: the source of openapi.yaml and /openapi.json. */
export async function buildOpenApiDocument(contract: unknown, version: string) {
  const generator = new OpenAPIGenerator({ schemaConverters: [new ValibotToJsonSchemaConverter()] });
  const doc = await generator.generate(contract as never, {
    info: {
      title: 'ChittyAuth',
      version,
      description:
        'The auth platform for MCP: ChittyIDs, API keys, JWTs, permissions, sessions and audit. Every operation here is also an MCP tool at /mcp and a typed client call at /rpc.',
    },
    servers: [{ url: 'http://127.0.0.1:8787', description: 'Local development (npm run dev)' }],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'An API key (chitty_…) or an access token from sign-in' },
      },
    },
    security: [{ bearer: [] }],
  });

  // The REST door serves the contract under /v1.
  doc.paths = Object.fromEntries(Object.entries(doc.paths ?? {}).map(([path, item]) => [toOpenApiPath(path), item]));

  // Per-operation facts from the contract meta: auth requirement, MCP tool, permission.
  for (const entry of walkContract(contract)) {
    const op = (doc.paths?.[toOpenApiPath(entry.route)] as Record<string, Record<string, unknown>> | undefined)?.[
      entry.method.toLowerCase()
    ];
    if (!op) throw new Error(`operation for ${entry.name} not found in the generated document`);
    op.operationId = entry.name;
    if (entry.meta.public) op.security = [];
    op['x-mcp-tool'] = entry.meta.tool;
    op['x-permission'] = entry.meta.public ? null : entry.meta.permission;
  }
  doc.paths = { ...doc.paths, ...(HANDWRITTEN_PATHS as unknown as typeof doc.paths) };
  return doc;
}
