/**
 * Cascade information reconciliation (Brassard & Salvail 1993) with batched parity exchange.
 *
 * Bob corrects his sifted key towards Alice's by asking her for parities of blocks of shuffled
 * positions. The classical channel is the {@link ParityOracle} interface: one call is one round trip
 * and carries every question of one "level" of the protocol:
 *   - round 1: the top-level block parities of every pass (Alice's key never changes, so asking them
 *     all at once discloses exactly the same bits as asking pass by pass; see `prefetchTopLevel`);
 *   - then one round per level of BINARY, run in lockstep over every odd block of every pass
 *     (the blocks of the current pass and the blocks of earlier passes re-opened by the cascade effect).
 *
 * Shuffles: every pass, the first included, uses its own pseudo-random order derived from the
 * 32-byte `shuffleSeed` (chosen by the initiator from a CSPRNG and sent explicitly). Shuffling the first
 * pass too protects against bursts of errors (real detectors produce them); with uniformly placed errors
 * it makes no difference. The permutation is public anyway, so the generator needs no secrecy, only
 * determinism and good mixing: SHA-256(domain, seed, pass, n) seeds a xoshiro128** generator. Long keys
 * (the default blocks) put every index into one of 256 random buckets and take the buckets in order, each
 * in index order: a pass's blocks are then random sets, which is what Cascade needs of them, in one
 * sweep (see cascadePermutation); short keys get a uniform permutation (Fisher-Yates, unbiased bounded
 * integers by rejection). Two exceptions need no permutation array: the first pass, when it has three or more blocks, uses a
 * random affine order j -> (a j + b) mod n (AffineView: spreads bursts as well, and for independent
 * errors any fixed order is as good); the passes of exactly two blocks (the n/2 passes) are a uniformly
 * random split, each block in index order (SplitView). docs/bb84.md has the table.
 *
 * Presets (measured with bench/cascade.ts, n = 10^6, QBER 2 %, both ends in one process):
 *   ORIGINAL_CASCADE         f = 1.154, ~85 round trips
 *   OPTIMIZED_CASCADE        f = 1.083, ~85 round trips   (DEFAULT_CASCADE)
 *   HIGH_EFFICIENCY_CASCADE  f = 1.038, ~490 round trips
 * f = leakedBits / (n h(q)); see efficiency().
 *
 * Conventions: passes are numbered from 0 in {@link ParityQuestion}; in pass p, position j of the
 * shuffled key holds original bit perm_p[j]. A top-level block is [b*k, min((b+1)*k, n)); a block
 * [s, e) of length >= 2 splits into [s, m) and [m, e) with m = s + ceil((e - s) / 2). BINARY asks
 * only for the left half; the right half's parity is inferred (parent xor left) and costs nothing.
 *
 * Leak accounting: every parity Alice discloses is one bit of `leakedBits` (exactly one per question).
 * Parities Bob can infer from disclosed ones (right halves; the last top-level block of every pass
 * after the first, from the parity of the whole key disclosed by pass 0) are never asked.
 */
import { createHash } from 'node:crypto';
import { BitArray, popcount32 } from './bits.js';
import { RoundProtocolError } from '../Simulator.js';
import { randomBelow, sharedSeedRng } from './rng.js';

// ---------------------------------------------------------------------------------------------
// Wire types and the channel interface
// ---------------------------------------------------------------------------------------------

/** Parity of Alice's bits at shuffled positions [start, end) of pass `pass` (0-based). */
export type ParityQuestion = { pass: number; start: number; end: number };

/** Bob's view of the classical channel: one call = one round trip. */
export interface ParityOracle {
  /** Resolves one bit (0/1) per question, in order. */
  askParities(questions: ParityQuestion[]): Promise<Uint8Array>;
}

export type CascadeErrorCode =
  /** Parameters or seed are malformed (both ends must agree on them). */
  | 'BAD_PARAMS'
  /** A question names a pass or range outside the key, or is not a question at all. */
  | 'BAD_QUESTION'
  /** Answering would disclose more parities than the responder's budget. */
  | 'TOO_MANY_QUESTIONS'
  /** The answer batch has the wrong length or a value other than 0/1. */
  | 'BAD_ANSWER'
  /** Alice's answers contradict each other (a bit would be corrected twice). */
  | 'INCONSISTENT_ANSWERS';

/**
 * A malformed Cascade message or parameter set. Extends the simulator's RoundProtocolError: the
 * round is abandoned and no key is stored.
 */
