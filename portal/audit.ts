/**
 * Audit: the audit log (audit.list) filtered by actor, action, outcome, door and time, paged by cursor;
 * chain verification (audit.verify); and export of the filtered events as CSV or JSON.
 */
import { client, errorBox, type PageContext } from './api';
import { badge, busy, button, download, empty, field, fill, h, loading, select, table, time } from './dom';

type Event = Awaited<ReturnType<typeof client.audit.list>>['items'][number];
type Filters = Omit<Parameters<typeof client.audit.list>[0], 'limit' | 'cursor'>;

const DOORS = ['rpc', 'rest', 'mcp', 'oauth', 'system'] as const;
const OUTCOMES = ['success', 'denied', 'failure'] as const;
const PAGE_SIZE = 50;
const EXPORT_PAGES = 10;

/** The form's values, kept between visits (datetime-local strings as typed). */
const state = { actor: '', action: '', outcome: '', door: '', since: '', until: '', cursors: [] as string[] };

/** datetime-local is local wall time without a zone; the API wants an ISO-8601 UTC timestamp. */
const toIso = (local: string) => {
  if (!local) return undefined;
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
};

function filters(): Filters {
  const f: Filters = {};
  if (state.actor) f.actor = state.actor;
  if (state.action) f.action = state.action;
  if (state.outcome) f.outcome = state.outcome as Filters['outcome'];
  if (state.door) f.door = state.door as Filters['door'];
  const since = toIso(state.since);
  const until = toIso(state.until);
  if (since) f.since = since;
  if (until) f.until = until;
  return f;
}

