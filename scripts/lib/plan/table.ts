/** The planner's readable output: one table per analysis, fixed columns, numbers in short scientific form. */
import type { PlanResult, PlanRow } from './run.js';

interface Column {
  header: string;
  cell(row: PlanRow): string;
}

const sci = (v: number): string => (v === 0 ? '0' : Number.isFinite(v) ? v.toExponential(3) : 'inf');

function columnsFor(result: PlanResult): Column[] {
  const has = (key: string): boolean => result.rows.some((r) => r[key] !== undefined);
  const cols: Column[] = [
    { header: 'km', cell: (r) => String(r.distance_km) },
    { header: 'rate/pulse', cell: (r) => sci(r.rate_per_pulse) },
    { header: 'QBER', cell: (r) => (r.qber === null ? '-' : `${(r.qber * 100).toFixed(3)} %`) },
  ];
  if (has('secret_bits_per_s')) cols.push({ header: 'bit/s', cell: (r) => sci(r.secret_bits_per_s as number) });
  if (has('pulses')) cols.push({ header: 'pulses', cell: (r) => sci(r.pulses as number) });
  if (has('n_x')) cols.push({ header: 'n_X', cell: (r) => (r.n_x === null ? '-' : sci(r.n_x as number)) });
  if (has('key_bits')) cols.push({ header: 'key bits', cell: (r) => String(r.key_bits) });
  if (has('abort')) cols.push({ header: 'abort', cell: (r) => (r.abort === null ? '-' : String(r.abort)) });
  return cols;
}

export function formatTables(results: readonly PlanResult[]): string {
  return results.map((result) => {
    const cols = columnsFor(result);
    const cells = result.rows.map((r) => cols.map((c) => c.cell(r)));
    const widths = cols.map((c, i) => Math.max(c.header.length, ...cells.map((row) => row[i]!.length)));
    const line = (values: string[]): string => values.map((v, i) => v.padStart(widths[i]!)).join('  ');
    return [`${result.analysis}: ${result.title}`, line(cols.map((c) => c.header)), ...cells.map(line)].join('\n');
  }).join('\n\n') + '\n';
}
