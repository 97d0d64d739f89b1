// Subscribers: the list with filters and paging, creating one, and one subscriber's page
// with its charts, its recent attempts and every action the API has for it.

import { api, qs } from '../api.js';
import { h, clear, time, errorNotice, notice, act, can, field, badge, link, labelCells } from '../ui.js';
import { pager } from '../pager.js';
import { attemptsChart, latencyChart, legend } from '../chart.js';

function healthBadge(s) {
  if (!s.active) return badge(s.disabled_reason ? `inactive (${s.disabled_reason})` : 'inactive', 'off');
  const state = s.health ? s.health.state : 'closed';
  if (state === 'closed') return badge('healthy', 'ok');
  return badge(state === 'open' ? 'breaker open' : 'breaker half-open', 'fail');
}

const HEADERS = ['Id', 'URL', 'Event types', 'Health', 'Last error', ''];

function list(value) {
  return value.split(',').map((t) => t.trim()).filter(Boolean);
}

function optional(value) {
  const v = value.trim();
  return v === '' ? undefined : v;
}

async function setActive(id, active) {
  return api('PATCH', `/v1/subscribers/${id}`, { active });
}

export async function subscribersPage(main, me) {
  const filter = h('select', { name: 'active', id: 'active-filter' },
    h('option', { value: '' }, 'All'),
    h('option', { value: 'true' }, 'Active'),
    h('option', { value: 'false' }, 'Inactive'));
  const rows = h('tbody', {});
  const messages = h('div', {});

  const row = (s) => {
    const toggle = can(me, 'admin')
      ? h('button', {
        type: 'button',
        class: 'secondary small',
        onclick: (e) => act(e.target, messages, async () => {
          await setActive(s.id, !s.active);
          await reload();
        }),
      }, s.active ? 'Disable' : 'Enable')
      : null;
    return h('tr', { dataset: { id: s.id } },
      h('td', {}, link(`#/subscribers/${s.id}`, s.id)),
      h('td', { class: 'wrap' }, s.url),
      h('td', {}, s.event_types.join(', ')),
      h('td', {}, healthBadge(s)),
      h('td', { class: 'wrap' }, (s.health && s.health.last_error) || ''),
      h('td', {}, toggle));
  };

  const more = pager({
    kind: 'more',
    path: '/v1/subscribers',
    params: () => ({ active: filter.value }),
    limit: 50,
    errors: messages,
    show: (page) => {
      for (const s of page.data) rows.append(row(s));
      if (!rows.children.length) rows.append(h('tr', {}, h('td', { colspan: 6 }, 'No subscribers yet.')));
      labelCells(rows, HEADERS);
    },
  });
  // From the first page again, the table emptied while it loads.
  const reload = () => {
    rows.replaceChildren();
    return more.first();
  };
  filter.addEventListener('change', () => reload().catch((err) => messages.prepend(errorNotice(err))));

  clear(main,
    h('div', { class: 'title-row' }, h('h1', {}, 'Subscribers'),
      can(me, 'admin') ? h('a', { class: 'button', href: '#/subscribers', id: 'new-subscriber', onclick: (e) => { e.preventDefault(); form.hidden = !form.hidden; } }, 'New subscriber') : null),
    messages,
    can(me, 'admin') ? createForm(messages, reload) : null,
    h('div', { class: 'filters' }, field('Show', filter)),
    h('div', { class: 'table-wrap' }, h('table', { id: 'subscribers' },
      h('thead', {}, h('tr', {}, HEADERS.map((t) => h('th', { scope: 'col' }, t)))),
      rows)),
    more.element);
  const form = main.querySelector('#create-subscriber');
  await reload();
}

function createForm(messages, reload) {
  const url = h('input', { type: 'url', name: 'url', required: true, placeholder: 'https://example.com/webhooks' });
  const types = h('input', { type: 'text', name: 'event_types', required: true, value: '*', placeholder: 'order.*, invoice.paid' });
  const description = h('input', { type: 'text', name: 'description' });
  const filter = h('input', { type: 'text', name: 'filter', placeholder: '.data.total >= 100' });
  const transform = h('textarea', { name: 'transform', rows: 2, placeholder: '{kind: .type, order: .data.id}' });
  const out = h('div', {});
  const form = h('form', { class: 'card', id: 'create-subscriber', hidden: true },
    h('h2', {}, 'New subscriber'),
    field('Endpoint URL', url),
    field('Event types', types, 'Comma-separated: order.created, order.*, or * for all.'),
    field('Description', description),
    field('Content filter (jq)', filter, 'Optional: the event goes to it only when this gives true.'),
    field('Transform (jq)', transform, 'Optional: shapes the body sent; the signature covers it.'),
    h('button', { type: 'submit' }, 'Create'),
    out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    out.replaceChildren();
    const submit = form.querySelector('button[type=submit]');
    await act(submit, out, async () => {
      const created = await api('POST', '/v1/subscribers', {
        url: url.value.trim(),
        event_types: list(types.value),
        description: optional(description.value),
        filter: optional(filter.value),
        transform: optional(transform.value),
      });
      form.reset();
      form.hidden = true;
      messages.prepend(notice('ok', 'Created ', link(`#/subscribers/${created.id}`, created.id),
        '. Its signing secret, shown only now: ', h('code', { class: 'secret' }, created.secret)));
      await reload();
    });
  });
  return form;
}

