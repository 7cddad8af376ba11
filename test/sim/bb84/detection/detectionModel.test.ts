import { describe, expect, it } from 'vitest';
import { multiPhotonProbability, poissonProbability, pulseStatistics } from '../../../../src/sim/bb84/analysis/linkModel.js';
import { detectionModel, type Attack } from '../../../../src/sim/bb84/detection/detectionModel.js';
import { pnsStrategy, splitPulseDetection } from '../../../../src/sim/bb84/detection/pnsAttack.js';
import { DEFAULT_DECOY_SOURCE, siftedFraction, validateDecoySource, type DecoySource } from '../../../../src/sim/bb84/source/decoySource.js';
import { limLink } from './statistics.js';

const PNS: Attack = { kind: 'photon-number-splitting' };

describe('decoy source', () => {
  it('when the source is the default, then it is three intensities with mu1 > mu2 + mu3 and plain BB84 bases', () => {
    const [mu1, mu2, mu3] = DEFAULT_DECOY_SOURCE.intensities as [number, number, number];
    expect(mu1).toBeGreaterThan(mu2 + mu3);
    expect(mu3).toBeLessThan(0.01);
    expect(() => validateDecoySource(DEFAULT_DECOY_SOURCE)).not.toThrow();
    expect(siftedFraction(DEFAULT_DECOY_SOURCE)).toBe(0.5);
    expect(siftedFraction({ ...DEFAULT_DECOY_SOURCE, basisXProbability: 0.8 })).toBeCloseTo(0.68, 14);
  });

  it('when a source field is wrong, then the error names the field', () => {
    const bad = (s: Partial<DecoySource>): DecoySource => ({ ...DEFAULT_DECOY_SOURCE, ...s });
    expect(() => validateDecoySource(bad({ intensities: [0.1, 0.5, 0] }))).toThrow(/source\.intensities must decrease/);
    expect(() => validateDecoySource(bad({ intensities: [0.5, -0.1, 0] }))).toThrow(/source\.intensities\[1\]/);
    expect(() => validateDecoySource(bad({ intensityProbabilities: [0.7, 0.2] }))).toThrow(/source\.intensityProbabilities must list one probability per intensity/);
    expect(() => validateDecoySource(bad({ intensityProbabilities: [0.7, 0.2, 0.2] }))).toThrow(/sum to 1/);
    expect(() => validateDecoySource(bad({ basisXProbability: 1 }))).toThrow(/source\.basisXProbability/);
    expect(() => detectionModel(limLink(25), DEFAULT_DECOY_SOURCE, { kind: 'intercept-resend', fraction: 2 })).toThrow(/attack\.fraction/);
    expect(() => detectionModel({ ...limLink(25), misalignmentError: 0.7 }, DEFAULT_DECOY_SOURCE)).toThrow(/link\.misalignmentError/);
  });
});

