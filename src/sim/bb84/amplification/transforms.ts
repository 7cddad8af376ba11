/**
 * What the two convolution engines (ntt.ts, fft.ts) share: transform sizes, the cache limit, and the contract of one
 * windowed Toeplitz product.
 */
import type { BitArray } from '../common/bits.js';

/** Caches are kept for transforms up to this many points. */
export const RETAIN_MAX = 1 << 21;

/** Smallest power of two >= max(m, min). */
export function transformSize(m: number, min: number): number {
  let size = min;
  while (size < m) size <<= 1;
  return size;
}

/**
 * out[oOff + i] ^= XOR_{j < nLen} seed[sOff + i - j + nLen - 1] & x[xOff + j]  for i < lLen: the Toeplitz product on
 * a window of x and of the seed, by one convolution of length nLen + lLen - 1.
 */
export type WindowInto = (x: BitArray, xOff: number, nLen: number, seed: BitArray, sOff: number, lLen: number, out: BitArray, oOff: number) => void;
