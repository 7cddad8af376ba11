/**
 * The fast convolution engine: float64 complex FFT with the "right-angle" negacyclic convolution (Crandall). The
 * real inputs of length N are folded into complex sequences of length N/2 (x[k] + i·x[k + N/2]) weighted by
 * e^{iπk/N}, so three complex transforms of N/2 points do the whole product; they run depth first in one recursion
 * (forward DIF, pointwise product and inverse DIT per cache-sized block) on interleaved complex arrays.
 * Exactness comes from an error bound, not from hope (toeplitz.ts explains it); as a guard every output is checked
 * to lie within 1/4 of an integer, otherwise the call throws instead of returning a doubtful bit.
 *
 * This file holds the JavaScript kernel and fftWindowInto, which runs the WebAssembly kernel (fftWasm.ts) when it is
 * built and this one otherwise; the lengths and tables both use are in fftTables.ts.
 */
import type { BitArray } from '../common/bits.js';
import {
  FINE,
  FINE_BITS,
  FOLD3,
  FFT_RETAIN_MAX,
  fftTables,
  fftTransformSize,
  fftWeights,
  powerOfTwoPart,
  radix3Twiddles,
  releaseFftTables,
  type Radix3Twiddles,
} from './fftTables.js';
import { releaseWasmWork, wasmWindowInto, wasmWorkspaceIsClear } from './fftWasm.js';
import { fftKernelsAvailable } from './wasmKernels.js';

export { fftTransformSize, MAX_FFT_SIZE } from './fftTables.js';

// Complex arrays are interleaved (re at 2k, im at 2k + 1): radix-4 butterflies touch half as many memory streams
// as with split arrays, and fewer of them collide in the same cache sets at power-of-two strides.
const FFT_IDLE_RELEASE_MS = 60_000;
/** Sub-transforms up to this many points run entirely in cache-sized blocks (complex float64). */
const FFT_BLOCK = 1 << 11;
let fftWorkCache: Float64Array | null = null;

/**
 * Which kernel runs the power-of-two convolutions: 'wasm' (asm/fftKernels.ts, SIMD; about twice as fast) when its
 * build is there, else 'js' (fftConvolve below). Tests switch between them to check they agree.
 */
export type FftKernel = 'wasm' | 'js';
let kernelChoice: FftKernel | null = null;

/** The kernel the next product uses. */
export function fftKernel(): FftKernel {
  if (kernelChoice === null) kernelChoice = fftKernelsAvailable() ? 'wasm' : 'js';
  return kernelChoice;
}

/** Tests and benches: run the given kernel ('wasm' throws when its build is missing). */
export function useFftKernel(kind: FftKernel): void {
  if (kind === 'wasm' && !fftKernelsAvailable()) throw new Error('fftKernels.wasm is not built (npm run build)');
  kernelChoice = kind;
}

