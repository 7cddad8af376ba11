/** The universal hash families privacy amplification may use, their seeds, and the family-generic hash. */
import { BitArray } from '../common/bits.js';
import { cryptoRng, randomBits, type Rng } from '../common/rng.js';
import { toeplitzHash, toeplitzHashNaive, toeplitzInto, toeplitzSeedLength, type ToeplitzOptions } from './toeplitz.js';

/**
 * Which universal hash family privacy amplification uses. Both are two-universal (collision probability 2^-l for
 * any two distinct inputs), which is all the leftover hash lemma behind finiteKey.ts asks of the family.
 *
 * - 'toeplitz': y = T·x, T a random l × n Toeplitz matrix (n + l - 1 seed bits); a convolution of length n + l - 1.
 * - 'modified-toeplitz' (default): y = (I_l | T')·x = x[0, l) XOR T'·x[l, n), T' a random l × (n - l) Toeplitz
 *   matrix (n - 1 seed bits). Hayashi and Tsurumaru (IEEE Trans. Inf. Theory 62(4), 2016, "More efficient privacy
 *   amplification with less random seeds via dual universal hash function") use this family. Two-universal: for
 *   x ≠ x' write d = x XOR x' = (d1, d2). If d2 = 0 then d1 ≠ 0 and the outputs always differ; if d2 ≠ 0 then T'·d2
 *   is uniform over {0,1}^l for a uniformly random Toeplitz T' (its seed bits enter T'·d2 through a full-rank
 *   linear map), so the outputs collide with probability exactly 2^-l. Its convolution is only n - 1 long: half
 *   the transform of the plain family at l ≈ n/2, which is where the BB84 pipeline runs.
 */
export type PaHashFamily = 'modified-toeplitz' | 'toeplitz';
export const PA_HASH_FAMILIES = ['modified-toeplitz', 'toeplitz'] as const satisfies readonly PaHashFamily[];
export const DEFAULT_PA_HASH_FAMILY: PaHashFamily = 'modified-toeplitz';

/** Seed bits the family needs for n input and l output bits. */
export function paSeedLength(family: PaHashFamily, n: number, l: number): number {
  return family === 'toeplitz' ? toeplitzSeedLength(n, l) : n - 1;
}

function checkModifiedArgs(input: BitArray, seedBits: BitArray, outLength: number): void {
  const n = input.length;
  if (!Number.isInteger(outLength) || outLength < 1 || outLength >= n) {
    throw new RangeError(`modifiedToeplitzHash: output length must be an integer in [1, ${n - 1}] for ${n} input bits, got ${outLength}`);
  }
  if (seedBits.length !== n - 1) throw new RangeError(`modifiedToeplitzHash: seed must have n - 1 = ${n - 1} bits, got ${seedBits.length}`);
}

/** y = x[0, l) XOR T'·x[l, n), T'[i][j] = seed[i - j + n - l - 1] (the l × (n - l) Toeplitz matrix of the seed). */
export function modifiedToeplitzHash(input: BitArray, seedBits: BitArray, outLength: number, options: ToeplitzOptions = {}): BitArray {
  checkModifiedArgs(input, seedBits, outLength);
  const l = outLength;
  const out = new BitArray(l);
  const words = (l + 31) >>> 5;
  out.words.set(input.words.subarray(0, words)); // the identity block: x[0, l) (bits past l cleared below)
  out.clearTail();
  toeplitzInto(input, l, input.length - l, seedBits, l, out, options);
  return out;
}

/** The same by the definition (identity block XOR the naive Toeplitz product of the rest). A reference for tests. */
export function modifiedToeplitzHashNaive(input: BitArray, seedBits: BitArray, outLength: number): BitArray {
  checkModifiedArgs(input, seedBits, outLength);
  const l = outLength;
  const out = toeplitzHashNaive(input.slice(l, input.length), seedBits, l);
  for (let i = 0; i < l; i++) if (input.get(i)) out.flip(i);
  return out;
}

/** Privacy amplification of `input` to `outLength` bits with the family's hash of `seedBits` (paSeedLength bits). */
export function paHash(family: PaHashFamily, input: BitArray, seedBits: BitArray, outLength: number, options: ToeplitzOptions = {}): BitArray {
  if (family === 'toeplitz') return toeplitzHash(input, seedBits, outLength, options);
  if (family === 'modified-toeplitz') return modifiedToeplitzHash(input, seedBits, outLength, options);
  throw new RangeError(`paHash: unknown hash family ${String(family)}`);
}

/** A fresh seed for the family (paSeedLength bits) from the CSPRNG; one end picks it and sends it. */
export function newToeplitzSeed(n: number, l: number, rng: Rng = cryptoRng(), family: PaHashFamily = DEFAULT_PA_HASH_FAMILY): BitArray {
  return randomBits(rng, paSeedLength(family, n, l));
}
