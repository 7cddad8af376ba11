import { describe, expect, it } from 'vitest';
import { multiPhotonProbability, photonYield, poissonProbability, pulseStatistics, systemTransmittance, validateLinkParams, type LinkParams } from '../../../../src/sim/bb84/analysis/linkModel.js';

/** Lim et al. 2014's example channel (standards.md section 4) at 0 km. */
const LIM: LinkParams = { lengthKm: 0, attenuationDbPerKm: 0.2, detectorEfficiency: 0.1, darkCountProbability: 6e-7, afterpulseProbability: 0.04, misalignmentError: 0.005 };

describe('link model (standards.md section 4)', () => {
  it('when the fibre is 50 km at 0.2 dB/km, then eta_sys is eta_Bob / 10', () => {
    expect(systemTransmittance({ ...LIM, lengthKm: 50 })).toBeCloseTo(0.01, 12);
  });

  it('when mu = 0.5, then two or more photons occur with probability 0.090 (the issue\'s figure)', () => {
    expect(multiPhotonProbability(0.5)).toBeCloseTo(1 - 1.5 * Math.exp(-0.5), 14);
    expect(multiPhotonProbability(0.5)).toBeCloseTo(0.0902, 4);
    expect(multiPhotonProbability(1e-9)).toBeGreaterThan(0);
  });

  it('when photon-number probabilities are summed, then they make 1', () => {
    let s = 0;
    for (let n = 0; n < 40; n++) s += poissonProbability(0.5, n);
    expect(s).toBeCloseTo(1, 14);
  });

  it('when the formulas are evaluated, then D_k, R_k, e_k and E_k follow the paper', () => {
    const k = 0.5;
    const eta = 0.1;
    const D = 1 - (1 - 2 * 6e-7) * Math.exp(-eta * k);
    const st = pulseStatistics(LIM, k);
    expect(st.detection).toBeCloseTo(D, 15);
    expect(st.click).toBeCloseTo(D * 1.04, 15);
    expect(st.error).toBeCloseTo(6e-7 + 0.005 * (1 - Math.exp(-eta * k)) + (0.04 * D) / 2, 15);
    expect(st.qber).toBeCloseTo(st.error / st.click, 15);
    // Afterpulses dominate the QBER of this channel: about 2 % at 0 km.
    expect(st.qber).toBeGreaterThan(0.015);
    expect(st.qber).toBeLessThan(0.03);
  });

  it('when there is no light, then only dark counts click, with a random bit', () => {
    const st = pulseStatistics({ ...LIM, afterpulseProbability: 0 }, 0);
    expect(st.click / 1.2e-6).toBeCloseTo(1, 9);
    expect(st.qber).toBeCloseTo(0.5, 6);
    expect(photonYield(LIM, 0) / 1.2e-6).toBeCloseTo(1, 9);
    expect(photonYield(LIM, 1)).toBeCloseTo(1 - (1 - 1.2e-6) * 0.9, 15);
  });

  it('when a parameter is out of range, then the message names it', () => {
    expect(() => validateLinkParams({ ...LIM, detectorEfficiency: 0 })).toThrow(/detectorEfficiency/);
    expect(() => validateLinkParams({ ...LIM, darkCountProbability: 0.7 })).toThrow(/darkCountProbability/);
    expect(() => validateLinkParams({ ...LIM, lengthKm: -1 })).toThrow(/lengthKm/);
    expect(() => pulseStatistics(LIM, -1)).toThrow(/intensity/);
  });
});