describe('detection model (closed form)', () => {
  it('when the channel is honest, then R_k, e_k and E_k are the link model\'s, and the click causes add up to them', () => {
    for (const L of [0, 25, 50, 100]) {
      const link = limLink(L);
      const m = detectionModel(link, DEFAULT_DECOY_SOURCE);
      for (const d of m.intensities) {
        const st = pulseStatistics(link, d.intensity);
        expect(d.click).toBe(st.click);
        expect(d.error).toBe(st.error);
        expect(d.qber).toBeCloseTo(st.qber, 15);
        expect(d.afterpulseShare + d.darkShare + d.photonShare).toBeCloseTo(1, 12);
        // The draw's rule: afterpulses and dark counts give a random bit, photons alone a wrong one with e'.
        const drawnErrorRate = d.afterpulseShare / 2 + d.darkShare / 2 + d.photonShare * m.photonError;
        expect(drawnErrorRate / d.qber).toBeCloseTo(1, 10);
        expect(d.eveKnownFraction).toBe(0);
      }
    }
  });

  it('when Eve intercepts and resends a fraction f, then the QBER rises by about f · 25 % and the click rates stay', () => {
    const link = limLink(25);
    const honest = detectionModel(link, DEFAULT_DECOY_SOURCE);
    const attacked = detectionModel(link, DEFAULT_DECOY_SOURCE, { kind: 'intercept-resend', fraction: 0.4 });
    const [h, a] = [honest.intensities[0]!, attacked.intensities[0]!];
    expect(a.click).toBe(h.click);
    // Photon-borne clicks (96 % here, the rest afterpulses) get f (1/4 - e'/2) more errors.
    expect(a.qber - h.qber).toBeCloseTo(0.4 * h.photonShare * (0.25 - honest.photonError / 2), 12);
    expect(a.qber - h.qber).toBeGreaterThan(0.9 * 0.4 * 0.25);
    expect(a.qber - h.qber).toBeLessThan(0.4 * 0.25);
    expect(a.eveKnownFraction).toBe(0.2);
  });

  it('when the photon-number series is summed, then it has the limits of its definition', () => {
    // Every forwarded photon detected: the split pulses are exactly the multi-photon ones.
    expect(splitPulseDetection(0.5, 1)).toBeCloseTo(multiPhotonProbability(0.5), 15);
    // Against the sum written out term by term.
    let direct = 0;
    for (let n = 2; n < 60; n++) direct += poissonProbability(0.5, n) * (1 - 0.9 ** (n - 1));
    expect(splitPulseDetection(0.5, 0.1)).toBeCloseTo(direct, 15);
    expect(splitPulseDetection(0, 0.1)).toBe(0);
    // Large intensities converge too (the series stops past the Poisson peak).
    let big = 0;
    for (let n = 2; n < 200; n++) big += poissonProbability(30, n) * (1 - 0.9 ** (n - 1));
    expect(splitPulseDetection(30, 0.1)).toBeCloseTo(big, 12);
  });

  it('when Eve splits photon numbers, then she keeps the signal rate from 10 km on, with single photons only where multi-photon pulses run short', () => {
    const mu1 = DEFAULT_DECOY_SOURCE.intensities[0]!;
    // At 0 km she cannot: even forwarding everything, eta_Bob on n - 1 photons falls short.
    expect(pnsStrategy(limLink(0), mu1)).toMatchObject({ multiPhotonForwarding: 1, singlePhotonForwarding: 1, signalRateMatched: false });
    const at25 = pnsStrategy(limLink(25), mu1);
    expect(at25.multiPhotonForwarding).toBe(1);
    expect(at25.singlePhotonForwarding).toBeGreaterThan(0);
    expect(at25.singlePhotonForwarding).toBeLessThan(1);
    const at50 = pnsStrategy(limLink(50), mu1);
    expect(at50.singlePhotonForwarding).toBe(0);
    expect(at50.multiPhotonForwarding).toBeLessThan(1);
    for (const L of [10, 25, 50, 100]) {
      const honest = detectionModel(limLink(L), DEFAULT_DECOY_SOURCE).intensities;
      const pns = detectionModel(limLink(L), DEFAULT_DECOY_SOURCE, PNS);
      expect(pns.pns!.signalRateMatched).toBe(true);
      // The signal clicks as on the honest link, with the same errors (Bob's own only) ...
      expect(pns.intensities[0]!.click / honest[0]!.click).toBeCloseTo(1, 12);
      expect(pns.intensities[0]!.qber / honest[0]!.qber).toBeCloseTo(1, 10);
      // ... while the weak decoy clicks at another rate: what the decoy analysis sees. Less from 25 km on; at 10 km,
      // where Eve forwards two thirds of the single photons, 5 % more.
      const decoyRatio = pns.intensities[1]!.click / honest[1]!.click;
      if (L >= 25) expect(decoyRatio).toBeLessThan(0.75);
      else expect(decoyRatio).toBeGreaterThan(1.04);
    }
    // Eve knows two thirds of the signal clicks at 25 km, nearly all at 50 km (all but dark counts and afterpulses).
    expect(detectionModel(limLink(25), DEFAULT_DECOY_SOURCE, PNS).intensities[0]!.eveKnownFraction).toBeCloseTo(0.645, 2);
    expect(detectionModel(limLink(50), DEFAULT_DECOY_SOURCE, PNS).intensities[0]!.eveKnownFraction).toBeGreaterThan(0.95);
  });
});
