// `npm run dev`: ChittyAuth on http://127.0.0.1:8787 with a migrated local D1 (.wrangler/state), dev secrets
// generated on first run (.dev.vars) and a bootstrap admin. Stays in the foreground; Ctrl-C stops it.
//
//   ADMIN_USERNAME=alice ADMIN_PASSWORD='a long password' npm run dev   # choose the first admin's credentials
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { bootstrapAdmin, ensureDevVars, generateSecret, migrate, root, startWrangler } from './local-server.mjs';

const PORT = 8787;
const MIN_PASSWORD = 10;

const say = (text) => console.log(`\x1b[36m[chittyauth]\x1b[0m ${text}`);
const shellQuote = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

function box(lines) {
  const width = Math.max(...lines.map((l) => l.length));
  const bar = '─'.repeat(width + 2);
  return [`┌${bar}┐`, ...lines.map((l) => `│ ${l.padEnd(width)} │`), `└${bar}┘`].join('\n');
}

function fail(message) {
  console.error(`\x1b[31m[chittyauth]\x1b[0m ${message}`);
  process.exit(1);
}

// 1. Static assets (Scalar's bundle for /docs).
const assets = spawnSync(process.execPath, [join(root, 'scripts/assets.mjs')], { cwd: root, stdio: 'inherit' });
if (assets.status !== 0) fail('copying assets failed (is `npm ci` done?)');

// 2. Local secrets.
const devVars = ensureDevVars(root);
say(devVars.created ? `generated ${devVars.path} (ENCRYPTION_KEY, SETUP_TOKEN); keep it, it holds your local keys` : `using secrets from ${devVars.path}`);

// 3. Local D1.
say('applying D1 migrations to the local database (.wrangler/state)');
try {
  await migrate({ inherit: true });
} catch (error) {
  fail(error.message);
}

// 4. wrangler dev, in the foreground.
let server;
try {
  server = await startWrangler({ port: PORT, output: 'inherit' });
} catch (error) {
  fail(error.message);
}

let stopping = false;
const shutdown = async (signal) => {
  if (stopping) return;
  stopping = true;
  say(`${signal}: stopping wrangler`);
  await server.stop();
  process.exit(0);
};
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGHUP', () => shutdown('SIGHUP'));

server.exited.then(({ code, signal }) => {
  if (stopping) return;
  console.error(`\x1b[31m[chittyauth]\x1b[0m wrangler exited (${signal ?? `exit ${code}`})`);
  process.exit(code || 1);
});

// 5. The first admin.
const setupToken = devVars.vars.SETUP_TOKEN;
const username = process.env.ADMIN_USERNAME || 'admin';
const chosenPassword = process.env.ADMIN_PASSWORD;
const password = chosenPassword || generateSecret(18);
if (!setupToken) {
  say(`${devVars.path} has no SETUP_TOKEN: not creating an admin (add SETUP_TOKEN=<random> to create one)`);
} else if (chosenPassword !== undefined && chosenPassword.length < MIN_PASSWORD) {
  say(`ADMIN_PASSWORD is shorter than ${MIN_PASSWORD} characters: not creating an admin; choose a longer one and restart`);
} else {
  try {
    const result = await bootstrapAdmin(server.url, setupToken, username, password);
    if (result.created) {
      const url = server.url;
      const signIn = JSON.stringify({ username, password });
      console.log(
        [
          '',
          box([
            'ChittyAuth admin created. These credentials are shown only once:',
            '',
            `  username:  ${username}`,
            `  password:  ${password}`,
            `  ChittyID:  ${result.account.chitty_id}`,
            '',
            `API docs:  ${url}/docs      MCP endpoint:  ${url}/mcp`,
          ]),
          '',
          'Sign in and create an API key (copy and paste):',
          '',
          `TOKEN=$(curl -sf ${url}/v1/accounts/sign-in -H 'content-type: application/json' \\`,
          `  -d ${shellQuote(signIn)} \\`,
          `  | node -pe 'JSON.parse(require("fs").readFileSync(0, "utf8")).access_token')`,
          `curl -s ${url}/v1/api-keys -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \\`,
          `  -d '{"name":"my first key"}'`,
          '',
        ].join('\n'),
      );
    } else {
      say(`an admin already exists (created on an earlier run); sign in with its credentials. Docs: ${server.url}/docs`);
    }
  } catch (error) {
    say(`could not create the admin: ${error.message}`);
  }
}
say(`serving on ${server.url} (Ctrl-C to stop)`);
