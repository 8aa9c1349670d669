import { ORPCError } from '@orpc/server';
import { authzOf, os } from '../orpc';
import { connectUrl, disconnect } from './upstream-oauth';
import { hostRoute, pathRoute } from './gateway.proxy';
import { gatewayOrigin } from './hostname';

export const gateway = {
  encode: os.gateway.encode.handler(async ({ input, context }) => {
    const { env } = context;
    if (!env.GATEWAY_DOMAIN) throw new ORPCError('NOT_CONFIGURED', { status: 503, message: 'GATEWAY_DOMAIN is not set; hostname routes are off' });
    const domain = input.domain.toLowerCase();
    // The URL can be followed as it is: the issuer's scheme and port (hostname.ts gatewayOrigin).
    const origin = gatewayOrigin(env.ISSUER, domain, env.GATEWAY_DOMAIN);
    const route = await hostRoute(context.db, origin, domain);
    return { domain, host: new URL(origin).hostname, url: `${origin}/mcp`, server_id: route?.serverId ?? null, path_url: route ? pathRoute(env, route.serverId).resource : null };
  }),

  connections: {
    list: os.gateway.connections.list.handler(async ({ context }) => {
      const me = authzOf(context).principal.chittyId;
      const rows = await context.db.selectFrom('gateway_connections').select(['server_id', 'status', 'scope', 'expires_at', 'created_at', 'updated_at']).where('chitty_id', '=', me).orderBy('server_id').execute();
      return { items: rows.map((r) => ({ ...r, connect_url: connectUrl(context.env, r.server_id) })) };
    }),

    disconnect: os.gateway.connections.disconnect.handler(async ({ input, context }) => {
      const me = authzOf(context).principal.chittyId;
      const existing = await context.db.selectFrom('gateway_connections').select('server_id').where('chitty_id', '=', me).where('server_id', '=', input.server_id).executeTakeFirst();
      if (!existing) throw new ORPCError('NOT_FOUND', { status: 404, message: `You have no connection to ${input.server_id}` });
      const result = await disconnect(context.env, context.db, me, input.server_id);
      context.audit.target = input.server_id;
      context.audit.detail = result;
      return { disconnected: true, ...result };
    }),
  },
};
