/**
 * A Prometheus histogram for the hot path (every HTTP request, every store call): an observation is a
 * bucket search and three additions on a series the caller keeps, with no label hashing or validation
 * per call (prom-client's Histogram does both on every observe). It renders its own lines
 * (`_bucket{...,le=...}`, `_sum`, `_count`) from label text escaped once per series, so a scrape does
 * not pay prom-client's per-line formatting for its hundreds of lines either; ModuleMetrics appends
 * them to the registry's exposition.
 */

/** A label value as the exposition format writes it (backslash, newline and double quote escaped). */
function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** A sample value as prom-client writes it. */
function valueText(value: number): string {
  if (Number.isNaN(value)) return 'Nan';
  if (!Number.isFinite(value)) return value < 0 ? '-Inf' : '+Inf';
  return String(value);
}

export class HistogramSeries {
  /** Observations per bucket (not cumulative); the last slot is above the largest bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    /** `name="value",...` of this series, escaped. */
    readonly labelText: string,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

export class LiteHistogram<L extends string> {
  private readonly all = new Map<string, HistogramSeries>();
  /** `le="..."` of each bound, and of +Inf. */
  private readonly leText: readonly string[];

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly L[],
    private readonly bounds: readonly number[],
  ) {
    this.leText = [...bounds.map((b) => `le="${String(b)}"`), 'le="+Inf"'];
  }

  /** The series of these label values (created on first use). Keep it: observing through it costs no lookup. */
  series(labels: Readonly<Record<L, string>>): HistogramSeries {
    const key = this.labelNames.map((n) => labels[n]).join('\u0000');
    let s = this.all.get(key);
    if (!s) {
      s = new HistogramSeries(this.labelNames.map((n) => `${n}="${escapeLabelValue(labels[n])}"`).join(','), this.bounds);
      this.all.set(key, s);
    }
    return s;
  }

  /** HELP, TYPE and every series' lines, in the text exposition format 0.0.4 (no trailing newline). */
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${this.name} histogram`];
    for (const s of this.all.values()) {
      const prefix = s.labelText === '' ? '' : `${s.labelText},`;
      let cumulative = 0;
      for (let i = 0; i < this.leText.length; i++) {
        cumulative += s.counts[i]!;
        lines.push(`${this.name}_bucket{${prefix}${this.leText[i]}} ${valueText(cumulative)}`);
      }
      const labels = s.labelText === '' ? '' : `{${s.labelText}}`;
      lines.push(`${this.name}_sum${labels} ${valueText(s.sum)}`, `${this.name}_count${labels} ${valueText(s.count)}`);
    }
    return lines.join('\n');
  }
}
