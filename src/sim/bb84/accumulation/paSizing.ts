/**
 * The length of a privacy-amplification block's output: Lim et al. 2014 eq. (1) (analysis/lim2014.ts) over the
 * summed counts of its EC blocks and the bits their error correction and verification disclosed. Each end
 * computes it from its own records; neither outputs more than its own bound.
 */
import type { DecoySettings } from '../analysis/decoyCounts.js';
import { lim2014KeyLength, type Lim2014AbortCode, type Lim2014Bounds } from '../analysis/lim2014.js';
import { singlePhotonOnlyLengthFromCounts } from '../analysis/singlePhotonOnly.js';
import type { SummedCounts } from './blockRecord.js';

/** Why a PA block yields no key (reported in stats and sent with the `amplify` message). */
export const PA_ABORT_REASONS = ['no-secret-key', 'bounds-inconsistent'] as const;
export type PaAbortReason = (typeof PA_ABORT_REASONS)[number];

export type PaKeyLength =
  | { ok: true; length: number; bounds: Lim2014Bounds }
  | { ok: false; reason: PaAbortReason; code: Lim2014AbortCode; detail: string; bounds?: Lim2014Bounds };

/** l of eq. (1) for the summed counts; an abort when l <= 0 or the decoy bounds contradict a physical channel. */
export function paKeyLength(sum: SummedCounts, decoy: DecoySettings): PaKeyLength {
  const r = lim2014KeyLength({ nX: sum.nX, nZ: sum.nZ, mZ: sum.mZ }, decoy, sum.lambdaEC);
  if ('abort' in r) {
    return { ok: false, reason: r.abort === 'no-secret-key' ? 'no-secret-key' : 'bounds-inconsistent', code: r.abort, detail: r.reason, ...(r.bounds ? { bounds: r.bounds } : {}) };
  }
  return { ok: true, length: r.length, bounds: r.bounds };
}

/**
 * NOT A SECURITY CLAIM: what the sizing before decoy states would have output for the same block (every X
 * detection counted as a single photon; analysis/singlePhotonOnly.ts). Reported in stats as a test oracle only.
 */
export function singlePhotonOnlyBits(sum: SummedCounts, decoy: DecoySettings): number {
  return singlePhotonOnlyLengthFromCounts({ nX: sum.nX, nZ: sum.nZ, mZ: sum.mZ }, sum.lambdaEC, { epsEC: decoy.epsCor, epsPA: decoy.epsSec });
}
