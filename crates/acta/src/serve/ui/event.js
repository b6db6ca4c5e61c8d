// One ledger entry: its normalised event, the raw record as stored, and its inclusion proof
// against the latest signed checkpoint, checked by the server.

import { api } from './api.js';
import { h, num, utc, route, term, copyButton, outcomePill } from './dom.js';

export async function eventPage(main, { match, signal }) {
  const index = Number(match[1]);
  document.title = `acta · entry ${index}`;
  const d = await api(`events/${index}`, null, { signal });
  const ev = d.event && typeof d.event === 'object' ? d.event : null;

  const badge = d.verified
    ? h('span', { class: 'badge ok', id: 'verified', title: d.verification }, '✓ verified')
    : h('span', { class: 'badge bad', id: 'verified', title: d.verification }, '✗ not verified');
  main.append(h('div', { class: 'page-head' },
    h('h1', null, `Entry #${index}`),
    h('span', { class: 'pill' }, d.source),
    badge,
    h('span', { class: 'spacer' }),
    h('nav', { class: 'chips' },
      index > 0 ? h('a', { class: 'chip', href: `#/event/${index - 1}` }, `← #${index - 1}`) : null,
      h('a', { class: 'chip', href: `#/event/${index + 1}` }, `#${index + 1} →`))));
  main.append(h('p', { class: `verification ${d.verified ? 'ok' : 'bad'}`, id: 'verification' }, d.verification));

  main.append(summary(d, ev));
  if (d.note) main.append(h('p', { class: 'notice' }, d.note));

  const grid = h('div', { class: 'grid event-grid' });
  grid.append(section('Inclusion proof', 'proof', proof(d), 'wide'));
  grid.append(section('Normalised event', 'normalised', ev ? fieldsAndJson(ev) : [
    h('p', { class: 'muted' }, 'No parser read this record as an event; it is kept as received.'),
  ]));
  grid.append(section('Raw record', 'raw', rawRecord(d.raw)));
  main.append(grid);
}

function section(title, id, body, cls = '') {
  return h('section', { class: `card ${cls}`, id },
    h('header', { class: 'card-head' }, h('h2', null, title)),
    h('div', { class: 'card-body' }, body));
}

