/**
 * The planner's link file: the BB84 channel under the config's `simulator.channel` names plus the source,
 * basis, error-correction and finite-key settings, validated with a zod schema whose every message names
 * the field. The fields and their meaning are listed once, in LINK_FIELDS (used by --help and the docs).
 */
import { readFileSync } from 'node:fs';
import { CORE_SCHEMA, YAMLException, load } from 'js-yaml';
import { z } from 'zod';
import { DECOY_INTENSITY_COUNT, PROBABILITY_SUM_TOLERANCE } from '../../../src/sim/bb84/analysis/decoyCounts.js';
import type { LinkParams } from '../../../src/sim/bb84/analysis/linkModel.js';
import type { PlanSettings } from '../../../src/sim/bb84/analysis/registry.js';

/** A link file that cannot be used: the message names the file and the field. */
export class LinkFileError extends Error {
  override readonly name = 'LinkFileError';
}

/** Every field of a link file, in file order, with its meaning. */
export const LINK_FIELDS: readonly { name: string; required: boolean; meaning: string }[] = [
  { name: 'attenuation_db_per_km', required: true, meaning: 'fibre loss alpha in dB/km (about 0.2 at 1550 nm)' },
  { name: 'detector_efficiency', required: true, meaning: "eta_Bob: Bob's detection efficiency including his optics, in (0, 1]" },
  { name: 'dark_count_probability', required: true, meaning: 'p_dc: dark-count probability per detector and detection window, in [0, 0.5]' },
  { name: 'misalignment_error', required: true, meaning: 'e_mis: probability that a photon detected in its own basis gives the wrong bit, in [0, 0.5]' },
  { name: 'afterpulse_probability', required: false, meaning: 'p_ap: afterpulse probability, in [0, 1] (default 0)' },
  { name: 'pulse_rate_hz', required: false, meaning: 'pulses per second; when given, rows also carry secret_bits_per_s' },
  { name: 'length_km', required: false, meaning: 'ignored (the distances come from --distances); accepted so a simulator.channel section can be pasted' },
  { name: 'intensities', required: true, meaning: '[mu1, mu2, mu3] mean photon numbers, mu1 > mu2 + mu3, mu2 > mu3 >= 0; the asymptotic analyses use mu1 as the signal' },
  { name: 'intensity_probabilities', required: true, meaning: '[p1, p2, p3]: how often Alice sends each intensity, each in (0, 1), summing to 1' },
  { name: 'basis_x_probability', required: true, meaning: 'q_x: probability that Alice (and Bob) choose the key basis X, in (0, 1)' },
  { name: 'ec_efficiency', required: true, meaning: 'f_EC: error-correction inefficiency, leak = f_EC n h(E), >= 1' },
  { name: 'pulses', required: true, meaning: 'N: pulses per privacy-amplification block (finite-key analyses; --pulses overrides)' },
  { name: 'eps_sec', required: true, meaning: 'secrecy parameter eps_sec of the whole protocol, in (0, 1)' },
  { name: 'eps_cor', required: true, meaning: 'correctness parameter eps_cor (error verification), in (0, 1)' },
];

const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
/** Decimal text (e.g. a quoted "1e10") is accepted as a number. */
const toNumber = (v: unknown): unknown => (typeof v === 'string' && DECIMAL.test(v.trim()) ? Number(v.trim()) : v);

function number(expected: string, ok: (n: number) => boolean) {
  return z.preprocess(toNumber, z.number({ error: `expected ${expected}` }).refine((n) => Number.isFinite(n) && ok(n), { message: `expected ${expected}` }));
}

const triple = (expected: string, ok: (n: number) => boolean) => z
  .array(number(expected, ok), { error: `expected a list of ${DECOY_INTENSITY_COUNT} numbers` })
  .length(DECOY_INTENSITY_COUNT, { message: `expected a list of ${DECOY_INTENSITY_COUNT} numbers` });

