import { describe, expect, it } from 'vitest';
import { BitArray } from '../../../src/sim/bb84/bits.js';
import {
  amplifiedLength, amplifyBlock, MAX_FFT_SIZE, MAX_NTT_SIZE, newToeplitzSeed, releaseToeplitzCaches, toeplitzHash, toeplitzHashNaive, toeplitzSeedLength,
  type ToeplitzEngine,
} from '../../../src/sim/bb84/amplify.js';
import { newKeyBlock, type KeyBlock } from '../../../src/sim/bb84/keyBlock.js';
import { secretKeyLength } from '../../../src/sim/bb84/finiteKey.js';
import { randomBits, seededRng } from '../../../src/sim/bb84/rng.js';

const ENGINES: ToeplitzEngine[] = ['fft', 'ntt'];

function rowByDefinition(x: BitArray, seed: BitArray, i: number): number {
  const n = x.length;
  let bit = 0;
  for (let j = 0; j < n; j++) bit ^= seed.get(i - j + n - 1) & x.get(j);
  return bit;
}

describe.each(ENGINES)('toeplitzHash (%s engine)', (engine) => {
  it('when sizes are small and varied (n=1, l=1, l=n, odd sizes), then the fast product equals the naive product', () => {
    const rng = seededRng(1);
    const sizes: Array<[number, number]> = [
      [1, 1], [2, 1], [1, 2], [3, 3], [5, 2], [7, 7], [31, 1], [32, 32], [33, 17], [63, 64], [64, 63], [100, 100], [101, 37],
      [255, 200], [257, 257], [1000, 999], [1023, 1], [1, 1023], [2049, 1500], [4097, 3000], [5000, 4500],
    ];
    for (let t = 0; t < 60; t++) sizes.push([1 + Math.floor(rng.nextFloat() * 700), 1 + Math.floor(rng.nextFloat() * 700)]);
    for (const [n, l] of sizes) {
      const x = randomBits(rng, n);
      const seed = randomBits(rng, toeplitzSeedLength(n, l));
      expect(toeplitzHash(x, seed, l, { engine }).equals(toeplitzHashNaive(x, seed, l)), `n=${n} l=${l}`).toBe(true);
    }
  });

  it('when the product is larger than one transform, then the chunked (overlap-add) product equals the naive product', () => {
    const rng = seededRng(2);
    const cases: Array<[number, number, number]> = [
      [100, 70, 64], [70, 100, 64], [200, 3, 16], [3, 200, 16], [129, 129, 4], [1000, 900, 256], [777, 333, 128], [5000, 3000, 1024],
    ];
    for (const [n, l, maxTransformSize] of cases) {
      expect(n + l - 1).toBeGreaterThan(maxTransformSize);
      const x = randomBits(rng, n);
      const seed = randomBits(rng, toeplitzSeedLength(n, l));
      expect(toeplitzHash(x, seed, l, { engine, maxTransformSize }).equals(toeplitzHashNaive(x, seed, l)), `n=${n} l=${l} max=${maxTransformSize}`).toBe(true);
    }
  });

  it("when the engine's default size limit is crossed, then rows spot-checked by definition match the chunked product", () => {
    const rng = seededRng(3);
    const n = (engine === 'fft' ? MAX_FFT_SIZE : MAX_NTT_SIZE) - 1000;
    const l = 3000;
    const x = randomBits(rng, n);
    const seed = randomBits(rng, toeplitzSeedLength(n, l));
    const y = toeplitzHash(x, seed, l, { engine });
    for (const i of [0, 1, 1499, 1500, 2998, 2999]) expect(y.get(i), `row ${i}`).toBe(rowByDefinition(x, seed, i));
  }, 120_000);

  it('when the matrix convention is read off, then a seed with only s[n-1] set is the identity on the first l columns', () => {
    const n = 4, l = 3;
    const seed = new BitArray(n + l - 1);
    seed.set(n - 1, 1); // the main diagonal T[i][i]
    const x = new BitArray(n);
    x.set(0, 1);
    x.set(2, 1);
    const y = toeplitzHash(x, seed, l, { engine });
    expect([y.get(0), y.get(1), y.get(2)]).toEqual([1, 0, 1]);
  });
});

