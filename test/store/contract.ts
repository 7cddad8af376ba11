/**
 * Contract suites every HandleStore and KeyStore adapter runs (SQLite, MySQL, Vault, ...).
 * A factory gives a fresh, empty store per test and cleans up after it; when it also offers
 * `reopen`, persistence across a close/reopen is checked too.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { KeyStream } from '../../src/core/types.js';
import type { HandleStore } from '../../src/store/HandleStore.js';
import type { KeyStore } from '../../src/store/KeyStore.js';

export interface StoreFixture<S> {
  store: S;
  cleanup(): Promise<void>;
  /** Closes `store` and opens a new instance on the same data (optional). */
  reopen?(): Promise<S>;
}

export type HandleStoreFactory = () => Promise<StoreFixture<HandleStore>>;
export type KeyStoreFactory = () => Promise<StoreFixture<KeyStore>>;

export function sampleStream(overrides: Partial<KeyStream> = {}): KeyStream {
  return {
    keyStreamId: randomUUID(),
    source: 'qkd://alice/app1',
    destination: 'qkd://bob/app1',
    peerUrl: 'http://127.0.0.1:5001',
    keyLengthBits: 256,
    timeoutMs: 5_000,
    localOpen: true,
    peerOpen: false,
    closed: false,
    nextIndex: 0,
    createdAt: 1_700_000_000_000,
    ttlSeconds: 0,
    owner: 'local',
    ...overrides,
  };
}

/** Deterministic test key: `length` bytes derived from a seed (no randomness needed to compare). */
export function testKey(seed: number, length = 32): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (seed * 31 + i * 7 + 1) & 0xff);
}

