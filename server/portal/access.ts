import { grantsAllowing, scopesAllow, type GrantLike } from '../permissions/policy';

/**
 * Who may do what with a registered MCP server. Pure: no I/O, tested alone.
 * - Per server, each action (view, connect, call, admin) is open to a set of roles; a permission grant
 *   `mcp:<server>:<action>` (wildcards allowed) opens it to one identity.
 * - Per tool, deny rules win; a tool with allow rules is callable only by what they name;
 *   a grant `mcp:<server>:tool:<name>` allows that tool.
 * - The identity that registered a server (its owner) may always do everything with it.
 * - A user may turn a server off for themselves; then they cannot connect or call.
 */
export const ACTIONS = ['view', 'connect', 'call', 'admin'] as const;
export type Action = (typeof ACTIONS)[number];
export type AccessMap = Record<Action, string[]>;

/** Until an admin sets a policy: everyone signed in may see a server; users may use it; admins administer it. */
export const DEFAULT_ACCESS: AccessMap = {
  view: ['admin', 'user', 'readonly'],
  connect: ['admin', 'user'],
  call: ['admin', 'user'],
  admin: ['admin'],
};

export interface ToolRule {
  tool: string;
  effect: 'allow' | 'deny';
  subject_type: 'role' | 'chitty_id';
  subject: string;
}

export interface Caller {
  chittyId: string;
  roles: readonly string[];
  /** Whether the caller's credential holds a permission (grants ∩ scopes). */
  can: (permission: string) => boolean;
}

/** A caller from its grants and its credential's scopes: roles, and a synchronous check of grants ∩ scopes. */
export function callerFrom(chittyId: string, grants: readonly GrantLike[], scopes: readonly string[]): Caller {
  return {
    chittyId,
    roles: grants.filter((g) => g.role).map((g) => g.role!),
    can: (p) => scopesAllow(scopes, p) && grantsAllowing(grants, p).length > 0,
  };
}

export const serverPermission = (serverId: string, action: Action) => `mcp:${serverId}:${action}`;

export interface ServerRef {
  id: string;
  owner: string;
}

export function actionAllowed(access: AccessMap, server: ServerRef, caller: Caller, action: Action): boolean {
  if (server.owner === caller.chittyId) return true;
  const serverId = server.id;
  if (caller.can(serverPermission(serverId, action))) return true;
  return access[action].some((role) => caller.roles.includes(role)) && caller.can(`portal:servers:${action === 'view' ? 'read' : 'use'}`);
}

export const allowedActions = (access: AccessMap, server: ServerRef, caller: Caller): Action[] => ACTIONS.filter((a) => actionAllowed(access, server, caller, a));

const ruleMatches = (r: ToolRule, tool: string, caller: Caller) =>
  (r.tool === tool || r.tool === '*') && (r.subject_type === 'role' ? caller.roles.includes(r.subject) : r.subject === caller.chittyId);

export type Decision = { allowed: boolean; reason: string };

export function toolAllowed(rules: readonly ToolRule[], serverId: string, tool: string, caller: Caller): Decision {
  const deny = rules.find((r) => r.effect === 'deny' && ruleMatches(r, tool, caller));
  if (deny) return { allowed: false, reason: `denied by rule for ${deny.subject_type} ${deny.subject}` };
  if (caller.can(`mcp:${serverId}:tool:${tool}`)) return { allowed: true, reason: 'granted permission' };
  const allows = rules.filter((r) => r.effect === 'allow' && (r.tool === tool || r.tool === '*'));
  if (allows.length === 0) return { allowed: true, reason: 'no rule restricts this tool' };
  return allows.some((r) => ruleMatches(r, tool, caller)) ? { allowed: true, reason: 'allowed by rule' } : { allowed: false, reason: 'not on the tool’s allow list' };
}
