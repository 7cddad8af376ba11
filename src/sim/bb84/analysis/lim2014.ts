/**
 * Finite-key decoy-state BB84: Lim, Curty, Walenta, Xu, Zbinden, "Concise security bounds for practical
 * decoy-state quantum key distribution", PRA 89, 022307 (2014) (arXiv 1311.7129), eqs. (1)-(5), exactly.
 *
 * Protocol (their sec. II): three intensities mu1 > mu2 + mu3, mu2 > mu3 >= 0; the key comes from the
 * detections where both chose X, the phase error is estimated from those where both chose Z. From the
 * per-intensity counts of one privacy-amplification block:
 *
 *   n±_{X,k} = (e^k / p_k) [n_{X,k} ± sqrt(n_X / 2 · ln(21/eps_sec))]           (Hoeffding, below eq. 2)
 *   tau_n    = sum_k p_k e^-k k^n / n!                                           (below eq. 2)
 *   s_X0 >= tau_0 (mu2 n-_{X,mu3} - mu3 n+_{X,mu2}) / (mu2 - mu3)                (2)
 *   s_X1 >= mu1 tau_1 [n-_{X,mu2} - n+_{X,mu3} - (mu2² - mu3²)/mu1² (n+_{X,mu1} - s_X0/tau_0)]
 *           / (mu1 (mu2 - mu3) - mu2² + mu3²)                                    (3)
 *   s_Z0, s_Z1: (2) and (3) with the Z counts
 *   v_Z1 <= tau_1 (m+_{Z,mu2} - m-_{Z,mu3}) / (mu2 - mu3),
 *           m±_{Z,k} = (e^k / p_k)[m_{Z,k} ± sqrt(m_Z / 2 · ln(21/eps_sec))]      (4)
 *   phi_X <= v_Z1/s_Z1 + gamma(eps_sec, v_Z1/s_Z1, s_Z1, s_X1),
 *   gamma(a,b,c,d) = sqrt((c+d)(1-b)b / (c d ln 2) · log2((c+d)/(c d (1-b) b) · 21²/a²))   (5)
 *   l = floor(s_X0 + s_X1 - s_X1 h(phi_X) - lambda_EC - 6 log2(21/eps_sec) - log2(2/eps_cor))   (1)
 *
 * The 21 is their composition of the secrecy failure (appendix B, eq. B4: eps_sec = 21 eps); eps_sec and
 * eps_cor are the figures the user is promised, nothing else is left to compose. lambda_EC is what error
 * correction and verification really disclosed (the protocol passes its own count).
 *
 * Two choices where the paper's arithmetic allows an impossible value, both sound:
 * - a negative vacuum bound s_X0 (or s_Z0) is raised to 0: the true number is >= 0, so max(0, bound) is
 *   still a lower bound, and it is also what enters eq. (3);
 * - the key length is capped at n_X: privacy amplification cannot output more bits than it gets.
 * Every other impossible value aborts with a fixed code (see Lim2014AbortCode).
 *
 * Pure and deterministic: both modules compute the same l from the same counts.
 */
import { binaryEntropy } from './entropy.js';
import { total, validateDecoyCounts, validateDecoySettings, type DecoyCounts, type DecoySettings } from './decoyCounts.js';

/** The number of failure terms of the secrecy composition (Lim 2014 eq. B4: eps_sec = 21 eps). */
export const LIM2014_SECRECY_TERMS = 21;
/** The protocol aborts when the phase-error bound reaches this: no secrecy is left. */
export const PHASE_ERROR_LIMIT = 0.5;

export type Lim2014AbortCode =
  /** s_X1 <= 0: the decoy statistics prove no single-photon detection in the key basis (e.g. a PNS attack). */
  | 'single-photon-bound-x'
  /** s_Z1 <= 0: no single-photon detection proven in the test basis, so no phase-error estimate. */
  | 'single-photon-bound-z'
  /** v_Z1 < 0: the error counts contradict every physical channel. */
  | 'inconsistent-error-counts'
  /** phi_X >= 1/2: the single-photon phase error leaves no secrecy. */
  | 'phase-error-bound'
  /** A bound is not a finite number (e.g. a zero denominator from empty counts). */
  | 'non-finite-bound'
  /** l <= 0: the block is too small or too noisy for any key. */
  | 'no-secret-key';

export interface Lim2014Bounds {
  /** n_X, n_Z, m_Z: totals over the intensities. */
  nX: number;
  nZ: number;
  mZ: number;
  /** Observed X-basis error rate m_X / n_X when the X errors are known (reporting only). */
  qberX?: number;
  /** Z-basis error rate m_Z / n_Z. */
  qberZ: number;
  tau0: number;
  tau1: number;
  /** Lower bounds on vacuum and single-photon detections (eqs. 2 and 3). */
  sX0: number;
  sX1: number;
  sZ0: number;
  sZ1: number;
  /** Upper bound on single-photon errors in Z (eq. 4). */
  vZ1: number;
  /** Upper bound on the single-photon phase-error rate of the X key (eq. 5); NaN until s_Z1, s_X1 > 0. */
  phiX: number;
}

