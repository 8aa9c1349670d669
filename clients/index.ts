import { createORPCClient } from '@orpc/client';
import { RPCLink } from '@orpc/client/fetch';
import type { ContractRouterClient } from '@orpc/contract';
import type { contract } from '../contract';

/** Every procedure of the contract as a typed async function: `client.apiKeys.create({ name })`. */
export type ChittyAuthClient = ContractRouterClient<typeof contract>;

export interface ClientOptions {
  /** Base URL of the ChittyAuth Worker, e.g. https://auth.example.com */
  url: string;
  /** An API key (`chitty_…`). */
  apiKey?: string;
  /** Or an access token (from sign-in or OAuth). */
  token?: string;
  /** Extra headers on every call (e.g. the dashboard's x-csrf-token). */
  headers?: Record<string, string>;
  /** A fetch of your own (tests, service bindings). */
  fetch?: (request: Request) => Promise<Response>;
}

/**
 * A typed client over the RPC door (`/rpc`). Types come from the contract; no contract code ships
 * at run time. Errors are thrown as `ORPCError` with the contract's codes (`FORBIDDEN`, `NOT_FOUND`, …).
 */
export function createClient(options: ClientOptions): ChittyAuthClient {
  const credential = options.apiKey ?? options.token;
  const link = new RPCLink({
    url: new URL('/rpc', options.url).toString(),
    headers: () => ({ ...options.headers, ...(credential ? { authorization: `Bearer ${credential}` } : {}) }),
    ...(options.fetch ? { fetch: (request: Request) => options.fetch!(request) } : {}),
  });
  return createORPCClient(link);
}

export { ORPCError, isDefinedError, safe } from '@orpc/client';
