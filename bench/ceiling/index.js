// The ceiling: a Worker that answers 200 at once. Served by `wrangler dev` exactly like ChittyAuth, so its
// requests/s is the most this machine, this runtime and this load generator can do together.
//
// POST /forward is the ceiling of a proxy: it passes the request straight to UPSTREAM_URL (a --var set by
// bench/run.ts) with one fetch and streams the answer back, with no checks at all. What a gateway costs
// beyond that is its own work; what this costs beyond calling the upstream directly is the runtime's hop.
export default {
  async fetch(request, env) {
    if (request.method === 'POST' && new URL(request.url).pathname === '/forward' && env.UPSTREAM_URL) {
      const headers = new Headers();
      for (const name of ['content-type', 'accept', 'mcp-protocol-version']) {
        const value = request.headers.get(name);
        if (value) headers.set(name, value);
      }
      const upstream = await fetch(env.UPSTREAM_URL, { method: 'POST', headers, body: request.body });
      return new Response(upstream.body, { status: upstream.status, headers: { 'content-type': upstream.headers.get('content-type') ?? 'application/json' } });
    }
    return new Response('ok');
  },
};
