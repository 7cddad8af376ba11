import { describe, expect, it } from 'vitest';
import { BitArray } from '../../../../src/sim/bb84/common/bits.js';
import {
  amplifiedLength, amplifyBlock, MAX_FFT_SIZE, MAX_NTT_SIZE, modifiedToeplitzHash, modifiedToeplitzHashNaive, newToeplitzSeed, paHash,
  paSeedLength, releaseToeplitzCaches, toeplitzHash, toeplitzHashNaive, toeplitzSeedLength, toeplitzWorkspaceIsClear, type ToeplitzEngine,
} from '../../../../src/sim/bb84/amplification/amplify.js';
import { fftKernel, fftTransformSize, useFftKernel } from '../../../../src/sim/bb84/amplification/fft.js';
import { newKeyBlock, type KeyBlock } from '../../../../src/sim/bb84/common/keyBlock.js';
import { secretKeyLength } from '../../../../src/sim/bb84/estimation/finiteKey.js';
import { randomBits, seededRng } from '../../../../src/sim/bb84/common/rng.js';

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

describe.each(ENGINES)('modifiedToeplitzHash (%s engine)', (engine) => {
  it('when sizes are small and varied (l = 1, l = n - 1, odd sizes), then the fast hash equals identity block XOR naive Toeplitz', () => {
    const rng = seededRng(11);
    const sizes: Array<[number, number]> = [[2, 1], [3, 1], [3, 2], [33, 32], [64, 31], [65, 33], [100, 99], [1000, 500], [4097, 2048], [5000, 4999]];
    for (let t = 0; t < 60; t++) {
      const n = 2 + Math.floor(rng.nextFloat() * 900);
      sizes.push([n, 1 + Math.floor(rng.nextFloat() * (n - 1))]);
    }
    for (const [n, l] of sizes) {
      const x = randomBits(rng, n);
      const seed = randomBits(rng, paSeedLength('modified-toeplitz', n, l));
      expect(seed.length).toBe(n - 1);
      expect(modifiedToeplitzHash(x, seed, l, { engine }).equals(modifiedToeplitzHashNaive(x, seed, l)), `n=${n} l=${l}`).toBe(true);
    }
  });

  it('when the product is larger than one transform, then the chunked hash equals the naive one', () => {
    const rng = seededRng(12);
    for (const [n, l, maxTransformSize] of [[300, 100, 64], [1000, 600, 256], [5000, 2500, 1024]] as const) {
      const x = randomBits(rng, n);
      const seed = randomBits(rng, n - 1);
      expect(modifiedToeplitzHash(x, seed, l, { engine, maxTransformSize }).equals(modifiedToeplitzHashNaive(x, seed, l)), `n=${n} l=${l}`).toBe(true);
    }
  });

  it('when the seed is all zero, then the hash is the identity block: the first l input bits', () => {
    const rng = seededRng(13);
    const x = randomBits(rng, 777);
    const y = modifiedToeplitzHash(x, new BitArray(776), 300, { engine });
    expect(y.equals(x.slice(0, 300))).toBe(true);
  });
});

