/**
 * Issue 11 point 3: accumulated EC blocks are durable (a restart over the same SQLite store loses none), each is
 * amplified at most once, and a crash that leaves a block at one end only (between Bob's append and Alice's, or
 * between Bob's consumption and Alice's) is settled by the next PA step's block lists: the orphan is erased at both
 * ends and no key comes from it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Bb84Simulator } from '../../../../src/sim/bb84/simulator/Bb84Simulator.js';
import { StoreError } from '../../../../src/store/errors.js';
import type { ReconciledBlock, ReconciledBlockStore } from '../../../../src/store/ReconciledBlockStore.js';
import { MemoryReconciledBlockStore } from '../../../../src/store/memory/MemoryReconciledBlockStore.js';
import { openSqliteDatabase } from '../../../../src/store/sqlite/SqliteDatabase.js';
import { SqliteReconciledBlockStore } from '../../../../src/store/sqlite/SqliteReconciledBlockStore.js';
import { hex, num, ONE_ROUND_PA, pairOf, params, runRound, SHORT_LINK, STREAM } from './harness.js';

const dirs: string[] = [];
const stores: ReconciledBlockStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => undefined);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function sqliteStore(dir: string): SqliteReconciledBlockStore {
  const store = new SqliteReconciledBlockStore(openSqliteDatabase(dir));
  stores.push(store);
  return store;
}

const ids = async (store: ReconciledBlockStore): Promise<string[]> => (await store.list(STREAM)).map((b) => b.blockId);

/** A store that fails (as a crash would) the first time `op` is called after `armed` is set. */
class CrashingStore implements ReconciledBlockStore {
  armed: 'append' | 'consume' | undefined;
  constructor(private readonly inner: ReconciledBlockStore) {}
  private trip(op: 'append' | 'consume'): void {
    if (this.armed !== op) return;
    this.armed = undefined;
    throw new StoreError('unavailable', `simulated crash before ${op}`);
  }
  async append(id: string, block: ReconciledBlock): Promise<void> {
    this.trip('append');
    return this.inner.append(id, block);
  }
  list(id: string): Promise<ReconciledBlock[]> {
    return this.inner.list(id);
  }
  async consume(id: string, blockIds: readonly string[]): Promise<void> {
    this.trip('consume');
    return this.inner.consume(id, blockIds);
  }
  deleteStream(id: string): Promise<void> {
    return this.inner.deleteStream(id);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

describe('accumulated BB84 blocks across restarts and crashes', () => {
  it('when both modules restart in the middle of a PA block (new simulators over the same SQLite stores), then no block is lost and the PA step uses each block once', async () => {
    const [aliceDir, bobDir] = [mkdtempSync(join(tmpdir(), 'qkdm-bb84-alice-')), mkdtempSync(join(tmpdir(), 'qkdm-bb84-bob-'))];
    dirs.push(aliceDir, bobDir);
    let aliceStore = sqliteStore(aliceDir);
    let bobStore = sqliteStore(bobDir);
    let { alice, bob } = pairOf(SHORT_LINK, { aliceStore, bobStore });
    const keyBits: number[] = [];
    for (let r = 0; r < 2; r++) {
      const round = await runRound(alice, bob, params(0));
      expect(round.alice!.stats!.accumulated).toBe(true);
      keyBits.push(num(round.alice!.stats, 'keyBasisBits'));
    }
    const before = await ids(aliceStore);
    expect(before).toHaveLength(2);
    expect(await ids(bobStore)).toEqual(before);
    // Restart: the stores are closed and opened again, the simulators are new.
    await Promise.all([alice.close(), bob.close(), aliceStore.close(), bobStore.close()]);
    aliceStore = sqliteStore(aliceDir);
    bobStore = sqliteStore(bobDir);
    expect(await ids(aliceStore)).toEqual(before);
    ({ alice, bob } = pairOf(SHORT_LINK, { aliceStore, bobStore }));
    let last;
    for (let r = 0; r < 6; r++) {
      last = await runRound(alice, bob, params(0));
      keyBits.push(num(last.alice!.stats, 'keyBasisBits'));
      if (last.alice!.keys.length > 0) break;
    }
    const stats = last!.alice!.stats!;
    expect(last!.alice!.keys.length).toBeGreaterThan(0);
    expect(hex(last!.bob!.keys)).toEqual(hex(last!.alice!.keys));
    // Every block before and after the restart went into this PA block, once.
    expect(num(stats, 'paBlocks')).toBe(keyBits.length);
    expect(num(stats, 'paBits')).toBe(keyBits.reduce((a, b) => a + b, 0));
    expect(await ids(aliceStore)).toEqual([]);
    expect(await ids(bobStore)).toEqual([]);
    // A consumed block can never be stored (and so amplified) again.
    const replay: ReconciledBlock = { blockId: before[0]!, bits: new Uint8Array(1), bitLength: 8, meta: '{}', storedAt: 1 };
    await expect(bobStore.append(STREAM, replay)).rejects.toThrow(/consumed already/);
  });

  it("when Alice crashes between Bob's append and hers, then the next PA step finds the lists differ, both erase the orphan, no key comes from it, and the following PA step yields identical keys", async () => {
    const aliceStore = new CrashingStore(new MemoryReconciledBlockStore());
    const bobStore = new MemoryReconciledBlockStore();
    const { alice, bob } = pairOf(ONE_ROUND_PA, { aliceStore, bobStore });
    aliceStore.armed = 'append';
    const crashed = await runRound(alice, bob, params(0));
    expect(crashed.aliceError?.message).toMatch(/simulated crash before append/);
    const orphan = await ids(bobStore);
    expect(orphan).toHaveLength(1);
    expect(await ids(aliceStore)).toEqual([]);

    const settle = await runRound(alice, bob, params(0));
    expect(settle.alice!.keys).toEqual([]);
    expect(settle.bob!.keys).toEqual([]);
    expect(settle.alice!.stats).toMatchObject({ reason: 'blocks-differ', orphansErased: 0 });
    expect(settle.bob!.stats).toMatchObject({ reason: 'blocks-differ', orphansErased: 1 });
    const kept = await ids(bobStore);
    expect(kept).not.toContain(orphan[0]);
    expect(await ids(aliceStore)).toEqual(kept);

    const keyed = await runRound(alice, bob, params(0));
    expect(keyed.alice!.keys.length).toBeGreaterThan(0);
    expect(hex(keyed.bob!.keys)).toEqual(hex(keyed.alice!.keys));
    expect(num(keyed.alice!.stats, 'paBlocks')).toBe(2); // the settled block and the new one, never the orphan
  });

  it('when Alice crashes after Bob consumed the PA block and before she did, then her leftover blocks are erased by the next PA step and never amplified again', async () => {
    const aliceStore = new CrashingStore(new MemoryReconciledBlockStore());
    const bobStore = new MemoryReconciledBlockStore();
    const { alice, bob } = pairOf(ONE_ROUND_PA, { aliceStore, bobStore });
    aliceStore.armed = 'consume';
    const crashed = await runRound(alice, bob, params(0));
    expect(crashed.aliceError?.message).toMatch(/simulated crash before consume/);
    expect(crashed.bob!.keys.length).toBeGreaterThan(0); // Bob's keys are never committed: Alice returned none
    const leftover = await ids(aliceStore);
    expect(leftover).toHaveLength(1);
    expect(await ids(bobStore)).toEqual([]);

    const settle = await runRound(alice, bob, params(0));
    expect(settle.alice!.keys).toEqual([]);
    expect(settle.alice!.stats).toMatchObject({ reason: 'blocks-differ', orphansErased: 1 });
    expect(await ids(aliceStore)).not.toContain(leftover[0]);
    expect(await ids(aliceStore)).toEqual(await ids(bobStore));

    const keyed = await runRound(alice, bob, params(0));
    expect(keyed.alice!.keys.length).toBeGreaterThan(0);
    expect(hex(keyed.bob!.keys)).toEqual(hex(keyed.alice!.keys));
    expect(new Set(hex(keyed.alice!.keys)).size).toBe(keyed.alice!.keys.length);
    for (const k of hex(crashed.bob!.keys)) expect(hex(keyed.alice!.keys)).not.toContain(k);
  });

  it('when a stream is closed, then deleting its blocks at both ends leaves the next PA block of another stream untouched', async () => {
    const aliceStore = new MemoryReconciledBlockStore();
    const bobStore = new MemoryReconciledBlockStore();
    const { alice, bob }: { alice: Bb84Simulator; bob: Bb84Simulator } = pairOf(SHORT_LINK, { aliceStore, bobStore });
    const other = '9d3b1a52-2f4e-4f0a-8c1e-1d2b3c4d5e6f';
    await runRound(alice, bob, params(0));
    await runRound(alice, bob, params(0, 1000, 256, other));
    await Promise.all([aliceStore.deleteStream(STREAM), bobStore.deleteStream(STREAM)]);
    expect(await ids(aliceStore)).toEqual([]);
    const next = await runRound(alice, bob, params(0, 1000, 256, other));
    expect(num(next.alice!.stats, 'accumulatedBlocks')).toBe(2);
  });
});
