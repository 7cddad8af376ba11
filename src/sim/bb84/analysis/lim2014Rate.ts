/**
 * The finite-key rate a link is expected to give under Lim et al. 2014 (PRA 89, 022307, sec. IV): the
 * expected counts of N pulses (decoyCounts.ts) put through eqs. (1)-(5) (lim2014.ts), rate = l / N.
 *
 * lambda_EC is MODELLED here as f_EC · n_X · h(E_X), E_X the expected X-basis error rate, as the paper's
 * evaluation does. The protocol does not use this model: it passes the bits error correction and
 * verification really disclosed to lim2014KeyLength.
 */
import { binaryEntropy } from './entropy.js';
import { expectedDecoyCounts, total, validateExpectedCountSettings, type DecoyCounts, type ExpectedCountSettings } from './decoyCounts.js';
import { lim2014ExpectedKeyLength, type Lim2014AbortCode, type Lim2014Bounds } from './lim2014.js';
import type { LinkParams } from './linkModel.js';

export interface Lim2014Rate {
  /** Secret bits per pulse sent, l / N (0 on abort). */
  ratePerPulse: number;
  /** l (0 on abort). */
  length: number;
  /** The modelled lambda_EC in bits. */
  lambdaEC: number;
  /** Expected X-basis error rate E_X = m_X / n_X. */
  qberX: number;
  counts: Required<DecoyCounts>;
  bounds?: Lim2014Bounds;
  abort?: Lim2014AbortCode;
  reason?: string;
}

export function lim2014Rate(link: LinkParams, settings: ExpectedCountSettings, fEC: number): Lim2014Rate {
  if (!(Number.isFinite(fEC) && fEC >= 1)) throw new RangeError(`fEC must be a finite number >= 1, got ${fEC}`);
  validateExpectedCountSettings(settings);
  const counts = expectedDecoyCounts(link, settings);
  const nX = total(counts.nX);
  const qberX = nX === 0 ? 0 : Math.min(0.5, total(counts.mX) / nX);
  const lambdaEC = fEC * nX * binaryEntropy(qberX);
  const result = lim2014ExpectedKeyLength(counts, settings, lambdaEC);
  if ('abort' in result) {
    return {
      ratePerPulse: 0, length: 0, lambdaEC, qberX, counts,
      ...(result.bounds !== undefined ? { bounds: result.bounds } : {}),
      abort: result.abort, reason: result.reason,
    };
  }
  return { ratePerPulse: result.length / settings.pulses, length: result.length, lambdaEC, qberX, counts, bounds: result.bounds };
}

/**
 * Pulses N after which a block holds nX detections in the key basis on average:
 * N = n_X / (q_x^2 sum_k p_k R_k). Lim et al. fix the block n_X and let N follow (their Fig. 1).
 */
export function pulsesForKeyBlock(link: LinkParams, settings: Omit<ExpectedCountSettings, 'pulses'>, nX: number): number {
  if (!(Number.isFinite(nX) && nX > 0)) throw new RangeError(`nX must be a finite number > 0, got ${nX}`);
  const perPulse = total(expectedDecoyCounts(link, { ...settings, pulses: 1 }).nX);
  return nX / perPulse;
}
