/**
 * The FFT's lengths and tables, shared by its two kernels (fft.ts in JavaScript, fftWasm.ts driving the
 * WebAssembly build of asm/fftKernels.ts): which transform lengths exist, the radix-4 twiddles, the fold's weights,
 * the radix-3 twiddles and the fused fold's butterfly table. Every value is computed directly with Math.cos/sin
 * (or is a product of two such values), never by a recurrence. Pure arithmetic; caches as noted.
 */
/**
 * Largest FFT length (real points) used before chunking: 9·2^19 = 4,718,592, so that a PA block of 4·10^6 key bits
 * plus the overshoot of its last EC block is one transform (chunking it costs about 1.5 transforms of 2^22).
 */
export const MAX_FFT_SIZE = 9 * (1 << 19);
/**
 * Tables and work arrays of transforms up to this length are kept between calls (about 115 MiB at the maximum):
 * building them costs more than the transform (page faults on fresh arrays, millions of cos/sin); they are
 * released after a minute without a call (fft.ts).
 */
export const FFT_RETAIN_MAX = MAX_FFT_SIZE;

/**
 * Smallest FFT length N ≥ max(m, 4) of the form 2^k, 3·2^k or 9·2^k whose power-of-two part leaves complex
 * sub-transforms (N/2 divided by 3 or 9) of at least 4 points: the radix-3 levels cut the rounding-up waste of a
 * power of two (at most 33 % instead of 100 %).
 */
export function fftTransformSize(m: number): number {
  let best = 4;
  while (best < m) best <<= 1;
  for (const odd of [3, 9]) {
    let size = 8 * odd;
    while (size < m) size <<= 1;
    if (size < best) best = size;
  }
  return best;
}

/** The power-of-two part of h. */
export function powerOfTwoPart(h: number): number {
  return h & -h;
}

export interface FftTables {
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

export function fftTables(h: number): FftTables {
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
  if (2 * h <= FFT_RETAIN_MAX) fftTablesCache = t;
  return t;
}

/** w[2k] + i·w[2k + 1] = e^{iπk/n} for k < n/2, each computed directly with Math.cos/sin. */
export function writeWeights(w: Float64Array, n: number): void {
  for (let k = 0, h = n >> 1; k < h; k++) {
    const angle = (Math.PI * k) / n;
    w[2 * k] = Math.cos(angle);
    w[2 * k + 1] = Math.sin(angle);
  }
}

/** Weights for real length n, returned with the stride to read them at (a table for a multiple k·n serves n). */
export function fftWeights(n: number): { w: Float64Array; stride: number } {
  if (fftWeightsCache && fftWeightsCache.n % n === 0) return { w: fftWeightsCache.w, stride: fftWeightsCache.n / n };
  const w = new Float64Array(n);
  writeWeights(w, n);
  if (n <= FFT_RETAIN_MAX) fftWeightsCache = { n, w };
  return { w, stride: 1 };
}
/** Radix-3 twiddles e^{-2πi·j/size} are a coarse × fine product of two small tables (2^10 entries each). */
export const FINE_BITS = 10;
export const FINE = 1 << FINE_BITS;

export interface Radix3Twiddles {
  /** fine[2f] + i·fine[2f+1] = e^{-2πi·f/size}, f < 2^10. */
  fine: Float64Array;
  /** coarse[2c] + i·coarse[2c+1] = e^{-2πi·c·2^10/size}, c·2^10 < 2·size/3. */
  coarse: Float64Array;
}
const radix3Cache = new Map<number, Radix3Twiddles>();

export function radix3Twiddles(size: number): Radix3Twiddles {
  const hit = radix3Cache.get(size);
  if (hit) return hit;
  const fine = new Float64Array(2 * FINE);
  for (let f = 0; f < FINE; f++) {
    const angle = (-2 * Math.PI * f) / size;
    fine[2 * f] = Math.cos(angle);
    fine[2 * f + 1] = Math.sin(angle);
  }
  const coarseCount = (((2 * size) / 3) >> FINE_BITS) + 1;
  const coarse = new Float64Array(2 * coarseCount);
  for (let c = 0; c < coarseCount; c++) {
    const angle = (-2 * Math.PI * c * FINE) / size;
    coarse[2 * c] = Math.cos(angle);
    coarse[2 * c + 1] = Math.sin(angle);
  }
  const t = { fine, coarse };
  radix3Cache.set(size, t);
  return t;
}

/**
 * The top radix-3 level's butterfly applied to folded bits, as a table: with ζ = e^{iπ/2h} (so the fold's weight
 * of point k is ζ^k, and W = e^{-2πi/h} = ζ^-4), the points j, j + t, j + 2t (t = h/3) hold ζ^j·e^{iπr/6}·v_r,
 * v_r = b[j + rt] + i·b[j + rt + h] ∈ {0, 1, i, 1 + i}, and the butterfly's outputs are
 *     y_m = (Σ_r ω^{rm}·ζ^j·e^{iπr/6}·v_r)·W^{mj} = ζ^{(1 - 4m)j} · T_m[v_0, v_1, v_2]   (ω = e^{-2πi/3}),
 * so each is one table constant (64 per m, for the six bits) times one weight from the fold's own table.
 * FOLD3[2(64m + code)], +1: T_m for code = p0 | q0 << 1 | p1 << 2 | q1 << 3 | p2 << 4 | q2 << 5.
 */
export const FOLD3 = (() => {
  const t = new Float64Array(2 * 3 * 64);
  for (let m = 0; m < 3; m++) {
    for (let code = 0; code < 64; code++) {
      let re = 0, im = 0;
      for (let r = 0; r < 3; r++) {
        const p = (code >> (2 * r)) & 1, q = (code >> (2 * r + 1)) & 1;
        const angle = (Math.PI * r) / 6 - (2 * Math.PI * r * m) / 3;
        const c = Math.cos(angle), sn = Math.sin(angle);
        // (p + i·q)·(c + i·sn)
        re += p * c - q * sn;
        im += p * sn + q * c;
      }
      t[2 * (64 * m + code)] = re;
      t[2 * (64 * m + code) + 1] = im;
    }
  }
  return t;
})();
/** Drops the radix-4 twiddle table kept in JavaScript (the WebAssembly kernel keeps its own copy). */
export function forgetFftTables(): void {
  fftTablesCache = null;
}

/** Frees every table kept between calls. */
export function releaseFftTables(): void {
  fftTablesCache = null;
  fftWeightsCache = null;
  radix3Cache.clear();
}
