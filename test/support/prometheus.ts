/** Parses the Prometheus text exposition (format 0.0.4) for assertions: one sample per line. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Every sample line; throws on a line that is neither a comment, blank nor a well-formed sample. */
export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\"/g, '"').replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
    // Prometheus parses values with Go's ParseFloat: +Inf, -Inf and NaN in any case (prom-client writes "Nan").
    const text = m[3]!.toLowerCase();
    const value = text === '+inf' ? Infinity : text === '-inf' ? -Infinity : text === 'nan' ? NaN : Number(m[3]);
    if (Number.isNaN(value) && text !== 'nan') throw new Error(`bad value: ${line}`);
    out.push({ name: m[1]!, labels, value });
  }
  return out;
}

/** The samples of one metric whose labels include `match`. */
export function samples(all: Sample[], name: string, match: Record<string, string> = {}): Sample[] {
  return all.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

/** The value of the one sample of `name` with labels including `match`; undefined when there is none. */
export function valueOf(all: Sample[], name: string, match: Record<string, string> = {}): number | undefined {
  const found = samples(all, name, match);
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(match)}`);
  return found[0]?.value;
}

/** TYPE lines: metric name -> type. */
export function typesOf(text: string): Map<string, string> {
  const types = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(m[1]!, m[2]!);
  return types;
}

/** A sample as one comparable line (labels sorted by name). */
export function canonical(s: Sample): string {
  const labels = Object.keys(s.labels).sort().map((k) => `${k}=${JSON.stringify(s.labels[k])}`).join(',');
  return `${s.name}{${labels}} ${s.value}`;
}
