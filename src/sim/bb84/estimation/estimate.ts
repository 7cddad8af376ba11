/**
 * Stage 4: parameter estimation. One end picks a fresh seed with a CSPRNG and sends it; both ends expand it with
 * `sharedSeedRng` into the same uniformly random sample of `sampleSize` positions, disclose their bits there, count
 * the disagreements and remove the sample from the key.
 *
 *   initiator -> peer: { seed, sampleSize }          (newSampleSeed())
 *   each end -> other: takeSample(myBits, params).sample
 *   each end:          estimate(myBits, peerSample, params)  -> identical statistics, own remaining key
 *
 * Upper bound (documented choice): Serfling's inequality for sampling without replacement. With k sampled and
 * n remaining bits (N = n + k) and e_k the sample error rate, the error fraction of the *remaining* bits exceeds
 *   e_k + delta,  delta = sqrt( N·(n+1)·ln(1/epsPE) / (2·k·n²) )
 * with probability at most epsPE. (From Serfling: P(mean_N - e_k ≥ t) ≤ exp(-2kt²/(1 - (k-1)/N)) with
 * e_rem - e_k = (N/n)·(mean_N - e_k).) For n ≫ k this is the Hoeffding term sqrt(ln(1/eps)/(2k)). It bounds the
 * quantity finite-key privacy amplification needs: the error rate of the bits that stay in the key.
 *
 * Abort: qberUpper > qberThreshold drops the block (a deliberate drop, not a failure).
 */
import { BitArray } from '../common/bits.js';
import { advance, dropped, kept, requireStage, type KeyBlock, type StageOutcome } from '../common/keyBlock.js';
import { cryptoRng, sharedSeedRng, type Rng } from '../common/rng.js';
import { compressBits, invertBits } from '../sifting/sift.js';

export const SAMPLE_SEED_BYTES = 32;
/** Random words drawn per batch when picking sample positions. */
const SAMPLE_BATCH_WORDS = 8192;
/** Default abort threshold: BB84 yields no key above about 11 % QBER. */
export const DEFAULT_QBER_THRESHOLD = 0.11;

export interface EstimateParams {
  /** Shared seed (SAMPLE_SEED_BYTES from a CSPRNG, picked by one end and sent to the other). */
  seed: Uint8Array;
  /** Number of key bits to disclose and compare. */
  sampleSize: number;
  /** Probability that the true error rate of the remaining bits exceeds qberUpper. */
  epsPE: number;
  /** Drop the block when qberUpper exceeds this. */
  qberThreshold: number;
}

export interface EstimateResult {
  sampleSize: number;
  errors: number;
  /** errors / sampleSize. */
  qber: number;
  /** Serfling upper bound on the error rate of the remaining bits (≥ qber, ≤ 1). */
  qberUpper: number;
  /** This end's key with the sampled bits removed. */
  remaining: BitArray;
}

/** A fresh sample seed from the CSPRNG. */
export function newSampleSeed(rng: Rng = cryptoRng()): Uint8Array {
  const w = new Uint32Array(SAMPLE_SEED_BYTES / 4);
  rng.fillWords(w);
  const out = new Uint8Array(SAMPLE_SEED_BYTES);
  for (let i = 0; i < out.length; i++) out[i] = (w[i >>> 2]! >>> (8 * (i & 3))) & 0xff;
  return out;
}

/**
 * The sample as a mask over `total` positions with exactly `sampleSize` ones, uniformly random given the seed;
 * identical at both ends for the same seed. Draws the smaller of the sample and its complement.
 */
