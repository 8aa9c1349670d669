import { accounts } from './accounts/accounts.router';
import { apiKeys } from './api-keys/api-keys.router';
import { audit } from './audit/audit.router';
import { gateway } from './gateway/gateway.router';
import { identities } from './identities/identities.router';
import { jwt } from './jwt/jwt.router';
import { mcp, oauth, tokens } from './oauth/oauth.router';
import { os } from './orpc';
import { permissions } from './permissions/permissions.router';
import { servers } from './portal/servers.router';
import { sessions } from './sessions/sessions.router';
import { devices } from './sync/devices.router';
import { sync } from './sync/sync.router';

/** The implementation of the whole contract; every door serves exactly this. */
export const router = os.router({
  identities,
  accounts,
  apiKeys,
  jwt,
  permissions,
  sessions,
  audit,
  oauth,
  tokens,
  mcp,
  servers,
  gateway,
  devices,
  sync,
});

export type Router = typeof router;
