// The dashboard page: polls GET /dashboard/feed and draws it with uPlot (loaded before this module as the global
// `uPlot`). Every number a chart shows is also in the DOM as text: the summary table (data-field / data-value on
// each cell), the link table and the event lists. Text from the feed is only ever set with textContent.
// When a feed has been drawn, <body> carries data-state="rendered" and data-feed-at, and every chart carries
// data-drawn-at with the feed time it drew.

const FEED_URL = '/dashboard/feed';
const POLL_MS = 2000;
const CHART_HEIGHT = 210;
/** A time chart spans at least this many seconds (a fresh page has one sample). */
const MIN_SPAN_S = 60;
/** Event rows listed per stream (the summary counts them all). */
const MAX_EVENT_ROWS = 12;
const COLORS = { available: '#1565c0', capacity: '#7b8794', produced: '#2e7d32', delivered: '#ef6c00', qber: '#c62828', qberUpper: '#f06292', threshold: '#6d4c41', fraction: '#1565c0', planned: '#37474f' };
const POINT_COLORS = ['#1565c0', '#c62828', '#2e7d32', '#ef6c00', '#6a1b9a', '#00838f'];

const streams = new Map(); // keyStreamId -> { section, charts, events }
let plannedChart = null;
let latest = null;
let renders = 0;

// ------------------------------------------------------------------ formatting

const dash = '\u2013';
const fmtInt = (n) => (n === null || n === undefined ? dash : Number(n).toLocaleString('en'));
const fmtRate = (x) => (x === null || x === undefined ? dash : x >= 100 ? x.toFixed(0) : x.toFixed(2));
const fmtPct = (x) => (x === null || x === undefined ? dash : `${(x * 100).toFixed(2)} %`);
const fmtSci = (x) => (x === null || x === undefined ? dash : x === 0 ? '0' : x.toExponential(3));
const fmtTime = (ms) => new Date(ms).toLocaleTimeString('en-GB', { hour12: false });
function fmtParameter(v) {
  if (typeof v !== 'number') return String(v);
  if (Number.isInteger(v) && Math.abs(v) >= 10000) return v.toLocaleString('en');
  if (v !== 0 && Math.abs(v) < 1e-3) return v.toExponential(2);
  return String(Number(v.toPrecision(6)));
}

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('data-')) node.setAttribute(k, v);
    else node[k] = v;
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A table cell whose text is `shown` and whose data-value is the raw number (empty for none). */
function cell(field, raw, shown, cls) {
  const td = el('td', { 'data-field': field, 'data-value': raw === null || raw === undefined ? '' : String(raw) }, shown);
  if (cls) td.className = cls;
  return td;
}

function streamState(s, role) {
  if (s.halted) return { key: 'halted', text: 'halted' };
  if (!s.localOpen || !s.peerOpen) return { key: 'waiting', text: 'waiting for the other application' };
  if (role === 'sender') return s.exchangeRunning ? { key: 'exchanging', text: 'exchanging' } : { key: 'stopped', text: 'exchange stopped' };
  return { key: 'open', text: 'open (the sender runs the exchange)' };
}

// ------------------------------------------------------------------ charts

/** Draws aborts (red) and halts (purple) as dashed vertical lines on a time chart. */
function eventMarkers(getEvents) {
  return {
    hooks: {
      draw: [
        (u) => {
          const { ctx, bbox } = u;
          for (const ev of getEvents()) {
            const x = Math.round(u.valToPos(ev.at / 1000, 'x', true));
            if (x < bbox.left || x > bbox.left + bbox.width) continue;
            ctx.save();
            ctx.strokeStyle = ev.kind === 'abort' ? '#c62828' : '#6a1b9a';
            ctx.lineWidth = 2;
            ctx.setLineDash([5, 4]);
            ctx.beginPath();
            ctx.moveTo(x, bbox.top);
            ctx.lineTo(x, bbox.top + bbox.height);
            ctx.stroke();
            ctx.restore();
          }
        },
      ],
    },
  };
}

