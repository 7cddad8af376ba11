/**
 * Bob's clicks per intensity in closed form: the link model of analysis/linkModel.ts (Lim et al. 2014, sec. IV;
 * standards.md section 4) applied to a decoy source, on the honest channel or under an attack. The detections-only
 * draw (detectedPulses.ts) samples exactly these probabilities.
 *
 * How a click arises (per pulse of intensity k, two threshold detectors, matching basis):
 * - photons alone (probability (1 - 2 p_dc) sigma_k, sigma_k = 1 - exp(-eta_sys k) on the honest channel): the
 *   detector of Alice's bit fires, except that the photon lands in the other one with probability
 *   e_mis / (1 - 2 p_dc);
 * - a dark count in the window (probability 2 p_dc: one of the two detectors), whether or not photons arrive too:
 *   a random bit. This covers double clicks (a photon in one detector, a dark count in the other), which get a
 *   random bit;
 * - an afterpulse (R_k - D_k = p_ap D_k): a random bit.
 * These add up to the link model exactly: D_k = 2 p_dc + (1 - 2 p_dc) sigma_k = 1 - (1 - 2 p_dc)(1 - sigma_k),
 * R_k = D_k (1 + p_ap) and errors e_mis sigma_k + p_dc + p_ap D_k / 2 = e_k. (Counting a photon that coincides
 * with a dark count as a random bit, and raising e_mis by 1 / (1 - 2 p_dc), a relative 1e-6, is what makes the
 * expectation equal Lim's first-order e_k, which counts p_dc errors whatever the photons do.) In the other basis
 * every click gives a random bit.
 *
 * Attacks (the protocol never sees which; tests and stats do):
 * - intercept-resend on a fraction f of the pulses: Eve measures in a uniformly random basis and resends her
 *   result; on photon-borne clicks in the matching basis she adds f (1/4 - e'/2) to the error probability (about
 *   f · 25 % QBER) and knows the bit when her basis was Alice's (f/2 of the pulses). Click rates are unchanged (she
 *   is assumed to hide in them).
 * - photon-number splitting (pnsAttack.ts): a lossless channel replaces the fibre, so sigma_k becomes what Eve
 *   forwards; the click and error probabilities keep the link model's form with that sigma_k.
 */
import { pulseStatistics, systemTransmittance, validateLinkParams, type LinkParams } from '../analysis/linkModel.js';
import { validateDecoySource, type DecoySource } from '../source/decoySource.js';
import { photonDetectionOf, pnsPhotonDetection, pnsStrategy, type PnsStrategy } from './pnsAttack.js';

export type Attack =
  | { kind: 'none' }
  /** Eve measures and resends a fraction `fraction` (0..1) of the pulses. */
  | { kind: 'intercept-resend'; fraction: number }
  | { kind: 'photon-number-splitting' };

export const NO_ATTACK: Attack = { kind: 'none' };

/** Closed-form probabilities of one pulse of one intensity at Bob's detectors. */
export interface IntensityDetection {
  /** Mean photon number k. */
  intensity: number;
  /** p_k: probability that Alice sends this intensity. */
  probability: number;
  /** sigma_k: probability that the pulse's photons alone make a detector click. */
  photonDetection: number;
  /** D_k: a detector clicks (photons or dark counts). */
  detection: number;
  /** R_k: Bob records a click (D_k with afterpulses). */
  click: number;
  /** e_k: a click in the matching basis with the wrong bit (with the attack's errors). */
  error: number;
  /** E_k = e_k / R_k. */
  qber: number;
  /** Of the clicks: the share of afterpulses, of windows with a dark count, and of photons alone (sum 1). */
  afterpulseShare: number;
  darkShare: number;
  photonShare: number;
  /** Probability that Eve knows the bit of a photon-borne click (PNS: it came from a pulse she split). */
  eveKnowsGivenPhoton: number;
  /** ... of a click with a dark count (PNS: the pulse was split, whatever its photons did). */
  eveKnowsGivenDark: number;
  /** ... of an afterpulse click (PNS: the pulse was split but its photons were not detected). */
  eveKnowsGivenAfterpulse: number;
  /** Expected fraction of this intensity's clicks whose bit Eve knows. */
  eveKnownFraction: number;
}

