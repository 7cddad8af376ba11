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

export const sumOf = (values: readonly number[]): number => values.reduce((x, y) => x + y, 0);
