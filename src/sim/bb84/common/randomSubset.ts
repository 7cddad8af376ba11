/** Uniformly random subsets and arrangements of positions, at a cost in the smaller part, not in all positions. */
import { depositInto } from './bitSelect.js';
import { BitArray } from './bits.js';
import { orBernoulliBits, type Rng } from './rng.js';

/** Random words drawn per batch. */
const BATCH_WORDS = 4096;
const TWO_POW_32 = 0x100000000;

/** A subset whose smaller side (it or its complement) is above n / this is drawn by the Bernoulli method. */
const DENSE_SUBSET_DIVISOR = 16;

/**
 * A uniformly random subset of exactly `size` of the positions [0, n), as a mask.
 *
 * - sparse (the subset or its complement at most n/16): distinct positions drawn uniformly (rejecting repeats) for
 *   the smaller side, so it costs about min(size, n - size) draws;
 * - dense: independent Bernoulli(size / n) bits (word-level), then uniformly random ones removed (or zeros added)
 *   until exactly `size` remain, about sqrt(n) draws. Both steps treat every position alike (the law of the result
 *   is invariant under any permutation of the positions) and the result always has `size` ones, so it is the
 *   uniform law on the subsets of that size.
 */
export function randomSubset(rng: Rng, n: number, size: number): BitArray {
  checkSubset(n, size);
  const mask = new BitArray(n);
  drawSubset(rng, n, size, mask);
  return mask;
}

function checkSubset(n: number, size: number): void {
  if (!Number.isSafeInteger(n) || n < 0 || n > TWO_POW_32) throw new RangeError(`randomSubset: n must be an integer in [0, 2^32], got ${n}`);
  if (!Number.isSafeInteger(size) || size < 0 || size > n) throw new RangeError(`randomSubset: size must be an integer in [0, ${n}], got ${size}`);
}

/** randomSubset drawn into `mask` (n bits, all zero). */
function drawSubset(rng: Rng, n: number, size: number, mask: BitArray): void {
  const complement = size > n / 2;
  const picks = complement ? n - size : size;
  if (picks > n / DENSE_SUBSET_DIVISOR) return bernoulliSubset(rng, n, size, mask);
  const w = mask.words;
  const positions = new PositionDraws(rng, n, picks);
  for (let chosen = 0; chosen < picks; ) {
    const pos = positions.next();
    const bit = 1 << (pos & 31);
    if ((w[pos >>> 5]! & bit) === 0) {
      w[pos >>> 5]! |= bit;
      chosen++;
    }
  }
  if (complement) {
    for (let i = 0; i < w.length; i++) w[i] = ~w[i]!;
    mask.clearTail();
  }
}

/** The dense case of randomSubset: Bernoulli(size / n) bits, then the count corrected at uniformly random positions. */
function bernoulliSubset(rng: Rng, n: number, size: number, mask: BitArray): void {
  orBernoulliBits(rng, mask.words, n, size / n);
  const w = mask.words;
  let ones = mask.popcount();
  if (ones === size) return;
  // Each step flips a uniformly random position among those of the state to change (ones to drop, zeros to add).
  const want = ones > size ? 1 : 0;
  const positions = new PositionDraws(rng, n, Math.abs(ones - size) * 4);
  while (ones !== size) {
    const pos = positions.next();
    const bit = 1 << (pos & 31);
    if (((w[pos >>> 5]! >>> (pos & 31)) & 1) !== want) continue;
    w[pos >>> 5]! ^= bit;
    ones += want ? -1 : 1;
  }
}

/** Uniform positions in [0, n), drawn from batches of random words (words at or above the last multiple of n rejected). */
class PositionDraws {
  private readonly batch: Uint32Array;
  private at: number;
  private readonly limit: number;

  constructor(
    private readonly rng: Rng,
    private readonly n: number,
    expected: number,
  ) {
    this.batch = new Uint32Array(Math.min(BATCH_WORDS, expected + 64));
    this.at = this.batch.length;
    this.limit = TWO_POW_32 - (TWO_POW_32 % n);
  }

  next(): number {
    for (;;) {
      if (this.at === this.batch.length) {
        this.rng.fillWords(this.batch);
        this.at = 0;
      }
      const x = this.batch[this.at++]!;
      if (x < this.limit) return x - Math.floor(x / this.n) * this.n;
    }
  }
}

/**
 * A uniformly random arrangement of counts[k] items of each kind k over counts[0] + ... + counts[last] positions,
 * as one mask per kind. The most numerous kind takes the positions left over by a uniformly random subset
 * (randomSubset) of the other kinds' total size; the other kinds are arranged the same way over that subset's
 * positions, recursively. Costs about the number of items not of the most numerous kind at each level.
 */
export function randomArrangement(rng: Rng, counts: readonly number[]): BitArray[] {
  if (counts.some((c) => !Number.isSafeInteger(c) || c < 0)) throw new RangeError(`randomArrangement: counts must be integers >= 0, got ${JSON.stringify(counts)}`);
  const total = counts.reduce((a, b) => a + b, 0);
  const masks = counts.map(() => new BitArray(total));
  if (counts.length === 0) return masks;
  const largest = largestKind(counts);
  // The other kinds, arranged over the subset's positions (in increasing order), then put in place; the most
  // numerous of them (`fill`) takes the subset's positions the rest left (the same bits as depositing it). The
  // subset is drawn straight into fill's mask, which keeps it until the others are deposited.
  const rest = counts.filter((_, k) => k !== largest);
  const innerLargest = rest.length > 0 ? largestKind(rest) : -1;
  const fill = innerLargest < 0 ? -1 : innerLargest + (innerLargest >= largest ? 1 : 0);
  const others = fill < 0 ? new BitArray(total) : masks[fill]!;
  checkSubset(total, total - counts[largest]!);
  drawSubset(rng, total, total - counts[largest]!, others);
  const lw = masks[largest]!.words;
  const ow = others.words;
  for (let i = 0; i < ow.length; i++) lw[i] = ~ow[i]!;
  masks[largest]!.clearTail();
  if (counts.length === 1) return masks;
  const inner = randomArrangement(rng, rest);
  let j = 0;
  counts.forEach((_, k) => {
    if (k !== largest && j !== innerLargest) depositInto(masks[k]!.words, inner[j]!, ow);
    if (k !== largest) j++;
  });
  counts.forEach((_, k) => {
    if (k === largest || k === fill) return;
    const mw = masks[k]!.words;
    for (let i = 0; i < ow.length; i++) ow[i] = ow[i]! & ~mw[i]!;
  });
  return masks;
}

/** The first kind with the largest count. */
function largestKind(counts: readonly number[]): number {
  let largest = 0;
  counts.forEach((c, k) => {
    if (c > counts[largest]!) largest = k;
  });
  return largest;
}

/** ORs the bits of `src`, in order, into the positions where `mask` is 1 (common/bitSelect.ts). */
export { depositInto };
