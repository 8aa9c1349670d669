import { SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { admin, ORIGIN, rest, user, type Caller } from '../../test/workers/helpers';
import { authorizeUrl, Browser, field, pkcePair, REDIRECT, registerClient } from '../../test/workers/oauth-helpers';
import { connectUpstream, denyToolForUsers, portalBrowser } from '../../test/workers/gateway-helpers';

/**
 * Consent to a gateway route (/oauth/authorize with resource ISSUER/gw/{id}/mcp or a hostname route): the page
 * names the upstream, lists the tools the portal's policy lets the person call through it, and describes the
 * route's scopes in the route's terms; the route's protected resource metadata (RFC 9728) is named after the
 * server; /gw/{id}/connect explains that the upstream's own consent follows and is separate. Everything escaped.
 */
let root: Caller;
let person: Caller & { username: string; password: string };
let clientId: string;
let n = 0;

const XSS_NAME = '<script>alert("name")</script>';
const XSS_DESCRIPTION = '<img src=x onerror=alert(1)>';

async function register(o: { mcp: string; name: string; auth?: Record<string, unknown>; description?: string; prefix?: string }) {
  const server_id = `${o.prefix ?? 'consent'}-${++n}-${crypto.randomUUID().slice(0, 6)}`;
  const res = await rest('POST', '/v1/servers/register', { server_id, name: o.name, ...(o.description ? { description: o.description } : {}), endpoints: { mcp: o.mcp }, auth: o.auth ?? { type: 'none' } }, root.token);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return server_id;
}

/** The consent page a person sees for `resource`: sign in on the login form, then the page itself. */
async function consentPage(resource: string, scope = 'mcp:read mcp:write', who = person) {
  const { challenge } = await pkcePair();
  const browser = new Browser();
  const url = authorizeUrl({ response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, scope, state: 's', code_challenge: challenge, code_challenge_method: 'S256', resource });
  const login = await (await browser.fetch(url)).text();
  const res = await browser.post(`${ORIGIN}/oauth/authorize`, { csrf_token: field(login, 'csrf_token')!, request: field(login, 'request')!, username: who.username, password: who.password, action: 'login' });
  expect(res.status).toBe(200);
  const html = await res.text();
  expect(html).toContain('value="approve"');
  return html;
}

/** The items of a list on the page, by id, as their tool names. */
const listed = (html: string, id: string) => {
  const list = new RegExp(`<ul[^>]*id="${id}">(.*?)</ul>`, 's').exec(html)?.[1] ?? '';
  return [...list.matchAll(/<li><code>([^<]*)<\/code>/g)].map((m) => m[1]);
};

beforeAll(async () => {
  root = await admin();
  person = await user(['user']);
  clientId = (await registerClient({ client_name: 'Consent Test App' })).body.client_id;
});

describe('/oauth/authorize for a gateway route', () => {
  let serverId: string;
  beforeAll(async () => {
    // https://mcp.example lists echo and add (test/fixtures/third-parties.ts); the policy denies add to users.
    serverId = await register({ mcp: 'https://mcp.example/mcp', name: 'Tools Upstream', description: 'Echo and sums', prefix: 'consent-a' });
    await denyToolForUsers(root, serverId, 'add');
  });

  it('names the upstream, its URL and the tools the policy lets the person call, not ChittyAuth', async () => {
    const html = await consentPage(`${ORIGIN}/gw/${serverId}/mcp`);
    expect(html).toContain('wants to use the MCP server <strong>Tools Upstream</strong> through ChittyAuth\'s gateway as');
    expect(html).not.toContain('access ChittyAuth');
    expect(html).toContain('<code>https://mcp.example/mcp</code>');
    expect(html).toContain('Echo and sums');
    expect(listed(html, 'callable-tools')).toEqual(['echo']);
    expect(listed(html, 'refused-tools')).toEqual(['add']);
    expect(html).toContain('denied by rule for role user');
    expect(html).toContain('with the credential its registration holds; Consent Test App never sees it');
  });

  it('describes the route’s scopes in the route’s terms, never ChittyAuth’s own powers', async () => {
    const html = await consentPage(`${ORIGIN}/gw/${serverId}/mcp`, 'mcp:read mcp:write cross_sync');
    const scopes = /<ul id="scopes">(.*?)<\/ul>/s.exec(html)![1]!;
    expect(scopes).toContain('<code>mcp:write</code> — connect to Tools Upstream through the gateway and call, as you, the tools listed as callable');
    expect(scopes).toContain('<code>mcp:read</code> — see Tools Upstream through the gateway, read-only');
    expect(scopes).toContain('<code>cross_sync</code> — nothing on this route');
    expect(scopes).not.toMatch(/API keys|JWTs|sync your MCP state/);
  });

  it('lists every tool for the owner, whom the users’ deny rule does not reach', async () => {
    const html = await consentPage(`${ORIGIN}/gw/${serverId}/mcp`, 'mcp:write', { ...root, username: 'admin', password: 'correct horse battery staple' });
    expect(listed(html, 'callable-tools')).toEqual(['echo', 'add']);
    expect(html).not.toContain('id="refused-tools"');
  });

  it('lists no tool as callable and says why when the scopes asked for do not let the application connect', async () => {
    const html = await consentPage(`${ORIGIN}/gw/${serverId}/mcp`, 'mcp:read');
    expect(html).toContain('these permissions do not let the application connect to Tools Upstream');
    expect(html).toContain('<p id="callable-tools">None.</p>');
    expect(listed(html, 'refused-tools')).toEqual(['echo', 'add']);
  });

  it('shows the same for the route’s legacy SSE resource and for its hostname route', async () => {
    const sse = await consentPage(`${ORIGIN}/gw/${serverId}/sse`);
    expect(sse).toContain('<strong>Tools Upstream</strong>');
    expect(listed(sse, 'callable-tools')).toEqual(['echo']);
    const { url } = (await (await SELF.fetch(`${ORIGIN}/encode?domain=mcp.example`)).json()) as { url: string };
    const host = await consentPage(url);
    expect(host).toContain('wants to use the MCP server <strong>Tools Upstream</strong>');
    expect(listed(host, 'callable-tools')).toEqual(['echo']);
    expect(host).toContain(`<code>${url}</code>`);
  });

  it('says the tools are not known, and names those the policy refuses, when the portal never listed them', async () => {
    // An OAuth upstream: the portal's check cannot sign in as anyone, so no tools/list was ever recorded.
    const oauthId = await register({ mcp: 'https://secure.example/mcp', name: 'Secure Upstream', auth: { type: 'oauth' } });
    await denyToolForUsers(root, oauthId, 'delete_all');
    const html = await consentPage(`${ORIGIN}/gw/${oauthId}/mcp`);
    expect(html).toContain('<strong>Secure Upstream</strong>');
    expect(html).toContain('ChittyAuth does not know the tools of Secure Upstream yet');
    expect(html).toContain('Refused to you by name under the current policy: <code>delete_all</code>');
    expect(html).not.toContain('id="callable-tools"');
    // Its own sign-in is a separate approval, at the upstream, through the connect page.
    expect(html).toContain(`you will be asked to open <code>${ORIGIN}/gw/${oauthId}/connect</code>, where you approve that separately, at secure.example`);
  });

  it('names no server when no server the person may see is at the route', async () => {
    const hidden = await register({ mcp: 'https://mcp.example/mcp', name: 'Admins Only Upstream', prefix: 'consent-b' });
    const policy = await rest('PUT', `/v1/servers/${hidden}/policy`, { access: { view: ['admin'], connect: ['admin'], call: ['admin'], admin: ['admin'] }, tools: [] }, root.token);
    expect(policy.status).toBe(200);
    for (const resource of [`${ORIGIN}/gw/${hidden}/mcp`, `${ORIGIN}/gw/never-registered/mcp`]) {
      const html = await consentPage(resource);
      expect(html).toContain('wants to use a ChittyAuth gateway route as');
      expect(html).toContain('No MCP server that you can see is registered at this gateway route');
      expect(html).not.toContain('Admins Only Upstream');
      expect(html).not.toContain('callable-tools');
    }
  });

  it('keeps ChittyAuth’s own page for ChittyAuth’s own MCP endpoint', async () => {
    const html = await consentPage(`${ORIGIN}/mcp`);
    expect(html).toContain('wants to access ChittyAuth as');
    expect(html).toContain('create and revoke API keys');
    expect(html).not.toContain('callable-tools');
  });

  it('escapes the server’s name and description from the registry', async () => {
    const xss = await register({ mcp: 'https://mcp.example/mcp', name: XSS_NAME, description: XSS_DESCRIPTION, prefix: 'consent-z' });
    const html = await consentPage(`${ORIGIN}/gw/${xss}/mcp`);
    expect(html).not.toContain('<script>alert');
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('&lt;script&gt;alert(&quot;name&quot;)&lt;/script&gt;');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    // The page carries no script of its own at all.
    expect(html).not.toMatch(/<script/i);
  });
});

describe('gateway route protected resource metadata', () => {
  it.each(['mcp', 'sse'])('names the server it fronts as resource_name (RFC 9728 §2) at /gw/{id}/%s', async (kind) => {
    const serverId = await register({ mcp: 'https://mcp.example/mcp', name: 'Named Upstream', prefix: 'consent-m' });
    const metadata = (await (await SELF.fetch(`${ORIGIN}/.well-known/oauth-protected-resource/gw/${serverId}/${kind}`)).json()) as Record<string, unknown>;
    expect(metadata).toMatchObject({ resource: `${ORIGIN}/gw/${serverId}/${kind}`, resource_name: 'Named Upstream', authorization_servers: [ORIGIN] });
  });

  it('names the server on the hostname route, and never calls a route “ChittyAuth API”', async () => {
    await register({ mcp: 'https://stream.example/mcp', name: 'Streaming Upstream' });
    const { host } = (await (await SELF.fetch(`${ORIGIN}/encode?domain=stream.example`)).json()) as { host: string };
    const metadata = (await (await SELF.fetch(`http://${host}/.well-known/oauth-protected-resource/mcp`)).json()) as Record<string, unknown>;
    expect(metadata).toMatchObject({ resource: `http://${host}/mcp`, resource_name: 'Streaming Upstream' });
    const unregistered = (await (await SELF.fetch(`${ORIGIN}/.well-known/oauth-protected-resource/gw/never-registered/mcp`)).json()) as Record<string, unknown>;
    expect(unregistered.resource_name).toBe('ChittyAuth gateway route never-registered (no MCP server registered)');
    // ChittyAuth's own resources keep their names.
    expect(((await (await SELF.fetch(`${ORIGIN}/.well-known/oauth-protected-resource/mcp`)).json()) as Record<string, unknown>).resource_name).toBe('ChittyAuth MCP server');
  });

  it('carries a hostile name as JSON data, unchanged', async () => {
    const serverId = await register({ mcp: 'https://mcp.example/mcp', name: XSS_NAME, prefix: 'consent-z' });
    const res = await SELF.fetch(`${ORIGIN}/.well-known/oauth-protected-resource/gw/${serverId}/mcp`);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(((await res.json()) as Record<string, unknown>).resource_name).toBe(XSS_NAME);
  });
});

describe('/gw/{server}/connect', () => {
  it('names the upstream and explains that its own consent follows and is separate', async () => {
    const serverId = await register({ mcp: 'https://secure.example/mcp', name: 'Secure Upstream', auth: { type: 'oauth' } });
    await denyToolForUsers(root, serverId, 'delete_all');
    const browser = await portalBrowser(person.username, person.password);
    const res = await browser.fetch(`${ORIGIN}/gw/${serverId}/connect`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('<h1>Connect Secure Upstream</h1>');
    expect(html).toContain('<code>https://secure.example/mcp</code>');
    expect(html).toContain('Next, <strong>secure.example</strong> shows its own sign-in and consent page');
    expect(html).toContain('It is separate from what you approved at ChittyAuth for each MCP client');
    expect(html).toContain('ChittyAuth does not know the tools of Secure Upstream yet');
    expect(html).toContain('Refused to you by name under the current policy: <code>delete_all</code>');
  });

  it('escapes the server’s name', async () => {
    const serverId = await register({ mcp: 'https://secure.example/mcp', name: XSS_NAME, auth: { type: 'oauth' } });
    const browser = await portalBrowser(person.username, person.password);
    const html = await (await browser.fetch(`${ORIGIN}/gw/${serverId}/connect`)).text();
    expect(html).toContain('<h1>Connect &lt;script&gt;alert(&quot;name&quot;)&lt;/script&gt;</h1>');
    expect(html).not.toMatch(/<script/i);
  });
});

describe('servers.check of an OAuth upstream', () => {
  it('lists its tools through the owner’s own connection when the owner checks, and the pages then show them under the policy', async () => {
    const serverId = await register({ mcp: 'https://secure.example/mcp', name: 'Checked Upstream', auth: { type: 'oauth' } });
    await denyToolForUsers(root, serverId, 'add');
    expect((await rest('GET', `/v1/servers/${serverId}`, undefined, root.token)).body).toMatchObject({ status: 'unauthorized', tools: [] });

    // Another admin's check has no credential of its own there, and never borrows the owner's.
    const other = await user(['admin']);
    expect((await rest('POST', `/v1/servers/${serverId}/check`, {}, other.token)).body.status).toBe('unauthorized');

    // The owner connects (connect page, upstream consent, callback), then checks.
    const done = await connectUpstream(await portalBrowser(), serverId);
    expect(done.status).toBe(200);
    const checked = await rest('POST', `/v1/servers/${serverId}/check`, {}, root.token);
    expect(checked.body.status).toBe('ready');
    expect(checked.body.tools.map((t: { name: string }) => t.name)).toEqual(['echo', 'add']);

    const consent = await consentPage(`${ORIGIN}/gw/${serverId}/mcp`);
    expect(listed(consent, 'callable-tools')).toEqual(['echo']);
    expect(listed(consent, 'refused-tools')).toEqual(['add']);
    const connect = await (await (await portalBrowser(person.username, person.password)).fetch(`${ORIGIN}/gw/${serverId}/connect`)).text();
    expect(listed(connect, 'callable-tools')).toEqual(['echo']);
    expect(listed(connect, 'refused-tools')).toEqual(['add']);

    // A later check without the owner's credential keeps the tools last listed.
    expect((await rest('POST', `/v1/servers/${serverId}/check`, {}, other.token)).body).toMatchObject({ status: 'unauthorized', tools: [{ name: 'echo' }, { name: 'add' }] });
  });
});
