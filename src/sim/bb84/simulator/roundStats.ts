/** The statistics fields of a round (flat: numbers, strings, booleans; never key material). */
import type { RoundStats } from '../../Simulator.js';
import type { Lim2014Bounds } from '../analysis/lim2014.js';
import type { SummedCounts } from '../accumulation/blockRecord.js';
import { round6 } from './stopwatch.js';

/** `name_mu1`, `name_mu2`, ... for a per-intensity list (mu1 the signal, as in Lim et al. 2014). */
export function perIntensity(name: string, values: readonly number[]): RoundStats {
  const out: RoundStats = {};
  values.forEach((v, k) => {
    out[`${name}_mu${k + 1}`] = v;
  });
  return out;
}

/** The EC block's figures: counts per intensity and in total. */
export function ecBlockStats(c: { detections: number[]; nX: number[]; nZ: number[]; mZ: number[] }): RoundStats {
  const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
  const nZ = sum(c.nZ);
  return {
    ...perIntensity('detections', c.detections),
    nX: sum(c.nX),
    nZ,
    mZ: sum(c.mZ),
    ...perIntensity('nX', c.nX),
    ...perIntensity('nZ', c.nZ),
    ...perIntensity('mZ', c.mZ),
    qberZ: nZ === 0 ? null : round6(sum(c.mZ) / nZ),
  };
}

/** The PA block's figures: its summed counts, the decoy bounds, the epsilons. */
export function paBlockStats(sum: SummedCounts, bounds: Lim2014Bounds | undefined, eps: { epsSec: number; epsCor: number }): RoundStats {
  const total = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
  const nX = total(sum.nX);
  const num = (v: number | undefined): number | null => (v === undefined || !Number.isFinite(v) ? null : round6(v));
  return {
    analysis: 'lim2014',
    paBlocks: sum.blocks,
    paPulses: sum.pulses,
    paSiftedBits: sum.siftedBits,
    paBits: nX,
    ...perIntensity('paDetections', sum.detections),
    ...perIntensity('paNX', sum.nX),
    ...perIntensity('paNZ', sum.nZ),
    ...perIntensity('paMZ', sum.mZ),
    paLambdaEC: sum.lambdaEC,
    paCorrectedErrors: sum.correctedErrors,
    /** The key's error rate: errors Cascade corrected over the key-basis bits. */
    qber: nX === 0 ? null : round6(sum.correctedErrors / nX),
    sX0: num(bounds?.sX0),
    sX1: num(bounds?.sX1),
    sZ1: num(bounds?.sZ1),
    vZ1: num(bounds?.vZ1),
    phiX: num(bounds?.phiX),
    epsSec: eps.epsSec,
    epsCor: eps.epsCor,
  };
}

/** l, and l per sifted bit of the PA block (ETSI 004 metadata's secret_fraction). */
export function secretFigures(secretBits: number, siftedBits: number): RoundStats {
  return { secretBits, secretFraction: siftedBits > 0 ? round6(secretBits / siftedBits) : null };
}
