import { describe, expect, it } from 'vitest';
import { channelFormulas, type ChannelParams } from '../../../../src/sim/bb84/detection/channel.js';
import { asymptoticSecretFraction, binaryEntropy, predictedRates, secretKeyLength } from '../../../../src/sim/bb84/estimation/finiteKey.js';
import { seededRng } from '../../../../src/sim/bb84/common/rng.js';

const formula = (n: number, e: number, leak: number, epsEC: number, epsPA: number): number =>
  n * (1 - binaryEntropy(e)) - leak - Math.log2(2 / epsEC) - 2 * Math.log2(1 / (2 * epsPA));

describe('binaryEntropy', () => {
  it('when evaluated at known points, then h(0) = 0, h(1/2) = 1, h(0.11) ≈ 0.5, and h is symmetric', () => {
    expect(binaryEntropy(0)).toBe(0);
    expect(binaryEntropy(1)).toBe(0);
    expect(binaryEntropy(0.5)).toBeCloseTo(1, 15);
    expect(binaryEntropy(0.11)).toBeCloseTo(0.4999, 3);
    expect(binaryEntropy(0.2)).toBeCloseTo(binaryEntropy(0.8), 15);
    expect(() => binaryEntropy(1.1)).toThrow(RangeError);
  });
});

describe('secretKeyLength', () => {
  it('when given random inputs, then it is the floor of the formula, clamped to [0, n], never above it', () => {
    const rng = seededRng(1);
    for (let t = 0; t < 2000; t++) {
      const n = Math.floor(rng.nextFloat() * 2_000_000);
      const e = rng.nextFloat() * 0.2;
      const leak = Math.floor(rng.nextFloat() * n * 0.6);
      const l = secretKeyLength({ n, qberUpper: e, leakEC: leak, epsEC: 1e-10, epsPA: 1e-10 });
      const f = formula(n, e, leak, 1e-10, 1e-10);
      expect(Number.isInteger(l)).toBe(true);
      expect(l).toBeLessThanOrEqual(Math.max(0, f));
      expect(l).toBe(f > 0 ? Math.floor(f) : 0);
      expect(l).toBeLessThanOrEqual(n);
    }
  });

  it('when the QBER bound is 11.1 % or more, then no key is left even with ideal error correction (leak = n·h(e))', () => {
    for (const n of [1e3, 1e5, 1e7, 1e9]) {
      for (const e of [0.111, 0.12, 0.2, 0.5, 0.7]) {
        const leak = Math.ceil(n * binaryEntropy(Math.min(e, 0.5)));
        expect(secretKeyLength({ n, qberUpper: e, leakEC: leak, epsEC: 1e-10, epsPA: 1e-10 }), `n=${n} e=${e}`).toBe(0);
      }
    }
  });

  it('when the leak grows, then the key length never grows', () => {
    let previous = Infinity;
    for (let leak = 0; leak <= 900_000; leak += 5_000) {
      const l = secretKeyLength({ n: 1_000_000, qberUpper: 0.03, leakEC: leak, epsEC: 1e-10, epsPA: 1e-10 });
      expect(l).toBeLessThanOrEqual(previous);
      previous = l;
    }
    expect(previous).toBe(0);
  });

  it('when the security parameters tighten, then the key shrinks by the log terms', () => {
    const base = { n: 100_000, qberUpper: 0.02, leakEC: 20_000, epsEC: 1e-10, epsPA: 1e-10 };
    expect(secretKeyLength(base) - secretKeyLength({ ...base, epsPA: 1e-20 })).toBeCloseTo(2 * Math.log2(1e10), -1);
    expect(secretKeyLength(base) - secretKeyLength({ ...base, epsEC: 1e-20 })).toBeCloseTo(Math.log2(1e10), -1);
  });

  it('when inputs are invalid, then it throws', () => {
    const ok = { n: 1000, qberUpper: 0.02, leakEC: 100, epsEC: 1e-10, epsPA: 1e-10 };
    expect(() => secretKeyLength({ ...ok, n: -1 })).toThrow(RangeError);
    expect(() => secretKeyLength({ ...ok, qberUpper: Number.NaN })).toThrow(RangeError);
    expect(() => secretKeyLength({ ...ok, leakEC: -5 })).toThrow(RangeError);
    expect(() => secretKeyLength({ ...ok, epsPA: 0 })).toThrow(RangeError);
  });
});

describe('asymptoticSecretFraction and predictedRates', () => {
  it('when the QBER approaches 11 %, then the ideal secret fraction reaches 0; worse reconciliation costs more', () => {
    expect(asymptoticSecretFraction(0, 1)).toBe(1);
    expect(asymptoticSecretFraction(0.11, 1)).toBeGreaterThan(0);
    expect(asymptoticSecretFraction(0.111, 1)).toBe(0);
    expect(asymptoticSecretFraction(0.03, 1.2)).toBeLessThan(asymptoticSecretFraction(0.03, 1.05));
  });

  it('when predicting a link, then the rates follow from the channel formulas', () => {
    const channel: ChannelParams = { lengthKm: 25, attenuationDbPerKm: 0.2, detectorEfficiency: 0.2, darkCountProbability: 1e-6, misalignmentError: 0.02, meanPhotonNumber: 0.5 };
    const r = predictedRates(channel, 1e8, 1.16, 0.1);
    const f = channelFormulas(channel);
    expect(r.siftedRate).toBeCloseTo(1e8 * f.pClick / 2, 6);
    expect(r.qber).toBe(f.qber);
    expect(r.secretFraction).toBeCloseTo(0.9 * asymptoticSecretFraction(f.qber, 1.16), 12);
    expect(r.secretRate).toBeCloseTo(r.siftedRate * r.secretFraction, 6);
    expect(r.secretRate).toBeGreaterThan(0);
  });
});
