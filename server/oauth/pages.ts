/**
 * The HTML of the authorization pages: plain forms that work without JavaScript, labelled controls,
 * and nothing loaded from another origin. Every value is escaped.
 */
import type { GatewayConsent, GatewayTools } from '../gateway/consent';

export const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  // Clickjacking: the pages may never be framed (RFC 9700 §4.16).
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

/**
 * Headers of a page whose form can end in a redirect back to the client (login, consent). Browsers check
 * `form-action` against every redirect that follows a form submission (Chromium blocks the 303 to the
 * redirect URI otherwise), so the redirect URI's origin (a private-use scheme for native apps) is allowed
 * besides 'self'.
 */
export function formPageHeaders(redirectUri: string): Record<string, string> {
  const url = new URL(redirectUri);
  const source = url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : url.protocol;
  return { 'content-security-policy': PAGE_HEADERS['content-security-policy'].replace("form-action 'self'", `form-action 'self' ${source}`) };
}

const STYLE = `
body{font:16px/1.5 system-ui,sans-serif;background:#f4f5f7;color:#1d2433;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.08);padding:32px;max-width:420px;width:100%;box-sizing:border-box}
h1{font-size:1.35rem;margin:0 0 8px}p{margin:8px 0}label{display:block;font-weight:600;margin:16px 0 4px}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:10px;border:1px solid #c5cad3;border-radius:8px;font-size:1rem}
button{font-size:1rem;padding:10px 18px;border-radius:8px;border:1px solid #2f5bd3;cursor:pointer;margin-top:20px}
.primary{background:#2f5bd3;color:#fff}.secondary{background:#fff;color:#2f5bd3}
button:focus-visible,input:focus-visible{outline:3px solid #f5a623;outline-offset:2px}
.actions{display:flex;gap:12px;justify-content:flex-end}.error{background:#fdecec;color:#a11;padding:10px;border-radius:8px}
.warn{background:#fff6e0;color:#7a5200;padding:10px;border-radius:8px}ul{padding-left:20px}code{background:#eef0f4;padding:1px 4px;border-radius:4px}
.muted{color:#5b6475;font-size:.9rem}h2{font-size:1.05rem;margin:20px 0 4px}.server{border:1px solid #dfe3ea;border-radius:8px;padding:10px 12px;margin:12px 0}
.server code{word-break:break-all}`;

export function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(title)} · ChittyAuth</title><style>${STYLE}</style></head><body><main>${body}</main></body></html>`;
}

export function loginPage(o: { action: string; csrf: string; request: string; clientName: string; error?: string; username?: string }): string {
  return page(
    'Sign in',
    `<h1>Sign in to ChittyAuth</h1>
<p class="muted">to continue to <strong>${esc(o.clientName)}</strong></p>
${o.error ? `<p class="error" role="alert">${esc(o.error)}</p>` : ''}
<form method="post" action="${esc(o.action)}">
<input type="hidden" name="csrf_token" value="${esc(o.csrf)}">
<input type="hidden" name="request" value="${esc(o.request)}">
<label for="username">Username</label>
<input type="text" id="username" name="username" autocomplete="username" required autofocus value="${esc(o.username ?? '')}">
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<div class="actions"><button class="primary" type="submit" name="action" value="login">Sign in</button></div>
</form>`,
  );
}

export interface ConsentView {
  action: string;
  csrf: string;
  request: string;
  clientName: string;
  clientId: string;
  redirectHost: string;
  loopbackOnly: boolean;
  scopes: { name: string; description: string }[];
  resource: string;
  /** The MCP server's name, for a direct resource (a portal server ChittyAuth protects); null: ChittyAuth itself. */
  resourceName?: string | null;
  /** Set for a gateway route: the upstream, the tools the policy lets the application call, how the upstream is reached. */
  gateway?: GatewayConsent | null;
  username: string;
}

/** The tools of a gateway route under the portal's policy (consent page and connect page). */
export function toolsSection(name: string, tools: GatewayTools, heading: string): string {
  const item = (t: { name: string; title: string | null; description: string | null }) =>
    `<li><code>${esc(t.name)}</code>${t.title && t.title !== t.name ? ` ${esc(t.title)}` : ''}${t.description ? ` — ${esc(t.description)}` : ''}</li>`;
  if (!tools.known) {
    const refused = tools.refusedByName.length
      ? `<p class="muted">Refused to you by name under the current policy: ${tools.refusedByName.map((t) => `<code>${esc(t.name)}</code>`).join(', ')}.</p>`
      : '';
    return `<h2>${esc(heading)}</h2>
