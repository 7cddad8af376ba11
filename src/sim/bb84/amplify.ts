/**
 * Stage 7: privacy amplification with a random Toeplitz matrix (a two-universal family; leftover hash lemma).
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
 *   Exactness comes from an error bound, not from hope: inputs are 0/1, twiddles and weights are computed directly
 *   with Math.cos/sin (the last two stages use exact 0, ±1, ±√½), and the standard bound for
 *   FFT convolution (Percival 2003, plus the weighting) gives a rounding error of order ‖x‖₂·‖s‖₂·(15·log2 N)·2^-53,
 *   below 2e-7 for every size allowed here (N ≤ 2^22; measured 2e-10 at 1 Mbit) and far below 1/2. Rounding thus
 *   recovers the exact integers on any IEEE-754 platform, so both ends get identical keys. As a guard every output
 *   is checked to lie within 1/4 of an integer; otherwise the call throws instead of returning a doubtful bit.
 *
 * Chunking: when n + l - 1 exceeds the largest transform (NTT: 2^23, the 2-adic limit of p; FFT: 2^22, to bound
 * memory; both configurable lower for tests), the matrix is cut into row bands of ≤ max/2 outputs and column pieces
 * so that each (band, piece) sub-matrix — itself Toeplitz over a window of the seed — fits one transform; the
 * pieces' outputs are XORed into the band (overlap-add over GF(2)).
 *
 * Twiddle tables and work arrays of transforms up to 2^21 points (1 Mbit blocks) are kept between calls (fresh
 * multi-megabyte arrays cost page faults and garbage collection on every block): about 64 MiB for the FFT engine,
 * 32 MiB for the NTT engine. `releaseToeplitzCaches()` frees them.
 */
import { BitArray } from './bits.js';
import { secretKeyLength } from './finiteKey.js';
import { advance, dropped, kept, requireStage, type KeyBlock, type StageOutcome } from './keyBlock.js';
import { cryptoRng, randomBits, type Rng } from './rng.js';

export type ToeplitzEngine = 'fft' | 'ntt';
export const DEFAULT_TOEPLITZ_ENGINE: ToeplitzEngine = 'fft';
/** Largest NTT length p = 998244353 supports (p - 1 = 119·2^23). */
export const MAX_NTT_SIZE = 1 << 23;
/** Largest FFT length (real points) used before chunking. */
export const MAX_FFT_SIZE = 1 << 22;
/** Caches are kept for transforms up to this many points. */
const RETAIN_MAX = 1 << 21;
/** Sub-transforms up to this many points run entirely in cache-sized blocks (int32 NTT / complex float64 FFT). */
const NTT_BLOCK = 1 << 12;
const FFT_BLOCK = 1 << 11;

function transformSize(m: number, min: number): number {
  let size = min;
  while (size < m) size <<= 1;
  return size;
}

/** dst[k] = value where bit off + k of src is set, else 0, for k < len (a word at a time). */
function unpackBits(src: BitArray, off: number, len: number, dst: Int32Array, value: number): void {
  const w = src.words;
  const sh = off & 31;
  let wi = off >>> 5;
  for (let k = 0; k < len; k += 32, wi++) {
    const word = sh === 0 ? w[wi]! : (w[wi]! >>> sh) | ((wi + 1 < w.length ? w[wi + 1]! : 0) << (32 - sh));
    const end = Math.min(32, len - k);
    for (let b = 0; b < end; b++) dst[k + b] = -((word >>> b) & 1) & value;
  }
}

// ==== NTT engine (exact, mod 998244353) ==========================================================================

export const NTT_PRIME = 998244353;
const P = NTT_PRIME;
const GENERATOR = 3;
/** 1/p lowered by a relative 2^-50 so the float quotient estimate never exceeds the true quotient. */
const PINV_LOW = (1 / P) * (1 - 2 ** -50);

/**
 * a·b mod p for 0 ≤ a < 2p, 0 ≤ b < p. q is floor(a·b/p) or one less (the estimate is biased low and its error is
 * far below 1), so a·b - q·p lies in [0, 2p) < 2^31 and is computed exactly modulo 2^32 with Math.imul.
 */
function mul(a: number, b: number): number {
  const q = (a * b * PINV_LOW) | 0;
  const r = ((Math.imul(a, b) - Math.imul(q, P)) | 0) - P;
  return r + ((r >> 31) & P);
}

function pow(base: number, exp: number): number {
  let r = 1;
  let b = base % P;
  for (let e = exp; e > 0; e = Math.floor(e / 2)) {
    if (e % 2 === 1) r = mul(r, b);
    b = mul(b, b);
  }
  return r;
}

const I_FWD = pow(GENERATOR, (P - 1) / 4); // primitive 4th root of unity
const I_INV = P - I_FWD; // its inverse (I² = -1)

