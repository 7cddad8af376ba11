import { describe, expect, it } from 'vitest';
import { BitArray } from '../../../../src/sim/bb84/common/bits.js';
import { estimate, estimateBlock, newSampleSeed, qberUpperBound, sampleMask, takeSample, SAMPLE_SEED_BYTES } from '../../../../src/sim/bb84/estimation/estimate.js';
import { newKeyBlock } from '../../../../src/sim/bb84/common/keyBlock.js';
import { bernoulliBits, randomBelow, randomBits, seededRng, sharedSeedRng } from '../../../../src/sim/bb84/common/rng.js';

function noisyPair(seed: number, n: number, qber: number): { alice: BitArray; bob: BitArray } {
  const rng = seededRng(seed);
  const alice = randomBits(rng, n);
  const bob = alice.clone();
  const flips = bernoulliBits(rng, n, qber);
  for (let i = 0; i < bob.words.length; i++) bob.words[i]! ^= flips.words[i]!;
  return { alice, bob };
}

describe('sampleMask', () => {
  it('when both ends use the same seed, then they derive identical positions of exactly the sample size', () => {
    const seed = newSampleSeed(seededRng(1));
    expect(seed.length).toBe(SAMPLE_SEED_BYTES);
    for (const [total, k] of [[1000, 100], [1000, 900], [1000, 500], [33, 1], [33, 32], [100_000, 10_000]] as const) {
      const a = sampleMask(total, k, seed);
      const b = sampleMask(total, k, Uint8Array.from(seed));
      expect(a.equals(b)).toBe(true);
      expect(a.popcount()).toBe(k);
      expect(a.length).toBe(total);
    }
  });

  it('when drawn, then the positions are those of randomBelow(total) over the shared stream, first distinct picks first (peers of every version agree)', () => {
    const rng = seededRng(6);
    for (const [total, k] of [[1000, 100], [1000, 700], [999_983, 98_000], [65_537, 6553], [1_000_003, 60_000]] as const) {
      const seed = newSampleSeed(rng);
      const stream = sharedSeedRng(seed);
      const complement = k > total / 2;
      const picks = new Set<number>();
      while (picks.size < (complement ? total - k : k)) picks.add(randomBelow(stream, total));
      const mask = sampleMask(total, k, seed);
      expect(mask.popcount()).toBe(k);
      for (const pos of picks) expect(mask.get(pos)).toBe(complement ? 0 : 1);
    }
  });

  it('when seeds differ, then the samples differ', () => {
    const rng = seededRng(2);
    expect(sampleMask(10_000, 1000, newSampleSeed(rng)).equals(sampleMask(10_000, 1000, newSampleSeed(rng)))).toBe(false);
  });

  it('when sampling many times, then every position is chosen at rate k/total', () => {
    const rng = seededRng(3);
    const total = 64;
    const k = 16;
    const trials = 4000;
    const counts = new Array<number>(total).fill(0);
    for (let t = 0; t < trials; t++) {
      const m = sampleMask(total, k, newSampleSeed(rng));
      for (let i = 0; i < total; i++) counts[i]! += m.get(i);
    }
    const p = k / total;
    for (const c of counts) expect(Math.abs(c - trials * p)).toBeLessThan(5 * Math.sqrt(trials * p * (1 - p)));
  });
});

