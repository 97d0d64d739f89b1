// Events: look one up by id, see its delivery per subscriber, resend it to one; and the
// sandbox, which publishes an event from a JSON editor and shows its deliveries arriving.

import { api } from '../api.js';
import { h, clear, time, json, errorNotice, notice, act, can, table, field, badge, link } from '../ui.js';

function statusBadge(status) {
  const kind = { delivered: 'ok', failed: 'fail', subscriber_deleted: 'off', retrying: 'warn' }[status] ?? '';
  return badge(status, kind);
}

function deliveriesTable(event, me, messages, reload) {
  return table(['Subscriber', 'Status', 'Attempts', 'Last answer', 'Last error', 'Updated', ''],
    event.deliveries.map((d) => h('tr', { dataset: { subscriber: d.subscriber_id, status: d.status } },
      h('td', {}, link(`#/subscribers/${d.subscriber_id}`, d.subscriber_id)),
      h('td', {}, statusBadge(d.status)),
      h('td', {}, d.attempts),
      h('td', {}, d.last_status_code ? `HTTP ${d.last_status_code}` : '—'),
      h('td', { class: 'wrap' }, d.last_error || '—'),
      h('td', {}, time(d.updated_at)),
      h('td', {}, can(me, 'admin') && ['delivered', 'failed'].includes(d.status)
        ? h('button', {
          type: 'button',
          class: 'secondary small',
          onclick: (e) => act(e.target, messages, async () => {
            await api('POST', `/v1/events/${event.id}/resend`, { subscriber_id: d.subscriber_id });
            messages.prepend(notice('ok', `Sent again to ${d.subscriber_id}, with the same webhook-id.`));
            await reload();
          }),
        }, 'Resend')
        : null))));
}

export async function eventsPage(main, me, id) {
  const input = h('input', { type: 'text', name: 'event_id', id: 'event-id', placeholder: 'evt_…', value: id || '', required: true, pattern: 'evt_[0-9A-Za-z]+' });
  const messages = h('div', {});
  const out = h('div', {});
  const form = h('form', { class: 'filters', id: 'event-lookup' }, field('Event id', input), h('button', { type: 'submit' }, 'Look up'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    window.location.hash = `#/events/${input.value.trim()}`;
  });
  clear(main, h('h1', {}, 'Events'), form, messages, out);
  if (!id) return;
  async function load() {
    const event = await api('GET', `/v1/events/${id}`);
    clear(out, h('section', { class: 'card' },
      h('dl', { class: 'facts' },
        h('dt', {}, 'Id'), h('dd', {}, event.id),
        h('dt', {}, 'Type'), h('dd', {}, event.type),
        h('dt', {}, 'Time'), h('dd', {}, time(event.timestamp)),
        h('dt', {}, 'Correlation id'), h('dd', {}, event.correlation_id)),
      h('h2', {}, 'Deliveries'),
      event.deliveries.length ? deliveriesTable(event, me, messages, load) : h('p', {}, 'It matched no subscriber.'),
      h('h2', {}, 'Data'),
      event.data === null ? h('p', {}, 'Too large to keep beside the log.') : json(event.data)));
  }
  await load();
}

export async function sandboxPage(main, me) {
  const type = h('input', { type: 'text', name: 'type', id: 'sandbox-type', required: true, value: 'order.created' });
  const data = h('textarea', { name: 'data', id: 'sandbox-data', rows: 10, spellcheck: 'false' });
  data.value = JSON.stringify({ id: 'ord_1001', total: 4200, currency: 'EUR' }, null, 2);
  const out = h('div', { id: 'sandbox-result' });
  const form = h('form', { class: 'card', id: 'sandbox' },
    h('h2', {}, 'Publish a test event'),
    field('Event type', type),
    field('Data (JSON)', data, 'Sent as the event\'s data to every subscriber whose types and filter match.'),
    h('button', { type: 'submit' }, 'Publish'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    out.replaceChildren();
    let parsed;
    try {
      parsed = JSON.parse(data.value);
    } catch (err) {
      out.append(notice('error', 'The data is not JSON: ', err.message));
      return;
    }
    await act(form.querySelector('button[type=submit]'), out, async () => {
      const receipt = await api('POST', '/v1/events', { type: type.value.trim(), data: parsed });
      out.append(notice('ok', 'Published ', link(`#/events/${receipt.id}`, receipt.id), ` to ${receipt.subscribers} subscriber(s).`));
      const live = h('div', { id: 'sandbox-live' });
      out.append(live);
      await watch(receipt.id, live);
    });
  });
  clear(main, h('h1', {}, 'Sandbox'),
    can(me, 'publisher') ? form : notice('info', 'Publishing needs a publisher or admin key.'),
    out);
}

// Shows an event's deliveries as they change, for up to a minute, until each has ended.
async function watch(id, where) {
  const deadline = Date.now() + 60_000;
  while (document.body.contains(where) && Date.now() < deadline) {
    let event;
    try {
      event = await api('GET', `/v1/events/${id}`);
    } catch (err) {
      clear(where, errorNotice(err));
      return;
    }
    const done = event.deliveries.every((d) => ['delivered', 'failed', 'subscriber_deleted'].includes(d.status));
    clear(where,
      h('h3', {}, done ? 'Deliveries' : 'Deliveries (updating…)'),
      event.deliveries.length
        ? table(['Subscriber', 'Status', 'Attempts', 'Last answer'],
          event.deliveries.map((d) => h('tr', { dataset: { subscriber: d.subscriber_id, status: d.status } },
            h('td', {}, link(`#/subscribers/${d.subscriber_id}`, d.subscriber_id)),
            h('td', {}, statusBadge(d.status)),
            h('td', {}, d.attempts),
            h('td', {}, d.last_status_code ? `HTTP ${d.last_status_code}` : '—'))))
        : h('p', {}, 'No subscriber matched.'));
    if (done) return;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
