/**
 * An in-memory OAuthClientProvider, as an MCP host would implement one, for both generations of the MCP SDK
 * (v1 `@modelcontextprotocol/sdk`, v2 `@modelcontextprotocol/client`: the interface is the same shape). It
 * stores what the SDK hands it unchanged, and its redirectToAuthorization "opens a browser" (the scripted user
 * agent of oauth-forms.ts, which signs in and approves) and keeps the redirect back.
 */
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import { randomBytes } from 'node:crypto';
import { authorizeAsBrowser, type BrowserTrip, type User } from './oauth-forms';

export class ScriptedOAuthProvider implements OAuthClientProvider {
  client?: OAuthClientInformationMixed;
  saved?: OAuthTokens;
  verifier?: string;
  readonly states: string[] = [];
  readonly trips: { authorizationUrl: URL; trip: BrowserTrip }[] = [];

  constructor(
    private readonly redirect: string,
    private readonly user: User,
    private readonly clientName = 'MCP SDK e2e client',
  ) {}

  get redirectUrl() {
    return this.redirect;
  }

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: this.clientName,
      redirect_uris: [this.redirect],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state() {
    const s = randomBytes(16).toString('base64url');
    this.states.push(s);
    return s;
  }

  clientInformation() {
    return this.client;
  }

  saveClientInformation(info: OAuthClientInformationMixed) {
    this.client = info;
  }

  tokens() {
    return this.saved;
  }

  saveTokens(tokens: OAuthTokens) {
    this.saved = tokens;
  }

  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }

  codeVerifier() {
    if (!this.verifier) throw new Error('no code verifier saved');
    return this.verifier;
  }

  async redirectToAuthorization(authorizationUrl: URL) {
    this.trips.push({ authorizationUrl, trip: await authorizeAsBrowser(authorizationUrl, this.user, 'approve') });
  }

  /** The authorization code of the last trip through the browser. */
  lastCode(): string {
    const code = this.trips.at(-1)?.trip.location.searchParams.get('code');
    if (!code) throw new Error(`no code in the redirect: ${this.trips.at(-1)?.trip.location}`);
    return code;
  }
}
