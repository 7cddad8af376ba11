/**
 * Block sizing and rate prediction for the BB84 simulator (docs/bb84.md, "Block size" and "Predicted rates").
 *
 * A block is `pulses` pulses of the source. Alice sends the states of the detected ones in one `frame` message, so
 * the detections per block are capped (MAX_FRAME_DETECTIONS) to keep every peer message under the module's 1 MiB
 * body limit. Within that cap a block is `simulator.block_pulses` pulses, unless the round may only produce a few
 * keys (small maxKeys): then it is shrunk to the smallest block whose expected output is OUTPUT_MARGIN times what
 * the round can use, but never below MIN_SHRUNK_SIFTED_BITS sifted bits (below that the finite-key terms - the
 * confidence interval of the QBER estimate and the fixed log2(1/eps) costs - eat most of the key).
 */
import { clickProbabilityExact, qberWithEve } from '../detection/channel.js';
import { qberUpperBound } from '../estimation/estimate.js';
import { binaryEntropy, secretKeyLength } from '../estimation/finiteKey.js';
import { VERIFY_TAG_BITS } from '../verification/verify.js';
import type { Bb84Settings } from './settings.js';

/**
 * Most detected pulses in one block. The frame carries two bits per detection (state and basis), the sift message
 * one, each base64 of packed words: 2.4e6 detections make a 800 kB frame, under the 1 MiB peer body limit.
 */
export const MAX_FRAME_DETECTIONS = 2_400_000;
/** Blocks are sized for at most this share of MAX_FRAME_DETECTIONS on average (the count is random). */
export const DETECTION_HEADROOM = 0.98;
/** A shrunk block keeps at least this many sifted bits (expected). */
export const MIN_SHRUNK_SIFTED_BITS = 100_000;
/** A shrunk block is sized to produce this multiple of the key bits the round can use. */
export const OUTPUT_MARGIN = 1.5;
/** Reconciliation efficiency assumed when planning (Cascade measures about 1.07-1.09; bench/cascade.ts). */
export const PLANNING_F_EC = 1.1;
/** Fewest sifted bits a block must have to go on to estimation (smaller blocks are aborted). */
export const MIN_SIFTED_BITS = 1_000;

/** Sampled bits for a sifted key of `sifted` bits: floor(fraction · sifted), at least 1, at most sifted - 1. */
export function sampleSizeFor(sifted: number, fraction: number): number {
  return Math.min(sifted - 1, Math.max(1, Math.floor(fraction * sifted)));
}

export interface BlockPrediction {
  pulses: number;
  detections: number;
  siftedBits: number;
  sampleBits: number;
  remainingBits: number;
  qber: number;
  qberUpper: number;
  leakBits: number;
  /** Finite-key output length (secretKeyLength) for the expected values. */
  secretBits: number;
}

/** Expected figures of a block of `pulses` pulses (expected counts, QBER from the channel formulas with Eve). */
export function predictBlock(s: Bb84Settings, pulses: number, fEC = PLANNING_F_EC): BlockPrediction {
  const detections = pulses * clickProbabilityExact(s.channel);
  const siftedBits = Math.floor(detections / 2);
  const qber = qberWithEve(s.channel, s.eve);
  const empty = { pulses, detections, siftedBits, sampleBits: 0, remainingBits: 0, qber, qberUpper: 1, leakBits: 0, secretBits: 0 };
  if (siftedBits < 2) return empty;
  const sampleBits = sampleSizeFor(siftedBits, s.sampleFraction);
  const remainingBits = siftedBits - sampleBits;
  const qberUpper = Math.min(1, qber + qberUpperBound(0, sampleBits, remainingBits, s.epsPE));
  const leakBits = Math.ceil(fEC * remainingBits * binaryEntropy(Math.min(qber, 0.5))) + VERIFY_TAG_BITS;
  const secretBits = secretKeyLength({ n: remainingBits, qberUpper, leakEC: leakBits, epsEC: s.epsEC, epsPA: s.epsPA });
  return { ...empty, sampleBits, remainingBits, qberUpper, leakBits, secretBits };
}

/** Largest block the frame allows: block_pulses, capped so the expected detections fit MAX_FRAME_DETECTIONS. */
export function maxBlockPulses(s: Bb84Settings): number {
  const pClick = clickProbabilityExact(s.channel);
  const cap = pClick > 0 ? Math.floor((MAX_FRAME_DETECTIONS * DETECTION_HEADROOM) / pClick) : s.blockPulses;
  return Math.max(1, Math.min(s.blockPulses, cap));
}

/** Pulses of the next block for a round that may produce at most maxKeys keys of keyLengthBits (see file comment). */
export function chooseBlockPulses(s: Bb84Settings, maxKeys: number, keyLengthBits: number): number {
  const cap = maxBlockPulses(s);
  const target = OUTPUT_MARGIN * maxKeys * keyLengthBits;
  if (predictBlock(s, cap).secretBits <= target) return cap;
  const pClick = clickProbabilityExact(s.channel);
  let lo = Math.min(cap, Math.ceil((2 * MIN_SHRUNK_SIFTED_BITS) / pClick));
  if (predictBlock(s, lo).secretBits >= target) return lo;
  // predictBlock(lo) < target < predictBlock(cap): bisect to 0.1 %.
  let hi = cap;
  while (hi - lo > Math.max(1, hi * 1e-3)) {
    const mid = Math.floor((lo + hi) / 2);
    if (predictBlock(s, mid).secretBits >= target) hi = mid;
    else lo = mid;
  }
  return hi;
}

export interface PredictedLinkRates {
  /** Sifted bits per second of link time: pulse_rate · pClick / 2. */
  siftedRate: number;
  qber: number;
  /** Asymptotic: (1 - sampleFraction) · (1 - h(e) - fEC·h(e)). */
  asymptoticSecretFraction: number;
  asymptoticSecretRate: number;
  /** Finite-key: the expected output of one block of `pulses` pulses over its link time. */
  blockPulses: number;
  finiteKeySecretFraction: number;
  finiteKeySecretRate: number;
}

/** The secret key rate a link should deliver at pace realtime (what bench/bb84.ts compares measurements with). */
export function predictLinkRates(s: Bb84Settings, blockPulses: number, fEC: number): PredictedLinkRates {
  const pClick = clickProbabilityExact(s.channel);
  const siftedRate = (s.pulseRateHz * pClick) / 2;
  const qber = qberWithEve(s.channel, s.eve);
  const h = binaryEntropy(Math.min(qber, 0.5));
  const asymptoticSecretFraction = (1 - s.sampleFraction) * Math.max(0, 1 - h - fEC * h);
  const block = predictBlock(s, blockPulses, fEC);
  const finiteKeySecretFraction = block.siftedBits > 0 ? block.secretBits / block.siftedBits : 0;
  return {
    siftedRate,
    qber,
    asymptoticSecretFraction,
    asymptoticSecretRate: siftedRate * asymptoticSecretFraction,
    blockPulses,
    finiteKeySecretFraction,
    finiteKeySecretRate: siftedRate * finiteKeySecretFraction,
  };
}