export class CascadeProtocolError extends RoundProtocolError {
  constructor(
    readonly code: CascadeErrorCode,
    message: string,
  ) {
    super(`cascade ${code}: ${message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Parameters and presets
// ---------------------------------------------------------------------------------------------

export interface CascadeParams {
  /** QBER estimate both ends agreed on (from the estimation stage), in [0, 0.5). */
  estimatedQber: number;
  /** Number of passes, 1..MAX_PASSES (the presets use 4 or more). */
  passes: number;
  /** Block size of the first pass from the QBER (clamped to [MIN_BLOCK_SIZE, n]). Default: 0.73 / q. */
  firstBlockSize?: (qber: number) => number;
  /**
   * Block size of pass `pass` (>= 1) from the previous pass's size, the first pass's size and n
   * (clamped to [MIN_BLOCK_SIZE, n]). Default: doubling.
   */
  nextBlockSize?: (pass: number, previous: number, first: number, n: number) => number;
  /**
   * Ask the top-level parities of every pass in the first round trip (default true). Same questions,
   * same leak, passes - 1 fewer round trips.
   */
  prefetchTopLevel?: boolean;
  /**
   * Reuse the sub-block parities already disclosed when the cascade effect re-opens a block of an
   * earlier pass (default true): BINARY restarts from the smallest odd block already known, and no
   * parity is ever asked twice. `false` is the textbook behaviour (restart BINARY from the top-level
   * block, asking again and counting again every parity on the way); it exists only to measure the gain.
   */
  reuseKnownParities?: boolean;
  /** Name of the variant, for stats. */
  name?: string;
  /** Where the variant comes from. */
  source?: string;
}

/** A variant: everything but the QBER estimate. Use as `{ ...ORIGINAL_CASCADE, estimatedQber }`. */
export type CascadeVariant = Omit<CascadeParams, 'estimatedQber'>;

/** Most passes a parameter set may ask for (the optimized presets use 14). */
export const MAX_PASSES = 64;
/** Smallest block size used (a 1-bit block would disclose a key bit per parity). */
export const MIN_BLOCK_SIZE = 4;
/** Length of the shuffle seed in bytes. */
export const SHUFFLE_SEED_BYTES = 32;

/**
 * The original protocol: 4 passes, k1 = 0.73 / q, then doubling.
 * G. Brassard, L. Salvail, "Secret-key reconciliation by public discussion", EUROCRYPT '93, LNCS 765.
 */
export const ORIGINAL_CASCADE: CascadeVariant = {
  name: 'original',
  source: 'Brassard & Salvail, EUROCRYPT 1993: k1 = 0.73/q, k(i+1) = 2 k(i), 4 passes',
  passes: 4,
  firstBlockSize: (q) => 0.73 / q,
  nextBlockSize: (_pass, previous) => 2 * previous,
};

/** Smallest power of two >= x (x >= 1). */
function nextPow2(x: number): number {
  let p = 1;
  while (p < x) p *= 2;
  return p;
}

/**
 * Recommended default. The original's first two passes (k1 = 0.73/q, k2 = 2 k1), then - following
 * J. Martinez-Mateo, C. Pacher, M. Peev, A. Ciurana, V. Martin, "Demystifying the information
 * reconciliation protocol Cascade", Quantum Inf. Comput. 15 (2015), arXiv:1407.3257 - every later
 * pass uses blocks of n/2 and there are many of them: such a pass costs one disclosed parity
 * (the other half's is inferred) and no round trip when it finds nothing, yet catches what the first
 * passes left. Measured (bench/cascade.ts, n = 10^6): f = 1.07 / 1.08 / 1.09 at 1 / 2 / 5 % with
 * about as many round trips as the original, and no residual error in 5,000 blocks of 10^4 bits at
 * 0.5-8 % (with only 2 or 4 such passes, 7 % or 2 % of those blocks kept an error pair).
 * With a QBER estimate of 0 the first two passes are one block each, and the n/2 passes (one parity
 * each) still catch error pairs the estimate missed.
 */
export const OPTIMIZED_CASCADE: CascadeVariant = {
  name: 'optimized',
  source: 'Brassard & Salvail 1993 passes 1-2 (k1 = 0.73/q, k2 = 2 k1) + Martinez-Mateo et al. 2015 (arXiv:1407.3257) later passes k = n/2; 14 passes',
  passes: 14,
  firstBlockSize: (q) => 0.73 / q,
  nextBlockSize: (pass, previous, _first, n) => (pass === 1 ? 2 * previous : Math.ceil(n / 2)),
};

/**
 * Fewest disclosed bits when round trips are cheap: power-of-two blocks after Martinez-Mateo et al.
 * 2015 (arXiv:1407.3257), k1 = 2^ceil(log2(1/q)), k2 = 4 k1, later passes n/2, 14 passes.
 * Measured: f = 1.04 at 2 % for n = 10^5..10^6, but 3-6 times the round trips of the others
 * (bigger blocks make longer chains of cascade effects, each link a full BINARY).
 */
export const HIGH_EFFICIENCY_CASCADE: CascadeVariant = {
  name: 'high-efficiency',
  source: 'Martinez-Mateo et al. 2015 (arXiv:1407.3257) guidelines: k1 = 2^ceil(log2(1/q)), k2 = 4 k1, k(i>=3) = n/2; 14 passes',
  passes: 14,
  firstBlockSize: (q) => nextPow2(1 / q),
  nextBlockSize: (pass, previous, _first, n) => (pass === 1 ? 4 * previous : Math.ceil(n / 2)),
};

/** The variant the BB84 pipeline should use unless configured otherwise. */
export const DEFAULT_CASCADE: CascadeVariant = OPTIMIZED_CASCADE;

/** The block size of every pass for a key of n bits (what both ends compute from the shared params). */
export function cascadeBlockSizes(params: CascadeParams, n: number): number[] {
  validateParams(params);
  if (!Number.isInteger(n) || n < 0) throw new CascadeProtocolError('BAD_PARAMS', `key length must be a non-negative integer, got ${n}`);
  const clamp = (k: number): number => {
    if (n === 0) return 1;
    if (!Number.isFinite(k) || k >= n) return n; // q = 0 (or tiny): one block covering the whole key
    return Math.min(n, Math.max(MIN_BLOCK_SIZE, Math.round(k)));
  };
  const q = params.estimatedQber;
  const first = clamp((params.firstBlockSize ?? ORIGINAL_CASCADE.firstBlockSize!)(q));
  const next = params.nextBlockSize ?? ORIGINAL_CASCADE.nextBlockSize!;
  const sizes = [first];
  for (let p = 1; p < params.passes; p++) sizes.push(clamp(next(p, sizes[p - 1]!, first, n)));
  return sizes;
}

function validateParams(params: CascadeParams): void {
  const q = params.estimatedQber;
  if (typeof q !== 'number' || !(q >= 0 && q < 0.5)) throw new CascadeProtocolError('BAD_PARAMS', `estimatedQber must be in [0, 0.5), got ${q}`);
  if (!Number.isInteger(params.passes) || params.passes < 1 || params.passes > MAX_PASSES) {
    throw new CascadeProtocolError('BAD_PARAMS', `passes must be an integer in [1, ${MAX_PASSES}], got ${params.passes}`);
  }
}

function validateSeed(seed: Uint8Array): void {
  if (!(seed instanceof Uint8Array) || seed.length !== SHUFFLE_SEED_BYTES) {
    throw new CascadeProtocolError('BAD_PARAMS', `shuffleSeed must be ${SHUFFLE_SEED_BYTES} bytes`);
  }
}

// ---------------------------------------------------------------------------------------------
// Shuffles
// ---------------------------------------------------------------------------------------------

/** xoshiro128** (Blackman & Vigna, 2018): fast, well mixed, 2^128 - 1 period. Not secret: the shuffles are public. */
class Xoshiro128 {
  // Public so that shuffleRanks can run the generator in local variables.
  s0: number;
  s1: number;
  s2: number;
  s3: number;

  constructor(state: Uint8Array) {
    const v = new DataView(state.buffer, state.byteOffset, 16);
    this.s0 = v.getUint32(0, true);
    this.s1 = v.getUint32(4, true);
    this.s2 = v.getUint32(8, true);
    this.s3 = v.getUint32(12, true);
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the all-zero state is a fixed point
  }

  /** Next uniform 32-bit unsigned integer. */
  next(): number {
    const x = Math.imul(this.s1, 5);
    const result = Math.imul((x << 7) | (x >>> 25), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = (this.s3 << 11) | (this.s3 >>> 21);
    return result;
  }

  /** Uniform integer in [0, bound), 1 <= bound <= 2^32, without modulo bias. */
  below(bound: number): number {
    if (bound <= EXACT_PRODUCT_BOUND) {
      // Lemire's multiply-and-reject: r * bound is exact in a double; keep the high 32 bits, reject
      // the few r whose low part falls under 2^32 mod bound.
      for (;;) {
        const m = this.next() * bound;
        const high = Math.floor(m / 4294967296);
        const low = m - high * 4294967296;
        if (low >= bound || low >= (4294967296 - bound) % bound) return high;
      }
    }
    const limit = 4294967296 - (4294967296 % bound);
    for (;;) {
      const r = this.next();
      if (r < limit) return r % bound;
    }
  }
}

/** Bounds up to this keep r * bound (r < 2^32) exact in a double. */
const EXACT_PRODUCT_BOUND = 2 ** 21;
/** Keys at least this long are first split into RS_BUCKETS random buckets (cache-friendly shuffling). */
const RS_MIN_LENGTH = 1 << 16;
const RS_BUCKETS = 256;
// v3: long keys in bucket order, no shuffle inside the buckets (v2: Fisher-Yates inside each bucket; v1: one
// generator per job). Peers of different versions order passes differently: their blocks fail verification.
const PERMUTATION_DOMAIN = Buffer.from('qkdm/cascade/permutation/v3', 'utf8');

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

/** True for a pass of exactly two blocks, the first at least as long as the second. */
function isTwoBlockPass(n: number, blockSize: number): boolean {
  return blockSize < n && 2 * blockSize >= n;
}

/** Keys shorter than this keep a·j + b (a, b < n) exact in a double for the affine first pass. */
const AFFINE_MAX_LENGTH = 1 << 26;

/** True for the first pass when it has three or more blocks: it is shuffled by an affine map (AffineView). */
function isAffinePass(pass: number, n: number, blockSize: number): boolean {
  return pass === 0 && 2 * blockSize < n && n < AFFINE_MAX_LENGTH;
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
    drawShuffle(undefined, seed, pass, n, scratch, perm);
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

/** Generator label of a two-block pass's member set (see labelledRng). */
const MEMBERS_LABEL = 0x100;
/** Generator label of the affine first pass's multiplier and offset. */
const AFFINE_LABEL = 0x101;

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** a^-1 mod n for gcd(a, n) = 1 (extended Euclid; every intermediate stays below n). */
function inverseMod(a: number, n: number): number {
  let [r0, r1] = [n, a];
  let [t0, t1] = [0, 1];
  while (r1 !== 0) {
    const q = Math.floor(r0 / r1);
    [r0, r1] = [r1, r0 - q * r1];
    [t0, t1] = [t1, t0 - q * t1];
  }
  return ((t0 % n) + n) % n;
}

/**
 * The first pass's order: shuffled position j holds original bit (a·j + b) mod n, with b uniform in
 * [0, n) and a uniform among the integers in [1, n) coprime to n. Why not a uniform permutation: for
 * errors placed independently any fixed order gives the same statistics, and a random affine map
 * spreads a burst of adjacent errors over different blocks (neighbours land a^-1 mod n positions
 * apart), which is what shuffling the first pass is for. It costs no arrays: positions and block
 * parities are computed (pass 1 is a uniform permutation, the later passes uniform splits).
 */
class AffineView {
  private readonly aInv: number;

  constructor(
    readonly n: number,
    readonly a: number,
    readonly b: number,
  ) {
    this.aInv = inverseMod(a, n);
  }

  /** Original bit at shuffled position j. */
  originalAt(j: number): number {
    return reduceMod(this.a * j + this.b, this.n);
  }

  /** Shuffled position of original bit x. */
  positionOf(x: number): number {
    return reduceMod((x - this.b + this.n) * this.aInv, this.n);
  }

  /** Parity of key's bits at shuffled positions [start, end). */
  parity(key: BitArray, start: number, end: number): number {
    const { n, a } = this;
    const w = key.words;
    let x = this.originalAt(start);
    let acc = 0;
    for (let j = start; j < end; j++) {
      acc ^= w[x >>> 5]! >>> (x & 31);
      x += a;
      if (x >= n) x -= n;
    }
    return acc & 1;
  }

  /** Parity of every block of k shuffled positions (the last may be shorter), in one sweep. */
  blockParities(key: BitArray, k: number): Uint8Array {
    const { n, a } = this;
    const w = key.words;
    const out = new Uint8Array(Math.ceil(n / k));
    let x = this.b;
    for (let blk = 0, j = 0; j < n; blk++) {
      const end = Math.min(n, j + k);
      let acc = 0;
      for (; j < end; j++) {
        acc ^= w[x >>> 5]! >>> (x & 31);
        x += a;
        if (x >= n) x -= n;
      }
      out[blk] = acc & 1;
    }
    return out;
  }
}

/**
 * v mod n for an integer 0 <= v < 2^53 (the affine products: n < 2^26). Cheaper than %, which on a double
 * beyond int32 is a floating-point remainder call; the products are exact, and the quotient of the division may
 * be one off, which the last step corrects.
 */
function reduceMod(v: number, n: number): number {
  const r = v - Math.floor(v / n) * n;
  return r < 0 ? r + n : r >= n ? r - n : r;
}

function affineView(seed: Uint8Array, pass: number, n: number): AffineView {
  const rng = labelledRng(passDigest(seed, pass, n), AFFINE_LABEL);
  const b = rng.below(n);
  let a = 1;
  if (n > 2) do a = 1 + rng.below(n - 1); while (gcd(a, n) !== 1);
  return new AffineView(n, a, b);
}

/**
 * Block 0 of a two-block pass: a uniformly random set of exactly k of the n indices, as a bit array.
 * Draws every bit from the generator (each index in with probability 1/2), then moves the count to k
 * by clearing uniformly drawn set bits (or setting clear ones) - about sqrt(n) draws. Every step
 * treats all indices alike, so the result's law is invariant under permutations of the indices; it
 * only puts mass on sets of size k, so it is the uniform law on them.
 */
export function twoBlockMembers(seed: Uint8Array, pass: number, n: number, k: number): BitArray {
  validateSeed(seed);
  if (!isTwoBlockPass(n, k)) throw new CascadeProtocolError('BAD_PARAMS', `block size ${k} does not make two blocks of ${n} bits`);
  // AES-CTR (native) for the n/32 words: a JavaScript generator made this the largest cost of the n/2 passes.
  const rng = sharedSeedRng(labelDigest(passDigest(seed, pass, n), MEMBERS_LABEL));
  const members = new BitArray(n);
  rng.fillWords(members.words);
  members.clearTail();
  let count = members.popcount();
  while (count > k) {
    const i = randomBelow(rng, n);
    if (members.get(i)) {
      members.set(i, 0);
      count--;
    }
  }
  while (count < k) {
    const i = randomBelow(rng, n);
    if (!members.get(i)) {
      members.set(i, 1);
      count++;
    }
  }
  return members;
}

/**
 * Reusable work space for pass orders. Fresh large typed arrays are expensive (the pages are faulted
 * in on first touch, and the garbage collector runs more often), so one of these serves every pass of
 * every block in this thread (SHARED_SCRATCH). That is safe because its users (drawShuffle, shuffleKey)
 * are synchronous: nothing else runs between filling and reading it. It never holds key bits.
 */
class PermutationScratch {
  private bucketOf: Uint8Array | undefined;
  private ranks: Int32Array | undefined;
  /** n bucket numbers (every entry is written by assignBuckets). */
  buckets(n: number): Uint8Array {
    if (!this.bucketOf || this.bucketOf.length < n) this.bucketOf = new Uint8Array(roundUpLength(n));
    return this.bucketOf.subarray(0, n);
  }
  /** Room for the ranks of a short key's Fisher-Yates. */
  rankSpace(len: number): Int32Array {
    if (!this.ranks || this.ranks.length < len) this.ranks = new Int32Array(len);
    return this.ranks;
  }
}

/** Keys differ in length by a few bits from block to block: work arrays are sized in steps of 2^16 elements. */
const LENGTH_STEP = 1 << 16;
function roundUpLength(n: number): number {
  return Math.ceil(n / LENGTH_STEP) * LENGTH_STEP;
}

const SHARED_SCRATCH = new PermutationScratch();

/**
 * Free lists of the large public arrays one reconciliation holds across round trips (Bob's
 * permutation, inverse and BINARY trees of a shuffled pass: 3-4 MB each for a 1-Mbit block), so
 * consecutive blocks reuse them instead of allocating about 14 MB per block. They hold positions and
 * error-parity flags, never key bits. Arrays are handed out as views of exactly the length asked for,
 * over buffers sized in steps of LENGTH_STEP elements; a few buffers are kept in all (several streams
 * may reconcile at once; beyond that, arrays are allocated and dropped as before).
 */
class ArrayPool<T extends Int32Array | Uint8Array> {
  private readonly free: ArrayBuffer[] = [];
  constructor(
    private readonly view: (buffer: ArrayBuffer, length: number) => T,
    private readonly bytesPerElement: number,
    private readonly maxKept: number,
  ) {}

  /** An array of `length` elements; zeroed when `zero` (else it holds whatever its last user left). */
  take(length: number, zero: boolean): T {
    const bytes = roundUpLength(length) * this.bytesPerElement;
    const i = this.free.findIndex((b) => b.byteLength === bytes);
    if (i < 0) return this.view(new ArrayBuffer(bytes), length);
    const a = this.view(this.free.splice(i, 1)[0]!, length);
    if (zero) a.fill(0);
    return a;
  }

  /** Returns an array from take(); the caller must not use it afterwards. */
  give(a: T): void {
    const buffer = a.buffer as ArrayBuffer;
    if (buffer.byteLength !== roundUpLength(a.length) * this.bytesPerElement || this.free.includes(buffer)) return;
    if (this.free.length >= this.maxKept) this.free.shift(); // drop the oldest (likely another key length)
    this.free.push(buffer);
  }
}

const INT32_POOL = new ArrayPool<Int32Array>((b, n) => new Int32Array(b, 0, n), 4, 8);
const UINT8_POOL = new ArrayPool<Uint8Array>((b, n) => new Uint8Array(b, 0, n), 1, 8);

/** SHA-256(domain, seed, pass, n): the root of everything random in pass `pass`. */
function passDigest(seed: Uint8Array, pass: number, n: number): Buffer {
  const info = Buffer.alloc(8);
  info.writeUInt32BE(pass >>> 0, 0);
  info.writeUInt32BE(n >>> 0, 4);
  return createHash('sha256').update(PERMUTATION_DOMAIN).update(seed).update(info).digest();
}

/** A generator of its own for one job of a pass (the shuffle itself uses passDigest directly). */
function labelledRng(digest: Buffer, label: number): Xoshiro128 {
  return new Xoshiro128(labelDigest(digest, label));
}

/** SHA-256(digest, label): the seed of one job of a pass. */
function labelDigest(digest: Buffer, label: number): Buffer {
  const info = Buffer.alloc(4);
  info.writeUInt32BE(label, 0);
  return createHash('sha256').update(digest).update(info).digest();
}

/**
 * The bucket layout of a pass's order (see cascadePermutation): the generator, positioned after the
 * bucket draws, the bucket offsets (prefix sums) and, for long keys, the bucket of every index (in
 * scratch). Short keys are one bucket holding every index.
 */
function shuffleLayout(seed: Uint8Array, pass: number, n: number, scratch: PermutationScratch): { rng: Xoshiro128; offsets: Int32Array; bucketOf: Uint8Array | undefined } {
  const rng = new Xoshiro128(passDigest(seed, pass, n));
  if (n < RS_MIN_LENGTH) return { rng, offsets: Int32Array.of(0, n), bucketOf: undefined };
  const bucketOf = scratch.buckets(n);
  const offsets = new Int32Array(RS_BUCKETS + 1);
  assignBuckets(bucketOf, offsets, rng);
  return { rng, offsets, bucketOf };
}

/**
 * Bob's view of a pass's order: the permutation, its inverse and `key` shuffled (an all-zero key when
 * undefined). Long keys: one sweep in index order, each index appended to its bucket's run (see
 * cascadePermutation). Short keys: a uniform permutation by Fisher-Yates.
 */
function drawShuffle(
  key: BitArray | undefined,
  seed: Uint8Array,
  pass: number,
  n: number,
  scratch: PermutationScratch,
  perm: Int32Array = new Int32Array(n),
  inv: Int32Array = new Int32Array(n),
): { perm: Int32Array; inv: Int32Array; key: BitArray } {
  const shuffled = new BitArray(n);
  const dst = shuffled.words;
  const src = key ? key.words : new Uint32Array(dst.length);
  const { rng, offsets, bucketOf } = shuffleLayout(seed, pass, n, scratch);
  if (bucketOf) {
    const next = offsets.slice(0, offsets.length - 1);
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

/** Alice's view of a pass's order: only `key` shuffled (as drawShuffle, without the permutation arrays). */
function shuffleKey(key: BitArray, seed: Uint8Array, pass: number, scratch: PermutationScratch): BitArray {
  const n = key.length;
  const out = new BitArray(n);
  const dst = out.words;
  const src = key.words;
  const { rng, offsets, bucketOf } = shuffleLayout(seed, pass, n, scratch);
  if (bucketOf) {
    const next = offsets.slice(0, offsets.length - 1);
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

/** Parity of (a AND b), bitwise over equal-length arrays. */
function andParity(a: BitArray, b: BitArray): number {
  let acc = 0;
  for (let w = 0; w < a.words.length; w++) acc ^= a.words[w]! & b.words[w]!;
  return popcount32(acc >>> 0) & 1;
}

/**
 * A two-block pass seen through its member set: shuffled position j < k is the j-th member (block 0)
 * in increasing index order, position k + j the j-th non-member. Ranks per 32-bit word make position
 * lookups O(1), index lookups O(log n) and a sub-block's parity a word-wise scan of its index range.
 */
class SplitView {
  /** rank[w] = members among indices [0, 32 w). */
  private readonly rank: Int32Array;

  constructor(
    readonly members: BitArray,
    readonly k: number,
  ) {
    const words = members.words;
    this.rank = new Int32Array(words.length + 1);
    for (let w = 0; w < words.length; w++) this.rank[w + 1] = this.rank[w]! + popcount32(words[w]!);
  }

  /** Members among indices [0, x). */
  private rankOf(x: number): number {
    const r = x & 31;
    return this.rank[x >>> 5]! + (r === 0 ? 0 : popcount32(this.members.words[x >>> 5]! & ((1 << r) - 1)));
  }

  /** Shuffled position of original index x. */
  positionOf(x: number): number {
    const r = this.rankOf(x);
    return this.members.get(x) ? r : this.k + x - r;
  }

  /** Original index at shuffled position j. */
  originalAt(j: number): number {
    return j < this.k ? this.select(j, true) : this.select(j - this.k, false);
  }

  /** Index of the j-th (from 0) member, or of the j-th non-member. */
  private select(j: number, member: boolean): number {
    const rank = this.rank;
    const before = (w: number): number => (member ? rank[w]! : 32 * w - rank[w]!);
    let lo = 0;
    let hi = rank.length - 1; // before(lo) <= j < before(hi)
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      if (before(mid) <= j) lo = mid;
      else hi = mid;
    }
    let word = member ? this.members.words[lo]! : ~this.members.words[lo]!;
    for (let skip = j - before(lo); skip > 0; skip--) word &= word - 1; // drop the lowest set bits
    return 32 * lo + (31 - Math.clz32(word & -word));
  }

  /** Parity of key's bits at shuffled positions [start, end). */
  parity(key: BitArray, start: number, end: number): number {
    let p = 0;
    if (start < this.k) p ^= this.runParity(key, start, Math.min(end, this.k), true);
    if (end > this.k) p ^= this.runParity(key, Math.max(start, this.k) - this.k, end - this.k, false);
    return p;
  }

  /** Parity of key's bits at the a-th .. (b-1)-th member (or non-member), a < b. */
  private runParity(key: BitArray, a: number, b: number, member: boolean): number {
    const first = this.select(a, member);
    const last = this.select(b - 1, member);
    const mw = this.members.words;
    const kw = key.words;
    const w0 = first >>> 5;
    const w1 = last >>> 5;
    let acc = 0;
    for (let w = w0; w <= w1; w++) {
      let m = member ? mw[w]! : ~mw[w]!;
      if (w === w0) m &= ~0 << (first & 31);
      if (w === w1 && (last & 31) !== 31) m &= (1 << ((last & 31) + 1)) - 1;
      acc ^= kw[w]! & m;
    }
    return popcount32(acc >>> 0) & 1;
  }
}

// ---------------------------------------------------------------------------------------------
// Alice: the responder
// ---------------------------------------------------------------------------------------------

export interface CascadeResponderOptions {
  /**
   * Most parities this responder will ever disclose (default n: past that nothing secret is left).
   * A batch that would exceed it is refused whole.
   */
  maxDisclosedBits?: number;
}

/** Alice's side: answers Bob's parity questions about her key under the shared shuffles. */
export class CascadeResponder {
  readonly n: number;
  readonly passes: number;
  /** Parities disclosed so far (Alice's own count of the leak; privacy amplification uses it). */
  disclosedBits = 0;
  private readonly maxDisclosedBits: number;
  /** Alice's key in the shuffled order of each pass of three or more blocks (one block: the key itself), once asked. */
  private readonly passKeys: (BitArray | undefined)[];
  /** The member sets of the two-block passes, once asked. */
  private readonly splitViews: (SplitView | undefined)[];
  /** The first pass's order, once asked (when it is affine). */
  private affine: AffineView | undefined;
  private readonly sizes: number[];
  private readonly aliceKey: BitArray;
  private readonly wholeParity: number;
  private readonly seed: Uint8Array;
  private readonly scratch = SHARED_SCRATCH;
  private disposed = false;

  constructor(aliceKey: BitArray, params: CascadeParams, shuffleSeed: Uint8Array, options: CascadeResponderOptions = {}) {
    validateParams(params);
    validateSeed(shuffleSeed);
    this.aliceKey = aliceKey.clone();
    this.wholeParity = this.aliceKey.popcount() & 1;
    this.seed = shuffleSeed.slice();
    this.n = aliceKey.length;
    this.passes = params.passes;
    this.sizes = cascadeBlockSizes(params, this.n);
    this.maxDisclosedBits = options.maxDisclosedBits ?? this.n;
    this.passKeys = new Array<BitArray | undefined>(this.passes).fill(undefined);
    this.splitViews = new Array<SplitView | undefined>(this.passes).fill(undefined);
  }

  /**
   * Zeroes this end's copies of the key (the key and its shuffled orders) once the block is over; the responder
   * answers nothing afterwards.
   */
  dispose(): void {
    this.disposed = true;
    this.aliceKey.words.fill(0);
    for (const key of this.passKeys) key?.words.fill(0);
    this.passKeys.fill(undefined);
  }

  /** Validates every question, then answers all of them (one bit each) or none. */
  answer(questions: readonly ParityQuestion[]): Uint8Array {
    if (!Array.isArray(questions)) throw new CascadeProtocolError('BAD_QUESTION', 'questions must be an array');
    const count = questions.length;
    this.checkBudget(count);
    // Copy each field once as checked (a getter could answer differently on a second read).
    const triples = new Int32Array(3 * count);
    for (let i = 0; i < count; i++) {
      const q = questions[i] as unknown;
      if (typeof q !== 'object' || q === null) throw new CascadeProtocolError('BAD_QUESTION', `question ${i} is not an object`);
      const { pass, start, end } = q as Record<string, unknown>;
      if (!Number.isInteger(pass) || !Number.isInteger(start) || !Number.isInteger(end)) {
        throw new CascadeProtocolError('BAD_QUESTION', `question ${i}: pass, start and end must be integers`);
      }
      this.checkQuestion(i, pass as number, start as number, end as number);
      triples[3 * i] = pass as number;
      triples[3 * i + 1] = start as number;
      triples[3 * i + 2] = end as number;
    }
    return this.answerChecked(triples);
  }

  /** answer() for questions packed as (pass, start, end) triples, as the peer channel decodes them. */
  answerPacked(triples: Int32Array): Uint8Array {
    if (triples.length % 3 !== 0) throw new CascadeProtocolError('BAD_QUESTION', 'questions must be (pass, start, end) triples');
    const count = triples.length / 3;
    this.checkBudget(count);
    for (let i = 0; i < count; i++) this.checkQuestion(i, triples[3 * i]!, triples[3 * i + 1]!, triples[3 * i + 2]!);
    return this.answerChecked(triples);
  }

  private checkBudget(count: number): void {
    if (this.disposed) throw new CascadeProtocolError('BAD_QUESTION', 'the block is over: this responder was disposed');
    if (count > this.maxDisclosedBits - this.disclosedBits) {
      throw new CascadeProtocolError('TOO_MANY_QUESTIONS', `${count} more parities would exceed the budget of ${this.maxDisclosedBits} (already disclosed ${this.disclosedBits})`);
    }
  }

  private checkQuestion(i: number, pass: number, start: number, end: number): void {
    if (pass < 0 || pass >= this.passes) throw new CascadeProtocolError('BAD_QUESTION', `question ${i}: pass ${pass} not in [0, ${this.passes})`);
    if (start < 0 || start >= end || end > this.n) {
      throw new CascadeProtocolError('BAD_QUESTION', `question ${i}: range [${start}, ${end}) not within [0, ${this.n}) or empty`);
    }
  }

  /** Answers questions already checked (all of them, so a bad one discloses nothing). */
  private answerChecked(triples: Int32Array): Uint8Array {
    const count = triples.length / 3;
    const out = new Uint8Array(count);
    for (let i = 0; i < count; i++) out[i] = this.parity(triples[3 * i]!, triples[3 * i + 1]!, triples[3 * i + 2]!);
    this.disclosedBits += count;
    return out;
  }

  /** Parity of Alice's bits at shuffled positions [start, end) of the pass. */
  private parity(pass: number, start: number, end: number): number {
    if (start === 0 && end === this.n) return this.wholeParity;
    const k = this.sizes[pass]!;
    if (isTwoBlockPass(this.n, k)) {
      let view = this.splitViews[pass];
      if (!view) {
        view = new SplitView(twoBlockMembers(this.seed, pass, this.n, k), k);
        this.splitViews[pass] = view;
      }
      return view.parity(this.aliceKey, start, end);
    }
    if (isAffinePass(pass, this.n, k)) {
      this.affine ??= affineView(this.seed, pass, this.n);
      return this.affine.parity(this.aliceKey, start, end);
    }
    let key = this.passKeys[pass];
    if (!key) {
      key = shuffleKey(this.aliceKey, this.seed, pass, this.scratch);
      this.passKeys[pass] = key;
    }
    return key.parityRange(start, end);
  }
}

/** An in-process channel to a responder, for tests and single-process simulation. */
export class InMemoryOracle implements ParityOracle {
  roundTrips = 0;
  questionsAsked = 0;
  constructor(readonly responder: CascadeResponder) {}

  async askParities(questions: ParityQuestion[]): Promise<Uint8Array> {
    this.roundTrips++;
    this.questionsAsked += questions.length;
    // Copy what crosses the "wire" so neither side can alias the other's objects.
    return this.responder.answer(questions.map((q) => ({ pass: q.pass, start: q.start, end: q.end })));
  }
}

// ---------------------------------------------------------------------------------------------
// Bob: reconcile
// ---------------------------------------------------------------------------------------------

export interface CascadeResult {
  /** Bob's key after correction (equal to Alice's unless Cascade left residual errors). */
  corrected: BitArray;
  /** Parities disclosed by Alice: what privacy amplification must subtract. */
  leakedBits: number;
  /** Calls to the oracle. */
  roundTrips: number;
  /** Questions asked in total (equals leakedBits). */
  parityQuestions: number;
  /** Passes run. */
  passes: number;
  /** Bits Bob flipped (the errors found: correctedBits / n is the measured QBER). */
  correctedBits: number;
  /** Per pass: the block size, and the round trips, questions and flips spent while that pass ran. */
  passStats: PassStats[];
}

export interface PassStats {
  blockSize: number;
  roundTrips: number;
  parityQuestions: number;
  correctedBits: number;
}

const UNKNOWN = 0;
const PENDING = 1;
const KNOWN = 2;

/**
 * Bob's state for one pass. Nodes of the BINARY tree of top-level block b are numbered heap-style
 * (root 1, children 2h and 2h + 1) at offset b * span of `node`, which holds 0 (parity unknown),
 * 1 (asked in the current round) or 2 | e (known; e = error parity = Alice's parity xor Bob's current
 * parity). Error parities of known nodes are kept current as Bob flips bits.
 *
 * A pass of at most two blocks (the n/2 passes of the optimized variants) starts "light": it keeps
 * only which block each bit is in and the two error parities, and builds its permutation, inverse
 * and shuffled key only if one of its blocks turns odd. Most such passes never do, which saves two
 * n-entry Int32Arrays each.
 */
class BobPass {
  readonly span: number;
  /** The BINARY trees (allocated when the pass is materialized; light passes keep only lightRoots). */
  node: Uint8Array;
  /** Light passes: error parity entries (0, or KNOWN | e) of the one or two top-level blocks. */
  readonly lightRoots = new Uint8Array(2);
  /** Passes of one or three or more blocks, once materialized: the permutation and its inverse. */
  perm: Int32Array | undefined;
  inv: Int32Array | undefined;
  /** Bob's current key, shuffled for this pass (with perm). */
  key: BitArray | undefined;
  /** Two-block passes: bit x is 1 iff original bit x lies in block 0 (from the start). */
  firstBlock: BitArray | undefined;
  /** Two-block passes, once materialized: positions and parities from firstBlock, no permutation. */
  split: SplitView | undefined;
  /** The affine first pass: positions and parities computed, no permutation. */
  affine: AffineView | undefined;

  constructor(
    readonly index: number,
    readonly n: number,
    readonly blockSize: number,
    readonly numBlocks: number,
  ) {
    this.span = 2 * nextPow2(blockSize);
    this.node = new Uint8Array(0);
  }

  /** Light passes (at most two blocks) start without trees, permutation or shuffled key. */
  get light(): boolean {
    return this.inv === undefined && this.split === undefined && this.affine === undefined;
  }

  /** Shuffled position of original bit x (materialized passes). */
  positionOf(x: number): number {
    if (this.affine) return this.affine.positionOf(x);
    return this.split ? this.split.positionOf(x) : this.inv![x]!;
  }

  /** Original bit at shuffled position j (materialized passes). */
  originalAt(j: number): number {
    if (this.affine) return this.affine.originalAt(j);
    return this.split ? this.split.originalAt(j) : this.perm![j]!;
  }

  /** Parity of Bob's current key (`corrected`, in original order) at shuffled positions [start, end). */
  parity(corrected: BitArray, start: number, end: number): number {
    if (this.affine) return this.affine.parity(corrected, start, end);
    return this.split ? this.split.parity(corrected, start, end) : this.key!.parityRange(start, end);
  }
}

/** A BINARY search in progress: its current node (known, believed odd). */
interface Search {
  ps: BobPass;
  base: number; // b * span
  h: number;
  s: number;
  e: number;
}

/** Everything one reconciliation needs; `reconcile` is its only user. */
class BobReconciler {
  private readonly n: number;
  private readonly sizes: number[];
  private readonly numBlocksOf: number[];
  private readonly aliceTop: (Uint8Array | undefined)[];
  private aliceWholeParity = 0;
  private readonly built: BobPass[] = [];
  private readonly flippedEver: BitArray;
  private readonly scratch = SHARED_SCRATCH;
  /** Pooled arrays this reconciliation holds (see ArrayPool); handed back by release(). */
  private readonly leasedInt32: Int32Array[] = [];
  private readonly leasedUint8: Uint8Array[] = [];
  private readonly reuse: boolean;
  readonly corrected: BitArray;
  readonly stats = { leakedBits: 0, roundTrips: 0, parityQuestions: 0, correctedBits: 0 };
  readonly passStats: PassStats[] = [];

  constructor(
    bobKey: BitArray,
    private readonly params: CascadeParams,
    private readonly seed: Uint8Array,
    private readonly oracle: ParityOracle,
  ) {
    this.n = bobKey.length;
    this.sizes = cascadeBlockSizes(params, this.n);
    this.numBlocksOf = this.sizes.map((k) => Math.ceil(this.n / k));
    this.aliceTop = new Array<Uint8Array | undefined>(params.passes).fill(undefined);
    this.corrected = bobKey.clone();
    this.flippedEver = new BitArray(this.n);
    this.reuse = params.reuseKnownParities ?? true;
  }

  /**
   * Hands the pooled arrays back and zeroes the shuffled copies of Bob's key; the reconciler must not be used
   * afterwards (the corrected key itself goes to the caller, who wipes it).
   */
  release(): void {
    for (const a of this.leasedInt32.splice(0)) INT32_POOL.give(a);
    for (const a of this.leasedUint8.splice(0)) UINT8_POOL.give(a);
    for (const ps of this.built) {
      ps.key?.words.fill(0);
      ps.key = undefined;
      ps.node = new Uint8Array(0);
      ps.perm = undefined;
      ps.inv = undefined;
    }
  }

  async run(): Promise<void> {
    if (this.n === 0) return;
    const passCount = this.params.passes;
    const prefetch = this.params.prefetchTopLevel ?? true;
    if (prefetch) await this.fetchTop(Array.from({ length: passCount }, (_, p) => p));
    for (let p = 0; p < passCount; p++) {
      if (!prefetch) await this.fetchTop([p]);
      const before = { ...this.stats };
      await this.runSearches(this.startPass(p));
      this.passStats.push({
        blockSize: this.sizes[p]!,
        roundTrips: this.stats.roundTrips - before.roundTrips,
        parityQuestions: this.stats.parityQuestions - before.parityQuestions,
        correctedBits: this.stats.correctedBits - before.correctedBits,
      });
    }
  }

  /** One round trip; validates the answers and counts the leak. */
  private async ask(questions: ParityQuestion[]): Promise<Uint8Array> {
    const answers = await this.oracle.askParities(questions);
    this.stats.roundTrips++;
    this.stats.parityQuestions += questions.length;
    this.stats.leakedBits += questions.length;
    if (!(answers instanceof Uint8Array) || answers.length !== questions.length) {
      throw new CascadeProtocolError('BAD_ANSWER', `expected ${questions.length} parities, got ${answers instanceof Uint8Array ? answers.length : typeof answers}`);
    }
    for (let i = 0; i < answers.length; i++) if (answers[i]! > 1) throw new CascadeProtocolError('BAD_ANSWER', `parity ${i} is ${answers[i]}, not 0 or 1`);
    return answers;
  }

  /**
   * Alice's top-level parities of the given passes, in one round trip. The last block of every pass
   * after the first is not asked: the parities of a pass's blocks XOR to the parity of the whole key,
   * which pass 0 already disclosed.
   */
  private async fetchTop(passes: number[]): Promise<void> {
    const { n } = this;
    const questions: ParityQuestion[] = [];
    const offsets: number[] = [];
    for (const p of passes) {
      offsets.push(questions.length);
      const k = this.sizes[p]!;
      const asked = p === 0 ? this.numBlocksOf[p]! : this.numBlocksOf[p]! - 1;
      for (let b = 0; b < asked; b++) questions.push({ pass: p, start: b * k, end: Math.min(n, b * k + k) });
    }
    const answers = questions.length > 0 ? await this.ask(questions) : new Uint8Array(0);
    passes.forEach((p, i) => {
      const blocks = this.numBlocksOf[p]!;
      const top = new Uint8Array(blocks);
      const asked = p === 0 ? blocks : blocks - 1;
      let acc = 0;
      for (let b = 0; b < asked; b++) {
        top[b] = answers[offsets[i]! + b]!;
        acc ^= top[b]!;
      }
      if (p === 0) this.aliceWholeParity = acc;
      else top[blocks - 1] = this.aliceWholeParity ^ acc;
      this.aliceTop[p] = top;
    });
  }

  /** Builds pass p from Bob's current key; returns a search for each odd top-level block. */
  private startPass(p: number): Search[] {
    const { n } = this;
    const ps = new BobPass(p, n, this.sizes[p]!, this.numBlocksOf[p]!);
    this.built.push(ps);
    const top = this.aliceTop[p]!;
    if (ps.numBlocks <= 2) {
      // Light: block membership and Bob's block parities, without the permutation.
      const total = this.corrected.parityRange(0, n);
      let first = total;
      if (ps.numBlocks === 2) {
        ps.firstBlock = twoBlockMembers(this.seed, p, n, ps.blockSize);
        first = andParity(this.corrected, ps.firstBlock);
        ps.lightRoots[1] = KNOWN | (top[1]! ^ first ^ total);
      }
      ps.lightRoots[0] = KNOWN | (top[0]! ^ first);
    } else {
      this.materialize(ps);
      if (ps.affine) {
        const own = ps.affine.blockParities(this.corrected, ps.blockSize);
        for (let b = 0; b < ps.numBlocks; b++) ps.node[b * ps.span + 1] = KNOWN | (top[b]! ^ own[b]!);
      } else {
        const key = ps.key!;
        for (let b = 0; b < ps.numBlocks; b++) {
          const s = b * ps.blockSize;
          ps.node[b * ps.span + 1] = KNOWN | (top[b]! ^ key.parityRange(s, Math.min(n, s + ps.blockSize)));
        }
      }
    }
    const searches: Search[] = [];
    for (let b = 0; b < ps.numBlocks; b++) {
      if (rootEntry(ps, b) & 1) searches.push(this.rootSearch(ps, b));
    }
    return searches;
  }

  private rootSearch(ps: BobPass, b: number): Search {
    if (ps.light) this.materialize(ps);
    const s = b * ps.blockSize;
    return { ps, base: b * ps.span, h: 1, s, e: Math.min(this.n, s + ps.blockSize) };
  }

  /**
   * Trees for pass ps, and the way to its shuffled order: the member set's rank table for a two-block
   * pass, else the permutation, its inverse and a shuffled copy of Bob's current key.
   */
  private materialize(ps: BobPass): void {
    const { n } = this;
    const wasLight = ps.light;
    ps.node = UINT8_POOL.take(ps.numBlocks * ps.span, true);
    this.leasedUint8.push(ps.node);
    if (wasLight) for (let b = 0; b < ps.numBlocks; b++) ps.node[b * ps.span + 1] = ps.lightRoots[b]!;
    if (ps.firstBlock) {
      ps.split = new SplitView(ps.firstBlock, ps.blockSize);
      return;
    }
    if (isAffinePass(ps.index, n, ps.blockSize)) {
      ps.affine = affineView(this.seed, ps.index, n);
      return;
    }
    const perm = INT32_POOL.take(n, false);
    const inv = INT32_POOL.take(n, false);
    this.leasedInt32.push(perm, inv);
    const shuffle = drawShuffle(this.corrected, this.seed, ps.index, n, this.scratch, perm, inv);
    ps.perm = shuffle.perm;
    ps.inv = shuffle.inv;
    ps.key = shuffle.key;
  }

  /**
   * BINARY in lockstep over all searches, with the cascade effect: each iteration descends every
   * search through already-known sub-block parities for free, asks all the unknown left halves in one
   * round trip, then flips the errors found and re-opens every known block (in every pass built so
   * far) that the flips made odd. Ends when no odd known block remains.
   */
  private async runSearches(initial: Search[]): Promise<void> {
    const reuse = this.reuse;
    let searches = initial;
    while (searches.length > 0) {
      const questions: ParityQuestion[] = [];
      const waiting: Search[] = [];
      const found: number[] = [];

      // 1. Free descent; collect the questions of this level.
      for (const sr of searches) {
        const { ps, base } = sr;
        const node = ps.node;
        let { h, s, e } = sr;
        for (;;) {
          if ((node[base + h]! & 1) === 0) break; // even now (a flip elsewhere fixed it): drop
          if (e - s === 1) {
            found.push(ps.originalAt(s));
            break;
          }
          const mid = s + ((e - s + 1) >>> 1);
          const left = node[base + 2 * h]!;
          if (left === UNKNOWN || (!reuse && left >= KNOWN)) {
            node[base + 2 * h] = PENDING;
            questions.push({ pass: ps.index, start: s, end: mid });
            sr.h = h;
            sr.s = s;
            sr.e = e;
            waiting.push(sr);
            break;
          }
          if (left === PENDING) break; // another search already waits on this very node
          if (left & 1) {
            h = 2 * h;
            e = mid;
          } else {
            h = 2 * h + 1;
            s = mid;
          }
        }
      }

      // 2. One round trip for the whole level; record both halves' error parities, step into the odd one.
      if (questions.length > 0) {
        const answers = await this.ask(questions);
        for (let i = 0; i < waiting.length; i++) {
          const sr = waiting[i]!;
          const { ps, base, h, s, e } = sr;
          const mid = s + ((e - s + 1) >>> 1);
          const leftErr = answers[i]! ^ ps.parity(this.corrected, s, mid);
          const parentErr = ps.node[base + h]! & 1;
          ps.node[base + 2 * h] = KNOWN | leftErr;
          ps.node[base + 2 * h + 1] = KNOWN | (parentErr ^ leftErr);
          if (leftErr) {
            sr.h = 2 * h;
            sr.e = mid;
          } else {
            sr.h = 2 * h + 1;
            sr.s = mid;
          }
        }
      }

      // 3. Flip the errors found; keep every known block's error parity current in every pass. In
      // increasing index order, pass by pass: the lookups of positions then walk each array forward.
      const sorted = Int32Array.from(found).sort();
      const flips = new Int32Array(sorted.length);
      let flipCount = 0;
      for (let i = 0; i < sorted.length; i++) {
        const x = sorted[i]!;
        if (i > 0 && x === sorted[i - 1]) continue; // two searches (in different passes) found the same error
        if (this.flippedEver.get(x)) throw new CascadeProtocolError('INCONSISTENT_ANSWERS', `bit ${x} would be corrected twice`);
        this.flippedEver.set(x, 1);
        this.corrected.flip(x);
        flips[flipCount++] = x;
      }
      for (const ps of this.built) for (let i = 0; i < flipCount; i++) togglePath(ps, flips[i]!);
      this.stats.correctedBits += flipCount;

      // 4. Cascade effect: every known block on a flipped bit's path that is now odd gets searched.
      const seen = new Set<number>();
      for (const ps of this.built) for (let i = 0; i < flipCount; i++) this.collectOdd(ps, flips[i]!, waiting, seen);
      searches = waiting;
    }
  }

  /**
   * Adds a search for every known block containing original bit x whose error parity is odd
   * (without reuse: only the top-level block, if odd).
   */
  private collectOdd(ps: BobPass, x: number, into: Search[], seen: Set<number>): void {
    // (No closure for "add if not seen": this runs for every flip in every pass, some 250,000 times a block.)
    if (ps.light) {
      const b = blockOfLight(ps, x);
      if (ps.lightRoots[b]! & 1) {
        const root = this.rootSearch(ps, b); // materializes the pass
        const id = (root.base + 1) * MAX_PASSES + ps.index;
        if (!seen.has(id)) {
          seen.add(id);
          into.push(root);
        }
      }
      return;
    }
    const pos = ps.positionOf(x);
    const b = Math.floor(pos / ps.blockSize);
    const base = b * ps.span;
    const node = ps.node;
    let s = b * ps.blockSize;
    let e = Math.min(this.n, s + ps.blockSize);
    let h = 1;
    for (;;) {
      const v = node[base + h]!;
      if (v < KNOWN) return;
      if (v & 1) {
        const id = (base + h) * MAX_PASSES + ps.index;
        if (!seen.has(id)) {
          seen.add(id);
          into.push({ ps, base, h, s, e });
        }
      }
      if (e - s === 1 || !this.reuse) return;
      const mid = s + ((e - s + 1) >>> 1);
      if (pos < mid) {
        h = 2 * h;
        e = mid;
      } else {
        h = 2 * h + 1;
        s = mid;
      }
    }
  }
}

/** Entry (0, or KNOWN | error parity) of the top-level block b of pass ps. */
function rootEntry(ps: BobPass, b: number): number {
  return ps.light ? ps.lightRoots[b]! : ps.node[b * ps.span + 1]!;
}

/** Block (0 or 1) of original bit x in a light pass. */
function blockOfLight(ps: BobPass, x: number): number {
  return ps.firstBlock && !ps.firstBlock.get(x) ? 1 : 0;
}

/** Flips original bit x in pass ps: its shuffled key copy and the error parity of every known block containing it. */
function togglePath(ps: BobPass, x: number): void {
  if (ps.light) {
    ps.lightRoots[blockOfLight(ps, x)]! ^= 1;
    return;
  }
  const pos = ps.positionOf(x);
  ps.key?.flip(pos); // split and affine passes read Bob's corrected key itself
  const b = Math.floor(pos / ps.blockSize);
  const base = b * ps.span;
  const node = ps.node;
  let s = b * ps.blockSize;
  let e = Math.min(ps.n, s + ps.blockSize);
  let h = 1;
  for (;;) {
    if (node[base + h]! < KNOWN) return;
    node[base + h] ^= 1;
    if (e - s === 1) return;
    const mid = s + ((e - s + 1) >>> 1);
    if (pos < mid) {
      h = 2 * h;
      e = mid;
    } else {
      h = 2 * h + 1;
      s = mid;
    }
  }
}

/**
 * Bob's side of Cascade: corrects a copy of `bobKey` towards Alice's key by asking `oracle` for
 * parities. `params` and `shuffleSeed` must be the ones Alice's responder was built with.
 */
export async function reconcile(bobKey: BitArray, params: CascadeParams, shuffleSeed: Uint8Array, oracle: ParityOracle): Promise<CascadeResult> {
  validateSeed(shuffleSeed);
  const r = new BobReconciler(bobKey, params, shuffleSeed, oracle);
  try {
    await r.run();
    return { corrected: r.corrected, ...r.stats, passes: params.passes, passStats: r.passStats };
  } finally {
    r.release();
  }
}

// ---------------------------------------------------------------------------------------------
// Efficiency
// ---------------------------------------------------------------------------------------------

/** Binary entropy h(e) in bits. */
function binaryEntropy(e: number): number {
  if (e <= 0 || e >= 1) return 0;
  return -e * Math.log2(e) - (1 - e) * Math.log2(1 - e);
}

/** Reconciliation efficiency f = leak / (n h(q)); 1 is the Shannon limit. Infinity when h(q) = 0 and something leaked. */
export function efficiency(leakedBits: number, n: number, qber: number): number {
  const ideal = n * binaryEntropy(qber);
  if (ideal === 0) return leakedBits === 0 ? 1 : Infinity;
  return leakedBits / ideal;
}
