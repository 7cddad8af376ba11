/**
 * Stage 2: the quantum channel and Bob's detectors (weak coherent pulses over fibre), with an optional
 * intercept-resend eavesdropper.
 *
 * Model, per pulse (standards.md section 4):
 * - transmittance eta = eta_det · 10^(-alpha·L/10); the signal is detected with probability
 *   pSignal = 1 - exp(-mu·eta);
 * - a dark count fires with probability pDark and gives a uniformly random bit;
 * - on a signal detection in the basis the photon was prepared in, the bit flips with probability e_mis
 *   (misalignment); in the other basis the outcome is uniformly random;
 * - Bob picks his basis uniformly at random per pulse;
 * - Eve (intercept-resend) attacks each pulse independently with probability `eve`: she measures in a random basis
 *   (wrong basis → random result) and resends her result in her basis. She is assumed to hide by keeping Bob's click
 *   statistics unchanged, so detection probabilities do not depend on her. On sifted pulses she adds
 *   f·(1/4 + e_mis/2 - e_mis) to the signal error rate (about f·25 %).
 * When a signal detection and a dark count coincide, the signal outcome is kept. The closed-form formulas below use
 * the usual first-order approximation pClick = pSignal + pDark; `transmit` differs from them by O(pSignal·pDark).
 */
import { BitArray } from '../common/bits.js';
import { binomialSample } from '../common/binomial.js';
import { bernoulliBits, binomialCount, randomBits, type Rng } from '../common/rng.js';
import type { SourcePulses } from '../source/source.js';

export interface ChannelParams {
  /** Fibre length in km. */
  lengthKm: number;
  /** Fibre loss in dB/km (about 0.2 at 1550 nm). */
  attenuationDbPerKm: number;
  /** Detector efficiency eta_det in [0, 1]. */
  detectorEfficiency: number;
  /** Dark-count probability per pulse (detection window). */
  darkCountProbability: number;
  /** Probability e_mis that a photon detected in its own basis gives the wrong bit (about 0.01). */
  misalignmentError: number;
  /** Mean photon number mu per pulse. */
  meanPhotonNumber: number;
}

export interface ChannelFormulas {
  /** Total transmittance including the detector. */
  eta: number;
  /** Probability that the signal (not a dark count) is detected: 1 - exp(-mu·eta). */
  pSignal: number;
  /** Click probability per pulse: pSignal + pDark. */
  pClick: number;
  /** Expected QBER of the sifted key without Eve: (e_mis·pSignal + pDark/2) / pClick (0 when pClick = 0). */
  qber: number;
  /** Expected sifted bits per pulse: pClick / 2. */
  siftedPerPulse: number;
}

export function validateChannelParams(p: ChannelParams): void {
  const nonNegative = (v: number, name: string): void => {
    if (!(Number.isFinite(v) && v >= 0)) throw new RangeError(`ChannelParams.${name} must be a finite number >= 0, got ${v}`);
  };
  const probability = (v: number, name: string): void => {
    if (!(v >= 0 && v <= 1)) throw new RangeError(`ChannelParams.${name} must be in [0, 1], got ${v}`);
  };
  nonNegative(p.lengthKm, 'lengthKm');
  nonNegative(p.attenuationDbPerKm, 'attenuationDbPerKm');
  nonNegative(p.meanPhotonNumber, 'meanPhotonNumber');
  probability(p.detectorEfficiency, 'detectorEfficiency');
  probability(p.darkCountProbability, 'darkCountProbability');
  probability(p.misalignmentError, 'misalignmentError');
}

export function channelFormulas(p: ChannelParams): ChannelFormulas {
  validateChannelParams(p);
  const eta = p.detectorEfficiency * 10 ** ((-p.attenuationDbPerKm * p.lengthKm) / 10);
  const pSignal = -Math.expm1(-p.meanPhotonNumber * eta);
  const pClick = pSignal + p.darkCountProbability;
  const qber = pClick === 0 ? 0 : (p.misalignmentError * pSignal + p.darkCountProbability / 2) / pClick;
  return { eta, pSignal, pClick, qber, siftedPerPulse: pClick / 2 };
}

