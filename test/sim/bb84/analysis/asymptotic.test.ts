import { describe, expect, it } from 'vitest';
import { basisMatchProbability } from '../../../../src/sim/bb84/analysis/asymptoticOptions.js';
import { infiniteDecoyRate } from '../../../../src/sim/bb84/analysis/infiniteDecoy.js';
import { multiPhotonProbability, pulseStatistics, type LinkParams } from '../../../../src/sim/bb84/analysis/linkModel.js';
import { noDecoyRate } from '../../../../src/sim/bb84/analysis/noDecoy.js';
import { plobBound, plobRate } from '../../../../src/sim/bb84/analysis/plob.js';
import { ANALYSES, ANALYSIS_NAMES, type PlanSettings } from '../../../../src/sim/bb84/analysis/registry.js';
import { singlePhotonOnlyFraction, singlePhotonOnlyLength } from '../../../../src/sim/bb84/analysis/singlePhotonOnly.js';
import { vacuumWeakRate } from '../../../../src/sim/bb84/analysis/vacuumWeak.js';

/** The module's default channel (config defaults: 0.2 dB/km, eta_Bob 0.1, p_dc 1e-6, e_mis 1 %). */
const DEFAULT: LinkParams = { lengthKm: 0, attenuationDbPerKm: 0.2, detectorEfficiency: 0.1, darkCountProbability: 1e-6, afterpulseProbability: 0, misalignmentError: 0.01 };
const SETTINGS: PlanSettings = { intensities: [0.6, 0.25, 2e-4], probabilities: [0.6, 0.28, 0.12], pX: 0.88, fEC: 1.16, pulses: 1e10, epsSec: 1e-10, epsCor: 1e-15 };
const at = (km: number): LinkParams => ({ ...DEFAULT, lengthKm: km });

describe('no decoy (GLLP)', () => {
  it('when mu = 0.5, then multi-photon pulses outnumber clicks and GLLP proves no key at any distance (standards.md section 4)', () => {
    expect(multiPhotonProbability(0.5)).toBeGreaterThan(pulseStatistics(at(0), 0.5).click);
    for (const km of [0, 10, 25, 50, 100]) {
      const r = noDecoyRate(at(km), { mu: 0.5, fEC: 1.16, sifting: 0.5 });
      expect(r.rate).toBe(0);
      expect(r.multiPhotonFraction).toBeGreaterThan(1);
    }
  });

  it('when mu is optimised at 25 km, then it falls to about 0.02-0.05 (standards.md section 4) and the rate scales as eta^2', () => {
    const best = (km: number): { mu: number; rate: number } => {
      let b = { mu: 0, rate: 0 };
      for (let mu = 1e-4; mu < 1; mu *= 1.005) {
        const rate = noDecoyRate(at(km), { mu, fEC: 1.16, sifting: 0.5 }).rate;
        if (rate > b.rate) b = { mu, rate };
      }
      return b;
    };
    const b25 = best(25);
    expect(b25.mu).toBeGreaterThan(0.02);
    expect(b25.mu).toBeLessThan(0.05);
    // Without decoys the safe mu is of the order of eta, so the rate falls as eta^2 (log-log slope about 2).
    const b10 = best(10);
    const slope = Math.log(b10.rate / b25.rate) / Math.log(10 ** (0.2 * 15 / 10));
    expect(slope).toBeGreaterThan(1.8);
    expect(slope).toBeLessThan(2.4);
  });
});

