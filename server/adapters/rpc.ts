import { onError } from '@orpc/server';
import { RPCHandler } from '@orpc/server/fetch';
import type { RequestContext } from '../context';
import { router } from '../router';
import { shapeError } from './errors';

/** `/rpc`: oRPC's RPC protocol, for the typed client. */
const handler = new RPCHandler(router, { clientInterceptors: [onError(shapeError)] });

export async function handleRpc(request: Request, context: RequestContext): Promise<Response | null> {
  const { matched, response } = await handler.handle(request, { prefix: '/rpc', context });
  return matched ? response : null;
}
