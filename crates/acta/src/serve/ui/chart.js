// Counts over time from /api/v1/stats, drawn as SVG stacked bars; ranked lists as HTML bars.

import { api } from './api.js';
import { h, s, num, utc, route } from './dom.js';

const MIN = 60e3;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
/** Bucket widths the charts use, finest first; all whole units the API's `interval` takes. */
const STEPS = [
  ['1s', 1e3], ['5s', 5e3], ['15s', 15e3], ['1m', MIN], ['5m', 5 * MIN], ['15m', 15 * MIN], ['30m', 30 * MIN], ['1h', HOUR],
  ['3h', 3 * HOUR], ['6h', 6 * HOUR], ['12h', 12 * HOUR], ['1d', DAY], ['7d', 7 * DAY],
  ['28d', 28 * DAY], ['91d', 91 * DAY], ['364d', 364 * DAY],
];
const MAX_BARS = 96;
/** An axis open at the start shows at least this many buckets. */
const MIN_BARS = 24;
/** Series drawn in their own colour; the rest are summed as "other". */
const MAX_SERIES = 7;

const UNITS = { w: 7 * DAY, d: DAY, h: HOUR, m: MIN, s: 1e3 };

/** A source keeps its colour in every chart; other names get one from their hash. */
const COLOURS = {
  cloudtrail: 'c0', 'github-audit': 'c1', 'k8s-audit': 'c2', 'github-webhook': 'c3', syslog: 'c4',
  'gitlab-audit': 'c5', pgaudit: 'c6', journald: 'c7', json: 'c8', 'acta-finding': 'c9',
  raw: 'c-other',
};
const PALETTE = 10;

/** The colour class of a series name. */
export function colour(name) {
  if (Object.hasOwn(COLOURS, name)) return COLOURS[name];
  let x = 0;
  for (const ch of String(name)) x = (x * 31 + ch.codePointAt(0)) >>> 0;
  return `c${x % PALETTE}`;
}

/**
 * The instant a time bound of the query language names (docs/query.md, "Time bounds"): a
 * duration back from now (`30d`, `1d12h`), a date, an RFC 3339 timestamp or `now`. Null when
 * empty or not understood here (the server then says what is wrong with it).
 */
export function parseBound(text, now) {
  const t = (text || '').trim();
  if (!t) return null;
  if (t === 'now') return now;
  if (/^(\d+[wdhms])+$/.test(t)) {
    let total = 0;
    for (const [, n, u] of t.matchAll(/(\d+)([wdhms])/g)) total += Number(n) * UNITS[u];
    return now - total;
  }
  if (/^\d{4}-\d{2}-\d{2}$/.test(t)) return Date.parse(`${t}T00:00:00Z`);
  const v = Date.parse(t.replace(' ', 'T'));
  return Number.isFinite(v) ? v : null;
}

function step(span) {
  return STEPS.find(([, ms]) => span / ms <= MAX_BARS) || STEPS[STEPS.length - 1];
}

/**
 * Counts of the events matching q between since and until, by time bucket and by the values of
 * `by` (one field, or none). The bucket width follows the range, or the data's own extent when
 * the range is open: a coarse count by year finds it first.
 *
 * → {interval, name, buckets: [ms], series: [{name, values, total}], total, distinct}
 */
export async function loadSeries({ q, since, until, by, signal }) {
  const now = Date.now();
  // Null when open (or in a form only the server reads: it then answers for the whole range).
  const lo = parseBound(since, now);
  const hi = until ? parseBound(until, now) : null;
  const ask = async (name) =>
    (await api('stats', { q, since, until, by: by ?? '', interval: name, limit: 100000 }, { signal })).rows;
  let [name, iv] = lo !== null ? step((hi ?? now) - lo) : ['364d', 364 * DAY];
  let rows = await ask(name);
  // Refined while the extent found calls for finer buckets; each step is at least ~96 times
  // finer, so a few requests reach seconds from years.
  for (let pass = 0; pass < 4 && rows.length; pass += 1) {
    const [from, to] = extent(rows, iv, lo, hi, now);
    const [n2, iv2] = step(Math.max(to - from, 1e3));
    if (n2 === name) break;
    [name, iv] = [n2, iv2];
    rows = await ask(name);
  }
  return shape(rows, { by, iv, name, lo, hi, now });
}

