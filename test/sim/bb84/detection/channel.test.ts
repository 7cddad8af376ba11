import { describe, expect, it } from 'vitest';
import { channelFormulas, qberWithEve, transmit, transmitDetectionsOnly, allDetected, type ChannelParams } from '../../../../src/sim/bb84/detection/channel.js';
import { seededRng } from '../../../../src/sim/bb84/common/rng.js';
import { sift, siftBob, aliceSiftReply, bobSiftRequest } from '../../../../src/sim/bb84/sifting/sift.js';
import { prepareSource } from '../../../../src/sim/bb84/source/source.js';

const SHORT: ChannelParams = { lengthKm: 5, attenuationDbPerKm: 0.2, detectorEfficiency: 0.5, darkCountProbability: 1e-5, misalignmentError: 0.01, meanPhotonNumber: 0.8 };
const MEDIUM: ChannelParams = { lengthKm: 50, attenuationDbPerKm: 0.2, detectorEfficiency: 0.2, darkCountProbability: 1e-4, misalignmentError: 0.02, meanPhotonNumber: 0.5 };
const NOISY: ChannelParams = { lengthKm: 20, attenuationDbPerKm: 0.2, detectorEfficiency: 0.5, darkCountProbability: 0.01, misalignmentError: 0.01, meanPhotonNumber: 0.1 };

/** Runs source + channel + sifting and measures click rate and sifted QBER. */
function measure(p: ChannelParams, pulses: number, eve: number, seed: number): { clicks: number; sifted: number; errors: number } {
  const rng = seededRng(seed);
  const alice = prepareSource(pulses, rng);
  const bob = transmit(alice, p, eve, rng);
  const { sifted, kept } = sift(alice.bits, alice.bases, bob.bobBases, bob.detected);
  const req = bobSiftRequest(bob.detected, bob.bobBases);
  const bobKey = siftBob(bob.bobBits, bob.detected, aliceSiftReply(alice.bases, req));
  expect(kept.popcount()).toBe(sifted.length);
  return { clicks: bob.detectedCount, sifted: sifted.length, errors: sifted.hammingDistance(bobKey) };
}

/** 5 sigma of a binomial proportion plus the formulas' first-order approximation in pSignal·pDark. */
function tolerance(p: number, n: number, params: ChannelParams): number {
  const f = channelFormulas(params);
  return 5 * Math.sqrt((p * (1 - p)) / n) + (2 * f.pSignal * params.darkCountProbability) / f.pClick;
}

describe('channelFormulas', () => {
  it('when the link is lossless and perfect, then eta = 1, pClick = 1 - exp(-mu), QBER = 0', () => {
    const f = channelFormulas({ lengthKm: 0, attenuationDbPerKm: 0.2, detectorEfficiency: 1, darkCountProbability: 0, misalignmentError: 0, meanPhotonNumber: 1 });
    expect(f.eta).toBe(1);
    expect(f.pClick).toBeCloseTo(1 - Math.exp(-1), 12);
    expect(f.qber).toBe(0);
    expect(f.siftedPerPulse).toBeCloseTo(f.pClick / 2, 15);
  });

  it('when the fibre is 50 km at 0.2 dB/km, then the transmittance drops by 10 dB', () => {
    expect(channelFormulas(MEDIUM).eta).toBeCloseTo(0.2 * 0.1, 12);
  });

  it('when only dark counts click, then QBER is 1/2', () => {
    expect(channelFormulas({ ...MEDIUM, meanPhotonNumber: 0 }).qber).toBeCloseTo(0.5, 12);
  });

  it('when a parameter is out of range, then it throws', () => {
    expect(() => channelFormulas({ ...MEDIUM, detectorEfficiency: 1.5 })).toThrow(RangeError);
    expect(() => channelFormulas({ ...MEDIUM, lengthKm: -1 })).toThrow(RangeError);
  });
});