export function runHandleStoreContract(name: string, factory: HandleStoreFactory): void {
  describe(`HandleStore contract: ${name}`, () => {
    let fx: StoreFixture<HandleStore>;
    let store: HandleStore;

    beforeEach(async () => {
      fx = await factory();
      store = fx.store;
    });
    afterEach(async () => {
      await fx.cleanup();
    });

    it('when a stream is created, then get returns every field as given', async () => {
      const s = sampleStream({ peerOpen: true, closed: false, localOpen: false, nextIndex: 7, keyLengthBits: 8192, timeoutMs: 600_000 });
      expect(await store.create(s)).toBe(true);
      expect(await store.get(s.keyStreamId)).toEqual(s);
    });

    it('when a stream has a TTL, then it round-trips up to the uint32 maximum and can be patched', async () => {
      const s = sampleStream({ ttlSeconds: 4_294_967_295 });
      const t = sampleStream({ ttlSeconds: 0 });
      expect(await store.create(s)).toBe(true);
      expect(await store.create(t)).toBe(true);
      expect(await store.get(s.keyStreamId)).toEqual(s);
      await store.update(t.keyStreamId, { ttlSeconds: 30, localOpen: true });
      expect(await store.get(t.keyStreamId)).toEqual({ ...t, ttlSeconds: 30, localOpen: true });
      await store.update(s.keyStreamId, { closed: true });
      expect((await store.get(s.keyStreamId))?.ttlSeconds).toBe(4_294_967_295);
    });

    it('when text fields hold non-ASCII characters and 255 characters, then they round-trip unchanged', async () => {
      const s = sampleStream({ source: 'qkd://ålice/äpp-✓', destination: 'd'.repeat(255), peerUrl: `http://h/${'p'.repeat(246)}` });
      expect(await store.create(s)).toBe(true);
      expect(await store.get(s.keyStreamId)).toEqual(s);
    });

    it('when the same ID is created twice, then the second create resolves false and changes nothing', async () => {
      const s = sampleStream();
      expect(await store.create(s)).toBe(true);
      expect(await store.create({ ...s, source: 'other', nextIndex: 99, closed: true })).toBe(false);
      expect(await store.get(s.keyStreamId)).toEqual(s);
      expect(await store.list()).toHaveLength(1);
    });

    it('when an ID is unknown, then get is undefined, update does nothing and advanceIndex resolves undefined', async () => {
      const known = sampleStream();
      await store.create(known);
      const unknown = randomUUID();
      expect(await store.get(unknown)).toBeUndefined();
      await store.update(unknown, { closed: true });
      expect(await store.advanceIndex(unknown, 5)).toBeUndefined();
      expect(await store.list()).toEqual([known]);
    });

    it('when a stream is deleted (purge), then it is gone, the others stay, and deleting an unknown ID does nothing', async () => {
      const a = sampleStream();
      const b = sampleStream();
      await store.create(a);
      await store.create(b);
      await store.delete(a.keyStreamId);
      await store.delete(randomUUID());
      expect(await store.get(a.keyStreamId)).toBeUndefined();
      expect(await store.list()).toEqual([b]);
      expect(await store.create(a)).toBe(true);
    });

    it('when IDs differ only in letter case, then they are different streams', async () => {
      const lower = sampleStream({ keyStreamId: 'abcdef-stream' });
      const upper = sampleStream({ keyStreamId: 'ABCDEF-stream', source: 'upper' });
      expect(await store.create(lower)).toBe(true);
      expect(await store.create(upper)).toBe(true);
      expect((await store.get('ABCDEF-stream'))?.source).toBe('upper');
    });

    it('when there are no streams, then list is empty', async () => {
      expect(await store.list()).toEqual([]);
    });

    it('when several streams are created, then list returns them in creation order', async () => {
      // Same createdAt and IDs not in sorted order: only the creation sequence can order them.
      const ids = ['c-3', 'a-1', 'e-5', 'b-2', 'd-4'];
      for (const id of ids) await store.create(sampleStream({ keyStreamId: id }));
      expect((await store.list()).map((s) => s.keyStreamId)).toEqual(ids);
    });

    it('when update patches some fields, then exactly those fields change', async () => {
      const s = sampleStream();
      await store.create(s);
      await store.update(s.keyStreamId, { peerOpen: true, closed: true, peerUrl: 'http://10.0.0.2:5002', timeoutMs: 1_000 });
      expect(await store.get(s.keyStreamId)).toEqual({ ...s, peerOpen: true, closed: true, peerUrl: 'http://10.0.0.2:5002', timeoutMs: 1_000 });
      await store.update(s.keyStreamId, { source: 's2', destination: 'd2', keyLengthBits: 512, localOpen: false });
      expect(await store.get(s.keyStreamId)).toEqual({
        ...s,
        peerOpen: true,
        closed: true,
        peerUrl: 'http://10.0.0.2:5002',
        timeoutMs: 1_000,
        source: 's2',
        destination: 'd2',
        keyLengthBits: 512,
        localOpen: false,
      });
    });

    it('when update gets an empty patch or undefined fields, then nothing changes', async () => {
      const s = sampleStream();
      await store.create(s);
      await store.update(s.keyStreamId, {});
      await store.update(s.keyStreamId, { source: undefined });
      expect(await store.get(s.keyStreamId)).toEqual(s);
    });

    it('when update carries fields outside the patch type, then nextIndex is not changed by it', async () => {
      const s = sampleStream({ nextIndex: 3 });
      await store.create(s);
      await store.update(s.keyStreamId, { closed: true, nextIndex: 100 } as never);
      expect((await store.get(s.keyStreamId))?.nextIndex).toBe(3);
    });

    it('when advanceIndex moves forward and then backward, then nextIndex never decreases and each call resolves the result', async () => {
      const s = sampleStream();
      await store.create(s);
      expect(await store.advanceIndex(s.keyStreamId, 10)).toBe(10);
      expect(await store.advanceIndex(s.keyStreamId, 4)).toBe(10);
      expect(await store.advanceIndex(s.keyStreamId, 10)).toBe(10);
      expect(await store.advanceIndex(s.keyStreamId, 11)).toBe(11);
      expect((await store.get(s.keyStreamId))?.nextIndex).toBe(11);
    });

    it('when advanceIndex is called concurrently with mixed values, then the result is their maximum', async () => {
      const s = sampleStream();
      await store.create(s);
      const targets = Array.from({ length: 20 }, (_, i) => (i * 7919) % 101);
      const results = await Promise.all(targets.map((t) => store.advanceIndex(s.keyStreamId, t)));
      results.forEach((r, i) => expect(r).toBeGreaterThanOrEqual(targets[i]));
      expect((await store.get(s.keyStreamId))?.nextIndex).toBe(Math.max(...targets));
    });

    it('when nextIndex grows beyond 32 bits, then it is kept exactly', async () => {
      const s = sampleStream();
      await store.create(s);
      const big = 2 ** 40 + 3;
      expect(await store.advanceIndex(s.keyStreamId, big)).toBe(big);
      expect((await store.get(s.keyStreamId))?.nextIndex).toBe(big);
    });

    it('when advanceIndex gets a negative or fractional index, then it rejects and nothing changes', async () => {
      const s = sampleStream({ nextIndex: 2 });
      await store.create(s);
      await expect(store.advanceIndex(s.keyStreamId, -1)).rejects.toThrow(RangeError);
      await expect(store.advanceIndex(s.keyStreamId, 1.5)).rejects.toThrow(RangeError);
      expect((await store.get(s.keyStreamId))?.nextIndex).toBe(2);
    });

    it('when the store is reopened, then streams, flags and nextIndex persist', async ({ skip }) => {
      if (!fx.reopen) return skip('factory has no reopen');
      const a = sampleStream({ keyStreamId: 'z-first' });
      const b = sampleStream({ keyStreamId: 'a-second', peerOpen: true, ttlSeconds: 60 });
      await store.create(a);
      await store.create(b);
      await store.advanceIndex(b.keyStreamId, 42);
      await store.update(a.keyStreamId, { closed: true });
      store = await fx.reopen();
      expect(await store.list()).toEqual([{ ...a, closed: true }, { ...b, nextIndex: 42 }]);
    });
  });
}