interface NttTables {
  size: number;
  /** fwd[len + j] = w_{2len}^j for every power of two len < size and j < len (w_k a primitive k-th root of 1). */
  fwd: Int32Array;
  /** inv[len + j] = w_{2len}^-j. */
  inv: Int32Array;
}

let nttTablesCache: NttTables | null = null;
let nttWorkCache: Int32Array | null = null;

function nttTables(size: number): NttTables {
  if (nttTablesCache && nttTablesCache.size >= size) return nttTablesCache;
  const fwd = new Int32Array(Math.max(2, size));
  const inv = new Int32Array(Math.max(2, size));
  for (let len = 1; len < size; len <<= 1) {
    const w = pow(GENERATOR, (P - 1) / (2 * len));
    const wi = pow(w, P - 2);
    fwd[len] = 1;
    inv[len] = 1;
    for (let j = 1; j < len; j++) {
      fwd[len + j] = mul(fwd[len + j - 1]!, w);
      inv[len + j] = mul(inv[len + j - 1]!, wi);
    }
  }
  const t = { size, fwd, inv };
  if (size <= RETAIN_MAX) nttTablesCache = t;
  return t;
}

function nttWork(size: number): { a: Int32Array; b: Int32Array } {
  let buf: Int32Array;
  if (size > RETAIN_MAX) buf = new Int32Array(2 * size);
  else {
    if (!nttWorkCache || nttWorkCache.length < 2 * size) nttWorkCache = new Int32Array(2 * size);
    buf = nttWorkCache;
  }
  return { a: buf.subarray(0, size), b: buf.subarray(size, 2 * size) };
}

/** Two DIF radix-2 stages (half-lengths 2q and q) on one group a[s .. s+4q); values canonical in [0, p). */
function nttDifGroup(a: Int32Array, s: number, q: number, tw: Int32Array): void {
  const j3 = Math.ceil((2 * q) / 3); // for j < j3, 3j < 2q
  for (let j = 0; j < q; j++) {
    const w1 = tw[2 * q + j]!;
    const w2 = tw[q + j]!;
    const w3 = j < j3 ? tw[2 * q + 3 * j]! : P - tw[3 * j]!; // w_{4q}^{3j}, using w_{4q}^{2q} = -1
    const i0 = s + j, i1 = i0 + q, i2 = i1 + q, i3 = i2 + q;
    const a0 = a[i0]!, a1 = a[i1]!, a2 = a[i2]!, a3 = a[i3]!;
    let s02 = a0 + a2 - P;
    s02 += (s02 >> 31) & P;
    let s13 = a1 + a3 - P;
    s13 += (s13 >> 31) & P;
    let d02 = a0 - a2;
    d02 += (d02 >> 31) & P;
    const t = mul(a1 - a3 + P, I_FWD);
    let y0 = s02 + s13 - P;
    y0 += (y0 >> 31) & P;
    a[i0] = y0;
    a[i1] = mul(s02 - s13 + P, w2);
    a[i2] = mul(d02 + t, w1);
    a[i3] = mul(d02 - t + P, w3);
  }
}

/** Two DIT radix-2 stages (half-lengths q and 2q) on one group a[s .. s+4q), inverse twiddles. */
function nttDitGroup(a: Int32Array, s: number, q: number, tw: Int32Array): void {
  const j3 = Math.ceil((2 * q) / 3);
  for (let j = 0; j < q; j++) {
    const w1 = tw[2 * q + j]!;
    const w2 = tw[q + j]!;
    const w3 = j < j3 ? tw[2 * q + 3 * j]! : P - tw[3 * j]!;
    const i0 = s + j, i1 = i0 + q, i2 = i1 + q, i3 = i2 + q;
    const b0 = a[i0]!;
    const c1 = mul(a[i1]!, w2);
    const c2 = mul(a[i2]!, w1);
    const c3 = mul(a[i3]!, w3);
    let e0 = b0 + c1 - P;
    e0 += (e0 >> 31) & P;
    let e1 = b0 - c1;
    e1 += (e1 >> 31) & P;
    let f2 = c2 + c3 - P;
    f2 += (f2 >> 31) & P;
    const f3 = mul(c2 - c3 + P, I_INV);
    let y = e0 + f2 - P;
    a[i0] = y + ((y >> 31) & P);
    y = e0 - f2;
    a[i2] = y + ((y >> 31) & P);
    y = e1 + f3 - P;
    a[i1] = y + ((y >> 31) & P);
    y = e1 - f3;
    a[i3] = y + ((y >> 31) & P);
  }
}

/** Radix-2 butterflies on adjacent pairs (twiddle 1), the same in both directions. */
function nttPairs(a: Int32Array, off: number, size: number): void {
  for (let s = off, end = off + size; s < end; s += 2) {
    const u = a[s]!, v = a[s + 1]!;
    const x = u + v - P;
    a[s] = x + ((x >> 31) & P);
    const d = u - v;
    a[s + 1] = d + ((d >> 31) & P);
  }
}