/** The span the axis covers: the asked range (to now when open-ended) and every bucket with data. */
function extent(rows, iv, lo, hi, now) {
  const times = rows.map((r) => Date.parse(r.bucket));
  const first = Math.min(...times);
  const last = Math.max(...times) + iv;
  const from = lo === null ? first : Math.min(lo, first);
  const to = Math.max(hi ?? (lo === null ? last : now), last);
  return [from, to];
}

function shape(rows, { by, iv, name, lo, hi, now }) {
  if (!rows.length) {
    return { interval: iv, name, buckets: [], series: [], total: 0, distinct: 0 };
  }
  const [lo2, to] = extent(rows, iv, lo, hi, now);
  let from = Math.floor(lo2 / iv) * iv;
  let n = Math.min(Math.ceil((to - from) / iv), 4 * MAX_BARS);
  if (n < MIN_BARS && lo === null) {
    // A burst: some time on either side shows it as one.
    from -= Math.floor((MIN_BARS - n) / 2) * iv;
    n = MIN_BARS;
  }
  const buckets = Array.from({ length: n }, (_, i) => from + i * iv);
  const keyOf = (r) => (by ? (r[by] ?? '(none)') : 'events');
  const totals = new Map();
  for (const r of rows) totals.set(keyOf(r), (totals.get(keyOf(r)) || 0) + r.count);
  const ranked = [...totals.entries()].sort((a, b) => b[1] - a[1]);
  const kept = ranked.length > MAX_SERIES + 1 ? ranked.slice(0, MAX_SERIES) : ranked;
  const slot = new Map(kept.map(([k], i) => [k, i]));
  const series = kept.map(([k, total]) => ({
    name: String(k), cls: colour(String(k)), total, values: new Array(n).fill(0),
  }));
  if (ranked.length > kept.length) {
    const rest = ranked.slice(kept.length).reduce((a, [, c]) => a + c, 0);
    series.push({ name: 'other', cls: 'c-other', other: true, total: rest, values: new Array(n).fill(0) });
  }
  let total = 0;
  for (const r of rows) {
    const b = Math.round((Date.parse(r.bucket) - from) / iv);
    const si = slot.has(keyOf(r)) ? slot.get(keyOf(r)) : series.length - 1;
    if (b >= 0 && b < n) series[si].values[b] += r.count;
    total += r.count;
  }
  return { interval: iv, name, buckets, series, total, distinct: ranked.length };
}

