/**
 * The Toeplitz hash: y = T·x over GF(2) for a random Toeplitz matrix T (a two-universal family; leftover hash lemma).
 *
 * Matrix convention. For an input x of n bits, an output of l bits and a seed s of n + l - 1 bits, T is the
 * l × n matrix
 *     T[i][j] = s[i - j + n - 1]        (0 ≤ i < l, 0 ≤ j < n),
 * constant along diagonals: row 0 reads s[n-1], s[n-2], ..., s[0]; column 0 reads s[n-1], ..., s[n+l-2]. Output
 *     y[i] = XOR_j T[i][j]·x[j] = ( sum_j s[i + n - 1 - j]·x[j] ) mod 2 = c[i + n - 1] mod 2,
 * where c = s * x is the integer convolution (every c[m] ≤ n). So y is a window of a convolution, computed in
 * O(N log N) with a transform of length N ≥ n + l - 1 (a power of two). A cyclic (or negacyclic) convolution of
 * that length suffices: wrap-around only lands on indices below n - 1 or above n + l - 2, outside the window read.
 *
 * Two engines give bit-identical results (tests check both against the O(n·l) definition and each other):
 *
 * - 'ntt': number-theoretic transform over p = 998244353 = 119·2^23 + 1 (primitive root 3). Exact by construction:
 *   c[m] ≤ n < p, so the convolution mod p is the integer convolution. Radix-4 decimation in frequency forward
 *   (natural → bit-reversed), decimation in time inverse (bit-reversed → natural), no permutation pass, recursion
 *   down to cache-sized blocks; modular products use a float quotient estimate biased low, corrected exactly with
 *   Math.imul. JavaScript has no 64-bit integer multiply, so each butterfly costs ~16 integer operations.
 * - 'fft' (default, about 3x faster): float64 complex FFT with the "right-angle" negacyclic convolution (Crandall):
 *   the real inputs of length N are folded into complex sequences of length N/2 (x[k] + i·x[k + N/2]) weighted by
 *   e^{iπk/N}, so three complex transforms of N/2 points do the whole product; they run depth first in one
 *   recursion (forward DIF, pointwise product and inverse DIT per cache-sized block) on interleaved complex arrays.
 *   N is 2^k, 3·2^k or 9·2^k (one or two radix-3 levels on top of radix 4), whichever is the smallest ≥ n + l - 1.
 *   Exactness comes from an error bound, not from hope: inputs are 0/1, twiddles and weights are computed directly
 *   with Math.cos/sin (the last two stages use exact 0, ±1, ±√½), and the standard bound for
 *   FFT convolution (Percival 2003, plus the weighting) gives a rounding error of order ‖x‖₂·‖s‖₂·(15·log2 N)·2^-53,
 *   below 2e-7 for every size allowed here (N ≤ 9·2^19; measured 2e-10 at 1 Mbit) and far below 1/2. Rounding thus
 *   recovers the exact integers on any IEEE-754 platform, so both ends get identical keys. As a guard every output
 *   is checked to lie within 1/4 of an integer; otherwise the call throws instead of returning a doubtful bit.
 *
 * Chunking: when n + l - 1 exceeds the largest transform (NTT: 2^23, the 2-adic limit of p; FFT: 9·2^19, to bound
 * memory; both configurable lower, to powers of two, for tests), the matrix is cut into row bands of ≤ max/2 outputs and column pieces
 * so that each (band, piece) sub-matrix — itself Toeplitz over a window of the seed — fits one transform; the
 * pieces' outputs are XORed into the band (overlap-add over GF(2)).
 *
 * Twiddle tables and work arrays are kept between calls (fresh multi-megabyte arrays cost page faults and garbage
 * collection, and the tables millions of cos/sin, on every block: at 4·10^6 bits that was four times the transform):
 * the FFT engine's, up to its maximum (about 115 MiB there), are released after a minute without a call; the NTT
 * engine's up to 2^21 points (32 MiB). `releaseToeplitzCaches()` frees them at once.
 */
import { BitArray } from '../common/bits.js';
import { fftWindowInto, fftWorkspaceIsClear, MAX_FFT_SIZE, releaseFftCaches } from './fft.js';
import { MAX_NTT_SIZE, nttWindowInto, nttWorkspaceIsClear, releaseNttCaches } from './ntt.js';
import type { WindowInto } from './transforms.js';

export type ToeplitzEngine = 'fft' | 'ntt';
export const DEFAULT_TOEPLITZ_ENGINE: ToeplitzEngine = 'fft';

