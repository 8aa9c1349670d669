/**
 * Small DOM helpers for the dashboard. The page's CSP forbids inline styles and scripts, so nothing here
 * sets `style`, writes HTML strings or uses inline handlers: elements are built with createElement, text
 * with text nodes, and listeners with addEventListener.
 */
export type Child = Node | string | number | null | undefined | false | Child[];
type AttrValue = string | number | boolean | null | undefined | ((event: never) => unknown);
export type Attrs = Record<string, AttrValue>;

/** Properties that must be set on the element rather than as attributes (they track user input). */
const PROPS = new Set(['value', 'checked', 'selected', 'disabled']);

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'style') throw new Error('Inline styles are forbidden by the CSP; use a class');
    if (typeof value === 'function') el.addEventListener(key.slice(2).toLowerCase(), value as EventListener);
    else if (key === 'class') el.className = String(value);
    else if (PROPS.has(key)) (el as unknown as Record<string, unknown>)[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
}

/** Replaces the element's content. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

let nextId = 0;
export const uid = (prefix: string) => `${prefix}-${++nextId}`;

/** A labelled control: `<div class="field"><label for>…</label>control<p class="hint"></p></div>`. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLDivElement {
  control.id ||= uid('f');
  const hintEl = hint ? h('p', { class: 'hint', id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintEl);
}

/** A checkbox with its label after it. */
export function checkbox(label: string, attrs: Attrs = {}): { wrap: HTMLLabelElement; input: HTMLInputElement } {
  const input = h('input', { type: 'checkbox', ...attrs });
  return { wrap: h('label', { class: 'check' }, input, ' ', label), input };
}

export function select(name: string, options: readonly (string | [value: string, label: string])[], value = ''): HTMLSelectElement {
  return h(
    'select',
    { name },
    options.map((o) => {
      const [v, l] = typeof o === 'string' ? [o, o] : o;
      return h('option', { value: v, selected: v === value }, l);
    }),
  );
}

export function button(label: string, onClick: (event: MouseEvent) => unknown, cls = 'secondary', attrs: Attrs = {}): HTMLButtonElement {
  return h('button', { type: 'button', class: cls, onclick: onClick, ...attrs }, label);
}

/** Disables the button while `fn` runs (no double submits), and restores it afterwards. */
export async function busy<T>(control: HTMLButtonElement | null | undefined, fn: () => Promise<T>): Promise<T> {
  if (control) {
    control.disabled = true;
    control.setAttribute('aria-busy', 'true');
  }
  try {
    return await fn();
  } finally {
    if (control) {
      control.disabled = false;
      control.removeAttribute('aria-busy');
    }
  }
}

export const loading = (what = 'Loading…') => h('p', { class: 'loading', role: 'status' }, what);

export const empty = (...content: Child[]) => h('div', { class: 'empty' }, ...content);

export const notice = (text: string, kind: 'ok' | 'warn' = 'ok') => h('p', { class: `notice ${kind}`, role: 'status' }, text);

export function badge(text: string, kind = text): HTMLSpanElement {
  return h('span', { class: `badge badge-${kind.replace(/[^a-z0-9-]/gi, '')}` }, text);
}

/** A table with a caption (visually hidden when a heading right above already says it); rows are arrays of cells. */
export function table(caption: string, headers: string[], rows: Child[][], cls = '', hideCaption = false): HTMLTableElement {
  return h(
    'table',
    { class: cls || null },
    h('caption', { class: hideCaption ? 'visually-hidden' : null }, caption),
    h('thead', null, h('tr', null, headers.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', null, rows.map((cells) => h('tr', null, cells.map((c) => h('td', null, c))))),
  );
}

/** A timestamp as `2026-01-31 14:05 UTC` in a `<time>` element (stable across locales). */
export function time(iso: string | null | undefined, never = '—'): Child {
  if (!iso) return never;
  return h('time', { datetime: iso, title: iso }, `${iso.slice(0, 16).replace('T', ' ')} UTC`);
}

/** A section with a heading (h2) and content. */
export function section(title: string, ...content: Child[]): HTMLElement {
  const id = uid('s');
  return h('section', { class: 'panel', 'aria-labelledby': id }, h('h2', { id }, title), ...content);
}

/**
 * An accessible confirmation in a modal <dialog> (focus moves into it, Escape cancels). Resolves true only
 * when the confirm button is pressed.
 */
export function confirmDialog(message: string, confirmLabel: string, detail?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const titleId = uid('d');
    const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
    const ok = h('button', { type: 'button', class: 'danger' }, confirmLabel);
    const dialog = h(
      'dialog',
      { class: 'confirm', 'aria-labelledby': titleId },
      h('h2', { id: titleId }, message),
      detail ? h('p', null, detail) : null,
      h('div', { class: 'actions' }, cancel, ok),
    );
    const done = (answer: boolean) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    cancel.addEventListener('click', () => done(false));
    ok.addEventListener('click', () => done(true));
    dialog.addEventListener('cancel', (e) => {
      e.preventDefault();
      done(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

/** Offers `content` as a file download through a Blob URL and an `<a download>`. */
export function download(filename: string, content: string, type: string): void {
  const url = URL.createObjectURL(new Blob([content], { type }));
  const a = h('a', { href: url, download: filename, class: 'visually-hidden' }, filename);
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Comma- or whitespace-separated words, trimmed, without empties and duplicates. */
export const words = (s: string) => [...new Set(s.split(/[\s,]+/).map((w) => w.trim()).filter(Boolean))];
