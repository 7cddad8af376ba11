/**
 * AssemblyScript (compiled to WebAssembly with SIMD by `npm run build`: dist/asm/fftKernels.wasm): the FFT kernel of
 * privacy amplification (src/sim/bb84/amplification/), the same algorithm as the JavaScript one in fft.ts
 * (radix-4 DIF forward, pointwise product, radix-4 DIT inverse, depth first with cache-sized leaves) on interleaved
 * complex float64 arrays in this module's linear memory, one complex number per v128 lane pair. fftWasm.ts owns the
 * memory layout, the tables and every check; this file only does arithmetic on the arrays it is pointed at.
 *
 * Pointers are byte offsets into linear memory; indices count float64 values, as in fft.ts. The twiddle table is
 * fftTables.ts's FftTables.tw: for a quarter length q and j < q, tw[4(q + j)..+3] = w1 (re, im), w2 (re, im).
 */

/** Sub-transforms up to this many complex points run entirely in cache (as FFT_BLOCK in fft.ts). */
const BLOCK: i32 = 1 << 11;

@inline function ld(p: usize, i: i32): v128 {
  return v128.load(p + (<usize>i << 3));
}
@inline function st(p: usize, i: i32, v: v128): void {
  v128.store(p + (<usize>i << 3), v);
}
/** a·w for complex a, w, with wx = [-w.im, w.re] precomputed: a.re·w + a.im·wx. */
@inline function cmul(a: v128, w: v128, wx: v128): v128 {
  return f64x2.add(f64x2.mul(v128.shuffle<f64>(a, a, 0, 0), w), f64x2.mul(v128.shuffle<f64>(a, a, 1, 1), wx));
}
/** [-v.im, v.re] = i·v. */
@inline function timesI(v: v128): v128 {
  return f64x2.mul(v128.shuffle<f64>(v, v, 1, 0), f64x2(-1.0, 1.0));
}
/** [v.im, -v.re] = -i·v. */
@inline function timesMinusI(v: v128): v128 {
  return f64x2.mul(v128.shuffle<f64>(v, v, 1, 0), f64x2(1.0, -1.0));
}
@inline function conj(v: v128): v128 {
  return f64x2.mul(v, f64x2(1.0, -1.0));
}

/** Two DIF radix-2 stages (half-lengths 2q and q) on the complex group [s, s + 4q); forward twiddles e^{-iθ}. */
function difGroup(a: usize, s: i32, q: i32, tw: usize): void {
  const d = 2 * q;
  for (let i0 = 2 * s, end = i0 + d, t = 4 * q; i0 < end; i0 += 2, t += 4) {
    const w1 = ld(tw, t), w2 = ld(tw, t + 2);
    const w2x = timesI(w2);
    const w3 = cmul(w1, w2, w2x);
    const i1 = i0 + d, i2 = i1 + d, i3 = i2 + d;
    const a0 = ld(a, i0), a1 = ld(a, i1), a2 = ld(a, i2), a3 = ld(a, i3);
    const s02 = f64x2.add(a0, a2), d02 = f64x2.sub(a0, a2), s13 = f64x2.add(a1, a3);
    const t13 = timesMinusI(f64x2.sub(a1, a3));
    st(a, i0, f64x2.add(s02, s13));
    st(a, i1, cmul(f64x2.sub(s02, s13), w2, w2x));
    st(a, i2, cmul(f64x2.add(d02, t13), w1, timesI(w1)));
    st(a, i3, cmul(f64x2.sub(d02, t13), w3, timesI(w3)));
  }
}

/** Two DIT radix-2 stages (half-lengths q and 2q) on the complex group [s, s + 4q); inverse twiddles e^{+iθ}. */
function ditGroup(a: usize, s: i32, q: i32, tw: usize): void {
  const d = 2 * q;
  for (let i0 = 2 * s, end = i0 + d, t = 4 * q; i0 < end; i0 += 2, t += 4) {
    const w1 = conj(ld(tw, t)), w2 = conj(ld(tw, t + 2));
    const w2x = timesI(w2);
    const w3 = cmul(w1, w2, w2x);
    const i1 = i0 + d, i2 = i1 + d, i3 = i2 + d;
    const b0 = ld(a, i0);
    const c1 = cmul(ld(a, i1), w2, w2x), c2 = cmul(ld(a, i2), w1, timesI(w1)), c3 = cmul(ld(a, i3), w3, timesI(w3));
    const e0 = f64x2.add(b0, c1), e1 = f64x2.sub(b0, c1), f2 = f64x2.add(c2, c3);
    const f3 = timesI(f64x2.sub(c2, c3));
    st(a, i0, f64x2.add(e0, f2));
    st(a, i2, f64x2.sub(e0, f2));
    st(a, i1, f64x2.add(e1, f3));
    st(a, i3, f64x2.sub(e1, f3));
  }
}

