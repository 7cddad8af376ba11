/**
 * What the three-intensity decoy analysis (Lim, Curty, Walenta, Xu, Zbinden, PRA 89, 022307 (2014), sec. II)
 * takes in: Alice's intensity settings and the per-intensity counts of one privacy-amplification block, and
 * the counts a given link is expected to produce (their sec. IV), for the planner and for comparing a
 * simulated block with its plan.
 *
 * Index k of every array is the intensity intensities[k]; intensities[0] = mu1 is the signal,
 * intensities[1] = mu2 the weak decoy, intensities[2] = mu3 the (near-)vacuum decoy.
 */
import { pulseStatistics, validateLinkParams, type LinkParams } from './linkModel.js';

/** Lim 2014 is written for exactly three intensities (two decoys). */
export const DECOY_INTENSITY_COUNT = 3;
/** The intensity probabilities must sum to 1 within this (they are configured decimals). */
export const PROBABILITY_SUM_TOLERANCE = 1e-9;

export interface DecoySettings {
  /** [mu1, mu2, mu3] with mu1 > mu2 + mu3 and mu2 > mu3 >= 0 (mean photon numbers). */
  intensities: number[];
  /** [p_mu1, p_mu2, p_mu3]: probability that Alice picks each intensity, each in (0, 1), summing to 1. */
  probabilities: number[];
  /** Secrecy parameter eps_sec of the whole protocol, in (0, 1). */
  epsSec: number;
  /** Correctness parameter eps_cor (error verification), in (0, 1). */
  epsCor: number;
}

/** Observed (integer) or expected (real) counts of one block, per intensity. */
export interface DecoyCounts {
  /** n_{X,k}: detections with both bases X (the key basis). */
  nX: number[];
  /** n_{Z,k}: detections with both bases Z (the test basis). */
  nZ: number[];
  /** m_{Z,k}: bit errors among the n_{Z,k} (all Z detections are disclosed). */
  mZ: number[];
  /** m_{X,k}: bit errors among the n_{X,k}, when known (reported only; the bound does not use them). */
  mX?: number[];
}

export function validateDecoySettings(s: DecoySettings): void {
  const { intensities: mu, probabilities: p } = s;
  if (!Array.isArray(mu) || mu.length !== DECOY_INTENSITY_COUNT) {
    throw new RangeError(`intensities must list ${DECOY_INTENSITY_COUNT} mean photon numbers [mu1, mu2, mu3], got ${JSON.stringify(mu)}`);
  }
  mu.forEach((v, k) => {
    if (!(Number.isFinite(v) && v >= 0)) throw new RangeError(`intensities[${k}] must be a finite number >= 0, got ${v}`);
  });
  const [mu1, mu2, mu3] = mu as [number, number, number];
  if (!(mu2 > mu3)) throw new RangeError(`intensities must satisfy mu2 > mu3 (Lim 2014), got mu2 = ${mu2}, mu3 = ${mu3}`);
  if (!(mu1 > mu2 + mu3)) throw new RangeError(`intensities must satisfy mu1 > mu2 + mu3 (Lim 2014), got mu1 = ${mu1}, mu2 + mu3 = ${mu2 + mu3}`);
  if (!Array.isArray(p) || p.length !== DECOY_INTENSITY_COUNT) {
    throw new RangeError(`probabilities must list ${DECOY_INTENSITY_COUNT} values, one per intensity, got ${JSON.stringify(p)}`);
  }
  p.forEach((v, k) => {
    if (!(v > 0 && v < 1)) throw new RangeError(`probabilities[${k}] must be in (0, 1), got ${v}`);
  });
  const sum = p.reduce((a, b) => a + b, 0);
  if (Math.abs(sum - 1) > PROBABILITY_SUM_TOLERANCE) throw new RangeError(`probabilities must sum to 1, got ${sum}`);
  if (!(s.epsSec > 0 && s.epsSec < 1)) throw new RangeError(`epsSec must be in (0, 1), got ${s.epsSec}`);
  if (!(s.epsCor > 0 && s.epsCor < 1)) throw new RangeError(`epsCor must be in (0, 1), got ${s.epsCor}`);
}

/**
 * Counts must be one per intensity and non-negative; observed counts must also be integers (`integers`),
 * expected counts may be real. Errors cannot outnumber the detections they are counted in.
 */
export function validateDecoyCounts(c: DecoyCounts, integers: boolean): void {
  const check = (name: keyof DecoyCounts, values: number[] | undefined, optional = false): void => {
    if (values === undefined && optional) return;
    if (!Array.isArray(values) || values.length !== DECOY_INTENSITY_COUNT) {
      throw new RangeError(`counts.${name} must list ${DECOY_INTENSITY_COUNT} counts, one per intensity, got ${JSON.stringify(values)}`);
    }
    values.forEach((v, k) => {
      const ok = integers ? Number.isSafeInteger(v) && v >= 0 : Number.isFinite(v) && v >= 0;
      if (!ok) throw new RangeError(`counts.${name}[${k}] must be a ${integers ? 'non-negative integer' : 'finite number >= 0'}, got ${v}`);
    });
  };
  check('nX', c.nX);
  check('nZ', c.nZ);
  check('mZ', c.mZ);
  check('mX', c.mX, true);
  for (let k = 0; k < DECOY_INTENSITY_COUNT; k++) {
    if (c.mZ[k]! > c.nZ[k]!) throw new RangeError(`counts.mZ[${k}] (${c.mZ[k]}) exceeds counts.nZ[${k}] (${c.nZ[k]})`);
    if (c.mX !== undefined && c.mX[k]! > c.nX[k]!) throw new RangeError(`counts.mX[${k}] (${c.mX[k]}) exceeds counts.nX[${k}] (${c.nX[k]})`);
  }
}

export interface ExpectedCountSettings extends DecoySettings {
  /** q_x: probability that Alice (and, independently, Bob) picks basis X, in (0, 1). */
  pX: number;
  /** N: pulses Alice sends in the block. */
  pulses: number;
}

export function validateExpectedCountSettings(s: ExpectedCountSettings): void {
  validateDecoySettings(s);
  if (!(s.pX > 0 && s.pX < 1)) throw new RangeError(`pX must be in (0, 1), got ${s.pX}`);
  if (!(Number.isFinite(s.pulses) && s.pulses > 0)) throw new RangeError(`pulses must be a finite number > 0, got ${s.pulses}`);
}

/**
 * Expected counts of a block of N pulses (Lim 2014 sec. IV): both bases match with probability q_x^2 (X)
 * or (1 - q_x)^2 (Z), so n_{X,k} = N p_k q_x^2 R_k, m_{X,k} = N p_k q_x^2 e_k, and the same with
 * (1 - q_x)^2 for Z. Real numbers, not rounded.
 */
export function expectedDecoyCounts(link: LinkParams, s: ExpectedCountSettings): Required<DecoyCounts> {
  validateLinkParams(link);
  validateExpectedCountSettings(s);
  const xx = s.pX * s.pX;
  const zz = (1 - s.pX) * (1 - s.pX);
  const out: Required<DecoyCounts> = { nX: [], nZ: [], mZ: [], mX: [] };
  s.intensities.forEach((k, i) => {
    const st = pulseStatistics(link, k);
    const sent = s.pulses * s.probabilities[i]!;
    out.nX.push(sent * xx * st.click);
    out.mX.push(sent * xx * st.error);
    out.nZ.push(sent * zz * st.click);
    out.mZ.push(sent * zz * st.error);
  });
  return out;
}

/** Sum of one count over the intensities. */
export function total(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
