/**
 * The detections-only draw of the decoy link against its closed form and against a pulse-by-pulse reference.
 * Every statistical check allows a stated number of standard deviations (5 unless said) of its own binomial or
 * chi-square statistic; the generators are seeded, so a run is reproducible.
 */
import { describe, expect, it } from 'vitest';
import { BitArray } from '../../../../src/sim/bb84/common/bits.js';
import { seededRng, type Rng } from '../../../../src/sim/bb84/common/rng.js';
import { detectionModel, type Attack, type DetectionModel } from '../../../../src/sim/bb84/detection/detectionModel.js';
import { drawDetectionCounts, emitDetectedPulses, intensityIndices, measureDetectedPulses } from '../../../../src/sim/bb84/detection/detectedPulses.js';
import { systemTransmittance } from '../../../../src/sim/bb84/analysis/linkModel.js';
import { BASIS_X, DEFAULT_DECOY_SOURCE, siftedFraction, type DecoySource } from '../../../../src/sim/bb84/source/decoySource.js';
import { binomialZ, chiSquareQuantile, limLink, twoSampleChiSquare } from './statistics.js';

const PNS: Attack = { kind: 'photon-number-splitting' };
/** Standard deviations a statistical check allows. */
const Z = 5;

/** Per intensity: detections, X-basis sifted detections and their errors, and the detections whose bit Eve knows. */
function tally(model: DetectionModel, pulses: number, rng: Rng): { detections: number[]; siftedX: number[]; errorsX: number[]; sifted: number; known: number[] } {
  const alice = emitDetectedPulses(pulses, model, rng);
  const bob = measureDetectedPulses(alice.bits, alice.bases, alice.intensityMasks, model, rng);
  const K = model.intensities.length;
  const out = { detections: alice.detectionsPerIntensity, siftedX: new Array<number>(K).fill(0), errorsX: new Array<number>(K).fill(0), sifted: 0, known: new Array<number>(K).fill(0) };
  const k = intensityIndices(alice.intensityMasks);
  for (let i = 0; i < alice.detections; i++) {
    if (bob.eveKnows.get(i)) out.known[k[i]!]!++;
    if (alice.bases.get(i) !== bob.bobBases.get(i)) continue;
    out.sifted++;
    if (alice.bases.get(i) !== BASIS_X) continue;
    out.siftedX[k[i]!]!++;
    if (alice.bits.get(i) !== bob.bobBits.get(i)) out.errorsX[k[i]!]!++;
  }
  return out;
}

/** Bob's half on n detections all of intensity index k (Alice's states uniform, bases with the source's bias). */
function measureOneIntensity(model: DetectionModel, k: number, n: number, rng: Rng): { siftedX: number; errorsX: number; known: number } {
  const masks = model.intensities.map((_, j) => {
    const m = new BitArray(n);
    if (j === k) m.words.fill(0xffffffff);
    return m.clearTail();
  });
  const bits = new BitArray(n);
  for (let i = 0; i < n; i++) bits.set(i, rng.nextUint32() & 1);
  const bases = new BitArray(n);
  for (let i = 0; i < n; i++) bases.set(i, rng.nextFloat() < model.source.basisXProbability ? 0 : 1);
  const bob = measureDetectedPulses(bits, bases, masks, model, rng);
  let siftedX = 0;
  let errorsX = 0;
  for (let i = 0; i < n; i++) {
    if (bases.get(i) !== BASIS_X || bob.bobBases.get(i) !== BASIS_X) continue;
    siftedX++;
    if (bits.get(i) !== bob.bobBits.get(i)) errorsX++;
  }
  return { siftedX, errorsX, known: bob.eveKnows.popcount() };
}

