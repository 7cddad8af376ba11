/**
 * The WebAssembly build of asm/fftKernels.ts (the power-of-two convolution kernel of fft.ts, with SIMD), compiled
 * by `npm run build` to dist/asm/fftKernels.wasm. fft.ts uses it when it is there and falls back to its own
 * JavaScript kernel otherwise; both compute the same transform, and the Toeplitz product's result is exact either
 * way (fft.ts rounds to integers under an error bound and checks every output).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRootOf } from '../../../packageRoot.js';

/** The part of WebAssembly used here (this project's TypeScript lib has no WebAssembly declarations). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** One instance: its memory (which fft.ts lays out) and the kernel. */
export interface FftKernels {
  readonly memory: WasmMemory;
  /** x ← inverse(forward(x)·forward(y)) on complex points [off, off + size), size a power of two; pointers in bytes. */
  convolve(xPtr: number, yPtr: number, off: number, size: number, twPtr: number): void;
  /** One radix-3 DIF level on complex points [off, off + 3t) of the array at aPtr; twiddle tables at finePtr, coarsePtr. */
  dif3(aPtr: number, off: number, t: number, finePtr: number, coarsePtr: number): void;
  /** Its inverse (without the 1/3). */
  dit3(aPtr: number, off: number, t: number, finePtr: number, coarsePtr: number): void;
  /** fft.ts fftFoldDif3 on the `count` words at srcPtr (window [off, off + len)), weights at wPtr, tables at fold3Ptr. */
  foldDif3(dstPtr: number, srcPtr: number, count: number, off: number, len: number, h: number, wPtr: number, stride: number, fold3Ptr: number): void;
  /** fft.ts fftFold, likewise. */
  fold(dstPtr: number, srcPtr: number, count: number, off: number, len: number, h: number, wPtr: number, stride: number): void;
  /** fft.ts fftUnweightInto, writing the parities as bits from 0 at outPtr; returns the largest distance to an integer. */
  unweight(xPtr: number, nLen: number, m: number, h: number, wPtr: number, stride: number, outPtr: number): number;
}

/** Where `npm run build` puts the module: dist/asm/ under the package root (found from this file, compiled or not). */
export function fftKernelsPath(moduleUrl: string = import.meta.url): string | null {
  const root = packageRootOf(moduleUrl);
  const file = root === null ? null : join(root, 'dist', 'asm', 'fftKernels.wasm');
  return file !== null && existsSync(file) ? file : null;
}

let compiled: object | null | undefined;

/** True when the module is built and this runtime compiles it (compiled once, kept). */
export function fftKernelsAvailable(): boolean {
  if (compiled === undefined) {
    const file = fftKernelsPath();
    try {
      compiled = file ? new wasm.Module(readFileSync(file)) : null;
    } catch {
      compiled = null; // e.g. a runtime without WebAssembly SIMD: the JavaScript kernel serves
    }
  }
  return compiled !== null;
}

/** A fresh instance (its own memory), or null when the module is not built or this runtime cannot run it. */
export function instantiateFftKernels(): FftKernels | null {
  if (!fftKernelsAvailable()) return null;
  const instance = new wasm.Instance(compiled!, {
    env: {
      abort: () => {
        throw new Error('fftKernels: abort');
      },
    },
  });
  const { memory, convolve, dif3, dit3, foldDif3, fold, unweight } = instance.exports as unknown as FftKernels;
  return { memory, convolve, dif3, dit3, foldDif3, fold, unweight };
}