export interface Lim2014Abort {
  abort: Lim2014AbortCode;
  /** Readable reason, numbers included (no key material: these are counts). */
  reason: string;
  /** The bounds computed before the abort, when they got that far. */
  bounds?: Lim2014Bounds;
}

export interface Lim2014Length {
  /** Secret key length l (eq. 1), an integer >= 1. */
  length: number;
  bounds: Lim2014Bounds;
}

/** Bounds from OBSERVED counts (non-negative integers) of one privacy-amplification block. */
export function lim2014Bounds(counts: DecoyCounts, settings: DecoySettings): Lim2014Bounds | Lim2014Abort {
  validateDecoySettings(settings);
  validateDecoyCounts(counts, true);
  return computeBounds(counts, settings);
}

/** The same bounds from EXPECTED (real-valued) counts, for planning. */
export function lim2014ExpectedBounds(counts: DecoyCounts, settings: DecoySettings): Lim2014Bounds | Lim2014Abort {
  validateDecoySettings(settings);
  validateDecoyCounts(counts, false);
  return computeBounds(counts, settings);
}

/**
 * Secret key length of eq. (1) from observed counts and the bits error correction and verification really
 * disclosed (lambdaEC). Aborts with a code and a reason when the bounds are inconsistent or l <= 0.
 */
export function lim2014KeyLength(counts: DecoyCounts, settings: DecoySettings, lambdaEC: number): Lim2014Length | Lim2014Abort {
  validateLambda(lambdaEC);
  const bounds = lim2014Bounds(counts, settings);
  return 'abort' in bounds ? bounds : lengthFromBounds(bounds, settings, lambdaEC);
}

/** Eq. (1) from expected counts (planning). */
export function lim2014ExpectedKeyLength(counts: DecoyCounts, settings: DecoySettings, lambdaEC: number): Lim2014Length | Lim2014Abort {
  validateLambda(lambdaEC);
  const bounds = lim2014ExpectedBounds(counts, settings);
  return 'abort' in bounds ? bounds : lengthFromBounds(bounds, settings, lambdaEC);
}

/** The finite-size penalty of eq. (1): 6 log2(21/eps_sec) + log2(2/eps_cor) bits. */
export function lim2014Penalty(epsSec: number, epsCor: number): number {
  return 6 * Math.log2(LIM2014_SECRECY_TERMS / epsSec) + Math.log2(2 / epsCor);
}

/** gamma(a, b, c, d) of eq. (5); its limit 0 at b = 0 (b log(1/b) -> 0). */
export function lim2014Gamma(a: number, b: number, c: number, d: number): number {
  if (b === 0) return 0;
  const spread = ((c + d) * (1 - b) * b) / (c * d * Math.LN2);
  const log = Math.log2(((c + d) / (c * d * (1 - b) * b)) * (LIM2014_SECRECY_TERMS ** 2 / (a * a)));
  return Math.sqrt(spread * log);
}

function validateLambda(lambdaEC: number): void {
  if (!(Number.isFinite(lambdaEC) && lambdaEC >= 0)) throw new RangeError(`lambdaEC must be a finite number >= 0, got ${lambdaEC}`);
}

interface BasisBounds {
  s0: number;
  s1: number;
}

/** Eqs. (2) and (3) for one basis, from its per-intensity detection counts. */
function singlePhotonBounds(n: number[], settings: DecoySettings, tau0: number, tau1: number, lnTerm: number): BasisBounds {
  const [mu1, mu2, mu3] = settings.intensities as [number, number, number];
  const delta = Math.sqrt((total(n) / 2) * lnTerm);
  const plus = (k: number): number => (Math.exp(settings.intensities[k]!) / settings.probabilities[k]!) * (n[k]! + delta);
  const minus = (k: number): number => (Math.exp(settings.intensities[k]!) / settings.probabilities[k]!) * (n[k]! - delta);
  const s0 = Math.max(0, (tau0 * (mu2 * minus(2) - mu3 * plus(1))) / (mu2 - mu3));
  const s1 = (mu1 * tau1 * (minus(1) - plus(2) - ((mu2 * mu2 - mu3 * mu3) / (mu1 * mu1)) * (plus(0) - s0 / tau0)))
    / (mu1 * (mu2 - mu3) - mu2 * mu2 + mu3 * mu3);
  return { s0, s1 };
}

