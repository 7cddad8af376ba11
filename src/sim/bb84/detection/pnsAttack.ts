/**
 * The photon-number-splitting (PNS) attack on a weak-pulse source (Brassard, Lütkenhaus, Mor, Sanders, PRL 85,
 * 1330 (2000)), in closed form. Eve replaces the fibre by a lossless channel and measures the photon number n of
 * every pulse without disturbing its polarisation:
 * - n >= 2: she keeps one photon and forwards the other n - 1 to Bob with probability f_multi (else she blocks the
 *   pulse); once Alice and Bob announce their bases she measures the kept photon in the right basis and knows
 *   Alice's bit of every multi-photon pulse she forwarded;
 * - n = 1: she cannot split it; she forwards it untouched with probability f_single (learning nothing) or blocks it;
 * - n = 0: nothing reaches Bob.
 * She sees photon numbers, never intensities, so one pair (f_multi, f_single) acts on every intensity. She tunes it
 * so that Bob's click rate at the signal intensity mu1 is the honest channel's: the multi-photon pulses alone
 * (f_single = 0) when they can supply that rate, else all of them (f_multi = 1) and as many single photons as make
 * up the rest. The decoy intensities, with other photon-number mixes, then click at other rates than on the honest
 * channel: that is what the decoy analysis detects. Her photons reach Bob in Alice's state, so Bob's errors are his
 * own misalignment, dark counts and afterpulses only.
 *
 * Bob's detection efficiency eta_Bob still applies to what Eve forwards: she owns the channel, not Bob's
 * laboratory (the usual PNS setting). An Eve who could also raise eta_Bob would need fewer multi-photon pulses and
 * hide at shorter distances; with eta_Bob kept she cannot supply the signal rate of a short link (on the default
 * links below about 10 km), and `pnsStrategy` says so (`signalRateMatched` false, Bob then sees fewer clicks).
 */
import { multiPhotonProbability, poissonProbability, pulseStatistics, type LinkParams } from '../analysis/linkModel.js';

/** Terms of the photon-number series are summed until they fall below this fraction of the sum. */
const SERIES_RELATIVE_TOLERANCE = 1e-17;

export interface PnsStrategy {
  /** f_multi: probability that Eve forwards the n - 1 remaining photons of a multi-photon pulse. */
  multiPhotonForwarding: number;
  /** f_single: probability that Eve forwards a single-photon pulse (whose bit she cannot learn). */
  singlePhotonForwarding: number;
  /** True when Bob's click rate at the signal intensity equals the honest channel's. */
  signalRateMatched: boolean;
}

/** What reaches Bob from pulses of one intensity under the attack (per pulse sent). */
export interface PnsPhotonDetection {
  /** A split (multi-photon) pulse whose forwarded photons Bob detects: Eve knows its bit. */
  fromSplit: number;
  /** A forwarded single photon that Bob detects: Eve knows nothing of it. */
  fromSingle: number;
  /** The pulse is a multi-photon pulse Eve split and forwarded (whatever Bob's detectors then do). */
  splitForwarded: number;
}

/**
 * Probability that a pulse of intensity k holds n >= 2 photons and that Bob (efficiency etaBob, no fibre loss)
 * detects at least one of its n - 1 forwarded photons: sum over n >= 2 of P_n(k) (1 - (1 - etaBob)^(n-1)).
 */
export function splitPulseDetection(intensity: number, etaBob: number): number {
  if (!(Number.isFinite(intensity) && intensity >= 0)) throw new RangeError(`intensity must be a finite number >= 0, got ${intensity}`);
  if (!(etaBob > 0 && etaBob <= 1)) throw new RangeError(`etaBob must be in (0, 1], got ${etaBob}`);
  if (intensity === 0) return 0;
  const logLoss = Math.log1p(-etaBob); // -Infinity when etaBob = 1: every forwarded photon is detected
  let term = poissonProbability(intensity, 2);
  let sum = 0;
  for (let n = 2; ; n++) {
    const detected = etaBob === 1 ? 1 : -Math.expm1((n - 1) * logLoss); // 1 - (1 - eta)^(n-1), no cancellation
    sum += term * detected;
    if (n > intensity && term < SERIES_RELATIVE_TOLERANCE * sum) return sum;
    term *= intensity / (n + 1);
  }
}

/** Eve's forwarding probabilities for a link and a source whose signal intensity is `signalIntensity` (mu1). */
export function pnsStrategy(link: LinkParams, signalIntensity: number): PnsStrategy {
  const etaBob = link.detectorEfficiency;
  // The honest probability that photons of a signal pulse make a detector click, from the link model:
  // D = 1 - (1 - 2 p_dc)(1 - sigma), so sigma = (D - 2 p_dc) / (1 - 2 p_dc).
  const honest = photonDetectionOf(link, signalIntensity);
  const multi = splitPulseDetection(signalIntensity, etaBob);
  if (multi >= honest) return { multiPhotonForwarding: multi === 0 ? 0 : honest / multi, singlePhotonForwarding: 0, signalRateMatched: true };
  const single = poissonProbability(signalIntensity, 1) * etaBob;
  const needed = (honest - multi) / single;
  return { multiPhotonForwarding: 1, singlePhotonForwarding: Math.min(1, needed), signalRateMatched: needed <= 1 };
}

/** What reaches Bob's detectors from a pulse of intensity k under the strategy. */
export function pnsPhotonDetection(link: LinkParams, strategy: PnsStrategy, intensity: number): PnsPhotonDetection {
  const etaBob = link.detectorEfficiency;
  return {
    fromSplit: strategy.multiPhotonForwarding * splitPulseDetection(intensity, etaBob),
    fromSingle: strategy.singlePhotonForwarding * poissonProbability(intensity, 1) * etaBob,
    splitForwarded: strategy.multiPhotonForwarding * multiPhotonProbability(intensity),
  };
}

/**
 * sigma_k: probability that the photons of an honest pulse of intensity k alone make a detector click,
 * 1 - exp(-eta_sys k), read off the link model's D_k = 1 - (1 - 2 p_dc)(1 - sigma_k).
 */
export function photonDetectionOf(link: LinkParams, intensity: number): number {
  const twoDark = 2 * link.darkCountProbability;
  if (twoDark >= 1) return 0; // every window holds a dark count: photons change nothing
  return Math.max(0, (pulseStatistics(link, intensity).detection - twoDark) / (1 - twoDark));
}