export const linkFileSchema = z.strictObject({
  attenuation_db_per_km: number('a number >= 0', (n) => n >= 0),
  detector_efficiency: number('a number greater than 0 and at most 1', (n) => n > 0 && n <= 1),
  dark_count_probability: number('a number between 0 and 0.5', (n) => n >= 0 && n <= 0.5),
  misalignment_error: number('a number between 0 and 0.5', (n) => n >= 0 && n <= 0.5),
  afterpulse_probability: number('a number between 0 and 1', (n) => n >= 0 && n <= 1).optional(),
  pulse_rate_hz: number('a number greater than 0', (n) => n > 0).optional(),
  length_km: z.unknown().optional(),
  intensities: triple('a number >= 0', (n) => n >= 0),
  intensity_probabilities: triple('a number greater than 0 and less than 1', (n) => n > 0 && n < 1),
  basis_x_probability: number('a number greater than 0 and less than 1', (n) => n > 0 && n < 1),
  ec_efficiency: number('a number >= 1', (n) => n >= 1),
  pulses: number('a number greater than 0', (n) => n > 0),
  eps_sec: number('a number greater than 0 and less than 1', (n) => n > 0 && n < 1),
  eps_cor: number('a number greater than 0 and less than 1', (n) => n > 0 && n < 1),
}).superRefine((f, ctx) => {
  const [mu1, mu2, mu3] = f.intensities as [number, number, number];
  if (!(mu2 > mu3)) ctx.addIssue({ code: 'custom', path: ['intensities'], message: `expected mu2 > mu3 (Lim 2014), got mu2 = ${mu2}, mu3 = ${mu3}` });
  if (!(mu1 > mu2 + mu3)) ctx.addIssue({ code: 'custom', path: ['intensities'], message: `expected mu1 > mu2 + mu3 (Lim 2014), got mu1 = ${mu1}, mu2 + mu3 = ${mu2 + mu3}` });
  const sum = f.intensity_probabilities.reduce((a, b) => a + b, 0);
  if (Math.abs(sum - 1) > PROBABILITY_SUM_TOLERANCE) ctx.addIssue({ code: 'custom', path: ['intensity_probabilities'], message: `expected probabilities summing to 1, got ${sum}` });
});

export type LinkFile = z.infer<typeof linkFileSchema>;

/** A validated link, without its length (the planner sets it per distance). */
export interface PlanLink {
  link: Omit<LinkParams, 'lengthKm'>;
  settings: PlanSettings;
  pulseRateHz?: number;
}

export function parseLinkFile(text: string, shown: string): PlanLink {
  let raw: unknown;
  try {
    raw = load(text, { schema: CORE_SCHEMA, filename: shown });
  } catch (err) {
    if (err instanceof YAMLException) {
      const line = err.mark !== undefined ? ` (line ${err.mark.line + 1})` : '';
      throw new LinkFileError(`${shown}: not valid YAML: ${err.reason}${line}`);
    }
    throw err;
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new LinkFileError(`${shown}: expected a mapping of link fields (see --help)`);
  const result = linkFileSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = issue.path.map(String).join('.') || 'top level';
    const message = issue.code === 'unrecognized_keys'
      ? `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')} (known: ${LINK_FIELDS.map((f) => f.name).join(', ')})`
      : issue.path.length === 1 && (raw as Record<string, unknown>)[String(issue.path[0])] == null ? 'missing (required)' : issue.message.split('\n')[0];
    throw new LinkFileError(`${shown}: ${field}: ${message}`);
  }
  const f = result.data;
  return {
    link: {
      attenuationDbPerKm: f.attenuation_db_per_km,
      detectorEfficiency: f.detector_efficiency,
      darkCountProbability: f.dark_count_probability,
      misalignmentError: f.misalignment_error,
      afterpulseProbability: f.afterpulse_probability ?? 0,
    },
    settings: {
      intensities: f.intensities,
      probabilities: f.intensity_probabilities,
      pX: f.basis_x_probability,
      fEC: f.ec_efficiency,
      pulses: f.pulses,
      epsSec: f.eps_sec,
      epsCor: f.eps_cor,
    },
    ...(f.pulse_rate_hz !== undefined ? { pulseRateHz: f.pulse_rate_hz } : {}),
  };
}

export function readLinkFile(path: string): PlanLink {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new LinkFileError(`${path}: cannot read the link file (${code === 'ENOENT' ? 'no such file' : (code ?? (err as Error).message)})`);
  }
  return parseLinkFile(text, path);
}