describe('transmit', () => {
  it('when simulating a few links, then the click rate and sifted QBER are within 5 sigma of the formulas', () => {
    for (const [params, pulses] of [[SHORT, 200_000], [MEDIUM, 2_000_000], [NOISY, 1_000_000]] as const) {
      const f = channelFormulas(params);
      const m = measure(params, pulses, 0, 1);
      expect(Math.abs(m.clicks / pulses - f.pClick), `clicks ${JSON.stringify(params)}`).toBeLessThan(tolerance(f.pClick, pulses, params));
      expect(Math.abs(m.sifted / m.clicks - 0.5), 'sifted half of clicks').toBeLessThan(5 * Math.sqrt(0.25 / m.clicks));
      expect(Math.abs(m.errors / m.sifted - f.qber), `qber ${JSON.stringify(params)}`).toBeLessThan(tolerance(f.qber, m.sifted, params));
    }
  });

  it('when Eve intercepts and resends every pulse, then the sifted QBER is about 25 % plus the baseline', () => {
    const m = measure(SHORT, 200_000, 1, 2);
    const expected = qberWithEve(SHORT, 1);
    expect(expected).toBeGreaterThan(0.25);
    expect(expected).toBeLessThan(0.26);
    expect(Math.abs(m.errors / m.sifted - expected)).toBeLessThan(tolerance(expected, m.sifted, SHORT));
  });

  it('when Eve attacks 20 % of the pulses, then the sifted QBER rises by about 5 points', () => {
    const base = measure(SHORT, 400_000, 0, 3);
    const attacked = measure(SHORT, 400_000, 0.2, 4);
    const rise = attacked.errors / attacked.sifted - base.errors / base.sifted;
    const expectedRise = qberWithEve(SHORT, 0.2) - qberWithEve(SHORT, 0);
    expect(expectedRise).toBeCloseTo(0.05, 2);
    expect(Math.abs(rise - expectedRise)).toBeLessThan(tolerance(0.06, attacked.sifted, SHORT) + tolerance(0.01, base.sifted, SHORT));
  });

  it('when run twice with the same seed, then the results are identical', () => {
    const run = () => {
      const rng = seededRng(99);
      const alice = prepareSource(10_000, rng);
      return transmit(alice, SHORT, 0.5, rng);
    };
    const a = run();
    const b = run();
    expect(a.detected.equals(b.detected) && a.bobBits.equals(b.bobBits) && a.bobBases.equals(b.bobBases)).toBe(true);
    expect(a.detectedCount).toBe(b.detectedCount);
  });

  it('when a pulse is not detected, then Bob has no bit for it', () => {
    const rng = seededRng(5);
    const alice = prepareSource(50_000, rng);
    const bob = transmit(alice, MEDIUM, 0, rng);
    for (let i = 0; i < bob.bobBits.words.length; i++) expect(bob.bobBits.words[i]! & ~bob.detected.words[i]!).toBe(0);
    expect(bob.detectedCount).toBe(bob.detected.popcount());
  });

  it('when 10^6 pulses are sent, then transmit takes well under 100 ms', () => {
    const rng = seededRng(6);
    const alice = prepareSource(1_000_000, rng);
    transmit(alice, MEDIUM, 0.1, rng); // warm-up
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      transmit(alice, MEDIUM, 0.1, rng);
      times.push(performance.now() - t0);
    }
    times.sort((x, y) => x - y);
    expect(times[2]).toBeLessThan(100);
  });

  it('when inputs are inconsistent, then it throws', () => {
    const rng = seededRng(7);
    const alice = prepareSource(100, rng);
    expect(() => transmit({ bits: alice.bits, bases: prepareSource(99, rng).bases }, SHORT, 0, rng)).toThrow(RangeError);
    expect(() => transmit(alice, SHORT, 1.1, rng)).toThrow(RangeError);
  });
});

describe('transmitDetectionsOnly', () => {
  it('when simulating 10^7 pulses, then the detection count and sifted QBER match the formulas, with and without Eve', () => {
    for (const [params, eve] of [[MEDIUM, 0], [NOISY, 0], [SHORT, 0.5]] as const) {
      const pulses = 10_000_000;
      const f = channelFormulas(params);
      const d = transmitDetectionsOnly(pulses, params, eve, seededRng(8));
      expect(Math.abs(d.detectedCount / pulses - f.pClick)).toBeLessThan(tolerance(f.pClick, pulses, params));
      const detected = allDetected(d.detectedCount);
      const { sifted } = sift(d.aliceBits, d.aliceBases, d.bobBases, detected);
      const bobKey = siftBob(d.bobBits, detected, aliceSiftReply(d.aliceBases, bobSiftRequest(detected, d.bobBases)));
      const expected = qberWithEve(params, eve);
      expect(Math.abs(sifted.hammingDistance(bobKey) / sifted.length - expected), JSON.stringify({ params, eve })).toBeLessThan(tolerance(expected, sifted.length, params));
    }
  });
});
