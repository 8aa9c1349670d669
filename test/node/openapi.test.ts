/**
 * openapi.yaml is a valid OpenAPI 3.1 document that documents every contract procedure, and the MCP tool
 * manifest lists exactly the procedures whose meta names a tool.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { contract } from '../../contract';
import { walkContract } from '../../contract/walk';

const root = join(import.meta.dirname, '..', '..');
const yamlText = readFileSync(join(root, 'openapi.yaml'), 'utf8');
const doc = parse(yamlText) as { openapi: string; paths: Record<string, Record<string, { operationId?: string; summary?: string }>> };
const entries = walkContract(contract);

describe('openapi.yaml', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const validator = new Validator();
    const result = await validator.validate(doc as Record<string, unknown>);
    expect(result.errors ?? [], 'schema errors').toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
  });

  it('has the contract to walk', () => {
    expect(entries.length).toBeGreaterThan(20);
  });

  for (const entry of entries) {
    it(`documents ${entry.name} as ${entry.method} /v1${entry.route}`, () => {
      const op = doc.paths[`/v1${entry.route}`]?.[entry.method.toLowerCase()];
      expect(op, `${entry.method} /v1${entry.route} is missing from openapi.yaml: run \`npm run generate\``).toBeDefined();
      expect(op!.operationId).toBe(entry.name);
      expect(op!.summary).toBe(entry.procedure['~orpc'].route.summary);
    });
  }

  it('has unique operationIds', () => {
    const ids = Object.values(doc.paths).flatMap((item) => Object.values(item).map((op) => op.operationId));
    expect(ids.every(Boolean), 'every operation has an operationId').toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('generated/mcp-tools.json', () => {
  const manifest = JSON.parse(readFileSync(join(root, 'generated/mcp-tools.json'), 'utf8')) as {
    tools: { name: string; _meta: Record<string, unknown> }[];
  };

  it('lists exactly the tools named in the contract meta, in contract order', () => {
    const expected = entries.filter((e) => e.meta.tool).map((e) => e.meta.tool);
    expect(manifest.tools.map((t) => t.name), 'tools in generated/mcp-tools.json (run `npm run generate` after changing the contract)').toEqual(expected);
    expect(new Set(expected).size, 'tool names are unique').toBe(expected.length);
  });

  it('maps each tool to its procedure', () => {
    const byTool = new Map(entries.filter((e) => e.meta.tool).map((e) => [e.meta.tool, e]));
    for (const tool of manifest.tools) {
      const entry = byTool.get(tool.name)!;
      expect(tool._meta['chittyauth/procedure']).toBe(entry.name);
      expect(tool._meta['chittyauth/route']).toBe(`${entry.method} /v1${entry.route}`);
    }
  });

  it('includes the seed tools', () => {
    const names = manifest.tools.map((t) => t.name);
    for (const name of ['generate_api_key', 'validate_api_key', 'generate_jwt', 'validate_jwt', 'check_permission', 'grant_authorization', 'list_sessions']) {
      expect(names).toContain(name);
    }
  });
});