/** Radix-2 butterflies on adjacent pairs of [off, off + size). */
function pairs(a: usize, off: i32, size: i32): void {
  for (let s = 2 * off, end = 2 * (off + size); s < end; s += 4) {
    const u = ld(a, s), v = ld(a, s + 2);
    st(a, s, f64x2.add(u, v));
    st(a, s + 2, f64x2.sub(u, v));
  }
}

/** Forward transform of a cache-sized block: natural order in, bit-reversed out. */
function forwardBlock(a: usize, off: i32, size: i32, tw: usize): void {
  let len = size;
  for (; len >= 4; len >>= 2) for (let s = off, end = off + size; s < end; s += len) difGroup(a, s, len >> 2, tw);
  if (len == 2) pairs(a, off, size);
}

/** Inverse transform (without 1/size) of a cache-sized block: bit-reversed order in, natural out. */
function inverseBlock(a: usize, off: i32, size: i32, tw: usize): void {
  let len = 1;
  if ((31 - clz<i32>(size)) % 2 == 1) {
    pairs(a, off, size);
    len = 2;
  }
  for (; len < size; len <<= 2) for (let s = off, end = off + size; s < end; s += 4 * len) ditGroup(a, s, len, tw);
}

/**
 * x ← inverse(forward(x)·forward(y)) on the complex points [off, off + size) (size a power of two ≥ 2), depth
 * first, exactly as fftConvolve in fft.ts; y is left transformed.
 */
export function convolve(x: usize, y: usize, off: i32, size: i32, tw: usize): void {
  if (size <= BLOCK) {
    forwardBlock(x, off, size, tw);
    forwardBlock(y, off, size, tw);
    for (let i = 2 * off, end = 2 * (off + size); i < end; i += 2) {
      const b = ld(y, i);
      st(x, i, cmul(ld(x, i), b, timesI(b)));
    }
    inverseBlock(x, off, size, tw);
    return;
  }
  const q = size >> 2;
  difGroup(x, off, q, tw);
  difGroup(y, off, q, tw);
  for (let k = 0; k < 4; k++) convolve(x, y, off + k * q, q, tw);
  ditGroup(x, off, q, tw);
}

// Radix-3 levels (fft.ts fftDif3 / fftDit3): twiddles e^{∓2πi·j/3t} as a coarse × fine product of two tables,
// fine[f] = e^{-2πi·f/3t} for f < 2^10 and coarse[c] = e^{-2πi·c·2^10/3t}.

const FINE_BITS: i32 = 10;
const FINE_MASK: i32 = (1 << FINE_BITS) - 1;
/** √3/2, the imaginary part of e^{∓2πi/3}. */
const SIN_THIRD: f64 = 0.8660254037844386;

/** e^{-2πi·k/3t} from the tables (k < 2t). */
@inline function twiddle3(fine: usize, coarse: usize, k: i32): v128 {
  const c = ld(coarse, 2 * (k >>> FINE_BITS));
  const f = ld(fine, 2 * (k & FINE_MASK));
  return cmul(c, f, timesI(f));
}

/**
 * One radix-3 DIF level on the complex group [off, off + 3t): a0, a1, a2 = a[j], a[j + t], a[j + 2t] become
 * a0 + a1 + a2, (a0 + ω·a1 + ω²·a2)·W^j and (a0 + ω²·a1 + ω·a2)·W^{2j} (ω = e^{-2πi/3}, W = e^{-2πi/3t}).
 */