/** Marks the chart's container once uPlot has drawn the data of the current feed. */
function drawnMarker(container) {
  return { hooks: { draw: [() => container.setAttribute('data-drawn-at', String(latest ? latest.generatedAt : 0))] } };
}

/** The time axis: from the first point (or a minute back) to the feed's time. */
function timeRange(_u, min) {
  const now = latest.generatedAt / 1000;
  const from = min === null || min === undefined || !Number.isFinite(min) ? now - MIN_SPAN_S : Math.min(min, now - MIN_SPAN_S);
  return [from, now];
}

function chartWidth(container) {
  return Math.max(320, container.clientWidth || 560);
}

function makeChart(container, opts, data) {
  // The legend names the series; the values are in the tables (a live legend shows dashes until hovered).
  const plot = new uPlot({ width: chartWidth(container), height: CHART_HEIGHT, legend: { live: false }, ...opts, plugins: [...(opts.plugins ?? []), drawnMarker(container)] }, data, container);
  container.setAttribute('data-points', String(data[0].length));
  return plot;
}

function updateChart(plot, container, data) {
  container.setAttribute('data-points', String(data[0].length));
  plot.setData(data);
}

const timeAxis = { label: 'local time', labelSize: 18 };

function bufferData(s) {
  return [s.series.t.map((t) => t / 1000), s.series.available, s.series.t.map(() => s.capacity)];
}

function rateData(s) {
  return [s.series.t.map((t) => t / 1000), s.series.producedKeysPerSecond, s.series.deliveredKeysPerSecond];
}

function qberData(s, threshold) {
  const blocks = s.rounds;
  const pct = (x) => (x === null ? null : x * 100);
  return [
    blocks.map((b) => b.at / 1000),
    blocks.map((b) => pct(b.qber)),
    blocks.map((b) => pct(b.qberUpper)),
    blocks.map(() => (threshold === null ? null : threshold * 100)),
  ];
}

function fractionData(s) {
  const blocks = s.rounds;
  return [blocks.map((b) => b.at / 1000), blocks.map((b) => (b.secretFraction === null ? null : b.secretFraction * 100))];
}

function createStreamCharts(entry, s, threshold) {
  const events = () => entry.events;
  const c = entry.containers;
  entry.charts.buffer = makeChart(
    c.buffer,
    {
      scales: { x: { time: true, range: timeRange }, y: { range: (_u, _min, max) => [0, Math.max(max ?? 0, s.capacity) * 1.05] } },
      axes: [timeAxis, { label: 'keys', labelSize: 18, size: 50 }],
      series: [
        { label: 'time' },
        { label: 'deliverable keys', stroke: COLORS.available, width: 2, fill: 'rgba(21,101,192,0.12)' },
        { label: 'capacity', stroke: COLORS.capacity, width: 1, dash: [6, 4] },
      ],
      plugins: [eventMarkers(events)],
    },
    bufferData(s),
  );
  entry.charts.rate = makeChart(
    c.rate,
    {
      scales: { x: { time: true, range: timeRange }, y: { range: (_u, _min, max) => [0, Math.max(1, (max ?? 0) * 1.1)] } },
      axes: [timeAxis, { label: 'keys per second', labelSize: 18, size: 55 }],
      series: [
        { label: 'time' },
        { label: 'produced (committed)', stroke: COLORS.produced, width: 2 },
        { label: 'delivered (taken here)', stroke: COLORS.delivered, width: 2 },
      ],
      plugins: [eventMarkers(events)],
    },
    rateData(s),
  );
  entry.charts.qber = makeChart(
    c.qber,
    {
      scales: {
        x: { time: true, range: timeRange },
        y: { range: (_u, _min, max) => [0, Math.max(max ?? 0, threshold === null ? 5 : threshold * 100) * 1.15] },
      },
      axes: [{ label: 'block time (local)', labelSize: 18 }, { label: 'QBER (%)', labelSize: 18, size: 50 }],
      series: [
        { label: 'time' },
        { label: 'QBER measured', stroke: COLORS.qber, width: 2, points: { show: true, size: 6 } },
        { label: 'upper bound', stroke: COLORS.qberUpper, width: 1.5, dash: [4, 3], points: { show: true, size: 4 } },
        { label: 'threshold', stroke: COLORS.threshold, width: 1, dash: [8, 4], points: { show: false } },
      ],
      plugins: [eventMarkers(events)],
    },
    qberData(s, threshold),
  );
  entry.charts.fraction = makeChart(
    c.fraction,
    {
      scales: { x: { time: true, range: timeRange }, y: { range: (_u, _min, max) => [0, Math.max(10, (max ?? 0) * 1.15)] } },
      axes: [{ label: 'block time (local)', labelSize: 18 }, { label: 'secret fraction (%)', labelSize: 18, size: 50 }],
      series: [{ label: 'time' }, { label: 'secret fraction', stroke: COLORS.fraction, width: 2, points: { show: true, size: 6 } }],
      plugins: [eventMarkers(events)],
    },
    fractionData(s),
  );
}