/** Forward NTT of a[off .. off+size), natural order in, bit-reversed order out. */
function nttForward(a: Int32Array, off: number, size: number, tw: Int32Array): void {
  if (size <= NTT_BLOCK) {
    let len = size;
    for (; len >= 4; len >>= 2) for (let s = off, end = off + size; s < end; s += len) nttDifGroup(a, s, len >> 2, tw);
    if (len === 2) nttPairs(a, off, size);
    return;
  }
  const q = size >> 2;
  nttDifGroup(a, off, q, tw);
  for (let k = 0; k < 4; k++) nttForward(a, off + k * q, q, tw);
}

/** Inverse NTT (without the 1/N factor) of a[off .. off+size), bit-reversed order in, natural order out. */
function nttInverse(a: Int32Array, off: number, size: number, tw: Int32Array): void {
  if (size <= NTT_BLOCK) {
    let len = 1;
    if ((31 - Math.clz32(size)) % 2 === 1) {
      nttPairs(a, off, size);
      len = 2;
    }
    for (; len < size; len <<= 2) for (let s = off, end = off + size; s < end; s += 4 * len) nttDitGroup(a, s, len, tw);
    return;
  }
  const q = size >> 2;
  for (let k = 0; k < 4; k++) nttInverse(a, off + k * q, q, tw);
  nttDitGroup(a, off, q, tw);
}

/**
 * out[oOff + i] ^= XOR_{j < nLen} seed[sOff + i - j + nLen - 1] & x[xOff + j]  for i < lLen
 * (the Toeplitz convention on a window of x and of the seed), by one cyclic NTT convolution.
 */
function nttWindowInto(x: BitArray, xOff: number, nLen: number, seed: BitArray, sOff: number, lLen: number, out: BitArray, oOff: number): void {
  const m = nLen + lLen - 1;
  const size = transformSize(m, 1);
  const { fwd, inv } = nttTables(size);
  const { a, b } = nttWork(size);
  unpackBits(x, xOff, nLen, a, 1);
  a.fill(0, nLen);
  unpackBits(seed, sOff, m, b, pow(size, P - 2)); // 1/N folded into the seed
  b.fill(0, m);
  nttForward(a, 0, size, fwd);
  nttForward(b, 0, size, fwd);
  for (let i = 0; i < size; i++) a[i] = mul(a[i]!, b[i]!);
  nttInverse(a, 0, size, inv);
  const ow = out.words;
  for (let i = 0; i < lLen; i++) {
    const p = oOff + i;
    ow[p >>> 5]! ^= (a[i + nLen - 1]! & 1) << (p & 31);
  }
  // a held the key, then the product whose parities are the output; nothing of a block stays in the kept arrays.
  a.fill(0);
  b.fill(0);
}

// ==== FFT engine (float64, right-angle convolution, exact after rounding) ========================================
// Complex arrays are interleaved (re at 2k, im at 2k + 1): radix-4 butterflies touch half as many memory streams
// as with split arrays, and fewer of them collide in the same cache sets at power-of-two strides.

interface FftTables {
  /** Complex transform length these tables cover. */
  h: number;
  /**
   * For each radix-4 quarter length q (a power of two ≤ h/4) and j < q: tw[4(q + j) .. +3] = w1, w2 (re, im),
   * w1 = e^{-iπj/(2q)}, w2 = e^{-iπj/q}; both read from one stream by the butterfly.
   */
  tw: Float64Array;
}

interface FftWeights {
  /** Real convolution length. */
  n: number;
  /** w[2k] + i·w[2k + 1] = e^{iπk/n} for k < n/2. */
  w: Float64Array;
}

let fftTablesCache: FftTables | null = null;
let fftWeightsCache: FftWeights | null = null;
let fftWorkCache: Float64Array | null = null;

function fftTables(h: number): FftTables {
  if (fftTablesCache && fftTablesCache.h >= h) return fftTablesCache;
  const tw = new Float64Array(Math.max(8, 2 * h));
  // Every twiddle is a copy of one e^{-iπk/top} computed directly with Math.cos/sin (no recurrences).
  const top = Math.max(1, h >> 1);
  const br = new Float64Array(top);
  const bi = new Float64Array(top);
  for (let k = 0; k < top; k++) {
    const angle = (-Math.PI * k) / top;
    br[k] = Math.cos(angle);
    bi[k] = Math.sin(angle);
  }
  for (let q = 1; 4 * q <= h; q <<= 1) {
    const s1 = top / (2 * q), s2 = top / q;
    for (let j = 0; j < q; j++) {
      const t = 4 * (q + j);
      tw[t] = br[j * s1]!;
      tw[t + 1] = bi[j * s1]!;
      tw[t + 2] = br[j * s2]!;
      tw[t + 3] = bi[j * s2]!;
    }
  }
  const t = { h, tw };
  if (2 * h <= RETAIN_MAX) fftTablesCache = t;
  return t;
}

