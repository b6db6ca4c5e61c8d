// Search: the query language of `acta search`, a timeline of the matches and a page of results.
// The query, range and page live in the URL (#/search?q=…&since=…), so a search can be shared.

import { api } from './api.js';
import { h, num, utc, route, term, card, fill, errorBox, outcomePill } from './dom.js';
import { loadSeries, stackedBars, legend } from './chart.js';

const PAGE = 50;
/** The server's deepest page (offset + limit). */
const MAX_DEPTH = 100000;

const FIELDS = [
  ['actor', 'who acted: name, uid/ARN, email, access key id, role behind a session'],
  ['action', 'the operation: GetObject, delete, repo.destroy, sshd.login…'],
  ['resource', 'what it touched: uid, name, namespace/name'],
  ['source', 'cloudtrail, k8s-audit, github-audit, syslog…'],
  ['ip', 'address or CIDR range: ip:10.0.0.0/8'],
  ['outcome', 'success, failure, unknown, other'],
  ['account', 'cloud account'], ['region', 'cloud region'], ['service', 'service called'],
];
const EXAMPLES = [
  'outcome:failure',
  'action:Delete* outcome:success',
  'source:k8s-audit resource:kube-system/*',
  '(action:CreateAccessKey OR action:CreateLoginProfile)',
  '-ip:10.0.0.0/8 actor:*@example.com',
];

export async function search(main, { params, signal }) {
  const q = params.get('q') ?? '';
  const since = params.get('since') || undefined;
  const until = params.get('until') || undefined;
  const offset = Math.max(0, Number.parseInt(params.get('offset') || '0', 10) || 0);
  document.title = q ? `acta · ${q}` : 'acta · search';

  const qInput = h('input', {
    id: 'q', name: 'q', type: 'search', value: q, class: 'query', spellcheck: 'false',
    autocomplete: 'off', autocapitalize: 'off', 'aria-label': 'Query',
    placeholder: 'actor:alice action:Delete* -outcome:success   (empty: every event)',
  });
  const sinceInput = h('input', { id: 'since', name: 'since', value: since ?? '', placeholder: 'since (e.g. 7d)', 'aria-label': 'Since', class: 'bound' });
  const untilInput = h('input', { id: 'until', name: 'until', value: until ?? '', placeholder: 'until (now)', 'aria-label': 'Until', class: 'bound' });
  const form = h('form', { class: 'search-form', role: 'search' },
    qInput, sinceInput, untilInput, h('button', { type: 'submit', class: 'primary', id: 'run' }, 'Search'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    go(route('/search', {
      q: qInput.value.trim(), since: sinceInput.value.trim(), until: untilInput.value.trim(),
    }));
  });
  const problem = h('div', { id: 'query-error' });
  main.append(h('div', { class: 'page-head' }, h('h1', null, 'Search')), form, problem, help());

  const timeline = card('Timeline', { id: 'timeline', class: 'wide' });
  const results = card('Results', { id: 'results', class: 'wide' });
  main.append(timeline.el, results.el);

  const page = api('search', { q, since, until, limit: PAGE, offset }, { signal });
  const series = loadSeries({ q, since, until, by: 'source', signal });
  series.catch(() => {});
  let res;
  try {
    res = await page;
  } catch (e) {
    if (e.status !== 400) throw e;
    // A query or bound the server cannot read: say where, once.
    problem.replaceChildren(errorBox(e));
    timeline.el.remove();
    results.el.remove();
    return;
  }
  const pick = (from, to) => go(route('/search', {
    q, since: new Date(from).toISOString(), until: new Date(to).toISOString(),
  }));
  results.el.querySelector('h2').textContent = `${num(res.total)} event${res.total === 1 ? '' : 's'}`;
  results.body.replaceChildren(...table(res, { q, since, until, offset }));
  await fill(timeline, series, (d) => d.total
    ? [stackedBars(d, { pick, height: 160, label: 'Matches over time' }),
      h('p', { class: 'muted small' }, `Buckets of ${d.name}; click a bar to search within it.`),
      legend(d, { field: 'source', since })]
    : h('p', { class: 'muted' }, 'No match.'));
}

