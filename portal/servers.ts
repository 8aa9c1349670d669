/**
 * Servers: the MCP servers the caller may see, with status, filters (tag, status, text) and cursor
 * pagination, and the "Register server" form (servers.register).
 */
import { client, errorBox, type PageContext } from './api';
import { badge, busy, button, empty, field, fill, h, loading, notice, select, table, time, words } from './dom';

export type Server = Awaited<ReturnType<typeof client.servers.get>>;

export const STATUSES = ['ready', 'unauthorized', 'error', 'unreachable', 'unknown'] as const;
const PAGE_SIZE = 20;

/** Kept between visits, so coming back from a server's page shows the same list. */
const state = { tag: '', status: '', q: '', cursors: [] as string[], flash: '' };

/** Shown once on the next list render (e.g. "Removed X" after a delete). */
export function flashOnServers(message: string) {
  state.flash = message;
}

export const statusBadge = (status: string) => badge(status, status);

export async function renderServers(ctx: PageContext): Promise<void> {
  const { root, me } = ctx;
  const listEl = h('div', { class: 'list' });
  const status = h('div', { class: 'flash' });
  if (state.flash) status.append(notice(state.flash));
  state.flash = '';
  const formWrap = h('div', { id: 'register-panel', hidden: true });
  const toggle = h('button', { type: 'button', class: 'primary', 'aria-expanded': 'false', 'aria-controls': 'register-panel' }, 'Register server');
  const showForm = (open: boolean) => {
    formWrap.hidden = !open;
    toggle.setAttribute('aria-expanded', String(open));
    if (open) formWrap.querySelector<HTMLInputElement>('input')?.focus();
  };
  toggle.addEventListener('click', () => showForm(formWrap.hidden));
  fill(
    formWrap,
    registerForm(ctx, async (name) => {
      showForm(false);
      state.cursors = [];
      status.replaceChildren(notice(`Registered ${name}.`));
      await loadList();
    }),
  );
  // Filters: a form, so Enter applies them from any field.
  const tag = h('input', { type: 'text', name: 'tag', value: state.tag, placeholder: 'e.g. demo', autocomplete: 'off' });
  const statusSel = select('status', [['', 'Any status'], ...STATUSES.map((s): [string, string] => [s, s])], state.status);
  const q = h('input', { type: 'search', name: 'q', value: state.q, placeholder: 'Name, id or description', autocomplete: 'off' });
  const filters = h(
    'form',
    { class: 'filters', 'aria-label': 'Filter servers' },
    field('Tag', tag),
    field('Status', statusSel),
    field('Search', q),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'secondary' }, 'Apply filters'), button('Clear', () => {
      tag.value = q.value = statusSel.value = '';
      filters.requestSubmit();
    }, 'link')),
  );
  filters.addEventListener('submit', (e) => {
    e.preventDefault();
    Object.assign(state, { tag: tag.value.trim(), status: statusSel.value, q: q.value.trim(), cursors: [] });
    void loadList();
  });

  fill(
    root,
    h('div', { class: 'page-head' }, h('h1', { tabindex: '-1' }, 'MCP servers'), toggle),
    me.can('portal:servers:register') ? null : h('p', { class: 'hint' }, 'Registering a server needs the portal:servers:register permission; an administrator can grant it.'),
    status,
    formWrap,
    filters,
    listEl,
  );

  async function loadList() {
    fill(listEl, loading('Loading servers…'));
    const filtered = !!(state.tag || state.status || state.q);
    try {
      const page = await client.servers.list({
        limit: PAGE_SIZE,
        ...(state.tag ? { tag: state.tag } : {}),
        ...(state.status ? { status: state.status as Server['status'] } : {}),
        ...(state.q ? { q: state.q } : {}),
        ...(state.cursors.length ? { cursor: state.cursors.at(-1)! } : {}),
      });
      if (!ctx.alive()) return;
      if (page.items.length === 0) {
        fill(
          listEl,
          filtered
            ? empty(h('p', null, 'No servers match these filters.'))
            : empty(h('p', null, 'No servers yet — register one.'), button('Register a server', () => showForm(true), 'primary')),
        );
        return;
      }
      const rows = page.items.map((s) => [
        h('a', { href: `#/servers/${encodeURIComponent(s.server_id)}`, class: 'strong' }, s.name),
        h('code', null, s.server_id),
        statusBadge(s.status),
        s.tags.length ? h('ul', { class: 'tags' }, s.tags.map((t) => h('li', null, t))) : '—',
        String(s.tools.length),
        time(s.checked_at, 'never'),
        s.enabled_for_me ? 'on' : 'off',
      ]);
      const pager = h('div', { class: 'pager' });
      if (state.cursors.length) pager.append(button('Previous page', () => (state.cursors.pop(), void loadList())));
      if (page.next_cursor) pager.append(button('Next page', () => (state.cursors.push(page.next_cursor!), void loadList())));
      fill(listEl, table('Registered MCP servers', ['Name', 'Server id', 'Status', 'Tags', 'Tools', 'Last checked', 'For me'], rows, 'servers'), pager);
    } catch (error) {
      if (ctx.alive()) fill(listEl, errorBox(error, 'Could not list servers'));
    }
  }
  await loadList();
}

