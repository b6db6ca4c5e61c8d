// DOM building and formatting. Every value from the server reaches the page as a text node or
// an attribute value set through the DOM, never as markup: nothing it contains can run.

const SVG = 'http://www.w3.org/2000/svg';

/** An HTML element: h('a', {href: '#/search', class: 'x'}, 'text', child, [more]). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  apply(el, props);
  add(el, children);
  return el;
}

/** An SVG element, as h(). */
export function s(tag, props, ...children) {
  const el = document.createElementNS(SVG, tag);
  apply(el, props);
  add(el, children);
  return el;
}

function apply(el, props) {
  if (!props) return;
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') el.textContent = String(v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style') for (const [p, x] of Object.entries(v)) el.style.setProperty(p, x);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'href') el.setAttribute('href', safeHref(v));
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

// Links are only ever built to this application's own routes.
function safeHref(v) {
  const t = String(v);
  return t.startsWith('#') || (t.startsWith('/') && !t.startsWith('//')) ? t : '#';
}

function add(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

const nf = new Intl.NumberFormat('en-US');

/** 12,345 */
export function num(n) {
  return n === undefined || n === null || Number.isNaN(n) ? '—' : nf.format(n);
}

/** 2024-07-30 21:31:20Z (UTC, as the trail's sources write it). */
export function utc(ms) {
  if (ms === undefined || ms === null || !Number.isFinite(ms)) return '—';
  return new Date(ms).toISOString().replace('T', ' ').replace('.000Z', 'Z');
}

/** The instant of an RFC 3339 string, or NaN. */
export function instant(text) {
  return typeof text === 'string' ? Date.parse(text) : NaN;
}

/** 62 ms, 4.1 s, 12 min, 3.5 h, 9 d, 2.3 y */
export function duration(ms) {
  if (ms === undefined || ms === null || !Number.isFinite(ms)) return '—';
  const a = Math.abs(ms);
  const sign = ms < 0 ? '−' : '';
  if (a < 1000) return `${sign}${Math.round(a)} ms`;
  if (a < 60e3) return `${sign}${(a / 1e3).toFixed(1)} s`;
  if (a < 3600e3) return `${sign}${Math.round(a / 60e3)} min`;
  if (a < 86400e3) return `${sign}${(a / 3600e3).toFixed(1)} h`;
  if (a < 365 * 86400e3) return `${sign}${(a / 86400e3).toFixed(1)} d`;
  return `${sign}${(a / (365.25 * 86400e3)).toFixed(1)} y`;
}

/** "12 s ago", from an age in milliseconds. */
export function ago(ms) {
  if (ms === undefined || ms === null || !Number.isFinite(ms)) return '—';
  return ms < 1000 ? 'just now' : `${duration(ms)} ago`;
}

/** A value of the query language for field:value, quoted unless it is a plain word. */
export function term(field, value) {
  const v = String(value);
  if (/^[A-Za-z0-9_.:@/+=,-]+$/.test(v) && !v.startsWith('-') && !v.startsWith(':')) {
    return `${field}:${v}`;
  }
  return `${field}:"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** A route of the UI with its parameters: route('/search', {q: 'actor:x'}) → '#/search?q=…'. */
export function route(path, params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  }
  const qs = p.toString();
  return `#${path}${qs ? `?${qs}` : ''}`;
}

/** A link to the search for one value of a field. */
export function searchLink(field, value, since, label) {
  if (value === undefined || value === null || value === '') {
    return h('span', { class: 'none' }, label ?? '(none)');
  }
  return h('a', { href: route('/search', { q: term(field, value), since }), title: term(field, value) },
    label ?? String(value));
}

/** A card: a titled panel whose body is filled later. */
export function card(title, opts = {}) {
  const body = h('div', { class: 'card-body' }, h('div', { class: 'loading' }, 'Loading…'));
  const el = h('section', { class: `card ${opts.class || ''}`, id: opts.id },
    h('header', { class: 'card-head' }, h('h2', null, title), opts.aside ?? null), body);
  return { el, body };
}

/** Replaces a card's body with what a request gave, or its error. */
export async function fill(card, promise, render) {
  try {
    const value = await promise;
    card.body.replaceChildren(...[render(value)].flat(Infinity).filter(Boolean));
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    card.body.replaceChildren(errorBox(e));
    if (e.status === 401) throw e;
  }
}

/** An error from the API as the page shows it. */
export function errorBox(e) {
  const message = e?.message || String(e);
  const box = h('div', { class: 'error', role: 'alert' });
  if (message.includes('\n')) box.append(h('pre', null, message));
  else box.append(message);
  return box;
}

/** An outcome as a small coloured label. */
export function outcomePill(outcome) {
  const o = (outcome || 'unknown').toLowerCase();
  return h('span', { class: `pill outcome-${o}` }, o);
}

/** A severity as a small coloured label. */
export function severityPill(severity) {
  const v = (severity || 'unknown').toLowerCase();
  return h('span', { class: `pill sev-${v}` }, v);
}

/** A button that copies text, saying so. */
export function copyButton(text, label = 'Copy') {
  const b = h('button', { type: 'button', class: 'ghost small' }, label);
  b.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = 'Copied';
    } catch {
      b.textContent = 'Select and copy';
    }
    setTimeout(() => { b.textContent = label; }, 1500);
  });
  return b;
}
