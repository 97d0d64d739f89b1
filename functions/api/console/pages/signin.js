// Sign-in with an API key, kept in sessionStorage for this tab only.

import { api, session } from '../api.js';
import { h, clear, errorNotice } from '../ui.js';

export function signIn(app, done, earlier) {
  const key = h('input', { type: 'password', name: 'key', id: 'key', autocomplete: 'off', required: true, placeholder: 'sk_…' });
  const out = h('div', {});
  if (earlier) out.append(errorNotice(earlier));
  const form = h('form', { class: 'card signin', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Skyhook console'),
    h('p', {}, 'Sign in with an API key. It stays in this browser tab (sessionStorage) and goes only to this API.'),
    h('label', { class: 'field', for: 'key' }, h('span', {}, 'API key'), key),
    h('button', { type: 'submit' }, 'Sign in'),
    out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    out.replaceChildren();
    session.set(key.value.trim());
    try {
      await api('GET', '/v1/whoami');
      done();
    } catch (err) {
      session.clear();
      out.append(errorNotice(err));
    }
  });
  clear(app, h('main', { class: 'center' }, form));
  key.focus();
}
