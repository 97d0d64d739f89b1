// The delivery log with every filter the API has and cursor paging; dead letters with
// redrive (all, or one subscriber's) and its progress.

import { untilComplete } from '../api.js';
import { h, clear, time, errorNotice, notice, act, can, table, field, isoFromLocal, link } from '../ui.js';
import { pager } from '../pager.js';
import { attemptList } from './subscribers.js';

function hashParams() {
  const q = window.location.hash.split('?')[1] ?? '';
  return Object.fromEntries(new URLSearchParams(q));
}

export async function deliveriesPage(main) {
  const given = hashParams();
  const subscriber = h('input', { type: 'text', name: 'subscriber_id', placeholder: 'sub_…', value: given.subscriber_id ?? '' });
  const event = h('input', { type: 'text', name: 'event_id', placeholder: 'evt_…', value: given.event_id ?? '' });
  const outcome = h('select', { name: 'outcome' },
    h('option', { value: '' }, 'Any'), h('option', { value: 'success' }, 'Success'), h('option', { value: 'failure' }, 'Failure'));
  outcome.value = given.outcome ?? '';
  const since = h('input', { type: 'datetime-local', name: 'since' });
  const until = h('input', { type: 'datetime-local', name: 'until' });
  const out = h('div', { id: 'log' });
  const form = h('form', { class: 'filters', id: 'log-filters' },
    field('Subscriber', subscriber), field('Event', event), field('Outcome', outcome),
    field('Since', since), field('Until', until),
    h('button', { type: 'submit' }, 'Filter'));
  // The filters as last submitted: a cursor belongs to them, not to half-edited fields.
  const read = () => ({
    subscriber_id: subscriber.value.trim(),
    event_id: event.value.trim(),
    outcome: outcome.value,
    since: isoFromLocal(since.value),
    until: isoFromLocal(until.value),
  });
  let filters = read();

  const pages = pager({
    path: '/v1/deliveries',
    params: () => filters,
    limit: 25,
    errors: out,
    counter: true,
    nextId: 'next-page',
    hold: true,
    show: (page) => clear(out, page.data.length ? attemptList(page.data) : h('p', {}, 'No attempts match.')),
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    filters = read();
    pages.first().catch((err) => out.prepend(errorNotice(err)));
  });
  clear(main, h('h1', {}, 'Delivery log'), form, out, pages.element);
  await pages.first();
}

export async function dlqPage(main, me) {
  const subscriber = h('input', { type: 'text', name: 'subscriber_id', id: 'dlq-subscriber', placeholder: 'sub_… (all when empty)' });
  const rows = h('div', { id: 'dead' });
  const progress = h('div', { id: 'redrive-progress', 'aria-live': 'polite' });
  const messages = h('div', {});
  const more = pager({
    kind: 'more',
    path: '/v1/dlq',
    params: () => ({ subscriber_id: subscriber.value.trim() }),
    limit: 50,
    errors: messages,
    show: (page, replace) => {
      const list = page.data.length
        ? table(['Event', 'Subscriber', 'Type', 'Attempts', 'Reason', 'Dead since'],
          page.data.map((d) => h('tr', { dataset: { event: d.event_id } },
            h('td', {}, link(`#/events/${d.event_id}`, d.event_id)),
            h('td', {}, link(`#/subscribers/${d.subscriber_id}`, d.subscriber_id)),
            h('td', {}, d.event_type),
            h('td', {}, d.attempts),
            h('td', { class: 'wrap' }, d.reason),
            h('td', {}, time(d.dead_at)))))
        : h('p', { id: 'dlq-empty' }, 'No dead letters.');
      if (replace) clear(rows, list); else rows.append(list);
    },
  });
  const redrive = h('button', {
    type: 'button',
    id: 'redrive',
    onclick: (e) => act(e.target, messages, async () => {
      const who = subscriber.value.trim();
      const body = who ? { subscriber_id: who } : {};
      clear(progress, notice('info', 'Redriving…'));
      const total = await untilComplete('POST', '/v1/dlq/redrive', body, (p) => {
        clear(progress, notice('info', `Redriving… ${p.redriven ?? 0} sent again, ${p.dropped ?? 0} dropped (call ${p.calls}).`));
      });
      clear(progress, notice('ok', `Redrive complete: ${total.redriven ?? 0} sent again, ${total.dropped ?? 0} dropped (delivered or recovered since).`));
      await more.first();
    }),
  }, 'Redrive');
  const filter = h('form', { class: 'filters' }, field('Subscriber', subscriber), h('button', { type: 'submit', class: 'secondary' }, 'Filter'));
  filter.addEventListener('submit', (e) => {
    e.preventDefault();
    more.first().catch((err) => messages.prepend(errorNotice(err)));
  });
  clear(main, h('h1', {}, 'Dead letters'), messages, filter,
    can(me, 'admin') ? h('div', { class: 'actions' }, redrive, h('small', {}, 'Sends them (all, or the subscriber\'s above) back for a fresh set of attempts.')) : null,
    progress, rows, more.element);
  await more.first();
}
