import { importJWK, SignJWT } from 'jose';
import accessKey from '../fixtures/cf-access-key.json';

/** A Cloudflare Access assertion as Access would sign it (test key; vitest.config.ts serves the JWKS). */
export async function accessAssertion(email: string, o: { aud?: string; expiresIn?: string; issuer?: string } = {}): Promise<string> {
  const key = await importJWK(accessKey.private, 'ES256');
  return new SignJWT({ email, type: 'app' })
    .setProtectedHeader({ alg: 'ES256', kid: accessKey.private.kid })
    .setIssuer(o.issuer ?? accessKey.team)
    .setAudience(o.aud ?? accessKey.aud)
    .setSubject(crypto.randomUUID())
    .setIssuedAt()
    .setExpirationTime(o.expiresIn ?? '5m')
    .sign(key);
}