/** Expected sifted QBER with intercept-resend on a fraction `eve` of the pulses (same approximation as channelFormulas). */
export function qberWithEve(p: ChannelParams, eve: number): number {
  checkEve(eve);
  const { pSignal, pClick } = channelFormulas(p);
  if (pClick === 0) return 0;
  const e = p.misalignmentError;
  const signalError = (1 - eve) * e + eve * (0.25 + e / 2);
  return (pSignal * signalError + p.darkCountProbability / 2) / pClick;
}

export interface TransmitResult {
  /** 1 where Bob's detector clicked. */
  detected: BitArray;
  /** Bob's basis choice per pulse (chosen for every pulse; meaningful where detected). */
  bobBases: BitArray;
  /** Bob's measured bit per pulse (0 where nothing was detected). */
  bobBits: BitArray;
  detectedCount: number;
}

/**
 * Sends Alice's pulses through the channel to Bob, pulse by pulse, with intercept-resend on a fraction `eve` (0..1)
 * of them. All randomness comes from `rng`; the work is word-level (32 pulses per operation) with Bernoulli masks
 * drawn by geometric skipping, so 10^6 pulses take a few milliseconds.
 */
export function transmit(alice: SourcePulses, p: ChannelParams, eve: number, rng: Rng): TransmitResult {
  const n = alice.bits.length;
  if (alice.bases.length !== n) throw new RangeError(`transmit: ${n} bits but ${alice.bases.length} bases`);
  checkEve(eve);
  const { pSignal } = channelFormulas(p);
  const signal = bernoulliBits(rng, n, pSignal);
  const detected = bernoulliBits(rng, n, p.darkCountProbability);
  const dw = detected.words;
  const sw = signal.words;
  for (let i = 0; i < dw.length; i++) dw[i] = dw[i]! | sw[i]!;
  const { bobBits, bobBases } = measure(alice.bits, alice.bases, signal, detected, p.misalignmentError, eve, rng);
  return { detected, bobBases, bobBits, detectedCount: detected.popcount() };
}

export interface DetectionsOnlyResult {
  /** Pulses sent. */
  pulses: number;
  /** Pulses Bob detected; every array below has this length (one entry per detected pulse, in pulse order). */
  detectedCount: number;
  aliceBits: BitArray;
  aliceBases: BitArray;
  bobBits: BitArray;
  bobBases: BitArray;
}

/**
 * The fast path for simulating high pulse rates (e.g. a 10^8 pulses/s link in real time): draws only the detected
 * pulses. Their number is Binomial(pulses, pClickExact) with pClickExact = 1 - (1 - pSignal)(1 - pDark); each
 * detected pulse is a signal detection with probability pSignal / pClickExact, otherwise a dark count; Alice's bit
 * and basis, Bob's basis, Eve and misalignment are then drawn as in `transmit`. The result has the same joint
 * distribution as `prepareSource` + `transmit` restricted to the detected pulses, at a cost proportional to the
 * detections instead of the pulses. Sift it with an all-ones detection mask (`allDetected(detectedCount)`).
 */
export function transmitDetectionsOnly(pulses: number, p: ChannelParams, eve: number, rng: Rng): DetectionsOnlyResult {
  if (!Number.isSafeInteger(pulses) || pulses < 0) throw new RangeError(`transmitDetectionsOnly: pulses must be a non-negative integer, got ${pulses}`);
  checkEve(eve);
  const { pSignal } = channelFormulas(p);
  const pClickExact = 1 - (1 - pSignal) * (1 - p.darkCountProbability);
  const k = binomialCount(rng, pulses, pClickExact);
  const aliceBits = randomBits(rng, k);
  const aliceBases = randomBits(rng, k);
  const signal = bernoulliBits(rng, k, pClickExact === 0 ? 0 : Math.min(1, pSignal / pClickExact));
  const detected = allDetected(k);
  const { bobBits, bobBases } = measure(aliceBits, aliceBases, signal, detected, p.misalignmentError, eve, rng);
  return { pulses, detectedCount: k, aliceBits, aliceBases, bobBits, bobBases };
}

/** An all-ones detection mask of n pulses. */
export function allDetected(n: number): BitArray {
  const out = new BitArray(n);
  out.words.fill(0xffffffff);
  return out.clearTail();
}

function checkEve(eve: number): void {
  if (!(eve >= 0 && eve <= 1)) throw new RangeError(`eve (fraction of attacked pulses) must be in [0, 1], got ${eve}`);
}

