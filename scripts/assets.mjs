// Builds what the Worker serves as static assets into public/ (git-ignored parts):
// - public/vendor/scalar: Scalar's API reference bundle, copied from node_modules (no CDN);
// - public/portal: the dashboard, bundled from portal/ with esbuild (the typed client included);
// - public/api/openapi.json: the generated OpenAPI document, served by /openapi.json from the assets (so
//   the Worker script does not carry it).
// Runs before dev, test and deploy.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const scalar = join(root, 'node_modules/@scalar/api-reference/dist/browser/standalone.js');
mkdirSync(join(root, 'public/vendor/scalar'), { recursive: true });
copyFileSync(scalar, join(root, 'public/vendor/scalar/standalone.js'));

mkdirSync(join(root, 'public/portal'), { recursive: true });
await build({
  entryPoints: [join(root, 'portal/main.ts')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: false,
  outfile: join(root, 'public/portal/app.js'),
  logLevel: 'warning',
});
copyFileSync(join(root, 'portal/app.css'), join(root, 'public/portal/app.css'));

mkdirSync(join(root, 'public/api'), { recursive: true });
copyFileSync(join(root, 'generated/openapi.json'), join(root, 'public/api/openapi.json'));
