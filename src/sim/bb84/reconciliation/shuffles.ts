/**
 * The shuffled order of each Cascade pass (see cascadePermutation): a bucket sweep for long keys, a uniform
 * Fisher-Yates permutation for short ones, and the permutation-free views of passViews.ts where they apply.
 */
import { BitArray } from '../common/bits.js';
import { CascadeProtocolError } from './oracle.js';
import { passDigest } from './passSeeds.js';
import { affineView, isAffinePass, isTwoBlockPass, twoBlockMembers } from './passViews.js';
import { validateSeed } from './variants.js';
import { PermutationScratch, pooledKeyBits, releaseKeyBits } from './workspace.js';
import { Xoshiro128 } from './xoshiro128.js';

/** Keys at least this long are first split into RS_BUCKETS random buckets (cache-friendly shuffling). */
const RS_MIN_LENGTH = 1 << 16;
const RS_BUCKETS = 256;

/** Bounds up to this are drawn from 16-bit halves of the generator's outputs (see shuffleRanks). */
const HALF_DRAW_BOUND = 1 << 16;

/**
 * ranks[0, len) = a uniformly random permutation of 0..len-1, by the "inside-out" Fisher-Yates
 * (for i = 0 .. len-1: j uniform in [0, i], ranks[i] = ranks[j], ranks[j] = i), which needs no
 * initial identity. j is drawn with Lemire's multiply-and-reject, unbiased, from the 16-bit halves
 * of each output, low half first (int32 arithmetic, one output per two indices). Only short keys
 * (under RS_MIN_LENGTH bits) are shuffled this way, so len <= 2^16.
 */
function shuffleRanks(ranks: Int32Array, len: number, rng: Xoshiro128): void {
  if (len > HALF_DRAW_BOUND) throw new RangeError(`shuffleRanks: ${len} items, at most ${HALF_DRAW_BOUND}`);
  let i = 0;
  // The generator in locals: this loop is the hottest of the whole shuffle.
  let s0 = rng.s0;
  let s1 = rng.s1;
  let s2 = rng.s2;
  let s3 = rng.s3;
  while (i < len) {
    const x = Math.imul(s1, 5);
    const out = Math.imul((x << 7) | (x >>> 25), 9);
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >>> 21);
    // m = r * (i + 1) < 2^32: its high 16 bits are the draw; low ones under 2^16 mod (i + 1) are rejected.
    let m = Math.imul(out & 0xffff, i + 1);
    let low = m & 0xffff;
    if (low > i || low >= HALF_DRAW_BOUND % (i + 1)) {
      const j = m >>> 16;
      ranks[i] = ranks[j]!;
      ranks[j] = i;
      if (++i === len) break;
    }
    m = Math.imul(out >>> 16, i + 1);
    low = m & 0xffff;
    if (low > i || low >= HALF_DRAW_BOUND % (i + 1)) {
      const j = m >>> 16;
      ranks[i] = ranks[j]!;
      ranks[j] = i;
      i++;
    }
  }
  rng.s0 = s0;
  rng.s1 = s1;
  rng.s2 = s2;
  rng.s3 = s3;
}

/** Draws a uniform bucket (one byte) per index; offsets[b + 1] counts bucket b, then becomes a prefix sum. */
function assignBuckets(bucketOf: Uint8Array, offsets: Int32Array, rng: Xoshiro128): void {
  const n = bucketOf.length;
  const whole = n & ~3;
  for (let i = 0; i < whole; i += 4) {
    const r = rng.next();
    const b0 = r & 0xff;
    const b1 = (r >>> 8) & 0xff;
    const b2 = (r >>> 16) & 0xff;
    const b3 = r >>> 24;
    bucketOf[i] = b0;
    bucketOf[i + 1] = b1;
    bucketOf[i + 2] = b2;
    bucketOf[i + 3] = b3;
    offsets[b0 + 1]!++;
    offsets[b1 + 1]!++;
    offsets[b2 + 1]!++;
    offsets[b3 + 1]!++;
  }
  let r = rng.next();
  for (let i = whole; i < n; i++) {
    const b = r & 0xff;
    r >>>= 8;
    bucketOf[i] = b;
    offsets[b + 1]!++;
  }
  for (let b = 0; b < RS_BUCKETS; b++) offsets[b + 1]! += offsets[b]!;
}

