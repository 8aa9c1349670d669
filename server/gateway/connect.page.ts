import type { DB } from '../db/schema';
import type { Env } from '../env';
import { verify } from '../oauth/csrf';
import { esc, page, PAGE_HEADERS, toolsSection } from '../oauth/pages';
import { sha256Hex } from '../crypto/hash';
import { portalCsrfToken, signedIn } from '../portal/portal.handler';
import { findServer } from '../portal/servers.store';
import { gatewayToolsForPerson } from './consent';
import { finishConnection, startConnection, UpstreamAuthError } from './upstream-oauth';

/**
 * /gw/{server}/connect and /gw/callback: a signed-in person approves that the gateway act for them at the
 * upstream (confused-deputy protection: this user, this upstream), is sent to the upstream's authorization
 * page, and comes back to the callback, which stores the connection.
 */
const html = (body: string, status = 200, headers: Record<string, string> = {}) => new Response(body, { status, headers: { ...PAGE_HEADERS, ...headers } });

export async function handleConnect(request: Request, env: Env, db: DB, serverId: string): Promise<Response> {
  const session = await signedIn(env, db, request);
  if (!session) return new Response(null, { status: 303, headers: { location: `/portal/login?return=${encodeURIComponent(`/gw/${serverId}/connect`)}` } });
  const row = await findServer(db, serverId);
  if (!row || row.auth_type !== 'oauth') return html(page('Not found', `<p class="error" role="alert">No MCP server ${esc(serverId)} that needs a connection.</p>`), 404);
  const csrf = await portalCsrfToken(env, session.cookie);

  if (request.method === 'POST') {
    const form = new URLSearchParams(new TextDecoder().decode(await request.arrayBuffer()));
    if (!(await verify(env.ENCRYPTION_KEY, 'portal-csrf', await sha256Hex(session.cookie), form.get('csrf_token')))) {
      return html(page('Invalid form', '<p class="error" role="alert">The form expired or was tampered with (CSRF check failed).</p>'), 403);
    }
    if (form.get('action') !== 'approve') return new Response(null, { status: 303, headers: { location: '/portal' } });
    try {
      return new Response(null, { status: 303, headers: { location: await startConnection(env, db, row, session.principal.chittyId), 'cache-control': 'no-store' } });
    } catch (error) {
      if (!(error instanceof UpstreamAuthError)) throw error;
      return html(page('Cannot connect', `<p class="error" role="alert">${esc(error.message)}</p>`), 502);
    }
  }
  const upstream = new URL(row.mcp_url);
  const policy = await gatewayToolsForPerson(db, row.id, session.principal.chittyId);
  return html(
    page(
      'Connect',
      `<h1>Connect ${esc(row.name)}</h1>
<div class="server" aria-label="MCP server"><strong>${esc(row.name)}</strong><br><code>${esc(row.mcp_url)}</code></div>
<p>ChittyAuth’s gateway will sign in to <strong>${esc(upstream.host)}</strong> as you and call it for you when your MCP clients use <code>/gw/${esc(row.id)}/mcp</code>. Your MCP clients never see the credentials it obtains.</p>
<h2>Two separate approvals</h2>
<p id="upstream-consent">Next, <strong>${esc(upstream.host)}</strong> shows its own sign-in and consent page. What you approve there is decided by ${esc(upstream.host)}: what it lets the gateway do for you at ${esc(row.name)}. It is separate from what you approved at ChittyAuth for each MCP client, and ChittyAuth’s portal policy still decides which tools your clients may call through the gateway.</p>
${policy?.blocked ? `<p class="warn" role="note">${esc(policy.blocked)}</p>` : ''}
${policy ? toolsSection(row.name, policy.tools, 'Tools you may call through the gateway') : ''}
<p class="muted">You will be sent to ${esc(upstream.host)}’s sign-in page, then back here.</p>
<form method="post" action="/gw/${esc(row.id)}/connect">
<input type="hidden" name="csrf_token" value="${esc(csrf)}">
<div class="actions"><button class="secondary" type="submit" name="action" value="deny">Cancel</button><button class="primary" type="submit" name="action" value="approve">Connect</button></div>
</form>`,
    ),
    200,
    // The form ends in a redirect to the upstream's authorization server, which form-action must allow.
    { 'content-security-policy': PAGE_HEADERS['content-security-policy'].replace("form-action 'self'", 'form-action https: http:') },
  );
}

export async function handleCallback(request: Request, env: Env, db: DB): Promise<Response> {
  const session = await signedIn(env, db, request);
  if (!session) return html(page('Sign in first', '<p class="error" role="alert">Sign in to the portal in this browser, then connect again.</p>'), 401);
  try {
    const serverId = await finishConnection(env, db, session.principal.chittyId, new URL(request.url).searchParams);
    return html(page('Connected', `<h1>Connected</h1><p>The gateway can now reach <strong>${esc(serverId)}</strong> for you. Your MCP clients can use <code>/gw/${esc(serverId)}/mcp</code>.</p><p><a href="/portal">Back to the portal</a></p>`));
  } catch (error) {
    if (!(error instanceof UpstreamAuthError)) throw error;
    return html(page('Not connected', `<p class="error" role="alert">${esc(error.message)}</p><p><a href="/portal">Back to the portal</a></p>`), 400);
  }
}