/** Grid lines of a log axis at the powers of ten only (uPlot's default adds every multiple). */
function powersOfTen(_u, _axis, min, max) {
  const out = [];
  if (!(min > 0 && max > 0)) return out;
  for (let e = Math.ceil(Math.log10(min) - 1e-9); e <= Math.floor(Math.log10(max) + 1e-9); e++) out.push(10 ** e);
  return out;
}

function plannedData(feed) {
  const curve = feed.plannedCurve;
  const xs = curve.points.map((p) => p.distanceKm);
  const at = curve.distanceKm;
  let i = xs.findIndex((x) => x >= at);
  if (i === -1) i = xs.length;
  const positive = (v) => (v > 0 ? v : null); // a log axis has no zero
  const planned = curve.points.map((p) => positive(p.secretBitsPerPulse));
  if (xs[i] !== at) {
    xs.splice(i, 0, at);
    planned.splice(i, 0, positive(curve.plannedSecretBitsPerPulse));
  }
  const measured = feed.streams.map((s) => xs.map((_, j) => (j === i ? positive(s.measuredSecretBitsPerPulse ?? 0) : null)));
  return [xs, planned, ...measured];
}

function renderPlanned(feed) {
  const figure = document.getElementById('planned');
  const container = figure.querySelector('.chart');
  if (!feed.plannedCurve) {
    figure.hidden = true;
    return;
  }
  figure.hidden = false;
  const curve = feed.plannedCurve;
  document.getElementById('planned-analysis').textContent = `Planned curve: ${curve.analysis}.`;
  const values = document.getElementById('planned-values');
  values.replaceChildren(
    document.createTextNode(`At the configured ${curve.distanceKm} km: planned `),
    el('span', { 'data-field': 'planned-secret-bits-per-pulse', 'data-value': String(curve.plannedSecretBitsPerPulse) }, fmtSci(curve.plannedSecretBitsPerPulse)),
    document.createTextNode(' secret bits per pulse; measured (window): '),
    ...feed.streams.flatMap((s, k) => [
      document.createTextNode(k === 0 ? '' : ', '),
      el('span', { 'data-field': 'measured-secret-bits-per-pulse', 'data-stream-id': s.keyStreamId, 'data-value': s.measuredSecretBitsPerPulse === null ? '' : String(s.measuredSecretBitsPerPulse) }, `${s.keyStreamId.slice(0, 8)} ${fmtSci(s.measuredSecretBitsPerPulse)}`),
    ]),
    document.createTextNode(feed.streams.length === 0 ? 'no stream open' : '.'),
  );
  const data = plannedData(feed);
  const labels = feed.streams.map((s) => `measured ${s.keyStreamId.slice(0, 8)}`).join('|');
  // The series change with the streams: rebuild the chart then, update it otherwise.
  if (plannedChart && plannedChart.labels === labels) {
    updateChart(plannedChart.plot, container, data);
    return;
  }
  plannedChart?.plot.destroy();
  const series = [
    { label: 'distance (km)' },
    { label: 'planned', stroke: COLORS.planned, width: 2 },
    ...feed.streams.map((s, k) => {
      const color = POINT_COLORS[k % POINT_COLORS.length];
      return { label: `measured ${s.keyStreamId.slice(0, 8)}`, stroke: color, fill: color, paths: () => null, points: { show: true, size: 11, fill: color } };
    }),
  ];
  const plot = makeChart(
    container,
    {
      scales: { x: { time: false }, y: { distr: 3 } },
      axes: [
        { label: 'fibre length (km)', labelSize: 18 },
        { label: 'secret bits per pulse', labelSize: 18, size: 70, splits: powersOfTen, values: (_u, ticks) => ticks.map((v) => (v === null ? '' : v.toExponential(0))) },
      ],
      series,
    },
    data,
  );
  plannedChart = { plot, labels };
}

