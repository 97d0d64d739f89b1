// The Skyhook console: a hash-routed page over the management API. The API key lives in
// sessionStorage only (never a cookie or a URL); the key's role decides which actions show,
// and the API refuses the rest whatever the page shows.

import { api, session } from './api.js';
import { h, clear, errorNotice, can } from './ui.js';
import { signIn } from './pages/signin.js';
import { subscribersPage, subscriberPage } from './pages/subscribers.js';
import { eventsPage, sandboxPage } from './pages/events.js';
import { deliveriesPage, dlqPage } from './pages/deliveries.js';
import { keysPage, auditPage, sourcesPage, tenantsPage } from './pages/admin.js';

const app = document.getElementById('app');
let me = null;

const NAV = [
  ['#/subscribers', 'Subscribers', 'reader'],
  ['#/events', 'Events', 'reader'],
  ['#/deliveries', 'Delivery log', 'reader'],
  ['#/dlq', 'Dead letters', 'reader'],
  ['#/sandbox', 'Sandbox', 'publisher'],
  ['#/sources', 'Sources', 'reader'],
  ['#/keys', 'API keys', 'admin'],
  ['#/audit', 'Audit log', 'admin'],
  ['#/tenants', 'Tenants', 'bootstrap'],
];

const ROUTES = [
  [/^#\/subscribers\/(sub_[0-9A-Za-z]+)$/, subscriberPage],
  [/^#\/subscribers$/, subscribersPage],
  [/^#\/events\/(evt_[0-9A-Za-z]+)$/, eventsPage],
  [/^#\/events$/, eventsPage],
  [/^#\/deliveries(?:\?.*)?$/, deliveriesPage],
  [/^#\/dlq$/, dlqPage],
  [/^#\/sandbox$/, sandboxPage],
  [/^#\/sources$/, sourcesPage],
  [/^#\/keys$/, keysPage],
  [/^#\/audit$/, auditPage],
  [/^#\/tenants$/, tenantsPage],
];

// Goes to `hash`: the hashchange renders it, or, when it is already there, this does.
function navigate(hash) {
  if (window.location.hash === hash) render();
  else window.location.hash = hash;
}

function signOut() {
  session.clear();
  me = null;
  navigate('#/signin');
}

function shell() {
  const current = window.location.hash.split('/').slice(0, 2).join('/');
  const nav = h('nav', { 'aria-label': 'Main' },
    NAV.filter(([, , role]) => can(me, role)).map(([href, text]) =>
      h('a', { href, class: href === current ? 'active' : '' }, text)));
  const main = h('main', { id: 'main' });
  clear(app,
    h('header', { class: 'top' },
      h('a', { class: 'brand', href: '#/subscribers' }, 'Skyhook'),
      nav,
      h('div', { class: 'who' },
        h('span', { class: 'badge', 'data-role': me.role }, `${me.tenant} · ${me.role}`),
        h('button', { type: 'button', class: 'link', onclick: signOut }, 'Sign out'))),
    main);
  return main;
}

async function render() {
  if (!session.key) {
    me = null;
    signIn(app, () => {
      me = null;
      navigate('#/subscribers');
    });
    return;
  }
  if (!me) {
    try {
      me = await api('GET', '/v1/whoami');
    } catch (err) {
      // Only a refused key signs out; a network error or an outage keeps it for a retry.
      if (err.status === 401) {
        session.clear();
        signIn(app, () => navigate('#/subscribers'), err);
      } else {
        clear(app, h('main', { class: 'center' }, h('div', { class: 'card signin' },
          errorNotice(err), h('button', { type: 'button', onclick: () => render() }, 'Try again'))));
      }
      return;
    }
  }
  const hash = window.location.hash || '#/subscribers';
  const route = ROUTES.find(([re]) => re.test(hash));
  if (!route) {
    navigate('#/subscribers');
    return;
  }
  const main = shell();
  const params = hash.match(route[0]).slice(1);
  try {
    await route[1](main, me, ...params);
  } catch (err) {
    main.prepend(errorNotice(err));
  }
  // Loaded: what tests (and screen readers' live region) wait for.
  main.dataset.page = hash;
}

window.addEventListener('hashchange', () => render());
render();