export interface ToeplitzOptions {
  /** 'fft' (default, fast) or 'ntt' (exact modular arithmetic); the results are identical. */
  engine?: ToeplitzEngine;
  /** Largest transform length (power of two ≥ 4, at most the engine's maximum); larger products are chunked. */
  maxTransformSize?: number;
}

/** Seed bits a Toeplitz matrix for n input and l output bits needs: n + l - 1. */
export function toeplitzSeedLength(n: number, l: number): number {
  return n + l - 1;
}

function checkToeplitzArgs(input: BitArray, seedBits: BitArray, outLength: number): void {
  if (input.length < 1) throw new RangeError('toeplitzHash: input must have at least one bit');
  if (!Number.isInteger(outLength) || outLength < 1) throw new RangeError(`toeplitzHash: output length must be a positive integer, got ${outLength}`);
  const need = toeplitzSeedLength(input.length, outLength);
  if (seedBits.length !== need) throw new RangeError(`toeplitzHash: seed must have n + l - 1 = ${need} bits, got ${seedBits.length}`);
}

/** y = T·x over GF(2) with T[i][j] = seed[i - j + n - 1], by FFT or NTT convolution, chunked above the maximum size. */
export function toeplitzHash(input: BitArray, seedBits: BitArray, outLength: number, options: ToeplitzOptions = {}): BitArray {
  checkToeplitzArgs(input, seedBits, outLength);
  const out = new BitArray(outLength);
  toeplitzInto(input, 0, input.length, seedBits, outLength, out, options);
  return out;
}

/** XORs T·x[xOff, xOff + n) into out[0, l), T the l × n Toeplitz matrix of seedBits (n + l - 1 bits). */
export function toeplitzInto(input: BitArray, xOff: number, n: number, seedBits: BitArray, l: number, out: BitArray, options: ToeplitzOptions): void {
  const engine = options.engine ?? DEFAULT_TOEPLITZ_ENGINE;
  if (engine !== 'fft' && engine !== 'ntt') throw new RangeError(`toeplitzHash: unknown engine ${String(engine)}`);
  const engineMax = engine === 'fft' ? MAX_FFT_SIZE : MAX_NTT_SIZE;
  const maxSize = options.maxTransformSize ?? engineMax;
  if (options.maxTransformSize !== undefined && !(Number.isInteger(maxSize) && maxSize >= 4 && maxSize <= engineMax && (maxSize & (maxSize - 1)) === 0)) {
    throw new RangeError(`toeplitzHash: maxTransformSize must be a power of two in [4, ${engineMax}] for ${engine}, got ${maxSize}`);
  }
  const windowInto: WindowInto = engine === 'fft' ? fftWindowInto : nttWindowInto;
  if (n + l - 1 <= maxSize) {
    windowInto(input, xOff, n, seedBits, 0, l, out, 0);
    return;
  }
  const band = Math.min(l, maxSize / 2);
  const piece = maxSize - band + 1;
  for (let i0 = 0; i0 < l; i0 += band) {
    const rows = Math.min(band, l - i0);
    for (let j0 = 0; j0 < n; j0 += piece) {
      const cols = Math.min(piece, n - j0);
      // Rows i0.., columns j0..: T[i0+i'][j0+j'] = seed[(i0 - j0 + n - cols) + i' - j' + cols - 1].
      windowInto(input, xOff + j0, cols, seedBits, i0 - j0 + n - cols, rows, out, i0);
    }
  }
}

/** The same product by the definition, O(n·l) bit operations. A reference for tests. */
export function toeplitzHashNaive(input: BitArray, seedBits: BitArray, outLength: number): BitArray {
  checkToeplitzArgs(input, seedBits, outLength);
  const n = input.length;
  const out = new BitArray(outLength);
  for (let i = 0; i < outLength; i++) {
    let bit = 0;
    for (let j = 0; j < n; j++) bit ^= seedBits.get(i - j + n - 1) & input.get(j);
    out.set(i, bit);
  }
  return out;
}

/** True when the kept work arrays are all zero (tests: every hash zeroes them before it returns). */
export function toeplitzWorkspaceIsClear(): boolean {
  return nttWorkspaceIsClear() && fftWorkspaceIsClear();
}

/** Frees the twiddle tables and work arrays kept between calls. */
export function releaseToeplitzCaches(): void {
  releaseNttCaches();
  releaseFftCaches();
}
