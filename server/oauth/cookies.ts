import type { Env } from '../env';

/**
 * Cookies of the authorization pages: `__Host-` prefixed, Secure, HttpOnly, SameSite=Lax, Path=/.
 * Only on plain-http loopback in development is the prefix (which requires Secure) dropped.
 */
export function cookieName(env: Env, url: URL, base: string): string {
  return insecureDev(env, url) ? base : `__Host-${base}`;
}

const insecureDev = (env: Env, url: URL) => env.ENVIRONMENT === 'development' && url.protocol === 'http:';

export function setCookie(env: Env, url: URL, base: string, value: string, maxAge: number): string {
  const secure = insecureDev(env, url) ? '' : '; Secure';
  return `${cookieName(env, url, base)}=${value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAge}${secure}`;
}

export function readCookie(request: Request, name: string): string | null {
  const header = request.headers.get('cookie');
  if (!header) return null;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return null;
}