/** Weights for real length n, returned with the stride to read them at (a table for 2^k·n serves n). */
function fftWeights(n: number): { w: Float64Array; stride: number } {
  if (fftWeightsCache && fftWeightsCache.n >= n) return { w: fftWeightsCache.w, stride: fftWeightsCache.n / n };
  const h = n >> 1;
  const w = new Float64Array(2 * h);
  for (let k = 0; k < h; k++) {
    const angle = (Math.PI * k) / n;
    w[2 * k] = Math.cos(angle);
    w[2 * k + 1] = Math.sin(angle);
  }
  if (n <= RETAIN_MAX) fftWeightsCache = { n, w };
  return { w, stride: 1 };
}

/** Two interleaved complex arrays of h points. */
function fftWork(h: number): { x: Float64Array; y: Float64Array } {
  let f: Float64Array;
  if (2 * h > RETAIN_MAX) f = new Float64Array(4 * h);
  else {
    if (!fftWorkCache || fftWorkCache.length < 4 * h) fftWorkCache = new Float64Array(4 * h);
    f = fftWorkCache;
  }
  return { x: f.subarray(0, 2 * h), y: f.subarray(2 * h, 4 * h) };
}

/** Two DIF radix-2 stages (half-lengths 2q and q) on one complex group [s, s+4q); forward twiddles e^{-iθ}. */
function fftDifGroup(a: Float64Array, s: number, q: number, tw: Float64Array): void {
  const d = 2 * q;
  for (let i0 = 2 * s, end = i0 + d, t = 4 * q; i0 < end; i0 += 2, t += 4) {
    const w1r = tw[t]!, w1i = tw[t + 1]!, w2r = tw[t + 2]!, w2i = tw[t + 3]!;
    const w3r = w1r * w2r - w1i * w2i, w3i = w1r * w2i + w1i * w2r;
    const i1 = i0 + d, i2 = i1 + d, i3 = i2 + d;
    const a0r = a[i0]!, a0i = a[i0 + 1]!, a1r = a[i1]!, a1i = a[i1 + 1]!, a2r = a[i2]!, a2i = a[i2 + 1]!, a3r = a[i3]!, a3i = a[i3 + 1]!;
    const s02r = a0r + a2r, s02i = a0i + a2i, d02r = a0r - a2r, d02i = a0i - a2i;
    const s13r = a1r + a3r, s13i = a1i + a3i;
    // t = -i·(a1 - a3)   (the primitive 4th root e^{-iπ/2})
    const tr = a1i - a3i, ti = a3r - a1r;
    a[i0] = s02r + s13r;
    a[i0 + 1] = s02i + s13i;
    const y1r = s02r - s13r, y1i = s02i - s13i;
    a[i1] = y1r * w2r - y1i * w2i;
    a[i1 + 1] = y1r * w2i + y1i * w2r;
    const y2r = d02r + tr, y2i = d02i + ti;
    a[i2] = y2r * w1r - y2i * w1i;
    a[i2 + 1] = y2r * w1i + y2i * w1r;
    const y3r = d02r - tr, y3i = d02i - ti;
    a[i3] = y3r * w3r - y3i * w3i;
    a[i3 + 1] = y3r * w3i + y3i * w3r;
  }
}

/** Two DIT radix-2 stages (half-lengths q and 2q) on one complex group [s, s+4q); inverse twiddles e^{+iθ}. */
function fftDitGroup(a: Float64Array, s: number, q: number, tw: Float64Array): void {
  const d = 2 * q;
  for (let i0 = 2 * s, end = i0 + d, t = 4 * q; i0 < end; i0 += 2, t += 4) {
    const w1r = tw[t]!, w1i = -tw[t + 1]!, w2r = tw[t + 2]!, w2i = -tw[t + 3]!;
    const w3r = w1r * w2r - w1i * w2i, w3i = w1r * w2i + w1i * w2r;
    const i1 = i0 + d, i2 = i1 + d, i3 = i2 + d;
    const b0r = a[i0]!, b0i = a[i0 + 1]!;
    let xr = a[i1]!, xi = a[i1 + 1]!;
    const c1r = xr * w2r - xi * w2i, c1i = xr * w2i + xi * w2r;
    xr = a[i2]!;
    xi = a[i2 + 1]!;
    const c2r = xr * w1r - xi * w1i, c2i = xr * w1i + xi * w1r;
    xr = a[i3]!;
    xi = a[i3 + 1]!;
    const c3r = xr * w3r - xi * w3i, c3i = xr * w3i + xi * w3r;
    const e0r = b0r + c1r, e0i = b0i + c1i, e1r = b0r - c1r, e1i = b0i - c1i;
    const f2r = c2r + c3r, f2i = c2i + c3i;
    // f3 = +i·(c2 - c3)
    const f3r = c3i - c2i, f3i = c2r - c3r;
    a[i0] = e0r + f2r;
    a[i0 + 1] = e0i + f2i;
    a[i2] = e0r - f2r;
    a[i2 + 1] = e0i - f2i;
    a[i1] = e1r + f3r;
    a[i1 + 1] = e1i + f3i;
    a[i3] = e1r - f3r;
    a[i3 + 1] = e1i - f3i;
  }
}