export async function subscriberPage(main, me, id) {
  const messages = h('div', {});
  const details = h('div', {});
  const charts = h('section', { class: 'card', id: 'charts' });
  const attempts = h('section', { class: 'card', id: 'attempts' });
  clear(main,
    h('p', {}, link('#/subscribers', '← Subscribers')),
    h('h1', {}, id),
    messages, details, charts, attempts);

  async function loadSubscriber() {
    const s = await api('GET', `/v1/subscribers/${id}`);
    const actions = h('div', { class: 'actions' });
    if (can(me, 'admin')) {
      actions.append(
        h('button', {
          type: 'button',
          id: 'toggle-active',
          onclick: (e) => act(e.target, messages, async () => {
            await setActive(id, !s.active);
            await loadSubscriber();
          }),
        }, s.active ? 'Disable' : 'Enable'),
        h('button', {
          type: 'button',
          class: 'secondary',
          onclick: (e) => act(e.target, messages, async () => {
            const out = await api('POST', `/v1/subscribers/${id}/rotate-secret`, {});
            messages.prepend(notice('ok', 'New signing secret, shown only now: ', h('code', { class: 'secret' }, out.secret),
              out.previous_secret_expires_at ? ` (the previous one also signs until ${time(out.previous_secret_expires_at)})` : ''));
          }),
        }, 'Rotate secret'));
    }
    if (can(me, 'publisher')) {
      actions.append(h('button', {
        type: 'button',
        class: 'secondary',
        onclick: (e) => act(e.target, messages, async () => {
          const out = await api('POST', `/v1/subscribers/${id}/test`);
          messages.prepend(notice('ok', 'Test event ', link(`#/events/${out.id}`, out.id), ' sent.'));
        }),
      }, 'Send test event'));
    }
    if (can(me, 'admin')) {
      actions.append(h('button', {
        type: 'button',
        class: 'danger',
        onclick: (e) => act(e.target, messages, async () => {
          if (!window.confirm(`Delete ${id} and its signing secret?`)) return;
          await api('DELETE', `/v1/subscribers/${id}`);
          window.location.hash = '#/subscribers';
        }),
      }, 'Delete'));
    }
    const facts = [
      ['Status', healthBadge(s)],
      ['URL', s.url],
      ['Event types', s.event_types.join(', ')],
      ['Description', s.description || '—'],
      ['Content filter', s.filter ? h('code', {}, s.filter) : '—'],
      ['Transform', s.transform ? h('code', {}, s.transform) : '—'],
      ['Signature', s.signature_scheme],
      ['Max concurrency', s.max_concurrency],
      ['Rate limit', s.rate_limit ? `${s.rate_limit}/s` : 'none'],
      ['Consecutive failures', s.health ? s.health.consecutive_failures : 0],
      ['Last error', (s.health && s.health.last_error) || '—'],
      ['Created', time(s.created_at)],
      ['Updated', time(s.updated_at)],
    ];
    clear(details,
      h('section', { class: 'card' },
        h('dl', { class: 'facts', id: 'subscriber-facts', dataset: { active: String(s.active) } },
          facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
        actions,
        can(me, 'admin') ? editForm(s, messages, loadSubscriber) : null));
  }

  const bucket = h('select', { id: 'bucket', name: 'bucket' },
    h('option', { value: 'minute' }, 'Last 2 hours, by minute'),
    h('option', { value: 'hour', selected: true }, 'Last 2 days, by hour'),
    h('option', { value: 'day' }, 'Last 60 days, by day'));
  const refresh = h('button', { type: 'button', class: 'secondary small', id: 'refresh-charts' }, 'Refresh');
  const chartBody = h('div', {});
  async function loadCharts() {
    const since = { minute: 119 * 60e3, hour: 47 * 3600e3, day: 59 * 86400e3 }[bucket.value];
    const q = qs({ subscriber_id: id, bucket: bucket.value, since: new Date(Date.now() - since).toISOString() });
    const [series, stats] = await Promise.all([
      api('GET', `/v1/stats/timeseries${q}`),
      api('GET', `/v1/stats${qs({ subscriber_id: id })}`),
    ]);
    clear(chartBody,
      h('p', { class: 'totals' },
        `Finished deliveries: ${stats.total} (${stats.success} delivered, ${stats.failure} failed), ${stats.avg_attempts} attempts each on average.`),
      h('h3', {}, 'Attempts'),
      legend([['ok', 'succeeded'], ['fail', 'failed']]),
      attemptsChart(series.points, series.bucket),
      h('h3', {}, 'Latency'),
      legend([['p50', 'p50'], ['p95', 'p95']]),
      latencyChart(series.points, series.bucket));
  }
  bucket.addEventListener('change', () => loadCharts().catch((err) => charts.prepend(errorNotice(err))));
  refresh.addEventListener('click', () => act(refresh, charts, loadCharts));
  clear(charts, h('div', { class: 'title-row' }, h('h2', {}, 'Deliveries over time'), h('div', { class: 'inline' }, bucket, refresh)), chartBody);

  async function loadAttempts() {
    const page = await api('GET', `/v1/deliveries${qs({ subscriber_id: id, limit: 20 })}`);
    clear(attempts, h('h2', {}, 'Recent attempts'),
      page.data.length ? attemptList(page.data) : h('p', {}, 'No attempts yet.'),
      h('p', {}, link(`#/deliveries?subscriber_id=${id}`, 'All of its attempts in the delivery log →')));
  }

  await Promise.all([loadSubscriber(), loadCharts(), loadAttempts()]);
}

function editForm(s, messages, reload) {
  const url = h('input', { type: 'url', name: 'url', value: s.url, required: true });
  const types = h('input', { type: 'text', name: 'event_types', value: s.event_types.join(', '), required: true });
  const description = h('input', { type: 'text', name: 'description', value: s.description || '' });
  const filter = h('input', { type: 'text', name: 'filter', value: s.filter || '' });
  const transform = h('textarea', { name: 'transform', rows: 2 });
  transform.value = s.transform || '';
  const concurrency = h('input', { type: 'number', name: 'max_concurrency', min: 1, max: 100, value: s.max_concurrency });
  const rate = h('input', { type: 'number', name: 'rate_limit', min: 1, max: 10000, value: s.rate_limit || '' });
  const out = h('div', {});
  const form = h('form', { class: 'edit', id: 'edit-subscriber' },
    h('h3', {}, 'Edit'),
    field('Endpoint URL', url),
    field('Event types', types, 'Comma-separated.'),
    field('Description', description),
    field('Content filter (jq)', filter, 'Empty: every event its types match.'),
    field('Transform (jq)', transform, 'Empty: the event as it is.'),
    field('Max concurrency', concurrency),
    field('Rate limit (deliveries/s)', rate, 'Empty: none.'),
    h('button', { type: 'submit' }, 'Save'),
    out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    out.replaceChildren();
    await act(form.querySelector('button[type=submit]'), out, async () => {
      await api('PATCH', `/v1/subscribers/${s.id}`, {
        url: url.value.trim(),
        event_types: list(types.value),
        description: description.value.trim() === '' ? null : description.value.trim(),
        filter: filter.value.trim() === '' ? null : filter.value.trim(),
        transform: transform.value.trim() === '' ? null : transform.value.trim(),
        max_concurrency: Number(concurrency.value),
        rate_limit: rate.value === '' ? null : Number(rate.value),
      });
      messages.prepend(notice('ok', 'Saved.'));
      await reload();
    });
  });
  return h('details', {}, h('summary', {}, 'Edit this subscriber'), form);
}

