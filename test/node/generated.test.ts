/**
 * Generated artifacts (openapi.yaml, generated/*) are checked in and must be exactly what the contract
 * produces now. When this fails, run `npm run generate` and commit the result.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildArtifacts } from '../../scripts/artifacts';

const root = join(import.meta.dirname, '..', '..');
const artifacts = await buildArtifacts();

/** Where two texts first differ, as "line N: expected … / on disk …". */
function firstDifference(expected: string, actual: string): string {
  const e = expected.split('\n');
  const a = actual.split('\n');
  for (let i = 0; i < Math.max(e.length, a.length); i++) {
    if (e[i] !== a[i]) {
      const show = (s: string | undefined) => (s === undefined ? '(end of file)' : JSON.stringify(s.length > 160 ? `${s.slice(0, 160)}…` : s));
      return `line ${i + 1}: generated ${show(e[i])}, on disk ${show(a[i])}`;
    }
  }
  return 'the bytes differ (encoding or line endings)';
}

describe('generated artifacts match the contract', () => {
  it('produces the known set of files', () => {
    expect(Object.keys(artifacts).sort()).toEqual(['generated/contract.json', 'generated/mcp-tools.json', 'generated/openapi.json', 'generated/procedures.md', 'openapi.yaml']);
  });

  for (const [file, content] of Object.entries(artifacts)) {
    it(`${file} is up to date`, () => {
      let onDisk: Buffer;
      try {
        onDisk = readFileSync(join(root, file));
      } catch {
        throw new Error(`${file} is missing: run \`npm run generate\` and commit the result`);
      }
      const generated = Buffer.from(content, 'utf8');
      const same = onDisk.equals(generated);
      expect(
        same,
        same ? '' : `${file} is out of date with contract/ (${firstDifference(content, onDisk.toString('utf8'))}): run \`npm run generate\` and commit the result`,
      ).toBe(true);
    });
  }
});
