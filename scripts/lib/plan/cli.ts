/**
 * The planner's command line: arguments, --help, output (table, JSON, SVG) and exit codes.
 * Exit codes: 0 ok, 2 usage or input error (the message names the argument or field), 1 failure to write.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ANALYSES, ANALYSIS_NAMES, isAnalysisName, type AnalysisName } from '../../../src/sim/bb84/analysis/registry.js';
import { LINK_FIELDS, LinkFileError, readLinkFile } from './linkFile.js';
import { runPlan, type PlanResult } from './run.js';
import { renderSvg } from './svg.js';
import { formatTables } from './table.js';

export interface PlanIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** Limits on what one run computes. */
const MAX_DISTANCES = 1000;
const MAX_DISTANCE_KM = 1000;
const MAX_BLOCK_SIZES = 50;

export const USAGE = [
  'usage: npm run plan -- --link FILE.yaml --analysis NAME[,NAME...] --distances D1,D2,... [--pulses N1,N2,...] [--json] [--svg OUT.svg] [--title TEXT]',
  '  --link FILE       the link file (YAML; fields below)',
  `  --analysis NAMES  comma-separated, from: ${ANALYSIS_NAMES.join(', ')}`,
  `  --distances LIST  fibre lengths in km, comma-separated, each in [0, ${MAX_DISTANCE_KM}], at most ${MAX_DISTANCES}`,
  `  --pulses LIST     block sizes N for the finite-key analysis (lim2014), instead of the file's pulses; at most ${MAX_BLOCK_SIZES}`,
  '  --json            print JSON instead of tables: one {"analysis", "rows"} object for one analysis, an array of them for several;',
  '                    each row has distance_km, rate_per_pulse (secret bits per pulse), qber and the analysis\'s extras (non-finite numbers are null)',
  '  --svg OUT.svg     also write the figure: rate per pulse (log scale) against distance, one line per analysis',
  '  --title TEXT      the figure\'s title (default: the link file name)',
  '',
  'analyses:',
  ...ANALYSIS_NAMES.map((n) => `  ${n.padEnd(19)} ${ANALYSES[n].summary}`),
  '',
  'link file fields (* required):',
  ...LINK_FIELDS.map((f) => `  ${(f.name + (f.required ? ' *' : '')).padEnd(25)} ${f.meaning}`),
].join('\n');

class UsageError extends Error {}

function list(option: string, text: string, max: number, ok: (n: number) => boolean, expected: string): number[] {
  const items = text.split(',').map((s) => s.trim());
  if (items.length > max) throw new UsageError(`--${option}: at most ${max} values, got ${items.length}`);
  return items.map((item) => {
    const n = item === '' ? Number.NaN : Number(item);
    if (!(Number.isFinite(n) && ok(n))) throw new UsageError(`--${option}: ${JSON.stringify(item)} is not ${expected}`);
    return n;
  });
}

function analysesFrom(text: string): AnalysisName[] {
  const names = text.split(',').map((s) => s.trim());
  const unknown = names.filter((n) => !isAnalysisName(n));
  if (unknown.length > 0) throw new UsageError(`--analysis: unknown analysis ${unknown.map((n) => JSON.stringify(n)).join(', ')} (known: ${ANALYSIS_NAMES.join(', ')})`);
  return [...new Set(names as AnalysisName[])];
}

/** JSON with non-finite numbers (PLOB on a lossless link) as null. */
export function toJson(results: readonly PlanResult[]): string {
  const body = results.map((r) => ({ analysis: r.analysis, rows: r.rows }));
  return JSON.stringify(body.length === 1 ? body[0] : body, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2);
}

export function main(argv: readonly string[], io: PlanIo): number {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        link: { type: 'string' },
        analysis: { type: 'string' },
        distances: { type: 'string' },
        pulses: { type: 'string' },
        json: { type: 'boolean' },
        svg: { type: 'string' },
        title: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    io.stderr(`plan: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (parsed.help) {
    io.stdout(`${USAGE}\n`);
    return 0;
  }
  let results: PlanResult[];
  try {
    for (const required of ['link', 'analysis', 'distances'] as const) {
      if (parsed[required] === undefined) throw new UsageError(`--${required} is required`);
    }
    const analyses = analysesFrom(parsed.analysis!);
    const distances = list('distances', parsed.distances!, MAX_DISTANCES, (n) => n >= 0 && n <= MAX_DISTANCE_KM, `a distance in km in [0, ${MAX_DISTANCE_KM}]`);
    const pulses = parsed.pulses === undefined ? undefined : list('pulses', parsed.pulses, MAX_BLOCK_SIZES, (n) => n > 0, 'a number of pulses > 0');
    const plan = readLinkFile(parsed.link!);
    results = runPlan({ plan, analyses, distances, ...(pulses !== undefined ? { pulses } : {}) });
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`plan: ${err.message}\n${USAGE}\n`);
      return 2;
    }
    if (err instanceof LinkFileError || err instanceof RangeError) {
      io.stderr(`plan: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  io.stdout(parsed.json ? `${toJson(results)}\n` : formatTables(results));
  if (parsed.svg !== undefined) {
    try {
      writeFileSync(parsed.svg, renderSvg(results, parsed.title ?? `Secret key rate per pulse: ${parsed.link!}`));
    } catch (err) {
      io.stderr(`plan: cannot write ${parsed.svg}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
      return 1;
    }
  }
  return 0;
}
