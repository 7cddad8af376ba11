/**
 * The FFT on the WebAssembly kernel (asm/fftKernels.ts, loaded by wasmKernels.ts): the memory layout of one
 * instance, the tables copied into it, and fftWindowInto's contract on it (fft.ts dispatches; the JavaScript kernel
 * there computes the same transform and is the reference the tests compare this one with).
 */
import type { BitArray } from '../common/bits.js';
import { FOLD3, fftTables, forgetFftTables, powerOfTwoPart, radix3Twiddles, writeWeights } from './fftTables.js';
import { instantiateFftKernels, type FftKernels } from './wasmKernels.js';


/**
 * The WebAssembly kernel's memory for real length n, laid out (in bytes from WASM_RESERVED) as: power-of-two
 * twiddles | x (h complex) | y (h complex) | radix-3 tables | weights (h complex) | fold tables | scratch for the
 * window bits in and the parities out. Kept (with its instance) like the JavaScript work arrays, freed with them.
 */
interface WasmWork {
  kernels: FftKernels;
  /** Real transform length laid out (0: none). */
  n: number;
  twPtr: number;
  xPtr: number;
  yPtr: number;
  /** Radix-3 tables by level size 3t: pointers to fine and coarse. */
  radix3: Map<number, { fine: number; coarse: number }>;
  wPtr: number;
  fold3Ptr: number;
  scratchPtr: number;
  /** Scratch bytes the last product used (zeroed after it). */
  scratchBytes: number;
}
let wasmWork: WasmWork | null = null;
/** Bytes below the work area (the module's own static data). */
const WASM_RESERVED = 1 << 16;

/** Grows the instance's memory to at least `bytes`. */
function wasmReserve(work: WasmWork, bytes: number): void {
  const mem = work.kernels.memory;
  if (mem.buffer.byteLength < bytes) mem.grow(Math.ceil((bytes - mem.buffer.byteLength) / 65536));
}

/** The layout for real length n, with every table written (once per n). */
function wasmWorkFor(n: number): WasmWork {
  if (!wasmWork) wasmWork = { kernels: instantiateFftKernels()!, n: 0, twPtr: 0, xPtr: 0, yPtr: 0, radix3: new Map(), wPtr: 0, fold3Ptr: 0, scratchPtr: 0, scratchBytes: 0 };
  const work = wasmWork;
  if (work.n === n) return work;
  const h = n >> 1, p = powerOfTwoPart(h);
  const levels: number[] = [];
  for (let size = h; size % 3 === 0; size /= 3) levels.push(size);
  const tables = levels.map((size) => radix3Twiddles(size));
  const twLength = Math.max(8, 2 * p);
  work.twPtr = WASM_RESERVED;
  work.xPtr = work.twPtr + 8 * twLength;
  work.yPtr = work.xPtr + 16 * h;
  let at = work.yPtr + 16 * h;
  work.radix3.clear();
  for (let i = 0; i < levels.length; i++) {
    const t = tables[i]!;
    work.radix3.set(levels[i]!, { fine: at, coarse: at + 8 * t.fine.length });
    at += 8 * (t.fine.length + t.coarse.length);
  }
  work.wPtr = at;
  work.fold3Ptr = work.wPtr + 16 * h;
  work.scratchPtr = work.fold3Ptr + 8 * FOLD3.length;
  wasmReserve(work, work.scratchPtr);
  const buf = work.kernels.memory.buffer;
  new Float64Array(buf, work.twPtr, twLength).set(fftTables(p).tw.subarray(0, twLength));
  forgetFftTables(); // the copy in the instance serves from now on
  for (let i = 0; i < levels.length; i++) {
    const t = tables[i]!, r = work.radix3.get(levels[i]!)!;
    new Float64Array(buf, r.fine, t.fine.length).set(t.fine);
    new Float64Array(buf, r.coarse, t.coarse.length).set(t.coarse);
  }
  writeWeights(new Float64Array(buf, work.wPtr, 2 * h), n);
  new Float64Array(buf, work.fold3Ptr, FOLD3.length).set(FOLD3);
  work.n = n;
  return work;
}

/** Copies the words holding bits [off, off + len) of src to the scratch at `at`; returns the window's place there. */
function wasmCopyWindow(work: WasmWork, at: number, src: BitArray, off: number, len: number): { ptr: number; count: number; off: number; end: number } {
  const first = off >>> 5;
  const count = Math.max(1, ((off + len + 31) >>> 5) - first);
  new Uint32Array(work.kernels.memory.buffer, at, count).set(src.words.subarray(first, first + count));
  return { ptr: at, count, off: off & 31, end: at + 4 * count };
}