// ------------------------------------------------------------------ DOM

function createStreamSection(s) {
  const section = el('section', { class: 'stream', 'data-stream-id': s.keyStreamId });
  section.append(el('h2', {}, `Stream ${s.keyStreamId}`));
  const sub = el('p', { class: 'explain' });
  section.append(sub);
  const panels = el('div', { class: 'panels' });
  const panel = (key, title, explain) => {
    const fig = el('figure', { class: 'panel', 'data-panel': key });
    const cap = el('figcaption');
    cap.append(el('b', {}, title));
    fig.append(cap, el('p', { class: 'explain' }, explain));
    panels.append(fig);
    return fig;
  };
  const buffer = panel(
    'buffer',
    'Key buffer fill',
    'Deliverable keys held for this stream (committed at both ends, not yet taken here) against the capacity. The exchange refills when a quarter of the capacity is free; an empty buffer means applications wait.',
  );
  const fill = el('div', { class: 'fill' });
  fill.append(el('meter', { min: 0, max: 1, value: 0 }), el('span', { 'data-field': 'fill' }));
  buffer.append(fill);
  const rate = panel(
    'rate',
    'Key rate',
    'Keys per second committed by the exchange (produced) and taken here by the application (delivered; keys erased by the TTL count too), between samples 2 s apart. Dashed red lines: aborted blocks.',
  );
  const qber = panel(
    'qber',
    'QBER per block',
    'Per BB84 error-correction block: the QBER of the test basis (Z), whose bits both ends disclose; a block above the threshold is aborted. (The decoy analysis bounds the phase error over the whole PA block: see the stats route.) Dashed red lines: aborted blocks; purple: halts.',
  );
  const fraction = panel(
    'fraction',
    'Secret fraction per block',
    'Per BB84 privacy-amplification block (the rounds that amplified): the secret length l of Lim et al. 2014 per sifted bit of the PA block, after error correction and the finite-key costs. It falls as the QBER rises and is 0 for an aborted PA block.',
  );
  const events = panel('events', 'Aborts and halts', 'Blocks that ended without keys (reason from the simulator; recorded by the sender, Alice) and halts of the exchange (key confirmation failed, counters out of step) in the window, newest last.');
  const containers = {};
  for (const [key, fig] of [['buffer', buffer], ['rate', rate], ['qber', qber], ['fraction', fraction]]) {
    containers[key] = el('div', { class: 'chart', 'data-chart': key });
    fig.append(containers[key]);
  }
  const qberNote = el('p', { class: 'empty' });
  qber.append(qberNote);
  const fractionNote = el('p', { class: 'empty' });
  fraction.append(fractionNote);
  const eventTable = el('table', { class: 'events' });
  eventTable.append(el('thead'), el('tbody'));
  eventTable.tHead.append(el('tr'));
  for (const h of ['Time', 'Kind', 'Reason']) eventTable.tHead.rows[0].append(el('th', { scope: 'col' }, h));
  const eventNote = el('p', { class: 'empty' });
  events.append(eventTable, eventNote);
  section.append(panels);
  document.getElementById('streams').append(section);
  return { section, sub, fill, containers, charts: {}, events: [], eventTable, eventNote, qberNote, fractionNote };
}

