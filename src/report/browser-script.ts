/**
 * The report page's script, inlined into report.html's `<script>` (the page's Content-Security-Policy
 * allows inline script only, and the page must open from disk with no network: so the script travels
 * as text, not as a file beside the page). It reads the run's data from the page's
 * `<script type="application/json" id="dbprune-data">` and draws every figure.
 *
 * Plain ES2017 with DOM APIs, run by the browser, never by Node; text from the data only ever goes
 * through textContent / setAttribute, never innerHTML (captions come from the web).
 * test/report/report.test.ts runs it in headless Chromium.
 */
export const REPORT_BROWSER_SCRIPT = String.raw`
(function () {
'use strict';
var NS = 'http://www.w3.org/2000/svg';
var D = JSON.parse(document.getElementById('dbprune-data').textContent);
var S = D.stats, R = S.report || null, TH = D.thumbs, C = S.clusters, TOT = S.totals;
var k = C.n.length;
var params = S.params || {};

function h(tag, attrs, kids) {
  var e = document.createElement(tag);
  if (attrs) for (var a in attrs) { if (attrs[a] !== undefined && attrs[a] !== null) e.setAttribute(a, String(attrs[a])); }
  add(e, kids);
  return e;
}
function s(tag, attrs, kids) {
  var e = document.createElementNS(NS, tag);
  if (attrs) for (var a in attrs) { if (attrs[a] !== undefined && attrs[a] !== null) e.setAttribute(a, String(attrs[a])); }
  add(e, kids);
  return e;
}
function add(e, kids) {
  if (kids === undefined || kids === null) return;
  if (!Array.isArray(kids)) kids = [kids];
  for (var i = 0; i < kids.length; i++) {
    var c = kids[i];
    if (c === undefined || c === null || c === false) continue;
    e.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
  }
}
function $(id) { return document.getElementById(id); }
function num(v) { return typeof v === 'number' && isFinite(v); }
function fmtInt(v) { return num(v) ? Math.round(v).toLocaleString('en-US') : '–'; }
function fmtNum(v, d) {
  if (!num(v)) return '–';
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return v.toLocaleString('en-US');
  var a = Math.abs(v);
  if (d === undefined) d = a >= 100 ? 1 : a >= 1 ? 3 : 4;
  return v.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: 0 });
}
function fmtPct(v) { return num(v) ? (100 * v).toFixed(1) + '%' : '–'; }
function tickFmt(step) {
  var dec = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return function (v) { return Math.abs(v) >= 1e4 ? compact(v) : v.toFixed(dec); };
}
function compact(v) {
  var a = Math.abs(v);
  if (a >= 1e9) return +(v / 1e9).toFixed(2) + 'G';
  if (a >= 1e6) return +(v / 1e6).toFixed(2) + 'M';
  if (a >= 1e4) return +(v / 1e3).toFixed(1) + 'k';
  return String(v);
}
function niceStep(span, n) {
  if (!(span > 0)) return 1;
  var raw = span / n, p = Math.pow(10, Math.floor(Math.log10(raw))), e = raw / p;
  return (e >= 7.5 ? 10 : e >= 3.5 ? 5 : e >= 1.5 ? 2 : 1) * p;
}
function ticks(lo, hi, n) {
  var step = niceStep(hi - lo, n), out = [];
  for (var v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toFixed(12));
  return { values: out, step: step };
}
function niceDomain(lo, hi, n) {
  if (!(hi > lo)) { var pad = Math.abs(lo) * 0.1 || 1; lo -= pad; hi += pad; }
  var step = niceStep(hi - lo, n);
  return [Math.floor(lo / step) * step, Math.ceil(hi / step) * step];
}
function lin(d0, d1, r0, r1) { var m = (r1 - r0) / ((d1 - d0) || 1); return function (v) { return r0 + (v - d0) * m; }; }

var VIR = ['#440154', '#482878', '#3e4989', '#31688e', '#26828e', '#1f9e89', '#35b779', '#6ece58', '#b5de2b', '#fde725'];
function hex2(c) { return [parseInt(c.slice(1, 3), 16), parseInt(c.slice(3, 5), 16), parseInt(c.slice(5, 7), 16)]; }
function viridis(t) {
  t = Math.max(0, Math.min(1, num(t) ? t : 0)) * (VIR.length - 1);
  var i = Math.min(VIR.length - 2, Math.floor(t)), f = t - i, a = hex2(VIR[i]), b = hex2(VIR[i + 1]);
  return 'rgb(' + [0, 1, 2].map(function (q) { return Math.round(a[q] + (b[q] - a[q]) * f); }).join(',') + ')';
}

/* A chart frame: viewBox W×H, margins, axes with grid, tick labels and axis labels. */
function frame(o) {
  var W = o.w || 760, H = o.h || 360, m = o.m || { t: 14, r: 18, b: 46, l: 62 };
  var svg = s('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': o.aria || '' });
  var x = lin(o.x[0], o.x[1], m.l, W - m.r), y = lin(o.y[0], o.y[1], H - m.b, m.t);
  var g = s('g');
  var xt = o.xTicks || ticks(o.x[0], o.x[1], o.xn || 8), yt = ticks(o.y[0], o.y[1], o.yn || 6);
  var xf = o.xFmt || tickFmt(xt.step), yf = o.yFmt || tickFmt(yt.step);
  xt.values.forEach(function (v) {
    g.appendChild(s('line', { x1: x(v), x2: x(v), y1: m.t, y2: H - m.b, class: 'grid' }));
    g.appendChild(s('text', { x: x(v), y: H - m.b + 15, 'text-anchor': 'middle' }, xf(v)));
  });
  yt.values.forEach(function (v) {
    g.appendChild(s('line', { x1: m.l, x2: W - m.r, y1: y(v), y2: y(v), class: 'grid' }));
    g.appendChild(s('text', { x: m.l - 7, y: y(v) + 4, 'text-anchor': 'end' }, yf(v)));
  });
  g.appendChild(s('line', { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b, class: 'domain' }));
  g.appendChild(s('line', { x1: m.l, x2: m.l, y1: m.t, y2: H - m.b, class: 'domain' }));
  if (o.xLabel) g.appendChild(s('text', { x: (m.l + W - m.r) / 2, y: H - 8, 'text-anchor': 'middle', class: 'axis-label' }, o.xLabel));
  if (o.yLabel) g.appendChild(s('text', { x: 14 - 0, y: (m.t + H - m.b) / 2, 'text-anchor': 'middle', class: 'axis-label', transform: 'rotate(-90 14 ' + (m.t + H - m.b) / 2 + ')' }, o.yLabel));
  svg.appendChild(g);
  var plot = s('g');
  svg.appendChild(plot);
  return { svg: svg, plot: plot, x: x, y: y, W: W, H: H, m: m };
}

/* ---- derived per-cluster figures ---- */
var keptFrac = [], nonEmpty = [], nMax = 0;
for (var j = 0; j < k; j++) {
  var nj = C.n[j];
  keptFrac[j] = nj > 0 ? C.kept[j] / nj : NaN;
  if (nj > 0) { nonEmpty.push(j); if (nj > nMax) nMax = nj; }
}
var byComplexity = nonEmpty.slice().sort(function (a, b) { return (C.complexity[a] - C.complexity[b]) || (a - b); });
var rankOf = {};
byComplexity.forEach(function (j, i) { rankOf[j] = i + 1; });
var fr = nonEmpty.map(function (j) { return keptFrac[j]; });
var fLo = fr.length ? Math.min.apply(null, fr) : 0, fHi = fr.length ? Math.max.apply(null, fr) : 1;
fLo = Math.max(0, Math.floor(fLo * 10) / 10); fHi = Math.min(1, Math.ceil(fHi * 10) / 10);
if (!(fHi > fLo)) { fLo = Math.max(0, fLo - 0.1); fHi = Math.min(1, fHi + 0.1); if (!(fHi > fLo)) { fLo = 0; fHi = 1; } }
function fracColour(f) { return viridis((f - fLo) / (fHi - fLo)); }

var which = params.which || 'hard';
function thresholdOf(j) {
  if (Array.isArray(C.threshold) && num(C.threshold[j])) return { v: C.threshold[j], src: S.mode === 'streaming' ? 'the last streaming keep threshold θ' : 'clusters.threshold from stats.json' };
  if (S.mode === 'exact' && R && R.delta) {
    if (which === 'hard' && num(R.delta.kept_min[j])) return { v: R.delta.kept_min[j], src: 'the smallest kept δ (exact mode, hard: keep δ ≥ θ)' };
    if (which === 'easy' && num(R.delta.kept_max[j])) return { v: R.delta.kept_max[j], src: 'the largest kept δ (exact mode, easy: keep δ ≤ θ)' };
  }
  return null;
}

/* ---- summary ---- */
function card(id, label, value, display, extra) {
  return h('div', { class: 'card' }, [
    h('div', { class: 'label' }, label),
    h('div', { class: 'value', id: id, 'data-value': value }, display),
    extra ? h('div', { class: 'extra' }, extra) : null,
  ]);
}
function renderSummary() {
  var errs = 0, er = TOT.errors || {};
  for (var r in er) errs += er[r];
  var el = $('summary');
  el.appendChild(card('total-samples', 'Samples', TOT.samples, fmtInt(TOT.samples), fmtInt(TOT.valid) + ' valid'));
  el.appendChild(card('total-kept', 'Kept', TOT.kept, fmtInt(TOT.kept), 'target ' + fmtInt(TOT.n_target)));
  el.appendChild(card('total-keep-ratio', 'Keep ratio', TOT.keep_ratio, fmtPct(TOT.keep_ratio), 'asked ' + fmtPct(params.keep_ratio)));
  el.appendChild(card('total-dropped', 'Dropped', TOT.dropped, fmtInt(TOT.dropped)));
  el.appendChild(card('total-errors', 'Errors', errs, fmtInt(errs), fmtInt(TOT.duplicates) + ' duplicates'));
  el.appendChild(card('total-k', 'Clusters', TOT.k, fmtInt(TOT.k), fmtInt(nonEmpty.length) + ' non-empty'));
  el.appendChild(card('total-seconds', 'Time', TOT.seconds, num(TOT.seconds) ? fmtNum(TOT.seconds, 1) + ' s' : '–', fmtInt(TOT.samples_per_sec) + ' samples/s'));
  $('subtitle').textContent = (S.mode === 'streaming' ? 'Streaming mode' : 'Exact mode') + ' · ' + (S.method || 'DBP') + ' · selection ' + which;
}

/* ---- Figure 2 ---- */
var selected = -1, scatterDots = {};
function renderScatter() {
  var box = $('scatter');
  if (!nonEmpty.length) { box.appendChild(h('p', { class: 'empty' }, 'No non-empty clusters.')); return; }
  var xs = nonEmpty.map(function (j) { return C.d_intra[j]; }), ys = nonEmpty.map(function (j) { return C.d_inter[j]; });
  var xd = niceDomain(Math.min.apply(null, xs), Math.max.apply(null, xs), 8), yd = niceDomain(Math.min.apply(null, ys), Math.max.apply(null, ys), 6);
  var f = frame({ w: 900, h: 440, m: { t: 16, r: 150, b: 48, l: 66 }, x: xd, y: yd, xLabel: 'd_intra — mean distance of members to their centroid', yLabel: 'd_inter — mean distance to the nearest other centroids', aria: 'd_intra against d_inter per cluster' });
  var rMax = Math.max(5, Math.min(20, 170 / Math.sqrt(nonEmpty.length))), rMin = Math.min(2.2, rMax / 2);
  var order = nonEmpty.slice().sort(function (a, b) { return C.n[b] - C.n[a]; });
  order.forEach(function (j) {
    var r = rMin + (rMax - rMin) * Math.sqrt(C.n[j] / nMax);
    var c = s('circle', { cx: f.x(C.d_intra[j]).toFixed(2), cy: f.y(C.d_inter[j]).toFixed(2), r: r.toFixed(2), fill: fracColour(keptFrac[j]), 'fill-opacity': 0.85, stroke: '#fff', 'stroke-width': 0.8, 'data-cluster': j, class: 'pt', style: 'cursor:pointer' },
      s('title', null, 'cluster ' + j + ' · n ' + fmtInt(C.n[j]) + ' · kept ' + fmtInt(C.kept[j]) + ' (' + fmtPct(keptFrac[j]) + ')\nd_intra ' + fmtNum(C.d_intra[j]) + ' · d_inter ' + fmtNum(C.d_inter[j]) + ' · complexity ' + fmtNum(C.complexity[j])));
    c.addEventListener('click', function () { select(j); });
    scatterDots[j] = c;
    f.plot.appendChild(c);
  });
  // colour legend
  var lx = f.W - f.m.r + 34, ly = f.m.t + 4, lh = 200;
  var defs = s('defs'), grad = s('linearGradient', { id: 'kf-grad', x1: 0, y1: 1, x2: 0, y2: 0 });
  for (var i = 0; i <= 10; i++) grad.appendChild(s('stop', { offset: i * 10 + '%', 'stop-color': viridis(i / 10) }));
  defs.appendChild(grad); f.svg.appendChild(defs);
  var lg = s('g');
  lg.appendChild(s('text', { x: lx - 4, y: ly, class: 'axis-label' }, 'kept fraction'));
  lg.appendChild(s('rect', { x: lx, y: ly + 10, width: 14, height: lh, fill: 'url(#kf-grad)', stroke: '#cfd5dc' }));
  var lt = ticks(fLo, fHi, 5), ls = lin(fLo, fHi, ly + 10 + lh, ly + 10);
  lt.values.forEach(function (v) {
    lg.appendChild(s('line', { x1: lx + 14, x2: lx + 19, y1: ls(v), y2: ls(v), stroke: '#9aa4b1' }));
    lg.appendChild(s('text', { x: lx + 23, y: ls(v) + 4 }, Math.round(v * 100) + '%'));
  });
  // size legend
  var sy = ly + lh + 44;
  lg.appendChild(s('text', { x: lx - 4, y: sy, class: 'axis-label' }, 'cluster size'));
  [nMax, Math.round(nMax / 4)].filter(function (v, i, a) { return v > 0 && a.indexOf(v) === i; }).forEach(function (v, i) {
    var r = rMin + (rMax - rMin) * Math.sqrt(v / nMax), cy = sy + 12 + rMax + i * (2 * rMax + 8);
    lg.appendChild(s('circle', { cx: lx + 7, cy: cy, r: r, fill: '#d5dae0', stroke: '#9aa4b1' }));
    lg.appendChild(s('text', { x: lx + 7 + rMax + 6, y: cy + 4 }, fmtInt(v)));
  });
  f.svg.appendChild(lg);
  box.appendChild(f.svg);
}

/* ---- quota vs kept ---- */
function renderQuota() {
  var box = $('quota');
  $('quota-note').textContent = (S.mode === 'streaming'
    ? 'Bars: each cluster\u2019s quota from the last plan, scaled to the stream. Dots: samples kept.'
    : 'Bars: each cluster\u2019s target quota (water-filling of softmax(C/\u03c4)). Dots: samples kept.') + ' Clusters left to right from least to most complex.';
  if (!byComplexity.length) { box.appendChild(h('p', { class: 'empty' }, 'No clusters.')); return; }
  var yMax = 0;
  byComplexity.forEach(function (j) { yMax = Math.max(yMax, C.quota[j], C.kept[j]); });
  var m = byComplexity.length;
  var f = frame({ w: 900, h: 300, m: { t: 12, r: 18, b: 48, l: 66 }, x: [0, m], y: [0, niceDomain(0, yMax || 1, 6)[1]], xLabel: 'clusters by complexity rank (low \u2192 high C = d_inter \u00b7 d_intra)', yLabel: 'samples', xFmt: function (v) { return fmtInt(v); }, aria: 'quota and kept per cluster' });
  var bw = (f.x(1) - f.x(0));
  byComplexity.forEach(function (j, i) {
    var x0 = f.x(i), yq = f.y(C.quota[j]), yk = f.y(C.kept[j]);
    var g = s('g', { 'data-cluster': j, style: 'cursor:pointer' }, s('title', null, 'cluster ' + j + ' · complexity rank ' + (i + 1) + '/' + m + '\nquota ' + fmtNum(C.quota[j]) + ' · kept ' + fmtInt(C.kept[j]) + ' · n ' + fmtInt(C.n[j])));
    g.appendChild(s('rect', { x: (x0 + bw * 0.08).toFixed(2), y: yq.toFixed(2), width: Math.max(0.6, bw * 0.84).toFixed(2), height: Math.max(0, f.y(0) - yq).toFixed(2), fill: '#9cc3ea' }));
    g.appendChild(s('circle', { cx: (x0 + bw / 2).toFixed(2), cy: yk.toFixed(2), r: Math.max(1.3, Math.min(3.5, bw * 0.42)).toFixed(2), fill: '#12355b' }));
    g.addEventListener('click', function () { select(j); });
    f.plot.appendChild(g);
  });
  box.appendChild(f.svg);
  box.appendChild(h('div', { class: 'legend' }, [h('span', null, [h('span', { class: 'sw', style: 'background:#9cc3ea' }), 'quota']), h('span', null, [h('span', { class: 'sw', style: 'background:#12355b;border-radius:50%' }), 'kept'])]));
}

/* ---- one cluster ---- */
function renderSelect() {
  var sel = $('cluster-select');
  for (var j = 0; j < k; j++) {
    var label = 'cluster ' + j + (C.n[j] > 0 ? ' — n ' + fmtInt(C.n[j]) + ', complexity rank ' + rankOf[j] + '/' + nonEmpty.length : ' — empty');
    sel.appendChild(h('option', { value: j }, label));
  }
  sel.addEventListener('change', function () { select(+sel.value); });
}
function row(name, field, value, display) {
  return h('tr', null, [h('th', null, name), h('td', { 'data-field': field, 'data-value': value }, display)]);
}
function select(j) {
  if (!(j >= 0 && j < k)) return;
  if (selected >= 0 && scatterDots[selected]) { scatterDots[selected].setAttribute('stroke', '#fff'); scatterDots[selected].setAttribute('stroke-width', '0.8'); }
  selected = j;
  if (scatterDots[j]) { scatterDots[j].setAttribute('stroke', '#d9480f'); scatterDots[j].setAttribute('stroke-width', '2.5'); }
  $('cluster-select').value = String(j);
  var t = $('cluster-detail');
  t.textContent = '';
  var th = thresholdOf(j);
  t.appendChild(row('members n', 'n', C.n[j], fmtInt(C.n[j])));
  t.appendChild(row('kept', 'kept', C.kept[j], fmtInt(C.kept[j])));
  t.appendChild(row(S.mode === 'streaming' ? 'quota (last plan)' : 'target quota', 'quota', C.quota[j], fmtNum(C.quota[j])));
  t.appendChild(row('kept fraction', 'kept-fraction', keptFrac[j], fmtPct(keptFrac[j])));
  t.appendChild(row('d_intra', 'd_intra', C.d_intra[j], fmtNum(C.d_intra[j])));
  t.appendChild(row('d_inter', 'd_inter', C.d_inter[j], fmtNum(C.d_inter[j])));
  t.appendChild(row('complexity C', 'complexity', C.complexity[j], fmtNum(C.complexity[j]) + (rankOf[j] ? '  (rank ' + rankOf[j] + ' of ' + nonEmpty.length + ')' : '')));
  if (Array.isArray(C.p)) t.appendChild(row('softmax p', 'p', C.p[j], fmtNum(C.p[j], 5)));
  if (Array.isArray(C.lb) && Array.isArray(C.ub)) t.appendChild(row('bounds lb … ub', 'bounds', '', fmtNum(C.lb[j]) + ' … ' + fmtNum(C.ub[j])));
  t.appendChild(row('keep threshold θ', 'threshold', th ? th.v : '', th ? fmtNum(th.v, 4) : '–'));
  renderHist(j, th);
  renderClusterThumbs(j);
}
function renderHist(j, th) {
  var box = $('hist'), note = $('threshold-note');
  box.textContent = '';
  note.textContent = th ? 'Threshold: ' + th.src + '.' : (which === 'random' ? 'Selection is random: no distance threshold.' : 'No threshold recorded for this cluster.');
  var H = R && R.histograms;
  if (!H) { box.appendChild(h('p', { class: 'empty' }, 'This stats.json has no distance histograms (no report section: written by an older version or without the report collector).')); return; }
  var all = H.all[j] || [], kept = H.kept[j] || [];
  if (!all.length) { box.appendChild(h('p', { class: 'empty' }, 'No decided members with a distance in this cluster.')); return; }
  var lo = H.lo[j], w = H.width[j], hi = lo + w * all.length, yMax = Math.max.apply(null, all);
  var xlo = lo, xhi = hi;
  if (th) { xlo = Math.min(xlo, th.v - w); xhi = Math.max(xhi, th.v + w); }
  var f = frame({ w: 640, h: 280, m: { t: 26, r: 16, b: 46, l: 56 }, x: [xlo, xhi], y: [0, niceDomain(0, yMax, 5)[1]], xLabel: 'δ = 1 − cos(x, centroid)', yLabel: 'samples', aria: 'distance distribution' });
  for (var b = 0; b < all.length; b++) {
    var x0 = f.x(lo + b * w), x1 = f.x(lo + (b + 1) * w), bwid = Math.max(0.5, x1 - x0 - 1);
    var dropN = all[b] - kept[b];
    var tip = s('title', null, fmtNum(lo + b * w, 4) + ' – ' + fmtNum(lo + (b + 1) * w, 4) + ': ' + kept[b] + ' kept, ' + dropN + ' dropped');
    if (kept[b] > 0) f.plot.appendChild(s('rect', { x: x0 + 0.5, y: f.y(kept[b]), width: bwid, height: f.y(0) - f.y(kept[b]), fill: '#2f9e44' }, tip));
    if (dropN > 0) f.plot.appendChild(s('rect', { x: x0 + 0.5, y: f.y(all[b]), width: bwid, height: f.y(kept[b]) - f.y(all[b]), fill: '#adb5bd' }, tip.cloneNode(true)));
  }
  if (th) {
    var tx = f.x(th.v);
    f.plot.appendChild(s('line', { x1: tx, x2: tx, y1: f.m.t - 8, y2: f.y(0), stroke: '#d9480f', 'stroke-width': 2, 'stroke-dasharray': '5 3', id: 'threshold-line' }));
    f.plot.appendChild(s('text', { x: tx + 5, y: f.m.t - 2, style: 'fill:#d9480f;font-weight:600' }, 'θ = ' + fmtNum(th.v, 4)));
  }
  box.appendChild(f.svg);
  box.appendChild(h('div', { class: 'legend' }, [h('span', null, [h('span', { class: 'sw', style: 'background:#2f9e44' }), 'kept']), h('span', null, [h('span', { class: 'sw', style: 'background:#adb5bd' }), 'dropped']), th ? h('span', null, [h('span', { class: 'sw', style: 'background:#d9480f' }), 'keep threshold']) : null]));
}

/* ---- thumbnails ---- */
var thumbsBy = {};
if (TH && Array.isArray(TH.items)) TH.items.forEach(function (t) { var q = thumbsBy[t.cluster] || (thumbsBy[t.cluster] = { keep: [], drop: [] }); (t.decision === 'keep' ? q.keep : q.drop).push(t); });
function fig(t) {
  var cap = t.caption || '(no caption)';
  return h('figure', { class: t.decision, title: t.key + (t.reason && t.reason !== 'dbp' ? ' [' + t.reason + ']' : '') + '\n' + cap + (num(t.distance) ? '\nδ = ' + fmtNum(t.distance, 4) : '') }, [
    h('img', { src: 'data:image/jpeg;base64,' + t.jpeg, alt: cap }),
    h('figcaption', null, [num(t.distance) ? h('span', { class: 'd' }, 'δ ' + t.distance.toFixed(3) + (t.reason === 'duplicate' ? ' · dup' : '') + ' · ') : null, cap]),
  ]);
}
function noThumbsText() {
  return D.thumbsNote || 'No thumbnails in this run: they are collected when images pass through the pipeline (decode with a thumbnail size).';
}
function renderClusterThumbs(j) {
  var box = $('cluster-thumbs');
  box.textContent = '';
  if (!TH || !TH.items.length) { box.appendChild(h('p', { class: 'note' }, noThumbsText())); return; }
  var q = thumbsBy[j] || { keep: [], drop: [] };
  var wrap = h('div', { class: 'thumbs' });
  wrap.appendChild(h('h3', null, 'Kept (' + q.keep.length + ' of ' + fmtInt(C.kept[j]) + ')'));
  wrap.appendChild(q.keep.length ? h('div', { class: 'tgrid' }, q.keep.map(fig)) : h('p', { class: 'note' }, 'none sampled'));
  wrap.appendChild(h('h3', null, 'Dropped (' + q.drop.length + ' of ' + fmtInt(C.n[j] - C.kept[j]) + ')'));
  wrap.appendChild(q.drop.length ? h('div', { class: 'tgrid' }, q.drop.map(fig)) : h('p', { class: 'note' }, 'none sampled'));
  box.appendChild(wrap);
}
function renderGallery() {
  var box = $('gallery');
  if (!TH || !TH.items.length) { box.appendChild(h('p', { class: 'empty' }, noThumbsText())); return; }
  var list = byComplexity.slice().reverse().filter(function (j) { return thumbsBy[j]; });
  var shown = 0, PAGE = 30;
  var more = h('button', { type: 'button' }, 'Show more clusters');
  var host = h('div');
  function page() {
    list.slice(shown, shown + PAGE).forEach(function (j) {
      var q = thumbsBy[j];
      var name = h('b', null, 'cluster ' + j);
      name.addEventListener('click', function () { select(j); $('fig-cluster').scrollIntoView({ behavior: 'smooth' }); });
      host.appendChild(h('div', { class: 'gal-row', 'data-cluster': j }, [
        h('div', { class: 'meta' }, [name, h('br'), 'complexity rank ' + rankOf[j] + '/' + nonEmpty.length, h('br'), 'kept ' + fmtInt(C.kept[j]) + ' of ' + fmtInt(C.n[j]) + ' (' + fmtPct(keptFrac[j]) + ')']),
        h('div', null, [h('div', { class: 'side' }, 'kept'), h('div', { class: 'tgrid' }, q.keep.map(fig))]),
        h('div', null, [h('div', { class: 'side' }, 'dropped'), h('div', { class: 'tgrid' }, q.drop.map(fig))]),
      ]));
    });
    shown += PAGE;
    if (shown >= list.length) more.remove(); else more.textContent = 'Show more clusters (' + (list.length - shown) + ' left)';
  }
  more.addEventListener('click', page);
  box.appendChild(host);
  box.appendChild(more);
  page();
  if (R && R.thumbnails && R.thumbnails.over_budget > 0) box.appendChild(h('p', { class: 'note' }, R.thumbnails.over_budget + ' sampled thumbnails were left out to keep this page small.'));
}

/* ---- progress ---- */
function renderProgress() {
  var box = $('progress');
  var tl = R && R.timeline;
  if (!tl || tl.samples.length < 2) {
    box.appendChild(h('p', { class: 'empty' }, S.mode === 'exact' ? 'Exact mode decides after seeing every sample; no progress timeline was recorded.' : 'No progress timeline in this stats.json.'));
    return;
  }
  var xs = tl.samples, ratio = xs.map(function (n, i) { return n > 0 ? tl.kept[i] / n : NaN; });
  var target = num(params.keep_ratio) ? params.keep_ratio : null;
  var yHi = Math.max.apply(null, ratio.filter(num).concat([target || 0]));
  var f = frame({ w: 560, h: 280, m: { t: 14, r: 16, b: 46, l: 56 }, x: [0, xs[xs.length - 1] || 1], y: [0, Math.min(1, niceDomain(0, yHi * 1.1 || 1, 5)[1])], xn: 5, xLabel: S.mode === 'exact' ? 'samples written (pass 2, input order)' : 'samples seen', yLabel: 'kept / samples', yFmt: function (v) { return Math.round(v * 100) + '%'; }, xFmt: function (v) { return compact(v); }, aria: 'keep ratio over progress' });
  if (target !== null) {
    f.plot.appendChild(s('line', { x1: f.x(0), x2: f.x(xs[xs.length - 1]), y1: f.y(target), y2: f.y(target), stroke: '#d9480f', 'stroke-dasharray': '5 4', 'stroke-width': 1.5 }));
    f.plot.appendChild(s('text', { x: f.W - f.m.r - 4, y: f.y(target) - 5, 'text-anchor': 'end', style: 'fill:#d9480f' }, 'asked ' + fmtPct(target)));
  }
  var d = '';
  ratio.forEach(function (r, i) { if (num(r)) d += (d ? 'L' : 'M') + f.x(xs[i]).toFixed(1) + ',' + f.y(r).toFixed(1); });
  f.plot.appendChild(s('path', { d: d, fill: 'none', stroke: '#1c5fa8', 'stroke-width': 2 }));
  box.appendChild(f.svg);
  var last = tl.t[tl.t.length - 1];
  box.appendChild(h('p', { class: 'note' }, tl.samples.length + ' points over ' + fmtNum(last, 1) + ' s; final keep ratio ' + fmtPct(ratio[ratio.length - 1]) + '.'));
}

/* ---- errors and throughput ---- */
function bars(box, items, cls, fmt, log) {
  var max = 0;
  items.forEach(function (it) { max = Math.max(max, it[1]); });
  function frac(v) { return log ? (v > 1 && max > 1 ? Math.log10(v) / Math.log10(max) : 0) : max > 0 ? v / max : 0; }
  var w = h('div', { class: 'bars' });
  items.forEach(function (it) {
    w.appendChild(h('div', { class: 'row', 'data-name': it[0], 'data-value': it[1] }, [
      h('div', { class: 'name', title: it[0] }, it[0]),
      h('div', null, h('div', { class: 'bar ' + (it[2] || cls || ''), style: 'width:' + (100 * frac(it[1])).toFixed(2) + '%' })),
      h('div', { class: 'num' }, (fmt || fmtInt)(it[1])),
    ]));
  });
  box.appendChild(w);
}
function renderErrors() {
  var box = $('errors'), er = TOT.errors || {};
  var items = Object.keys(er).map(function (r) { return [r, er[r], 'err']; }).sort(function (a, b) { return b[1] - a[1]; });
  if (TOT.duplicates > 0) items.push(['duplicate (SemDeDup)', TOT.duplicates, 'dup']);
  if (R && R.reasons) Object.keys(R.reasons).forEach(function (r) { if (r.indexOf('filter:') === 0) items.push([r, R.reasons[r], 'dup']); });
  if (!items.length) { box.appendChild(h('p', { class: 'note' }, 'No errors and no duplicates: every sample reached the DBP decision.')); return; }
  bars(box, items);
}
function renderThroughput() {
  var box = $('throughput');
  var items = [];
  var tp = (R && R.throughput) || S.throughput || {};
  Object.keys(tp).forEach(function (st) { if (num(tp[st])) items.push([st, tp[st]]); });
  if (num(TOT.samples_per_sec)) items.push(['end to end', TOT.samples_per_sec]);
  if (!items.length) { box.appendChild(h('p', { class: 'note' }, 'No throughput recorded.')); return; }
  bars(box, items, '', function (v) { return fmtInt(v) + '/s'; }, true);
  box.appendChild(h('p', { class: 'note' }, 'Samples per second by stage (bars on a log scale).'));
  if (S.timings && typeof S.timings === 'object') {
    var parts = Object.keys(S.timings).map(function (n) { return n + ' ' + fmtNum(S.timings[n], 2) + ' s'; });
    box.appendChild(h('p', { class: 'note' }, 'Timings: ' + parts.join(' · ')));
  }
}

/* ---- parameters ---- */
function val(v) { return typeof v === 'object' && v !== null ? JSON.stringify(v) : typeof v === 'number' ? fmtNum(v, 6) : String(v); }
function renderParams() {
  var t = $('params');
  t.appendChild(row('mode', 'mode', S.mode, S.mode));
  t.appendChild(row('method', 'method', S.method, S.method));
  Object.keys(params).forEach(function (p) { t.appendChild(row(p, 'param-' + p, val(params[p]), val(params[p]))); });
  ['n_target', 'min_samples', 'lambda', 'renormalized', 'valid'].forEach(function (p) { if (p in TOT) t.appendChild(row(p, 'total-' + p, TOT[p], val(TOT[p]))); });
  var thr = Array.isArray(C.threshold) ? 'clusters.threshold (written by the pipeline)' : S.mode === 'exact' ? (which === 'random' ? 'none (random selection)' : (which === 'hard' ? 'smallest' : 'largest') + ' kept δ per cluster, from report.delta') : 'not recorded';
  t.appendChild(row('keep threshold source', 'threshold-source', thr, thr));
  if (R && R.thumbnails) t.appendChild(row('thumbnails', 'thumbnails', R.thumbnails.included, R.thumbnails.included + ' included (' + fmtNum(R.thumbnails.bytes / 1024, 0) + ' KiB of ' + fmtNum(R.thumbnails.budget_bytes / 1024, 0) + ' KiB budget), up to ' + R.thumbnails.per_cluster + ' kept + ' + R.thumbnails.per_cluster + ' dropped per cluster'));
  $('footer').textContent = 'stats.json version ' + S.version + (R ? ' with report section' : ' without report section') + '. Self-contained page: no network requests.';
}

renderSummary();
renderScatter();
renderQuota();
renderSelect();
renderProgress();
renderErrors();
renderThroughput();
renderGallery();
renderParams();
var first = nonEmpty.slice().sort(function (a, b) { return C.n[b] - C.n[a]; })[0];
select(first === undefined ? 0 : first);
document.body.setAttribute('data-ready', '1');
})();
`;
