// DOM helpers: elements from data (never from HTML strings, so nothing a user typed becomes
// markup), times, JSON, error notices and role checks.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function time(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

// A time in UTC, to the second: `2025-01-02 03:04:05 UTC`.
export function utc(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

export function json(value) {
  return h('pre', { class: 'json' }, JSON.stringify(value, null, 2));
}

// An API error in words: what happened, and the API's code.
export function errorNotice(err) {
  const code = err && err.code ? err.code : 'error';
  const message = err && err.message ? err.message : String(err);
  return h('div', { class: 'notice error', role: 'alert' },
    h('strong', {}, 'Error: '), message, ' ', h('code', {}, code));
}

export function notice(kind, ...children) {
  return h('div', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, ...children);
}

// Runs an action from a button: disabled while it runs, its error shown in `where`.
export async function act(button, where, fn) {
  button.disabled = true;
  try {
    return await fn();
  } catch (err) {
    where.prepend(errorNotice(err));
    return undefined;
  } finally {
    button.disabled = false;
  }
}

const RANK = { reader: 0, publisher: 1, admin: 2 };

// Whether the key `me` (from `GET /v1/whoami`) has `role` or a higher one; `'bootstrap'`: it is
// the stack's bootstrap key (an admin key with no id), the only one that manages tenants.
export function can(me, role) {
  if (role === 'bootstrap') return me.role === 'admin' && me.key_id === null;
  return (RANK[me.role] ?? -1) >= RANK[role];
}

export function table(headers, rows, attrs = {}) {
  const body = h('tbody', {}, rows);
  labelCells(body, headers);
  return h('div', { class: 'table-wrap' },
    h('table', attrs,
      h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
      body));
}

// Names each cell after its column, for the narrow layout where a row becomes a card.
export function labelCells(body, headers) {
  for (const tr of body.querySelectorAll('tr')) {
    [...tr.children].forEach((td, i) => {
      if (headers[i]) td.dataset.label = headers[i];
    });
  }
}

export function field(label, input, hint) {
  return h('label', { class: 'field' }, h('span', {}, label), input, hint ? h('small', {}, hint) : null);
}

export function badge(text, kind = '') {
  return h('span', { class: `badge ${kind}` }, text);
}

// `datetime-local` input value → RFC 3339 (UTC), or undefined when empty.
export function isoFromLocal(value) {
  if (!value) return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

export function link(href, text) {
  return h('a', { href }, text);
}
