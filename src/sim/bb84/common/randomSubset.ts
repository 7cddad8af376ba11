/** Uniformly random subsets and arrangements of positions, at a cost in the smaller part, not in all positions. */
import { BitArray } from './bits.js';
import type { Rng } from './rng.js';

/** Random words drawn per batch. */
const BATCH_WORDS = 4096;
const TWO_POW_32 = 0x100000000;

/**
 * A uniformly random subset of exactly `size` of the positions [0, n), as a mask. Draws distinct positions
 * uniformly (rejecting repeats) for the smaller of the subset and its complement, so it costs about
 * min(size, n - size) draws.
 */
export function randomSubset(rng: Rng, n: number, size: number): BitArray {
  if (!Number.isSafeInteger(n) || n < 0 || n > TWO_POW_32) throw new RangeError(`randomSubset: n must be an integer in [0, 2^32], got ${n}`);
  if (!Number.isSafeInteger(size) || size < 0 || size > n) throw new RangeError(`randomSubset: size must be an integer in [0, ${n}], got ${size}`);
  const complement = size > n / 2;
  const picks = complement ? n - size : size;
  const mask = new BitArray(n);
  const w = mask.words;
  // Unbiased position draws: words at or above `limit` are rejected, the rest reduced mod n.
  const limit = TWO_POW_32 - (TWO_POW_32 % n);
  const batch = new Uint32Array(Math.min(BATCH_WORDS, picks + 64));
  let next = batch.length;
  for (let chosen = 0; chosen < picks; ) {
    if (next === batch.length) {
      rng.fillWords(batch);
      next = 0;
    }
    const x = batch[next++]!;
    if (x >= limit) continue;
    const pos = x - Math.floor(x / n) * n;
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
  return mask;
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
  let largest = 0;
  counts.forEach((c, k) => {
    if (c > counts[largest]!) largest = k;
  });
  const others = randomSubset(rng, total, total - counts[largest]!);
  const lw = masks[largest]!.words;
  const ow = others.words;
  for (let i = 0; i < ow.length; i++) lw[i] = ~ow[i]!;
  masks[largest]!.clearTail();
  if (counts.length === 1) return masks;
  // The other kinds, arranged over the subset's positions (in increasing order), then put in place.
  const rest = counts.filter((_, k) => k !== largest);
  const inner = randomArrangement(rng, rest);
  let j = 0;
  counts.forEach((_, k) => {
    if (k !== largest) depositInto(masks[k]!.words, inner[j++]!, ow);
  });
  return masks;
}

/** ORs the bits of `src`, in order, into the positions where `mask` is 1 (a bitwise "parallel deposit"). */
export function depositInto(out: Uint32Array, src: BitArray, mask: Uint32Array): void {
  const s = src.words;
  const last = s.length - 1;
  let j = 0;
  for (let wi = 0; wi < mask.length; wi++) {
    let word = mask[wi]!;
    if (word === 0) continue;
    // The next 32 bits of src from bit j; they go to the set bits of this mask word, lowest first.
    const sw = j >>> 5;
    const sh = j & 31;
    let bits = sh === 0 ? s[sw]! : (s[sw]! >>> sh) | (sw < last ? s[sw + 1]! << (32 - sh) : 0);
    if (word === -1 || word === 0xffffffff) {
      out[wi]! |= bits;
      j += 32;
      continue;
    }
    let placed = 0;
    while (word !== 0) {
      const low = word & -word;
      placed |= low & -(bits & 1);
      bits >>>= 1;
      word &= word - 1;
      j++;
    }
    out[wi]! |= placed;
  }
}
