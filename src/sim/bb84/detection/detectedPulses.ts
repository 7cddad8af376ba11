/**
 * The decoy-state link simulated by its detections only, in the two halves the two-module protocol splits it into.
 * A block of 10^8-10^9 pulses costs what its detections cost (a few per cent of the pulses at most), not what its
 * pulses would: loss does not depend on the state sent, so no undetected pulse ever gets a state.
 *
 * Alice's module (`emitDetectedPulses`): the pulses per intensity N_k are Multinomial(N, p_k), the detections per
 * intensity Binomial(N_k, R_k) with R_k from the detection model (honest or attacked channel), their order in time
 * a uniformly random interleaving; only the detected pulses then get Alice's bit and basis.
 * Bob's module (`measureDetectedPulses`): for each detected pulse, told its intensity by the simulated quantum
 * channel, it draws Bob's basis, what caused the click (photons, a dark count, an afterpulse; with the shares of
 * detectionModel.ts) and the outcome, and marks whether Eve knows the bit (attacks only; never used by the protocol).
 * Together the two halves have the distribution of a pulse-by-pulse simulation restricted to the detected pulses.
 */
import { BitArray } from '../common/bits.js';
import { binomialSample, multinomialSample } from '../common/binomial.js';
import { depositInto, randomArrangement } from '../common/randomSubset.js';
import { bernoulliBits, orBernoulliBits, randomBits, type Rng } from '../common/rng.js';
import { ScratchWords } from '../common/scratch.js';
import type { DetectionModel } from './detectionModel.js';

export interface DetectionCounts {
  /** Pulses Alice sent. */
  pulses: number;
  /** N_k: pulses sent at each intensity (the source's order). */
  pulsesPerIntensity: number[];
  /** Of them, the pulses Bob detected. */
  detectionsPerIntensity: number[];
  /** All detections. */
  detections: number;
}

/** How many pulses Alice sends at each intensity and how many of them Bob detects (no states drawn). */
export function drawDetectionCounts(pulses: number, model: DetectionModel, rng: Rng): DetectionCounts {
  if (!Number.isSafeInteger(pulses) || pulses < 0) throw new RangeError(`pulses must be a non-negative integer, got ${pulses}`);
  const perIntensity = model.intensities;
  const pulsesPerIntensity = multinomialSample(rng, pulses, perIntensity.map((d) => d.probability));
  const detectionsPerIntensity = pulsesPerIntensity.map((n, k) => binomialSample(rng, n, perIntensity[k]!.click));
  return { pulses, pulsesPerIntensity, detectionsPerIntensity, detections: detectionsPerIntensity.reduce((a, b) => a + b, 0) };
}

export interface DetectedPulses extends DetectionCounts {
  /**
   * One mask per intensity over the detections (in time order): intensityMasks[k] is 1 where the detected pulse was
   * sent at intensity k. The masks are disjoint and cover every detection.
   */
  intensityMasks: BitArray[];
  /** Alice's bit per detected pulse. */
  bits: BitArray;
  /** Alice's basis per detected pulse: BASIS_X (0, probability p_X) or BASIS_Z (1). */
  bases: BitArray;
}

/** Alice's half: the detection counts, then the intensity, bit and basis of every detected pulse. */
export function emitDetectedPulses(pulses: number, model: DetectionModel, rng: Rng): DetectedPulses {
  const counts = drawDetectionCounts(pulses, model, rng);
  const n = counts.detections;
  const intensityMasks = randomArrangement(rng, counts.detectionsPerIntensity);
  const bits = randomBits(rng, n);
  const bases = bernoulliBits(rng, n, 1 - model.source.basisXProbability);
  return { ...counts, intensityMasks, bits, bases };
}

export interface MeasuredPulses {
  /** Bob's bit per detected pulse. */
  bobBits: BitArray;
  /** Bob's basis per detected pulse (same bias p_X as Alice's). */
  bobBases: BitArray;
  /** 1 where Eve knows Alice's bit of the pulse (tests and stats only; the protocol never reads it). */
  eveKnows: BitArray;
}

