import type { AnySchema } from '@orpc/contract';
import type { ConditionalSchemaConverter, JSONSchema, SchemaConvertOptions } from '@orpc/openapi';
import { toJsonSchema } from '@valibot/to-json-schema';
import type * as v from 'valibot';

type AnyValibot = v.BaseSchema<unknown, unknown, v.BaseIssue<unknown>>;

const isValibot = (schema: AnySchema | undefined): schema is AnySchema & AnyValibot =>
  schema !== undefined && schema['~standard'].vendor === 'valibot';

/** Wrappers that accept `undefined`: the field is optional (input) or may be absent (output). */
const OPTIONAL_TYPES = new Set(['optional', 'exact_optional', 'undefinedable', 'nullish', 'undefined', 'void']);

/**
 * Valibot → JSON Schema (draft 2020-12), the one converter behind openapi.yaml, the MCP tool
 * schemas and REST query coercion. Refinements JSON Schema cannot say (`check`, `trim`) are
 * still enforced at run time by valibot; they are only left out of the document.
 */
export function toJsonSchemaOf(schema: AnyValibot, strategy: 'input' | 'output'): JSONSchema {
  const json = toJsonSchema(schema, {
    target: 'draft-2020-12',
    typeMode: strategy,
    errorMode: 'throw',
    ignoreActions: ['check', 'trim'],
  }) as Record<string, unknown>;
  delete json.$schema;
  return json as JSONSchema;
}

export class ValibotToJsonSchemaConverter implements ConditionalSchemaConverter {
  condition(schema: AnySchema | undefined): boolean {
    return isValibot(schema);
  }

  convert(schema: AnySchema | undefined, options: SchemaConvertOptions): [required: boolean, jsonSchema: JSONSchema] {
    if (!isValibot(schema)) return [false, {}];
    const type = (schema as { type?: string }).type ?? '';
    return [!OPTIONAL_TYPES.has(type), toJsonSchemaOf(schema, options.strategy)];
  }
}
