/**
 * Lim et al. 2014 (PRA 89, 022307, sec. IV) optimise the secret key rate l / N numerically over the free
 * parameters {q_x, p_mu1, p_mu2, mu1, mu2} with mu3 fixed (2e-4), for a fixed post-processing block n_X or
 * a fixed number of pulses N, and with eps_sec either fixed or proportional to the key (eps_sec = kappa l,
 * their choice, kappa = 1e-15). This reproduces that search: random starts from a fixed seed, then
 * Nelder-Mead (optimise.ts) from the best few. Deterministic for given inputs.
 *
 * The objective is eq. (1) before the floor, divided by N, and carried on continuously where the bounds
 * abort (s_X1 <= 0: its h-term is dropped; phi_X >= 1/2: h = 1), so the search can climb from settings that
 * give no key into those that do. Positive objective <=> a key (of length floor(objective · N)).
 */
import { binaryEntropy } from './entropy.js';
import type { ExpectedCountSettings } from './decoyCounts.js';
import { lim2014Penalty, PHASE_ERROR_LIMIT } from './lim2014.js';
import { lim2014Rate, pulsesForKeyBlock, type Lim2014Rate } from './lim2014Rate.js';
import type { LinkParams } from './linkModel.js';
import { minimise } from './optimise.js';

export interface Lim2014Search {
  /** The fixed third intensity mu3. */
  mu3: number;
  epsCor: number;
  fEC: number;
  /** Either a fixed key block n_X (N follows) or a fixed number of pulses N. */
  block: { nX: number } | { pulses: number };
  /** eps_sec fixed, or eps_sec = kappa · l (Lim et al.'s choice). */
  secrecy: { epsSec: number } | { kappa: number };
  /** Random starting points (default 400). */
  samples?: number;
  /** Seed of the starting points (default 1). */
  seed?: number;
  /** A known good setting to start from as well (e.g. the optimum at a nearby distance). */
  start?: Omit<ExpectedCountSettings, 'pulses' | 'epsSec' | 'epsCor'>;
}

export interface Lim2014Optimum {
  settings: ExpectedCountSettings;
  result: Lim2014Rate;
  /** The objective at the optimum (> 0 iff a key). */
  objective: number;
}

/** eps_sec = kappa l is a fixed point; a few iterations from kappa · n_X settle it. */
const SECRECY_ITERATIONS = 8;
/** Nelder-Mead runs from the best random starts, and their budget. */
const REFINED_STARTS = 3;
const EVALUATIONS_PER_RUN = 1200;
/** The epsilon of the fixed point never exceeds this (eq. 1 needs eps_sec < 1). */
const MAX_EPS_SEC = 0.5;

type Free = Omit<ExpectedCountSettings, 'pulses' | 'epsSec' | 'epsCor'>;

export function optimiseLim2014(link: LinkParams, search: Lim2014Search): Lim2014Optimum | undefined {
  const { mu3 } = search;
  const decode = (x: number[]): Free => {
    const a = Math.exp(x[1]!);
    const b = Math.exp(x[2]!);
    const mu2 = mu3 + Math.exp(x[3]!);
    return {
      pX: 1 / (1 + Math.exp(-x[0]!)),
      probabilities: [a / (a + b + 1), b / (a + b + 1), 1 / (a + b + 1)],
      intensities: [mu2 + mu3 + Math.exp(x[4]!), mu2, mu3],
    };
  };
  const encode = (f: Free): number[] => {
    const [p1, p2, p3] = f.probabilities as [number, number, number];
    const [mu1, mu2] = f.intensities as [number, number, number];
    return [Math.log(f.pX / (1 - f.pX)), Math.log(p1 / p3), Math.log(p2 / p3), Math.log(mu2 - mu3), Math.log(mu1 - mu2 - mu3)];
  };
  const evaluate = (free: Free): Lim2014Optimum | undefined => {
    let eps = 'epsSec' in search.secrecy ? search.secrecy.epsSec : Math.min(MAX_EPS_SEC, search.secrecy.kappa * ('nX' in search.block ? search.block.nX : 1));
    let best: Lim2014Optimum | undefined;
    for (let i = 0; i < SECRECY_ITERATIONS; i++) {
      const partial = { ...free, epsSec: eps, epsCor: search.epsCor };
      const pulses = 'nX' in search.block ? pulsesForKeyBlock(link, partial, search.block.nX) : search.block.pulses;
      if (!Number.isFinite(pulses) || pulses <= 0) return undefined;
      const settings = { ...partial, pulses };
      const result = lim2014Rate(link, settings, search.fEC);
      best = { settings, result, objective: objective(result, settings) };
      if ('epsSec' in search.secrecy) break;
      const next = Math.min(MAX_EPS_SEC, search.secrecy.kappa * Math.max(result.length, 1));
      if (Math.abs(Math.log(next / eps)) < 1e-9) break;
      eps = next;
    }
    return best;
  };
  const score = (x: number[]): number => {
    const r = evaluate(decode(x));
    return r === undefined || !Number.isFinite(r.objective) ? Number.POSITIVE_INFINITY : -r.objective;
  };
  let seed = search.seed ?? 1;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648; // a fixed LCG: reproducible starting points
    return seed / 2147483648;
  };
  const starts: { x: number[]; value: number }[] = [];
  if (search.start !== undefined) starts.push({ x: encode(search.start), value: score(encode(search.start)) });
  for (let i = 0; i < (search.samples ?? 400); i++) {
    // q_x in about (0.01, 0.99), probability ratios e^-4 .. e^4, mu2 - mu3 in (1e-3, 0.6), mu1 - mu2 - mu3 in (0.02, 1.5)
    const x = [-4.6 + 9.2 * random(), -4 + 8 * random(), -4 + 8 * random(), Math.log(1e-3) + Math.log(600) * random(), Math.log(0.02) + Math.log(75) * random()];
    starts.push({ x, value: score(x) });
  }
  starts.sort((a, b) => a.value - b.value);
  let bestX = starts[0]!.x;
  let bestValue = starts[0]!.value;
  for (const s of starts.slice(0, REFINED_STARTS)) {
    const run = minimise(score, s.x, { step: 0.3, tolerance: 1e-10, maxEvaluations: EVALUATIONS_PER_RUN });
    if (run.value < bestValue) { bestValue = run.value; bestX = run.x; }
  }
  return Number.isFinite(bestValue) ? evaluate(decode(bestX)) : undefined;
}

function objective(r: Lim2014Rate, s: ExpectedCountSettings): number {
  if (r.length > 0) return r.length / s.pulses;
  const b = r.bounds;
  if (b === undefined) return Number.NEGATIVE_INFINITY;
  const phi = Number.isFinite(b.phiX) ? Math.min(PHASE_ERROR_LIMIT, b.phiX) : PHASE_ERROR_LIMIT;
  const privacy = b.sX1 > 0 ? b.sX1 * binaryEntropy(phi) : 0;
  const raw = b.sX0 + b.sX1 - privacy - r.lambdaEC - lim2014Penalty(s.epsSec, s.epsCor);
  return Math.min(raw, 0) / s.pulses;
}