/** Auth fields shared by the register and edit forms: none, or a header with its secret value. */
export function authFields(initial: 'none' | 'header' | 'keep' = 'none', allowKeep = false) {
  const type = select('auth', [...(allowKeep ? [['keep', 'Keep current'] as [string, string]] : []), ['none', 'None'], ['header', 'Header (API key)']], initial);
  const headerName = h('input', { type: 'text', name: 'header_name', placeholder: 'Authorization', autocomplete: 'off' });
  const headerValue = h('input', { type: 'password', name: 'header_value', autocomplete: 'off' });
  const headerBox = h('div', { class: 'grid2' }, field('Header name', headerName), field('Header value', headerValue, 'Stored encrypted; never shown again.'));
  const sync = () => {
    headerBox.hidden = type.value !== 'header';
    headerName.required = headerValue.required = type.value === 'header';
  };
  type.addEventListener('change', sync);
  sync();
  const value = () =>
    type.value === 'header'
      ? { type: 'header' as const, header_name: headerName.value.trim(), header_value: headerValue.value }
      : type.value === 'none'
        ? { type: 'none' as const }
        : undefined;
  return { el: h('div', null, field('Authentication to the server', type), headerBox), value };
}

function registerForm(ctx: PageContext, onDone: (name: string) => Promise<void>): HTMLFormElement {
  const serverId = h('input', { type: 'text', name: 'server_id', required: true, pattern: '[a-z0-9][a-z0-9\\-]{1,62}[a-z0-9]', autocomplete: 'off' });
  const name = h('input', { type: 'text', name: 'name', required: true, maxlength: 100 });
  const description = h('textarea', { name: 'description', rows: 2, maxlength: 1000 });
  const url = h('input', { type: 'url', name: 'mcp_url', required: true, placeholder: 'https://mcp.example.com/mcp' });
  const tags = h('input', { type: 'text', name: 'tags', placeholder: 'demo, internal' });
  const auth = authFields();
  const result = h('div');
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Register');
  const form = h(
    'form',
    { class: 'panel', 'aria-labelledby': 'register-title' },
    h('h2', { id: 'register-title' }, 'Register an MCP server'),
    h('div', { class: 'grid2' }, field('Server id', serverId, '3–64 characters: a-z, 0-9 and -'), field('Name', name)),
    field('Description', description),
    field('MCP URL', url, 'The Streamable HTTP endpoint; https to a public address.'),
    auth.el,
    field('Tags', tags, 'Comma-separated, lowercase.'),
    result,
    h('div', { class: 'actions' }, submit),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void busy(submit, async () => {
      fill(result, loading('Registering and checking the server…'));
      try {
        const out = await client.servers.register({
          server_id: serverId.value.trim(),
          name: name.value.trim(),
          ...(description.value.trim() ? { description: description.value.trim() } : {}),
          endpoints: { mcp: url.value.trim() },
          auth: auth.value() ?? { type: 'none' },
          tags: words(tags.value.toLowerCase()),
        });
        if (!ctx.alive()) return;
        form.reset();
        form.querySelector('select[name=auth]')?.dispatchEvent(new Event('change'));
        fill(result);
        await onDone(out.server.name);
      } catch (error) {
        if (ctx.alive()) fill(result, errorBox(error, 'Registration failed'));
      }
    });
  });
  return form;
}
