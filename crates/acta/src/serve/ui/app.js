// acta's web UI: the token prompt, the hash router and the page frame. Views live in their own
// modules; each renders into <main> and marks it data-state="ready" once its data is shown.

import { api, session, onUnauthorized } from './api.js';
import { h, errorBox } from './dom.js';
import { dashboard } from './dashboard.js';
import { search } from './search.js';
import { eventPage } from './event.js';
import { alerts } from './alerts.js';

const main = document.getElementById('main');
const whoami = document.getElementById('whoami');

/** Routes: a path pattern, the view's name (for the nav) and the view. */
const ROUTES = [
  [/^\/?$/, 'dashboard', dashboard],
  [/^\/search$/, 'search', search],
  [/^\/event\/(\d+)$/, 'event', eventPage],
  [/^\/alerts$/, 'alerts', alerts],
];

/** The view being shown; aborting it cancels its requests. */
let current = null;

function parseHash() {
  const hash = location.hash.replace(/^#/, '');
  const i = hash.indexOf('?');
  const path = (i >= 0 ? hash.slice(0, i) : hash) || '/';
  return { path, params: new URLSearchParams(i >= 0 ? hash.slice(i + 1) : '') };
}

async function render() {
  current?.abort();
  if (!session.token) {
    showLogin();
    return;
  }
  document.body.classList.remove('signed-out');
  const ctl = new AbortController();
  current = ctl;
  const { path, params } = parseHash();
  const found = ROUTES.map(([re, name, view]) => [path.match(re), name, view]).find(([m]) => m);
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.classList.toggle('active', found !== undefined && a.dataset.nav === found[1]);
  }
  main.replaceChildren();
  main.dataset.state = 'loading';
  if (!found) {
    main.dataset.view = 'missing';
    main.append(h('h1', null, 'Not found'), h('p', null, 'No page here. ', h('a', { href: '#/' }, 'Go to the dashboard.')));
    main.dataset.state = 'ready';
    return;
  }
  const [match, name, view] = found;
  main.dataset.view = name;
  try {
    await view(main, { params, match, signal: ctl.signal });
    if (!ctl.signal.aborted) main.dataset.state = 'ready';
  } catch (e) {
    if (ctl.signal.aborted || e.name === 'AbortError' || e.status === 401) return;
    main.append(errorBox(e));
    main.dataset.state = 'error';
  }
}

/** The token prompt, with why it is shown (a refused token, a sign-out). */
function showLogin(message) {
  current?.abort();
  current = null;
  document.body.classList.add('signed-out');
  whoami.replaceChildren();
  const shown = document.getElementById('login-message');
  if (main.dataset.view === 'login' && shown) {
    // Already asking: say why again, keep what was typed.
    shown.className = message ? 'error' : 'hidden';
    shown.textContent = message || '';
    main.dataset.state = 'ready';
    return;
  }
  document.title = 'acta · sign in';
  const input = h('input', {
    id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false',
    required: true, placeholder: 'acta_…', 'aria-describedby': 'token-help',
  });
  const status = h('div', { id: 'login-message', class: message ? 'error' : 'hidden', role: 'alert' },
    message || '');
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', { class: 'login-form' },
    h('label', { for: 'token' }, 'Access token'),
    input, status, button,
    h('p', { id: 'token-help', class: 'muted small' },
      'A token of role admin or auditor (', h('code', null, 'acta token create --role auditor'),
      '). It is kept for this browser tab only and sent with each request.'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    button.disabled = true;
    session.set(token);
    try {
      await loadMe();
      render();
    } catch (e) {
      session.clear();
      status.className = 'error';
      status.textContent = e.message;
      input.select();
    } finally {
      button.disabled = false;
    }
  });
  main.replaceChildren(h('section', { class: 'login card' },
    h('h1', null, 'Sign in to acta'),
    h('p', { class: 'muted' }, 'Who did what, when, where, and whether it was allowed — with proof.'),
    form));
  main.dataset.view = 'login';
  main.dataset.state = 'ready';
  input.focus();
}

/** Who the token is, in the header. */
async function loadMe() {
  const me = await api('me');
  whoami.replaceChildren(h('span', { class: 'who-name' }, me.name || me.id),
    h('span', { class: `pill role-${me.role}` }, me.role));
  whoami.title = `token ${me.id}`;
}

onUnauthorized((message) => {
  session.clear();
  showLogin(message);
});

document.getElementById('signout').addEventListener('click', () => {
  session.clear();
  showLogin('Signed out.');
});

// Theme: follows the system unless chosen here (a display preference, kept across sessions).
const THEMES = ['auto', 'light', 'dark'];
const themeButton = document.getElementById('theme');
function applyTheme(t) {
  if (t === 'auto') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = t;
  themeButton.title = t === 'auto' ? 'Theme: follows the system' : `Theme: ${t}`;
}
applyTheme(localStorage.getItem('acta.theme') || 'auto');
themeButton.addEventListener('click', () => {
  const now = localStorage.getItem('acta.theme') || 'auto';
  const next = THEMES[(THEMES.indexOf(now) + 1) % THEMES.length];
  localStorage.setItem('acta.theme', next);
  applyTheme(next);
});

// "/" focuses the query box, as in many log tools.
document.addEventListener('keydown', (e) => {
  if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target;
  if (t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement) return;
  const q = document.getElementById('q');
  e.preventDefault();
  if (q) q.focus();
  else location.hash = '#/search';
});

window.addEventListener('hashchange', render);

if (session.token) {
  loadMe().then(render, (e) => {
    if (e.status !== 401) render();
  });
} else {
  showLogin();
}