export function renderAudit(ctx: PageContext): void {
  const { root, me } = ctx;
  const listEl = h('div', null, loading('Loading audit events…'));
  const verifyEl = h('div', { class: 'flash' });
  const exportEl = h('div', { class: 'flash' });

  const actor = h('input', { type: 'text', name: 'actor', value: state.actor, placeholder: 'ChittyID', autocomplete: 'off' });
  const action = h('input', { type: 'text', name: 'action', value: state.action, placeholder: 'e.g. servers.register', autocomplete: 'off' });
  const outcome = select('outcome', [['', 'Any outcome'], ...OUTCOMES.map((o): [string, string] => [o, o])], state.outcome);
  const door = select('door', [['', 'Any door'], ...DOORS.map((d): [string, string] => [d, d])], state.door);
  const since = h('input', { type: 'datetime-local', name: 'since', value: state.since });
  const until = h('input', { type: 'datetime-local', name: 'until', value: state.until });
  const form = h(
    'form',
    { class: 'filters', 'aria-label': 'Filter audit events' },
    field('Actor', actor),
    field('Action', action),
    field('Outcome', outcome),
    field('Door', door),
    field('Since', since, 'Your local time'),
    field('Until', until, 'Your local time'),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'secondary' }, 'Apply filters'), button('Clear', () => {
      for (const c of [actor, action, outcome, door, since, until]) c.value = '';
      form.requestSubmit();
    }, 'link')),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    Object.assign(state, { actor: actor.value.trim(), action: action.value.trim(), outcome: outcome.value, door: door.value, since: since.value, until: until.value, cursors: [] });
    void load();
  });

  const verify = button('Verify chain', (e) =>
    busy(e.currentTarget as HTMLButtonElement, async () => {
      fill(verifyEl, loading('Verifying the hash chain…'));
      try {
        const r = await client.audit.verify({});
        fill(
          verifyEl,
          r.valid
            ? h('p', { class: 'notice ok', role: 'status' }, `Chain valid: ${r.checked} events checked, no problems.`)
            : h(
                'div',
                { class: 'error', role: 'alert' },
                h('strong', null, `Chain broken: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'} in ${r.checked} events.`),
                h('ul', null, r.problems.slice(0, 50).map((p) => h('li', null, `#${p.seq}: ${p.problem.replace('_', ' ')}`))),
              ),
        );
      } catch (error) {
        fill(verifyEl, errorBox(error, 'Could not verify'));
      }
    }),
  );
  const exportAs = (format: 'csv' | 'json') => (e: MouseEvent) =>
    busy(e.currentTarget as HTMLButtonElement, async () => {
      fill(exportEl, loading('Collecting events…'));
      try {
        const { events, truncated } = await collect();
        const stamp = new Date().toISOString().replace(/[:.]/g, '-');
        if (format === 'json') download(`chittyauth-audit-${stamp}.json`, JSON.stringify(events, null, 2), 'application/json');
        else download(`chittyauth-audit-${stamp}.csv`, toCsv(events), 'text/csv');
        fill(exportEl, h('p', { class: 'notice ok', role: 'status' }, `Exported ${events.length} events as ${format.toUpperCase()}${truncated ? ` (the first ${EXPORT_PAGES} pages only; narrow the filters for the rest)` : ''}.`));
      } catch (error) {
        fill(exportEl, errorBox(error, 'Export failed'));
      }
    });

  fill(
    root,
    h('div', { class: 'page-head' }, h('h1', { tabindex: '-1' }, 'Audit log'), h('div', { class: 'actions' }, me.can('audit:chain:verify') ? verify : null, button('Export CSV', exportAs('csv')), button('Export JSON', exportAs('json')))),
    verifyEl,
    exportEl,
    form,
    listEl,
  );

  async function load() {
    fill(listEl, loading('Loading audit events…'));
    try {
      const page = await client.audit.list({ ...filters(), limit: PAGE_SIZE, ...(state.cursors.length ? { cursor: state.cursors.at(-1)! } : {}) });
      if (!ctx.alive()) return;
      if (!page.items.length) return void fill(listEl, empty(h('p', null, Object.keys(filters()).length ? 'No events match these filters.' : 'No audit events yet.')));
      const rows = page.items.map((ev) => [
        String(ev.seq),
        time(ev.at),
        h('code', { class: 'small' }, ev.actor),
        h('code', null, ev.action),
        ev.target ? h('code', { class: 'small' }, ev.target) : '—',
        ev.door,
        badge(ev.outcome, ev.outcome === 'success' ? 'ready' : ev.outcome === 'denied' ? 'unauthorized' : 'error'),
        Object.keys(ev.detail).length ? h('details', null, h('summary', null, 'Detail'), h('pre', null, JSON.stringify(ev.detail, null, 2))) : '—',
      ]);
      const pager = h('div', { class: 'pager' });
      if (state.cursors.length) pager.append(button('Previous page', () => (state.cursors.pop(), void load())));
      if (page.next_cursor) pager.append(button('Next page', () => (state.cursors.push(page.next_cursor!), void load())));
      fill(listEl, table('Audit events, newest first', ['#', 'Time', 'Actor', 'Action', 'Target', 'Door', 'Outcome', 'Detail'], rows, 'audit'), pager);
    } catch (error) {
      if (ctx.alive()) fill(listEl, errorBox(error, 'Could not list audit events'));
    }
  }
  void load();
}

/** The currently filtered events, up to EXPORT_PAGES pages of 200. */
async function collect(): Promise<{ events: Event[]; truncated: boolean }> {
  const events: Event[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < EXPORT_PAGES; i++) {
    const page = await client.audit.list({ ...filters(), limit: 200, ...(cursor ? { cursor } : {}) });
    events.push(...page.items);
    if (!page.next_cursor) return { events, truncated: false };
    cursor = page.next_cursor;
  }
  return { events, truncated: true };
}

const CSV_COLUMNS = ['seq', 'id', 'at', 'actor', 'action', 'target', 'door', 'outcome', 'detail', 'hash'] as const;

/**
 * RFC 4180: every field quoted, quotes doubled, CRLF line ends. Audit fields carry text from anyone
 * (a username tried at sign-in), so a field a spreadsheet would run as a formula gets a leading '.
 */
export function toCsv(events: Event[]): string {
  const text = (v: unknown) => (v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const defuse = (s: string) => (/^[=+\-@\t\r]/.test(s) ? `'${s}` : s);
  const cell = (v: unknown) => `"${defuse(text(v)).replace(/"/g, '""')}"`;
  return [CSV_COLUMNS.join(','), ...events.map((ev) => CSV_COLUMNS.map((c) => cell(ev[c])).join(','))].join('\r\n') + '\r\n';
}