function renderEvents(entry, s) {
  const body = entry.eventTable.tBodies[0];
  const shown = s.events.slice(-MAX_EVENT_ROWS);
  body.replaceChildren(
    ...shown.map((ev) => {
      const tr = el('tr', { class: ev.kind, 'data-at': String(ev.at), 'data-kind': ev.kind });
      tr.append(el('td', {}, fmtTime(ev.at)), el('td', { class: 'text' }, ev.kind), el('td', { class: 'reason' }, ev.reason));
      return tr;
    }),
  );
  entry.eventTable.hidden = shown.length === 0;
  entry.eventNote.textContent =
    s.events.length === 0 ? 'No abort or halt in the window.' : s.events.length > shown.length ? `${s.events.length - shown.length} earlier events in the window are not listed.` : '';
}

function renderStream(s, feed, threshold) {
  let entry = streams.get(s.keyStreamId);
  const fresh = !entry;
  if (!entry) {
    entry = createStreamSection(s);
    streams.set(s.keyStreamId, entry);
  }
  entry.events = s.events;
  entry.sub.textContent = `Application ${s.source || '(unnamed)'} to ${s.destination}; ${s.keyLengthBits}-bit keys; ${streamState(s, feed.role).text}${s.halted ? `: ${s.halted.reason}` : ''}.`;
  const [meter, label] = entry.fill.children;
  meter.value = s.capacity > 0 ? s.available / s.capacity : 0;
  label.setAttribute('data-value', String(s.available));
  label.textContent = `${fmtInt(s.available)} of ${fmtInt(s.capacity)} keys (${s.capacity > 0 ? Math.round((100 * s.available) / s.capacity) : 0} %)`;
  const hasBlocks = s.rounds.some((b) => b.qber !== null);
  const noBlocks = feed.simulator === 'bb84' ? 'No BB84 block in the window yet.' : `The ${feed.simulator} simulator measures no QBER and no secret fraction: this panel stays empty.`;
  entry.qberNote.textContent = hasBlocks ? '' : noBlocks;
  entry.fractionNote.textContent = s.rounds.some((b) => b.secretFraction !== null) ? '' : noBlocks;
  renderEvents(entry, s);
  if (fresh) createStreamCharts(entry, s, threshold);
  else {
    updateChart(entry.charts.buffer, entry.containers.buffer, bufferData(s));
    updateChart(entry.charts.rate, entry.containers.rate, rateData(s));
    updateChart(entry.charts.qber, entry.containers.qber, qberData(s, threshold));
    updateChart(entry.charts.fraction, entry.containers.fraction, fractionData(s));
  }
}

function renderSummary(feed) {
  const body = document.querySelector('#summary tbody');
  body.replaceChildren(
    ...feed.streams.map((s) => {
      const tr = el('tr', { 'data-stream-id': s.keyStreamId });
      const state = streamState(s, feed.role);
      const id = el('td', { class: 'text', 'data-field': 'keyStreamId', 'data-value': s.keyStreamId, title: s.keyStreamId });
      id.append(el('code', {}, s.keyStreamId.slice(0, 8)));
      const buffer = el('td', { 'data-field': 'buffer' });
      buffer.append(
        el('span', { 'data-field': 'available', 'data-value': String(s.available) }, fmtInt(s.available)),
        document.createTextNode(' / '),
        el('span', { 'data-field': 'capacity', 'data-value': String(s.capacity) }, fmtInt(s.capacity)),
      );
      const last = s.lastBlock;
      tr.append(
        id,
        cell('state', state.key, state.text, `text state-${state.key}`),
        cell('keyLengthBits', s.keyLengthBits, fmtInt(s.keyLengthBits)),
        buffer,
        cell('produced', s.produced, fmtInt(s.produced)),
        cell('taken', s.taken, fmtInt(s.taken)),
        cell('producedKeysPerSecond', s.producedKeysPerSecond, fmtRate(s.producedKeysPerSecond)),
        cell('deliveredKeysPerSecond', s.deliveredKeysPerSecond, fmtRate(s.deliveredKeysPerSecond)),
        cell('blocks', s.blocks, fmtInt(s.blocks)),
        cell('aborts', s.aborts, fmtInt(s.aborts)),
        cell('lastQber', last ? last.qber : null, fmtPct(last ? last.qber : null)),
        cell('lastSecretFraction', last ? last.secretFraction : null, fmtPct(last ? last.secretFraction : null)),
        cell('measuredSecretBitsPerPulse', s.measuredSecretBitsPerPulse, fmtSci(s.measuredSecretBitsPerPulse)),
      );
      tr.setAttribute('data-exchange-running', String(s.exchangeRunning));
      return tr;
    }),
  );
  if (feed.streams.length === 0) {
    const tr = el('tr');
    tr.append(el('td', { colSpan: 13, class: 'empty text' }, 'No open stream: open one from both ends (open_connect) and it appears here.'));
    body.append(tr);
  }
  const extra = [];
  if (feed.streamsNotShown > 0) extra.push(`${feed.streamsNotShown} more open streams are not shown (the dashboard samples at most ${feed.streams.length}).`);
  if (feed.closedStreams > 0) extra.push(`${feed.closedStreams} closed streams are kept by the module and not shown.`);
  document.getElementById('not-shown').textContent = extra.join(' ');
}

