/**
 * Published figures the analyses reproduce. Each test names its source, the value and the tolerance.
 *
 * Ma, Qi, Zhao, Lo, PRA 72, 012326 (2005): the paper's own text is not in the stored sources this project
 * could search; its GYS figures below are as quoted from it by two independent public repositories (a
 * validation table citing "Fig. 3" for 140.55 km and 142.05 km, and a reproduction table citing "Sec. 3.1
 * and Figs. 1-2" for mu_opt = 0.48 at f = 1.22 and 0.54 at the Shannon limit, and for 140.55 / 142.05 km).
 * Lim, Curty, Walenta, Xu, Zbinden, PRA 89, 022307 (2014): figures from the paper's text (sec. IV).
 */
import { describe, expect, it } from 'vitest';
import { infiniteDecoyRate } from '../../../../src/sim/bb84/analysis/infiniteDecoy.js';
import { optimiseLim2014, type Lim2014Search } from '../../../../src/sim/bb84/analysis/lim2014Optimise.js';
import type { LinkParams } from '../../../../src/sim/bb84/analysis/linkModel.js';
import { vacuumWeakRate } from '../../../../src/sim/bb84/analysis/vacuumWeak.js';

/**
 * GYS (Gobby, Yuan, Shields 2004) as Ma et al. tabulate it: alpha 0.21 dB/km, e_detector 3.3 %,
 * Y_0 = 1.7e-6 (both detectors: p_dc = Y_0 / 2 each), eta_Bob 4.5 %, f(e) = 1.22, no afterpulses; q = 1/2.
 */
const GYS: LinkParams = { lengthKm: 0, attenuationDbPerKm: 0.21, detectorEfficiency: 0.045, darkCountProbability: 1.7e-6 / 2, afterpulseProbability: 0, misalignmentError: 0.033 };
const GYS_F = 1.22;
const BB84_SIFTING = 0.5;

/** The largest distance (km) at which rate(L) > 0, by bisection to `resolution` km. */
function maximalDistance(rate: (km: number) => number, from: number, to: number, resolution = 0.01): number {
  let lo = from;
  let hi = to;
  expect(rate(lo)).toBeGreaterThan(0);
  expect(rate(hi)).toBe(0);
  while (hi - lo > resolution) {
    const mid = (lo + hi) / 2;
    if (rate(mid) > 0) lo = mid; else hi = mid;
  }
  return lo;
}

/** The intensity (to 0.001) that maximises rate(mu). */
function optimalIntensity(rate: (mu: number) => number): number {
  let best = 0;
  let bestRate = -1;
  for (let i = 1; i < 1500; i++) {
    const mu = i / 1000;
    const r = rate(mu);
    if (r > bestRate) { bestRate = r; best = mu; }
  }
  return best;
}

describe('Ma, Qi, Zhao, Lo 2005 with the GYS parameters', () => {
  const infinite = (km: number, mu: number, f = GYS_F): number => infiniteDecoyRate({ ...GYS, lengthKm: km }, { mu, fEC: f, sifting: BB84_SIFTING }).rate;

  it('when the infinite-decoy rate is maximised over mu, then mu_opt = 0.48 at f = 1.22 and 0.54 at the Shannon limit (within 0.01; Sec. 3.1)', () => {
    expect(Math.abs(optimalIntensity((mu) => infinite(40, mu)) - 0.48)).toBeLessThanOrEqual(0.01);
    expect(Math.abs(optimalIntensity((mu) => infinite(40, mu, 1)) - 0.54)).toBeLessThanOrEqual(0.01);
  });

  it('when infinitely many decoys are used at mu = 0.48, then keys reach 142.05 km (within 0.5 km; Fig. 3)', () => {
    const d = maximalDistance((km) => infinite(km, 0.48), 100, 200);
    expect(Math.abs(d - 142.05)).toBeLessThanOrEqual(0.5);
  });

  it('when only a vacuum and a weak decoy (nu = 0.05) back mu = 0.48, then keys reach 140.55 km (within 0.5 km; Fig. 3)', () => {
    const vacuumWeak = (km: number): number => vacuumWeakRate({ ...GYS, lengthKm: km }, { mu: 0.48, nu: 0.05, vacuum: 0, fEC: GYS_F, sifting: BB84_SIFTING }).rate;
    const d = maximalDistance(vacuumWeak, 100, 200);
    expect(Math.abs(d - 140.55)).toBeLessThanOrEqual(0.5);
    // ... and two decoys never prove more than infinitely many.
    for (const km of [0, 50, 100, 140]) expect(vacuumWeak(km)).toBeLessThanOrEqual(infinite(km, 0.48));
  });

  it('when p_ap = 0 and p_dc = Y_0 / 2, then Y_1 and e_1 are Ma et al.\'s Y_0 + eta and (Y_0/2 + e_det eta) / Y_1 to first order in Y_0', () => {
    for (const km of [0, 50, 120]) {
      const r = infiniteDecoyRate({ ...GYS, lengthKm: km }, { mu: 0.48, fEC: GYS_F, sifting: BB84_SIFTING });
      const eta = 0.045 * 10 ** (-0.021 * km);
      expect(r.y1 / (1.7e-6 + eta)).toBeCloseTo(1, 5);
      expect(r.e1 / ((0.85e-6 + 0.033 * eta) / (1.7e-6 + eta))).toBeCloseTo(1, 5);
    }
  });
});

