// Alerts: what detection raised, how severe, about whom, how fast (MTTI), and the entries behind
// each, linked to their pages and proofs.

import { api } from './api.js';
import { h, num, utc, duration, route, term, card, errorBox, searchLink, severityPill } from './dom.js';

const PAGE = 50;
const SEVERITY_ORDER = ['critical', 'high', 'medium', 'low', 'informational', 'unknown'];

export async function alerts(main, { params, signal }) {
  const q = params.get('q') ?? '';
  const since = params.get('since') || undefined;
  const until = params.get('until') || undefined;
  const offset = Math.max(0, Number.parseInt(params.get('offset') || '0', 10) || 0);
  document.title = 'acta · alerts';

  const qInput = h('input', {
    id: 'q', name: 'q', type: 'search', value: q, class: 'query', spellcheck: 'false',
    autocomplete: 'off', 'aria-label': 'Filter alerts', placeholder: 'filter: actor:alice   (query language)',
  });
  const sinceInput = h('input', { name: 'since', value: since ?? '', placeholder: 'since (7d)', 'aria-label': 'Since', class: 'bound' });
  const untilInput = h('input', { name: 'until', value: until ?? '', placeholder: 'until (now)', 'aria-label': 'Until', class: 'bound' });
  const form = h('form', { class: 'search-form' }, qInput, sinceInput, untilInput,
    h('button', { type: 'submit', class: 'primary' }, 'Filter'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const next = route('/alerts', { q: qInput.value.trim(), since: sinceInput.value.trim(), until: untilInput.value.trim() });
    if (location.hash === next) window.dispatchEvent(new HashChangeEvent('hashchange'));
    else location.hash = next;
  });
  main.append(h('div', { class: 'page-head' }, h('h1', null, 'Alerts')), form);

  let d;
  try {
    d = await api('alerts', { q, since, until, limit: PAGE, offset }, { signal });
  } catch (e) {
    if (e.status !== 400) throw e;
    main.append(errorBox(e));
    return;
  }
  const summary = d.summary || {};
  const sev = Object.entries(summary.by_severity || {}).sort(
    (a, b) => rank(a[0]) - rank(b[0]));
  main.append(h('div', { class: 'tiles' },
    h('section', { class: 'tile' }, h('h2', null, 'Alerts'),
      h('div', { class: 'tile-value', id: 'alerts-total' }, num(d.total)),
      h('div', { class: 'tile-sub sev-list' }, sev.map(([name, count]) => h('span', { class: 'sev-count' }, severityPill(name), num(count))))),
    h('section', { class: 'tile', title: 'Mean time from the receipt of the record to the alert' }, h('h2', null, 'MTTI from receipt'),
      h('div', { class: 'tile-value' }, duration(summary.mtti_receipt_ms)),
      h('div', { class: 'tile-sub' }, 'record stored → alert raised')),
    h('section', { class: 'tile', title: 'Mean time from the event itself to the alert: includes how late the source delivered it' }, h('h2', null, 'MTTI from the event'),
      h('div', { class: 'tile-value' }, duration(summary.mtti_event_ms)),
      h('div', { class: 'tile-sub' }, 'event happened → alert raised'))));

  const list = card(`${num(d.total)} alert${d.total === 1 ? '' : 's'}`, { id: 'alert-list', class: 'wide' });
  main.append(list.el);
  if (!d.alerts.length) {
    list.body.replaceChildren(h('p', { class: 'muted' }, 'No alert matches.'));
    return;
  }
  const rows = d.alerts.map((a) => h('tr', null,
    h('td', { class: 'time' }, utc(typeof a.time === 'number' ? a.time : Date.parse(a.time))),
    h('td', null, severityPill(a.severity)),
    h('td', { class: 'wrap' }, h('a', { href: `#/event/${a.index}`, title: 'the alert\'s own ledger entry' }, a.title || a.rule),
      a.message && a.message !== a.title ? h('div', { class: 'small' }, a.message) : null,
      h('div', { class: 'muted small' }, a.kind ? `${a.kind} · ` : '',
        h('a', { href: route('/alerts', { q: term('action', a.rule), since, until }), class: 'mono', title: 'every alert of this rule' }, a.rule))),
    h('td', { class: 'wrap' }, searchLink('actor', a.actor, since)),
    h('td', { class: 'entries' }, (a.entries || []).slice(0, 12).map((i) => h('a', { href: `#/event/${i}`, class: 'index' }, `#${i}`)),
      (a.entries || []).length > 12 ? h('span', { class: 'muted' }, ` +${a.entries.length - 12}`) : null),
    h('td', { class: 'num', title: `from the event: ${duration(a.mtti_event_ms)}` }, duration(a.mtti_receipt_ms))));
  const last = offset + d.alerts.length;
  list.body.replaceChildren(
    h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'alerts-table' },
      h('thead', null, h('tr', null, ['time (UTC)', 'severity', 'alert', 'actor', 'entries', 'MTTI'].map((c) => h('th', null, c)))),
      h('tbody', null, rows))),
    h('div', { class: 'pager' },
      h('span', { class: 'muted' }, `${num(offset + 1)}–${num(last)} of ${num(d.total)}`),
      offset > 0
        ? h('a', { class: 'button', href: route('/alerts', { q, since, until, offset: Math.max(0, offset - PAGE) || undefined }) }, '← Newer')
        : h('span', { class: 'button disabled' }, '← Newer'),
      last < d.total
        ? h('a', { class: 'button', href: route('/alerts', { q, since, until, offset: last }) }, 'Older →')
        : h('span', { class: 'button disabled' }, 'Older →')));
}

function rank(severity) {
  const i = SEVERITY_ORDER.indexOf(String(severity).toLowerCase());
  return i < 0 ? SEVERITY_ORDER.length : i;
}
