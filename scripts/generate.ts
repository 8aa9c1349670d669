/**
 * `npm run generate`: writes every artifact derived from the contract. Never edit the outputs by hand;
 * test/generated.test.ts fails when they differ from what the contract produces.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildArtifacts } from './artifacts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const artifacts = await buildArtifacts();
for (const [file, content] of Object.entries(artifacts)) {
  const path = join(root, file);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
}
console.log(`generated ${Object.keys(artifacts).join(', ')}`);
