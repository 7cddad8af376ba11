import { describe, expect, it } from 'vitest';
import { compressBits } from '../../../../src/sim/bb84/common/bitSelect.js';
import { BitArray } from '../../../../src/sim/bb84/common/bits.js';
import { randomArrangement } from '../../../../src/sim/bb84/common/randomSubset.js';
import { bernoulliBits, seededRng } from '../../../../src/sim/bb84/common/rng.js';
import { countPerIntensity, errorsPerIntensity, errorsPerIntensityAt } from '../../../../src/sim/bb84/estimation/intensityCounts.js';

describe('per-intensity counts', () => {
  it('when errors are counted at the positions of a selection, then they equal the counts over the compressed masks', () => {
    const rng = seededRng(41);
    for (const n of [0, 1, 31, 32, 33, 95, 1000, 4099]) {
      for (const density of [0.04, 0.5, 1]) {
        const masks = randomArrangement(rng, [Math.ceil(n * 0.6), Math.floor(n * 0.3), n - Math.ceil(n * 0.6) - Math.floor(n * 0.3)]);
        const where = bernoulliBits(rng, n, density);
        const m = where.popcount();
        const a = bernoulliBits(rng, m, 0.5);
        const b = a.clone();
        const flips = bernoulliBits(rng, m, 0.1);
        for (let i = 0; i < b.words.length; i++) b.words[i]! ^= flips.words[i]!;
        const want = errorsPerIntensity(a, b, masks.map((mask) => compressBits(mask, where)));
        expect(errorsPerIntensityAt(a, b, where, masks), `n=${n} density=${density}`).toEqual(want);
        expect(want.reduce((x, y) => x + y, 0)).toBe(flips.popcount());
      }
    }
    expect(() => errorsPerIntensityAt(new BitArray(3), new BitArray(3), new BitArray(10), [new BitArray(10)])).toThrow(/3 bits for 0 positions/);
  });

  it('when a selection is counted per intensity, then each count is its positions of that intensity', () => {
    const rng = seededRng(42);
    const masks = randomArrangement(rng, [500, 300, 201]);
    const select = bernoulliBits(rng, 1001, 0.3);
    const counts = countPerIntensity(select, masks);
    const want = [0, 0, 0];
    for (let i = 0; i < 1001; i++) if (select.get(i)) want[masks.findIndex((mk) => mk.get(i) === 1)]!++;
    expect(counts).toEqual(want);
  });
});
