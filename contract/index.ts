import { accounts } from './accounts';
import { apiKeys } from './api-keys';
import { audit } from './audit';
import { gateway } from './gateway';
import { identities } from './identities';
import { jwt } from './jwt';
import { mcp, oauth, tokens } from './oauth';
import { permissions } from './permissions';
import { servers } from './servers';
import { sessions } from './sessions';
import { devices, sync } from './sync';

/** The one contract. Every door, `openapi.yaml`, the MCP tool manifest and the typed client derive from it. */
export const contract = {
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
};

export type Contract = typeof contract;
export type { ProcedureMeta } from './base';