/** The fields an investigator reads first, each linked to its search. */
function summary(d, ev) {
  const user = ev?.actor?.user || {};
  const actor = user.name ?? user.uid ?? user.email_addr ?? ev?.actor?.app_name ?? null;
  const action = ev?.api?.operation ?? null;
  const resources = (ev?.resources || []).map((r) => r.uid ?? r.name).filter(Boolean);
  const ip = ev?.src_endpoint?.ip ?? null;
  const link = (field, v) => (v === null || v === undefined
    ? h('span', { class: 'none' }, '—')
    : h('a', { href: route('/search', { q: term(field, v) }) }, String(v)));
  const rows = [
    ['Time', ev?.time !== undefined ? utc(ev.time) : '—'],
    ['Received', d.received_at ?? '—'],
    ['Actor', link('actor', actor)],
    ['Action', link('action', action)],
    ['Resource', resources.length ? resources.map((r, i) => [i ? ', ' : '', link('resource', r)]) : h('span', { class: 'none' }, '—')],
    ['Outcome', outcomePill(ev ? outcomeOf(ev) : 'unknown')],
    ['Source IP', link('ip', ip)],
    ['Class', ev ? `${ev.class_name ?? ''} (${ev.class_uid ?? '?'})` : '—'],
  ];
  const dl = h('dl', { class: 'facts summary', id: 'summary' },
    rows.flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
  const message = ev?.message ? h('p', { class: 'message' }, ev.message) : null;
  return h('section', { class: 'card wide' }, h('div', { class: 'card-body' }, message, dl));
}

function outcomeOf(ev) {
  const s = (ev.status || '').toLowerCase();
  if (s === 'success') return 'success';
  if (s === 'failure') return 'failure';
  if (s === 'unknown' || !s) return 'unknown';
  return 'other';
}

/** Every leaf of a JSON value, with its dotted path. */
function flatten(value, prefix = '', out = []) {
  if (Array.isArray(value)) {
    if (!value.length) out.push([prefix, '[]']);
    value.forEach((v, i) => flatten(v, `${prefix}[${i}]`, out));
  } else if (value && typeof value === 'object') {
    const keys = Object.keys(value);
    if (!keys.length) out.push([prefix, '{}']);
    for (const k of keys) flatten(value[k], prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.push([prefix, value]);
  }
  return out;
}

function fieldsAndJson(ev) {
  const table = h('table', { class: 'table fields-table' },
    h('tbody', null, flatten(ev).map(([k, v]) => h('tr', null,
      h('th', { class: 'mono' }, k),
      h('td', { class: `mono wrap ${typeof v === 'string' ? '' : 'literal'}` }, v === null ? 'null' : String(v))))));
  const json = JSON.stringify(ev, null, 2);
  const pre = h('pre', { class: 'code hidden' }, json);
  const toggle = h('button', { type: 'button', class: 'ghost small' }, 'Show JSON');
  toggle.addEventListener('click', () => {
    const showJson = pre.classList.toggle('hidden') === false;
    table.classList.toggle('hidden', showJson);
    toggle.textContent = showJson ? 'Show fields' : 'Show JSON';
  });
  return [h('div', { class: 'toolbar' }, toggle, copyButton(json, 'Copy JSON')), table, pre];
}

function rawRecord(raw) {
  const text = raw ?? '';
  let pretty = null;
  try {
    const v = JSON.parse(text);
    if (v && typeof v === 'object') pretty = JSON.stringify(v, null, 2);
  } catch {
    pretty = null;
  }
  const pre = h('pre', { class: 'code', id: 'raw-record' }, text);
  const tools = [copyButton(text, 'Copy record')];
  if (pretty && pretty !== text) {
    let showingPretty = false;
    const b = h('button', { type: 'button', class: 'ghost small' }, 'Indent');
    b.addEventListener('click', () => {
      showingPretty = !showingPretty;
      pre.textContent = showingPretty ? pretty : text;
      b.textContent = showingPretty ? 'As stored' : 'Indent';
    });
    tools.unshift(b);
  }
  return [h('p', { class: 'muted small' }, `${num(new TextEncoder().encode(text).length)} bytes, byte for byte as received.`),
    h('div', { class: 'toolbar' }, tools), pre];
}

function proof(d) {
  const p = d.proof || {};
  const hashes = p.hashes || [];
  const path = h('div', null,
    h('dl', { class: 'facts' },
      h('dt', null, 'Tree size'), h('dd', { id: 'proof-size' }, num(p.tree_size)),
      h('dt', null, 'Root'), h('dd', { class: 'hash', id: 'proof-root' }, p.root ?? '—'),
      h('dt', null, 'Leaf hash'), h('dd', { class: 'hash', id: 'proof-leaf' }, p.leaf_hash ?? '—'),
      h('dt', null, 'Audit path'), h('dd', null, `${hashes.length} hash${hashes.length === 1 ? '' : 'es'}, leaf to root`)),
    hashes.length ? h('ol', { class: 'hashes', id: 'proof-hashes', start: 0 }, hashes.map((x) => h('li', { class: 'hash' }, x))) : null);
  const receipt = h('div', null,
    h('h3', { class: 'first' }, 'Receipt'),
    h('p', { class: 'muted small' }, 'A C2SP tlog-proof: the entry, its audit path and the signed checkpoint. Anyone with the log\'s verifier key (',
      h('code', null, 'acta key'), ') checks it offline: ',
      h('code', null, 'acta proof --verify receipt.txt --key KEY --record record'), '.'),
    h('div', { class: 'toolbar' }, copyButton(d.receipt ?? '', 'Copy receipt')),
    h('pre', { class: 'code receipt', id: 'receipt' }, d.receipt ?? ''));
  return h('div', { class: 'proof-cols' }, path, receipt);
}