describe('ordering of the analyses on the default link', () => {
  it('when the same link is analysed, then PLOB >= single-photon-only >= infinite decoy >= vacuum+weak >= 0', () => {
    const options = { mu: 0.6, fEC: 1.16, sifting: 0.5 };
    for (const km of [0, 25, 50, 100, 150]) {
      const inf = infiniteDecoyRate(at(km), options).rate;
      const vw = vacuumWeakRate(at(km), { ...options, nu: 0.25, vacuum: 2e-4 }).rate;
      const oracle = ANALYSES['single-photon-only'].evaluate(at(km), { ...SETTINGS, pX: 0.5 }).rate_per_pulse;
      expect(plobRate(at(km)).rate).toBeGreaterThanOrEqual(oracle);
      expect(oracle).toBeGreaterThanOrEqual(inf);
      expect(inf).toBeGreaterThanOrEqual(vw);
      expect(vw).toBeGreaterThanOrEqual(0);
    }
  });

  it('when the vacuum decoy is not empty, then the vacuum+weak bounds only get weaker', () => {
    const options = { mu: 0.6, fEC: 1.16, sifting: 0.5, nu: 0.25 };
    const empty = vacuumWeakRate(at(50), { ...options, vacuum: 0 });
    const near = vacuumWeakRate(at(50), { ...options, vacuum: 2e-4 });
    expect(near.y1).toBeLessThanOrEqual(empty.y1);
    expect(near.e1).toBeGreaterThanOrEqual(empty.e1);
    expect(near.y0Lower).toBeLessThanOrEqual(near.y0Upper);
  });
});

describe('PLOB, sifting and the single-photon-only oracle', () => {
  it('when eta = 0.01, then PLOB is -log2(0.99) and it is precise for tiny eta', () => {
    expect(plobRate(at(50)).rate).toBeCloseTo(-Math.log2(0.99), 12);
    expect(plobBound(1e-12) / (1e-12 / Math.LN2)).toBeCloseTo(1, 6);
    expect(plobBound(1)).toBe(Number.POSITIVE_INFINITY);
    expect(() => plobBound(1.5)).toThrow(/eta/);
  });

  it('when the bases are biased, then the sifting factor is p_X^2 + p_Z^2', () => {
    expect(basisMatchProbability(0.5)).toBe(0.5);
    expect(basisMatchProbability(0.9)).toBeCloseTo(0.82, 15);
    expect(() => basisMatchProbability(1)).toThrow(/pX/);
  });

  it('when the old sizing is asked, then it gives 1 - h(E) - f h(E) and the old finite-block length', () => {
    expect(singlePhotonOnlyFraction(0.01, 1.16)).toBeCloseTo(1 - 2.16 * 0.08079313589591118, 12);
    expect(singlePhotonOnlyFraction(0.2, 1.16)).toBe(0);
    const l = singlePhotonOnlyLength({ n: 1_000_000, qberUpper: 0.02, leakEC: 150_000, epsEC: 1e-10, epsPA: 1e-10 });
    expect(l).toBe(Math.floor(1_000_000 * (1 - 0.14144054254182067) - 150_000 - Math.log2(2e10) - 2 * Math.log2(1 / 2e-10)));
  });
});

describe('the registry', () => {
  it('when every analysis is evaluated at 0 to 150 km, then each row has a finite rate >= 0 and a QBER in [0, 1/2] or null', () => {
    expect(Object.keys(ANALYSES).sort()).toEqual([...ANALYSIS_NAMES].sort());
    for (const name of ANALYSIS_NAMES) {
      for (const km of [0, 50, 150]) {
        const row = ANALYSES[name].evaluate(at(km), SETTINGS);
        expect(Number.isFinite(row.rate_per_pulse) && row.rate_per_pulse >= 0).toBe(true);
        if (row.qber !== null) expect(row.qber >= 0 && row.qber <= 0.5).toBe(true);
        expect(JSON.parse(JSON.stringify(row))).toEqual(row);
      }
    }
  });

  it('when lim2014 has a large block on the default link at 25 km, then its rate is positive and below the infinite-decoy one', () => {
    const lim = ANALYSES.lim2014.evaluate(at(25), SETTINGS);
    const inf = ANALYSES['infinite-decoy'].evaluate(at(25), SETTINGS);
    expect(lim.rate_per_pulse).toBeGreaterThan(0);
    expect(lim.abort).toBeNull();
    expect(lim.rate_per_pulse).toBeLessThan(inf.rate_per_pulse);
  });
});
