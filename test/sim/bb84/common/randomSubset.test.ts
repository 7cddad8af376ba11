import { describe, expect, it } from 'vitest';
import { BitArray } from '../../../../src/sim/bb84/common/bits.js';
import { depositInto, randomArrangement, randomSubset } from '../../../../src/sim/bb84/common/randomSubset.js';
import { multinomialSample } from '../../../../src/sim/bb84/common/binomial.js';
import { seededRng } from '../../../../src/sim/bb84/common/rng.js';

/** Standard deviations a statistical check allows. */
const Z = 5;

describe('randomSubset and randomArrangement', () => {
  it('when a subset is drawn, then it has exactly the size asked for, the tail stays clear, and both halves of the range are drawn alike', () => {
    const rng = seededRng(1);
    for (const [n, size] of [[0, 0], [1, 1], [33, 0], [33, 33], [1000, 3], [1000, 997], [100_003, 50_000], [100_003, 60_000]] as const) {
      const s = randomSubset(rng, n, size);
      expect(s.length).toBe(n);
      expect(s.popcount()).toBe(size);
      if (n % 32 !== 0 && n > 0) expect(s.words[s.words.length - 1]! >>> (n % 32)).toBe(0);
    }
    // Every position is chosen at rate size / n: 2,000 subsets of 10 out of 64, counted per position.
    const hits = new Array<number>(64).fill(0);
    for (let t = 0; t < 2000; t++) {
      const s = randomSubset(rng, 64, 10);
      for (let i = 0; i < 64; i++) hits[i]! += s.get(i);
    }
    const p = 10 / 64;
    for (const h of hits) expect(Math.abs(h - 2000 * p)).toBeLessThan(Z * Math.sqrt(2000 * p * (1 - p)));
    expect(() => randomSubset(rng, 10, 11)).toThrow(/size/);
  });

  it('when kinds are arranged, then each mask holds its count, the masks partition the positions, and every position is equally likely for a kind', () => {
    const rng = seededRng(2);
    const counts = [700, 250, 50];
    const hitsOfRare = new Array<number>(10).fill(0);
    for (let t = 0; t < 400; t++) {
      const masks = randomArrangement(rng, counts);
      masks.forEach((m, k) => expect(m.popcount()).toBe(counts[k]));
      for (let w = 0; w < masks[0]!.words.length; w++) {
        const a = masks[0]!.words[w]!, b = masks[1]!.words[w]!, c = masks[2]!.words[w]!;
        expect(a & b).toBe(0);
        expect(a & c).toBe(0);
        expect(b & c).toBe(0);
      }
      for (let i = 0; i < 1000; i++) if (masks[2]!.get(i)) hitsOfRare[Math.floor(i / 100)]!++;
    }
    // The rare kind falls into each tenth of the positions at rate 1/10.
    for (const h of hitsOfRare) expect(Math.abs(h - 400 * 5)).toBeLessThan(Z * Math.sqrt(400 * 50 * 0.1 * 0.9));
    expect(randomArrangement(rng, [0, 0]).map((m) => m.length)).toEqual([0, 0]);
    expect(randomArrangement(rng, [5]).map((m) => m.popcount())).toEqual([5]);
  });

  it('when small subsets are drawn (dense and sparse methods), then every subset of the size is equally likely', () => {
    const rng = seededRng(6);
    // n = 6: the Bernoulli-and-correct method for sizes 1 to 5; n = 40, size 2 and 38: distinct draws.
    for (const [n, size, trials] of [[6, 2, 30_000], [6, 3, 40_000], [6, 5, 12_000], [40, 2, 156_000], [40, 38, 156_000]] as const) {
      const seen = new Map<string, number>();
      for (let t = 0; t < trials; t++) {
        const key = String(randomSubset(rng, n, size).words.join(','));
        seen.set(key, (seen.get(key) ?? 0) + 1);
      }
      let subsets = 1;
      for (let i = 0; i < size; i++) subsets = (subsets * (n - i)) / (i + 1);
      expect(seen.size, `n=${n} size=${size}`).toBe(subsets);
      const p = 1 / subsets;
      for (const c of seen.values()) expect(Math.abs(c - trials * p), `n=${n} size=${size}`).toBeLessThan(Z * Math.sqrt(trials * p * (1 - p)));
    }
  });

  it('when a few items of three kinds are arranged, then every arrangement is equally likely', () => {
    const rng = seededRng(7);
    const counts = [3, 2, 1]; // 60 arrangements of 6 positions
    const trials = 60_000;
    const seen = new Map<string, number>();
    for (let t = 0; t < trials; t++) {
      const masks = randomArrangement(rng, counts);
      const key = Array.from({ length: 6 }, (_, i) => masks.findIndex((m) => m.get(i) === 1)).join('');
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    expect(seen.size).toBe(60);
    const p = 1 / 60;
    for (const c of seen.values()) expect(Math.abs(c - trials * p)).toBeLessThan(Z * Math.sqrt(trials * p * (1 - p)));
  });

  it('when bits are deposited into a mask, then they land on its set positions in order', () => {
    const rng = seededRng(3);
    for (const n of [1, 31, 32, 33, 1000, 4099]) {
      const mask = randomSubset(rng, n, Math.floor(n / 3));
      if (n > 96) {
        // A full word and an empty one, the fast paths.
        mask.words[1] = 0xffffffff;
        mask.words[2] = 0;
      }
      const k = mask.popcount();
      const src = new BitArray(k);
      for (let i = 0; i < k; i++) src.set(i, rng.nextUint32() & 1);
      const out = new Uint32Array(mask.words.length);
      depositInto(out, src, mask.words);
      let j = 0;
      for (let i = 0; i < n; i++) {
        const want = mask.get(i) ? src.get(j++) : 0;
        expect((out[i >>> 5]! >>> (i & 31)) & 1).toBe(want);
      }
    }
  });
});

describe('multinomialSample', () => {
  it('when n is split, then the counts sum to n and each has mean n p_j and variance n p_j (1 - p_j)', () => {
    const rng = seededRng(4);
    const p = [0.7, 0.2, 0.1];
    const n = 1_000_000;
    const trials = 300;
    const sums = [0, 0, 0];
    const squares = [0, 0, 0];
    for (let t = 0; t < trials; t++) {
      const c = multinomialSample(rng, n, p);
      expect(c.reduce((a, b) => a + b, 0)).toBe(n);
      c.forEach((x, j) => {
        sums[j]! += x;
        squares[j]! += x * x;
      });
    }
    p.forEach((pj, j) => {
      const mean = sums[j]! / trials;
      const variance = squares[j]! / trials - mean * mean;
      expect(Math.abs(mean - n * pj)).toBeLessThan(Z * Math.sqrt((n * pj * (1 - pj)) / trials));
      // The sample variance's relative standard deviation is about sqrt(2 / (trials - 1)).
      expect(Math.abs(variance / (n * pj * (1 - pj)) - 1)).toBeLessThan(Z * Math.sqrt(2 / (trials - 1)));
    });
  });

  it('when some categories have probability 0, then they get nothing and the rest sum to n', () => {
    const rng = seededRng(5);
    expect(multinomialSample(rng, 1000, [0.5, 0.5, 0, 0])).toSatisfy((c: number[]) => c[2] === 0 && c[3] === 0 && c[0]! + c[1]! === 1000);
    expect(multinomialSample(rng, 1000, [0, 1, 0])).toEqual([0, 1000, 0]);
    expect(() => multinomialSample(rng, 10, [0, 0])).toThrow(/sum to 0/);
    expect(() => multinomialSample(rng, -1, [1])).toThrow(/n must be/);
  });
});