function fftPairs(a: Float64Array, off: number, size: number): void {
  for (let s = 2 * off, end = 2 * (off + size); s < end; s += 4) {
    const ur = a[s]!, ui = a[s + 1]!, vr = a[s + 2]!, vi = a[s + 3]!;
    a[s] = ur + vr;
    a[s + 1] = ui + vi;
    a[s + 2] = ur - vr;
    a[s + 3] = ui - vi;
  }
}

const SQRT_HALF = Math.SQRT1_2;

/**
 * The last two forward stages on groups of 8 points (the q = 2 radix-4 stage, then pairs), with the twiddles
 * 1, e^{-iπ/4}, -i, e^{-3iπ/4} as exact constants instead of a call and table reads per group of 8.
 */
function fftDifTail8(a: Float64Array, off: number, size: number): void {
  const c = SQRT_HALF;
  for (let s = 2 * off, end = 2 * (off + size); s < end; s += 16) {
    // j = 0 butterfly on points 0, 2, 4, 6 (twiddles 1).
    let a0r = a[s]!, a0i = a[s + 1]!, a1r = a[s + 4]!, a1i = a[s + 5]!, a2r = a[s + 8]!, a2i = a[s + 9]!, a3r = a[s + 12]!, a3i = a[s + 13]!;
    let s02r = a0r + a2r, s02i = a0i + a2i, d02r = a0r - a2r, d02i = a0i - a2i, s13r = a1r + a3r, s13i = a1i + a3i;
    let tr = a1i - a3i, ti = a3r - a1r;
    const p0r = s02r + s13r, p0i = s02i + s13i, p2r = s02r - s13r, p2i = s02i - s13i;
    const p4r = d02r + tr, p4i = d02i + ti, p6r = d02r - tr, p6i = d02i - ti;
    // j = 1 butterfly on points 1, 3, 5, 7 (twiddles w1 = e^{-iπ/4}, w2 = -i, w3 = e^{-3iπ/4}).
    a0r = a[s + 2]!; a0i = a[s + 3]!; a1r = a[s + 6]!; a1i = a[s + 7]!; a2r = a[s + 10]!; a2i = a[s + 11]!; a3r = a[s + 14]!; a3i = a[s + 15]!;
    s02r = a0r + a2r; s02i = a0i + a2i; d02r = a0r - a2r; d02i = a0i - a2i; s13r = a1r + a3r; s13i = a1i + a3i;
    tr = a1i - a3i; ti = a3r - a1r;
    const p1r = s02r + s13r, p1i = s02i + s13i;
    const p3r = s02i - s13i, p3i = s13r - s02r;
    let yr = d02r + tr, yi = d02i + ti;
    const p5r = (yr + yi) * c, p5i = (yi - yr) * c;
    yr = d02r - tr;
    yi = d02i - ti;
    const p7r = (yi - yr) * c, p7i = -(yr + yi) * c;
    // Pairs.
    a[s] = p0r + p1r; a[s + 1] = p0i + p1i; a[s + 2] = p0r - p1r; a[s + 3] = p0i - p1i;
    a[s + 4] = p2r + p3r; a[s + 5] = p2i + p3i; a[s + 6] = p2r - p3r; a[s + 7] = p2i - p3i;
    a[s + 8] = p4r + p5r; a[s + 9] = p4i + p5i; a[s + 10] = p4r - p5r; a[s + 11] = p4i - p5i;
    a[s + 12] = p6r + p7r; a[s + 13] = p6i + p7i; a[s + 14] = p6r - p7r; a[s + 15] = p6i - p7i;
  }
}