export function runKeyStoreContract(name: string, factory: KeyStoreFactory): void {
  describe(`KeyStore contract: ${name}`, () => {
    let fx: StoreFixture<KeyStore>;
    let store: KeyStore;
    let stream: string;

    beforeEach(async () => {
      fx = await factory();
      store = fx.store;
      stream = randomUUID();
    });
    afterEach(async () => {
      await fx.cleanup();
    });

    it('when keys are put, then each take returns its bytes and the key is gone afterwards', async () => {
      const keys = [testKey(1), testKey(2), testKey(3)];
      await store.putMany(stream, 0, keys);
      expect(await store.indices(stream)).toEqual([0, 1, 2]);
      expect(await store.take(stream, 1)).toEqual(keys[1]);
      expect(await store.indices(stream)).toEqual([0, 2]);
      expect(await store.take(stream, 0)).toEqual(keys[0]);
      expect(await store.take(stream, 2)).toEqual(keys[2]);
      expect(await store.indices(stream)).toEqual([]);
    });

    it('when a key is taken twice, then the second take resolves undefined', async () => {
      await store.putMany(stream, 5, [testKey(5)]);
      expect(await store.take(stream, 5)).toEqual(testKey(5));
      expect(await store.take(stream, 5)).toBeUndefined();
    });

    it('when a take hits an absent index or unknown stream, then it resolves undefined', async () => {
      await store.putMany(stream, 0, [testKey(0)]);
      expect(await store.take(stream, 1)).toBeUndefined();
      expect(await store.take(randomUUID(), 0)).toBeUndefined();
      expect(await store.indices(randomUUID())).toEqual([]);
      expect(await store.indices(stream)).toEqual([0]);
    });

    it('when keys are put at an index that already holds a key, then the new bytes replace it', async () => {
      await store.putMany(stream, 0, [testKey(10), testKey(11)]);
      await store.putMany(stream, 1, [testKey(21), testKey(22)]);
      expect(await store.indices(stream)).toEqual([0, 1, 2]);
      expect(await store.take(stream, 0)).toEqual(testKey(10));
      expect(await store.take(stream, 1)).toEqual(testKey(21));
      expect(await store.take(stream, 2)).toEqual(testKey(22));
    });

    it('when ranges are put out of order, then indices are numeric and ascending', async () => {
      await store.putMany(stream, 10, [testKey(10), testKey(11), testKey(12)]);
      await store.putMany(stream, 0, [testKey(0), testKey(1), testKey(2)]);
      await store.putMany(stream, 100, [testKey(100)]);
      await store.putMany(stream, 9, [testKey(9)]);
      await store.putMany(stream, 20, [testKey(20)]);
      expect(await store.indices(stream)).toEqual([0, 1, 2, 9, 10, 11, 12, 20, 100]);
    });

    it('when a stream is deleted, then none of its keys can be taken and other streams are untouched', async () => {
      const other = randomUUID();
      await store.putMany(stream, 0, [testKey(0), testKey(1), testKey(2)]);
      await store.putMany(other, 0, [testKey(50)]);
      await store.deleteStream(stream);
      expect(await store.indices(stream)).toEqual([]);
      expect(await store.take(stream, 0)).toBeUndefined();
      expect(await store.indices(other)).toEqual([0]);
      expect(await store.take(other, 0)).toEqual(testKey(50));
    });

    it('when an unknown or empty stream is deleted, then it resolves', async () => {
      await expect(store.deleteStream(randomUUID())).resolves.toBeUndefined();
    });

    it('when 20 takes of the same key run concurrently, then exactly one gets it', async () => {
      await store.putMany(stream, 3, [testKey(3)]);
      const results = await Promise.all(Array.from({ length: 20 }, () => store.take(stream, 3)));
      const winners = results.filter((r) => r !== undefined);
      expect(winners).toHaveLength(1);
      expect(winners[0]).toEqual(testKey(3));
      expect(await store.indices(stream)).toEqual([]);
    });

    it('when concurrent takes cover different indices, then every key is handed out exactly once', async () => {
      const keys = Array.from({ length: 10 }, (_, i) => testKey(i));
      await store.putMany(stream, 0, keys);
      const attempts = [...keys.keys(), ...keys.keys()].map((i) => store.take(stream, i).then((k) => ({ i, k })));
      const got = (await Promise.all(attempts)).filter((r) => r.k !== undefined);
      expect(got.map((r) => r.i).sort((a, b) => a - b)).toEqual([...keys.keys()]);
      got.forEach((r) => expect(r.k).toEqual(keys[r.i]));
    });

    it('when two streams use the same indices, then their keys stay apart', async () => {
      const other = randomUUID();
      await store.putMany(stream, 0, [testKey(1), testKey(2)]);
      await store.putMany(other, 0, [testKey(101), testKey(102)]);
      expect(await store.take(other, 1)).toEqual(testKey(102));
      expect(await store.indices(stream)).toEqual([0, 1]);
      expect(await store.take(stream, 1)).toEqual(testKey(2));
      expect(await store.take(stream, 0)).toEqual(testKey(1));
      expect(await store.take(other, 0)).toEqual(testKey(101));
    });

    it('re-delivery window: a delivered key leaves indices(), is readable again with redeliver, and is listed with its time and token', async () => {
      await store.putMany(stream, 0, [testKey(0), testKey(1), testKey(2)]);
      expect(await store.deliver(stream, 1, 1_700_000_000_123, 'tok-1')).toEqual(testKey(1));
      expect(await store.deliver(stream, 2, 1_700_000_000_456)).toEqual(testKey(2));
      expect(await store.indices(stream)).toEqual([0]);
      expect(await store.redeliver(stream, 1)).toEqual(testKey(1));
      expect(await store.redeliver(stream, 1)).toEqual(testKey(1));
      expect(await store.redeliver(stream, 0)).toBeUndefined(); // not delivered: never through redeliver
      expect(await store.delivered(stream)).toEqual([
        { index: 1, deliveredAt: 1_700_000_000_123, token: 'tok-1' },
        { index: 2, deliveredAt: 1_700_000_000_456, token: undefined },
      ]);
      if (fx.reopen) {
        store = await fx.reopen();
        expect(await store.indices(stream)).toEqual([0]);
        expect(await store.redeliver(stream, 2)).toEqual(testKey(2));
        expect((await store.delivered(stream)).map((d) => d.index)).toEqual([1, 2]);
      }
      await store.erase(stream, [1, 7]);
      expect(await store.redeliver(stream, 1)).toBeUndefined();
      expect((await store.delivered(stream)).map((d) => d.index)).toEqual([2]);
      await store.deleteStream(stream);
      expect(await store.delivered(stream)).toEqual([]);
      expect(await store.redeliver(stream, 2)).toBeUndefined();
    });

    it('re-delivery window: a key is delivered at most once, also to 20 concurrent callers, and never to take after that', async () => {
      await store.putMany(stream, 4, [testKey(4)]);
      const results = await Promise.all(Array.from({ length: 20 }, () => store.deliver(stream, 4, Date.now())));
      expect(results.filter((r) => r !== undefined)).toHaveLength(1);
      expect(await store.deliver(stream, 4, Date.now())).toBeUndefined();
      expect(await store.deliver(stream, 5, Date.now())).toBeUndefined();
      expect(await store.indices(stream)).toEqual([]);
    });

    it('when putMany gets an empty key array, then nothing is stored', async () => {
      await store.putMany(stream, 0, []);
      expect(await store.indices(stream)).toEqual([]);
    });

    it('when keys of 1 byte and of 1024 bytes are stored, then they come back with exact length', async () => {
      await store.putMany(stream, 0, [testKey(1, 1), testKey(2, 1024), new Uint8Array(16)]);
      const a = await store.take(stream, 0);
      const b = await store.take(stream, 1);
      const zero = await store.take(stream, 2);
      expect(a).toBeInstanceOf(Uint8Array);
      expect(a).toEqual(testKey(1, 1));
      expect(b).toEqual(testKey(2, 1024));
      expect(zero).toEqual(new Uint8Array(16));
    });

    it('when keys are views into a larger buffer, then only the viewed bytes are stored', async () => {
      const backing = Uint8Array.from({ length: 64 }, (_, i) => i);
      await store.putMany(stream, 0, [backing.subarray(8, 16), backing.subarray(40, 48)]);
      expect(await store.take(stream, 0)).toEqual(backing.slice(8, 16));
      expect(await store.take(stream, 1)).toEqual(backing.slice(40, 48));
    });

    it('when the caller reuses its arrays after putMany resolves, then the stored keys are unchanged', async () => {
      const k = testKey(7);
      await store.putMany(stream, 0, [k]);
      k.fill(0);
      expect(await store.take(stream, 0)).toEqual(testKey(7));
    });

    it('when an index is negative or fractional, then the call rejects', async () => {
      await expect(store.putMany(stream, -1, [testKey(1)])).rejects.toThrow(RangeError);
      await expect(store.putMany(stream, 0.5, [testKey(1)])).rejects.toThrow(RangeError);
      await expect(store.take(stream, -1)).rejects.toThrow(RangeError);
      expect(await store.indices(stream)).toEqual([]);
    });

    it('when the store is reopened, then stored keys persist and taken keys stay gone', async ({ skip }) => {
      if (!fx.reopen) return skip('factory has no reopen');
      await store.putMany(stream, 0, [testKey(0), testKey(1), testKey(2)]);
      await store.take(stream, 1);
      store = await fx.reopen();
      expect(await store.indices(stream)).toEqual([0, 2]);
      expect(await store.take(stream, 2)).toEqual(testKey(2));
    });
  });
}
