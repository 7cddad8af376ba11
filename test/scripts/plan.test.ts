/**
 * The planning tool (scripts/plan.ts): its main function in-process for the outputs and errors, and the
 * compiled dist/scripts/plan.js (built by `npx tsc -p tsconfig.json` / `npm test`) for exit codes.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../scripts/lib/plan/cli.js';
import { escapeXml } from '../../scripts/lib/plan/svg.js';
import { ANALYSES, ANALYSIS_NAMES } from '../../src/sim/bb84/analysis/registry.js';

const DEFAULT_LINK = 'config/links/default.yaml';
const dir = mkdtempSync(join(tmpdir(), 'plan-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[]): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const code = main(args, { stdout: (t) => { out += t; }, stderr: (t) => { err += t; } });
  return { code, out, err };
}

/** A link file with one field changed (undefined: removed). */
function linkWith(changes: Record<string, string | undefined>): string {
  const lines = readFileSync(DEFAULT_LINK, 'utf8').split('\n').filter((l) => !Object.keys(changes).some((k) => l.startsWith(`${k}:`)));
  for (const [k, v] of Object.entries(changes)) if (v !== undefined) lines.push(`${k}: ${v}`);
  const file = join(dir, `link-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, lines.join('\n'));
  return file;
}

/**
 * Minimal well-formedness check: every tag closes in order, attributes are quoted, no text outside the root,
 * no raw '<' or '&' in text. Returns the element names in document order.
 */
function wellFormedElements(xml: string): string[] {
  const names: string[] = [];
  const stack: string[] = [];
  const token = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|([^<]+)/gy;
  let m: RegExpExecArray | null;
  let pos = 0;
  const body = xml.trim();
  while (pos < body.length) {
    token.lastIndex = pos;
    m = token.exec(body);
    if (m === null) throw new Error(`not well-formed at ${pos}: ${body.slice(pos, pos + 40)}`);
    pos = token.lastIndex;
    const [, closing, name, , selfClosing, text] = m;
    if (text !== undefined) {
      if (stack.length === 0 && text.trim() !== '') throw new Error('text outside the root element');
      if (/&(?!(amp|lt|gt|quot|apos);)/.test(text)) throw new Error(`raw & in text: ${text}`);
      continue;
    }
    if (closing) {
      if (stack.pop() !== name) throw new Error(`</${name}> closes the wrong element`);
    } else {
      if (stack.length === 0 && names.length > 0) throw new Error('second root element');
      names.push(name!);
      if (!selfClosing) stack.push(name!);
    }
  }
  if (stack.length > 0) throw new Error(`unclosed ${stack.join(', ')}`);
  return names;
}

describe('npm run plan: output', () => {
  it('when two analyses are asked for with --json, then an array holds one {analysis, rows} object each with the library\'s numbers', () => {
    const r = run(['--link', DEFAULT_LINK, '--analysis', 'lim2014,infinite-decoy', '--distances', '0,25,50', '--json']);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    const body = JSON.parse(r.out) as { analysis: string; rows: Record<string, number | string | null>[] }[];
    expect(body.map((b) => b.analysis)).toEqual(['lim2014', 'infinite-decoy']);
    for (const b of body) {
      expect(b.rows.map((row) => row.distance_km)).toEqual([0, 25, 50]);
      const rates = b.rows.map((row) => row.rate_per_pulse as number);
      expect(rates[0]!).toBeGreaterThan(rates[1]!);
      expect(rates[1]!).toBeGreaterThan(rates[2]!);
      expect(rates[2]!).toBeGreaterThan(0);
      for (const row of b.rows) expect(row.qber as number).toBeGreaterThan(0.009);
    }
    // The tool adds nothing to the analysis: the 25 km lim2014 row is the registry's.
    const link = { attenuationDbPerKm: 0.2, detectorEfficiency: 0.1, darkCountProbability: 1e-6, misalignmentError: 0.01, afterpulseProbability: 0, lengthKm: 25 };
    const settings = { intensities: [0.55, 0.2, 2e-4], probabilities: [0.7, 0.2, 0.1], pX: 0.9, fEC: 1.16, pulses: 1e10, epsSec: 1e-10, epsCor: 1e-15 };
    expect(body[0]!.rows[1]!.rate_per_pulse).toBe(ANALYSES.lim2014.evaluate(link, settings).rate_per_pulse);
    expect(body[0]!.rows[1]!.secret_bits_per_s).toBeCloseTo((body[0]!.rows[1]!.rate_per_pulse as number) * 1e8, 6);
  });

  it('when one analysis is asked for with --json, then the output is its single object', () => {
    const r = run(['--link', 'config/links/gys.yaml', '--analysis', 'no-decoy', '--distances', '0', '--json']);
    expect(r.code).toBe(0);
    const body = JSON.parse(r.out) as { analysis: string; rows: unknown[] };
    expect(body.analysis).toBe('no-decoy');
    expect(body.rows).toHaveLength(1);
  });

  it('when several block sizes are given, then lim2014 has a row per distance and block, and the table shows them', () => {
    const r = run(['--link', 'config/links/lim2014.yaml', '--analysis', 'lim2014', '--distances', '25', '--pulses', '1e9,1e10,1e11']);
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines[0]).toBe('lim2014: finite key (Lim 2014)');
    expect(lines[1]).toMatch(/km\s+rate\/pulse\s+QBER\s+pulses\s+n_X\s+key bits\s+abort/);
    expect(lines).toHaveLength(5);
    const json = JSON.parse(run(['--link', 'config/links/lim2014.yaml', '--analysis', 'lim2014', '--distances', '25', '--pulses', '1e9,1e10,1e11', '--json']).out) as { rows: { pulses: number; rate_per_pulse: number }[] };
    expect(json.rows.map((row) => row.pulses)).toEqual([1e9, 1e10, 1e11]);
    expect(json.rows[2]!.rate_per_pulse).toBeGreaterThan(json.rows[0]!.rate_per_pulse);
  });

  it('when --svg is given, then a well-formed figure has one polyline per analysis, axes, a legend and the title', () => {
    const out = join(dir, 'rate.svg');
    const names = ['infinite-decoy', 'vacuum-weak', 'no-decoy', 'lim2014', 'plob'];
    const r = run(['--link', DEFAULT_LINK, '--analysis', names.join(','), '--distances', '0,25,50,100,150', '--svg', out, '--title', 'Default link <& "decoys">']);
    expect(r.code).toBe(0);
    const svg = readFileSync(out, 'utf8');
    const elements = wellFormedElements(svg);
    expect(elements[0]).toBe('svg');
    expect(elements.filter((e) => e === 'polyline')).toHaveLength(names.length);
    expect(svg).toContain(escapeXml('Default link <& "decoys">'));
    expect(svg).toContain('distance (km)');
    expect(svg).toContain('secret key rate per pulse');
    for (const n of names) expect(svg).toContain(escapeXml(ANALYSES[n as keyof typeof ANALYSES].title));
    expect(svg).toContain('no decoy (GLLP) (no key)');
    expect(svg).not.toMatch(/<script|javascript:|href=/i);
    expect(svg).not.toMatch(/NaN|Infinity/);
  });

  it('when --help is asked, then every analysis and every link field is listed', () => {
    const r = run(['--help']);
    expect(r.code).toBe(0);
    for (const n of ANALYSIS_NAMES) expect(r.out).toContain(n);
    for (const f of ['attenuation_db_per_km', 'detector_efficiency', 'dark_count_probability', 'misalignment_error', 'pulse_rate_hz', 'afterpulse_probability', 'intensities', 'intensity_probabilities', 'basis_x_probability', 'ec_efficiency', 'pulses', 'eps_sec', 'eps_cor']) {
      expect(r.out).toContain(f);
    }
  });
});

describe('npm run plan: bad input', () => {
  const base = ['--link', DEFAULT_LINK, '--analysis', 'lim2014', '--distances', '0,25'];
  const cases: [string, string[], RegExp][] = [
    ['an unknown analysis', ['--link', DEFAULT_LINK, '--analysis', 'lim2014,bb84-magic', '--distances', '0'], /--analysis: unknown analysis "bb84-magic"/],
    ['a distance that is not a number', ['--link', DEFAULT_LINK, '--analysis', 'plob', '--distances', '0,x,50'], /--distances: "x" is not a distance/],
    ['a negative distance', ['--link', DEFAULT_LINK, '--analysis', 'plob', '--distances', '0,-5'], /--distances: "-5" is not a distance/],
    ['an empty distance entry', ['--link', DEFAULT_LINK, '--analysis', 'plob', '--distances', '0,,50'], /--distances: "" is not/],
    ['a missing --distances', ['--link', DEFAULT_LINK, '--analysis', 'plob'], /--distances is required/],
    ['a bad block size', [...base, '--pulses', '1e9,0'], /--pulses: "0" is not/],
    ['an unknown option', [...base, '--fast'], /Unknown option '--fast'/],
    ['a missing link file', ['--link', join(dir, 'nope.yaml'), '--analysis', 'plob', '--distances', '0'], /nope\.yaml: cannot read the link file \(no such file\)/],
    ['a link file without eps_sec', ['--link', linkWith({ eps_sec: undefined }), '--analysis', 'plob', '--distances', '0'], /eps_sec: missing \(required\)/],
    ['a link file with an unknown field', ['--link', linkWith({ mean_photon_number: '0.5' }), '--analysis', 'plob', '--distances', '0'], /unknown field mean_photon_number/],
    ['intensities out of order', ['--link', linkWith({ intensities: '[0.2, 0.3, 0.0002]' }), '--analysis', 'plob', '--distances', '0'], /intensities: expected mu1 > mu2 \+ mu3/],
    ['probabilities not summing to 1', ['--link', linkWith({ intensity_probabilities: '[0.5, 0.2, 0.1]' }), '--analysis', 'plob', '--distances', '0'], /intensity_probabilities: expected probabilities summing to 1/],
    ['a detector efficiency above 1', ['--link', linkWith({ detector_efficiency: '1.5' }), '--analysis', 'plob', '--distances', '0'], /detector_efficiency: expected a number greater than 0 and at most 1/],
    ['a text where a number belongs', ['--link', linkWith({ pulses: 'many' }), '--analysis', 'plob', '--distances', '0'], /pulses: expected a number greater than 0/],
    ['a file that is not YAML', ['--link', linkWith({ 'eps_cor': '[1, ' }), '--analysis', 'plob', '--distances', '0'], /not valid YAML/],
  ];
  for (const [what, args, message] of cases) {
    it(`when given ${what}, then it exits 2 with a message naming it`, () => {
      const r = run(args);
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toMatch(message);
    });
  }
});

describe('the compiled tool (dist/scripts/plan.js)', () => {
  const tool = 'dist/scripts/plan.js';
  it('when run, then it exits 0 with JSON rows, and 2 with a message for an unknown analysis', () => {
    expect(existsSync(tool), 'build first: npx tsc -p tsconfig.json').toBe(true);
    const ok = spawnSync(process.execPath, [tool, '--link', DEFAULT_LINK, '--analysis', 'vacuum-weak', '--distances', '0,50', '--json'], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    const body = JSON.parse(ok.stdout) as { analysis: string; rows: { distance_km: number; rate_per_pulse: number }[] };
    expect(body.analysis).toBe('vacuum-weak');
    expect(body.rows.map((row) => row.distance_km)).toEqual([0, 50]);
    const bad = spawnSync(process.execPath, [tool, '--link', DEFAULT_LINK, '--analysis', 'magic', '--distances', '0'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown analysis "magic"/);
  });
});
