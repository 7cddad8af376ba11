/**
 * The exact convolution engine: a number-theoretic transform over p = 998244353 = 119·2^23 + 1 (primitive root 3).
 * c[m] <= n < p, so the convolution mod p is the integer convolution. Radix-4 decimation in frequency forward
 * (natural -> bit-reversed), decimation in time inverse (bit-reversed -> natural), no permutation pass, recursion
 * down to cache-sized blocks; modular products use a float quotient estimate biased low, corrected exactly with
 * Math.imul. JavaScript has no 64-bit integer multiply, so each butterfly costs ~16 integer operations.
 */
import type { BitArray } from '../common/bits.js';
import { RETAIN_MAX, transformSize } from './transforms.js';

/** Largest NTT length p = 998244353 supports (p - 1 = 119·2^23). */
export const MAX_NTT_SIZE = 1 << 23;
/** Sub-transforms up to this many points run entirely in cache-sized blocks (int32). */
const NTT_BLOCK = 1 << 12;

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
export function nttWindowInto(x: BitArray, xOff: number, nLen: number, seed: BitArray, sOff: number, lLen: number, out: BitArray, oOff: number): void {
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

/** True when the kept work array is all zero. */
export function nttWorkspaceIsClear(): boolean {
  return nttWorkCache === null || nttWorkCache.every((v) => v === 0);
}

/** Frees the twiddle tables and work array kept between calls. */
export function releaseNttCaches(): void {
  nttTablesCache = null;
  nttWorkCache = null;
}
