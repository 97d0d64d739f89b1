// API keys and the audit log (admins), inbound sources (read here; managed with the API
// or `skyhook sources`), and tenants with their publish limits (the bootstrap key only).

import { api } from '../api.js';
import { h, clear, time, utc, json, notice, act, can, table, field, badge } from '../ui.js';
import { pager } from '../pager.js';

export async function keysPage(main) {
  const messages = h('div', {});
  const rows = h('div', {});
  const pages = pager({
    path: '/v1/api-keys',
    limit: 50,
    errors: messages,
    show: (page) => clear(rows, table(['Id', 'Role', 'Description', 'Created', 'By', ''],
      page.data.map((k) => h('tr', { dataset: { id: k.id } },
        h('td', {}, k.id), h('td', {}, k.role), h('td', {}, k.description || ''),
        h('td', {}, time(k.created_at)), h('td', {}, k.created_by),
        h('td', {}, h('button', {
          type: 'button',
          class: 'danger small',
          onclick: (e) => act(e.target, messages, async () => {
            if (!window.confirm(`Revoke ${k.id}? It stops working at once.`)) return;
            await api('DELETE', `/v1/api-keys/${k.id}`);
            await pages.reload();
          }),
        }, 'Revoke')))))),
  });
  const role = h('select', { name: 'role' }, ['reader', 'publisher', 'admin'].map((r) => h('option', { value: r }, r)));
  const description = h('input', { type: 'text', name: 'description', maxlength: 256 });
  const form = h('form', { class: 'card', id: 'create-key' }, h('h2', {}, 'New key'), field('Role', role), field('Description', description), h('button', { type: 'submit' }, 'Create key'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    await act(form.querySelector('button[type=submit]'), messages, async () => {
      const k = await api('POST', '/v1/api-keys', { role: role.value, description: description.value.trim() || undefined });
      messages.prepend(notice('ok', `Key ${k.id} (${k.role}), shown only now: `, h('code', { class: 'secret' }, k.key)));
      form.reset();
      await pages.reload();
    });
  });
  clear(main, h('h1', {}, 'API keys'), messages, form, rows, pages.element);
  await pages.first();
}

export async function auditPage(main) {
  const rows = h('div', {});
  const pages = pager({
    path: '/v1/audit',
    limit: 50,
    errors: rows,
    show: (page) => clear(rows, table(['When', 'Who', 'Action', 'On', 'Detail'],
      page.data.map((r) => h('tr', {},
        h('td', {}, time(r.at)), h('td', {}, r.actor), h('td', {}, r.action), h('td', {}, r.resource),
        h('td', {}, r.detail ? json(r.detail) : ''))))),
  });
  clear(main, h('h1', {}, 'Audit log'), rows, pages.element);
  await pages.first();
}

