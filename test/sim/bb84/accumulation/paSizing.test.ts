import { describe, expect, it } from 'vitest';
import { expectedDecoyCounts } from '../../../../src/sim/bb84/analysis/decoyCounts.js';
import { lim2014KeyLength } from '../../../../src/sim/bb84/analysis/lim2014.js';
import { sumRecords, type EcBlockRecord } from '../../../../src/sim/bb84/accumulation/blockRecord.js';
import { paKeyLength, singlePhotonOnlyBits } from '../../../../src/sim/bb84/accumulation/paSizing.js';

const LINK = { lengthKm: 25, attenuationDbPerKm: 0.2, detectorEfficiency: 0.1, darkCountProbability: 1e-6, afterpulseProbability: 0, misalignmentError: 0.01 };
const DECOY = { intensities: [0.5, 0.25, 2e-4], probabilities: [0.4, 0.4, 0.2], epsSec: 1e-10, epsCor: 1e-15 };

/** The expected counts of `pulses` pulses, rounded, as one block record. */
function expectedRecord(pulses: number, lambdaEC: number): EcBlockRecord {
  const c = expectedDecoyCounts(LINK, { ...DECOY, pX: 0.8, pulses });
  const round = (xs: number[]): number[] => xs.map((x) => Math.round(x));
  return { config: 'c', pulses, siftedBits: 0, detections: round(c.nX), nX: round(c.nX), nZ: round(c.nZ), mZ: round(c.mZ), lambdaEC, correctedErrors: 0 };
}

describe('PA block length (Lim 2014 over the summed EC blocks)', () => {
  it('when the blocks of a PA block hold the counts of the default link at 25 km, then l is eq. (1) over their sums and lambda_EC', () => {
    const blocks = [expectedRecord(3e8, 150_000), expectedRecord(4e8, 200_000)];
    const sum = sumRecords(blocks, 3);
    const r = paKeyLength(sum, DECOY);
    expect(r.ok).toBe(true);
    const direct = lim2014KeyLength({ nX: sum.nX, nZ: sum.nZ, mZ: sum.mZ }, DECOY, 350_000);
    expect('length' in direct && r.ok && r.length === direct.length).toBe(true);
    expect(r.ok && r.length).toBeGreaterThan(0.3 * sum.nX.reduce((a, b) => a + b, 0));
    // The old sizing (oracle) counts every X detection as a single photon: more than the decoy bound.
    expect(singlePhotonOnlyBits(sum, DECOY)).toBeGreaterThan(r.ok ? r.length : 0);
  });

  it('when the decoys click far less than the signal allows (a PNS attacker), then the PA aborts as bounds-inconsistent while the old sizing would output key', () => {
    const honest = expectedRecord(7e8, 300_000);
    const attacked = { ...honest, nX: [honest.nX[0]!, Math.round(honest.nX[1]! / 20), 0], nZ: [honest.nZ[0]!, Math.round(honest.nZ[1]! / 20), 0], mZ: [honest.mZ[0]!, 0, 0] };
    const sum = sumRecords([attacked], 3);
    const r = paKeyLength(sum, DECOY);
    expect(r).toMatchObject({ ok: false, reason: 'bounds-inconsistent', code: 'single-photon-bound-x' });
    expect(singlePhotonOnlyBits(sum, DECOY)).toBeGreaterThan(1e6);
  });

  it('when the disclosed bits exceed what the bounds allow, then the PA aborts with no-secret-key', () => {
    const sum = sumRecords([expectedRecord(7e8, 1e7)], 3);
    expect(paKeyLength(sum, DECOY)).toMatchObject({ ok: false, reason: 'no-secret-key', code: 'no-secret-key' });
  });
});
