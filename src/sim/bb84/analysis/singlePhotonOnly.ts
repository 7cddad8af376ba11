/**
 * NOT A SECURITY CLAIM. The sizing the BB84 simulator used before decoy states (src/sim/bb84/finiteKey.ts,
 * `secretKeyLength` and `asymptoticSecretFraction`), kept here only as a test oracle and for comparison in
 * the docs: it treats every click as if it came from a single photon, which a photon-number-splitting
 * attacker exploits on any weak-pulse link (issue 11; standards.md section 4). Tests use it to show that an
 * attack the decoy analysis refuses would have produced "key" under the old sizing.
 *
 * Asymptotic:   secret fraction of sifted bits r = 1 - h(E) - f h(E);   rate = q R_mu r
 * Finite block: l = floor(n (1 - h(e_U)) - leak_EC - log2(2/eps_EC) - 2 log2(1/(2 eps_PA)))
 */
import { errorEntropy } from './entropy.js';
import { validateAsymptoticOptions, type AsymptoticOptions } from './asymptoticOptions.js';
import { total, validateDecoyCounts, type DecoyCounts } from './decoyCounts.js';
import { pulseStatistics, type LinkParams } from './linkModel.js';

/** r = 1 - h(E) - f h(E), clamped at 0 (1 - h(E) counts every detection as a single photon). */
export function singlePhotonOnlyFraction(qber: number, fEC: number): number {
  if (!(Number.isFinite(fEC) && fEC >= 1)) throw new RangeError(`fEC must be a finite number >= 1, got ${fEC}`);
  const h = errorEntropy(qber);
  return Math.max(0, 1 - h - fEC * h);
}

/** Asymptotic "rate" per pulse of the old sizing on a link: q R_mu (1 - h(E) - f h(E)). */
export function singlePhotonOnlyRate(link: LinkParams, options: AsymptoticOptions): { rate: number; gain: number; qber: number } {
  validateAsymptoticOptions(options);
  const signal = pulseStatistics(link, options.mu);
  return { rate: options.sifting * signal.click * singlePhotonOnlyFraction(signal.qber, options.fEC), gain: signal.click, qber: signal.qber };
}

export interface SinglePhotonOnlyBlock {
  /** Key bits the length is computed for. */
  n: number;
  /** Upper bound on their error rate. */
  qberUpper: number;
  /** Bits disclosed by error correction and verification. */
  leakEC: number;
  epsEC: number;
  epsPA: number;
}

/** The old finite-block length (finiteKey.ts `secretKeyLength`), clamped at 0 and at n. */
export function singlePhotonOnlyLength(b: SinglePhotonOnlyBlock): number {
  if (!(Number.isSafeInteger(b.n) && b.n >= 0)) throw new RangeError(`n must be a non-negative integer, got ${b.n}`);
  if (!(b.qberUpper >= 0 && b.qberUpper <= 1)) throw new RangeError(`qberUpper must be in [0, 1], got ${b.qberUpper}`);
  if (!(Number.isFinite(b.leakEC) && b.leakEC >= 0)) throw new RangeError(`leakEC must be a finite number >= 0, got ${b.leakEC}`);
  if (!(b.epsEC > 0 && b.epsEC < 1)) throw new RangeError(`epsEC must be in (0, 1), got ${b.epsEC}`);
  if (!(b.epsPA > 0 && b.epsPA < 0.5)) throw new RangeError(`epsPA must be in (0, 1/2), got ${b.epsPA}`);
  const raw = b.n * (1 - errorEntropy(b.qberUpper)) - b.leakEC - Math.log2(2 / b.epsEC) - 2 * Math.log2(1 / (2 * b.epsPA));
  return raw > 0 ? Math.min(b.n, Math.floor(raw)) : 0;
}

/**
 * The old sizing applied to a decoy block's counts: every X detection is key, its error rate taken as the
 * observed Z error rate (or the X one when known), leak and epsilons as given.
 */
export function singlePhotonOnlyLengthFromCounts(counts: DecoyCounts, leakEC: number, eps: { epsEC: number; epsPA: number }): number {
  validateDecoyCounts(counts, true);
  const nZ = total(counts.nZ);
  const nX = total(counts.nX);
  const qber = counts.mX !== undefined ? (nX === 0 ? 0 : total(counts.mX) / nX) : nZ === 0 ? 0 : total(counts.mZ) / nZ;
  return singlePhotonOnlyLength({ n: nX, qberUpper: Math.min(1, qber), leakEC, ...eps });
}
