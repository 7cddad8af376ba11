import { describe, expect, it } from 'vitest';
import { AccumulatedBlocks } from '../../../../src/sim/bb84/accumulation/heldBlocks.js';
import { unpackBits, type EcBlockRecord } from '../../../../src/sim/bb84/accumulation/blockRecord.js';
import { randomBits, seededRng } from '../../../../src/sim/bb84/common/rng.js';
import { MemoryReconciledBlockStore } from '../../../../src/store/memory/MemoryReconciledBlockStore.js';

const STREAM = 'stream-1';
const record = (config: string): EcBlockRecord => ({ config, pulses: 100, siftedBits: 5, detections: [5, 2, 1], nX: [3, 1, 0], nZ: [1, 0, 0], mZ: [0, 0, 0], lambdaEC: 10, correctedErrors: 0 });

describe('accumulated EC blocks of a stream', () => {
  it('when blocks are appended, then they are held in order with their bits and records, and a consumed block is gone for good', async () => {
    const store = new MemoryReconciledBlockStore();
    const blocks = new AccumulatedBlocks(store, 3, 'cfg');
    const bits = [randomBits(seededRng(1), 77), randomBits(seededRng(2), 64)];
    await blocks.append(STREAM, 'a', bits[0]!, record('cfg'));
    await blocks.append(STREAM, 'b', bits[1]!, record('cfg'));
    await blocks.append(STREAM, 'a', bits[0]!, record('cfg')); // a repeat is a no-op
    const held = await blocks.held(STREAM);
    expect(held.map((h) => h.id)).toEqual(['a', 'b']);
    expect(unpackBits(held[0]!.bits, held[0]!.bitLength).equals(bits[0]!)).toBe(true);
    expect(held[1]!.record).toEqual(record('cfg'));
    await blocks.consume(STREAM, ['a']);
    expect((await blocks.held(STREAM)).map((h) => h.id)).toEqual(['b']);
    await expect(blocks.append(STREAM, 'a', bits[0]!, record('cfg'))).rejects.toThrow(/consumed already/);
  });

  it('when a block was made under other settings or its record is unreadable, then it is erased instead of held', async () => {
    const store = new MemoryReconciledBlockStore();
    await new AccumulatedBlocks(store, 3, 'old').append(STREAM, 'old1', randomBits(seededRng(3), 40), record('old'));
    await store.append(STREAM, { blockId: 'junk', bits: new Uint8Array(1), bitLength: 8, meta: '{"v":99}', storedAt: 1 });
    const blocks = new AccumulatedBlocks(store, 3, 'new');
    await blocks.append(STREAM, 'new1', randomBits(seededRng(4), 40), record('new'));
    expect((await blocks.held(STREAM)).map((h) => h.id)).toEqual(['new1']);
    expect((await store.list(STREAM)).map((b) => b.blockId)).toEqual(['new1']);
  });
});
