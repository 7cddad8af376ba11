/**
 * The planned secret key rate of the configured BB84 link versus fibre length, drawn on the dashboard under the
 * measured secret bits per pulse. ONE function, so that a better security analysis (finite-key with decoy states)
 * replaces its body and nothing else: the dashboard shows whatever `analysis` names.
 */
import { predictedRates } from '../sim/bb84/estimation/finiteKey.js';
import { PLANNING_F_EC } from '../sim/bb84/protocol/sizing.js';
import type { Bb84Settings } from '../sim/bb84/protocol/settings.js';
import type { PlannedCurve } from './feedSchema.js';

/** The curve is searched for the distance where the key vanishes up to this length. */
export const CURVE_MAX_KM = 500;
/** Points of the curve (evenly spaced from 0 km to a little beyond the reach or the configured length). */
export const CURVE_POINTS = 101;

export function plannedCurve(settings: Bb84Settings): PlannedCurve {
  const analysis = `asymptotic BB84, every detection counted as a single photon, no eavesdropper (predictedRates, f_EC ${PLANNING_F_EC}, sample fraction ${settings.sampleFraction})`;
  const perPulse = (distanceKm: number): number =>
    predictedRates({ ...settings.channel, lengthKm: distanceKm }, 1, PLANNING_F_EC, settings.sampleFraction).secretRate;
  let reachKm = CURVE_MAX_KM;
  for (let d = 0; d <= CURVE_MAX_KM; d++) {
    if (!(perPulse(d) > 0)) {
      reachKm = d;
      break;
    }
  }
  const endKm = Math.max(10, Math.ceil((Math.max(reachKm, settings.channel.lengthKm) * 1.1) / 10) * 10);
  const points = Array.from({ length: CURVE_POINTS }, (_, i) => {
    const distanceKm = (endKm * i) / (CURVE_POINTS - 1);
    return { distanceKm, secretBitsPerPulse: perPulse(distanceKm) };
  });
  return { analysis, distanceKm: settings.channel.lengthKm, plannedSecretBitsPerPulse: perPulse(settings.channel.lengthKm), points };
}