export function sampleMask(total: number, sampleSize: number, seed: Uint8Array): BitArray {
  if (!Number.isInteger(total) || total < 0 || total > 0x100000000) throw new RangeError(`sampleMask: total must be an integer in [0, 2^32], got ${total}`);
  if (!Number.isInteger(sampleSize) || sampleSize < 0 || sampleSize > total) throw new RangeError(`sampleMask: sampleSize must be an integer in [0, ${total}], got ${sampleSize}`);
  const rng = sharedSeedRng(seed);
  const complement = sampleSize > total / 2;
  const picks = complement ? total - sampleSize : sampleSize;
  const mask = new BitArray(total);
  const w = mask.words;
  // randomBelow inlined over batches of the same stream (same positions, without a call and checks per draw).
  const limit = 0x100000000 - (0x100000000 % total);
  const batch = new Uint32Array(Math.min(SAMPLE_BATCH_WORDS, picks + 64));
  let next = batch.length;
  for (let chosen = 0; chosen < picks; ) {
    if (next === batch.length) {
      rng.fillWords(batch);
      next = 0;
    }
    const x = batch[next++]!;
    if (x >= limit) continue;
    // x % total without a floating-point remainder call: x, total < 2^32, so the quotient is exact after floor.
    const pos = total === 0x100000000 ? x : x - Math.floor(x / total) * total;
    const bit = 1 << (pos & 31);
    if ((w[pos >>> 5]! & bit) === 0) {
      w[pos >>> 5]! |= bit;
      chosen++;
    }
  }
  return complement ? invertBits(mask) : mask;
}

/** Splits this end's key into the disclosed sample and the remaining key. */
export function takeSample(bits: BitArray, params: Pick<EstimateParams, 'seed' | 'sampleSize'>): { sample: BitArray; remaining: BitArray } {
  checkSampleSize(bits.length, params.sampleSize);
  const mask = sampleMask(bits.length, params.sampleSize, params.seed);
  return { sample: compressBits(bits, mask), remaining: compressBits(bits, invertBits(mask)) };
}

/** Serfling upper bound on the error rate of n remaining bits given `errors` in a sample of k (see file comment). */
export function qberUpperBound(errors: number, k: number, n: number, epsPE: number): number {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`qberUpperBound: sample size must be a positive integer, got ${k}`);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`qberUpperBound: remaining size must be a positive integer, got ${n}`);
  if (!Number.isInteger(errors) || errors < 0 || errors > k) throw new RangeError(`qberUpperBound: errors must be an integer in [0, ${k}], got ${errors}`);
  if (!(epsPE > 0 && epsPE < 1)) throw new RangeError(`qberUpperBound: epsPE must be in (0, 1), got ${epsPE}`);
  const total = n + k;
  const delta = Math.sqrt((total * (n + 1) * Math.log(1 / epsPE)) / (2 * k * n * n));
  return Math.min(1, errors / k + delta);
}

/** One end's estimation: compares its sample with the peer's, returns the statistics and its remaining key. */
export function estimate(mine: BitArray, peerSample: BitArray, params: Pick<EstimateParams, 'seed' | 'sampleSize' | 'epsPE'>): EstimateResult {
  const { sample, remaining } = takeSample(mine, params);
  if (peerSample.length !== sample.length) throw new RangeError(`estimate: peer sample has ${peerSample.length} bits, expected ${sample.length}`);
  const errors = sample.hammingDistance(peerSample);
  const k = params.sampleSize;
  return { sampleSize: k, errors, qber: errors / k, qberUpper: qberUpperBound(errors, k, remaining.length, params.epsPE), remaining };
}

/** The stage over a KeyBlock: 'sifted' -> 'estimated', or dropped when qberUpper > qberThreshold. */
export function estimateBlock(block: KeyBlock, peerSample: BitArray, params: EstimateParams): StageOutcome<KeyBlock> {
  requireStage(block, 'sifted', 'estimateBlock');
  const r = estimate(block.bits, peerSample, params);
  if (r.qberUpper > params.qberThreshold) {
    return dropped('qber-too-high', `QBER upper bound ${r.qberUpper.toFixed(4)} (measured ${r.qber.toFixed(4)}, ${r.errors}/${r.sampleSize}) exceeds threshold ${params.qberThreshold}`);
  }
  return kept(
    advance(block, 'estimated', {
      bits: r.remaining,
      siftedLength: block.bits.length,
      sampleSize: r.sampleSize,
      sampleErrors: r.errors,
      qberEstimate: r.qber,
      qberUpper: r.qberUpper,
    }),
  );
}

function checkSampleSize(total: number, sampleSize: number): void {
  if (!Number.isInteger(sampleSize) || sampleSize < 1 || sampleSize >= total) {
    throw new RangeError(`estimate: sampleSize must be an integer in [1, ${total - 1}] for a ${total}-bit key, got ${sampleSize}`);
  }
}