/** Navigates, and searches again when the URL is already this one. */
function go(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = hash;
}

/** q narrowed by one more condition. */
function refine(q, t) {
  if (!q.trim()) return t;
  if (q.split(/\s+/).includes(t)) return q;
  return /\bOR\b/.test(q) ? `(${q}) ${t}` : `${q} ${t}`;
}

function table(res, { q, since, until, offset }) {
  if (!res.events.length) {
    return [h('p', { class: 'muted', id: 'no-results' }, res.total
      ? 'No more results on this page.'
      : 'No event matches. Widen the time range, or check the field names in the help above.')];
  }
  const narrow = (field, v, label) => (v === null || v === undefined || v === ''
    ? h('span', { class: 'none' }, '—')
    : h('a', { href: route('/search', { q: refine(q, term(field, v)), since, until }), title: `narrow to ${term(field, v)}` }, label ?? v));
  const rows = res.events.map((e) => {
    const tr = h('tr', { dataset: { index: e.index }, class: 'clickable' },
      h('td', { class: 'time' }, utc(e.time_ms)),
      h('td', null, narrow('source', e.source)),
      h('td', { class: 'wrap' }, narrow('actor', e.actor)),
      h('td', { class: 'wrap' }, narrow('action', e.action)),
      h('td', { class: 'wrap' }, narrow('resource', e.resource)),
      h('td', null, outcomePill(e.outcome)),
      h('td', { class: 'mono' }, narrow('ip', e.ip)),
      h('td', { class: 'num' }, h('a', { href: `#/event/${e.index}`, class: 'index', title: 'open the entry and its proof' }, `#${e.index}`)));
    tr.addEventListener('click', (ev) => {
      if (ev.target.closest('a') || window.getSelection()?.toString()) return;
      location.hash = `#/event/${e.index}`;
    });
    return tr;
  });
  const last = offset + res.events.length;
  const depth = Math.min(res.total, MAX_DEPTH);
  const pager = h('div', { class: 'pager' },
    h('span', { class: 'muted', id: 'range' }, `${num(offset + 1)}–${num(last)} of ${num(res.total)}`),
    offset > 0
      ? h('a', { class: 'button', href: route('/search', { q, since, until, offset: Math.max(0, offset - PAGE) || undefined }) }, '← Newer')
      : h('span', { class: 'button disabled' }, '← Newer'),
    last < depth
      ? h('a', { class: 'button', id: 'older', href: route('/search', { q, since, until, offset: last }) }, 'Older →')
      : h('span', { class: 'button disabled' }, 'Older →'));
  return [
    h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'hits' },
      h('thead', null, h('tr', null,
        ['time (UTC)', 'source', 'actor', 'action', 'resource', 'outcome', 'ip', 'entry'].map((c) => h('th', null, c)))),
      h('tbody', null, rows))),
    pager,
  ];
}

function help() {
  return h('details', { class: 'help' },
    h('summary', null, 'Query language'),
    h('div', { class: 'help-body' },
      h('p', null, 'Conditions are ', h('code', null, 'field:value'), ' or free text. Values match whole and ignore case; ',
        h('code', null, '*'), ' and ', h('code', null, '?'), ' are wildcards; quote values with spaces: ',
        h('code', null, 'actor:"Alice Smith"'), '. Combine with ', h('code', null, 'AND'), ' (or a space), ',
        h('code', null, 'OR'), ', ', h('code', null, 'NOT'), ' / ', h('code', null, '-'), ' and parentheses. Since and until take ',
        h('code', null, '30d'), ', ', h('code', null, '12h'), ', ', h('code', null, '2026-11-01'), ' or an RFC 3339 time.'),
      h('dl', { class: 'fields' }, FIELDS.flatMap(([f, d]) => [h('dt', null, h('code', null, `${f}:`)), h('dd', null, d)])),
      h('p', null, 'Examples: ', EXAMPLES.map((x) => h('a', { class: 'example', href: route('/search', { q: x }) }, h('code', null, x))))));
}