describe('toeplitzHash engines', () => {
  it('when hashing a 1 Mbit block, then the FFT and NTT engines give identical output, and rows match the definition', () => {
    const rng = seededRng(4);
    const n = 1 << 20;
    const l = 700_001;
    const x = randomBits(rng, n);
    const seed = randomBits(rng, toeplitzSeedLength(n, l));
    const fft = toeplitzHash(x, seed, l, { engine: 'fft' });
    const ntt = toeplitzHash(x, seed, l, { engine: 'ntt' });
    expect(fft.equals(ntt)).toBe(true);
    for (const i of [0, 12_345, l - 1]) expect(fft.get(i)).toBe(rowByDefinition(x, seed, i));
    releaseToeplitzCaches();
    expect(toeplitzHash(x, seed, l).equals(fft)).toBe(true);
  }, 60_000);

  it('when arguments are invalid, then it throws', () => {
    const x = new BitArray(10);
    expect(() => toeplitzHash(x, new BitArray(10), 2)).toThrow(RangeError);
    expect(() => toeplitzHash(x, new BitArray(10), 0)).toThrow(RangeError);
    expect(() => toeplitzHash(x, new BitArray(11), 2, { maxTransformSize: 6 })).toThrow(RangeError);
    expect(() => toeplitzHash(x, new BitArray(11), 2, { engine: 'fft', maxTransformSize: MAX_NTT_SIZE })).toThrow(RangeError);
  });
});

describe('amplifyBlock', () => {
  const verified = (bits: BitArray, leakedBits: number, qberUpper: number): KeyBlock =>
    newKeyBlock('b1', 'verified', bits, { leakedBits, qberUpper, qberEstimate: qberUpper / 2 });

  it('when a verified block has key left, then both ends get the same amplified key of the finite-key length', () => {
    const rng = seededRng(4);
    const bits = randomBits(rng, 6_000);
    const block = verified(bits, 1_500, 0.03);
    const params = { epsEC: 1e-10, epsPA: 1e-10 };
    const l = amplifiedLength(block, params);
    expect(l).toBe(secretKeyLength({ n: 6_000, qberUpper: 0.03, leakEC: 1_500, epsEC: 1e-10, epsPA: 1e-10 }));
    expect(l).toBeGreaterThan(3_000);
    const seed = newToeplitzSeed(bits.length, l, rng);
    const a = amplifyBlock(block, params, seed);
    const b = amplifyBlock(verified(bits.clone(), 1_500, 0.03), params, seed, { engine: 'ntt' });
    expect(a.ok && b.ok).toBe(true);
    if (a.ok && b.ok) {
      expect(a.value.stage).toBe('amplified');
      expect(a.value.bits.length).toBe(l);
      expect(a.value.bits.equals(b.value.bits)).toBe(true);
      expect(a.value.bits.equals(toeplitzHashNaive(bits, seed, l))).toBe(true);
    }
  });

  it('when the leak eats the whole key, then the block is dropped (not thrown) with no-secret-key', () => {
    const block = verified(new BitArray(1000), 900, 0.05);
    const r = amplifyBlock(block, { epsEC: 1e-10, epsPA: 1e-10 }, new BitArray(0));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.code).toBe('no-secret-key');
  });

  it('when the block is not verified, then amplifyBlock throws (a failure, not a drop)', () => {
    const block = newKeyBlock('b2', 'corrected', new BitArray(100), { qberUpper: 0.01 });
    expect(() => amplifyBlock(block, { epsEC: 1e-10, epsPA: 1e-10 }, new BitArray(199))).toThrow(/stage/);
  });
});