export function dif3(a: usize, off: i32, t: i32, fine: usize, coarse: usize): void {
  const half = f64x2.splat(0.5);
  for (let j = 0; j < t; j++) {
    const i0 = 2 * (off + j), i1 = i0 + 2 * t, i2 = i1 + 2 * t;
    const a0 = ld(a, i0), a1 = ld(a, i1), a2 = ld(a, i2);
    const s = f64x2.add(a1, a2);
    const m = f64x2.sub(a0, f64x2.mul(half, s));
    // n = -i·(√3/2)·(a1 - a2)
    const n = f64x2.mul(f64x2.splat(SIN_THIRD), timesMinusI(f64x2.sub(a1, a2)));
    st(a, i0, f64x2.add(a0, s));
    const w1 = twiddle3(fine, coarse, j), w2 = twiddle3(fine, coarse, 2 * j);
    st(a, i1, cmul(f64x2.add(m, n), w1, timesI(w1)));
    st(a, i2, cmul(f64x2.sub(m, n), w2, timesI(w2)));
  }
}

/** The inverse of dif3 (conjugate twiddles, without the 1/3). */
export function dit3(a: usize, off: i32, t: i32, fine: usize, coarse: usize): void {
  const half = f64x2.splat(0.5);
  for (let j = 0; j < t; j++) {
    const i0 = 2 * (off + j), i1 = i0 + 2 * t, i2 = i1 + 2 * t;
    const w1 = conj(twiddle3(fine, coarse, j)), w2 = conj(twiddle3(fine, coarse, 2 * j));
    const z0 = ld(a, i0), z1 = cmul(ld(a, i1), w1, timesI(w1)), z2 = cmul(ld(a, i2), w2, timesI(w2));
    const s = f64x2.add(z1, z2);
    const m = f64x2.sub(z0, f64x2.mul(half, s));
    // n = +i·(√3/2)·(z1 - z2)
    const n = f64x2.mul(f64x2.splat(SIN_THIRD), timesI(f64x2.sub(z1, z2)));
    st(a, i0, f64x2.add(z0, s));
    st(a, i1, f64x2.add(m, n));
    st(a, i2, f64x2.sub(m, n));
  }
}

// Folding bits in and reading parities out (fft.ts fftFoldDif3 / fftUnweightInto), on the weight table
// w[2k] + i·w[2k+1] = e^{iπk/2h} (read at a stride) that fftWasm.ts writes into this memory.

/** Bits [pos, pos + 32) of the window [off, off + len) of the words at src (count words), zero past the window. */
@inline function windowWord(src: usize, count: i32, off: i32, len: i32, pos: i32): u32 {
  if (pos >= len) return 0;
  const p = off + pos, wi = p >>> 5, sh = p & 31;
  let v = load<u32>(src + (<usize>wi << 2)) >>> sh;
  if (sh != 0 && wi + 1 < count) v |= load<u32>(src + (<usize>(wi + 1) << 2)) << (32 - sh);
  const rem = len - pos;
  return rem >= 32 ? v : v & ((<u32>1 << rem) - 1);
}

/**
 * The fold of bits [off, off + len) of src (b[k] + i·b[k + h], weighted by e^{iπk/2h}) fused with the top radix-3
 * DIF level, by the 64-entry tables T_m (fold3, 3 × 64 complex): y_m = ζ^{(1 - 4m)j}·T_m[code] (fftTables.ts FOLD3 explains).
 */