// Attempts, each opening to its request, response and error.
export function attemptList(items) {
  return h('ul', { class: 'attempts' }, items.map((a) => h('li', {},
    h('details', {},
      h('summary', {},
        badge(a.outcome, a.outcome === 'success' ? 'ok' : 'fail'), ' ',
        time(a.started_at), ' · ', a.event_type, ' · attempt ', a.attempt, ' · ',
        a.status_code ? `HTTP ${a.status_code}` : 'no answer', ' · ', `${a.latency_ms} ms`),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Event'), h('dd', {}, link(`#/events/${a.event_id}`, a.event_id)),
        h('dt', {}, 'Subscriber'), h('dd', {}, link(`#/subscribers/${a.subscriber_id}`, a.subscriber_id)),
        h('dt', {}, 'Request'), h('dd', { class: 'wrap' }, `POST ${a.url}`),
        h('dt', {}, 'Response'), h('dd', {}, a.status_code ? `HTTP ${a.status_code}` : '—'),
        h('dt', {}, 'Error'), h('dd', { class: 'wrap' }, a.error || '—'),
        h('dt', {}, 'Finished'), h('dd', {}, time(a.finished_at))),
      a.response_body ? [h('h4', {}, 'Response body (first 4 KiB)'), h('pre', { class: 'body' }, a.response_body)] : null))));
}


