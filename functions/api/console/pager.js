// The one pager for the API's lists. A list route takes `?cursor=` and `?limit=` and answers
// `{ data, next_cursor }`; `next_cursor` is null on the last page and is the `cursor` of the
// page after. A pager keeps the cursors, fetches the pages and draws the controls; the page
// that uses it draws each page's data (as text, with ui.js, like everything else).
//
// Two kinds:
// - 'pages': one page at a time, "← Previous" and "Next →" (a stack of the cursors walked,
//   the last one the page shown);
// - 'more': each page added below those shown, a "Load more" button while there is another.
//
// Options:
//   path     the list route, `/v1/…`
//   params   () => the query's other parameters, read at each fetch
//   limit    how many a page
//   show     (page, replace) => draws `page.data`, replacing what is shown when `replace` is
//            true (always, for 'pages'; on the first page, for 'more'), else below it
//   errors   where an error from pressing a control is shown (prepended)
//   counter  'pages': "Page N" between the buttons
//   nextId   'pages': the id of the "Next →" button
//   hold     'pages': its buttons are disabled while a page loads, so a click counts once
//
// Returns { element, first, reload }: the controls, to place below the list; `first()` goes
// back to the first page and fetches it; `reload()` fetches the page shown again ('more': the
// first page).

import { api, qs } from './api.js';
import { h, clear, act, errorNotice } from './ui.js';

export function pager({ kind = 'pages', path, params = () => ({}), limit, show, errors, counter = false, nextId, hold = false }) {
  const fetchPage = (cursor) => api('GET', `${path}${qs({ ...params(), cursor, limit })}`);

  if (kind === 'more') {
    const element = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Load more');
    let cursor = null;
    async function load(reset) {
      if (reset) cursor = null;
      const page = await fetchPage(cursor);
      show(page, reset);
      cursor = page.next_cursor;
      element.hidden = !cursor;
    }
    element.addEventListener('click', () => act(element, errors, () => load(false)));
    const first = () => load(true);
    return { element, first, reload: first };
  }

  const element = h('div', { class: 'pager' });
  const cursors = [null];
  async function load() {
    if (hold) for (const b of element.querySelectorAll('button')) b.disabled = true;
    const page = await fetchPage(cursors[cursors.length - 1]);
    show(page, true);
    const go = (change) => () => {
      change();
      load().catch((err) => errors.prepend(errorNotice(err)));
    };
    clear(element,
      cursors.length > 1 ? h('button', { type: 'button', class: 'secondary', onclick: go(() => cursors.pop()) }, '← Previous') : null,
      counter ? h('span', {}, `Page ${cursors.length}`) : null,
      page.next_cursor ? h('button', { type: 'button', class: 'secondary', id: nextId, onclick: go(() => cursors.push(page.next_cursor)) }, 'Next →') : null);
  }
  const first = () => {
    cursors.length = 1;
    return load();
  };
  return { element, first, reload: load };
}
