import { describe, expect, it } from 'vitest';
import { binaryEntropy } from '../../../../src/sim/bb84/analysis/entropy.js';
import { expectedDecoyCounts, type DecoyCounts, type DecoySettings } from '../../../../src/sim/bb84/analysis/decoyCounts.js';
import { lim2014Bounds, lim2014Gamma, lim2014KeyLength, lim2014Penalty, type Lim2014Bounds } from '../../../../src/sim/bb84/analysis/lim2014.js';
import { lim2014Rate } from '../../../../src/sim/bb84/analysis/lim2014Rate.js';
import { photonYield, pulseStatistics, type LinkParams } from '../../../../src/sim/bb84/analysis/linkModel.js';
import { singlePhotonOnlyLengthFromCounts } from '../../../../src/sim/bb84/analysis/singlePhotonOnly.js';

/** The module's default channel at 25 km (config defaults), no afterpulses. */
const LINK: LinkParams = { lengthKm: 25, attenuationDbPerKm: 0.2, detectorEfficiency: 0.1, darkCountProbability: 1e-6, afterpulseProbability: 0, misalignmentError: 0.01 };
const SETTINGS: DecoySettings = { intensities: [0.6, 0.25, 2e-4], probabilities: [0.6, 0.28, 0.12], epsSec: 1e-10, epsCor: 1e-15 };
const P_X = 0.88;

/** Expected counts rounded to integers: what a block of `pulses` pulses observes on average. */
function observed(link: LinkParams, pulses: number, settings: DecoySettings = SETTINGS): Required<DecoyCounts> {
  const c = expectedDecoyCounts(link, { ...settings, pX: P_X, pulses });
  return { nX: c.nX.map(Math.round), nZ: c.nZ.map(Math.round), mZ: c.mZ.map(Math.round), mX: c.mX.map(Math.round) };
}

function bounds(counts: DecoyCounts, settings: DecoySettings = SETTINGS): Lim2014Bounds {
  const b = lim2014Bounds(counts, settings);
  if ('abort' in b) throw new Error(`unexpected abort ${b.abort}: ${b.reason}`);
  return b;
}

