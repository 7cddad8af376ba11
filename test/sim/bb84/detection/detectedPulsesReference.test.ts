/**
 * Bob's measurement against the implementation it replaced (kept below verbatim as the reference; it drew every
 * Bernoulli array whole, the perIntensityBits dense lanes into an n-bit array of their own): the same bits from the
 * same stream, honest, with afterpulses, and under both attacks.
 */
import { describe, expect, it } from 'vitest';
import { depositInto } from '../../../../src/sim/bb84/common/bitSelect.js';
import { BitArray } from '../../../../src/sim/bb84/common/bits.js';
import { bernoulliBits, randomBits, seededRng, type Rng } from '../../../../src/sim/bb84/common/rng.js';
import { detectionModel, type Attack, type DetectionModel } from '../../../../src/sim/bb84/detection/detectionModel.js';
import { emitDetectedPulses, measureDetectedPulses, type MeasuredPulses } from '../../../../src/sim/bb84/detection/detectedPulses.js';
import { DEFAULT_DECOY_SOURCE } from '../../../../src/sim/bb84/source/decoySource.js';
import { limLink } from './statistics.js';

function referenceMeasure(aliceBits: BitArray, aliceBases: BitArray, intensityMasks: readonly BitArray[], model: DetectionModel, rng: Rng): MeasuredPulses {
  const n = aliceBits.length;
  const per = model.intensities;
  const bobBases = bernoulliBits(rng, n, 1 - model.source.basisXProbability);
  const afterpulse = perIntensityBits(rng, n, intensityMasks, per.map((d) => d.afterpulseShare));
  const dark = perIntensityBits(rng, n, intensityMasks, per.map((d) => (d.afterpulseShare >= 1 ? 0 : Math.min(1, d.darkShare / (1 - d.afterpulseShare)))));
  const flips = bernoulliBits(rng, n, model.photonError);
  const random = randomBits(rng, n);
  const attack = model.attack;
  const intercepted = attack.kind === 'intercept-resend' ? bernoulliBits(rng, n, attack.fraction) : null;
  const eveBases = intercepted ? randomBits(rng, n) : null;
  const eveGuesses = intercepted ? randomBits(rng, n) : null;
  const knows = attack.kind === 'photon-number-splitting' ? splitPulsesKnown(rng, intensityMasks, model, afterpulse, dark) : null;
  const bobBits = new BitArray(n);
  const eveKnows = new BitArray(n);
  const A = aliceBits.words, AB = aliceBases.words, B = bobBases.words, AP = afterpulse.words, DK = dark.words;
  const M = flips.words, R = random.words, out = bobBits.words, known = eveKnows.words;
  for (let i = 0; i < out.length; i++) {
    let basis = AB[i]!;
    let bit = A[i]!;
    if (intercepted) {
      const e = intercepted.words[i]!;
      const eb = eveBases!.words[i]!;
      const eveBit = bit ^ ((eb ^ basis) & (bit ^ eveGuesses!.words[i]!));
      known[i] = e & ~(eb ^ basis);
      basis = (basis & ~e) | (eb & e);
      bit = (bit & ~e) | (eveBit & e);
    }
    const photon = ~(AP[i]! | DK[i]!);
    const same = ~(B[i]! ^ basis);
    const photonOutcome = (same & (bit ^ M[i]!)) | (~same & R[i]!);
    out[i] = (photon & photonOutcome) | (~photon & R[i]!);
    if (knows) known[i] = knows.words[i]!;
  }
  bobBits.clearTail();
  eveKnows.clearTail();
  return { bobBits, bobBases, eveKnows };
}

function splitPulsesKnown(rng: Rng, masks: readonly BitArray[], model: DetectionModel, afterpulse: BitArray, dark: BitArray): BitArray {
  const n = afterpulse.length;
  const per = model.intensities;
  const darks = new BitArray(n);
  const photons = new BitArray(n);
  for (let i = 0; i < darks.words.length; i++) {
    darks.words[i] = dark.words[i]! & ~afterpulse.words[i]!;
    photons.words[i] = ~(dark.words[i]! | afterpulse.words[i]!);
  }
  photons.clearTail();
  const known = perIntensityBits(rng, n, masks, per.map((d) => d.eveKnowsGivenPhoton), photons);
  const ofDark = perIntensityBits(rng, n, masks, per.map((d) => d.eveKnowsGivenDark), darks);
  const ofAfterpulse = perIntensityBits(rng, n, masks, per.map((d) => d.eveKnowsGivenAfterpulse), afterpulse);
  for (let i = 0; i < known.words.length; i++) known.words[i]! |= ofDark.words[i]! | ofAfterpulse.words[i]!;
  return known;
}

function perIntensityBits(rng: Rng, n: number, masks: readonly BitArray[], probabilities: readonly number[], within?: BitArray): BitArray {
  if (!within && probabilities.every((p) => p === probabilities[0])) return bernoulliBits(rng, n, probabilities[0]!);
  const out = new BitArray(n);
  const o = out.words;
  probabilities.forEach((p, k) => {
    if (p <= 0) return;
    let lanes = masks[k]!;
    if (within) {
      lanes = new BitArray(n);
      const l = lanes.words, m = masks[k]!.words, w = within.words;
      for (let i = 0; i < l.length; i++) l[i] = m[i]! & w[i]!;
    }
    const m = lanes.words;
    const count = lanes.popcount();
    if (count === 0) return;
    if (p >= 1) {
      for (let i = 0; i < o.length; i++) o[i]! |= m[i]!;
    } else if (count > n / 4) {
      const b = bernoulliBits(rng, n, p).words;
      for (let i = 0; i < o.length; i++) o[i]! |= b[i]! & m[i]!;
    } else {
      depositInto(o, bernoulliBits(rng, count, p), m);
    }
  });
  return out;
}

describe('measureDetectedPulses against the replaced implementation', () => {
  it('when the same stream measures the same detections, then Bob bits, bases and what Eve knows are the reference ones and the stream ends alike', () => {
    const attacks: Attack[] = [{ kind: 'none' }, { kind: 'intercept-resend', fraction: 0.3 }, { kind: 'photon-number-splitting' }];
    let seed = 400;
    for (const attack of attacks) {
      for (const [L, afterpulse] of [[25, 0], [25, 0.04], [150, 0.04]] as const) {
        const model = detectionModel({ ...limLink(L), afterpulseProbability: afterpulse }, DEFAULT_DECOY_SOURCE, attack);
        for (const pulses of [0, 1000, 3e6, 4e7]) {
          const alice = emitDetectedPulses(pulses, model, seededRng(seed++));
          const a = seededRng(seed);
          const b = seededRng(seed++);
          const got = measureDetectedPulses(alice.bits, alice.bases, alice.intensityMasks, model, a);
          const want = referenceMeasure(alice.bits, alice.bases, alice.intensityMasks, model, b);
          const what = `${attack.kind} L=${L} afterpulse=${afterpulse} pulses=${pulses} (${alice.detections} detections)`;
          expect(got.bobBits.equals(want.bobBits), what).toBe(true);
          expect(got.bobBases.equals(want.bobBases), what).toBe(true);
          expect(got.eveKnows.equals(want.eveKnows), what).toBe(true);
          expect(a.nextUint32(), what).toBe(b.nextUint32());
        }
      }
    }
  });
});
