/**
 * BB84 with a weak coherent source and no decoy states: Gottesman, Lo, Luetkenhaus, Preskill, QIC 4, 325
 * (2004) (GLLP), in the form of standards.md section 4 (also Ma et al. 2005, eq. 2 and sec. 2):
 *
 *   R = q {-Q f h(E) + Q (1 - Delta) [1 - h(E / (1 - Delta))]},  Delta = [1 - (1 + mu) e^-mu] / Q
 *
 * Without decoys Alice and Bob must assume every multi-photon pulse (probability 1 - (1 + mu) e^-mu) was
 * detected and is known to Eve (the photon-number-splitting attack), so Delta is the largest fraction of
 * detections that can be "tagged". When that fraction reaches 1 nothing is provably secret.
 */
import { errorEntropy } from './entropy.js';
import { validateAsymptoticOptions, type AsymptoticOptions } from './asymptoticOptions.js';
import { multiPhotonProbability, pulseStatistics, type LinkParams } from './linkModel.js';

export interface NoDecoyRate {
  /** Secret bits per pulse (clamped at 0). */
  rate: number;
  gain: number;
  qber: number;
  /** Delta: the fraction of detections that may come from multi-photon pulses (may exceed 1). */
  multiPhotonFraction: number;
}

export function noDecoyRate(link: LinkParams, options: AsymptoticOptions): NoDecoyRate {
  validateAsymptoticOptions(options);
  const signal = pulseStatistics(link, options.mu);
  const delta = signal.click === 0 ? Number.POSITIVE_INFINITY : multiPhotonProbability(options.mu) / signal.click;
  const base = { gain: signal.click, qber: signal.qber, multiPhotonFraction: delta };
  if (!(delta < 1)) return { rate: 0, ...base };
  const untagged = 1 - delta;
  const rate = options.sifting * (-signal.click * options.fEC * errorEntropy(signal.qber)
    + signal.click * untagged * (1 - errorEntropy(signal.qber / untagged)));
  return { rate: Math.max(0, rate), ...base };
}
