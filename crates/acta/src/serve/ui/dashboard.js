// The dashboard: what the trail holds over a time range, at a glance.

import { api } from './api.js';
import { h, num, utc, duration, ago, route, term, card, fill, searchLink, severityPill } from './dom.js';
import { loadSeries, stackedBars, legend, barList } from './chart.js';

const RANGES = [
  ['1h', '1 hour'], ['24h', '24 hours'], ['7d', '7 days'], ['30d', '30 days'],
  ['365d', '1 year'], ['all', 'All time'],
];
/**
 * Activity panels leave out what acta wrote itself: its alerts (their own panel) and the record
 * of every read of the trail (the "Reads of the trail" tile).
 */
const ACTIVITY = '-source:acta-finding -source:acta-access';
const READS = 'source:acta-access';
const TOP = 10;

export async function dashboard(main, { params, signal }) {
  const range = RANGES.some(([r]) => r === params.get('range')) ? params.get('range') : 'all';
  const since = range === 'all' ? undefined : range;
  const rangeName = RANGES.find(([r]) => r === range)[1];
  document.title = 'acta · dashboard';

  const chips = h('nav', { class: 'chips', 'aria-label': 'Time range' }, RANGES.map(([r, label]) =>
    h('a', { href: route('/', { range: r === 'all' ? undefined : r }), class: r === range ? 'chip active' : 'chip', dataset: { range: r } }, label)));
  main.append(h('div', { class: 'page-head' }, h('h1', null, 'Dashboard'), chips));

  const tiles = {
    events: tile('Events', 'tile-events'),
    failures: tile('Failures and denials', 'tile-failures'),
    alerts: tile('Alerts', 'tile-alerts'),
    ledger: tile('Ledger', 'tile-ledger'),
    reads: tile('Reads of the trail', 'tile-reads'),
  };
  main.append(h('div', { class: 'tiles' }, Object.values(tiles).map((t) => t.el)));

  const volume = card('Events over time, by source', { id: 'volume', class: 'wide' });
  const actors = card('Top actors', { id: 'top-actors' });
  const actions = card('Top actions', { id: 'top-actions' });
  const failing = card('Failures and denials', { id: 'failures' });
  const recent = card('Alerts', {
    id: 'alerts', class: 'wide2', aside: h('a', { href: route('/alerts', { since }), class: 'small' }, 'All alerts →'),
  });
  const ledger = card('Ledger', { id: 'ledger' });
  main.append(h('div', { class: 'grid' }, volume.el, actors.el, actions.el, failing.el, recent.el, ledger.el));

  const pick = (from, to) => {
    location.hash = route('/search', { since: new Date(from).toISOString(), until: new Date(to).toISOString() });
  };
  const sel = { signal };
  const series = loadSeries({ q: ACTIVITY, since, by: 'source', signal });
  const byActor = api('stats', { q: ACTIVITY, since, by: 'actor', limit: 50 }, sel);
  const byAction = api('stats', { q: ACTIVITY, since, by: 'action', limit: 50 }, sel);
  const failQ = `${ACTIVITY} outcome:failure`;
  const failSeries = loadSeries({ q: failQ, since, signal });
  const failActors = api('stats', { q: failQ, since, by: 'actor', limit: 50 }, sel);
  const alertList = api('alerts', { since, limit: 8 }, sel);
  const ledgerState = api('ledger', null, sel);
  const readers = api('stats', { q: READS, since, by: 'actor', limit: 100000 }, sel);

  await Promise.all([
    fill(volume, series, (d) => d.total
      ? [stackedBars(d, { pick, label: 'Events by source' }), legend(d, { field: 'source', since })]
      : empty(rangeName)),
    fill(tiles.events, series, (d) => [
      h('div', { class: 'tile-value' }, num(d.total)),
      h('div', { class: 'tile-sub' }, `${num(d.distinct)} source${d.distinct === 1 ? '' : 's'} · ${rangeName.toLowerCase()}`),
    ]),
    fill(actors, byActor, (d) => top(d.rows, 'actor', since)),
    fill(actions, byAction, (d) => top(d.rows, 'action', since)),
    fill(failing, Promise.all([failSeries, failActors]), ([s, a]) => s.total
      ? [stackedBars(s, { pick, height: 110, label: 'Failures and denials' }),
        h('h3', null, 'Who failed most'), top(a.rows, 'actor', since, 'outcome:failure', 5)]
      : h('p', { class: 'muted' }, `No failure or denial in ${rangeName.toLowerCase()}.`)),
    fill(tiles.failures, Promise.all([failSeries, series]), ([f, all]) => [
      h('div', { class: 'tile-value bad' }, num(f.total)),
      h('div', { class: 'tile-sub' }, all.total ? `${((100 * f.total) / all.total).toFixed(1)}% of events` : '—'),
    ]),
    fill(recent, alertList, (d) => alertsPanel(d, since)),
    fill(tiles.alerts, alertList, (d) => [
      h('div', { class: 'tile-value' }, num(d.total)),
      h('div', { class: 'tile-sub' }, `MTTI ${duration(d.summary?.mtti_receipt_ms)} from receipt`),
    ]),
    fill(tiles.reads, readers, (d) => {
      const reads = d.rows.reduce((a, r) => a + r.count, 0);
      return [
        h('div', { class: 'tile-value' }, h('a', { href: route('/search', { q: READS, since }) }, num(reads))),
        h('div', { class: 'tile-sub' }, `searches, counts and views, by ${num(d.groups)} token${d.groups === 1 ? '' : 's'}`),
      ];
    }),
    fill(ledger, ledgerState, ledgerPanel),
    fill(tiles.ledger, ledgerState, (d) => [
      h('div', { class: 'tile-value' }, num(d.size)),
      h('div', { class: 'tile-sub' }, `entries · checkpoint ${ago(seconds(d.age_s))}`),
    ]),
  ]);
}

