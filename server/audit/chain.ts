import { sha256Hex } from '../crypto/hash';

/** The hash that precedes the first event. */
export const GENESIS_HASH = '0'.repeat(64);

export interface ChainedFields {
  seq: number;
  id: string;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  door: string;
  outcome: string;
  detail: string;
}

/** hash(n) = SHA-256(hash(n-1) ‖ canonical fields of n): editing, deleting or reordering any event breaks every later link. */
export function eventHash(prevHash: string, e: ChainedFields): Promise<string> {
  const canonical = JSON.stringify([e.seq, e.id, e.at, e.actor, e.action, e.target, e.door, e.outcome, e.detail]);
  return sha256Hex(`${prevHash}\n${canonical}`);
}
