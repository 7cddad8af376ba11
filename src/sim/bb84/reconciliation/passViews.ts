/**
 * Pass orders that need no permutation array: the affine first pass (positions computed from j -> (a j + b) mod n)
 * and the two-block passes (a uniformly random member set, each block in index order).
 */
import { BitArray, popcount32 } from '../common/bits.js';
import { randomBelow, sharedSeedRng } from '../common/rng.js';
import { CascadeProtocolError } from './oracle.js';
import { AFFINE_LABEL, labelDigest, labelledRng, MEMBERS_LABEL, passDigest } from './passSeeds.js';
import { validateSeed } from './variants.js';
import { MEMBERS_POOL, RANK_POOL } from './workspace.js';

/** True for a pass of exactly two blocks, the first at least as long as the second. */
export function isTwoBlockPass(n: number, blockSize: number): boolean {
  return blockSize < n && 2 * blockSize >= n;
}

/** Keys shorter than this keep a·j + b (a, b < n) exact in a double for the affine first pass. */
const AFFINE_MAX_LENGTH = 1 << 26;

/** True for the first pass when it has three or more blocks: it is shuffled by an affine map (AffineView). */
export function isAffinePass(pass: number, n: number, blockSize: number): boolean {
  return pass === 0 && 2 * blockSize < n && n < AFFINE_MAX_LENGTH;
}

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
export class AffineView {
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

export function affineView(seed: Uint8Array, pass: number, n: number): AffineView {
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
export function twoBlockMembers(seed: Uint8Array, pass: number, n: number, k: number, words?: Uint32Array): BitArray {
  validateSeed(seed);
  if (!isTwoBlockPass(n, k)) throw new CascadeProtocolError('BAD_PARAMS', `block size ${k} does not make two blocks of ${n} bits`);
  // AES-CTR (native) for the n/32 words: a JavaScript generator made this the largest cost of the n/2 passes.
  const rng = sharedSeedRng(labelDigest(passDigest(seed, pass, n), MEMBERS_LABEL));
  const members = new BitArray(n, words); // every word is overwritten below
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

/** Parity of (a AND b), bitwise over equal-length arrays. */
export function andParity(a: BitArray, b: BitArray): number {
  let acc = 0;
  for (let w = 0; w < a.words.length; w++) acc ^= a.words[w]! & b.words[w]!;
  return popcount32(acc >>> 0) & 1;
}

/**
 * A two-block pass seen through its member set: shuffled position j < k is the j-th member (block 0)
 * in increasing index order, position k + j the j-th non-member. Ranks per 32-bit word make position
 * lookups O(1), index lookups O(log n) and a sub-block's parity a word-wise scan of its index range.
 */
export class SplitView {
  /** rank[w] = members among indices [0, 32 w). */
  readonly rank: Int32Array;

  /** `rank`: room for members.words.length + 1 entries (all are written), e.g. from RANK_POOL. */
  constructor(
    readonly members: BitArray,
    readonly k: number,
    rank?: Int32Array,
  ) {
    const words = members.words;
    if (rank && rank.length !== words.length + 1) throw new RangeError(`SplitView: rank has ${rank.length} entries, needs ${words.length + 1}`);
    this.rank = rank ?? new Int32Array(words.length + 1);
    this.rank[0] = 0;
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

/** The view of two-block pass `pass`, its member set and rank table in pooled arrays (see releaseSplitView). */
export function pooledSplitView(seed: Uint8Array, pass: number, n: number, k: number): SplitView {
  return pooledView(pooledMembers(seed, pass, n, k), k);
}

/** twoBlockMembers in a pooled array (give it back with releaseMembers). */
export function pooledMembers(seed: Uint8Array, pass: number, n: number, k: number): BitArray {
  return twoBlockMembers(seed, pass, n, k, MEMBERS_POOL.take((n + 31) >>> 5, false));
}

/** A SplitView over pooled members, with its rank table pooled too. */
export function pooledView(members: BitArray, k: number): SplitView {
  return new SplitView(members, k, RANK_POOL.take(members.words.length + 1, false));
}

/** Hands a pooledMembers array back; it must not be used afterwards. */
export function releaseMembers(members: BitArray): void {
  MEMBERS_POOL.give(members.words);
}

/** Hands a pooledView's arrays (its members too) back; the view must not be used afterwards. */
export function releaseSplitView(view: SplitView): void {
  MEMBERS_POOL.give(view.members.words);
  RANK_POOL.give(view.rank);
}
