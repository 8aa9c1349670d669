import type { AnySchema } from '@orpc/contract';
import type * as v from 'valibot';
import { toJsonSchemaOf } from './json-schema';
import { walkContract, type ContractEntry } from './walk';

export interface McpToolDefinition {
  name: string;
  title: string;
  description: string;
  inputSchema: { type: 'object'; [k: string]: unknown };
  outputSchema: { type: 'object'; [k: string]: unknown };
  annotations: { readOnlyHint: boolean; destructiveHint: boolean; idempotentHint: boolean; openWorldHint: boolean };
  _meta: { 'chittyauth/procedure': string; 'chittyauth/route': string; 'chittyauth/permission': string | null };
}

const asValibot = (s: AnySchema | undefined) => s as unknown as v.BaseSchema<unknown, unknown, v.BaseIssue<unknown>>;

function objectSchema(schema: AnySchema | undefined, strategy: 'input' | 'output') {
  const json = (schema ? toJsonSchemaOf(asValibot(schema), strategy) : { type: 'object', properties: {} }) as Record<string, unknown>;
  delete json.default;
  if (json.type !== 'object') throw new Error(`MCP tools need object ${strategy} schemas`);
  return json as McpToolDefinition['inputSchema'];
}

export function toolDefinition(entry: ContractEntry): McpToolDefinition {
  const def = entry.procedure['~orpc'];
  const { summary = entry.name, description } = def.route;
  return {
    name: entry.meta.tool!,
    title: summary,
    description: description ? `${summary}. ${description}` : summary,
    inputSchema: objectSchema(def.inputSchema, 'input'),
    outputSchema: objectSchema(def.outputSchema, 'output'),
    annotations: {
      readOnlyHint: entry.meta.readOnly === true,
      destructiveHint: entry.method === 'DELETE' || entry.name.endsWith('.disable'),
      idempotentHint: entry.meta.readOnly === true || entry.method === 'DELETE' || entry.method === 'PUT',
      openWorldHint: false,
    },
    _meta: {
      'chittyauth/procedure': entry.name,
      'chittyauth/route': `${entry.method} /v1${entry.route}`,
      'chittyauth/permission': entry.meta.public ? null : entry.meta.permission,
    },
  };
}

/** The MCP tool manifest: one tool per contract procedure that names one. */
export function buildToolManifest(contract: unknown): { entry: ContractEntry; tool: McpToolDefinition }[] {
  return walkContract(contract)
    .filter((entry) => entry.meta.tool)
    .map((entry) => ({ entry, tool: toolDefinition(entry) }));
}
