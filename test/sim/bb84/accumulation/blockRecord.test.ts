import { describe, expect, it } from 'vitest';
import { randomBits, seededRng } from '../../../../src/sim/bb84/common/rng.js';
import { blockIdFor, countsDigest, decodeBlockRecord, encodeBlockRecord, packBits, sameCounts, sumRecords, unpackBits, type EcBlockRecord } from '../../../../src/sim/bb84/accumulation/blockRecord.js';
import { BLOCK_ID_PATTERN } from '../../../../src/store/ReconciledBlockStore.js';

const RECORD: EcBlockRecord = { config: 'abc=', pulses: 1000, siftedBits: 60, detections: [50, 20, 1], nX: [30, 10, 1], nZ: [5, 2, 0], mZ: [1, 0, 0], lambdaEC: 99, correctedErrors: 2 };

describe('EC block records', () => {
  it('when both ends derive the block ID from the same nonces, then they get the same store-safe ID, and another nonce gives another', () => {
    const a = new Uint8Array(32).fill(1);
    const b = new Uint8Array(32).fill(2);
    const id = blockIdFor(a, b);
    expect(id).toMatch(BLOCK_ID_PATTERN);
    expect(id).toHaveLength(22);
    expect(blockIdFor(Uint8Array.from(a), Uint8Array.from(b))).toBe(id);
    expect(blockIdFor(b, a)).not.toBe(id);
  });

  it('when a record is stored and read back, then it is equal; a record of another version, shape or length is not read', () => {
    const meta = encodeBlockRecord(RECORD);
    expect(decodeBlockRecord(meta, 3)).toEqual(RECORD);
    expect(decodeBlockRecord(encodeBlockRecord({ ...RECORD, eveKnownBits: 7 }), 3)).toEqual({ ...RECORD, eveKnownBits: 7 });
    expect(decodeBlockRecord(meta, 2)).toBeUndefined();
    expect(decodeBlockRecord(meta.replace('"v":1', '"v":2'), 3)).toBeUndefined();
    expect(decodeBlockRecord('not json', 3)).toBeUndefined();
    expect(decodeBlockRecord(encodeBlockRecord({ ...RECORD, mZ: [6, 0, 0] }), 3)).toBeUndefined();
    expect(decodeBlockRecord(encodeBlockRecord({ ...RECORD, lambdaEC: -1 }), 3)).toBeUndefined();
  });

  it('when bits are packed for the store, then they take ceil(n / 8) bytes and unpack to the same bits', () => {
    for (const n of [0, 1, 8, 9, 31, 32, 33, 1001]) {
      const bits = randomBits(seededRng(n), n);
      const packed = packBits(bits);
      expect(packed.length).toBe(Math.ceil(n / 8));
      expect(unpackBits(packed, n).equals(bits)).toBe(true);
    }
    expect(() => unpackBits(new Uint8Array(2), 20)).toThrow(RangeError);
  });

  it('when blocks are summed, then every count is added per intensity', () => {
    const sum = sumRecords([RECORD, { ...RECORD, pulses: 10, eveKnownBits: 4 }], 3);
    expect(sum).toMatchObject({ blocks: 2, pulses: 1010, siftedBits: 120, detections: [100, 40, 2], nX: [60, 20, 2], nZ: [10, 4, 0], mZ: [2, 0, 0], lambdaEC: 198, correctedErrors: 4, eveKnownBits: 4 });
  });

  it('when any protocol count or ID or the order differs, then the counts digest differs (the stats-only fields do not count)', () => {
    const base = countsDigest([{ id: 'x', counts: RECORD }, { id: 'y', counts: RECORD }]);
    expect(countsDigest([{ id: 'x', counts: { ...RECORD, detections: [1, 1, 1] } }, { id: 'y', counts: RECORD }])).toBe(base);
    for (const change of [{ pulses: 1001 }, { nX: [30, 11, 1] }, { nZ: [5, 2, 1] }, { mZ: [0, 0, 0] }, { lambdaEC: 100 }, { correctedErrors: 3 }]) {
      const other = { ...RECORD, ...change };
      expect(countsDigest([{ id: 'x', counts: other }, { id: 'y', counts: RECORD }])).not.toBe(base);
      expect(sameCounts(RECORD, other)).toBe(false);
    }
    expect(countsDigest([{ id: 'y', counts: RECORD }, { id: 'x', counts: RECORD }])).not.toBe(base);
    expect(sameCounts(RECORD, { ...RECORD, detections: [0, 0, 0] })).toBe(true);
  });
});
