/**
 * Vacuum + weak decoy bounds, asymptotic: Ma, Qi, Zhao, Lo, "Practical decoy state for quantum key
 * distribution", PRA 72, 012326 (2005) (arXiv quant-ph/0503005), sec. "vacuum + weak decoy state":
 *
 *   Y_1 >= Y_1^L = mu / (mu nu - nu²) · (Q_nu e^nu - Q_mu e^mu nu²/mu² - (mu² - nu²)/mu² · Y_0)   (34)
 *   Q_1 >= Q_1^L = Y_1^L mu e^-mu                                                                  (35)
 *   e_1 <= e_1^U = (E_nu Q_nu e^nu - e_0 Y_0) / (Y_1^L nu),  e_0 = 1/2                             (37)
 *   R = q {-Q_mu f h(E_mu) + Q_1^L [1 - h(e_1^U)]}                                                 (their eq. 1)
 *
 * Gains and QBERs are the link's expected values (linkModel.ts), so this is what the two-decoy method proves
 * on that link with infinitely many pulses.
 *
 * The paper's vacuum decoy is exactly empty, so its gain IS Y_0. When the third intensity mu3 is not zero
 * (e.g. Lim 2014's 2e-4), its gain Q_v also holds the photon terms, Q_v e^v = Y_0 + sum_{n>=1} v^n/n! Y_n,
 * and Y_0 is only known to lie in [Q_v e^v - (e^v - 1), Q_v e^v] (every Y_n <= 1). Each bound then takes the
 * end that keeps it a bound: eq. (34) subtracts Y_0, so it takes the upper end; eq. (37) subtracts it, so
 * it takes the lower end (never below 0). With v = 0 both ends are Q_v and this is the paper exactly.
 */
import { validateAsymptoticOptions, type AsymptoticOptions } from './asymptoticOptions.js';
import { decoyKeyRate, type DecoyRate } from './infiniteDecoy.js';
import { pulseStatistics, type LinkParams } from './linkModel.js';

export interface VacuumWeakOptions extends AsymptoticOptions {
  /** Weak decoy intensity nu (0 < nu < mu). */
  nu: number;
  /** Vacuum decoy intensity (0 for a true vacuum; small and >= 0 otherwise, below nu). */
  vacuum: number;
}

export interface VacuumWeakRate extends DecoyRate {
  /** The ends of the interval known to hold Y_0 (equal for a true vacuum). */
  y0Lower: number;
  y0Upper: number;
}

/** Background (dark) errors are random: e_0 = 1/2. */
const VACUUM_ERROR_RATE = 0.5;

export function vacuumWeakRate(link: LinkParams, options: VacuumWeakOptions): VacuumWeakRate {
  validateAsymptoticOptions(options);
  const { mu, nu, vacuum } = options;
  if (!(nu > 0 && nu < mu)) throw new RangeError(`nu must be in (0, mu), got ${nu} (mu = ${mu})`);
  if (!(vacuum >= 0 && vacuum < nu)) throw new RangeError(`vacuum intensity must be in [0, nu), got ${vacuum}`);
  const signal = pulseStatistics(link, mu);
  const weak = pulseStatistics(link, nu);
  const empty = pulseStatistics(link, vacuum);
  const y0Upper = empty.click * Math.exp(vacuum);
  const y0Lower = Math.max(0, y0Upper - Math.expm1(vacuum));
  const y1 = Math.max(0, (mu / (mu * nu - nu * nu))
    * (weak.click * Math.exp(nu) - signal.click * Math.exp(mu) * (nu * nu) / (mu * mu) - ((mu * mu - nu * nu) / (mu * mu)) * y0Upper));
  const q1 = y1 * mu * Math.exp(-mu);
  const e1 = y1 > 0 ? Math.min(0.5, Math.max(0, (weak.qber * weak.click * Math.exp(nu) - VACUUM_ERROR_RATE * y0Lower) / (y1 * nu))) : 0.5;
  const rate = y1 > 0 ? decoyKeyRate(options.sifting, options.fEC, signal.click, signal.qber, q1, e1) : 0;
  return { rate, gain: signal.click, qber: signal.qber, y1, q1, e1, y0Lower, y0Upper };
}