describe('privacy-amplification hash families', () => {
  it('when two distinct inputs differ only in the identity block, then the modified family never maps them together', () => {
    const rng = seededRng(14);
    const x = randomBits(rng, 500);
    const x2 = x.clone();
    x2.flip(17);
    for (let t = 0; t < 20; t++) {
      const seed = randomBits(rng, 499);
      expect(modifiedToeplitzHash(x, seed, 200).equals(modifiedToeplitzHash(x2, seed, 200))).toBe(false);
    }
  });

  it('when inputs differ in the Toeplitz part, then collisions over random seeds occur at about 2^-l', () => {
    // Two-universality check at l = 3: the collision rate of a fixed pair over 4,000 seeds is 1/8 within 4 sigma.
    const rng = seededRng(15);
    const n = 64, l = 3, trials = 4000;
    const x = randomBits(rng, n);
    const x2 = x.clone();
    x2.flip(40);
    let collisions = 0;
    for (let t = 0; t < trials; t++) {
      const seed = randomBits(rng, n - 1);
      if (modifiedToeplitzHash(x, seed, l).equals(modifiedToeplitzHash(x2, seed, l))) collisions++;
    }
    const p = 1 / 8, sigma = Math.sqrt((trials * p * (1 - p)));
    expect(Math.abs(collisions - trials * p)).toBeLessThan(4 * sigma);
  });

  it('when the family is chosen by name, then paHash and paSeedLength follow it, and bad arguments throw RangeError', () => {
    const rng = seededRng(16);
    const x = randomBits(rng, 300);
    const full = randomBits(rng, paSeedLength('toeplitz', 300, 100));
    expect(full.length).toBe(399);
    expect(paHash('toeplitz', x, full, 100).equals(toeplitzHashNaive(x, full, 100))).toBe(true);
    const mod = randomBits(rng, paSeedLength('modified-toeplitz', 300, 100));
    expect(paHash('modified-toeplitz', x, mod, 100).equals(modifiedToeplitzHashNaive(x, mod, 100))).toBe(true);
    expect(() => paHash('nope' as never, x, mod, 100)).toThrow(RangeError);
    expect(() => modifiedToeplitzHash(x, mod, 300)).toThrow(/output length/); // l must be below n
    expect(() => modifiedToeplitzHash(x, full, 100)).toThrow(/n - 1 = 299/);
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

  it('when a 1 Mbit block is hashed with the modified family (odd transform depth, unaligned window), then FFT equals NTT', () => {
    const rng = seededRng(5);
    const n = 1 << 20;
    const l = 699_517;
    const x = randomBits(rng, n);
    const seed = randomBits(rng, paSeedLength('modified-toeplitz', n, l));
    const fft = modifiedToeplitzHash(x, seed, l, { engine: 'fft' });
    expect(fft.equals(modifiedToeplitzHash(x, seed, l, { engine: 'ntt' }))).toBe(true);
  }, 60_000);

  it('when the FFT length is chosen, then it is the smallest of 2^k, 3·2^k and 9·2^k at or above the product, with sub-transforms of at least 4 points', () => {
    expect([1, 4, 5, 8, 9, 17, 24, 25, 33, 48, 49, 64, 65, 72, 73, 96].map(fftTransformSize)).toEqual([4, 4, 8, 8, 16, 24, 24, 32, 48, 48, 64, 64, 72, 72, 96, 96]);
    expect(fftTransformSize(4_222_861)).toBe(9 * 2 ** 19);
    expect(fftTransformSize(3_000_000)).toBe(3 * 2 ** 20);
    expect(fftTransformSize(4_000_000)).toBe(2 ** 22);
    expect(MAX_FFT_SIZE).toBe(9 * 2 ** 19);
    for (let m = 1; m < 5000; m++) {
      const size = fftTransformSize(m);
      const odd = size / (size & -size);
      expect([1, 3, 9]).toContain(odd);
      expect(size / 2 / odd).toBeGreaterThanOrEqual(4 / (odd === 1 ? 2 : 1));
      expect(size).toBeGreaterThanOrEqual(m);
    }
  });

  it('when the transform takes one or two radix-3 levels (lengths 3·2^k and 9·2^k), then the FFT product equals the naive one', () => {
    const rng = seededRng(8);
    let threes = 0, nines = 0;
    for (let m = 20; m <= 1200; m += 7) {
      const n = 1 + Math.floor(rng.nextFloat() * m), l = m + 1 - n;
      const odd = fftTransformSize(m) / (fftTransformSize(m) & -fftTransformSize(m));
      if (odd === 3) threes++;
      if (odd === 9) nines++;
      const x = randomBits(rng, n);
      const seed = randomBits(rng, toeplitzSeedLength(n, l));
      expect(toeplitzHash(x, seed, l, { engine: 'fft' }).equals(toeplitzHashNaive(x, seed, l)), `n=${n} l=${l}`).toBe(true);
    }
    expect(threes).toBeGreaterThan(20);
    expect(nines).toBeGreaterThan(20);
  });

  it('when a PA block of 4.2 Mbit (just above 2^22, the default pipeline at 25 km) is hashed, then one 9·2^19 FFT equals the NTT', () => {
    const rng = seededRng(9);
    const n = 4_222_862, l = 1_105_920;
    const x = randomBits(rng, n);
    const seed = randomBits(rng, paSeedLength('modified-toeplitz', n, l));
    const fft = modifiedToeplitzHash(x, seed, l, { engine: 'fft' });
    expect(fft.equals(modifiedToeplitzHash(x, seed, l, { engine: 'ntt' }))).toBe(true);
    expect(toeplitzWorkspaceIsClear()).toBe(true);
  }, 60_000);

  it('when the project is built, then the WebAssembly kernel runs the products (under CI a missing build fails, it never falls back silently)', () => {
    if (process.env.CI) expect(fftKernel()).toBe('wasm');
    expect(['wasm', 'js']).toContain(fftKernel());
  });

  it('when the same products run on the WebAssembly and the JavaScript kernels (2^k, 3·2^k, 9·2^k, unaligned windows), then the outputs are identical', () => {
    const rng = seededRng(10);
    const before = fftKernel();
    try {
      const cases: Array<[number, number]> = [[5, 3], [100, 40], [700, 333], [3000, 1000], [40_000, 17_000], [100_000, 30_000], [300_001, 99_999]];
      for (let t = 0; t < 40; t++) {
        const n = 2 + Math.floor(rng.nextFloat() * 5000);
        cases.push([n, 1 + Math.floor(rng.nextFloat() * (n - 1))]);
      }
      for (const [n, l] of cases) {
        const x = randomBits(rng, n);
        const seed = randomBits(rng, paSeedLength('modified-toeplitz', n, l));
        const plain = randomBits(rng, toeplitzSeedLength(n, l));
        useFftKernel('wasm');
        const a = modifiedToeplitzHash(x, seed, l, { engine: 'fft' });
        const a2 = toeplitzHash(x, plain, l, { engine: 'fft' });
        expect(toeplitzWorkspaceIsClear()).toBe(true);
        useFftKernel('js');
        expect(a.equals(modifiedToeplitzHash(x, seed, l, { engine: 'fft' })), `modified n=${n} l=${l}`).toBe(true);
        expect(a2.equals(toeplitzHash(x, plain, l, { engine: 'fft' })), `plain n=${n} l=${l}`).toBe(true);
      }
      // Chunked products write into unaligned output offsets.
      useFftKernel('wasm');
      const x = randomBits(rng, 5000);
      const seed = randomBits(rng, toeplitzSeedLength(5000, 3000));
      expect(toeplitzHash(x, seed, 3000, { engine: 'fft', maxTransformSize: 1024 }).equals(toeplitzHashNaive(x, seed, 3000))).toBe(true);
    } finally {
      useFftKernel(before);
    }
  }, 60_000);

  it('when a hash returns, then the work arrays kept between calls hold nothing of the key or the product (both engines, chunked too)', () => {
    const rng = seededRng(6);
    const x = randomBits(rng, 100_000);
    for (const engine of ENGINES) {
      toeplitzHash(x, randomBits(rng, toeplitzSeedLength(100_000, 60_000)), 60_000, { engine });
      expect(toeplitzWorkspaceIsClear()).toBe(true);
      modifiedToeplitzHash(x, randomBits(rng, paSeedLength('modified-toeplitz', 100_000, 60_000)), 60_000, { engine, maxTransformSize: 1 << 15 });
      expect(toeplitzWorkspaceIsClear()).toBe(true);
    }
  });

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
      expect(a.value.bits.equals(modifiedToeplitzHashNaive(bits, seed, l))).toBe(true);
    }
    // The plain family on request: its own seed length and result.
    const fullSeed = newToeplitzSeed(bits.length, l, rng, 'toeplitz');
    const full = amplifyBlock(verified(bits.clone(), 1_500, 0.03), { ...params, family: 'toeplitz' }, fullSeed);
    expect(full.ok && full.value.bits.equals(toeplitzHashNaive(bits, fullSeed, l))).toBe(true);
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
