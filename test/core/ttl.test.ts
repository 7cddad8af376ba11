/**
 * QoS TTL in the core: keys older than the TTL are erased through KeyStore.take by a timer, never
 * delivered, and a restart never extends their life. Also the KeyBatches bookkeeping behind it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { KeyBatches } from '../../src/core/keyBatches.js';
import { buildPair, buildSide, link, type Side } from '../support/pair.js';

let cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups) await c();
  cleanups = [];
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function openWithTtl(alice: Side, bob: Side, ttlSeconds: number): Promise<string> {
  const qos = { keyLengthBits: 128, timeoutMs: 1000, ttlSeconds };
  const a = await alice.manager.openConnect({ source: 'a', destination: bob.address, keyStreamId: null, ...qos });
  if (!a.ok) throw a.error;
  const b = await bob.manager.openConnect({ source: 'b', destination: alice.address, keyStreamId: a.value.keyStreamId, ...qos });
  if (!b.ok) throw b.error;
  return a.value.keyStreamId;
}

/** Opens a TTL stream, lets keys arrive, then stops both ends (as at shutdown); the stores stay. */
async function streamWithKeys(ttlSeconds: number): Promise<{ alice: Side; bob: Side; id: string }> {
  const p = await buildPair({ maxKeyCount: 4 });
  const id = await openWithTtl(p.alice, p.bob, ttlSeconds);
  await expect.poll(() => p.alice.manager.available(id)).toBe(4);
  await p.stop();
  return { alice: p.alice, bob: p.bob, id };
}

/** A new manager over the same stores (a restart), not yet linked or started. */
async function restart(side: Side, sender: 0 | 1): Promise<Side> {
  const again = buildSide(sender, side.address, { maxKeyCount: 4 }, { handles: side.handles, keys: side.keys });
  await again.manager.init();
  cleanups.push(() => again.manager.stop());
  return again;
}

describe('TTL', () => {
  it('when a key is older than the TTL but its timer has not run, then GET_KEY never delivers it and erases it', async () => {
    const p = await buildPair({ maxKeyCount: 3 });
    cleanups.push(p.stop);
    const id = await openWithTtl(p.alice, p.bob, 1);
    await expect.poll(() => p.alice.manager.available(id)).toBe(3);
    p.alice.manager.stop(); // no timers from now on: only the delivery path's own check remains
    await p.alice.exchange.stop();
    await sleep(1100);
    const r = await p.alice.manager.getKey(id, -1, 0);
    expect(r.ok && r.value).toBeNull();
    expect(p.alice.keys.keys.get(id)?.size ?? 0).toBe(0);
  });

  it('when the module restarts and the stream is older than its TTL, then its keys are erased before init resolves', async () => {
    const { alice, bob, id } = await streamWithKeys(60);
    // The keys' store times were not persisted: only the stream's creation bounds their age.
    alice.handles.rows.get(id)!.createdAt = Date.now() - 61_000;
    const restarted = await restart(alice, 1);
    expect(alice.keys.keys.get(id)?.size ?? 0).toBe(0);
    expect(restarted.manager.available(id)).toBe(0);
    // The other end, restarted while its stream is young, keeps its keys.
    const bobAgain = await restart(bob, 0);
    expect(bobAgain.manager.available(id)).toBe(4);
  });

  it('when the module restarts within the TTL, then keys stay deliverable until creation + TTL and are erased then', async () => {
    const { alice, bob, id } = await streamWithKeys(1);
    const createdAt = Date.now() - 300;
    alice.handles.rows.get(id)!.createdAt = createdAt;
    const a = await restart(alice, 1);
    const b = await restart(bob, 0);
    link(a, b);
    expect(a.manager.available(id)).toBe(4);
    const first = await a.manager.getKey(id, -1, 0);
    expect(first.ok && first.value?.index).toBe(0);
    expect(first.ok && first.value?.storedAt).toBeUndefined(); // age unknown after a restart
    await expect.poll(() => alice.keys.keys.get(id)?.size ?? 0, { timeout: 2000 }).toBe(0);
    expect(Date.now()).toBeGreaterThanOrEqual(createdAt + 1000);
    expect(a.manager.available(id)).toBe(0);
  });

  it('when the key store fails during erasure, then the expired keys are never delivered and erasure is retried', async () => {
    const p = await buildPair({ maxKeyCount: 2 });
    cleanups.push(p.stop);
    const id = await openWithTtl(p.alice, p.bob, 1);
    await expect.poll(() => p.alice.manager.available(id)).toBe(2);
    await p.alice.exchange.stop();
    p.alice.keys.failTakes = true;
    await sleep(1100);
    expect(p.alice.manager.available(id)).toBe(0);
    expect(p.alice.keys.keys.get(id)?.size).toBe(2); // still on disk: the store refused
    p.alice.keys.failTakes = false;
    await expect.poll(() => p.alice.keys.keys.get(id)?.size, { timeout: 3000 }).toBe(0);
  });
});

describe('KeyBatches', () => {
  it('when rounds are recorded, then find answers by index and an overwritten range takes the new store time', () => {
    const b = new KeyBatches();
    b.record(0, 10, 1000);
    b.record(10, 5, 2000);
    expect(b.find(0)?.storedAt).toBe(1000);
    expect(b.find(9)?.storedAt).toBe(1000);
    expect(b.find(14)?.storedAt).toBe(2000);
    expect(b.find(15)).toBeUndefined();
    b.record(5, 7, 3000); // an uncommitted round overwritten at 5..11
    expect([b.find(4)?.storedAt, b.find(5)?.storedAt, b.find(11)?.storedAt, b.find(12)?.storedAt]).toEqual([1000, 3000, 3000, 2000]);
    expect(b.size).toBe(3);
  });

  it('when keys are gone or expire, then forgetBelow and removeBornBy drop their batches', () => {
    const b = new KeyBatches();
    b.record(0, 4, 1000);
    b.record(4, 4, 2000);
    b.record(8, 4, undefined, 500); // found at start-up: born after the stream's creation
    expect(b.earliestBorn()).toBe(500);
    b.forgetBelow(4);
    expect(b.find(0)).toBeUndefined();
    expect(b.removeBornBy(600).map((x) => x.firstIndex)).toEqual([8]);
    expect(b.earliestBorn()).toBe(2000);
    b.forgetBelow(undefined);
    expect(b.size).toBe(0);
  });
});
