/**
 * Stage 4: decoy-state parameter estimation, the counting half (the bounds are analysis/lim2014.ts). After
 * sifting and the intensity announcement both ends hold, for every sifted pulse, its basis (X or Z, the same at
 * both ends) and its intensity. They count, per intensity k (Lim et al. 2014, sec. II):
 *   n_{X,k}  sifted pulses in the key basis X,
 *   n_{Z,k}  sifted pulses in the test basis Z,
 *   m_{Z,k}  of those, the pulses whose Z bits differ once both ends disclosed their Z bits.
 * Both ends compute the same counts from the same public data and compare them.
 */
import { BitArray, popcount32 } from '../common/bits.js';

/** Per intensity k: the one bits of `select` that also are in masks[k] (all arrays over the same positions). */
export function countPerIntensity(select: BitArray, masks: readonly BitArray[]): number[] {
  return masks.map((mask) => {
    if (mask.length !== select.length) throw new RangeError(`countPerIntensity: mask of ${mask.length} bits for ${select.length} positions`);
    const s = select.words, m = mask.words;
    let n = 0;
    for (let i = 0; i < s.length; i++) n += popcount32(s[i]! & m[i]!);
    return n;
  });
}

/** Per intensity k: positions where `a` and `b` differ among those of masks[k] (all of the same length). */
export function errorsPerIntensity(a: BitArray, b: BitArray, masks: readonly BitArray[]): number[] {
  if (a.length !== b.length) throw new RangeError(`errorsPerIntensity: ${a.length} bits against ${b.length}`);
  const diff = new BitArray(a.length);
  for (let i = 0; i < diff.words.length; i++) diff.words[i] = a.words[i]! ^ b.words[i]!;
  return countPerIntensity(diff, masks);
}

/**
 * errorsPerIntensity for bits taken at the one bits of `where` (a.length = b.length = where.popcount()), with masks
 * over where's positions: the same counts as errorsPerIntensity(a, b, masks.map((m) => compressBits(m, where))),
 * without the compressed masks: each difference is found at its position in `where` (one pass of popcounts).
 */
export function errorsPerIntensityAt(a: BitArray, b: BitArray, where: BitArray, masks: readonly BitArray[]): number[] {
  if (a.length !== b.length) throw new RangeError(`errorsPerIntensity: ${a.length} bits against ${b.length}`);
  const count = where.popcount();
  if (a.length !== count) throw new RangeError(`errorsPerIntensity: ${a.length} bits for ${count} positions`);
  for (const mask of masks) if (mask.length !== where.length) throw new RangeError(`errorsPerIntensity: mask of ${mask.length} bits for ${where.length} positions`);
  const counts = masks.map(() => 0);
  const A = a.words, B = b.words, w = where.words;
  let wi = 0; // the word of `where` holding the current difference
  let before = 0; // one bits of `where` before word wi
  let inWord = popcount32(w[0] ?? 0);
  for (let i = 0; i < A.length; i++) {
    let diff = A[i]! ^ B[i]!;
    while (diff !== 0) {
      const e = 32 * i + (31 - Math.clz32(diff & -diff)); // index of the difference among the selected bits
      diff &= diff - 1;
      while (before + inWord <= e) {
        before += inWord;
        inWord = popcount32(w[++wi]!);
      }
      // The (e - before)-th one bit of this word of `where`.
      let x = w[wi]!;
      for (let r = e - before; r > 0; r--) x &= x - 1;
      const bit = x & -x;
      for (let k = 0; k < masks.length; k++) if ((masks[k]!.words[wi]! & bit) !== 0) counts[k]!++;
    }
  }
  return counts;
}

export const sumOf = (values: readonly number[]): number => values.reduce((x, y) => x + y, 0);
