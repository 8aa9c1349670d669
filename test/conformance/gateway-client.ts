/**
 * The MCP conformance suite's client under test, for its auth scenarios: ChittyAuth's gateway as the OAuth
 * client of the suite's mock MCP server and authorization server. The suite runs this with the mock server's
 * URL as the last argument; the test (test/e2e/conformance.test.ts) passes ChittyAuth's URL and an admin's
 * credentials in the environment. It does what an administrator and a user would: register the server in the
 * portal with OAuth, open /gw/{id}/connect (portal sign-in, Approve), follow the upstream's authorization
 * redirect back to /gw/callback, then speak MCP through /gw/{id}/mcp with the v2 SDK client (`auto`: the
 * suite's mock servers speak 2026-07-28), calling a tool; when the gateway answers -32001 ("connect again",
 * after a step-up or a refused token) the user connects again, at most twice, and the call is retried.
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { ScriptedBrowser } from '../helpers/gateway-e2e';

const serverUrl = process.argv.at(-1)!;
const base = process.env.CHITTYAUTH_URL!;
const apiKey = process.env.CHITTYAUTH_API_KEY!;
const username = process.env.CHITTYAUTH_USERNAME!;
const password = process.env.CHITTYAUTH_PASSWORD!;

async function main() {
  const serverId = `conformance-${Math.random().toString(36).slice(2, 10)}`;
  // Scenarios that give the client pre-registered credentials (auth/pre-registration) pass them here; an
  // administrator enters them in the registry.
  const context = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT ?? '{}') as { client_id?: string; client_secret?: string };
  const auth = context.client_id && context.client_secret ? { type: 'oauth', client_id: context.client_id, client_secret: context.client_secret } : { type: 'oauth' };
  const registered = await fetch(`${base}/v1/servers/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ server_id: serverId, name: `Conformance ${process.env.MCP_CONFORMANCE_SCENARIO}`, endpoints: { mcp: serverUrl }, auth }),
  });
  if (!registered.ok) throw new Error(`registering ${serverUrl}: ${registered.status} ${await registered.text()}`);

  const browser = new ScriptedBrowser();
  const connectUrl = `${base}/gw/${serverId}/connect`;
  const connect = async () => {
    let page = await browser.go(connectUrl);
    if (new URL(page.url).pathname === '/portal/login') page = await browser.submit(page, { username, password });
    if (page.url !== connectUrl) throw new Error(`expected the connect page, got ${page.url}: ${text(page.html)}`);
    // Approve: the gateway sends the browser to the upstream's authorization endpoint, which (the suite's mock)
    // redirects straight back to /gw/callback with a code.
    const done = await browser.submit(page, { action: 'approve' });
    if (!done.html.includes('Connected')) throw new Error(`the connection did not complete (${done.status} at ${done.url}): ${text(done.html)}`);
  };
  await connect();

  for (let attempt = 0; ; attempt++) {
    const client = new Client({ name: 'chittyauth-gateway-conformance', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
    try {
      await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/gw/${serverId}/mcp`), { requestInit: { headers: { authorization: `Bearer ${apiKey}` } } }));
      const { tools } = await client.listTools();
      if (tools[0]) await client.callTool({ name: tools[0].name, arguments: {} });
      return;
    } catch (error) {
      if ((error as { code?: unknown }).code !== -32001 || attempt >= 2) throw error;
      await connect();
    } finally {
      await client.close().catch(() => {});
    }
  }
}

/** A page's error paragraph, or its text. */
const text = (html: string) => (/<p class="error"[^>]*>([\s\S]*?)<\/p>/.exec(html)?.[1] ?? html.replace(/<style[\s\S]*?<\/style>/g, '').replace(/<[^>]+>/g, ' ')).replace(/\s+/g, ' ').trim().slice(0, 500);

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
