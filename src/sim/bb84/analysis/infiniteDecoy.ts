/**
 * The infinite-decoy limit (Lo, Ma, Chen, PRL 94, 230504 (2005); Ma, Qi, Zhao, Lo, PRA 72, 012326 (2005),
 * eq. 1 with exact Y_1 and e_1): what decoy states can at best prove, asymptotically.
 *
 *   R = q {-Q_mu f h(E_mu) + Q_1 [1 - h(e_1)]},  Q_1 = Y_1 mu e^-mu
 *
 * with the link model of linkModel.ts decomposed by photon number (every term of D_k, R_k and e_k is a
 * Poisson mixture over n): the single-photon yield with afterpulses Y_1 (1 + p_ap) and single-photon errors
 * e_1 Y_1 (1 + p_ap) = p_dc + e_mis eta_sys + p_ap Y_1 / 2. With p_ap = 0 and p_dc = Y_0 / 2 this is Ma
 * et al.'s Y_1 = Y_0 + eta, e_1 = (e_0 Y_0 + e_det eta) / Y_1 (their eqs. 7-9) to first order in Y_0.
 */
import { errorEntropy } from './entropy.js';
import { validateAsymptoticOptions, type AsymptoticOptions } from './asymptoticOptions.js';
import { photonYield, pulseStatistics, systemTransmittance, type LinkParams } from './linkModel.js';

export interface DecoyRate {
  /** Secret bits per signal pulse (clamped at 0). */
  rate: number;
  /** Gain Q_mu and QBER E_mu of the signal. */
  gain: number;
  qber: number;
  /** Single-photon yield Y_1, gain Q_1 and error rate e_1 used in the rate. */
  y1: number;
  q1: number;
  e1: number;
}

/** Exact single-photon yield (with afterpulses) and error rate of the link. */
export function singlePhotonStatistics(link: LinkParams): { y1: number; e1: number } {
  const yieldNoAfterpulse = photonYield(link, 1);
  const y1 = yieldNoAfterpulse * (1 + link.afterpulseProbability);
  const errors = link.darkCountProbability + link.misalignmentError * systemTransmittance(link) + (link.afterpulseProbability * yieldNoAfterpulse) / 2;
  return { y1, e1: Math.min(0.5, errors / y1) };
}

/** The asymptotic decoy key rate from a signal's gain and QBER and single-photon Q_1, e_1. */
export function decoyKeyRate(sifting: number, fEC: number, gain: number, qber: number, q1: number, e1: number): number {
  const rate = sifting * (-gain * fEC * errorEntropy(qber) + q1 * (1 - errorEntropy(e1)));
  return Math.max(0, rate);
}

export function infiniteDecoyRate(link: LinkParams, options: AsymptoticOptions): DecoyRate {
  validateAsymptoticOptions(options);
  const signal = pulseStatistics(link, options.mu);
  const { y1, e1 } = singlePhotonStatistics(link);
  const q1 = y1 * options.mu * Math.exp(-options.mu);
  const rate = decoyKeyRate(options.sifting, options.fEC, signal.click, signal.qber, q1, e1);
  return { rate, gain: signal.click, qber: signal.qber, y1, q1, e1 };
}
