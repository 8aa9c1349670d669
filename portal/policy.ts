/**
 * The access policy editor of one server (servers.policy / servers.setPolicy): which roles may view,
 * connect to, call and administer it, and per-tool allow/deny rules for a role or a ChittyID.
 * Changes are collected locally and saved together, because setPolicy replaces the whole policy.
 */
import { client, errorBox, type PageContext } from './api';
import { busy, button, empty, field, fill, h, loading, notice, section, select, uid } from './dom';
import type { Server } from './servers';

const ROLES = ['admin', 'user', 'readonly'] as const;
const ACTIONS = ['view', 'connect', 'call', 'admin'] as const;
type Role = (typeof ROLES)[number];
type Action = (typeof ACTIONS)[number];
type Policy = Awaited<ReturnType<typeof client.servers.policy>>;
interface Rule {
  tool: string;
  effect: 'allow' | 'deny';
  role: string | null;
  chitty_id: string | null;
}

export function policyEditor(ctx: PageContext, server: Server): HTMLElement {
  const body = h('div', null, loading('Loading the access policy…'));
  const panel = section('Access policy', h('p', { class: 'hint' }, 'Deny rules win over allow rules; a tool with allow rules can be called only by those they name. The owner may always do everything.'), body);
  panel.id = 'policy';
  void (async () => {
    try {
      const policy = await client.servers.policy({ server_id: server.server_id });
      if (ctx.alive()) edit(ctx, server, policy, body);
    } catch (error) {
      if (ctx.alive()) fill(body, errorBox(error, 'Could not load the policy'));
    }
  })();
  return panel;
}

function edit(ctx: PageContext, server: Server, policy: Policy, body: HTMLElement, message?: HTMLElement) {
  const rules: Rule[] = policy.tools.map((r) => ({ ...r }));
  const feedback = h('div', { class: 'flash' }, message ?? null);

  // Roles × actions: one labelled checkbox per cell.
  const boxes = new Map<string, HTMLInputElement>();
  const grid = h(
    'table',
    { class: 'matrix' },
    h('caption', null, 'Roles allowed per action'),
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Role'), ACTIONS.map((a) => h('th', { scope: 'col' }, a)))),
    h(
      'tbody',
      null,
      ROLES.map((role) =>
        h(
          'tr',
          null,
          h('th', { scope: 'row' }, role),
          ACTIONS.map((action) => {
            const id = uid('p');
            const input = h('input', { type: 'checkbox', id, name: `${action}:${role}`, checked: policy.access[action].includes(role) });
            boxes.set(`${action}:${role}`, input);
            return h('td', null, input, h('label', { for: id, class: 'visually-hidden' }, `${role} may ${action}`));
          }),
        ),
      ),
    ),
  );

  const rulesEl = h('div');
  const renderRules = (): void =>
    fill(
      rulesEl,
      rules.length
        ? h(
            'table',
            { class: 'rules' },
            h('caption', { class: 'visually-hidden' }, 'Tool rules'),
            h('thead', null, h('tr', null, ['Tool', 'Effect', 'Applies to', ''].map((t) => h('th', { scope: 'col' }, t)))),
            h(
              'tbody',
              null,
              rules.map((r, i) =>
                h(
                  'tr',
                  null,
                  h('td', null, h('code', null, r.tool === '*' ? '* (all tools)' : r.tool)),
                  h('td', null, h('span', { class: `badge badge-${r.effect}` }, r.effect)),
                  h('td', null, r.role ? `role ${r.role}` : h('code', null, r.chitty_id ?? '')),
                  h('td', null, button('Remove rule', () => (rules.splice(i, 1), renderRules(), changed()), 'link', { 'aria-label': `Remove rule ${r.effect} ${r.tool} for ${r.role ?? r.chitty_id}` })),
                ),
              ),
            ),
          )
        : empty(h('p', null, 'No tool rules: every tool is callable by those who may call the server.')),
    );
  renderRules();

  // New rule: a tool from the server's list (or all), an effect, and a role or a ChittyID.
  const tool = select('tool', [['*', '* (all tools)'], ...server.tools.map((t): [string, string] => [t.name, t.name])], server.tools[0]?.name ?? '*');
  const effect = select('effect', [['deny', 'deny'], ['allow', 'allow']], 'deny');
  const subjectType = select('subject_type', [['role', 'Role'], ['chitty_id', 'ChittyID']], 'role');
  const role = select('role', [...ROLES], 'user');
  const chittyId = h('input', { type: 'text', name: 'chitty_id', placeholder: 'CHITTY-PEO-…', autocomplete: 'off', pattern: 'CHITTY-[A-Z]{3}-[A-Z0-9]{1,24}-[A-Z0-9]{3}' });
  const roleField = field('Role', role);
  const chittyField = field('ChittyID', chittyId);
  const syncSubject = () => {
    roleField.hidden = subjectType.value !== 'role';
    chittyField.hidden = subjectType.value === 'role';
  };
  subjectType.addEventListener('change', syncSubject);
  syncSubject();
  const addForm = h(
    'form',
    { class: 'inline-form', 'aria-label': 'Add a tool rule' },
    field('Tool', tool),
    field('Effect', effect),
    field('Applies to', subjectType),
    roleField,
    chittyField,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'secondary' }, 'Add rule')),
  );
  addForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const byRole = subjectType.value === 'role';
    const subject = byRole ? role.value : chittyId.value.trim().toUpperCase();
    if (!byRole && !chittyId.checkValidity()) return void fill(feedback, h('p', { class: 'error', role: 'alert' }, 'Enter a ChittyID such as CHITTY-PEO-USER123-K7Q.'));
    if (!subject) return;
    rules.push({ tool: tool.value, effect: effect.value as Rule['effect'], role: byRole ? subject : null, chitty_id: byRole ? null : subject });
    renderRules();
    changed();
  });

  const save = h('button', { type: 'button', class: 'primary' }, 'Save policy');
  const changed = () => fill(feedback, notice('Unsaved changes — press Save policy.', 'warn'));
  grid.addEventListener('change', changed);
  save.addEventListener('click', () =>
    busy(save, async () => {
      const access = Object.fromEntries(ACTIONS.map((a) => [a, ROLES.filter((r) => boxes.get(`${a}:${r}`)!.checked)])) as Record<Action, Role[]>;
      try {
        const saved = await client.servers.setPolicy({
          server_id: server.server_id,
          access,
          tools: rules.map((r) => ({ tool: r.tool, effect: r.effect, ...(r.role ? { role: r.role as Role } : { chitty_id: r.chitty_id! }) })),
        });
        if (!ctx.alive()) return;
        edit(ctx, server, saved, body, notice('Policy saved.'));
        body.querySelector<HTMLElement>('.flash')?.focus();
      } catch (error) {
        if (ctx.alive()) fill(feedback, errorBox(error, 'Could not save the policy'));
      }
    }),
  );

  feedback.tabIndex = -1;
  fill(body, grid, h('h3', null, 'Tool rules'), rulesEl, addForm, feedback, h('div', { class: 'actions' }, save));
}