describe('Lim et al. 2014 eqs. (2)-(5) from observed counts', () => {
  it('when the formulas are written out by hand for one block, then the bounds agree term by term', () => {
    const counts: DecoyCounts = { nX: [14_000_000, 2_624_000, 2_000], nZ: [260_000, 48_000, 50], mZ: [2_700, 520, 25] };
    const [m1, m2, m3] = [0.6, 0.25, 2e-4];
    const [p1, p2, p3] = [0.6, 0.28, 0.12];
    const ln = Math.log(21 / 1e-10);
    const tau0 = p1 * Math.exp(-m1) + p2 * Math.exp(-m2) + p3 * Math.exp(-m3);
    const tau1 = p1 * Math.exp(-m1) * m1 + p2 * Math.exp(-m2) * m2 + p3 * Math.exp(-m3) * m3;
    const side = (n: number[], mu: number, p: number, i: number, sign: 1 | -1): number => {
      const total = n[0]! + n[1]! + n[2]!;
      return (Math.exp(mu) / p) * (n[i]! + sign * Math.sqrt((total / 2) * ln));
    };
    const s0 = (n: number[]): number => Math.max(0, (tau0 * (m2 * side(n, m3, p3, 2, -1) - m3 * side(n, m2, p2, 1, 1))) / (m2 - m3));
    const s1 = (n: number[]): number => (m1 * tau1 * (side(n, m2, p2, 1, -1) - side(n, m3, p3, 2, 1)
      - ((m2 ** 2 - m3 ** 2) / m1 ** 2) * (side(n, m1, p1, 0, 1) - s0(n) / tau0))) / (m1 * (m2 - m3) - m2 ** 2 + m3 ** 2);
    const v = (tau1 * (side(counts.mZ, m2, p2, 1, 1) - side(counts.mZ, m3, p3, 2, -1))) / (m2 - m3);
    const b = bounds(counts);
    expect(b.tau0).toBeCloseTo(tau0, 14);
    expect(b.tau1).toBeCloseTo(tau1, 14);
    expect(b.sX0).toBeCloseTo(s0(counts.nX), 6);
    expect(b.sX1 / s1(counts.nX)).toBeCloseTo(1, 12);
    expect(b.sZ1 / s1(counts.nZ)).toBeCloseTo(1, 12);
    expect(b.vZ1 / v).toBeCloseTo(1, 12);
    const ratio = v / s1(counts.nZ);
    const c = s1(counts.nZ);
    const d = s1(counts.nX);
    const gamma = Math.sqrt((((c + d) * (1 - ratio) * ratio) / (c * d * Math.log(2))) * Math.log2(((c + d) / (c * d * (1 - ratio) * ratio)) * (21 ** 2 / 1e-20)));
    expect(b.phiX).toBeCloseTo(ratio + gamma, 12);
    const l = lim2014KeyLength(counts, SETTINGS, 500_000);
    if ('abort' in l) throw new Error(l.reason);
    const eq1 = b.sX0 + b.sX1 - b.sX1 * binaryEntropy(b.phiX) - 500_000 - 6 * Math.log2(21 / 1e-10) - Math.log2(2 / 1e-15);
    expect(l.length).toBe(Math.floor(eq1));
    expect(lim2014Penalty(1e-10, 1e-15)).toBeCloseTo(6 * Math.log2(21e10) + Math.log2(2e15), 10);
  });

  it('when a block is very large, then the bounds approach the true vacuum and single-photon counts from the safe side', () => {
    // A true vacuum decoy (mu3 = 0) makes the vacuum bound tight; with mu3 = 2e-4 it is looser (next test).
    const vacuum: DecoySettings = { ...SETTINGS, intensities: [0.6, 0.25, 0] };
    const pulses = 1e16;
    const b = bounds(observed(LINK, pulses, vacuum), vacuum);
    const xx = P_X * P_X;
    const trueSX1 = pulses * xx * b.tau1 * photonYield(LINK, 1);
    const trueSX0 = pulses * xx * b.tau0 * photonYield(LINK, 0);
    expect(b.sX1).toBeLessThanOrEqual(trueSX1);
    // Two decoys of finite intensity leave a gap (mu2 = 0.25 is not small): the bound is within 10 %.
    expect(b.sX1).toBeGreaterThan(0.9 * trueSX1);
    expect(b.sX0).toBeLessThanOrEqual(trueSX0);
    expect(b.sX0).toBeGreaterThan(0.95 * trueSX0);
    // The single-photon phase error is bounded from above; the true e_1 is (p_dc + e_mis eta) / Y_1. Eq. (4)
    // charges every error of the mu2 pulses (multi-photon ones included) to single photons, so the bound
    // stays about 40 % above e_1 with mu2 = 0.25 however large the block.
    const eta = 0.1 * 10 ** -0.5;
    const e1 = (1e-6 + 0.01 * eta) / photonYield(LINK, 1);
    expect(b.phiX).toBeGreaterThanOrEqual(e1);
    expect(b.phiX).toBeLessThan(1.5 * e1);
  });

  it('when the third intensity is not a true vacuum, then the vacuum bound is weaker but still a bound (>= 0, <= true)', () => {
    const pulses = 1e14;
    const b = bounds(observed(LINK, pulses));
    const trueSX0 = pulses * P_X * P_X * b.tau0 * photonYield(LINK, 0);
    expect(b.sX0).toBeGreaterThanOrEqual(0);
    expect(b.sX0).toBeLessThanOrEqual(trueSX0);
  });

  it('when the same counts are given twice, then the same integer length comes out (both modules agree)', () => {
    const counts = observed(LINK, 1e10);
    const a = lim2014KeyLength(counts, SETTINGS, 1_000_000);
    const b = lim2014KeyLength(structuredClone(counts), { ...SETTINGS }, 1_000_000);
    expect(a).toEqual(b);
    if ('abort' in a) throw new Error(a.reason);
    expect(Number.isSafeInteger(a.length)).toBe(true);
    expect(a.length).toBeGreaterThan(0);
  });

  it('when the block grows, then the key length and the rate per pulse grow with it', () => {
    let previousLength = 0;
    let previousRate = 0;
    for (const pulses of [1e9, 3e9, 1e10, 3e10, 1e11, 1e12]) {
      const r = lim2014Rate(LINK, { ...SETTINGS, pX: P_X, pulses }, 1.16);
      expect(r.abort).toBeUndefined();
      expect(r.length).toBeGreaterThan(previousLength);
      expect(r.ratePerPulse).toBeGreaterThan(previousRate);
      previousLength = r.length;
      previousRate = r.ratePerPulse;
    }
    // ... and never reaches the infinite-key single-photon rate: q_x^2 Q_1 (1 - h(e_1)) - leak.
    expect(previousRate).toBeLessThan(P_X * P_X * pulseStatistics(LINK, 0.6).click);
  });

  it('when the block is too small, then it aborts with a code and a reason instead of a length', () => {
    const small = lim2014KeyLength(observed(LINK, 1e6), SETTINGS, 0);
    expect('abort' in small).toBe(true);
    if (!('abort' in small)) return;
    expect(['single-photon-bound-x', 'single-photon-bound-z', 'no-secret-key']).toContain(small.abort);
    expect(small.reason.length).toBeGreaterThan(10);
    const leaky = lim2014KeyLength(observed(LINK, 1e10), SETTINGS, 1e12);
    expect(leaky).toMatchObject({ abort: 'no-secret-key' });
  });

  it('when nothing was detected, then it aborts rather than divide by zero', () => {
    const r = lim2014KeyLength({ nX: [0, 0, 0], nZ: [0, 0, 0], mZ: [0, 0, 0] }, SETTINGS, 0);
    expect('abort' in r && r.abort).toBe('single-photon-bound-x');
  });

  it('when gamma has b = 0, then it takes its limit 0', () => {
    expect(lim2014Gamma(1e-10, 0, 1e5, 1e6)).toBe(0);
    expect(lim2014Gamma(1e-10, 1e-9, 1e5, 1e6)).toBeGreaterThan(0);
    expect(lim2014Gamma(1e-10, 1e-9, 1e5, 1e6)).toBeLessThan(1e-3);
  });
});

