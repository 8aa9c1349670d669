import { SmartCoercionPlugin } from '@orpc/json-schema';
import { OpenAPIHandler } from '@orpc/openapi/fetch';
import { onError } from '@orpc/server';
import { ValibotToJsonSchemaConverter } from '../../contract/json-schema';
import type { RequestContext } from '../context';
import { router } from '../router';
import { shapeError } from './errors';

/** `/v1`: REST as described by openapi.yaml. Query strings are coerced to the contract's types (`?limit=10`). */
const handler = new OpenAPIHandler(router, {
  plugins: [new SmartCoercionPlugin({ schemaConverters: [new ValibotToJsonSchemaConverter()] })],
  clientInterceptors: [onError(shapeError)],
});

export async function handleRest(request: Request, context: RequestContext): Promise<Response | null> {
  const { matched, response } = await handler.handle(request, { prefix: '/v1', context });
  if (!matched) return null;
  // RFC 6585 §4 / RFC 9110 §10.2.3: a contract error that says when to retry carries Retry-After on HTTP too.
  if (response?.status === 429) {
    const body = (await response.clone().json().catch(() => null)) as { data?: { retry_after?: unknown } } | null;
    if (typeof body?.data?.retry_after === 'number') response.headers.set('retry-after', String(body.data.retry_after));
  }
  return response;
}
