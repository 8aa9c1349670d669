/**
 * Sessions: the sign-in sessions of an account (sessions.list), grouped by device, the current one
 * marked, each with "End session" (sessions.revoke). Ending the current session signs this browser out.
 */
import { client, errorBox, type PageContext } from './api';
import { badge, busy, button, checkbox, confirmDialog, empty, fill, h, loading, notice, time, uid } from './dom';
import { accountPicker, currentSubject } from './tokens';

type Session = Awaited<ReturnType<typeof client.sessions.list>>['items'][number];

let includeEnded = false;

export function renderSessions(ctx: PageContext): void {
  const { root, me } = ctx;
  const subject = currentSubject();
  const listEl = h('div', null, loading('Loading sessions…'));
  const flash = h('div', { class: 'flash', tabindex: '-1' });
  const ended = checkbox('Show ended sessions', { name: 'include_ended', checked: includeEnded });
  ended.input.addEventListener('change', () => {
    includeEnded = ended.input.checked;
    void load();
  });
  fill(
    root,
    h('h1', { tabindex: '-1' }, subject ? `Sessions of ${subject}` : 'Your sessions'),
    me.isAdmin ? accountPicker(ctx, 'sessions') : null,
    h('p', { class: 'hint' }, 'Every place signed in to ChittyAuth: the portal, apps that signed in with a password, and Cloudflare Access.'),
    flash,
    ended.wrap,
    listEl,
  );

  const end = (s: Session, btn: HTMLButtonElement) =>
    busy(btn, async () => {
      const ok = await confirmDialog(
        s.current ? 'End this session and sign out?' : 'End this session?',
        'End session',
        s.current ? 'This is the session you are using now: you will be signed out.' : 'Whatever uses it must sign in again.',
      );
      if (!ok) return;
      try {
        await client.sessions.revoke({ session_id: s.session_id });
        if (s.current) {
          location.assign('/portal/login');
          return;
        }
        fill(flash, notice('Session ended.'));
        flash.focus();
        await load();
      } catch (error) {
        fill(flash, errorBox(error, 'Could not end the session'));
      }
    });

  async function load() {
    fill(listEl, loading('Loading sessions…'));
    try {
      const { items } = await client.sessions.list({ ...(subject ? { chitty_id: subject } : {}), include_ended: includeEnded });
      if (!ctx.alive()) return;
      if (!items.length) return void fill(listEl, empty(h('p', null, 'No sessions.')));
      // Grouped by registered device (sync: devices) where the session was issued to one, else by the name
      // the sign-in gave; each group is headed by the device's name.
      const groups = new Map<string, Session[]>();
      const names = new Map<string, string>();
      for (const s of items) {
        const key = s.device_id ?? `name:${s.device_name ?? ''}`;
        if (!names.has(key)) names.set(key, s.device_name ?? 'Unknown device');
        groups.set(key, [...(groups.get(key) ?? []), s]);
      }
      // The device of the current session first.
      const ordered = [...groups].sort(([, a], [, b]) => Number(b.some((s) => s.current)) - Number(a.some((s) => s.current)));
      fill(
        listEl,
        ordered.map(([key, sessions]) => {
          const device = names.get(key)!;
          const id = uid('dev');
          return h(
            'section',
            { class: 'panel device', 'aria-labelledby': id },
            h('h2', { id }, device, ' ', h('span', { class: 'count' }, `(${sessions.length})`)),
            h('ul', { class: 'cards' }, sessions.map((s) => card(s, end))),
          );
        }),
      );
    } catch (error) {
      if (ctx.alive()) fill(listEl, errorBox(error, 'Could not list sessions'));
    }
  }
  void load();
}

function card(s: Session, end: (s: Session, btn: HTMLButtonElement) => Promise<void>): HTMLLIElement {
  const label = s.client ?? 'sign-in';
  return h(
    'li',
    { class: s.current ? 'card current' : 'card' },
    h('div', { class: 'card-head' }, h('strong', null, label), s.current ? badge('This session', 'current') : null, s.revoked_at ? badge('ended', 'error') : null),
    h(
      'dl',
      { class: 'facts' },
      h('dt', null, 'Browser'),
      h('dd', null, s.user_agent ?? '—'),
      h('dt', null, 'IP address'),
      h('dd', null, s.ip ?? '—'),
      h('dt', null, 'Signed in'),
      h('dd', null, time(s.created_at)),
      h('dt', null, 'Last seen'),
      h('dd', null, time(s.last_seen_at)),
      h('dt', null, s.revoked_at ? 'Ended' : 'Expires'),
      h('dd', null, time(s.revoked_at ?? s.expires_at)),
    ),
    s.revoked_at
      ? null
      : h('div', { class: 'actions' }, button(s.current ? 'End session (sign out)' : 'End session', (e) => end(s, e.currentTarget as HTMLButtonElement), 'danger small', { 'aria-label': `${s.current ? 'End session (sign out)' : 'End session'}: ${label}, signed in ${s.created_at.slice(0, 16).replace('T', ' ')}` })),
  );
}