function niceMax(v) {
  if (v <= 5) return Math.max(v, 1);
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function bucketLabel(ms, iv) {
  const t = utc(ms);
  if (iv >= DAY) return t.slice(0, 10);
  if (iv >= MIN) return t.slice(5, 16);
  return t.slice(11, 19);
}

/**
 * Stacked bars of a loaded series, drawn at the width of their container (and again when it
 * changes), so that text keeps its size. `pick(from, to)` is called when a bar is clicked, to
 * zoom in on its bucket.
 */
export function stackedBars(data, opts = {}) {
  const box = h('div', { class: 'chart-box' });
  let drawn = 0;
  const draw = (width) => {
    const w = Math.max(Math.round(width), 240);
    if (w === drawn) return;
    drawn = w;
    box.replaceChildren(bars(data, w, opts));
  };
  draw(opts.width || 1000);
  new ResizeObserver((entries) => {
    for (const e of entries) if (e.contentRect.width > 0) draw(e.contentRect.width);
  }).observe(box);
  return box;
}

function bars(data, W, { height = 190, pick, label = 'Events over time' }) {
  const H = height;
  const m = { l: 46, r: 6, t: 8, b: 22 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const n = data.buckets.length;
  const svg = s('svg', {
    class: 'chart', viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img',
    'aria-label': `${label}: ${num(data.total)} events in ${n} buckets of ${data.name}`,
  });
  if (!n) return svg;
  const sums = data.buckets.map((_, i) => data.series.reduce((a, se) => a + se.values[i], 0));
  const top = niceMax(Math.max(...sums));
  const y = (v) => m.t + ph - (v / top) * ph;
  const bw = pw / n;
  // Grid and y labels.
  for (let k = 0; k <= 4; k += 1) {
    const v = (top * k) / 4;
    const yy = y(v);
    svg.append(s('line', { class: 'grid', x1: m.l, x2: W - m.r, y1: yy, y2: yy }));
    svg.append(s('text', { class: 'tick', x: m.l - 6, y: yy + 4, 'text-anchor': 'end' },
      Number.isInteger(v) ? num(v) : v.toFixed(1)));
  }
  // X labels on bucket starts, one per 120 pixels or so.
  const every = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(pw / 120))));
  for (let i = 0; i < n; i += every) {
    const x = m.l + i * bw;
    svg.append(s('line', { class: 'grid-x', x1: x, x2: x, y1: m.t + ph, y2: m.t + ph + 4 }));
    svg.append(s('text', { class: 'tick', x, y: H - 6, 'text-anchor': i === 0 ? 'start' : 'middle' },
      bucketLabel(data.buckets[i], data.interval)));
  }
  const gap = bw > 6 ? 1 : 0;
  data.buckets.forEach((b, i) => {
    const x = m.l + i * bw;
    const g = s('g', { class: pick ? 'col pickable' : 'col' });
    const lines = data.series
      .map((se) => [se.name, se.values[i]])
      .filter(([, v]) => v > 0)
      .map(([nm, v]) => `${nm}: ${num(v)}`);
    g.append(s('title', null,
      `${utc(b)} — ${utc(b + data.interval)}\n${num(sums[i])} events${lines.length ? `\n${lines.join('\n')}` : ''}`));
    g.append(s('rect', { class: 'hit', x, y: m.t, width: bw, height: ph }));
    let acc = 0;
    data.series.forEach((se) => {
      const v = se.values[i];
      if (!v) return;
      const y0 = y(acc);
      const y1 = y(acc + v);
      acc += v;
      g.append(s('rect', {
        class: `bar ${se.cls}`,
        x: x + gap / 2, y: y1, width: Math.max(bw - gap, 0.5), height: Math.max(y0 - y1, 1),
      }));
    });
    if (pick) g.addEventListener('click', () => pick(b, b + data.interval));
    svg.append(g);
  });
  svg.append(s('line', { class: 'axis', x1: m.l, x2: W - m.r, y1: m.t + ph, y2: m.t + ph }));
  return svg;
}

/** The legend of a series: a swatch, the name (linked to its search) and its total. */
export function legend(data, { field, since } = {}) {
  return h('ul', { class: 'legend' }, data.series.map((se) => {
    const name = se.other || !field
      ? h('span', null, se.name)
      : h('a', { href: route('/search', { q: `${field}:${quote(se.name)}`, since }) }, se.name);
    return h('li', null, h('span', { class: `swatch ${se.cls}` }), name,
      h('span', { class: 'num' }, num(se.total)));
  }));
}

function quote(v) {
  return /^[A-Za-z0-9_.:@/-]+$/.test(v) ? v : `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * A ranked list with proportional bars: rows of {label (Node or text), count, title}.
 */
export function barList(rows, { empty = 'Nothing in this range.' } = {}) {
  if (!rows.length) return h('p', { class: 'muted' }, empty);
  const max = Math.max(...rows.map((r) => r.count), 1);
  return h('ol', { class: 'bars' }, rows.map((r) => h('li', { title: r.title },
    h('span', { class: 'bar-fill', style: { width: `${(100 * r.count) / max}%` } }),
    h('span', { class: 'bar-label' }, r.label),
    h('span', { class: 'num' }, num(r.count)))));
}