<p class="warn" role="note" id="tools-unknown">ChittyAuth does not know the tools of ${esc(name)} yet: the portal has not listed them (its last check: ${esc(tools.status)}${tools.checkedAt ? `, ${esc(tools.checkedAt)}` : ''}). Whatever they are, the portal's policy is checked on every call.</p>${refused}`;
  }
  const callable = tools.callable.length ? `<ul id="callable-tools">${tools.callable.map(item).join('')}</ul>` : '<p id="callable-tools">None.</p>';
  const refused = tools.refused.length
    ? `<p class="muted">Not callable under the portal's current policy:</p><ul class="muted" id="refused-tools">${tools.refused.map((t) => `<li><code>${esc(t.name)}</code> (${esc(t.reason)})</li>`).join('')}</ul>`
    : '';
  return `<h2>${esc(heading)}</h2>${callable}${refused}`;
}

/** The upstream, its tools and how it is reached: what a consent to a gateway route grants. */
function gatewaySection(g: GatewayConsent, clientName: string): string {
  if (!g.found) {
    return '<p class="warn" role="note">No MCP server that you can see is registered at this gateway route: the application\'s calls to it will be refused.</p>';
  }
  const { server } = g;
  const reach =
    g.upstreamAuth.kind === 'oauth'
      ? g.upstreamAuth.connected
        ? `The gateway calls ${esc(server.name)} with the connection you made to it; ${esc(clientName)} never sees that credential.`
        : `${esc(server.name)} has its own sign-in. Approving here does not sign you in there: on the first call you will be asked to open <code>${esc(g.upstreamAuth.connectUrl)}</code>, where you approve that separately, at ${esc(new URL(server.url).host)}. ${esc(clientName)} never sees that credential.`
      : `The gateway calls ${esc(server.name)} with the credential its registration holds; ${esc(clientName)} never sees it.`;
  return `<div class="server" aria-label="MCP server"><strong>${esc(server.name)}</strong><br><code>${esc(server.url)}</code>${server.description ? `<p class="muted">${esc(server.description)}</p>` : ''}</div>
${g.blocked ? `<p class="warn" role="note">${esc(g.blocked)}</p>` : ''}
${toolsSection(server.name, g.tools, 'Tools it will be able to call')}
<p class="muted">${reach}</p>`;
}

export function consentPage(v: ConsentView): string {
  return page(
    'Authorize',
    `<h1>Authorize ${esc(v.clientName)}</h1>
<p><strong>${esc(v.clientName)}</strong> wants to ${target(v)} as <strong>${esc(v.username)}</strong>.</p>
<p class="muted">Client ID: <code>${esc(v.clientId)}</code><br>You will be sent back to <strong>${esc(v.redirectHost)}</strong>.</p>
${v.loopbackOnly ? '<p class="warn" role="note">This application runs on your own computer (it redirects to localhost). Only approve it if you started it yourself.</p>' : ''}
${v.gateway ? gatewaySection(v.gateway, v.clientName) : ''}
<p>${v.gateway ? 'Its permissions on this route:' : 'It will be able to:'}</p>
<ul id="scopes">${v.scopes.map((s) => `<li><code>${esc(s.name)}</code> — ${esc(s.description)}</li>`).join('')}</ul>
<p class="muted">For the resource <code>${esc(v.resource)}</code></p>
<form method="post" action="${esc(v.action)}">
<input type="hidden" name="csrf_token" value="${esc(v.csrf)}">
<input type="hidden" name="request" value="${esc(v.request)}">
<div class="actions">
<button class="secondary" type="submit" name="action" value="deny">Deny</button>
<button class="primary" type="submit" name="action" value="approve">Approve</button>
</div>
</form>`,
  );
}

function target(v: ConsentView): string {
  if (v.gateway?.found) return `use the MCP server <strong>${esc(v.gateway.server.name)}</strong> through ChittyAuth's gateway`;
  if (v.gateway) return `use a ChittyAuth gateway route`;
  return v.resourceName ? `access the MCP server <strong>${esc(v.resourceName)}</strong>` : 'access ChittyAuth';
}

export function errorPage(title: string, message: string): string {
  return page(title, `<h1>${esc(title)}</h1><p class="error" role="alert">${esc(message)}</p><p class="muted">You can close this window.</p>`);
}

export const SCOPE_DESCRIPTIONS: Record<string, string> = {
  'mcp:read': 'read your identities, API keys, sessions, grants and audit events, and validate credentials',
  'mcp:write': 'act with your full permissions: create and revoke API keys, JWTs and grants',
  'chittyos:services': 'validate credentials and check permissions on behalf of ChittyOS services',
  cross_sync: 'sync your MCP state across devices',
};
