/**
 * The repeaterless bound (Pirandola, Laurenza, Ottaviani, Banchi, Nat. Commun. 8, 15043 (2017), "PLOB"):
 * no point-to-point QKD protocol over a pure-loss channel of transmittance eta can give more than
 * -log2(1 - eta) secret bits per channel use (standards.md section 4).
 *
 * The eta used here is eta_sys (fibre and Bob's detection): the security analyses of this folder attribute
 * the detector's loss to the channel, so this is the bound that applies to them. The fibre-only bound is
 * higher (infinite at 0 km).
 */
import { systemTransmittance, validateLinkParams, type LinkParams } from './linkModel.js';

export function plobBound(eta: number): number {
  if (!(eta >= 0 && eta <= 1)) throw new RangeError(`eta must be in [0, 1], got ${eta}`);
  return -Math.log1p(-eta) / Math.LN2; // precise for small eta; Infinity at eta = 1 (a lossless channel bounds nothing)
}

export function plobRate(link: LinkParams): { rate: number; eta: number } {
  validateLinkParams(link);
  const eta = systemTransmittance(link);
  return { rate: plobBound(eta), eta };
}