export interface DetectionModel {
  link: LinkParams;
  source: DecoySource;
  attack: Attack;
  /** One entry per intensity of the source, in its order (signal first). */
  intensities: IntensityDetection[];
  /** e' = e_mis / (1 - 2 p_dc): wrong-bit probability of a photon-borne click in the matching basis. */
  photonError: number;
  /** Under photon-number splitting: Eve's forwarding probabilities. */
  pns?: PnsStrategy;
}

export function validateAttack(attack: Attack): void {
  switch (attack.kind) {
    case 'none':
    case 'photon-number-splitting':
      return;
    case 'intercept-resend':
      if (!(attack.fraction >= 0 && attack.fraction <= 1)) throw new RangeError(`attack.fraction (pulses intercepted and resent) must be in [0, 1], got ${attack.fraction}`);
      return;
    default:
      throw new RangeError(`attack.kind must be none, intercept-resend or photon-number-splitting, got ${String((attack as { kind: unknown }).kind)}`);
  }
}

/** The per-intensity click model of a link, a source and an attack. */
export function detectionModel(link: LinkParams, source: DecoySource, attack: Attack = NO_ATTACK): DetectionModel {
  validateLinkParams(link);
  validateDecoySource(source);
  validateAttack(attack);
  const twoDark = 2 * link.darkCountProbability;
  const photonError = Math.min(1, link.misalignmentError / (1 - twoDark));
  const pns = attack.kind === 'photon-number-splitting' ? pnsStrategy(link, source.intensities[0]!) : undefined;
  const intensities = source.intensities.map((k, i): IntensityDetection => {
    let sigma: number;
    let stats: { detection: number; click: number; error: number };
    let knows = { photon: 0, dark: 0, afterpulse: 0 };
    if (pns) {
      const d = pnsPhotonDetection(link, pns, k);
      sigma = d.fromSplit + d.fromSingle;
      stats = statisticsForPhotonDetection(link, sigma);
      knows = {
        photon: sigma === 0 ? 0 : d.fromSplit / sigma,
        // A dark count is independent of the pulse; an afterpulse clicks only where the pulse's photons did not.
        dark: d.splitForwarded,
        afterpulse: Math.max(0, (d.splitForwarded - d.fromSplit) / (1 - sigma)),
      };
    } else {
      sigma = photonDetectionOf(link, k);
      stats = pulseStatistics(link, k);
      if (attack.kind === 'intercept-resend') knows = { photon: attack.fraction / 2, dark: attack.fraction / 2, afterpulse: attack.fraction / 2 };
    }
    const photonClicks = (1 - twoDark) * sigma;
    let error = stats.error;
    if (attack.kind === 'intercept-resend') error += attack.fraction * photonClicks * (0.25 - photonError / 2);
    const click = stats.click;
    const share = (x: number): number => (click === 0 ? 0 : x / click);
    const photonShare = share(photonClicks);
    const afterpulseShare = share(click - stats.detection);
    const darkShare = share(Math.min(twoDark, stats.detection));
    return {
      intensity: k,
      probability: source.intensityProbabilities[i]!,
      photonDetection: sigma,
      detection: stats.detection,
      click,
      error,
      qber: share(error),
      afterpulseShare,
      darkShare,
      photonShare,
      eveKnowsGivenPhoton: knows.photon,
      eveKnowsGivenDark: knows.dark,
      eveKnowsGivenAfterpulse: knows.afterpulse,
      eveKnownFraction: photonShare * knows.photon + darkShare * knows.dark + afterpulseShare * knows.afterpulse,
    };
  });
  return { link, source, attack, intensities, photonError, ...(pns ? { pns } : {}) };
}

/** R = sum_k p_k R_k: probability that a pulse (any intensity) makes Bob click. */
export function clickProbabilityPerPulse(model: DetectionModel): number {
  return model.intensities.reduce((a, d) => a + d.probability * d.click, 0);
}

/**
 * The link model's D, R and e for a pulse whose photons make a detector click with probability sigma: those of an
 * honest pulse of the intensity that has that sigma, k = -ln(1 - sigma) / eta_sys (the formulas depend on the
 * pulse only through sigma).
 */
function statisticsForPhotonDetection(link: LinkParams, sigma: number): { detection: number; click: number; error: number } {
  if (!(sigma >= 0 && sigma < 1)) throw new RangeError(`photon detection probability must be in [0, 1), got ${sigma}`);
  const s = pulseStatistics(link, -Math.log1p(-sigma) / systemTransmittance(link));
  return { detection: s.detection, click: s.click, error: s.error };
}