/** The inverse of fftDifTail8 (pairs, then the q = 2 DIT stage with conjugate twiddles), without the 1/8. */
function fftDitTail8(a: Float64Array, off: number, size: number): void {
  const c = SQRT_HALF;
  for (let s = 2 * off, end = 2 * (off + size); s < end; s += 16) {
    let ur = a[s]!, ui = a[s + 1]!, vr = a[s + 2]!, vi = a[s + 3]!;
    const b0r = ur + vr, b0i = ui + vi, b1r = ur - vr, b1i = ui - vi;
    ur = a[s + 4]!; ui = a[s + 5]!; vr = a[s + 6]!; vi = a[s + 7]!;
    const b2r = ur + vr, b2i = ui + vi, b3r = ur - vr, b3i = ui - vi;
    ur = a[s + 8]!; ui = a[s + 9]!; vr = a[s + 10]!; vi = a[s + 11]!;
    const b4r = ur + vr, b4i = ui + vi, b5r = ur - vr, b5i = ui - vi;
    ur = a[s + 12]!; ui = a[s + 13]!; vr = a[s + 14]!; vi = a[s + 15]!;
    const b6r = ur + vr, b6i = ui + vi, b7r = ur - vr, b7i = ui - vi;
    // j = 0 on points 0, 2, 4, 6 (twiddles 1).
    let e0r = b0r + b2r, e0i = b0i + b2i, e1r = b0r - b2r, e1i = b0i - b2i;
    let f2r = b4r + b6r, f2i = b4i + b6i, f3r = b6i - b4i, f3i = b4r - b6r;
    a[s] = e0r + f2r; a[s + 1] = e0i + f2i; a[s + 8] = e0r - f2r; a[s + 9] = e0i - f2i;
    a[s + 4] = e1r + f3r; a[s + 5] = e1i + f3i; a[s + 12] = e1r - f3r; a[s + 13] = e1i - f3i;
    // j = 1 on points 1, 3, 5, 7 (twiddles w2 = i, w1 = e^{iπ/4}, w3 = e^{3iπ/4}).
    const c1r = -b3i, c1i = b3r;
    const c2r = (b5r - b5i) * c, c2i = (b5r + b5i) * c;
    const c3r = -(b7r + b7i) * c, c3i = (b7r - b7i) * c;
    e0r = b1r + c1r; e0i = b1i + c1i; e1r = b1r - c1r; e1i = b1i - c1i;
    f2r = c2r + c3r; f2i = c2i + c3i; f3r = c3i - c2i; f3i = c2r - c3r;
    a[s + 2] = e0r + f2r; a[s + 3] = e0i + f2i; a[s + 10] = e0r - f2r; a[s + 11] = e0i - f2i;
    a[s + 6] = e1r + f3r; a[s + 7] = e1i + f3i; a[s + 14] = e1r - f3r; a[s + 15] = e1i - f3i;
  }
}

/** The last forward stage for an even number of stages: radix-4 on groups of 4 points, all twiddles 1. */
function fftDifTail4(a: Float64Array, off: number, size: number): void {
  for (let s = 2 * off, end = 2 * (off + size); s < end; s += 8) {
    const a0r = a[s]!, a0i = a[s + 1]!, a1r = a[s + 2]!, a1i = a[s + 3]!, a2r = a[s + 4]!, a2i = a[s + 5]!, a3r = a[s + 6]!, a3i = a[s + 7]!;
    const s02r = a0r + a2r, s02i = a0i + a2i, d02r = a0r - a2r, d02i = a0i - a2i, s13r = a1r + a3r, s13i = a1i + a3i;
    const tr = a1i - a3i, ti = a3r - a1r;
    a[s] = s02r + s13r; a[s + 1] = s02i + s13i; a[s + 2] = s02r - s13r; a[s + 3] = s02i - s13i;
    a[s + 4] = d02r + tr; a[s + 5] = d02i + ti; a[s + 6] = d02r - tr; a[s + 7] = d02i - ti;
  }
}

/** The inverse of fftDifTail4 (without the 1/4). */
function fftDitTail4(a: Float64Array, off: number, size: number): void {
  for (let s = 2 * off, end = 2 * (off + size); s < end; s += 8) {
    const b0r = a[s]!, b0i = a[s + 1]!, c1r = a[s + 2]!, c1i = a[s + 3]!, c2r = a[s + 4]!, c2i = a[s + 5]!, c3r = a[s + 6]!, c3i = a[s + 7]!;
    const e0r = b0r + c1r, e0i = b0i + c1i, e1r = b0r - c1r, e1i = b0i - c1i;
    const f2r = c2r + c3r, f2i = c2i + c3i, f3r = c3i - c2i, f3i = c2r - c3r;
    a[s] = e0r + f2r; a[s + 1] = e0i + f2i; a[s + 4] = e0r - f2r; a[s + 5] = e0i - f2i;
    a[s + 2] = e1r + f3r; a[s + 3] = e1i + f3i; a[s + 6] = e1r - f3r; a[s + 7] = e1i - f3i;
  }
}

/** Forward transform of a cache-sized block [off, off+size): natural order in, bit-reversed out. */
function fftForwardBlock(a: Float64Array, off: number, size: number, tw: Float64Array): void {
  let len = size;
  for (; len >= 16; len >>= 2) for (let s = off, end = off + size; s < end; s += len) fftDifGroup(a, s, len >> 2, tw);
  if (len === 8) fftDifTail8(a, off, size);
  else if (len === 4) fftDifTail4(a, off, size);
  else fftPairs(a, off, size);
}

/** Inverse transform (without 1/size) of a cache-sized block: bit-reversed order in, natural out. */
function fftInverseBlock(a: Float64Array, off: number, size: number, tw: Float64Array): void {
  if (size === 2) {
    fftPairs(a, off, size);
    return;
  }
  let len = 4;
  if ((31 - Math.clz32(size)) % 2 === 1) {
    fftDitTail8(a, off, size);
    len = 8;
  } else fftDitTail4(a, off, size);
  for (; len < size; len <<= 2) for (let s = off, end = off + size; s < end; s += 4 * len) fftDitGroup(a, s, len, tw);
}

