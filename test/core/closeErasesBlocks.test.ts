/**
 * Issue 11: the BB84 blocks a stream accumulated for privacy amplification (ReconciledBlockStore) are erased
 * when the stream closes at either end (its exchange stops for good), and those of streams that are gone or
 * closed are erased at start-up.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { KeyStreamManager } from '../../src/core/KeyStreamManager.js';
import { MemoryReconciledBlockStore } from '../../src/store/memory/MemoryReconciledBlockStore.js';
import type { ReconciledBlockStore } from '../../src/store/ReconciledBlockStore.js';
import { buildPair, openBoth, silentLog } from '../support/pair.js';

let stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops) await s();
  stops = [];
});

const block = (blockId: string) => ({ blockId, bits: new Uint8Array([1, 2, 3]), bitLength: 24, meta: '{}', storedAt: 1 });
const held = async (store: ReconciledBlockStore | undefined, id: string): Promise<string[]> => (await store!.list(id)).map((b) => b.blockId);

describe('accumulated BB84 blocks and the stream lifecycle', () => {
  it('when the application at one end closes the stream, then both ends erase its accumulated blocks and keep other streams\'', async () => {
    const { alice, bob, stop } = await buildPair({ maxKeyCount: 4, reconciled: () => new MemoryReconciledBlockStore() });
    stops.push(stop);
    const id = await openBoth(alice, bob);
    const other = await openBoth(alice, bob);
    for (const side of [alice, bob]) {
      await side.reconciled!.append(id, block('b1'));
      await side.reconciled!.append(other, block('b2'));
    }
    expect((await alice.manager.close(id)).ok).toBe(true);
    expect(await held(alice.reconciled, id)).toEqual([]);
    // Bob hears of the close from Alice's module.
    await expect.poll(() => held(bob.reconciled, id), { timeout: 3000 }).toEqual([]);
    expect(await held(alice.reconciled, other)).toEqual(['b2']);
    expect(await held(bob.reconciled, other)).toEqual(['b2']);
  });

  it('when a module starts with blocks of a stream it does not know or that is closed, then it erases them', async () => {
    const { alice, bob, stop } = await buildPair({ maxKeyCount: 4, reconciled: () => new MemoryReconciledBlockStore() });
    stops.push(stop);
    const open = await openBoth(alice, bob);
    const closed = await openBoth(alice, bob);
    expect((await alice.manager.close(closed)).ok).toBe(true);
    const store = alice.reconciled!;
    await store.append(open, block('keep'));
    await store.append(closed, block('late')); // a round that finished after the close
    await store.append('gone-stream', block('stray'));
    const restarted = new KeyStreamManager(alice.handles, alice.keys, alice.peer, alice.manager.settings, silentLog, undefined, store);
    await restarted.init();
    restarted.stop();
    expect((await store.streams!()).sort()).toEqual([open]);
    expect(await held(store, open)).toEqual(['keep']);
  });
});
