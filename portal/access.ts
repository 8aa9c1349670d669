/**
 * Access (administrators): the accounts with their roles (accounts.list); for a selected account, its
 * grants (permissions.list), a grant form (permissions.grant), revoke (permissions.revoke), and
 * disable / enable (accounts.disable / accounts.enable).
 */
import { client, errorBox, type PageContext } from './api';
import { badge, busy, button, confirmDialog, empty, field, fill, h, loading, notice, section, select, table, time } from './dom';

type Account = Awaited<ReturnType<typeof client.accounts.get>>;

/** The selected account's ChittyID, kept between visits. */
let selected: string | null = null;

export function renderAccess(ctx: PageContext): void {
  const listEl = h('div', null, loading('Loading accounts…'));
  const detailEl = h('div', { class: 'account-detail', tabindex: '-1' });
  fill(ctx.root, h('h1', { tabindex: '-1' }, 'Access'), h('p', { class: 'hint' }, 'Accounts, their roles and grants. Select an account to manage it.'), section('Accounts', listEl), detailEl);

  const accounts: Account[] = [];
  let cursor: string | null = null;

  const select_ = (chittyId: string, focus = true) => {
    selected = chittyId;
    renderList();
    void showAccount(ctx, chittyId, detailEl, async () => reloadAccounts(), focus);
  };

  function renderList() {
    if (!accounts.length) return fill(listEl, empty(h('p', null, 'No accounts.')));
    const rows = accounts.map((a) => [
      h('span', null, h('strong', null, a.username), a.display_name ? h('span', { class: 'hint' }, ` ${a.display_name}`) : null),
      h('code', null, a.chitty_id),
      a.roles.length ? h('ul', { class: 'tags' }, a.roles.map((r) => h('li', null, r))) : '—',
      badge(a.status, a.status === 'active' ? 'ready' : 'error'),
      time(a.created_at),
      button(a.chitty_id === selected ? 'Selected' : 'Manage', () => select_(a.chitty_id), a.chitty_id === selected ? 'primary small' : 'secondary small', {
        'aria-label': `Manage ${a.username}`,
        'aria-pressed': String(a.chitty_id === selected),
      }),
    ]);
    fill(
      listEl,
      table('Accounts and roles', ['Username', 'ChittyID', 'Roles', 'Status', 'Created', ''], rows, 'accounts', true),
      cursor ? h('div', { class: 'pager' }, button('Load more accounts', () => void loadPage())) : null,
    );
  }

  async function loadPage() {
    try {
      const page = await client.accounts.list({ limit: 50, ...(cursor ? { cursor } : {}) });
      if (!ctx.alive()) return;
      accounts.push(...page.items);
      cursor = page.next_cursor;
      renderList();
    } catch (error) {
      if (ctx.alive()) fill(listEl, errorBox(error, 'Could not list accounts'));
    }
  }

  async function reloadAccounts() {
    accounts.length = 0;
    cursor = null;
    await loadPage();
  }

  void loadPage().then(() => {
    if (selected && ctx.alive()) select_(selected, false);
  });
}

