// API keys and the audit log (admins), and inbound sources (read here; managed with the API
// or `skyhook sources`).

import { api, qs } from '../api.js';
import { h, clear, time, json, notice, act, table, field, errorNotice } from '../ui.js';

export async function keysPage(main) {
  const messages = h('div', {});
  const rows = h('div', {});
  const pager = h('div', { class: 'pager' });
  const cursors = [null];
  async function load() {
    const page = await api('GET', `/v1/api-keys${qs({ cursor: cursors[cursors.length - 1], limit: 50 })}`);
    pages(pager, cursors, page.next_cursor, load, messages);
    clear(rows, table(['Id', 'Role', 'Description', 'Created', 'By', ''],
      page.data.map((k) => h('tr', { dataset: { id: k.id } },
        h('td', {}, k.id), h('td', {}, k.role), h('td', {}, k.description || ''),
        h('td', {}, time(k.created_at)), h('td', {}, k.created_by),
        h('td', {}, h('button', {
          type: 'button',
          class: 'danger small',
          onclick: (e) => act(e.target, messages, async () => {
            if (!window.confirm(`Revoke ${k.id}? It stops working at once.`)) return;
            await api('DELETE', `/v1/api-keys/${k.id}`);
            await load();
          }),
        }, 'Revoke'))))));
  }
  const role = h('select', { name: 'role' }, ['reader', 'publisher', 'admin'].map((r) => h('option', { value: r }, r)));
  const description = h('input', { type: 'text', name: 'description', maxlength: 256 });
  const form = h('form', { class: 'card', id: 'create-key' }, h('h2', {}, 'New key'), field('Role', role), field('Description', description), h('button', { type: 'submit' }, 'Create key'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    await act(form.querySelector('button[type=submit]'), messages, async () => {
      const k = await api('POST', '/v1/api-keys', { role: role.value, description: description.value.trim() || undefined });
      messages.prepend(notice('ok', `Key ${k.id} (${k.role}), shown only now: `, h('code', { class: 'secret' }, k.key)));
      form.reset();
      await load();
    });
  });
  clear(main, h('h1', {}, 'API keys'), messages, form, rows, pager);
  await load();
}

export async function auditPage(main) {
  const rows = h('div', {});
  const pager = h('div', { class: 'pager' });
  const cursors = [null];
  async function load() {
    const page = await api('GET', `/v1/audit${qs({ cursor: cursors[cursors.length - 1], limit: 50 })}`);
    clear(rows, table(['When', 'Who', 'Action', 'On', 'Detail'],
      page.data.map((r) => h('tr', {},
        h('td', {}, time(r.at)), h('td', {}, r.actor), h('td', {}, r.action), h('td', {}, r.resource),
        h('td', {}, r.detail ? json(r.detail) : '')))));
    pages(pager, cursors, page.next_cursor, load, rows);
  }
  clear(main, h('h1', {}, 'Audit log'), rows, pager);
  await load();
}

// Previous/next buttons over a list's cursors (`cursors` ends with the page shown).
function pages(pager, cursors, next, load, where) {
  const go = (change) => () => {
    change();
    load().catch((err) => where.prepend(errorNotice(err)));
  };
  clear(pager,
    cursors.length > 1 ? h('button', { type: 'button', class: 'secondary', onclick: go(() => cursors.pop()) }, '← Previous') : null,
    next ? h('button', { type: 'button', class: 'secondary', onclick: go(() => cursors.push(next)) }, 'Next →') : null);
}

export async function sourcesPage(main) {
  const list = h('div', {});
  const pager = h('div', { class: 'pager' });
  const cursors = [null];
  clear(main, h('h1', {}, 'Inbound sources'),
    h('p', {}, 'Webhooks from outside arrive at a source\'s URL, are verified as their sender signs them, and are published as events. Manage them with the API or ', h('code', {}, 'skyhook sources'), '.'),
    list, pager);
  async function load() {
    const page = await api('GET', `/v1/sources${qs({ cursor: cursors[cursors.length - 1], limit: 50 })}`);
    pages(pager, cursors, page.next_cursor, load, list);
    clear(list, sourcesTable(page));
  }
  await load();
}

function sourcesTable(page) {
  return [
    page.data.length
      ? table(['Id', 'Name', 'Verification', 'Event type', 'Inbound URL', 'Created'],
        page.data.map((s) => h('tr', {},
          h('td', {}, s.id), h('td', {}, s.name), h('td', {}, s.verification),
          h('td', {}, s.event_type.fixed ?? `${s.event_type.prefix ?? ''}‹${s.event_type.header ? `header ${s.event_type.header}` : `body ${s.event_type.pointer}`}›`),
          h('td', { class: 'wrap' }, `${window.location.origin}${s.inbound_path}`),
          h('td', {}, time(s.created_at)))))
      : h('p', {}, 'No sources yet.'),
  ];
}
