// Copies third-party browser bundles into public/vendor (git-ignored) so the Worker serves them
// as static assets and no page loads anything from another origin. Runs before dev, test and deploy.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const scalar = join(root, 'node_modules/@scalar/api-reference/dist/browser/standalone.js');
mkdirSync(join(root, 'public/vendor/scalar'), { recursive: true });
copyFileSync(scalar, join(root, 'public/vendor/scalar/standalone.js'));
