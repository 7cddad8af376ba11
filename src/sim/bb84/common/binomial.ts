/**
 * Binomial counts for the detections-only simulation: how many of n pulses click (or carry a given intensity)
 * without drawing the n pulses one by one.
 */
import { binomialCount, type Rng } from './rng.js';

/**
 * A Binomial(n, p) count at a cost independent of n: geometric skipping (one draw per success, `binomialCount`)
 * while n·min(p, 1-p) is small, inversion from the mode above BINOMIAL_INVERSION_MIN_MEAN.
 */
export function binomialSample(rng: Rng, n: number, p: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`binomialSample: n must be a non-negative safe integer, got ${n}`);
  if (!(p >= 0 && p <= 1)) throw new RangeError(`binomialSample: p must be a probability in [0, 1], got ${p}`);
  const small = Math.min(p, 1 - p);
  // Geometric skipping costs one draw per detection; inversion from the mode about 1.6 standard deviations of steps.
  return n * small < BINOMIAL_INVERSION_MIN_MEAN ? binomialCount(rng, n, p) : binomialByInversion(rng, n, p);
}

/**
 * A Multinomial(n, probabilities) draw: counts per category, summing to n, by a chain of binomials (category j gets
 * Binomial(n left, p_j / (p_j + ... + p_last))). The probabilities must be >= 0 with a positive sum; they are used
 * relative to their sum.
 */
export function multinomialSample(rng: Rng, n: number, probabilities: readonly number[]): number[] {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`multinomialSample: n must be a non-negative safe integer, got ${n}`);
  const m = probabilities.length;
  if (m === 0 || probabilities.some((p) => !(p >= 0 && Number.isFinite(p)))) {
    throw new RangeError(`multinomialSample: probabilities must be finite numbers >= 0, got ${JSON.stringify(probabilities)}`);
  }
  // tail[j] = p_j + ... + p_last, summed from the end so that a tail of zeros is exactly 0.
  const tail = new Array<number>(m + 1).fill(0);
  for (let j = m - 1; j >= 0; j--) tail[j] = tail[j + 1]! + probabilities[j]!;
  if (!(tail[0]! > 0)) throw new RangeError('multinomialSample: the probabilities sum to 0');
  const counts = new Array<number>(m).fill(0);
  let left = n;
  for (let j = 0; j < m && left > 0; j++) {
    if (tail[j + 1] === 0) {
      counts[j] = left; // the later categories have probability 0
      break;
    }
    counts[j] = binomialSample(rng, left, Math.min(1, probabilities[j]! / tail[j]!));
    left -= counts[j]!;
  }
  return counts;
}

/** Above this mean (n·min(p, 1-p)) a count is drawn by inversion from the mode, below it by geometric skipping. */
export const BINOMIAL_INVERSION_MIN_MEAN = 1000;

/**
 * A Binomial(n, p) count by inversion, enumerating outcomes outward from the mode (m, m-1, m+1, m-2, ...) with the
 * probabilities from the pmf recurrence, for n·p and n·(1-p) of at least a few hundred. The mode's probability is
 * computed with Loader's saddle-point form (C. Loader, "Fast and accurate computation of binomial probabilities",
 * 2000, as in R's dbinom), accurate to about 1e-15 relative, so the sampler is exact up to floating-point rounding
 * (about 1e-13 over the few thousand steps). One uniform draw and O(sqrt(n·p·(1-p))) arithmetic per count.
 */
export function binomialByInversion(rng: Rng, n: number, p: number): number {
  const q = 1 - p;
  const m = Math.min(n, Math.floor((n + 1) * p));
  const pm = binomialPmfLoader(m, n, p, q);
  let u = rng.nextFloat() - pm;
  if (u < 0) return m;
  const down = q / p;
  const up = p / q;
  let lo = m;
  let hi = m;
  let plo = pm;
  let phi = pm;
  while (lo > 0 || hi < n) {
    if (lo > 0) {
      plo *= (lo / (n - lo + 1)) * down;
      lo--;
      u -= plo;
      if (u < 0) return lo;
    }
    if (hi < n) {
      phi *= ((n - hi) / (hi + 1)) * up;
      hi++;
      u -= phi;
      if (u < 0) return hi;
    }
    if (plo < 1e-300 && phi < 1e-300) break; // only rounding mass left
  }
  return m;
}

/** stirlerr(x) = ln(x!) - ln(sqrt(2πx)·(x/e)^x), series for x > 15 (the callers' counts are in the hundreds at least). */
function stirlingError(x: number): number {
  const x2 = x * x;
  return (1 / 12 - (1 / 360 - (1 / 1260 - (1 / 1680 - 1 / 1188 / x2) / x2) / x2) / x2) / x;
}

/** bd0(x, np) = x·ln(x/np) + np - x, without cancellation when x is near np. */
function deviance(x: number, np: number): number {
  if (Math.abs(x - np) < 0.1 * (x + np)) {
    let v = (x - np) / (x + np);
    let s = (x - np) * v;
    let ej = 2 * x * v;
    v *= v;
    for (let j = 1; j < 1000; j++) {
      ej *= v;
      const s1 = s + ej / (2 * j + 1);
      if (s1 === s) return s1;
      s = s1;
    }
    return s;
  }
  return x * Math.log(x / np) + np - x;
}

function binomialPmfLoader(x: number, n: number, p: number, q: number): number {
  if (x <= 15 || n - x <= 15) {
    // Not reached from binomialSample (mean >= BINOMIAL_INVERSION_MIN_MEAN); plain logs for completeness.
    let lg = 0;
    for (let i = 1; i <= Math.min(x, n - x); i++) lg += Math.log((n - Math.min(x, n - x) + i) / i);
    return Math.exp(lg + x * Math.log(p) + (n - x) * Math.log1p(-p));
  }
  const lc = stirlingError(n) - stirlingError(x) - stirlingError(n - x) - deviance(x, n * p) - deviance(n - x, n * q);
  return Math.exp(lc) * Math.sqrt(n / (2 * Math.PI * x * (n - x)));
}