function renderLink(feed) {
  const body = document.querySelector('#link-parameters tbody');
  body.replaceChildren(
    ...feed.link.map((p) => {
      const tr = el('tr', { 'data-key': p.key });
      const name = el('th', { scope: 'row' }, p.label);
      name.append(el('div', { class: 'config-key' }, p.key));
      tr.append(name, cell('value', p.value, fmtParameter(p.value)), el('td', { class: 'text' }, p.unit));
      return tr;
    }),
  );
}

function render(feed) {
  latest = feed;
  const roleText = feed.role === 'sender' ? 'sender (Alice)' : 'receiver (Bob)';
  document.getElementById('module-role').textContent = `\u00b7 ${roleText} \u00b7 ${feed.simulator}`;
  const status = document.getElementById('status');
  status.className = '';
  status.textContent = `Updated ${fmtTime(feed.generatedAt)}; ${feed.streams.length} open stream${feed.streams.length === 1 ? '' : 's'}; a new sample every ${feed.sampleIntervalMs / 1000} s; charts show the last ${feed.windowMs / 60000} minutes.`;
  const thresholdParam = feed.link.find((p) => p.key === 'simulator.qber_threshold');
  const threshold = thresholdParam && typeof thresholdParam.value === 'number' ? thresholdParam.value : null;
  renderSummary(feed);
  renderLink(feed);
  for (const s of feed.streams) renderStream(s, feed, threshold);
  for (const [id, entry] of streams) {
    if (feed.streams.some((s) => s.keyStreamId === id)) continue;
    for (const plot of Object.values(entry.charts)) plot.destroy();
    entry.section.remove();
    streams.delete(id);
  }
  renderPlanned(feed);
  renders++;
  document.body.setAttribute('data-feed-at', String(feed.generatedAt));
  document.body.setAttribute('data-renders', String(renders));
  document.body.setAttribute('data-state', 'rendered');
}

function showProblem(text) {
  const status = document.getElementById('status');
  status.className = 'error';
  status.textContent = text;
  if (!latest) document.body.setAttribute('data-state', 'error');
}

async function poll() {
  try {
    const res = await fetch(FEED_URL, { cache: 'no-store', credentials: 'same-origin' });
    if (res.ok) render(await res.json());
    else showProblem(`The feed answered HTTP ${res.status}${res.status === 401 ? ': reload the page and give the operator token as the password' : ''}. Retrying.`);
  } catch (err) {
    showProblem(`The feed is unreachable (${err instanceof Error ? err.message : String(err)}). Retrying.`);
  }
  setTimeout(poll, POLL_MS);
}

window.addEventListener('resize', () => {
  for (const entry of streams.values()) {
    for (const [key, plot] of Object.entries(entry.charts)) plot.setSize({ width: chartWidth(entry.containers[key]), height: CHART_HEIGHT });
  }
  if (plannedChart) plannedChart.plot.setSize({ width: chartWidth(document.querySelector('#planned .chart')), height: CHART_HEIGHT });
});

if (typeof uPlot === 'undefined') showProblem('uPlot did not load (/dashboard/assets/uPlot.iife.min.js): run npm run build.');
else void poll();