/**
 * x ← inverse(forward(x)·forward(y)) on [off, off+size), depth first: the forward transforms are DIF (their top
 * stages first) and the inverse DIT (its top stages last), so each cache-sized block is transformed, multiplied
 * and transformed back while it is in cache, and the large arrays are swept once per radix-4 level, not thrice.
 */
function fftConvolve(x: Float64Array, y: Float64Array, off: number, size: number, tw: Float64Array): void {
  if (size <= FFT_BLOCK) {
    fftForwardBlock(x, off, size, tw);
    fftForwardBlock(y, off, size, tw);
    for (let i = 2 * off, end = 2 * (off + size); i < end; i += 2) {
      const ar = x[i]!, ai = x[i + 1]!, br = y[i]!, bi = y[i + 1]!;
      x[i] = ar * br - ai * bi;
      x[i + 1] = ar * bi + ai * br;
    }
    fftInverseBlock(x, off, size, tw);
    return;
  }
  const q = size >> 2;
  fftDifGroup(x, off, q, tw);
  fftDifGroup(y, off, q, tw);
  for (let k = 0; k < 4; k++) fftConvolve(x, y, off + k * q, q, tw);
  fftDitGroup(x, off, q, tw);
}

/** Bits [pos, pos + 32) of the window [off, off + len) of src as one word, zero past the window. */
function windowWord(src: Uint32Array, off: number, len: number, pos: number): number {
  if (pos >= len) return 0;
  const p = off + pos, wi = p >>> 5, sh = p & 31;
  let v = src[wi]! >>> sh;
  if (sh !== 0 && wi + 1 < src.length) v |= src[wi + 1]! << (32 - sh);
  const rem = len - pos;
  return rem >= 32 ? v : v & ((1 << rem) - 1);
}

/** Fold and weight bits [off, off + len) (len ≤ 2h): dst[k] = (b[k] + i·b[k + h])·e^{iπk/2h}, read a word at a time. */
function fftFold(dst: Float64Array, src: BitArray, off: number, len: number, h: number, w: Float64Array, stride: number): void {
  const words = src.words;
  const live = Math.min(h, len); // from k = live on both bits are past the window
  for (let k0 = 0; k0 < live; k0 += 32) {
    const lo = windowWord(words, off, len, k0), hi = windowWord(words, off, len, k0 + h);
    const end = 2 * Math.min(k0 + 32, live);
    if ((lo | hi) === 0) {
      dst.fill(0, 2 * k0, end);
      continue;
    }
    for (let i = 2 * k0, ws = i * stride, b = 0; i < end; i += 2, ws += 2 * stride, b++) {
      const p = (lo >>> b) & 1, q = (hi >>> b) & 1;
      const wr = w[ws]!, wi = w[ws + 1]!;
      dst[i] = p * wr - q * wi;
      dst[i + 1] = p * wi + q * wr;
    }
  }
  dst.fill(0, 2 * live);
}

/** 1.5·2^52: v + ROUND_MAGIC - ROUND_MAGIC is v rounded to the nearest integer for |v| < 2^51 (as Math.round
 * when |v - round(v)| < 1/2, which the guard requires; cheaper than Math.round in V8). */
const ROUND_MAGIC = 6755399441055744;

/**
 * XORs the parities of c[nLen - 1 .. m) into out from bit oOff and returns the largest distance of a value to
 * its integer (Infinity for NaN). z[k] = Z[k]·e^{-iπk/n}/h has real part c[k] and imaginary part c[k + h].
 */
function fftUnweightInto(xc: Float64Array, nLen: number, m: number, h: number, w: Float64Array, stride: number, out: BitArray, oOff: number): number {
  const scale = 1 / h;
  const ow = out.words;
  let worst = 0; // a NaN is recorded as Infinity, which fails the guard
  let acc = 0;
  let p = oOff;
  for (let mm = nLen - 1, end = Math.min(m, h); mm < end; mm++, p++) {
    const i = 2 * mm, ws = i * stride;
    const v = (xc[i]! * w[ws]! + xc[i + 1]! * w[ws + 1]!) * scale;
    const r = v + ROUND_MAGIC - ROUND_MAGIC;
    const e = Math.abs(v - r);
    worst = e > worst ? e : worst;
    if (e !== e) worst = Infinity;
    acc |= (r & 1) << (p & 31);
    if ((p & 31) === 31) {
      ow[p >>> 5]! ^= acc;
      acc = 0;
    }
  }
  for (let k = Math.max(nLen - 1, h) - h, end = m - h; k < end; k++, p++) {
    const i = 2 * k, ws = i * stride;
    const v = (xc[i + 1]! * w[ws]! - xc[i]! * w[ws + 1]!) * scale;
    const r = v + ROUND_MAGIC - ROUND_MAGIC;
    const e = Math.abs(v - r);
    worst = e > worst ? e : worst;
    if (e !== e) worst = Infinity;
    acc |= (r & 1) << (p & 31);
    if ((p & 31) === 31) {
      ow[p >>> 5]! ^= acc;
      acc = 0;
    }
  }
  if (acc !== 0) ow[(p - 1) >>> 5]! ^= acc;
  return worst;
}

