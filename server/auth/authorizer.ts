import { ORPCError } from '@orpc/server';
import type { DB, GrantsTable } from '../db/schema';
import { listGrants, listGrantsCached } from '../permissions/permissions.store';
import { effectivePatterns, grantPatterns, grantsAllowing, patternsCovered, scopesAllow } from '../permissions/policy';
import type { Principal } from './authenticate';

export const forbidden = (permission: string) =>
  new ORPCError('FORBIDDEN', {
    status: 403,
    message: `Permission denied: this requires ${permission}`,
    data: { permission },
  });

/**
 * A principal's grants. An OAuth access token is checked without D1 (its grant's state is cached, see
 * grantIsLive), and so are its owner's grants; sessions and API keys are read from D1 on every request,
 * and so are theirs, in the same round trip as the credential (authenticate, withGrants).
 */
export function principalGrants(db: DB, principal: Principal): Promise<GrantsTable[]> {
  const read = prefetched.get(principal);
  if (read) return Promise.resolve(read);
  return principal.credential === 'access_token' ? listGrantsCached(db, principal.chittyId) : listGrants(db, principal.chittyId);
}

/** Grants authenticate() read together with the credential (one D1 round trip), for this request's principal. */
const prefetched = new WeakMap<Principal, GrantsTable[]>();

export function withGrants(principal: Principal, grants: GrantsTable[]): Principal {
  prefetched.set(principal, grants);
  return principal;
}

/**
 * The effective permissions of one authenticated call: the principal's grants intersected with the
 * scopes of the credential it presented (DESIGN.md "Authorization"). Grants are read once per call.
 */
export class Authorizer {
  #grants: Promise<GrantsTable[]> | undefined;

  constructor(
    private readonly db: DB,
    readonly principal: Principal,
    /** The permission the current procedure declares. */
    readonly permission: string | null,
  ) {}

  grants(): Promise<GrantsTable[]> {
    this.#grants ??= principalGrants(this.db, this.principal);
    return this.#grants;
  }

  async can(permission: string): Promise<boolean> {
    if (!scopesAllow(this.principal.scopes, permission)) return false;
    return grantsAllowing(await this.grants(), permission).length > 0;
  }

  /** Held through grants alone, whatever the credential's scopes (for step-up challenges). */
  async heldByGrants(permission: string): Promise<boolean> {
    return grantsAllowing(await this.grants(), permission).length > 0;
  }

  async require(permission: string): Promise<void> {
    if (!(await this.can(permission))) throw forbidden(permission);
  }

  /**
   * No escalation: the caller may confer (grant, put in a key) only patterns its own credential
   * effectively holds: its grants intersected with the credential's scopes.
   */
  async assertCovers(patterns: readonly string[], label: string): Promise<void> {
    if (!patternsCovered(effectivePatterns(await this.grants(), this.principal.scopes), patterns)) throw forbidden(label);
  }

  /**
   * Acting on another principal's credentials (a new API key, a password, disabling it) needs the caller
   * to hold everything that principal holds; otherwise it could take over a more privileged account.
   */
  async assertOutranks(target: string): Promise<void> {
    if (target === this.principal.chittyId) return;
    const theirs = (await listGrants(this.db, target)).flatMap(grantPatterns);
    await this.assertCovers(theirs, `everything ${target} holds`);
  }

  /**
   * The ChittyID a call acts on: the caller's own unless `target` names another, which needs the
   * `:any` form of the procedure's permission (`api_keys:revoke:any`).
   */
  async subject(target: string | null | undefined): Promise<string> {
    const own = this.principal.chittyId;
    if (!target || target === own) return own;
    if (this.permission) await this.require(`${this.permission}:any`);
    return target;
  }
}
