import { ORPCError } from '@orpc/server';
import { os } from '../orpc';
import { hostRoute, pathRoute } from './gateway.proxy';
import { gatewayHost } from './hostname';

export const gateway = {
  encode: os.gateway.encode.handler(async ({ input, context }) => {
    const { env } = context;
    if (!env.GATEWAY_DOMAIN) throw new ORPCError('NOT_CONFIGURED', { status: 503, message: 'GATEWAY_DOMAIN is not set; hostname routes are off' });
    const domain = input.domain.toLowerCase();
    const host = gatewayHost(domain, env.GATEWAY_DOMAIN);
    const origin = `${new URL(env.ISSUER).protocol}//${host}`;
    const route = await hostRoute(context.db, origin, domain);
    return { domain, host, url: `${origin}/mcp`, server_id: route?.serverId ?? null, path_url: route ? pathRoute(env, route.serverId).resource : null };
  }),
};