describe('estimate', () => {
  it('when both ends compare samples, then they get identical statistics, qberUpper ≥ qber, and the sample leaves the key', () => {
    const { alice, bob } = noisyPair(4, 100_000, 0.03);
    const params = { seed: newSampleSeed(seededRng(5)), sampleSize: 10_000, epsPE: 1e-10 };
    const ra = estimate(alice, takeSample(bob, params).sample, params);
    const rb = estimate(bob, takeSample(alice, params).sample, params);
    expect([ra.errors, ra.qber, ra.qberUpper]).toEqual([rb.errors, rb.qber, rb.qberUpper]);
    expect(ra.sampleSize).toBe(10_000);
    expect(ra.qberUpper).toBeGreaterThanOrEqual(ra.qber);
    expect(Math.abs(ra.qber - 0.03)).toBeLessThan(5 * Math.sqrt((0.03 * 0.97) / 10_000));
    expect(ra.remaining.length).toBe(90_000);
    // removed the same positions at both ends: remaining errors + sample errors = all errors
    expect(ra.remaining.hammingDistance(rb.remaining) + ra.errors).toBe(alice.hammingDistance(bob));
  });

  it('when repeated many times, then the true error rate of the remaining bits rarely exceeds qberUpper (coverage ≥ 1 - eps)', () => {
    const eps = 0.1;
    let violations = 0;
    const trials = 200;
    for (let t = 0; t < trials; t++) {
      const { alice, bob } = noisyPair(100 + t, 4000, 0.05);
      const params = { seed: newSampleSeed(seededRng(1000 + t)), sampleSize: 400, epsPE: eps };
      const r = estimate(alice, takeSample(bob, params).sample, params);
      const rb = takeSample(bob, params).remaining;
      if (r.remaining.hammingDistance(rb) / r.remaining.length > r.qberUpper) violations++;
    }
    expect(violations).toBeLessThanOrEqual(trials * eps);
  });

  it('when the bound is computed, then it shrinks with the sample size and grows with the errors', () => {
    expect(qberUpperBound(10, 1000, 10_000, 1e-10)).toBeGreaterThan(qberUpperBound(100, 10_000, 10_000, 1e-10));
    expect(qberUpperBound(20, 1000, 10_000, 1e-10)).toBeGreaterThan(qberUpperBound(10, 1000, 10_000, 1e-10));
    expect(qberUpperBound(1000, 1000, 10, 1e-10)).toBe(1);
    // n ≫ k: close to the Hoeffding term sqrt(ln(1/eps)/(2k))
    expect(qberUpperBound(0, 1000, 1e9, 1e-10)).toBeCloseTo(Math.sqrt(Math.log(1e10) / 2000), 4);
  });

  it('when the sample size is invalid, then it throws', () => {
    const bits = new BitArray(100);
    const seed = new Uint8Array(32);
    expect(() => takeSample(bits, { seed, sampleSize: 0 })).toThrow(RangeError);
    expect(() => takeSample(bits, { seed, sampleSize: 100 })).toThrow(RangeError);
    expect(() => estimate(bits, new BitArray(5), { seed, sampleSize: 10, epsPE: 1e-10 })).toThrow(RangeError);
  });
});

describe('estimateBlock', () => {
  it('when qberUpper is below the threshold, then the block advances to estimated with its statistics', () => {
    const { alice, bob } = noisyPair(6, 50_000, 0.02);
    const params = { seed: newSampleSeed(seededRng(7)), sampleSize: 5_000, epsPE: 1e-10, qberThreshold: 0.11 };
    const r = estimateBlock(newKeyBlock('k1', 'sifted', alice), takeSample(bob, params).sample, params);
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.value.stage).toBe('estimated');
      expect(r.value.bits.length).toBe(45_000);
      expect(r.value.siftedLength).toBe(50_000);
      expect(r.value.sampleSize).toBe(5_000);
      expect(r.value.qberUpper!).toBeGreaterThanOrEqual(r.value.qberEstimate!);
      expect(r.value.leakedBits).toBe(0);
    }
  });

  it('when qberUpper exceeds the threshold, then the block is dropped with qber-too-high (not thrown)', () => {
    const { alice, bob } = noisyPair(8, 50_000, 0.15);
    const params = { seed: newSampleSeed(seededRng(9)), sampleSize: 5_000, epsPE: 1e-10, qberThreshold: 0.11 };
    const r = estimateBlock(newKeyBlock('k2', 'sifted', alice), takeSample(bob, params).sample, params);
    expect(r).toMatchObject({ ok: false, dropped: true, code: 'qber-too-high' });
  });

  it('when the block is not sifted, then estimateBlock throws', () => {
    const params = { seed: new Uint8Array(32), sampleSize: 10, epsPE: 1e-10, qberThreshold: 0.11 };
    expect(() => estimateBlock(newKeyBlock('k3', 'corrected', new BitArray(100)), new BitArray(10), params)).toThrow(/stage/);
  });
});
