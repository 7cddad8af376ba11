/**
 * The planned secret key rate of the configured BB84 link versus fibre length, drawn on the dashboard under the
 * measured secret bits per pulse: the finite-key decoy-state analysis of Lim et al. 2014 (the one the simulator
 * sizes its keys with), for one PA block of simulator.pa_block_bits key-basis bits at each distance, honest channel.
 */
import { PLANNING_F_EC, plannedRate } from '../sim/bb84/protocol/sizing.js';
import type { Bb84Settings } from '../sim/bb84/protocol/settings.js';
import type { PlannedCurve } from './feedSchema.js';

/** The curve is searched for the distance where the key vanishes up to this length. */
export const CURVE_MAX_KM = 500;
/** Points of the curve (evenly spaced from 0 km to a little beyond the reach or the configured length). */
export const CURVE_POINTS = 101;

export function plannedCurve(settings: Bb84Settings): PlannedCurve {
  const analysis = `finite-key decoy BB84 (Lim et al. 2014; PA block ${settings.paBlockBits} bits, eps_sec ${settings.epsSec}, eps_cor ${settings.epsCor}, f_EC ${PLANNING_F_EC}, no eavesdropper)`;
  const perPulse = (distanceKm: number): number => {
    const rate = plannedRate({ ...settings, link: { ...settings.link, lengthKm: distanceKm } }).plan.ratePerPulse;
    return Number.isFinite(rate) && rate > 0 ? rate : 0;
  };
  let reachKm = CURVE_MAX_KM;
  for (let d = 0; d <= CURVE_MAX_KM; d += 5) {
    if (!(perPulse(d) > 0)) {
      reachKm = d;
      break;
    }
  }
  const endKm = Math.max(10, Math.ceil((Math.max(reachKm, settings.link.lengthKm) * 1.1) / 10) * 10);
  const points = Array.from({ length: CURVE_POINTS }, (_, i) => {
    const distanceKm = (endKm * i) / (CURVE_POINTS - 1);
    return { distanceKm, secretBitsPerPulse: perPulse(distanceKm) };
  });
  return { analysis, distanceKm: settings.link.lengthKm, plannedSecretBitsPerPulse: perPulse(settings.link.lengthKm), points };
}
