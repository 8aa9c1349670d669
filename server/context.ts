import type { Door } from './audit/audit.store';
import type { Authorizer } from './auth/authorizer';
import type { Principal } from './auth/authenticate';
import type { DB } from './db/schema';
import type { Env } from './env';

/** What a door hands the router for one call. */
export interface RequestContext {
  env: Env;
  db: DB;
  door: Door;
  /** Resource identifier the caller's token must be issued for (RFC 8707). */
  audience: string;
  authorization: string | null;
  ip: string | null;
  userAgent: string | null;
  /** The Cloudflare Access assertion header, for portal sign-in. */
  accessAssertion: string | null;
  waitUntil: (p: Promise<unknown>) => void;
  /** Set by a door that had to authenticate at the HTTP layer already (/mcp), so the guard does not repeat it. */
  preauthenticated?: Principal;
}

/** Set by the procedure for the audit event. */
export interface AuditNote {
  /** Who acted, when no principal authenticated (e.g. the account a sign-in was for). */
  actor: string | null;
  target: string | null;
  detail: Record<string, unknown>;
}

/** What procedures see after the shared middleware. */
export interface CallContext extends RequestContext {
  principal: Principal | null;
  authz: Authorizer | null;
  audit: AuditNote;
}
