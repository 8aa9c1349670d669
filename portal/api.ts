/**
 * The dashboard's connection to ChittyAuth: the typed client over /rpc, authenticated by the HttpOnly
 * session cookie (sent by the browser) plus the CSRF token the /portal page hands us in a <meta> tag.
 * Without that header /rpc refuses cookie-authenticated calls, so other sites cannot use the session.
 */
import { createClient, ORPCError, type ChittyAuthClient } from '../clients/index';
import { h, type Child } from './dom';
import { matches } from '../server/permissions/policy';

const metaContent = (name: string) => document.querySelector(`meta[name="${name}"]`)?.getAttribute('content') ?? '';

export const csrfToken = metaContent('chittyauth-csrf');

export interface ShellUser {
  chitty_id: string;
  username: string;
}

function shellUser(): ShellUser {
  try {
    const u = JSON.parse(metaContent('chittyauth-user')) as Partial<ShellUser>;
    return { chitty_id: String(u.chitty_id ?? ''), username: String(u.username ?? u.chitty_id ?? '') };
  } catch {
    return { chitty_id: '', username: '' };
  }
}

export const user = shellUser();

export const client: ChittyAuthClient = createClient({ url: location.origin, headers: { 'x-csrf-token': csrfToken } });

/** The server's message for an error, with the input problems of a BAD_REQUEST spelled out. */
export function errorMessage(error: unknown): string {
  if (error instanceof ORPCError) {
    const issues = (error.data as { issues?: { path: string; message: string }[] } | undefined)?.issues;
    const detail = issues?.length ? `: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ')}` : '';
    return `${error.message}${detail}`;
  }
  if (error instanceof TypeError) return `The server could not be reached (${error.message})`;
  return error instanceof Error ? error.message : String(error);
}

export const isSignedOut = (error: unknown) => error instanceof ORPCError && (error.code === 'UNAUTHORIZED' || error.status === 401);

/** An error state: the server's message, and a way back to sign-in when the session has ended. */
export function errorBox(error: unknown, what?: string): HTMLElement {
  const parts: Child[] = [what ? h('strong', null, `${what}: `) : null, errorMessage(error)];
  if (isSignedOut(error)) parts.push(' ', h('a', { href: '/portal/login' }, 'Sign in again'));
  return h('div', { class: 'error', role: 'alert' }, ...parts);
}

/** The server's own permission matcher (pure, bundled into the page): used only to decide which controls to offer. */
export { matches };

export interface Me {
  chittyId: string;
  username: string;
  roles: string[];
  permissions: string[];
  can(permission: string): boolean;
  /** May manage accounts and grants (the Access page) and act on other accounts' credentials. */
  isAdmin: boolean;
}

export async function loadMe(): Promise<Me> {
  const me = await client.accounts.me({});
  const can = (permission: string) => me.permissions.some((p) => matches(p, permission));
  return {
    chittyId: me.chitty_id,
    username: me.account?.username ?? user.username ?? me.chitty_id,
    roles: me.account?.roles ?? [],
    permissions: me.permissions,
    can,
    isAdmin: can('accounts:users:read') && can('permissions:read:any'),
  };
}

/** What every page gets from the router. */
export interface PageContext {
  me: Me;
  /** The main region to render into (already emptied). */
  root: HTMLElement;
  /** Path segments after the page name, e.g. ['everything'] for #/servers/everything. */
  params: string[];
  /** Whether this render is still the current page (a later navigation supersedes it). */
  alive(): boolean;
  navigate(hash: string): void;
}
