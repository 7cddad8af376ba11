/**
 * Block sizing and rate prediction for the BB84 simulator (docs/bb84.md, "Blocks and pacing" and "Predicted rates").
 *
 * An EC block is `simulator.block_pulses` pulses, capped so that its expected detections fit one `frame` message
 * (maxFrameDetections). A PA block is the EC blocks of a stream until their key-basis (X) bits reach
 * `simulator.pa_block_bits`; its expected output is Lim et al. 2014's finite-key length for the pulses that takes.
 */
import { lim2014Rate, pulsesForKeyBlock, type Lim2014Rate } from '../analysis/lim2014Rate.js';
import { pulseStatistics } from '../analysis/linkModel.js';
import { decoySettings, type Bb84Settings } from './settings.js';

/**
 * Raw bytes the bit strings of one `frame` may take: 760 kB, 1,013,336 characters of base64, under the 1 MiB peer
 * body limit with the rest of the message.
 */
export const MAX_FRAME_BYTES = 760_000;
/**
 * Most detections any frame can carry: at least three bits each (bit, basis, the first intensity mask). Bob refuses
 * a frame announcing more before decoding it.
 */
export const MAX_FRAME_DETECTIONS = Math.floor((MAX_FRAME_BYTES * 8) / 3);
/** EC blocks are sized for at most this share of the frame's detections on average (the count is random). */
export const DETECTION_HEADROOM = 0.98;

/**
 * Bits of the frame per detection, on average at most: bit and basis, then the nested intensity masks - mask j
 * covers the detections whose intensity is j or later. The signal (the largest intensity) clicks most, so the
 * detections of intensity j or later are at most the share p_j + ... of the pulses: 2 + sum over j < K-1 of
 * (1 - p_0 - ... - p_(j-1)).
 */
export function frameBitsPerDetection(s: Bb84Settings): number {
  const p = s.source.intensityProbabilities;
  let bits = 2;
  let later = 1;
  for (let j = 0; j < p.length - 1; j++) {
    bits += later;
    later -= p[j]!;
  }
  return bits;
}

/** Most detections a frame of this source carries on average (its actual size is checked when it is built). */
export function maxFrameDetections(s: Bb84Settings): number {
  return Math.floor((MAX_FRAME_BYTES * 8) / frameBitsPerDetection(s));
}

/** Fewest key-basis bits an EC block must have to be corrected and kept (smaller blocks are aborted). */
export const MIN_KEY_BITS = 1_000;
/**
 * Most EC blocks in one PA block. Bounds the block lists of the PA messages (IDs of 22 characters) and the number
 * of verification tags the eps_cor budget is shared by: an EC block needs at least pa_block_bits / MAX_PA_BLOCKS
 * key-basis bits (minKeyBits).
 */
export const MAX_PA_BLOCKS = 10_000;
/** Toeplitz seed bits per `seed` message (a multiple of 32: 500 kB, 667 kB of base64, under the 1 MiB body limit). */
export const SEED_CHUNK_BITS = 4_000_000;

/** Most `seed` messages of one PA step: the seed is at most twice the PA input (plain Toeplitz, l < n). */
export function maxSeedChunks(s: Bb84Settings): number {
  return Math.ceil((2 * (s.paBlockBits + maxFrameDetections(s))) / SEED_CHUNK_BITS);
}

/** Reconciliation efficiency assumed when planning (Cascade measures about 1.07-1.09; bench/cascade.ts). */
export const PLANNING_F_EC = 1.1;

/** Fewest key-basis bits an EC block needs: MIN_KEY_BITS, more for PA blocks so large that MAX_PA_BLOCKS would not do. */
export function minKeyBits(s: Bb84Settings): number {
  return Math.max(MIN_KEY_BITS, Math.ceil(s.paBlockBits / MAX_PA_BLOCKS));
}

/** Most EC blocks one PA block can hold (each has at least minKeyBits X bits; the last one crosses pa_block_bits). */
export function maxBlocksPerPa(s: Bb84Settings): number {
  return Math.ceil(s.paBlockBits / minKeyBits(s));
}

/** Probability that a pulse of the source (any intensity) makes Bob's detector click on the honest link. */
export function clickProbabilityPerPulse(s: Bb84Settings): number {
  return s.source.intensities.reduce((sum, k, i) => sum + s.source.intensityProbabilities[i]! * pulseStatistics(s.link, k).click, 0);
}

/** Pulses of an EC block: block_pulses, capped so the expected detections fit one frame. */
export function ecBlockPulses(s: Bb84Settings, clickProbability = clickProbabilityPerPulse(s)): number {
  const cap = clickProbability > 0 ? Math.floor((maxFrameDetections(s) * DETECTION_HEADROOM) / clickProbability) : s.blockPulses;
  return Math.max(1, Math.min(s.blockPulses, cap));
}

export interface PlannedRate {
  /** Pulses a PA block takes on average (N of Lim 2014: pa_block_bits key-basis detections). */
  paBlockPulses: number;
  /** The expected finite-key result for those pulses (rate per pulse, l, bounds, or the abort). */
  plan: Lim2014Rate;
  /** Secret bits per second of link time: rate per pulse × pulse rate. */
  secretBitsPerSecond: number;
}

/** What the configured link is expected to deliver (honest channel), for ETSI 004 QoS, the bench and the docs. */
export function plannedRate(s: Bb84Settings, fEC = PLANNING_F_EC, pulses?: number): PlannedRate {
  const settings = { ...decoySettings(s), pX: s.source.basisXProbability };
  const paBlockPulses = pulses ?? pulsesForKeyBlock(s.link, settings, s.paBlockBits);
  const plan = lim2014Rate(s.link, { ...settings, pulses: paBlockPulses }, fEC);
  return { paBlockPulses, plan, secretBitsPerSecond: plan.ratePerPulse * s.pulseRateHz };
}
