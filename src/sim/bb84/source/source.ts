/**
 * Stage 1 (Alice): the weak-pulse source. For each pulse Alice picks a random bit and a random basis
 * (0 = rectilinear, 1 = diagonal).
 */
import type { BitArray } from '../common/bits.js';
import { randomBits, type Rng } from '../common/rng.js';

export interface SourcePulses {
  /** Alice's bit per pulse. */
  bits: BitArray;
  /** Alice's basis per pulse: 0 = rectilinear (+), 1 = diagonal (x). */
  bases: BitArray;
}

/** n pulses with uniform random bits and bases. */
export function prepareSource(n: number, rng: Rng): SourcePulses {
  const bits = randomBits(rng, n);
  const bases = randomBits(rng, n);
  return { bits, bases };
}