/**
 * A photon-number-splitting attacker (issue 11 point 4): a lossless channel; from each pulse of two or more
 * photons Eve keeps one and forwards the rest, single-photon pulses are blocked; she forwards only the
 * fraction t of the multi-photon pulses that makes Bob's click rate at the signal intensity equal to the
 * honest link's. Returns the expected counts Bob records, rounded.
 */
function pnsCounts(link: LinkParams, settings: DecoySettings, pX: number, pulses: number): Required<DecoyCounts> {
  const pdc = link.darkCountProbability;
  const forwardedClick = (k: number): number => {
    // sum_{n>=2} P(n|k) [1 - (1 - eta_Bob)^(n-1)] = 1 - e^-k - e^-k k eta_Bob ... summed exactly
    let s = 0;
    let term = Math.exp(-k);
    for (let n = 1; n < 60; n++) {
      term *= k / n;
      if (n >= 2) s += term * (1 - (1 - link.detectorEfficiency) ** (n - 1));
    }
    return s;
  };
  const honest = pulseStatistics(link, settings.intensities[0]!).detection;
  const t = Math.min(1, (honest - 2 * pdc) / ((1 - 2 * pdc) * forwardedClick(settings.intensities[0]!)));
  const out: Required<DecoyCounts> = { nX: [], nZ: [], mZ: [], mX: [] };
  settings.intensities.forEach((k, i) => {
    const photon = t * forwardedClick(k);
    const click = 1 - (1 - 2 * pdc) * (1 - photon);
    const error = pdc + link.misalignmentError * photon;
    const sent = pulses * settings.probabilities[i]!;
    out.nX.push(Math.round(sent * pX * pX * click));
    out.mX.push(Math.round(sent * pX * pX * error));
    out.nZ.push(Math.round(sent * (1 - pX) ** 2 * click));
    out.mZ.push(Math.round(sent * (1 - pX) ** 2 * error));
  });
  return out;
}