function tile(label, id) {
  const body = h('div', { class: 'tile-body' }, h('div', { class: 'tile-value muted' }, '…'));
  return { el: h('section', { class: 'tile', id }, h('h2', null, label), body), body };
}

function empty(rangeName) {
  return h('p', { class: 'muted' }, `No events in ${rangeName.toLowerCase()}. `,
    h('a', { href: route('/', {}) }, 'Show all time.'));
}

/**
 * The first rows of a count by one field, each linked to its search; events without a value
 * are said apart, so that they do not crowd out the names.
 */
function top(rows, field, since, also, n = TOP) {
  const valued = rows.filter((r) => r[field] !== null && r[field] !== undefined);
  const without = rows.filter((r) => r[field] === null || r[field] === undefined)
    .reduce((a, r) => a + r.count, 0);
  const list = barList(valued.slice(0, n).map((r) => ({
    count: r.count,
    title: r[field],
    label: h('a', { href: route('/search', { q: [also, term(field, r[field])].filter(Boolean).join(' '), since }) }, r[field]),
  })));
  const note = without
    ? h('p', { class: 'muted small' }, `${num(without)} event${without === 1 ? '' : 's'} without an ${field}.`)
    : null;
  return [list, note];
}

function alertsPanel(d, since) {
  const sev = Object.entries(d.summary?.by_severity || {}).sort((a, b) => b[1] - a[1]);
  const head = h('div', { class: 'alert-summary' },
    sev.map(([name, count]) => h('span', { class: 'sev-count' }, severityPill(name), num(count))),
    h('span', { class: 'mtti', title: 'Mean time to insight: from the receipt of the record, and from the time of the event, to the alert' },
      'MTTI ', h('strong', null, duration(d.summary?.mtti_receipt_ms)), ' from receipt · ',
      h('strong', null, duration(d.summary?.mtti_event_ms)), ' from the event'));
  if (!d.alerts.length) return [head, h('p', { class: 'muted' }, 'No alert in this range.')];
  const rows = d.alerts.map((a) => h('tr', null,
    h('td', { class: 'time' }, utc(instantOf(a.time))),
    h('td', null, severityPill(a.severity)),
    h('td', { class: 'wrap' }, h('a', { href: `#/event/${a.index}`, title: a.rule }, a.title || a.rule)),
    h('td', null, searchLink('actor', a.actor, since)),
    h('td', { class: 'num' }, duration(a.mtti_receipt_ms))));
  return [head, h('table', { class: 'table compact' },
    h('thead', null, h('tr', null, ['time', 'severity', 'alert', 'actor', 'MTTI'].map((c) => h('th', null, c)))),
    h('tbody', null, rows))];
}

/** Milliseconds from seconds, keeping "unknown" unknown. */
function seconds(s) {
  return typeof s === 'number' ? s * 1000 : null;
}

function instantOf(t) {
  return typeof t === 'number' ? t : Date.parse(t);
}

function ledgerPanel(d) {
  return [
    h('dl', { class: 'facts' },
      h('dt', null, 'Entries'), h('dd', { id: 'ledger-size' }, num(d.size)),
      h('dt', null, 'Root'), h('dd', { class: 'hash', id: 'ledger-root' }, d.root),
      h('dt', null, 'Log'), h('dd', { class: 'mono' }, d.origin),
      h('dt', null, 'Checkpoint'), h('dd', null, `signed ${ago(seconds(d.age_s))}`)),
    h('details', null, h('summary', null, 'Signed checkpoint'), h('pre', { class: 'receipt' }, d.checkpoint)),
    h('p', { class: 'muted small' }, 'Third parties read the same checkpoint, without a token, at ',
      h('code', null, '/tlog/checkpoint'), '; ', h('code', null, 'acta verify'), ' re-audits the whole ledger offline.'),
  ];
}