export function foldDif3(dst: usize, src: usize, count: i32, off: i32, len: i32, h: i32, w: usize, stride: i32, fold3: usize): void {
  const t = h / 3;
  const zero = f64x2.splat(0);
  for (let j0 = 0; j0 < t; j0 += 32) {
    const lo0 = windowWord(src, count, off, len, j0), hi0 = windowWord(src, count, off, len, j0 + h);
    const lo1 = windowWord(src, count, off, len, j0 + t), hi1 = windowWord(src, count, off, len, j0 + t + h);
    const lo2 = windowWord(src, count, off, len, j0 + 2 * t), hi2 = windowWord(src, count, off, len, j0 + 2 * t + h);
    const end = min(j0 + 32, t);
    if ((lo0 | hi0 | lo1 | hi1 | lo2 | hi2) == 0) {
      for (let j = j0; j < end; j++) {
        st(dst, 2 * j, zero);
        st(dst, 2 * (j + t), zero);
        st(dst, 2 * (j + 2 * t), zero);
      }
      continue;
    }
    for (let j = j0, b = 0; j < end; j++, b++) {
      const code = <i32>(
        ((lo0 >>> b) & 1) | (((hi0 >>> b) & 1) << 1) | (((lo1 >>> b) & 1) << 2) | (((hi1 >>> b) & 1) << 3) |
        (((lo2 >>> b) & 1) << 4) | (((hi2 >>> b) & 1) << 5)
      );
      // ζ^j, ζ^-3j and ζ^-7j (7j < 7h/3: ζ^k for k ≥ h is i·ζ^{k-h}, for k ≥ 2h -ζ^{k-2h}).
      const z0 = ld(w, 2 * j * stride);
      const z1 = conj(ld(w, 6 * j * stride));
      let k = 7 * j;
      let q = 0;
      while (k >= h) {
        k -= h;
        q++;
      }
      let z2 = conj(ld(w, 2 * k * stride));
      if (q == 1) z2 = timesMinusI(z2);
      else if (q == 2) z2 = f64x2.neg(z2);
      const t0 = ld(fold3, 2 * code), t1 = ld(fold3, 128 + 2 * code), t2 = ld(fold3, 256 + 2 * code);
      st(dst, 2 * j, cmul(t0, z0, timesI(z0)));
      st(dst, 2 * (j + t), cmul(t1, z1, timesI(z1)));
      st(dst, 2 * (j + 2 * t), cmul(t2, z2, timesI(z2)));
    }
  }
}

/** 1.5·2^52: v + MAGIC - MAGIC rounds v to the nearest integer for |v| < 2^51. */
const ROUND_MAGIC: f64 = 6755399441055744.0;

/**
 * The parities of c[nLen - 1 .. m) (z = x·e^{-iπk/2h}/h: real part c[k], imaginary part c[k + h]) as bits from 0
 * at out (zeroed here first); returns the largest distance of a value to its integer (Infinity for NaN).
 */
export function unweight(x: usize, nLen: i32, m: i32, h: i32, w: usize, stride: i32, out: usize): f64 {
  const total = m - (nLen - 1);
  memory.fill(out, 0, <usize>(((total + 31) >>> 5) << 2));
  const scale = 1.0 / <f64>h;
  let worst: f64 = 0;
  let acc: u32 = 0;
  let p = 0;
  for (let mm = nLen - 1; mm < m; mm++, p++) {
    // c[mm] is the real part of z[mm] for mm < h, else the imaginary part of z[mm - h].
    const k = mm < h ? mm : mm - h;
    const i = 2 * k, ws = i * stride;
    const xr = load<f64>(x + (<usize>i << 3)), xi = load<f64>(x + (<usize>(i + 1) << 3));
    const wr = load<f64>(w + (<usize>ws << 3)), wi = load<f64>(w + (<usize>(ws + 1) << 3));
    const v = (mm < h ? xr * wr + xi * wi : xi * wr - xr * wi) * scale;
    const r = v + ROUND_MAGIC - ROUND_MAGIC;
    const e = abs(v - r);
    worst = e > worst ? e : worst;
    if (e != e) worst = Infinity;
    acc |= (<u32>(<i64>r & 1)) << (p & 31);
    if ((p & 31) == 31) {
      store<u32>(out + (<usize>(p >>> 5) << 2), acc);
      acc = 0;
    }
  }
  if ((p & 31) != 0) store<u32>(out + (<usize>(p >>> 5) << 2), acc);
  return worst;
}

/** The fold alone (fft.ts fftFold), for transforms without a radix-3 level: dst[k] = (b[k] + i·b[k + h])·ζ^k. */
export function fold(dst: usize, src: usize, count: i32, off: i32, len: i32, h: i32, w: usize, stride: i32): void {
  const zero = f64x2.splat(0);
  for (let k0 = 0; k0 < h; k0 += 32) {
    const lo = windowWord(src, count, off, len, k0), hi = windowWord(src, count, off, len, k0 + h);
    const end = min(k0 + 32, h);
    if ((lo | hi) == 0) {
      for (let k = k0; k < end; k++) st(dst, 2 * k, zero);
      continue;
    }
    for (let k = k0, b = 0; k < end; k++, b++) {
      const z = ld(w, 2 * k * stride);
      const v = f64x2(<f64>((lo >>> b) & 1), <f64>((hi >>> b) & 1));
      st(dst, 2 * k, cmul(v, z, timesI(z)));
    }
  }
}
