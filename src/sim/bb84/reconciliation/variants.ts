/**
 * Cascade parameter sets: the variants (each citing its paper), their block sizes per pass, and the checks both ends
 * run on parameters and on the shuffle seed.
 */
import { CascadeProtocolError } from './oracle.js';

export interface CascadeParams {
  /** QBER estimate both ends agreed on (from the estimation stage), in [0, 0.5). */
  estimatedQber: number;
  /** Number of passes, 1..MAX_PASSES (the presets use 4 or more). */
  passes: number;
  /** Block size of the first pass from the QBER (clamped to [MIN_BLOCK_SIZE, n]). Default: 0.73 / q. */
  firstBlockSize?: (qber: number) => number;
  /**
   * Block size of pass `pass` (>= 1) from the previous pass's size, the first pass's size and n
   * (clamped to [MIN_BLOCK_SIZE, n]). Default: doubling.
   */
  nextBlockSize?: (pass: number, previous: number, first: number, n: number) => number;
  /**
   * Ask the top-level parities of every pass in the first round trip (default true). Same questions,
   * same leak, passes - 1 fewer round trips.
   */
  prefetchTopLevel?: boolean;
  /**
   * Reuse the sub-block parities already disclosed when the cascade effect re-opens a block of an
   * earlier pass (default true): BINARY restarts from the smallest odd block already known, and no
   * parity is ever asked twice. `false` is the textbook behaviour (restart BINARY from the top-level
   * block, asking again and counting again every parity on the way); it exists only to measure the gain.
   */
  reuseKnownParities?: boolean;
  /** Name of the variant, for stats. */
  name?: string;
  /** Where the variant comes from. */
  source?: string;
}

/** A variant: everything but the QBER estimate. Use as `{ ...ORIGINAL_CASCADE, estimatedQber }`. */
export type CascadeVariant = Omit<CascadeParams, 'estimatedQber'>;

/** Most passes a parameter set may ask for (the optimized presets use 14). */
export const MAX_PASSES = 64;
/** Smallest block size used (a 1-bit block would disclose a key bit per parity). */
export const MIN_BLOCK_SIZE = 4;
/** Length of the shuffle seed in bytes. */
export const SHUFFLE_SEED_BYTES = 32;

/**
 * The original protocol: 4 passes, k1 = 0.73 / q, then doubling.
 * G. Brassard, L. Salvail, "Secret-key reconciliation by public discussion", EUROCRYPT '93, LNCS 765.
 */
export const ORIGINAL_CASCADE: CascadeVariant = {
  name: 'original',
  source: 'Brassard & Salvail, EUROCRYPT 1993: k1 = 0.73/q, k(i+1) = 2 k(i), 4 passes',
  passes: 4,
  firstBlockSize: (q) => 0.73 / q,
  nextBlockSize: (_pass, previous) => 2 * previous,
};

/** Smallest power of two >= x (x >= 1). */
export function nextPow2(x: number): number {
  let p = 1;
  while (p < x) p *= 2;
  return p;
}

/**
 * Recommended default. The original's first two passes (k1 = 0.73/q, k2 = 2 k1), then - following
 * J. Martinez-Mateo, C. Pacher, M. Peev, A. Ciurana, V. Martin, "Demystifying the information
 * reconciliation protocol Cascade", Quantum Inf. Comput. 15 (2015), arXiv:1407.3257 - every later
 * pass uses blocks of n/2 and there are many of them: such a pass costs one disclosed parity
 * (the other half's is inferred) and no round trip when it finds nothing, yet catches what the first
 * passes left. Measured (bench/cascade.ts, n = 10^6): f = 1.07 / 1.08 / 1.09 at 1 / 2 / 5 % with
 * about as many round trips as the original, and no residual error in 5,000 blocks of 10^4 bits at
 * 0.5-8 % (with only 2 or 4 such passes, 7 % or 2 % of those blocks kept an error pair).
 * With a QBER estimate of 0 the first two passes are one block each, and the n/2 passes (one parity
 * each) still catch error pairs the estimate missed.
 */
export const OPTIMIZED_CASCADE: CascadeVariant = {
  name: 'optimized',
  source: 'Brassard & Salvail 1993 passes 1-2 (k1 = 0.73/q, k2 = 2 k1) + Martinez-Mateo et al. 2015 (arXiv:1407.3257) later passes k = n/2; 14 passes',
  passes: 14,
  firstBlockSize: (q) => 0.73 / q,
  nextBlockSize: (pass, previous, _first, n) => (pass === 1 ? 2 * previous : Math.ceil(n / 2)),
};

/**
 * Fewest disclosed bits when round trips are cheap: power-of-two blocks after Martinez-Mateo et al.
 * 2015 (arXiv:1407.3257), k1 = 2^ceil(log2(1/q)), k2 = 4 k1, later passes n/2, 14 passes.
 * Measured: f = 1.04 at 2 % for n = 10^5..10^6, but 3-6 times the round trips of the others
 * (bigger blocks make longer chains of cascade effects, each link a full BINARY).
 */
export const HIGH_EFFICIENCY_CASCADE: CascadeVariant = {
  name: 'high-efficiency',
  source: 'Martinez-Mateo et al. 2015 (arXiv:1407.3257) guidelines: k1 = 2^ceil(log2(1/q)), k2 = 4 k1, k(i>=3) = n/2; 14 passes',
  passes: 14,
  firstBlockSize: (q) => nextPow2(1 / q),
  nextBlockSize: (pass, previous, _first, n) => (pass === 1 ? 4 * previous : Math.ceil(n / 2)),
};

/** The variant the BB84 pipeline should use unless configured otherwise. */
export const DEFAULT_CASCADE: CascadeVariant = OPTIMIZED_CASCADE;

/** The block size of every pass for a key of n bits (what both ends compute from the shared params). */
export function cascadeBlockSizes(params: CascadeParams, n: number): number[] {
  validateParams(params);
  if (!Number.isInteger(n) || n < 0) throw new CascadeProtocolError('BAD_PARAMS', `key length must be a non-negative integer, got ${n}`);
  const clamp = (k: number): number => {
    if (n === 0) return 1;
    if (!Number.isFinite(k) || k >= n) return n; // q = 0 (or tiny): one block covering the whole key
    return Math.min(n, Math.max(MIN_BLOCK_SIZE, Math.round(k)));
  };
  const q = params.estimatedQber;
  const first = clamp((params.firstBlockSize ?? ORIGINAL_CASCADE.firstBlockSize!)(q));
  const next = params.nextBlockSize ?? ORIGINAL_CASCADE.nextBlockSize!;
  const sizes = [first];
  for (let p = 1; p < params.passes; p++) sizes.push(clamp(next(p, sizes[p - 1]!, first, n)));
  return sizes;
}

export function validateParams(params: CascadeParams): void {
  const q = params.estimatedQber;
  if (typeof q !== 'number' || !(q >= 0 && q < 0.5)) throw new CascadeProtocolError('BAD_PARAMS', `estimatedQber must be in [0, 0.5), got ${q}`);
  if (!Number.isInteger(params.passes) || params.passes < 1 || params.passes > MAX_PASSES) {
    throw new CascadeProtocolError('BAD_PARAMS', `passes must be an integer in [1, ${MAX_PASSES}], got ${params.passes}`);
  }
}

export function validateSeed(seed: Uint8Array): void {
  if (!(seed instanceof Uint8Array) || seed.length !== SHUFFLE_SEED_BYTES) {
    throw new CascadeProtocolError('BAD_PARAMS', `shuffleSeed must be ${SHUFFLE_SEED_BYTES} bytes`);
  }
}