function computeBounds(counts: DecoyCounts, settings: DecoySettings): Lim2014Bounds | Lim2014Abort {
  const { intensities, probabilities, epsSec } = settings;
  const [, mu2, mu3] = intensities as [number, number, number];
  // tau_n = sum_k p_k e^-k k^n / n! for n = 0 and 1: the probabilities that Alice sends 0 or 1 photon.
  const tau0 = intensities.reduce((sum, k, i) => sum + probabilities[i]! * Math.exp(-k), 0);
  const tau1 = intensities.reduce((sum, k, i) => sum + probabilities[i]! * Math.exp(-k) * k, 0);
  const lnTerm = Math.log(LIM2014_SECRECY_TERMS / epsSec);
  const x = singlePhotonBounds(counts.nX, settings, tau0, tau1, lnTerm);
  const z = singlePhotonBounds(counts.nZ, settings, tau0, tau1, lnTerm);
  const mZ = total(counts.mZ);
  const deltaM = Math.sqrt((mZ / 2) * lnTerm);
  const mPlus2 = (Math.exp(mu2) / probabilities[1]!) * (counts.mZ[1]! + deltaM);
  const mMinus3 = (Math.exp(mu3) / probabilities[2]!) * (counts.mZ[2]! - deltaM);
  const vZ1 = (tau1 * (mPlus2 - mMinus3)) / (mu2 - mu3);
  const nX = total(counts.nX);
  const nZ = total(counts.nZ);
  const bounds: Lim2014Bounds = {
    nX, nZ, mZ,
    ...(counts.mX !== undefined ? { qberX: nX === 0 ? 0 : total(counts.mX) / nX } : {}),
    qberZ: nZ === 0 ? 0 : mZ / nZ,
    tau0, tau1,
    sX0: x.s0, sX1: x.s1, sZ0: z.s0, sZ1: z.s1,
    vZ1,
    phiX: Number.NaN,
  };
  const finite = [x.s0, x.s1, z.s0, z.s1, vZ1].every(Number.isFinite);
  if (!finite) return abort('non-finite-bound', `a decoy bound is not finite (s_X0 ${x.s0}, s_X1 ${x.s1}, s_Z0 ${z.s0}, s_Z1 ${z.s1}, v_Z1 ${vZ1})`, bounds);
  if (!(x.s1 > 0)) return abort('single-photon-bound-x', `the decoy statistics prove no single-photon detection in the key basis: s_X1 = ${fmt(x.s1)} (n_X = ${nX})`, bounds);
  if (!(z.s1 > 0)) return abort('single-photon-bound-z', `the decoy statistics prove no single-photon detection in the test basis: s_Z1 = ${fmt(z.s1)} (n_Z = ${nZ})`, bounds);
  if (vZ1 < 0) return abort('inconsistent-error-counts', `the test-basis error counts bound the single-photon errors below zero: v_Z1 = ${fmt(vZ1)}`, bounds);
  const ratio = vZ1 / z.s1;
  const phiX = ratio >= PHASE_ERROR_LIMIT ? ratio : ratio + lim2014Gamma(epsSec, ratio, z.s1, x.s1);
  bounds.phiX = phiX;
  if (!Number.isFinite(phiX)) return abort('non-finite-bound', `the phase-error bound is not finite (v_Z1/s_Z1 = ${fmt(ratio)})`, bounds);
  if (phiX >= PHASE_ERROR_LIMIT) return abort('phase-error-bound', `the single-photon phase-error bound phi_X = ${fmt(phiX)} is at least ${PHASE_ERROR_LIMIT}`, bounds);
  return bounds;
}

function lengthFromBounds(bounds: Lim2014Bounds, settings: DecoySettings, lambdaEC: number): Lim2014Length | Lim2014Abort {
  const raw = bounds.sX0 + bounds.sX1 - bounds.sX1 * binaryEntropy(bounds.phiX) - lambdaEC - lim2014Penalty(settings.epsSec, settings.epsCor);
  const length = Math.min(Math.floor(raw), Math.floor(bounds.nX));
  if (!(length > 0)) {
    return abort('no-secret-key', `no secret key: eq. (1) gives ${fmt(raw)} bits (s_X0 ${fmt(bounds.sX0)}, s_X1 ${fmt(bounds.sX1)}, phi_X ${fmt(bounds.phiX)}, lambda_EC ${fmt(lambdaEC)})`, bounds);
  }
  return { length, bounds };
}

function abort(code: Lim2014AbortCode, reason: string, bounds?: Lim2014Bounds): Lim2014Abort {
  return bounds === undefined ? { abort: code, reason } : { abort: code, reason, bounds };
}

function fmt(v: number): string {
  return Number.isFinite(v) ? Number(v.toPrecision(6)).toString() : String(v);
}
