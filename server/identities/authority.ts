import { ORPCError } from '@orpc/server';
import type { DB, IdentitiesTable } from '../db/schema';
import type { Env } from '../env';
import { nowIso } from '../lib/time';
import { formatChittyId, parseChittyId, randomIdentifier, type IdentityType } from './chitty-id';
import { findIdentity, insertIdentity } from './identities.store';

/**
 * The identity authority. By default the Worker is its own authority. With CHITTYID_ENDPOINT set it
 * never mints locally, and anything that needs the authority fails closed (503) when it cannot be reached.
 *
 * External authority protocol (JSON over HTTPS):
 *   POST {endpoint}/v1/chittyids            {type, identifier?, display_name?} → 201 {chitty_id}
 *   GET  {endpoint}/v1/chittyids/{id}       → 200 {chitty_id, status: "active"|"disabled"} | 404
 * with `Authorization: Bearer {CHITTYID_API_KEY}` when that secret is set. Identities the authority
 * vouched for are recorded locally and not asked about again; disable them here too.
 */
const TIMEOUT_MS = 5_000;

const unavailable = (why: string) =>
  new ORPCError('SERVICE_UNAVAILABLE', {
    status: 503,
    message: `The ChittyID authority cannot be reached (${why}); identity operations fail closed until it answers`,
  });

const externalOrigin = (env: Env) => (env.CHITTYID_ENDPOINT ? new URL(env.CHITTYID_ENDPOINT).origin : null);

async function callAuthority(env: Env, path: string, init: RequestInit = {}): Promise<Response> {
  if (env.CHITTYID_API_KEY) init = { ...init, headers: { ...(init.headers as Record<string, string> | undefined), authorization: `Bearer ${env.CHITTYID_API_KEY}` } };
  // `{endpoint}{path}`: the endpoint may carry a path prefix, which `new URL(path, endpoint)` would drop.
  const url = new URL(`${env.CHITTYID_ENDPOINT!.replace(/\/+$/, '')}${path}`);
  try {
    // Redirects are not followed (workerd has no redirect: 'error'): a 3xx is not an answer, so it fails closed below.
    return await fetch(url, { ...init, signal: AbortSignal.timeout(TIMEOUT_MS), redirect: 'manual' });
  } catch (error) {
    throw unavailable(error instanceof Error && error.name === 'TimeoutError' ? 'timeout' : 'network error');
  }
}

export interface MintRequest {
  type: IdentityType;
  identifier?: string;
  displayName?: string | null;
}

/** Mints a ChittyID and records the identity locally. */
export async function mintIdentity(env: Env, db: DB, req: MintRequest): Promise<IdentitiesTable> {
  const origin = externalOrigin(env);
  let chittyId: string;
  if (origin) {
    const res = await callAuthority(env, '/v1/chittyids', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: req.type, identifier: req.identifier, display_name: req.displayName ?? undefined }),
    });
    if (res.status === 409) throw new ORPCError('CONFLICT', { status: 409, message: 'The authority already has that ChittyID' });
    if (!res.ok) throw unavailable(`HTTP ${res.status}`);
    const body = (await res.json().catch(() => null)) as { chitty_id?: unknown } | null;
    const minted = typeof body?.chitty_id === 'string' ? body.chitty_id : '';
    if (!parseChittyId(minted).ok) throw unavailable('it answered with an invalid ChittyID');
    chittyId = minted;
  } else {
    chittyId = formatChittyId(req.type, req.identifier ?? randomIdentifier());
  }
  const now = nowIso();
  const row: IdentitiesTable = {
    chitty_id: chittyId,
    type: req.type,
    display_name: req.displayName ?? null,
    status: 'active',
    authority: origin ?? 'local',
    created_at: now,
    updated_at: now,
  };
  try {
    await insertIdentity(db, row);
  } catch (error) {
    if (String(error).includes('UNIQUE') || String(error).includes('PRIMARY')) {
      throw new ORPCError('CONFLICT', { status: 409, message: `ChittyID ${chittyId} already exists` });
    }
    throw error;
  }
  return row;
}

export type Resolution =
  | { ok: true; identity: IdentitiesTable }
  | { ok: false; reason: 'malformed' | 'bad_check' | 'unknown_type' | 'not_registered' };

/**
 * Resolves a ChittyID to its identity. With an external authority an id not known locally is asked of
 * the authority (and recorded when it vouches for it); an unreachable authority is a 503, never a guess.
 */
export async function resolveIdentity(env: Env, db: DB, chittyId: string): Promise<Resolution> {
  const parsed = parseChittyId(chittyId);
  if (!parsed.ok) return parsed;
  const local = await findIdentity(db, chittyId);
  const origin = externalOrigin(env);
  if (local || !origin) return local ? { ok: true, identity: local } : { ok: false, reason: 'not_registered' };

  const res = await callAuthority(env, `/v1/chittyids/${encodeURIComponent(chittyId)}`);
  if (res.status === 404) return { ok: false, reason: 'not_registered' };
  if (!res.ok) throw unavailable(`HTTP ${res.status}`);
  const body = (await res.json().catch(() => null)) as { chitty_id?: unknown; status?: unknown } | null;
  // Fail closed on an answer we cannot read: it must name this ChittyID and a known status.
  if (body?.chitty_id !== chittyId || (body.status !== 'active' && body.status !== 'disabled')) throw unavailable('it answered with an unreadable record');
  const now = nowIso();
  const identity: IdentitiesTable = {
    chitty_id: chittyId,
    type: parsed.type,
    display_name: null,
    status: body.status,
    authority: origin,
    created_at: now,
    updated_at: now,
  };
  await db.insertInto('identities').values(identity).onConflict((oc) => oc.doNothing()).execute();
  return { ok: true, identity };
}

/** Resolves or throws NOT_FOUND: for procedures that act on an existing ChittyID. */
export async function requireIdentity(env: Env, db: DB, chittyId: string): Promise<IdentitiesTable> {
  const r = await resolveIdentity(env, db, chittyId);
  if (!r.ok) throw new ORPCError('NOT_FOUND', { status: 404, message: `ChittyID ${chittyId} is not registered (${r.reason})` });
  return r.identity;
}