async function showAccount(ctx: PageContext, chittyId: string, el: HTMLElement, refreshList: () => Promise<void>, focus: boolean, message?: HTMLElement) {
  fill(el, loading('Loading the account…'));
  let account: Account;
  let grants: Awaited<ReturnType<typeof client.permissions.list>>['items'];
  try {
    [account, { items: grants }] = await Promise.all([client.accounts.get({ chitty_id: chittyId }), client.permissions.list({ chitty_id: chittyId })]);
  } catch (error) {
    if (ctx.alive()) fill(el, errorBox(error, 'Could not load the account'));
    return;
  }
  if (!ctx.alive()) return;
  const again = (msg: string) => showAccount(ctx, chittyId, el, refreshList, true, notice(msg)).then(refreshList);
  const flash = h('div', { class: 'flash' }, message ?? null);
  const fail = (what: string) => (error: unknown) => fill(flash, errorBox(error, what));
  const self = chittyId === ctx.me.chittyId;

  const statusButton =
    account.status === 'active'
      ? button('Disable account', async (e) => {
          if (!(await confirmDialog(`Disable ${account.username}?`, 'Disable account', 'They can no longer sign in, and their sessions, API keys and tokens stop working at once.'))) return;
          await busy(e.currentTarget as HTMLButtonElement, () => client.accounts.disable({ chitty_id: chittyId }).then(() => again(`Disabled ${account.username}.`), fail('Could not disable')));
        }, 'danger', { disabled: self, title: self ? 'You cannot disable your own account here' : null })
      : button('Enable account', (e) => busy(e.currentTarget as HTMLButtonElement, () => client.accounts.enable({ chitty_id: chittyId }).then(() => again(`Enabled ${account.username}.`), fail('Could not enable'))), 'primary');

  const grantRows = grants.map((g) => [
    g.role ? h('span', null, 'role ', h('strong', null, g.role)) : h('span', null, 'permission ', h('code', null, g.permission ?? '')),
    h('code', { class: 'small' }, g.granted_by),
    time(g.created_at),
    time(g.expires_at, 'never'),
    button('Revoke', async (e) => {
      const what = g.role ? `role ${g.role}` : `permission ${g.permission}`;
      if (!(await confirmDialog(`Revoke ${what} from ${account.username}?`, 'Revoke grant'))) return;
      await busy(e.currentTarget as HTMLButtonElement, () => client.permissions.revoke({ grant_id: g.grant_id }).then(() => again(`Revoked ${what}.`), fail('Could not revoke')));
    }, 'danger small', { 'aria-label': `Revoke ${g.role ? `role ${g.role}` : `permission ${g.permission}`}` }),
  ]);

  // Grant: a role or a permission string, optionally for a limited time.
  const kind = select('grant_kind', [['role', 'Role'], ['permission', 'Permission']], 'role');
  const role = select('role', ['admin', 'user', 'readonly'], 'user');
  const permission = h('input', { type: 'text', name: 'permission', placeholder: 'e.g. portal:servers:register', autocomplete: 'off' });
  const expires = h('input', { type: 'text', name: 'grant_expires_in', placeholder: 'e.g. 7d', autocomplete: 'off' });
  const roleField = field('Role', role);
  const permField = field('Permission', permission, 'domain:resource:action, * allowed');
  const sync = () => {
    roleField.hidden = kind.value !== 'role';
    permField.hidden = kind.value === 'role';
    permission.required = kind.value !== 'role';
  };
  kind.addEventListener('change', sync);
  sync();
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Grant');
  const form = h('form', { class: 'inline-form', 'aria-label': `Grant a role or permission to ${account.username}` }, field('Grant a', kind), roleField, permField, field('Expires in', expires, 'Optional'), h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const input = { chitty_id: chittyId, ...(kind.value === 'role' ? { role: role.value as 'admin' | 'user' | 'readonly' } : { permission: permission.value.trim() }), ...(expires.value.trim() ? { expires_in: expires.value.trim() } : {}) };
    void busy(submit, () => client.permissions.grant(input).then((g) => again(`Granted ${g.role ? `role ${g.role}` : `permission ${g.permission}`}.`), fail('Could not grant')));
  });

  fill(
    el,
    section(
      `Account ${account.username}`,
      h('dl', { class: 'facts' }, h('dt', null, 'ChittyID'), h('dd', null, h('code', null, account.chitty_id)), h('dt', null, 'Status'), h('dd', null, badge(account.status, account.status === 'active' ? 'ready' : 'error')), h('dt', null, 'Roles'), h('dd', null, account.roles.join(', ') || '—')),
      flash,
      grants.length ? table(`Grants of ${account.username}`, ['Grant', 'Granted by', 'Granted', 'Expires', ''], grantRows, 'grants') : empty(h('p', null, 'No active grants.')),
      h('h3', null, 'Grant a role or permission'),
      form,
      h('h3', null, 'Account status'),
      h('div', { class: 'actions' }, statusButton),
    ),
  );
  if (focus) el.focus();
}
