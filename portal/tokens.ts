/**
 * Tokens: the applications an account has authorized (oauth.grants) and its API keys (apiKeys), with
 * create (the secret shown once), revoke and revoke all. Admins may look at another ChittyID's.
 */
import { client, errorBox, type PageContext } from './api';
import { badge, busy, button, checkbox, confirmDialog, empty, field, fill, h, loading, notice, section, table, time, words } from './dom';

type ApiKey = Awaited<ReturnType<typeof client.apiKeys.list>>['items'][number];

/** The ChittyID being looked at; null: the signed-in account. Kept between visits. */
let subject: string | null = null;

export function renderTokens(ctx: PageContext): void {
  const { root, me } = ctx;
  const target = subject ? { chitty_id: subject } : {};
  const whose = subject ? `${subject}’s` : 'Your';
  fill(
    root,
    h('h1', { tabindex: '-1' }, 'Tokens'),
    me.isAdmin ? accountPicker(ctx, 'tokens') : null,
    section(`${whose} authorized applications`, grantsPanel(ctx, target)),
    section(`${whose} API keys`, keysPanel(ctx, target)),
  );
}

/** For admins: show another account's credentials (the procedures take chitty_id; :any permissions). */
export function accountPicker(ctx: PageContext, page: string): HTMLElement {
  const input = h('input', { type: 'text', name: 'chitty_id', value: subject ?? '', placeholder: 'CHITTY-PEO-…', autocomplete: 'off', pattern: 'CHITTY-[A-Z]{3}-[A-Z0-9]{1,24}-[A-Z0-9]{3}' });
  const form = h(
    'form',
    { class: 'inline-form account-picker', 'aria-label': 'Whose credentials' },
    field('Account (ChittyID)', input, 'Administrators: leave empty for your own.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'secondary' }, 'Show'), subject ? button('Show mine', () => setSubject(null), 'link') : null),
  );
  const setSubject = (id: string | null) => {
    subject = id && id !== ctx.me.chittyId ? id : null;
    ctx.navigate(`#/${page}`);
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    setSubject(input.value.trim().toUpperCase() || null);
  });
  return form;
}

export const currentSubject = () => subject;

function grantsPanel(ctx: PageContext, target: { chitty_id?: string }): HTMLElement {
  const el = h('div', null, loading('Loading authorized applications…'));
  const load = async (message?: HTMLElement) => {
    try {
      const { items } = await client.oauth.grants.list(target);
      if (!ctx.alive()) return;
      if (!items.length) return void fill(el, message ?? null, empty(h('p', null, 'No applications are authorized.')));
      const revokeAll = button('Revoke all', async (e) => {
        if (!(await confirmDialog(`Revoke all ${items.length} authorizations?`, 'Revoke all', 'Every application listed loses access at once.'))) return;
        await busy(e.currentTarget as HTMLButtonElement, async () => {
          try {
            for (const g of items) await client.oauth.grants.revoke({ grant_id: g.grant_id });
            await load(notice('All authorizations revoked.'));
          } catch (error) {
            fill(el, errorBox(error, 'Revoking failed'));
          }
        });
      }, 'danger');
      const rows = items.map((g) => [
        h('span', null, h('strong', null, g.client_name ?? g.client_id), h('br'), h('code', { class: 'small' }, g.client_id)),
        h('ul', { class: 'tags' }, g.scope.split(' ').filter(Boolean).map((s) => h('li', null, s))),
        h('code', { class: 'break' }, g.resource),
        time(g.created_at),
        time(g.last_used_at, 'never'),
        button('Revoke', async (e) => {
          if (!(await confirmDialog(`Revoke ${g.client_name ?? g.client_id}?`, 'Revoke', 'Its tokens stop working at once.'))) return;
          await busy(e.currentTarget as HTMLButtonElement, async () => {
            try {
              await client.oauth.grants.revoke({ grant_id: g.grant_id });
              await load(notice(`Revoked ${g.client_name ?? g.client_id}.`));
            } catch (error) {
              fill(el, errorBox(error, 'Revoking failed'));
            }
          });
        }, 'danger small', { 'aria-label': `Revoke ${g.client_name ?? g.client_id}` }),
      ]);
      fill(el, message ?? null, table('Authorized applications', ['Application', 'Scopes', 'Resource', 'Authorized', 'Last used', ''], rows, 'grants', true), h('div', { class: 'actions' }, revokeAll));
    } catch (error) {
      if (ctx.alive()) fill(el, errorBox(error, 'Could not list authorized applications'));
    }
  };
  void load();
  return el;
}