/** Lim et al. 2014 sec. IV, dedicated fibre. */
const LIM: LinkParams = { lengthKm: 0, attenuationDbPerKm: 0.2, detectorEfficiency: 0.1, darkCountProbability: 6e-7, afterpulseProbability: 0.04, misalignmentError: 5e-3 };

/** Their evaluation: mu3 = 2e-4, eps_cor = 1e-15, f_EC = 1.16, eps_sec = kappa l with kappa = 1e-15, n_X fixed. */
function search(nX: number, start?: Lim2014Search['start']): Lim2014Search {
  return { mu3: 2e-4, epsCor: 1e-15, fEC: 1.16, block: { nX }, secrecy: { kappa: 1e-15 }, ...(start !== undefined ? { start } : {}) };
}

function optimalRate(km: number, nX: number): number {
  const best = optimiseLim2014({ ...LIM, lengthKm: km }, search(nX));
  return best === undefined ? 0 : best.result.ratePerPulse;
}

describe('Lim, Curty, Walenta, Xu, Zbinden 2014 (sec. IV, Fig. 1 setting), rates optimised over q_x, p_k, mu1, mu2', () => {
  it('when n_X = 1e9 is compared with 1e7 at 100 km, then the rate is about 1.75 times higher (within 10 %; sec. IV text)', () => {
    const ratio = optimalRate(100, 1e9) / optimalRate(100, 1e7);
    expect(ratio).toBeGreaterThan(1.75 * 0.9);
    expect(ratio).toBeLessThan(1.75 * 1.1);
  }, 120_000);

  it('when the post-processing block grows from 1e4 to 1e9, then the optimised rate at 50 km grows with it', () => {
    const rates = [1e4, 1e5, 1e6, 1e7, 1e9].map((nX) => optimalRate(50, nX));
    for (let i = 1; i < rates.length; i++) expect(rates[i]!).toBeGreaterThan(rates[i - 1]!);
  }, 120_000);

  /**
   * The paper: "even if we use a block size of 1e4, cryptographic keys can still be distributed over a fiber
   * length of 135 km". This implementation, with its optimiser, reaches about 127 km: 6 % short. The
   * tolerance is 10 % below the published value and nothing above it (a longer reach would be more optimistic
   * than the paper). The gap is not explained (docs/bb84-security.md, "Published figures").
   */
  it('when n_X = 1e4, then keys reach within 10 % below the published 135 km, and not beyond it', () => {
    let lo = 100;
    let hi = 150;
    let warm = optimiseLim2014({ ...LIM, lengthKm: lo }, search(1e4));
    expect(warm?.result.length).toBeGreaterThan(0);
    while (hi - lo > 1) {
      const mid = (lo + hi) / 2;
      const r = optimiseLim2014({ ...LIM, lengthKm: mid }, search(1e4, warm?.settings));
      if (r !== undefined && r.result.length > 0) { lo = mid; warm = r; } else hi = mid;
    }
    expect(lo).toBeGreaterThanOrEqual(135 * 0.9);
    expect(lo).toBeLessThanOrEqual(135);
  }, 120_000);
});