/** Same contract as nttWindowInto, by a negacyclic right-angle convolution of real length n ≥ nLen + lLen - 1. */
function fftWindowInto(x: BitArray, xOff: number, nLen: number, seed: BitArray, sOff: number, lLen: number, out: BitArray, oOff: number): void {
  const m = nLen + lLen - 1;
  const n = transformSize(m, 4);
  const h = n >> 1;
  const { tw } = fftTables(h);
  const { w, stride } = fftWeights(n);
  const { x: xc, y: yc } = fftWork(h);
  fftFold(xc, x, xOff, nLen, h, w, stride);
  fftFold(yc, seed, sOff, m, h, w, stride);
  fftConvolve(xc, yc, 0, h, tw);
  const worst = fftUnweightInto(xc, nLen, m, h, w, stride, out, oOff);
  // xc held the key, then the product whose parities are the output; nothing of a block stays in the kept arrays.
  xc.fill(0);
  yc.fill(0);
  if (!(worst <= 0.25)) throw new Error(`toeplitzHash: FFT result ${worst} away from an integer; floating-point error bound violated`);
}

// ==== public API ==================================================================================================

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
function toeplitzInto(input: BitArray, xOff: number, n: number, seedBits: BitArray, l: number, out: BitArray, options: ToeplitzOptions): void {
  const engine = options.engine ?? DEFAULT_TOEPLITZ_ENGINE;
  if (engine !== 'fft' && engine !== 'ntt') throw new RangeError(`toeplitzHash: unknown engine ${String(engine)}`);
  const engineMax = engine === 'fft' ? MAX_FFT_SIZE : MAX_NTT_SIZE;
  const maxSize = options.maxTransformSize ?? engineMax;
  if (!(Number.isInteger(maxSize) && maxSize >= 4 && maxSize <= engineMax && (maxSize & (maxSize - 1)) === 0)) {
    throw new RangeError(`toeplitzHash: maxTransformSize must be a power of two in [4, ${engineMax}] for ${engine}, got ${maxSize}`);
  }
  const windowInto = engine === 'fft' ? fftWindowInto : nttWindowInto;
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

// ==== the modified Toeplitz family ===============================================================================

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
  const clear = (a: Int32Array | Float64Array | null): boolean => a === null || a.every((v) => v === 0);
  return clear(nttWorkCache) && clear(fftWorkCache);
}

/** Frees the twiddle tables and work arrays kept between calls. */
export function releaseToeplitzCaches(): void {
  nttTablesCache = null;
  nttWorkCache = null;
  fftTablesCache = null;
  fftWeightsCache = null;
  fftWorkCache = null;
}

/** A fresh seed for the family (paSeedLength bits) from the CSPRNG; one end picks it and sends it. */
export function newToeplitzSeed(n: number, l: number, rng: Rng = cryptoRng(), family: PaHashFamily = DEFAULT_PA_HASH_FAMILY): BitArray {
  return randomBits(rng, paSeedLength(family, n, l));
}

export interface AmplifyParams {
  /** Error-verification failure probability (bound of the verify tag). */
  epsEC: number;
  /** Privacy-amplification security parameter. */
  epsPA: number;
  /** Hash family (default DEFAULT_PA_HASH_FAMILY). */
  family?: PaHashFamily;
}

/** Output length both ends compute for a verified block: the finite-key formula on its remaining bits and leak. */
export function amplifiedLength(block: KeyBlock, params: AmplifyParams): number {
  if (block.qberUpper === undefined) throw new Error(`amplify: block ${block.blockId} has no qberUpper (was it estimated?)`);
  return secretKeyLength({ n: block.bits.length, qberUpper: block.qberUpper, leakEC: block.leakedBits, epsEC: params.epsEC, epsPA: params.epsPA });
}

/**
 * The stage over a KeyBlock: 'verified' -> 'amplified' with l = amplifiedLength(block, params) bits, or dropped
 * when l = 0 (then the seed is not used). The seed must have paSeedLength(family, n, l) bits (newToeplitzSeed).
 */
export function amplifyBlock(block: KeyBlock, params: AmplifyParams, seedBits: BitArray, options: ToeplitzOptions = {}): StageOutcome<KeyBlock> {
  requireStage(block, 'verified', 'amplifyBlock');
  const l = amplifiedLength(block, params);
  if (l === 0) {
    return dropped('no-secret-key', `no secret key left: ${block.bits.length} bits, qberUpper ${block.qberUpper}, ${block.leakedBits} bits leaked`);
  }
  return kept(advance(block, 'amplified', { bits: paHash(params.family ?? DEFAULT_PA_HASH_FAMILY, block.bits, seedBits, l, options) }));
}
