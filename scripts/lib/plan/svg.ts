/**
 * The planner's figure: secret key rate per pulse (log scale) against distance, one line per analysis (per
 * block size for the finite-key analysis when several are asked for), with axes, ticks, a legend and a
 * title. Plain string building of SVG elements: every text is XML-escaped, every coordinate a finite number
 * with two decimals; nothing in it is executed (no script, no external reference).
 */
import type { PlanResult } from './run.js';

const WIDTH = 860;
const HEIGHT = 520;
const MARGIN = { left: 90, right: 250, top: 56, bottom: 64 };
/** Decades shown when no analysis has a positive rate. */
const EMPTY_DECADES: [number, number] = [-8, 0];
/** Target number of distance ticks. */
const X_TICKS = 6;
/** Beyond this many decades, label every other one. */
const MAX_LABELLED_DECADES = 10;
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

interface Series {
  label: string;
  points: { x: number; y: number }[];
}

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** A coordinate or number as SVG text: finite, at most two decimals. */
function num(v: number): string {
  if (!Number.isFinite(v)) throw new RangeError(`svg: non-finite coordinate ${v}`);
  return String(Math.round(v * 100) / 100);
}

function seriesOf(results: readonly PlanResult[]): Series[] {
  const out: Series[] = [];
  for (const r of results) {
    const blocks = [...new Set(r.rows.map((row) => (typeof row.pulses === 'number' ? row.pulses : null)))];
    for (const block of blocks) {
      const rows = r.rows.filter((row) => (typeof row.pulses === 'number' ? row.pulses : null) === block);
      const label = blocks.length > 1 && block !== null ? `${r.title}, N = ${block.toExponential(0)}` : r.title;
      const points = rows
        .filter((row) => Number.isFinite(row.rate_per_pulse) && row.rate_per_pulse > 0)
        .map((row) => ({ x: row.distance_km, y: row.rate_per_pulse }));
      out.push({ label, points });
    }
  }
  return out;
}

function niceStep(span: number, ticks: number): number {
  const raw = span / ticks;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const m = raw / magnitude;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * magnitude;
}

export function renderSvg(results: readonly PlanResult[], title: string): string {
  const series = seriesOf(results);
  const distances = results.flatMap((r) => r.rows.map((row) => row.distance_km));
  let xMin = Math.min(...distances);
  let xMax = Math.max(...distances);
  if (!(xMax > xMin)) { xMin -= 1; xMax += 1; }
  const rates = series.flatMap((s) => s.points.map((p) => p.y));
  let [yLo, yHi] = rates.length === 0 ? EMPTY_DECADES : [Math.floor(Math.log10(Math.min(...rates))), Math.ceil(Math.log10(Math.max(...rates)))];
  if (!(yHi > yLo)) yHi = yLo + 1;
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const sx = (x: number): number => MARGIN.left + ((x - xMin) / (xMax - xMin)) * plotW;
  const sy = (rate: number): number => MARGIN.top + ((yHi - Math.log10(rate)) / (yHi - yLo)) * plotH;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`);
  parts.push(`<title>${escapeXml(title)}</title>`);
  parts.push(`<rect x="0" y="0" width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`);
  parts.push(`<text x="${num(MARGIN.left + plotW / 2)}" y="28" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`);
  // Grid and ticks: decades on y, a nice step on x.
  const decadeStep = yHi - yLo > MAX_LABELLED_DECADES ? 2 : 1;
  for (let d = yLo; d <= yHi; d++) {
    const y = sy(10 ** d);
    parts.push(`<line x1="${num(MARGIN.left)}" y1="${num(y)}" x2="${num(MARGIN.left + plotW)}" y2="${num(y)}" stroke="#e0e0e0"/>`);
    if ((d - yLo) % decadeStep === 0) {
      parts.push(`<text x="${num(MARGIN.left - 8)}" y="${num(y + 4)}" text-anchor="end">10<tspan dy="-6" font-size="9">${d}</tspan></text>`);
    }
  }
  const step = niceStep(xMax - xMin, X_TICKS);
  for (let x = Math.ceil(xMin / step) * step; x <= xMax + step * 1e-9; x += step) {
    const px = sx(x);
    parts.push(`<line x1="${num(px)}" y1="${num(MARGIN.top)}" x2="${num(px)}" y2="${num(MARGIN.top + plotH)}" stroke="#f0f0f0"/>`);
    parts.push(`<line x1="${num(px)}" y1="${num(MARGIN.top + plotH)}" x2="${num(px)}" y2="${num(MARGIN.top + plotH + 5)}" stroke="#000000"/>`);
    parts.push(`<text x="${num(px)}" y="${num(MARGIN.top + plotH + 19)}" text-anchor="middle">${num(x)}</text>`);
  }
  parts.push(`<rect x="${num(MARGIN.left)}" y="${num(MARGIN.top)}" width="${num(plotW)}" height="${num(plotH)}" fill="none" stroke="#000000"/>`);
  parts.push(`<text x="${num(MARGIN.left + plotW / 2)}" y="${num(HEIGHT - 18)}" text-anchor="middle">distance (km)</text>`);
  parts.push(`<text x="22" y="${num(MARGIN.top + plotH / 2)}" text-anchor="middle" transform="rotate(-90 22 ${num(MARGIN.top + plotH / 2)})">secret key rate per pulse</text>`);
  // One polyline per series (an empty one when it has no positive rate), then the legend.
  series.forEach((s, i) => {
    const colour = PALETTE[i % PALETTE.length]!;
    const points = s.points.map((p) => `${num(sx(p.x))},${num(sy(p.y))}`).join(' ');
    parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${points}"><title>${escapeXml(s.label)}</title></polyline>`);
    for (const p of s.points) parts.push(`<circle cx="${num(sx(p.x))}" cy="${num(sy(p.y))}" r="2.5" fill="${colour}"/>`);
    const ly = MARGIN.top + 10 + i * 20;
    const lx = MARGIN.left + plotW + 16;
    parts.push(`<line x1="${num(lx)}" y1="${num(ly)}" x2="${num(lx + 24)}" y2="${num(ly)}" stroke="${colour}" stroke-width="2"/>`);
    parts.push(`<text x="${num(lx + 30)}" y="${num(ly + 4)}">${escapeXml(s.points.length === 0 ? `${s.label} (no key)` : s.label)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