describe('a photon-number-splitting attack', () => {
  const link50 = { ...LINK, lengthKm: 50 };
  const pulses = 1e10;
  const attacked = pnsCounts(link50, SETTINGS, P_X, pulses);
  const honest = observed(link50, pulses);

  it('when Eve splits multi-photon pulses, then Bob sees the honest click rate at the signal intensity but not at the decoys', () => {
    expect(attacked.nX[0]! / honest.nX[0]!).toBeCloseTo(1, 2);
    expect(attacked.nX[1]! / honest.nX[1]!).toBeLessThan(0.5);
  });

  it('when the decoy analysis sees those counts, then it aborts while the single-photon-only sizing would have made key', () => {
    const leak = 1.16 * attacked.nX.reduce((a, b) => a + b, 0) * binaryEntropy(attacked.mX.reduce((a, b) => a + b, 0) / attacked.nX.reduce((a, b) => a + b, 0));
    const decoy = lim2014KeyLength(attacked, SETTINGS, leak);
    expect('abort' in decoy).toBe(true);
    if ('abort' in decoy) expect(decoy.abort).toBe('single-photon-bound-x');
    const oracle = singlePhotonOnlyLengthFromCounts(attacked, leak, { epsEC: 1e-10, epsPA: 1e-10 });
    expect(oracle).toBeGreaterThan(0.5 * attacked.nX.reduce((a, b) => a + b, 0));
    // The honest block of the same size does give key.
    const fair = lim2014KeyLength(honest, SETTINGS, leak);
    expect('length' in fair && fair.length).toBeGreaterThan(0);
  });
});

describe('input validation', () => {
  const counts = observed(LINK, 1e10);
  it('when the intensities break mu1 > mu2 + mu3 or mu2 > mu3, then the RangeError names them', () => {
    expect(() => lim2014Bounds(counts, { ...SETTINGS, intensities: [0.3, 0.25, 0.1] })).toThrow(/intensities.*mu1 > mu2 \+ mu3/);
    expect(() => lim2014Bounds(counts, { ...SETTINGS, intensities: [0.6, 0.1, 0.2] })).toThrow(/intensities.*mu2 > mu3/);
    expect(() => lim2014Bounds(counts, { ...SETTINGS, intensities: [0.6, 0.25] })).toThrow(/intensities/);
    expect(() => lim2014Bounds(counts, { ...SETTINGS, intensities: [0.6, 0.25, -1e-4] })).toThrow(/intensities\[2\]/);
  });
  it('when the probabilities do not sum to 1 or leave (0, 1), then the RangeError names them', () => {
    expect(() => lim2014Bounds(counts, { ...SETTINGS, probabilities: [0.6, 0.3, 0.2] })).toThrow(/probabilities must sum to 1/);
    expect(() => lim2014Bounds(counts, { ...SETTINGS, probabilities: [1, 0, 0] })).toThrow(/probabilities\[0\]/);
  });
  it('when a count is negative, fractional or an error count exceeds its detections, then the RangeError names it', () => {
    expect(() => lim2014Bounds({ ...counts, nX: [1, -1, 2] }, SETTINGS)).toThrow(/counts\.nX\[1\]/);
    expect(() => lim2014Bounds({ ...counts, nZ: [1.5, 1, 2] }, SETTINGS)).toThrow(/counts\.nZ\[0\].*integer/);
    expect(() => lim2014Bounds({ ...counts, mZ: [counts.nZ[0]! + 1, 0, 0] }, SETTINGS)).toThrow(/counts\.mZ\[0\].*exceeds/);
    expect(() => lim2014Bounds({ ...counts, mZ: [1, 2] }, SETTINGS)).toThrow(/counts\.mZ/);
  });
  it('when an epsilon or lambda_EC is out of range, then the RangeError names it', () => {
    expect(() => lim2014Bounds(counts, { ...SETTINGS, epsSec: 0 })).toThrow(/epsSec/);
    expect(() => lim2014Bounds(counts, { ...SETTINGS, epsCor: 1 })).toThrow(/epsCor/);
    expect(() => lim2014KeyLength(counts, SETTINGS, -1)).toThrow(/lambdaEC/);
    expect(() => lim2014KeyLength(counts, SETTINGS, Number.NaN)).toThrow(/lambdaEC/);
  });
});
