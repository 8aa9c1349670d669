import { isContractProcedure, type AnyContractProcedure } from '@orpc/contract';
import type { ProcedureMeta } from './base';

export interface ContractEntry {
  /** Router path, e.g. ['apiKeys', 'create']. */
  path: string[];
  /** Dotted name, e.g. 'apiKeys.create'. */
  name: string;
  procedure: AnyContractProcedure;
  meta: ProcedureMeta;
  method: string;
  /** REST path relative to /v1, e.g. '/api-keys/{key_id}'. */
  route: string;
}

/** Every procedure of a contract router, in declaration order. */
export function walkContract(router: unknown, prefix: string[] = []): ContractEntry[] {
  if (isContractProcedure(router)) {
    const def = router['~orpc'];
    return [
      {
        path: prefix,
        name: prefix.join('.'),
        procedure: router,
        meta: def.meta as ProcedureMeta,
        method: def.route.method ?? 'POST',
        route: def.route.path ?? `/${prefix.join('/')}`,
      },
    ];
  }
  if (typeof router !== 'object' || router === null) return [];
  return Object.entries(router).flatMap(([key, child]) => walkContract(child, [...prefix, key]));
}
