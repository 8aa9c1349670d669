/**
 * One server: endpoints, status, protocol version, capabilities and tools; health check, enable/disable
 * for me, edit and remove; and, for those with admin access to it, the access policy editor (policy.ts).
 */
import { client, errorBox, type PageContext } from './api';
import { busy, button, confirmDialog, empty, field, fill, h, loading, notice, section, table, time, words, type Child } from './dom';
import { policyEditor } from './policy';
import { authFields, flashOnServers, statusBadge, type Server } from './servers';

export async function renderServer(ctx: PageContext, serverId: string): Promise<void> {
  const { root } = ctx;
  fill(root, h('p', null, h('a', { href: '#/servers' }, '← All servers')), h('h1', { tabindex: '-1' }, serverId), loading('Loading the server…'));
  let server: Server;
  try {
    server = await client.servers.get({ server_id: serverId });
  } catch (error) {
    if (ctx.alive()) fill(root, h('p', null, h('a', { href: '#/servers' }, '← All servers')), h('h1', { tabindex: '-1' }, serverId), errorBox(error, 'Could not load the server'));
    return;
  }
  if (ctx.alive()) show(ctx, server);
}

function show(ctx: PageContext, server: Server, message?: HTMLElement) {
  const { root, me } = ctx;
  const isAdmin = server.my_access.includes('admin');
  const feedback = h('div', { class: 'flash', tabindex: '-1' }, message ?? null);
  const report = (el: HTMLElement) => fill(feedback, el);

  const run = (btn: HTMLButtonElement, what: string, call: () => Promise<Server>, done: (s: Server) => string) =>
    busy(btn, async () => {
      try {
        const updated = await call();
        if (ctx.alive()) show(ctx, updated, notice(done(updated)));
      } catch (error) {
        if (ctx.alive()) report(errorBox(error, what));
      }
    });

  const actions: Child[] = [];
  if (me.can('portal:servers:check')) {
    actions.push(button('Run health check', (e) => run(e.currentTarget as HTMLButtonElement, 'Health check failed', () => client.servers.check({ server_id: server.server_id }), (s) => `Checked: ${s.status}${s.latency_ms !== null ? ` in ${s.latency_ms} ms` : ''}.`), 'primary'));
  }
  if (me.can('portal:servers:use')) {
    const next = !server.enabled_for_me;
    actions.push(button(next ? 'Enable for me' : 'Disable for me', (e) => run(e.currentTarget as HTMLButtonElement, 'Could not change it', () => client.servers.setEnabled({ server_id: server.server_id, enabled: next }), (s) => (s.enabled_for_me ? 'Enabled for you.' : 'Disabled for you.'))));
  }
  const editWrap = h('div', { id: 'edit-panel', hidden: true });
  if (isAdmin) {
    const edit = h('button', { type: 'button', class: 'secondary', 'aria-expanded': 'false', 'aria-controls': 'edit-panel' }, 'Edit');
    edit.addEventListener('click', () => {
      editWrap.hidden = !editWrap.hidden;
      edit.setAttribute('aria-expanded', String(!editWrap.hidden));
      if (!editWrap.hidden) editWrap.querySelector<HTMLInputElement>('input')?.focus();
    });
    fill(editWrap, editForm(ctx, server));
    actions.push(edit);
    actions.push(
      button('Remove', async (e) => {
        if (!(await confirmDialog(`Remove ${server.name}?`, 'Remove server', 'Its access policy and everyone’s preferences for it are removed too. This cannot be undone.'))) return;
        await busy(e.currentTarget as HTMLButtonElement, async () => {
          try {
            await client.servers.delete({ server_id: server.server_id });
            flashOnServers(`Removed ${server.name}.`);
            ctx.navigate('#/servers');
          } catch (error) {
            if (ctx.alive()) report(errorBox(error, 'Could not remove the server'));
          }
        });
      }, 'danger'),
    );
  }

  const caps = Object.keys(server.capabilities ?? {});
  fill(
    root,
    h('p', null, h('a', { href: '#/servers' }, '← All servers')),
    h('div', { class: 'page-head' }, h('h1', { tabindex: '-1' }, server.name, ' ', statusBadge(server.status)), h('div', { class: 'actions' }, actions)),
    server.description ? h('p', { class: 'lead' }, server.description) : null,
    feedback,
    editWrap,
    h(
      'div',
      { class: 'grid2' },
      section(
        'Endpoints',
        dl([
          ['Server id', h('code', null, server.server_id)],
          ['MCP URL', h('code', { class: 'break' }, server.endpoints.mcp)],
          ['Health URL', server.endpoints.health ?? '—'],
          ['OAuth callback', server.endpoints.oauth_callback ?? '—'],
          ['Transport', server.transport],
          ['Authentication', server.auth.type === 'header' ? `header ${server.auth.header_name ?? ''}` : server.auth.type],
          ['Tags', server.tags.length ? server.tags.join(', ') : '—'],
          // The ways clients reach it: always the gateway route; directly where ChittyAuth protects the server itself.
          ['Via the gateway', h('code', { class: 'break' }, server.reachable.gateway)],
          ['Directly', server.reachable.direct.length ? h('ul', { class: 'tags', 'aria-label': 'Direct resources' }, server.reachable.direct.map((r) => h('li', null, h('code', { class: 'break' }, r)))) : 'not protected directly'],
        ]),
      ),
      section(
        'Status',
        dl([
          ['Status', statusBadge(server.status)],
          ['Detail', server.status_detail ?? '—'],
          ['Latency', server.latency_ms !== null ? `${server.latency_ms} ms` : '—'],
          ['Checked', time(server.checked_at, 'never')],
          ['Protocol version', server.protocol_version ?? '—'],
          ['Enabled for me', server.enabled_for_me ? 'yes' : 'no'],
          ['My access', server.my_access.length ? server.my_access.join(', ') : 'none'],
        ]),
      ),
    ),
    section(
      'Capabilities',
      caps.length
        ? [h('ul', { class: 'tags', 'aria-label': 'Capabilities' }, caps.map((c) => h('li', null, c))), h('details', null, h('summary', null, 'Raw capabilities'), h('pre', null, JSON.stringify(server.capabilities, null, 2)))]
        : empty(h('p', null, 'No capabilities recorded yet — run a health check.')),
    ),
    section(
      `Tools (${server.tools.length})`,
      server.tools.length
        ? table(`Tools of ${server.name}`, ['Name', 'Title', 'Description'], server.tools.map((t) => [h('code', null, t.name), t.title ?? '—', t.description ?? '—']), 'tools', true)
        : empty(h('p', null, 'No tools listed at the last health check.')),
    ),
    isAdmin && me.can('portal:policies:write') ? policyEditor(ctx, server) : null,
  );
  // After an action re-renders the page, keyboard focus goes to its outcome rather than the document start.
  if (message) feedback.focus();
}

