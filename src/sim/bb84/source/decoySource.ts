/**
 * Alice's weak-pulse source with decoy states (Hwang 2003; Lo, Ma, Chen 2005; the three-intensity finite-key
 * protocol of Lim, Curty, Walenta, Xu, Zbinden, PRA 89, 022307 (2014)). Per pulse Alice picks
 * - an intensity (mean photon number) k from a configured set, with configured probabilities; the photon number
 *   of the pulse is then Poisson(k) (a phase-randomised coherent state);
 * - a basis: X (the key basis) with probability p_X, else Z (the basis the phase error is estimated from);
 *   p_X = 0.5 is plain BB84;
 * - a uniformly random bit.
 * Bob picks his basis with the same bias. This file only describes the source; detection/detectedPulses.ts draws it.
 */

/** Basis bits as the pipeline stores them: 0 = X (rectilinear, the key basis), 1 = Z (diagonal, the test basis). */
export const BASIS_X = 0;
export const BASIS_Z = 1;

/** Most intensities a source may use (the finite-key analyses use two or three). */
export const MAX_INTENSITIES = 4;
/** Intensity probabilities must sum to 1 within this (they are configured decimals). */
export const PROBABILITY_SUM_TOLERANCE = 1e-9;

export interface DecoySource {
  /** Mean photon numbers, signal first and strictly decreasing, e.g. [mu1, mu2, mu3] with mu1 > mu2 + mu3 (Lim 2014). */
  intensities: readonly number[];
  /** Probability that Alice picks each intensity, in (0, 1], summing to 1. */
  intensityProbabilities: readonly number[];
  /** p_X: probability that Alice (and Bob) choose the X basis, in (0, 1); 0.5 keeps plain BB84. */
  basisXProbability: number;
}

/**
 * A Lim 2014-like default: signal 0.5, weak decoy 0.1, a near-vacuum decoy of 2e-4 (the paper's example), most
 * pulses at the signal intensity. p_X = 0.5 (plain BB84) until the planning tool chooses a bias.
 */
export const DEFAULT_DECOY_SOURCE: DecoySource = {
  intensities: [0.5, 0.1, 2e-4],
  intensityProbabilities: [0.7, 0.2, 0.1],
  basisXProbability: 0.5,
};

/** Throws a RangeError naming the field when the source cannot be simulated. */
export function validateDecoySource(s: DecoySource): void {
  const mu = s.intensities;
  const p = s.intensityProbabilities;
  if (!Array.isArray(mu) || mu.length < 1 || mu.length > MAX_INTENSITIES) {
    throw new RangeError(`source.intensities must list 1 to ${MAX_INTENSITIES} mean photon numbers, got ${JSON.stringify(mu)}`);
  }
  mu.forEach((v, k) => {
    if (!(Number.isFinite(v) && v >= 0)) throw new RangeError(`source.intensities[${k}] must be a finite number >= 0, got ${v}`);
    if (k > 0 && !(v < mu[k - 1]!)) throw new RangeError(`source.intensities must decrease strictly (signal first), got ${JSON.stringify(mu)}`);
  });
  if (!(mu[0]! > 0)) throw new RangeError(`source.intensities[0] (the signal) must be > 0, got ${mu[0]}`);
  if (!Array.isArray(p) || p.length !== mu.length) {
    throw new RangeError(`source.intensityProbabilities must list one probability per intensity (${mu.length}), got ${JSON.stringify(p)}`);
  }
  p.forEach((v, k) => {
    if (!(v > 0 && v <= 1)) throw new RangeError(`source.intensityProbabilities[${k}] must be in (0, 1], got ${v}`);
  });
  const sum = p.reduce((a, b) => a + b, 0);
  if (Math.abs(sum - 1) > PROBABILITY_SUM_TOLERANCE) throw new RangeError(`source.intensityProbabilities must sum to 1, got ${sum}`);
  if (!(s.basisXProbability > 0 && s.basisXProbability < 1)) {
    throw new RangeError(`source.basisXProbability must be in (0, 1), got ${s.basisXProbability}`);
  }
}

/** Fraction of detections whose bases match (the sifted fraction): p_X^2 + p_Z^2. */
export function siftedFraction(s: DecoySource): number {
  const pX = s.basisXProbability;
  return pX * pX + (1 - pX) * (1 - pX);
}