/**
 * Bob's outcomes, 32 pulses per step. `signal` marks pulses whose photon was detected, `detected` all clicks
 * (signal or dark). Outside `detected` Bob's bit is 0.
 */
function measure(aliceBits: BitArray, aliceBases: BitArray, signal: BitArray, detected: BitArray, eMis: number, eve: number, rng: Rng): { bobBits: BitArray; bobBases: BitArray } {
  const n = aliceBits.length;
  const flips = bernoulliBits(rng, n, eMis);
  const bobBases = randomBits(rng, n);
  const random = randomBits(rng, n); // outcome of a wrong-basis measurement or of a dark count (never both)
  const attacked = eve > 0 ? bernoulliBits(rng, n, eve) : null;
  const eveBases = eve > 0 ? randomBits(rng, n) : null;
  const eveRandom = eve > 0 ? randomBits(rng, n) : null;
  const bobBits = new BitArray(n);
  const A = aliceBits.words, AB = aliceBases.words, S = signal.words, D = detected.words, M = flips.words;
  const B = bobBases.words, R = random.words, out = bobBits.words;
  for (let i = 0; i < out.length; i++) {
    let basis = AB[i]!;
    let bit = A[i]!;
    if (attacked) {
      const e = attacked.words[i]!;
      const eb = eveBases!.words[i]!;
      // Eve reads Alice's bit in her basis, a random bit in the other; she resends her bit in her basis.
      const eveBit = bit ^ ((eb ^ basis) & (bit ^ eveRandom!.words[i]!));
      basis = (basis & ~e) | (eb & e);
      bit = (bit & ~e) | (eveBit & e);
    }
    const same = ~(B[i]! ^ basis);
    const r = R[i]!;
    const signalOutcome = (same & (bit ^ M[i]!)) | (~same & r);
    const s = S[i]!;
    out[i] = ((s & signalOutcome) | (~s & r)) & D[i]!;
  }
  return { bobBits, bobBases };
}

// ---- the two halves of the detections-only channel (Alice's module and Bob's module) ---------------------------

/**
 * Exact probability that a pulse makes Bob's detector click: 1 - (1 - pSignal)(1 - pDark) (signal and dark count
 * independent). `transmitDetectionsOnly` draws its detection count with it.
 */
export function clickProbabilityExact(p: ChannelParams): number {
  const { pSignal } = channelFormulas(p);
  return 1 - (1 - pSignal) * (1 - p.darkCountProbability);
}

/**
 * Alice's half of the detections-only channel: how many of `pulses` pulses will click, Binomial(pulses,
 * pClickExact). Loss does not depend on the state sent, so it may be drawn at the source; only the detected pulses
 * then need a state (randomBits for bits and bases) and a measurement (`receiveDetections`).
 */
export function drawDetectionCount(pulses: number, p: ChannelParams, rng: Rng): number {
  if (!Number.isSafeInteger(pulses) || pulses < 0) throw new RangeError(`drawDetectionCount: pulses must be a non-negative integer, got ${pulses}`);
  return binomialSample(rng, pulses, clickProbabilityExact(p));
}

export interface ReceivedDetections {
  /** Bob's measured bit per detected pulse. */
  bobBits: BitArray;
  /** Bob's basis per detected pulse. */
  bobBases: BitArray;
}

/**
 * Bob's half of the detections-only channel, for pulses already known to click (Alice's states for them): each is a
 * signal detection with probability pSignal / pClickExact, otherwise a dark count (random bit); intercept-resend on a
 * fraction `eve`, misalignment and Bob's random basis as in `transmit`. `drawDetectionCount` + random states +
 * this function has the same distribution as `transmitDetectionsOnly` (which is the two halves in one call, drawing
 * from one generator in the same order).
 */
export function receiveDetections(aliceBits: BitArray, aliceBases: BitArray, p: ChannelParams, eve: number, rng: Rng): ReceivedDetections {
  const k = aliceBits.length;
  if (aliceBases.length !== k) throw new RangeError(`receiveDetections: ${k} bits but ${aliceBases.length} bases`);
  checkEve(eve);
  const { pSignal } = channelFormulas(p);
  const pClickExact = clickProbabilityExact(p);
  const signal = bernoulliBits(rng, k, pClickExact === 0 ? 0 : Math.min(1, pSignal / pClickExact));
  return measure(aliceBits, aliceBases, signal, allDetected(k), p.misalignmentError, eve, rng);
}
