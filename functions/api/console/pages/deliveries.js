// The delivery log with every filter the API has and cursor paging; dead letters with
// redrive (all, or one subscriber's) and its progress.

import { api, qs, untilComplete } from '../api.js';
import { h, clear, time, errorNotice, notice, act, can, table, field, isoFromLocal, link } from '../ui.js';
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
  const pager = h('div', { class: 'pager' });
  const form = h('form', { class: 'filters', id: 'log-filters' },
    field('Subscriber', subscriber), field('Event', event), field('Outcome', outcome),
    field('Since', since), field('Until', until),
    h('button', { type: 'submit' }, 'Filter'));
  const cursors = [null];
  // The filters as last submitted: a cursor belongs to them, not to half-edited fields.
  const read = () => ({
    subscriber_id: subscriber.value.trim(),
    event_id: event.value.trim(),
    outcome: outcome.value,
    since: isoFromLocal(since.value),
    until: isoFromLocal(until.value),
  });
  let filters = read();

  async function load() {
    const cursor = cursors[cursors.length - 1];
    for (const b of pager.querySelectorAll('button')) b.disabled = true;
    const page = await api('GET', `/v1/deliveries${qs({ ...filters, cursor, limit: 25 })}`);
    clear(out, page.data.length ? attemptList(page.data) : h('p', {}, 'No attempts match.'));
    clear(pager,
      cursors.length > 1 ? h('button', { type: 'button', class: 'secondary', onclick: () => { cursors.pop(); load().catch(show); } }, '← Previous') : null,
      h('span', {}, `Page ${cursors.length}`),
      page.next_cursor ? h('button', { type: 'button', class: 'secondary', id: 'next-page', onclick: () => { cursors.push(page.next_cursor); load().catch(show); } }, 'Next →') : null);
  }
  const show = (err) => out.prepend(errorNotice(err));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    filters = read();
    cursors.length = 1;
    load().catch(show);
  });
  clear(main, h('h1', {}, 'Delivery log'), form, out, pager);
  await load();
}

export async function dlqPage(main, me) {
  const subscriber = h('input', { type: 'text', name: 'subscriber_id', id: 'dlq-subscriber', placeholder: 'sub_… (all when empty)' });
  const rows = h('div', { id: 'dead' });
  const progress = h('div', { id: 'redrive-progress', 'aria-live': 'polite' });
  const messages = h('div', {});
  let cursor = null;

  async function load(reset) {
    if (reset) cursor = null;
    const page = await api('GET', `/v1/dlq${qs({ subscriber_id: subscriber.value.trim(), cursor, limit: 50 })}`);
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
    if (reset) clear(rows, list); else rows.append(list);
    cursor = page.next_cursor;
    more.hidden = !cursor;
  }
  const more = h('button', { type: 'button', class: 'secondary', hidden: true, onclick: (e) => act(e.target, messages, () => load(false)) }, 'Load more');
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
      await load(true);
    }),
  }, 'Redrive');
  const filter = h('form', { class: 'filters' }, field('Subscriber', subscriber), h('button', { type: 'submit', class: 'secondary' }, 'Filter'));
  filter.addEventListener('submit', (e) => {
    e.preventDefault();
    load(true).catch((err) => messages.prepend(errorNotice(err)));
  });
  clear(main, h('h1', {}, 'Dead letters'), messages, filter,
    can(me, 'admin') ? h('div', { class: 'actions' }, redrive, h('small', {}, 'Sends them (all, or the subscriber\'s above) back for a fresh set of attempts.')) : null,
    progress, rows, more);
  await load(true);
}
