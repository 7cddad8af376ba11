import { describe, expect, it } from 'vitest';
import { seededRng } from '../../../../src/sim/bb84/common/rng.js';
import { prepareSource } from '../../../../src/sim/bb84/source/source.js';

describe('prepareSource', () => {
  it('when preparing n pulses, then Alice has n random bits and n random bases, about half ones each', () => {
    const n = 100_000;
    const { bits, bases } = prepareSource(n, seededRng(1));
    expect(bits.length).toBe(n);
    expect(bases.length).toBe(n);
    for (const b of [bits, bases]) expect(Math.abs(b.popcount() - n / 2)).toBeLessThan(5 * Math.sqrt(n / 4));
    // bits and bases are independent
    const both = bits.words.reduce((acc, w, i) => acc + popcount(w & bases.words[i]!), 0);
    expect(Math.abs(both - n / 4)).toBeLessThan(5 * Math.sqrt((n * 3) / 16));
  });

  it('when the same seed is used twice, then the pulses are identical', () => {
    const a = prepareSource(1000, seededRng(5));
    const b = prepareSource(1000, seededRng(5));
    expect(a.bits.equals(b.bits) && a.bases.equals(b.bases)).toBe(true);
  });
});

function popcount(x: number): number {
  let c = 0;
  for (let v = x >>> 0; v; v &= v - 1) c++;
  return c;
}