/**
 * The permutation of pass `pass` for a key of n bits whose pass uses blocks of `blockSize` bits
 * (default n): element j is the original index of the bit at shuffled position j. Deterministic in
 * (seed, pass, n, blockSize); both ends call this.
 *
 * Built one of these ways:
 * - Most passes: one xoshiro128** generator seeded with SHA-256(domain, seed, pass, n) drives
 *   everything. Keys of RS_MIN_LENGTH bits or more: every index goes to one of 256 buckets, uniformly
 *   and independently (one byte per index, 4 per output), and the order is bucket 0's indices in
 *   increasing order, then bucket 1's, and so on - the first stage of the Rao-Sandelius shuffle
 *   without the shuffle inside each bucket. The set of indices in any block of positions is then a
 *   random set spread evenly over the key, which is what a pass is for: it separates the errors the
 *   earlier passes left together in pairs. The order inside a block only decides which halves BINARY
 *   bisects into, and any fixed order finds the error. Measured with bench/cascade.ts on 10^5- and
 *   10^6-bit blocks at 1, 2 and 5 % QBER, every variant leaks the same (f within the spread between
 *   trials, ±0.003) and leaves no residual error with this order as with a uniform permutation (Rao-Sandelius with Fisher-Yates in
 *   every bucket, this module's v2), at a fraction of the cost: one sweep over the key, no random
 *   access. Short keys: a uniform permutation by the inside-out Fisher-Yates with unbiased bounded
 *   draws (see shuffleRanks).
 * - Two-block passes (n/2 <= blockSize < n: the n/2 passes of the optimized variants): block 0 is a
 *   uniformly random set of exactly blockSize indices (see twoBlockMembers), block 1 the rest, each
 *   block in increasing index order. A uniform split is what such a pass is for; the order inside a
 *   block only decides which sub-blocks BINARY bisects into, and any fixed order finds the error (the
 *   earlier passes' blocks, shuffled uniformly, are unrelated to index order). In exchange the pass
 *   never needs a permutation array: positions and sub-block parities come from the member set with
 *   a rank table (see SplitView), and the set costs n/32 generator outputs instead of n.
 */
export function cascadePermutation(seed: Uint8Array, pass: number, n: number, blockSize = n): Int32Array {
  validateSeed(seed);
  if (!Number.isInteger(n) || n < 0) throw new CascadeProtocolError('BAD_PARAMS', `key length must be a non-negative integer, got ${n}`);
  if (!Number.isInteger(blockSize) || blockSize < 1) throw new CascadeProtocolError('BAD_PARAMS', `block size must be a positive integer, got ${blockSize}`);
  const perm = new Int32Array(n);
  fillPassPermutation(perm, seed, pass, blockSize, new PermutationScratch());
  return perm;
}

/** Writes the permutation of a pass (key length perm.length, blocks of blockSize) into perm. */
function fillPassPermutation(perm: Int32Array, seed: Uint8Array, pass: number, blockSize: number, scratch: PermutationScratch): void {
  const n = perm.length;
  if (isAffinePass(pass, n, blockSize)) {
    const view = affineView(seed, pass, n);
    for (let j = 0; j < n; j++) perm[j] = view.originalAt(j);
    return;
  }
  if (!isTwoBlockPass(n, blockSize)) {
    const { key } = drawShuffle(new BitArray(n), seed, pass, n, scratch, perm); // only the order is wanted
    releaseKeyBits(key);
    return;
  }
  const members = twoBlockMembers(seed, pass, n, blockSize);
  let inFirst = 0;
  let inSecond = blockSize;
  for (let i = 0; i < n; i++) {
    if (members.get(i)) perm[inFirst++] = i;
    else perm[inSecond++] = i;
  }
}