function keysPanel(ctx: PageContext, target: { chitty_id?: string }): HTMLElement {
  const secretEl = h('div', { class: 'secret-slot' });
  const listEl = h('div', null, loading('Loading API keys…'));
  const flash = h('div', { class: 'flash' });
  const showRevoked = checkbox('Show revoked keys', { name: 'include_revoked' });
  showRevoked.input.addEventListener('change', () => void load());

  // Create: name, optional scopes, optional lifetime. The secret comes back once.
  const name = h('input', { type: 'text', name: 'key_name', required: true, maxlength: 100, autocomplete: 'off' });
  const scopes = h('input', { type: 'text', name: 'scopes', placeholder: 'e.g. mcp:read', autocomplete: 'off' });
  const expires = h('input', { type: 'text', name: 'expires_in', placeholder: 'e.g. 30d', autocomplete: 'off', pattern: '[1-9][0-9]{0,7}[smhd]?' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Create API key');
  const form = h(
    'form',
    { class: 'inline-form', 'aria-label': 'Create an API key' },
    field('Name', name),
    field('Scopes', scopes, 'Optional, comma-separated; empty: the same as your sign-in.'),
    field('Expires in', expires, 'Optional: 30m, 24h, 90d…'),
    h('div', { class: 'actions' }, submit),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void busy(submit, async () => {
      try {
        const key = await client.apiKeys.create({
          ...target,
          name: name.value.trim(),
          ...(words(scopes.value).length ? { scopes: words(scopes.value) } : {}),
          ...(expires.value.trim() ? { expires_in: expires.value.trim() } : {}),
        });
        if (!ctx.alive()) return;
        form.reset();
        fill(flash);
        fill(secretEl, secretBox(key.name, key.api_key, () => fill(secretEl)));
        secretEl.querySelector('input')?.focus();
        await load();
      } catch (error) {
        if (ctx.alive()) fill(flash, errorBox(error, 'Could not create the key'));
      }
    });
  });

  const revoke = async (keys: ApiKey[], btn: HTMLButtonElement, done: string) =>
    busy(btn, async () => {
      try {
        for (const k of keys) await client.apiKeys.revoke({ key_id: k.key_id });
        fill(flash, notice(done));
        await load();
      } catch (error) {
        fill(flash, errorBox(error, 'Revoking failed'));
      }
    });

  async function load() {
    const items: ApiKey[] = [];
    try {
      // Every page: revoke-all must see every live key.
      let cursor: string | undefined;
      for (let i = 0; i < 10; i++) {
        const page = await client.apiKeys.list({ ...target, include_revoked: showRevoked.input.checked, limit: 200, ...(cursor ? { cursor } : {}) });
        items.push(...page.items);
        if (!page.next_cursor) break;
        cursor = page.next_cursor;
      }
    } catch (error) {
      if (ctx.alive()) fill(listEl, errorBox(error, 'Could not list API keys'));
      return;
    }
    if (!ctx.alive()) return;
    if (!items.length) return void fill(listEl, empty(h('p', null, 'No API keys yet — create one above.')));
    const live = items.filter((k) => !k.revoked_at);
    const rows = items.map((k) => [
      h('strong', null, k.name),
      h('code', null, `${k.prefix}…`),
      h('ul', { class: 'tags' }, k.scopes.map((s) => h('li', null, s))),
      time(k.created_at),
      time(k.expires_at, 'never'),
      time(k.last_used_at, 'never'),
      k.revoked_at ? badge('revoked', 'error') : badge('active', 'ready'),
      k.revoked_at
        ? ''
        : button('Revoke', async (e) => {
            const btn = e.currentTarget as HTMLButtonElement;
            if (await confirmDialog(`Revoke the key “${k.name}”?`, 'Revoke key', 'Anything using it stops working at once.')) await revoke([k], btn, `Revoked ${k.name}.`);
          }, 'danger small', { 'aria-label': `Revoke ${k.name}` }),
    ]);
    const revokeAll = live.length
      ? button('Revoke all', async (e) => {
          const btn = e.currentTarget as HTMLButtonElement;
          if (await confirmDialog(`Revoke all ${live.length} API keys?`, 'Revoke all', 'Everything using them stops working at once.')) await revoke(live, btn, 'All API keys revoked.');
        }, 'danger')
      : null;
    fill(listEl, table('API keys', ['Name', 'Key', 'Scopes', 'Created', 'Expires', 'Last used', 'Status', ''], rows, 'keys', true), h('div', { class: 'actions' }, revokeAll));
  }
  void load();
  return h('div', null, form, secretEl, flash, showRevoked.wrap, listEl);
}

/** The new key's secret, once, in a read-only field with a copy button and a warning. */
function secretBox(name: string, secret: string, dismiss: () => void): HTMLElement {
  const input = h('input', { type: 'text', readonly: true, value: secret, name: 'new_api_key', class: 'mono', spellcheck: 'false' });
  const copied = h('span', { class: 'hint', role: 'status' });
  const copy = button('Copy', async () => {
    input.select();
    try {
      await navigator.clipboard.writeText(secret);
      copied.textContent = 'Copied.';
    } catch {
      copied.textContent = 'Selected — press Ctrl+C (⌘C) to copy.';
    }
  });
  input.addEventListener('focus', () => input.select());
  return h(
    'div',
    { class: 'secret', role: 'region', 'aria-label': 'New API key, shown once' },
    h('p', { class: 'warn' }, h('strong', null, 'Copy this key now. '), `It is shown only once: ChittyAuth stores only a hash of “${name}”, so it cannot be shown again.`),
    field('New API key', input),
    h('div', { class: 'actions' }, copy, copied, button('Done, I have copied it', dismiss, 'primary')),
  );
}
