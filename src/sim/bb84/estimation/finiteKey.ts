/**
 * Key-length arithmetic for BB84 (standards.md section 4): the finite-block secret key length that privacy
 * amplification may output, the asymptotic secret fraction, and predicted link rates for docs and benchmarks.
 */
import { channelFormulas, type ChannelParams } from '../detection/channel.js';

/** h(e) = -e·log2(e) - (1-e)·log2(1-e); h(0) = h(1) = 0. Arguments outside [0, 1] are a failure. */
export function binaryEntropy(e: number): number {
  if (!(e >= 0 && e <= 1)) throw new RangeError(`binaryEntropy: argument must be in [0, 1], got ${e}`);
  if (e === 0 || e === 1) return 0;
  return -e * Math.log2(e) - (1 - e) * Math.log2(1 - e);
}

export interface SecretKeyLengthInput {
  /** Key bits left after sampling (the bits error correction worked on). */
  n: number;
  /** Upper confidence bound on their error rate (from the estimate stage). */
  qberUpper: number;
  /** Bits actually disclosed about them: error-correction parities plus the verification tag. */
  leakEC: number;
  /** Failure probability of error verification (the verify tag's collision probability bound). */
  epsEC: number;
  /** Security parameter of privacy amplification (leftover hash lemma). */
  epsPA: number;
}

/**
 * l = floor(n·(1 - h(qberUpper)) - leakEC - log2(2/epsEC) - 2·log2(1/(2·epsPA))), clamped at 0.
 * An error rate at or above 1/2 leaves no key (h is taken as 1 there). Never returns more than n.
 */
export function secretKeyLength(input: SecretKeyLengthInput): number {
  const { n, qberUpper, leakEC, epsEC, epsPA } = input;
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`secretKeyLength: n must be a non-negative integer, got ${n}`);
  if (!(qberUpper >= 0 && qberUpper <= 1)) throw new RangeError(`secretKeyLength: qberUpper must be in [0, 1], got ${qberUpper}`);
  if (!(Number.isFinite(leakEC) && leakEC >= 0)) throw new RangeError(`secretKeyLength: leakEC must be a finite number >= 0, got ${leakEC}`);
  if (!(epsEC > 0 && epsEC < 1)) throw new RangeError(`secretKeyLength: epsEC must be in (0, 1), got ${epsEC}`);
  if (!(epsPA > 0 && epsPA < 0.5)) throw new RangeError(`secretKeyLength: epsPA must be in (0, 1/2), got ${epsPA}`);
  const h = qberUpper >= 0.5 ? 1 : binaryEntropy(qberUpper);
  const raw = n * (1 - h) - leakEC - Math.log2(2 / epsEC) - 2 * Math.log2(1 / (2 * epsPA));
  if (!(raw > 0)) return 0;
  return Math.min(n, Math.floor(raw));
}

/** Asymptotic BB84 secret fraction of sifted bits, r = 1 - h(e) - fEC·h(e), clamped at 0. */
export function asymptoticSecretFraction(e: number, fEC: number): number {
  if (!(fEC >= 1)) throw new RangeError(`asymptoticSecretFraction: fEC must be >= 1, got ${fEC}`);
  if (e >= 0.5) return 0;
  const h = binaryEntropy(e);
  return Math.max(0, 1 - h - fEC * h);
}

export interface PredictedRates {
  /** Sifted bits per second: pulseRate · pClick / 2. */
  siftedRate: number;
  qber: number;
  /** Secret bits per sifted bit after sampling: (1 - sampleFraction) · r(qber, fEC). */
  secretFraction: number;
  /** Secret bits per second (asymptotic). */
  secretRate: number;
}

/**
 * Rates a link should reach in the asymptotic limit, for documentation and benchmarks. Idealised: it treats every
 * detection as a single photon (as decoy-state BB84 does asymptotically), so it is not a security claim for weak
 * pulses without decoys.
 */
export function predictedRates(channel: ChannelParams, pulseRateHz: number, fEC: number, sampleFraction: number): PredictedRates {
  if (!(Number.isFinite(pulseRateHz) && pulseRateHz >= 0)) throw new RangeError(`predictedRates: pulseRateHz must be >= 0, got ${pulseRateHz}`);
  if (!(sampleFraction >= 0 && sampleFraction < 1)) throw new RangeError(`predictedRates: sampleFraction must be in [0, 1), got ${sampleFraction}`);
  const f = channelFormulas(channel);
  const siftedRate = pulseRateHz * f.siftedPerPulse;
  const secretFraction = (1 - sampleFraction) * asymptoticSecretFraction(f.qber, fEC);
  return { siftedRate, qber: f.qber, secretFraction, secretRate: siftedRate * secretFraction };
}
