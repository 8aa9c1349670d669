/**
 * The portal dashboard: layout (header, navigation, sign-out) and a hash router. Each page lives in its
 * own module and renders into <main>; data comes from the typed client over /rpc (see api.ts).
 */
import { csrfToken, errorBox, loadMe, user, type Me, type PageContext } from './api';
import { h, fill, loading } from './dom';
import { renderAccess } from './access';
import { renderAudit } from './audit';
import { renderServer } from './server-detail';
import { renderServers } from './servers';
import { renderSessions } from './sessions';
import { renderTokens } from './tokens';

interface Route {
  name: string;
  title: string;
  adminOnly?: boolean;
  /** Shown in the navigation only to those who hold it (the server decides anyway). */
  permission?: string;
  render(ctx: PageContext): void | Promise<void>;
}

const ROUTES: Route[] = [
  { name: 'servers', title: 'Servers', render: (ctx) => (ctx.params[0] ? renderServer(ctx, ctx.params[0]) : renderServers(ctx)) },
  { name: 'tokens', title: 'Tokens', render: renderTokens },
  { name: 'sessions', title: 'Sessions', render: renderSessions },
  { name: 'access', title: 'Access', adminOnly: true, render: renderAccess },
  { name: 'audit', title: 'Audit', permission: 'audit:events:read', render: renderAudit },
];

const app = document.getElementById('app')!;
const main = h('main', { id: 'main', tabindex: '-1' });
let renderCount = 0;

function parseHash(): { route: Route | undefined; name: string; params: string[] } {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const name = parts[0] ?? 'servers';
  return { route: ROUTES.find((r) => r.name === name), name, params: parts.slice(1) };
}

function header(me: Me | null): HTMLElement {
  const links = ROUTES.filter((r) => (!r.adminOnly || me?.isAdmin) && (!r.permission || me?.can(r.permission))).map((r) =>
    h('li', null, h('a', { href: `#/${r.name}`, 'data-route': r.name }, r.title)),
  );
  // Sign-out is a plain form POST with the CSRF token: it works even if the API is unreachable.
  const signOut = h(
    'form',
    { method: 'post', action: '/portal/logout', class: 'signout' },
    h('input', { type: 'hidden', name: 'csrf_token', value: csrfToken }),
    h('button', { type: 'submit', class: 'secondary' }, 'Sign out'),
  );
  return h(
    'header',
    { class: 'topbar' },
    h('a', { class: 'brand', href: '#/servers' }, 'ChittyAuth portal'),
    me ? h('nav', { 'aria-label': 'Main' }, h('ul', null, links)) : null,
    h('div', { class: 'whoami' }, h('span', null, 'Signed in as ', h('strong', { class: 'username' }, me?.username ?? user.username)), signOut),
  );
}

function markCurrent(name: string) {
  for (const a of Array.from(app.querySelectorAll<HTMLAnchorElement>('nav a[data-route]'))) {
    if (a.dataset.route === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

async function renderRoute(me: Me, focus: boolean) {
  const { route, name, params } = parseHash();
  const current = ++renderCount;
  markCurrent(name);
  fill(main);
  const ctx: PageContext = {
    me,
    root: main,
    params,
    alive: () => current === renderCount,
    navigate: (hash) => {
      if (location.hash === hash) void renderRoute(me, true);
      else location.hash = hash;
    },
  };
  if (!route) {
    document.title = 'Not found · ChittyAuth portal';
    fill(main, h('h1', { tabindex: '-1' }, 'Page not found'), h('p', null, 'There is no page at this address. ', h('a', { href: '#/servers' }, 'Go to the servers')));
  } else if (route.adminOnly && !me.isAdmin) {
    document.title = `${route.title} · ChittyAuth portal`;
    fill(main, h('h1', { tabindex: '-1' }, route.title), h('div', { class: 'error', role: 'alert' }, 'This page is for administrators. Your account cannot manage access.'));
  } else {
    document.title = `${route.title} · ChittyAuth portal`;
    try {
      await route.render(ctx);
    } catch (error) {
      if (ctx.alive()) fill(main, h('h1', { tabindex: '-1' }, route.title), errorBox(error));
    }
  }
  // Keyboard and screen-reader users land on the new page's heading, not back at the top of the document.
  if (focus && ctx.alive()) (main.querySelector<HTMLElement>('h1') ?? main).focus();
}

/** The skip link must not change the hash (that is the router's): it moves focus instead. */
function skipLink(): HTMLAnchorElement {
  const skip = h('a', { class: 'skip', href: '#main' }, 'Skip to content');
  skip.addEventListener('click', (e) => {
    e.preventDefault();
    main.focus();
  });
  return skip;
}

async function start() {
  fill(app, skipLink(), header(null), main);
  main.append(loading('Loading your account…'));
  let me: Me;
  try {
    me = await loadMe();
  } catch (error) {
    fill(main, h('h1', null, 'ChittyAuth portal'), errorBox(error, 'Could not load your account'));
    return;
  }
  fill(app, skipLink(), header(me), main);
  if (!location.hash) history.replaceState(null, '', '#/servers');
  window.addEventListener('hashchange', () => void renderRoute(me, true));
  await renderRoute(me, false);
}

void start();