/**
 * Bob's half, for pulses already known to click: Alice's bit, basis and intensity per detected pulse (the simulated
 * quantum channel hands them to Bob's module, which must wipe them once it has drawn Bob's outcomes).
 *
 * Per detection of intensity k: Bob's basis (X with probability p_X); the cause of the click, an afterpulse
 * (afterpulseShare_k), else a dark count (darkShare_k of all clicks), else photons alone; in the matching basis a
 * photon-borne click gives Alice's bit flipped with probability e' = e_mis / (1 - 2 p_dc), every other click (and
 * every click in the other basis) a uniformly random bit. So the wrong-bit probability of a matching-basis click is
 * exactly E_k = e_k / R_k (detectionModel.ts explains the shares). Intercept-resend replaces the photon's state by
 * Eve's; under photon-number splitting Eve knows the bit of a click with the probability the model gives for its
 * cause (eveKnowsGivenPhoton_k, eveKnowsGivenDark_k, eveKnowsGivenAfterpulse_k).
 */
export function measureDetectedPulses(aliceBits: BitArray, aliceBases: BitArray, intensityMasks: readonly BitArray[], model: DetectionModel, rng: Rng): MeasuredPulses {
  const n = aliceBits.length;
  if (aliceBases.length !== n) throw new RangeError(`measureDetectedPulses: ${n} bits but ${aliceBases.length} bases`);
  checkIntensityMasks(intensityMasks, n, model.intensities.length);
  const per = model.intensities;
  const nWords = (n + 31) >>> 5;
  const bobBases = bernoulliBits(rng, n, 1 - model.source.basisXProbability);
  // The draws that only decide Bob's outcomes live in reused words (zeroed afterwards), not in fresh arrays.
  return scratch.with(4 * nWords, (space) => {
    const afterpulse = new BitArray(n, space.subarray(0, nWords));
    perIntensityBits(rng, n, intensityMasks, per.map((d) => d.afterpulseShare), afterpulse.words);
    // A dark count given no afterpulse, so that dark clicks are darkShare_k of all clicks.
    const dark = new BitArray(n, space.subarray(nWords, 2 * nWords));
    perIntensityBits(rng, n, intensityMasks, per.map((d) => (d.afterpulseShare >= 1 ? 0 : Math.min(1, d.darkShare / (1 - d.afterpulseShare)))), dark.words);
    const M = space.subarray(2 * nWords, 3 * nWords);
    orBernoulliBits(rng, M, n, model.photonError); // flips
    const R = space.subarray(3 * nWords, 4 * nWords); // the outcome of a random-bit click (never two uses on one detection)
    rng.fillWords(R);
    if (n % 32 !== 0) R[nWords - 1]! &= (2 ** (n % 32) - 1) >>> 0;
    const attack = model.attack;
    const intercepted = attack.kind === 'intercept-resend' ? bernoulliBits(rng, n, attack.fraction) : null;
    const eveBases = intercepted ? randomBits(rng, n) : null;
    const eveGuesses = intercepted ? randomBits(rng, n) : null;
    const knows = attack.kind === 'photon-number-splitting' ? splitPulsesKnown(rng, intensityMasks, model, afterpulse, dark) : null;

    const bobBits = new BitArray(n);
    const eveKnows = new BitArray(n);
    const A = aliceBits.words, AB = aliceBases.words, B = bobBases.words, AP = afterpulse.words, DK = dark.words;
    const out = bobBits.words, known = eveKnows.words;
    for (let i = 0; i < out.length; i++) {
      let basis = AB[i]!;
      let bit = A[i]!;
      if (intercepted) {
        const e = intercepted.words[i]!;
        const eb = eveBases!.words[i]!;
        // Eve reads Alice's bit in her own basis, a random bit in the other, and resends it in her basis.
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
  });
}

/** Reused words for measureDetectedPulses's draws (common/scratch.ts). */
const scratch = new ScratchWords();

/** Under photon-number splitting: whether Eve knows each bit, drawn with the probability for the click's cause. */
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
  const known = new BitArray(n);
  const ofDark = new BitArray(n);
  const ofAfterpulse = new BitArray(n);
  perIntensityBits(rng, n, masks, per.map((d) => d.eveKnowsGivenPhoton), known.words, photons);
  perIntensityBits(rng, n, masks, per.map((d) => d.eveKnowsGivenDark), ofDark.words, darks);
  perIntensityBits(rng, n, masks, per.map((d) => d.eveKnowsGivenAfterpulse), ofAfterpulse.words, afterpulse);
  for (let i = 0; i < known.words.length; i++) known.words[i]! |= ofDark.words[i]! | ofAfterpulse.words[i]!;
  return known;
}

/** The intensity index of every detection (the masks as one byte per detection, e.g. for the wire or for stats). */
export function intensityIndices(intensityMasks: readonly BitArray[]): Uint8Array {
  const n = intensityMasks[0]?.length ?? 0;
  const out = new Uint8Array(n);
  intensityMasks.forEach((mask, k) => {
    if (k === 0) return;
    const w = mask.words;
    for (let i = 0; i < w.length; i++) {
      let word = w[i]!;
      while (word !== 0) {
        const b = 31 - Math.clz32(word & -word);
        out[32 * i + b] = k;
        word &= word - 1;
      }
    }
  });
  return out;
}

/**
 * Bernoulli bits whose probability depends on the intensity of each detection, needed only on the lanes of
 * `within` (all lanes when absent; elsewhere the result is 0), ORed into `o` (zero beforehand). An intensity whose lanes are most of the block draws
 * over all of them; a sparse one draws only as many bits as it has lanes and deposits them there, so rare decoys and
 * rare click causes cost what they count.
 */
function perIntensityBits(rng: Rng, n: number, masks: readonly BitArray[], probabilities: readonly number[], o: Uint32Array, within?: BitArray): void {
  if (!within && probabilities.every((p) => p === probabilities[0])) return orBernoulliBits(rng, o, n, probabilities[0]!);
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
      for (let i = 0; i < m.length; i++) o[i]! |= m[i]!;
    } else if (count > n / DENSE_LANES_DIVISOR) {
      orBernoulliBits(rng, o, n, p, m);
    } else {
      depositInto(o, bernoulliBits(rng, count, p), m);
    }
  });
}

/** Lanes of one intensity above n / this are drawn over the whole block (masking is then cheaper than depositing). */
const DENSE_LANES_DIVISOR = 4;

function checkIntensityMasks(masks: readonly BitArray[], n: number, intensities: number): void {
  if (masks.length !== intensities) throw new RangeError(`measureDetectedPulses: ${masks.length} intensity masks for ${intensities} intensities`);
  masks.forEach((mask, k) => {
    if (mask.length !== n) throw new RangeError(`measureDetectedPulses: intensity mask ${k} has ${mask.length} bits for ${n} detections`);
  });
  const words = (n + 31) >>> 5;
  const lastFull = n % 32 === 0 ? 0xffffffff : (2 ** (n % 32) - 1) >>> 0;
  const W = masks.map((m) => m.words);
  let bad = 0;
  for (let i = 0; i < words; i++) {
    let seen = 0;
    for (let k = 0; k < W.length; k++) {
      const w = W[k]![i]!;
      bad |= seen & w; // an overlap
      seen |= w;
    }
    bad |= ~seen & (i === words - 1 ? lastFull : 0xffffffff); // a detection without intensity
  }
  if (bad !== 0) throw new RangeError('measureDetectedPulses: the intensity masks must give every detection exactly one intensity');
}