describe('detections-only draw of the decoy link', () => {
  it('when 10^10 pulses are counted, then the pulses per intensity are Multinomial(N, p_k) and the detections Binomial(N_k, R_k)', () => {
    const model = detectionModel(limLink(25), DEFAULT_DECOY_SOURCE);
    const N = 1e10;
    const c = drawDetectionCounts(N, model, seededRng(11));
    expect(c.pulsesPerIntensity.reduce((a, b) => a + b, 0)).toBe(N);
    model.intensities.forEach((d, k) => {
      expect(Math.abs(binomialZ(c.pulsesPerIntensity[k]!, N, d.probability))).toBeLessThan(Z);
      expect(Math.abs(binomialZ(c.detectionsPerIntensity[k]!, c.pulsesPerIntensity[k]!, d.click))).toBeLessThan(Z);
    });
  });

  it('when Alice emits a block, then her detections per intensity follow R_k, in a uniformly random order, and only they get states', () => {
    const model = detectionModel(limLink(25), DEFAULT_DECOY_SOURCE);
    const N = 2e7;
    const a = emitDetectedPulses(N, model, seededRng(12));
    expect(a.bits.length).toBe(a.detections);
    expect(a.bases.length).toBe(a.detections);
    model.intensities.forEach((d, k) => {
      expect(a.intensityMasks[k]!.popcount()).toBe(a.detectionsPerIntensity[k]);
      expect(Math.abs(binomialZ(a.detectionsPerIntensity[k]!, a.pulsesPerIntensity[k]!, d.click))).toBeLessThan(Z);
    });
    // Order: the weak decoy's detections fall evenly into ten equal slices of the block (chi-square, p = 1e-4).
    const decoy = a.intensityMasks[1]!;
    const slices = new Array<number>(10).fill(0);
    for (let i = 0; i < a.detections; i++) if (decoy.get(i)) slices[Math.floor((10 * i) / a.detections)]!++;
    const expected = a.detectionsPerIntensity[1]! / 10;
    const chi2 = slices.reduce((s, x) => s + (x - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(chiSquareQuantile(9, 3.72));
    // Alice's bases: X with probability p_X.
    expect(Math.abs(binomialZ(a.detections - a.bases.popcount(), a.detections, DEFAULT_DECOY_SOURCE.basisXProbability))).toBeLessThan(Z);
  });

  it('when Bob measures, then the X-basis QBER of every intensity is E_k (honest at 25 and 100 km, and under PNS at 50 km)', () => {
    const cases: Array<[number, Attack]> = [
      [25, { kind: 'none' }],
      [100, { kind: 'none' }],
      [50, PNS],
    ];
    let seed = 20;
    for (const [L, attack] of cases) {
      const model = detectionModel(limLink(L), DEFAULT_DECOY_SOURCE, attack);
      model.intensities.forEach((d, k) => {
        const r = measureOneIntensity(model, k, 400_000, seededRng(seed++));
        expect(Math.abs(binomialZ(r.errorsX, r.siftedX, d.qber))).toBeLessThan(Z);
      });
    }
  });

  it('when the bases are biased (p_X = 0.8), then p_X^2 + p_Z^2 of the detections are sifted and p_X^2 in X', () => {
    const source: DecoySource = { ...DEFAULT_DECOY_SOURCE, basisXProbability: 0.8 };
    const model = detectionModel(limLink(25), source);
    const t = tally(model, 2e7, seededRng(30));
    const D = t.detections.reduce((a, b) => a + b, 0);
    expect(Math.abs(binomialZ(t.sifted, D, siftedFraction(source)))).toBeLessThan(Z);
    expect(Math.abs(binomialZ(t.siftedX.reduce((a, b) => a + b, 0), D, 0.64))).toBeLessThan(Z);
  });

  it('when Eve intercepts and resends half the pulses, then the QBER rises by about 12.5 % and she knows a quarter of the bits', () => {
    const honest = detectionModel(limLink(25), DEFAULT_DECOY_SOURCE);
    const attacked = detectionModel(limLink(25), DEFAULT_DECOY_SOURCE, { kind: 'intercept-resend', fraction: 0.5 });
    const h = tally(honest, 2e7, seededRng(40));
    const a = tally(attacked, 2e7, seededRng(41));
    const qberH = h.errorsX[0]! / h.siftedX[0]!;
    const qberA = a.errorsX[0]! / a.siftedX[0]!;
    expect(Math.abs(binomialZ(a.errorsX[0]!, a.siftedX[0]!, attacked.intensities[0]!.qber))).toBeLessThan(Z);
    // About f · 25 %: the rise is f · 25 % on the photon-borne clicks (96 % here), within 5 standard deviations.
    const sd = Math.sqrt((qberA * (1 - qberA)) / a.siftedX[0]! + (qberH * (1 - qberH)) / h.siftedX[0]!);
    expect(qberA - qberH).toBeGreaterThan(0.9 * 0.125 - Z * sd);
    expect(qberA - qberH).toBeLessThan(0.125 + Z * sd);
    expect(Math.abs(binomialZ(a.known[0]!, a.detections[0]!, 0.25))).toBeLessThan(Z);
    expect(h.known.every((x) => x === 0)).toBe(true);
  });

  it('when Eve splits photon numbers at 25 and 50 km, then the signal clicks at the honest R_mu1 and the decoys far from their honest rates', () => {
    for (const L of [25, 50]) {
      const honest = detectionModel(limLink(L), DEFAULT_DECOY_SOURCE).intensities;
      const pns = detectionModel(limLink(L), DEFAULT_DECOY_SOURCE, PNS);
      const N = 1e10;
      const c = drawDetectionCounts(N, pns, seededRng(50 + L));
      // The signal: within 5 standard deviations of the honest rate.
      expect(Math.abs(binomialZ(c.detectionsPerIntensity[0]!, c.pulsesPerIntensity[0]!, honest[0]!.click))).toBeLessThan(Z);
      // The decoys: more than 10 standard deviations away (the decoy analysis sees this).
      for (const k of [1, 2]) expect(Math.abs(binomialZ(c.detectionsPerIntensity[k]!, c.pulsesPerIntensity[k]!, honest[k]!.click))).toBeGreaterThan(10);
    }
  });

  it('when Eve splits photon numbers, then Bob\'s errors are his own and Eve knows most bits at 50 km', () => {
    for (const [L, atLeast] of [
      [25, 0.6],
      [50, 0.95],
    ] as const) {
      const honest = detectionModel(limLink(L), DEFAULT_DECOY_SOURCE);
      const pns = detectionModel(limLink(L), DEFAULT_DECOY_SOURCE, PNS);
      const t = tally(pns, 5e7, seededRng(60 + L));
      // The signal's QBER is the honest E_mu1: misalignment, dark counts and afterpulses only.
      expect(Math.abs(binomialZ(t.errorsX[0]!, t.siftedX[0]!, honest.intensities[0]!.qber))).toBeLessThan(Z);
      // Eve's knowledge of the signal's bits: as the model says, and large.
      const expected = pns.intensities[0]!.eveKnownFraction;
      expect(Math.abs(binomialZ(t.known[0]!, t.detections[0]!, expected))).toBeLessThan(Z);
      expect(t.known[0]! / t.detections[0]!).toBeGreaterThan(atLeast);
    }
  });

  it('when the intensity masks do not give every detection one intensity, then Bob\'s half refuses them', () => {
    const model = detectionModel(limLink(25), DEFAULT_DECOY_SOURCE);
    const bits = new BitArray(40);
    const masks = [new BitArray(40), new BitArray(40), new BitArray(40)];
    expect(() => measureDetectedPulses(bits, bits, masks, model, seededRng(1))).toThrow(/exactly one intensity/);
    expect(() => measureDetectedPulses(bits, bits, masks.slice(1), model, seededRng(1))).toThrow(/2 intensity masks for 3 intensities/);
  });
});

/**
 * The reference: every pulse drawn on its own, photon by photon. Alice picks intensity, basis and bit; the photon
 * number is Poisson; on the honest channel each photon reaches Bob's detectors with eta_sys; under PNS Eve forwards
 * n - 1 photons of a multi-photon pulse (f_multi) or a single photon (f_single), each detected with eta_Bob; a dark
 * count fires with 2 p_dc; a window without a detection gets an afterpulse with p_ap D_k / (1 - D_k) (the link
 * model's afterpulse rate, which is a rate, not a per-photon process); Bob's outcome follows the click's cause.
 * Returns the count of detections in each category (intensity, bases, correct bit, Eve knows).
 */
function simulatePulseByPulse(pulses: number, model: DetectionModel, rng: Rng): number[] {
  const { link, source, attack } = model;
  const K = source.intensities.length;
  const counts = new Array<number>(K * 16).fill(0);
  const u = (): number => rng.nextFloat();
  const etaSys = systemTransmittance(link);
  const etaBob = link.detectorEfficiency;
  const pZ = 1 - source.basisXProbability;
  const cumulative = source.intensityProbabilities.map((_, k) => source.intensityProbabilities.slice(0, k + 1).reduce((a, b) => a + b, 0));
  for (let p = 0; p < pulses; p++) {
    const x = u();
    let k = cumulative.findIndex((c) => x < c);
    if (k < 0) k = K - 1;
    const mu = source.intensities[k]!;
    const aBasis = u() < pZ ? 1 : 0;
    const bit = u() < 0.5 ? 1 : 0;
    // Photon number by inversion of the Poisson distribution.
    let y = u();
    let pn = Math.exp(-mu);
    let n = 0;
    while (y > pn && n < 200) {
      y -= pn;
      n++;
      pn *= mu / n;
    }
    let detected = false;
    let known = false;
    if (attack.kind === 'photon-number-splitting') {
      const f = model.pns!;
      let forwarded = 0;
      if (n >= 2 && u() < f.multiPhotonForwarding) {
        forwarded = n - 1;
        known = true;
      } else if (n === 1 && u() < f.singlePhotonForwarding) forwarded = 1;
      for (let i = 0; i < forwarded; i++) if (u() < etaBob) detected = true;
    } else {
      for (let i = 0; i < n; i++) if (u() < etaSys) detected = true;
    }
    const dark = u() < 2 * link.darkCountProbability;
    const Dk = model.intensities[k]!.detection;
    const afterpulse = !detected && !dark && u() < (link.afterpulseProbability * Dk) / (1 - Dk);
    if (!detected && !dark && !afterpulse) continue;
    const bBasis = u() < pZ ? 1 : 0;
    let stateBasis = aBasis;
    let stateBit = bit;
    if (attack.kind === 'intercept-resend' && u() < attack.fraction) {
      const eveBasis = u() < 0.5 ? 1 : 0;
      stateBit = eveBasis === aBasis ? bit : u() < 0.5 ? 1 : 0;
      stateBasis = eveBasis;
      known = eveBasis === aBasis;
    }
    let bobBit: number;
    if (dark || afterpulse) bobBit = u() < 0.5 ? 1 : 0;
    else if (bBasis === stateBasis) bobBit = stateBit ^ (u() < model.photonError ? 1 : 0);
    else bobBit = u() < 0.5 ? 1 : 0;
    counts[category(k, aBasis, bBasis, bobBit === bit, known)]!++;
  }
  return counts;
}

function category(k: number, aBasis: number, bBasis: number, correct: boolean, known: boolean): number {
  return 16 * k + 8 * aBasis + 4 * bBasis + 2 * (correct ? 1 : 0) + (known ? 1 : 0);
}

/** The same categories from the detections-only draw. */
function multiplexedCategories(pulses: number, model: DetectionModel, rng: Rng): number[] {
  const alice = emitDetectedPulses(pulses, model, rng);
  const bob = measureDetectedPulses(alice.bits, alice.bases, alice.intensityMasks, model, rng);
  const k = intensityIndices(alice.intensityMasks);
  const counts = new Array<number>(model.intensities.length * 16).fill(0);
  for (let i = 0; i < alice.detections; i++) {
    counts[category(k[i]!, alice.bases.get(i), bob.bobBases.get(i), alice.bits.get(i) === bob.bobBits.get(i), bob.eveKnows.get(i) === 1)]!++;
  }
  return counts;
}

describe('detections-only draw against a pulse-by-pulse reference', () => {
  const cases: Array<[string, number, Attack, DecoySource]> = [
    ['honest, 25 km', 25, { kind: 'none' }, DEFAULT_DECOY_SOURCE],
    ['PNS, 25 km', 25, PNS, DEFAULT_DECOY_SOURCE],
    ['PNS, 50 km, p_X = 0.8', 50, PNS, { ...DEFAULT_DECOY_SOURCE, basisXProbability: 0.8 }],
    ['intercept-resend 30 %, 10 km', 10, { kind: 'intercept-resend', fraction: 0.3 }, DEFAULT_DECOY_SOURCE],
  ];
  for (const [name, L, attack, source] of cases) {
    it(`when both simulate ${name}, then the detections agree in number and in distribution over (intensity, bases, correct, Eve knows)`, () => {
      const model = detectionModel(limLink(L), source, attack);
      const pulses = 2_000_000;
      const ref = simulatePulseByPulse(pulses, model, seededRng(70 + L));
      const fast = multiplexedCategories(pulses, model, seededRng(80 + L));
      const [nRef, nFast] = [ref, fast].map((c) => c.reduce((a, b) => a + b, 0)) as [number, number];
      // Both totals are Binomial(pulses, sum p_k R_k): their difference within 5 standard deviations.
      const pClick = model.intensities.reduce((a, d) => a + d.probability * d.click, 0);
      expect(Math.abs(nRef - nFast) / Math.sqrt(2 * pulses * pClick * (1 - pClick))).toBeLessThan(Z);
      // The category distribution: two-sample chi-square below its p = 1e-4 quantile.
      const { chi2, df } = twoSampleChiSquare(fast, ref);
      expect(df).toBeGreaterThan(8);
      expect(chi2).toBeLessThan(chiSquareQuantile(df, 3.72));
    }, 60_000);
  }
});