const dl = (items: [string, Child][]) => h('dl', { class: 'facts' }, items.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));

function editForm(ctx: PageContext, server: Server): HTMLFormElement {
  const name = h('input', { type: 'text', name: 'name', required: true, maxlength: 100, value: server.name });
  const description = h('textarea', { name: 'description', rows: 2, maxlength: 1000 }, server.description ?? '');
  const url = h('input', { type: 'url', name: 'mcp_url', required: true, value: server.endpoints.mcp });
  const tags = h('input', { type: 'text', name: 'tags', value: server.tags.join(', ') });
  const auth = authFields('keep', true);
  const result = h('div');
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Save changes');
  const form = h(
    'form',
    { class: 'panel', 'aria-labelledby': 'edit-title' },
    h('h2', { id: 'edit-title' }, `Edit ${server.name}`),
    field('Name', name),
    field('Description', description),
    field('MCP URL', url, 'Changing the URL or authentication checks the server again.'),
    auth.el,
    field('Tags', tags, 'Comma-separated, lowercase.'),
    result,
    h('div', { class: 'actions' }, submit),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void busy(submit, async () => {
      const newAuth = auth.value();
      try {
        // Only what changed: sending the endpoints or auth makes the server probe it again.
        const updated = await client.servers.update({
          server_id: server.server_id,
          ...(name.value.trim() !== server.name ? { name: name.value.trim() } : {}),
          ...(description.value.trim() !== (server.description ?? '') ? { description: description.value.trim() } : {}),
          ...(url.value.trim() !== server.endpoints.mcp ? { endpoints: { mcp: url.value.trim() } } : {}),
          ...(newAuth ? { auth: newAuth } : {}),
          ...(tags.value !== server.tags.join(', ') ? { tags: words(tags.value.toLowerCase()) } : {}),
        });
        if (ctx.alive()) show(ctx, updated, notice('Saved.'));
      } catch (error) {
        if (ctx.alive()) fill(result, errorBox(error, 'Could not save'));
      }
    });
  });
  return form;
}