/**
 * The bucket layout of a pass's order (see cascadePermutation): the generator, positioned after the
 * bucket draws, and for long keys the bucket of every index and each bucket's first position (both in
 * scratch: `next` is meant to be advanced as indices are placed). Short keys are one bucket holding every index.
 */
function shuffleLayout(seed: Uint8Array, pass: number, n: number, scratch: PermutationScratch): { rng: Xoshiro128; next: Int32Array; bucketOf: Uint8Array | undefined } {
  const rng = new Xoshiro128(passDigest(seed, pass, n));
  if (n < RS_MIN_LENGTH) return { rng, next: Int32Array.of(0), bucketOf: undefined };
  const bucketOf = scratch.buckets(n);
  const offsets = scratch.bucketOffsets(RS_BUCKETS + 1);
  assignBuckets(bucketOf, offsets, rng);
  return { rng, next: offsets, bucketOf };
}

/**
 * Bob's view of a pass's order: the permutation, its inverse and `key` shuffled, over pooled words (the caller
 * hands it back with releaseKeyBits). Long keys: one sweep in index order, each index appended to its bucket's
 * run (see cascadePermutation). Short keys: a uniform permutation by Fisher-Yates.
 */
export function drawShuffle(
  key: BitArray,
  seed: Uint8Array,
  pass: number,
  n: number,
  scratch: PermutationScratch,
  perm: Int32Array = new Int32Array(n),
  inv: Int32Array = new Int32Array(n),
): { perm: Int32Array; inv: Int32Array; key: BitArray } {
  const shuffled = pooledKeyBits(n); // zeroed: the sweep ORs bits in
  const dst = shuffled.words;
  const src = key.words;
  const { rng, next, bucketOf } = shuffleLayout(seed, pass, n, scratch);
  if (bucketOf) {
    for (let x = 0; x < n; x++) {
      const j = next[bucketOf[x]!]!++;
      perm[j] = x;
      inv[x] = j;
      dst[j >>> 5]! |= ((src[x >>> 5]! >>> (x & 31)) & 1) << (j & 31); // branch-free: the bit is a coin flip
    }
    return { perm, inv, key: shuffled };
  }
  const ranks = scratch.rankSpace(n);
  shuffleRanks(ranks, n, rng);
  for (let j = 0; j < n; j++) {
    const x = ranks[j]!;
    perm[j] = x;
    inv[x] = j;
    dst[j >>> 5]! |= ((src[x >>> 5]! >>> (x & 31)) & 1) << (j & 31);
  }
  return { perm, inv, key: shuffled };
}

/**
 * Alice's view of a pass's order: only `key` shuffled (as drawShuffle, without the permutation arrays), over pooled
 * words (the caller hands it back with releaseKeyBits).
 */
export function shuffleKey(key: BitArray, seed: Uint8Array, pass: number, scratch: PermutationScratch): BitArray {
  const n = key.length;
  const out = pooledKeyBits(n); // zeroed: the sweep ORs bits in
  const dst = out.words;
  const src = key.words;
  const { rng, next, bucketOf } = shuffleLayout(seed, pass, n, scratch);
  if (bucketOf) {
    for (let x = 0; x < n; x++) {
      const j = next[bucketOf[x]!]!++;
      dst[j >>> 5]! |= ((src[x >>> 5]! >>> (x & 31)) & 1) << (j & 31); // branch-free: the bit is a coin flip
    }
    return out;
  }
  const ranks = scratch.rankSpace(n);
  shuffleRanks(ranks, n, rng);
  for (let j = 0; j < n; j++) {
    const x = ranks[j]!;
    dst[j >>> 5]! |= ((src[x >>> 5]! >>> (x & 31)) & 1) << (j & 31);
  }
  return out;
}