export async function sourcesPage(main) {
  const list = h('div', {});
  const pages = pager({
    path: '/v1/sources',
    limit: 50,
    errors: list,
    show: (page) => clear(list, sourcesTable(page)),
  });
  clear(main, h('h1', {}, 'Inbound sources'),
    h('p', {}, 'Webhooks from outside arrive at a source\'s URL, are verified as their sender signs them, and are published as events. Manage them with the API or ', h('code', {}, 'skyhook sources'), '.'),
    list, pages.element);
  await pages.first();
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

// The API's bounds on a tenant's limits (the API checks them too, and says why in words).
const MAX_EVENTS_PER_SECOND = 100000;
const MAX_BURST = 1000000;

function limitsText(l) {
  return `${l.events_per_second} events/s, bursts of ${l.burst}`;
}

// Tenants and the limits each publishes under: a page at a time, one form to set a tenant's
// limits (a tenant not listed yet is recorded by it), and a way back to the stack's defaults.
export async function tenantsPage(main, me) {
  if (!can(me, 'bootstrap')) {
    clear(main, h('h1', {}, 'Tenants'),
      notice('info', 'Only the stack\'s bootstrap key manages tenants and their limits; this key is not it.'));
    return;
  }
  const messages = h('div', { id: 'tenant-messages' });
  const rows = h('div', {});

  const tenant = h('input', {
    type: 'text', name: 'tenant', id: 'tenant-id', required: true, maxlength: 63,
    pattern: '[a-z0-9][a-z0-9_\\-]{0,62}', placeholder: 'acme', autocomplete: 'off',
  });
  const rate = h('input', { type: 'number', name: 'events_per_second', id: 'tenant-rate', required: true, min: 1, max: MAX_EVENTS_PER_SECOND, step: 1 });
  const burst = h('input', { type: 'number', name: 'burst', id: 'tenant-burst', required: true, min: 1, max: MAX_BURST, step: 1 });
  const save = h('button', { type: 'submit' }, 'Set limits');
  const reset = h('button', { type: 'button', class: 'secondary', id: 'tenant-defaults' }, 'Use the defaults');
  const form = h('form', { class: 'card', id: 'tenant-limits' },
    h('h2', {}, 'Set a tenant\'s limits'),
    field('Tenant', tenant, 'Lowercase letters, digits, - and _. A tenant not listed yet is recorded with these limits.'),
    field('Events per second', rate, `1 to ${MAX_EVENTS_PER_SECOND}: the steady rate it may publish at.`),
    field('Burst', burst, `1 to ${MAX_BURST}: how many it may publish at once before the rate holds it back.`),
    h('div', { class: 'actions' }, save, reset));

  // Only the newest outcome is shown: an action clears what the one before said.
  const run = (button, fn) => {
    messages.replaceChildren();
    return act(button, messages, fn);
  };
  async function put(id, limits) {
    const t = await api('PUT', `/v1/tenants/${encodeURIComponent(id)}`, { limits });
    messages.append(notice('ok', h('strong', {}, t.id), t.custom_limits
      ? ` now publishes under its own limits: ${limitsText(t.limits)}.`
      : ` is back on the stack's defaults: ${limitsText(t.limits)}.`,
    ' Every instance applies them within 30 seconds.'));
    await pages.reload();
    return t;
  }
  async function useDefaults(button, id) {
    await run(button, async () => {
      if (!window.confirm(`Put ${id} back on the stack's default limits?`)) return;
      await put(id, null);
    });
  }
  // Fills the form with a listed tenant's limits, to change them.
  function edit(t) {
    tenant.value = t.id;
    rate.value = String(t.limits.events_per_second);
    burst.value = String(t.limits.burst);
    form.scrollIntoView({ block: 'nearest' });
    rate.focus();
  }

  const pages = pager({
    path: '/v1/tenants',
    limit: 50,
    errors: messages,
    show: (page) => clear(rows, page.data.length
      ? table(['Tenant', 'Events/s', 'Burst', 'Limits', 'Created (UTC)', ''],
        page.data.map((t) => h('tr', { dataset: { id: t.id, custom: String(t.custom_limits) } },
          h('td', {}, t.id),
          h('td', { class: 'rate' }, t.limits.events_per_second),
          h('td', { class: 'burst' }, t.limits.burst),
          h('td', {}, t.custom_limits ? badge('its own', 'ok') : badge('defaults', 'off')),
          h('td', {}, utc(t.created_at)),
          h('td', {}, h('div', { class: 'inline' },
            h('button', { type: 'button', class: 'secondary small', onclick: () => edit(t) }, 'Edit'),
            t.custom_limits
              ? h('button', { type: 'button', class: 'danger small', onclick: (e) => useDefaults(e.target, t.id) }, 'Use defaults')
              : null)))),
        { id: 'tenants' })
      : h('p', {}, 'No tenants yet.')),
  });

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    run(save, () => put(tenant.value.trim(), { events_per_second: Number(rate.value), burst: Number(burst.value) }));
  });
  reset.addEventListener('click', () => {
    if (tenant.reportValidity()) useDefaults(reset, tenant.value.trim());
  });
  clear(main, h('h1', {}, 'Tenants'),
    h('p', {}, 'Each tenant publishes under its own limits or, without any, the stack\'s defaults (',
      h('code', {}, 'SKYHOOK_TENANT_EVENTS_PER_SECOND'), ', ', h('code', {}, 'SKYHOOK_TENANT_BURST'),
      '). A tenant is listed from its first API key. Only the bootstrap key sees this page.'),
    messages, form, rows, pages.element);
  await pages.first();
}
