/**
 * @chittyauth/resource-server: protect an MCP server (or any HTTP API) with ChittyAuth as its authorization server.
 * See README.md and docs/protect-your-mcp-server.md.
 */
export { createResourceServer, ResourceServer, type Auth, type HonoLikeContext, type NodeRequest, type NodeResponse, type RouteOptions } from './adapters.js';
export { ALGORITHMS, bearerToken, canonicalResource, metadataUrlOf, TokenVerifier, type AuthInfo, type Failure, type Principal, type ResourceServerOptions, type Verified } from './verify.js';