/** Two interleaved complex arrays of h points. */
function fftWork(h: number): { x: Float64Array; y: Float64Array } {
  let f: Float64Array;
  if (2 * h > FFT_RETAIN_MAX) f = new Float64Array(4 * h);
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

const SIN_THIRD = Math.sqrt(3) / 2;

/**
 * One radix-3 DIF level on the complex group [off, off + 3t): a0, a1, a2 = a[j], a[j + t], a[j + 2t] become
 * a0 + a1 + a2, (a0 + ω·a1 + ω²·a2)·W^j and (a0 + ω²·a1 + ω·a2)·W^{2j} (ω = e^{-2πi/3}, W = e^{-2πi/3t}), so that
 * each third is then an independent transform of t points (any order of the spectrum serves a convolution).
 */
function fftDif3(a: Float64Array, off: number, t: number, tw: Radix3Twiddles): void {
  const { fine, coarse } = tw;
  const c = SIN_THIRD;
  for (let j = 0; j < t; j++) {
    const i0 = 2 * (off + j), i1 = i0 + 2 * t, i2 = i1 + 2 * t;
    const a0r = a[i0]!, a0i = a[i0 + 1]!, a1r = a[i1]!, a1i = a[i1 + 1]!, a2r = a[i2]!, a2i = a[i2 + 1]!;
    const sr = a1r + a2r, si = a1i + a2i, dr = a1r - a2r, di = a1i - a2i;
    const mr = a0r - 0.5 * sr, mi = a0i - 0.5 * si;
    // -i·(√3/2)·(a1 - a2)
    const nr = c * di, ni = -c * dr;
    a[i0] = a0r + sr;
    a[i0 + 1] = a0i + si;
    const y1r = mr + nr, y1i = mi + ni, y2r = mr - nr, y2i = mi - ni;
    // W^j and W^{2j}, each a coarse × fine product.
    let f = 2 * (j & (FINE - 1)), g = 2 * (j >>> FINE_BITS);
    const w1r = coarse[g]! * fine[f]! - coarse[g + 1]! * fine[f + 1]!, w1i = coarse[g]! * fine[f + 1]! + coarse[g + 1]! * fine[f]!;
    const j2 = 2 * j;
    f = 2 * (j2 & (FINE - 1));
    g = 2 * (j2 >>> FINE_BITS);
    const w2r = coarse[g]! * fine[f]! - coarse[g + 1]! * fine[f + 1]!, w2i = coarse[g]! * fine[f + 1]! + coarse[g + 1]! * fine[f]!;
    a[i1] = y1r * w1r - y1i * w1i;
    a[i1 + 1] = y1r * w1i + y1i * w1r;
    a[i2] = y2r * w2r - y2i * w2i;
    a[i2 + 1] = y2r * w2i + y2i * w2r;
  }
}

/** The inverse of fftDif3 (conjugate twiddles, without the 1/3): undoes it after the thirds' inverse transforms. */
function fftDit3(a: Float64Array, off: number, t: number, tw: Radix3Twiddles): void {
  const { fine, coarse } = tw;
  const c = SIN_THIRD;
  for (let j = 0; j < t; j++) {
    const i0 = 2 * (off + j), i1 = i0 + 2 * t, i2 = i1 + 2 * t;
    let f = 2 * (j & (FINE - 1)), g = 2 * (j >>> FINE_BITS);
    const w1r = coarse[g]! * fine[f]! - coarse[g + 1]! * fine[f + 1]!, w1i = -(coarse[g]! * fine[f + 1]! + coarse[g + 1]! * fine[f]!);
    const j2 = 2 * j;
    f = 2 * (j2 & (FINE - 1));
    g = 2 * (j2 >>> FINE_BITS);
    const w2r = coarse[g]! * fine[f]! - coarse[g + 1]! * fine[f + 1]!, w2i = -(coarse[g]! * fine[f + 1]! + coarse[g + 1]! * fine[f]!);
    const z0r = a[i0]!, z0i = a[i0 + 1]!;
    let xr = a[i1]!, xi = a[i1 + 1]!;
    const z1r = xr * w1r - xi * w1i, z1i = xr * w1i + xi * w1r;
    xr = a[i2]!;
    xi = a[i2 + 1]!;
    const z2r = xr * w2r - xi * w2i, z2i = xr * w2i + xi * w2r;
    const sr = z1r + z2r, si = z1i + z2i, dr = z1r - z2r, di = z1i - z2i;
    const mr = z0r - 0.5 * sr, mi = z0i - 0.5 * si;
    // +i·(√3/2)·(z1 - z2)
    const nr = -c * di, ni = c * dr;
    a[i0] = z0r + sr;
    a[i0 + 1] = z0i + si;
    a[i1] = mr + nr;
    a[i1 + 1] = mi + ni;
    a[i2] = mr - nr;
    a[i2 + 1] = mi - ni;
  }
}

/**
 * x ← inverse(forward(x)·forward(y)) on [off, off+size), depth first: the forward transforms are DIF (their top
 * stages first) and the inverse DIT (its top stages last), so each cache-sized block is transformed, multiplied
 * and transformed back while it is in cache, and the large arrays are swept once per radix-4 level, not thrice.
 */
/** fftConvolve for a size 3^a·2^k: the radix-3 levels first, then the power-of-two sub-convolutions. */
function fftConvolveMixed(x: Float64Array, y: Float64Array, off: number, size: number, tw: Float64Array): void {
  if (size % 3 !== 0) {
    fftConvolve(x, y, off, size, tw);
    return;
  }
  const t = size / 3;
  const tw3 = radix3Twiddles(size);
  fftDif3(x, off, t, tw3);
  fftDif3(y, off, t, tw3);
  for (let k = 0; k < 3; k++) fftConvolveMixed(x, y, off + k * t, t, tw);
  fftDit3(x, off, t, tw3);
}

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

/**
 * fftFold followed by the top radix-3 DIF level (fftDif3 over all h points) in one pass, by the FOLD3 tables: the
 * large array is written once instead of written, read and written again, and every twiddle is a weight read from
 * the fold's table (ζ^j, ζ^-3j, ζ^-7j; ζ^k for k ≥ h is i·ζ^{k-h} or -ζ^{k-2h}). h must be a multiple of 3.
 */
function fftFoldDif3(dst: Float64Array, src: BitArray, off: number, len: number, h: number, w: Float64Array, stride: number): void {
  const words = src.words;
  const T = FOLD3;
  const t = h / 3;
  for (let j0 = 0; j0 < t; j0 += 32) {
    const lo0 = windowWord(words, off, len, j0), hi0 = windowWord(words, off, len, j0 + h);
    const lo1 = windowWord(words, off, len, j0 + t), hi1 = windowWord(words, off, len, j0 + t + h);
    const lo2 = windowWord(words, off, len, j0 + 2 * t), hi2 = windowWord(words, off, len, j0 + 2 * t + h);
    const end = Math.min(j0 + 32, t);
    if ((lo0 | hi0 | lo1 | hi1 | lo2 | hi2) === 0) {
      dst.fill(0, 2 * j0, 2 * end);
      dst.fill(0, 2 * (j0 + t), 2 * (end + t));
      dst.fill(0, 2 * (j0 + 2 * t), 2 * (end + 2 * t));
      continue;
    }
    for (let j = j0, b = 0; j < end; j++, b++) {
      const code =
        ((lo0 >>> b) & 1) | (((hi0 >>> b) & 1) << 1) | (((lo1 >>> b) & 1) << 2) | (((hi1 >>> b) & 1) << 3) | (((lo2 >>> b) & 1) << 4) | (((hi2 >>> b) & 1) << 5);
      const i0 = 2 * j, i1 = i0 + 2 * t, i2 = i1 + 2 * t;
      const c0 = 2 * code, c1 = c0 + 128, c2 = c0 + 256;
      // y_0 = ζ^j·T_0
      let ws = i0 * stride;
      let zr = w[ws]!, zi = w[ws + 1]!;
      let tr = T[c0]!, ti = T[c0 + 1]!;
      dst[i0] = zr * tr - zi * ti;
      dst[i0 + 1] = zr * ti + zi * tr;
      // y_1 = ζ^-3j·T_1 (3j < h)
      ws = 3 * i0 * stride;
      zr = w[ws]!;
      zi = -w[ws + 1]!;
      tr = T[c1]!;
      ti = T[c1 + 1]!;
      dst[i1] = zr * tr - zi * ti;
      dst[i1 + 1] = zr * ti + zi * tr;
      // y_2 = ζ^-7j·T_2, 7j < 7h/3: conj(ζ^k) for k = 7j - qh is (-i)^q·conj(ζ^{7j}) reduced
      let k = 7 * j;
      let q = 0;
      while (k >= h) {
        k -= h;
        q++;
      }
      ws = 2 * k * stride;
      const cr = w[ws]!, ci = -w[ws + 1]!;
      if (q === 0) {
        zr = cr;
        zi = ci;
      } else if (q === 1) {
        zr = ci;
        zi = -cr;
      } else {
        zr = -cr;
        zi = -ci;
      }
      tr = T[c2]!;
      ti = T[c2 + 1]!;
      dst[i2] = zr * tr - zi * ti;
      dst[i2 + 1] = zr * ti + zi * tr;
    }
  }
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
  for (let mm = nLen - 1; mm < m; mm++, p++) {
    // c[mm] is the real part of z[mm] for mm < h, else the imaginary part of z[mm - h].
    const i = 2 * (mm < h ? mm : mm - h), ws = i * stride;
    const xr = xc[i]!, xi = xc[i + 1]!, wr = w[ws]!, wi = w[ws + 1]!;
    const v = (mm < h ? xr * wr + xi * wi : xi * wr - xr * wi) * scale;
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
export function fftWindowInto(x: BitArray, xOff: number, nLen: number, seed: BitArray, sOff: number, lLen: number, out: BitArray, oOff: number): void {
  const m = nLen + lLen - 1;
  const n = fftTransformSize(m);
  const worst = fftKernel() === 'wasm' ? wasmWindowInto(x, xOff, nLen, seed, sOff, lLen, out, oOff, n) : jsWindowInto(x, xOff, nLen, seed, sOff, lLen, out, oOff, n);
  armIdleRelease();
  if (!(worst <= 0.25)) throw new Error(`toeplitzHash: FFT result ${worst} away from an integer; floating-point error bound violated`);
}

/** fftWindowInto on the JavaScript kernel; returns the largest distance of an output to its integer. */
function jsWindowInto(x: BitArray, xOff: number, nLen: number, seed: BitArray, sOff: number, lLen: number, out: BitArray, oOff: number, n: number): number {
  const m = nLen + lLen - 1;
  const h = n >> 1;
  const p = powerOfTwoPart(h);
  const { tw } = fftTables(p);
  const { w, stride } = fftWeights(n);
  const { x: xc, y: yc } = fftWork(h);
  if (h % 3 === 0) {
    // The top radix-3 level of fftConvolveMixed, fused with the fold.
    const t = h / 3;
    fftFoldDif3(xc, x, xOff, nLen, h, w, stride);
    fftFoldDif3(yc, seed, sOff, m, h, w, stride);
    for (let k = 0; k < 3; k++) fftConvolveMixed(xc, yc, k * t, t, tw);
    fftDit3(xc, 0, t, radix3Twiddles(h));
  } else {
    fftFold(xc, x, xOff, nLen, h, w, stride);
    fftFold(yc, seed, sOff, m, h, w, stride);
    fftConvolve(xc, yc, 0, h, tw);
  }
  const worst = fftUnweightInto(xc, nLen, m, h, w, stride, out, oOff);
  // xc held the key, then the product whose parities are the output; nothing of a block stays in the kept arrays.
  xc.fill(0);
  yc.fill(0);
  return worst;
}

/** True when the kept work arrays (both kernels) are all zero. */
export function fftWorkspaceIsClear(): boolean {
  return (fftWorkCache === null || fftWorkCache.every((v) => v === 0)) && wasmWorkspaceIsClear();
}

/** Frees the twiddle tables, weights and work arrays kept between calls (both kernels). */
export function releaseFftCaches(): void {
  releaseFftTables();
  fftWorkCache = null;
  releaseWasmWork();
}

let idleTimer: NodeJS.Timeout | undefined;
/** (Re)starts the timer that frees the caches once no transform ran for FFT_IDLE_RELEASE_MS; it never keeps a process alive. */
function armIdleRelease(): void {
  if (idleTimer) idleTimer.refresh();
  else {
    idleTimer = setTimeout(() => {
      idleTimer = undefined;
      releaseFftCaches();
    }, FFT_IDLE_RELEASE_MS);
    idleTimer.unref();
  }
}
