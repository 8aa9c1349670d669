import { contract } from '../../contract';
import { buildToolManifest } from '../../contract/mcp-tools';
import { auditDenial, type Called } from '../audit/denials';
import type { AuthFailure, Principal } from '../auth/authenticate';
import type { RequestContext } from '../context';
import { scopesAllow } from '../permissions/policy';

/**
 * The MCP door refuses some calls at the HTTP layer, before the guard sees them (a 401 without a valid
 * credential, a 403 insufficient_scope step-up challenge). These write the audit event the guard would have
 * written for the same call through /v1 or /rpc, through the same function (audit/denials.ts).
 */
let byTool: Map<string, Called> | undefined;
const toolProcedures = () => (byTool ??= new Map(buildToolManifest(contract).map(({ entry, tool }) => [tool.name, entry])));

/** The procedures a JSON-RPC body (one message or a batch, as text or parsed) calls through tools/call. */
export function calledProcedures(body: unknown): Called[] {
  let parsed = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return [];
    }
  }
  const called: Called[] = [];
  for (const m of Array.isArray(parsed) ? parsed : [parsed]) {
    if (!m || typeof m !== 'object' || (m as { method?: unknown }).method !== 'tools/call') continue;
    const found = toolProcedures().get(String((m as { params?: { name?: unknown } }).params?.name));
    if (found && !found.meta.public) called.push(found);
  }
  return called;
}

/** A request refused with HTTP 401: each tools/call in it is denied as UNAUTHORIZED. */
export async function auditUnauthenticated(context: RequestContext, body: unknown, reason: AuthFailure): Promise<void> {
  for (const called of calledProcedures(body)) await auditDenial(context.db, context.door, called, { code: 'UNAUTHORIZED', reason });
}

/** A request refused with HTTP 403 insufficient_scope: each tools/call whose permission the credential's scopes lack is denied as FORBIDDEN. */
export async function auditScopeRefusal(context: RequestContext, body: unknown, principal: Principal): Promise<void> {
  for (const called of calledProcedures(body)) {
    const permission = called.meta.permission;
    if (permission && !scopesAllow(principal.scopes, permission)) await auditDenial(context.db, context.door, called, { code: 'FORBIDDEN', principal, permission });
  }
}