/** XORs `bits` bits from the words src (bit 0 first) into out from bit oOff. */
function xorBitsAt(out: BitArray, oOff: number, src: Uint32Array, bits: number): void {
  const ow = out.words;
  const sh = oOff & 31, base = oOff >>> 5;
  const words = (bits + 31) >>> 5;
  for (let i = 0; i < words; i++) {
    const v = src[i]!; // bits past `bits` are zero
    if (v === 0) continue;
    if (sh === 0) ow[base + i]! ^= v;
    else {
      ow[base + i]! ^= v << sh;
      if (base + i + 1 < ow.length) ow[base + i + 1]! ^= v >>> (32 - sh);
    }
  }
}

/** fftWindowInto on the WebAssembly kernel (same contract, same result). */
export function wasmWindowInto(x: BitArray, xOff: number, nLen: number, seed: BitArray, sOff: number, lLen: number, out: BitArray, oOff: number, n: number): number {
  const work = wasmWorkFor(n);
  const k = work.kernels;
  const h = n >> 1, m = nLen + lLen - 1;
  const outWords = (lLen + 31) >>> 5;
  wasmReserve(work, work.scratchPtr + 4 * (((nLen + 31) >>> 5) + ((m + 31) >>> 5) + outWords + 4));
  const xs = wasmCopyWindow(work, work.scratchPtr, x, xOff, nLen);
  const ss = wasmCopyWindow(work, xs.end, seed, sOff, m);
  const outPtr = ss.end;
  const buf = k.memory.buffer;
  try {
    if (h % 3 === 0) {
      const t = h / 3;
      k.foldDif3(work.xPtr, xs.ptr, xs.count, xs.off, nLen, h, work.wPtr, 1, work.fold3Ptr);
      k.foldDif3(work.yPtr, ss.ptr, ss.count, ss.off, m, h, work.wPtr, 1, work.fold3Ptr);
      for (let i = 0; i < 3; i++) wasmConvolveMixed(work, i * t, t);
      const r = work.radix3.get(h)!;
      k.dit3(work.xPtr, 0, t, r.fine, r.coarse);
    } else {
      k.fold(work.xPtr, xs.ptr, xs.count, xs.off, nLen, h, work.wPtr, 1);
      k.fold(work.yPtr, ss.ptr, ss.count, ss.off, m, h, work.wPtr, 1);
      k.convolve(work.xPtr, work.yPtr, 0, h, work.twPtr);
    }
    const worst = k.unweight(work.xPtr, nLen, m, h, work.wPtr, 1, outPtr);
    xorBitsAt(out, oOff, new Uint32Array(buf, outPtr, outWords), lLen);
    return worst;
  } finally {
    // The key's window, the product and its parities (the output): nothing of a block stays in the instance.
    work.scratchBytes = outPtr + 4 * outWords - work.scratchPtr;
    new Uint8Array(buf, work.scratchPtr, work.scratchBytes).fill(0);
    new Float64Array(buf, work.xPtr, 4 * h).fill(0);
  }
}

/** fftConvolveMixed on the WebAssembly kernel. */
function wasmConvolveMixed(work: WasmWork, off: number, size: number): void {
  const k = work.kernels;
  if (size % 3 !== 0) {
    k.convolve(work.xPtr, work.yPtr, off, size, work.twPtr);
    return;
  }
  const t = size / 3;
  const r = work.radix3.get(size)!;
  k.dif3(work.xPtr, off, t, r.fine, r.coarse);
  k.dif3(work.yPtr, off, t, r.fine, r.coarse);
  for (let i = 0; i < 3; i++) wasmConvolveMixed(work, off + i * t, t);
  k.dit3(work.xPtr, off, t, r.fine, r.coarse);
}
/** True when the instance's work arrays and scratch hold only zeros (nothing of a block stays there). */
export function wasmWorkspaceIsClear(): boolean {
  if (!wasmWork || wasmWork.n === 0) return true;
  const buf = wasmWork.kernels.memory.buffer;
  const h = wasmWork.n >> 1;
  return new Float64Array(buf, wasmWork.xPtr, 4 * h).every((v) => v === 0) && new Uint8Array(buf, wasmWork.scratchPtr, wasmWork.scratchBytes).every((v) => v === 0);
}

/** Drops the instance and its memory (WebAssembly memory cannot shrink; the garbage collector frees it). */
export function releaseWasmWork(): void {
  wasmWork = null;
}
