/**
 * The contract every ReconciledBlockStore adapter runs (SQLite, Vault, memory). A factory gives a
 * fresh, empty store per test; `reopen` (optional) closes it and opens a new instance on the same
 * data; `holdsBytes` (optional) asks the backend itself whether any stored byte sequence contains a
 * pattern, so erasure is checked where the bits were, not through the store's own API.
 */
import { createHash, randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/store/errors.js';
import {
  MAX_RECONCILED_BLOCK_BITS,
  MAX_RECONCILED_BLOCK_META_BYTES,
  type ReconciledBlock,
  type ReconciledBlockStore,
} from '../../src/store/ReconciledBlockStore.js';
import type { StoreFixture } from './contract.js';

export interface ReconciledStoreFixture extends StoreFixture<ReconciledBlockStore> {
  /** True when the backend's files / secrets still contain `pattern` anywhere. */
  holdsBytes?(pattern: Uint8Array): Promise<boolean>;
}

export type ReconciledBlockStoreFactory = () => Promise<ReconciledStoreFixture>;

/** `length` bytes no other seed gives: SHAKE256 of the seed. */
export function distinctiveBytes(seed: string, length: number): Uint8Array {
  return Uint8Array.from(createHash('shake256', { outputLength: length }).update(seed).digest());
}

/** A block with deterministic bits (from blockId and seed) and public counts as meta. */
export function sampleBlock(blockId: string, opts: { bitLength?: number; seed?: string; storedAt?: number; meta?: string } = {}): ReconciledBlock {
  const bitLength = opts.bitLength ?? 8_000;
  const bits = distinctiveBytes(`${blockId}/${opts.seed ?? ''}`, Math.ceil(bitLength / 8));
  return {
    blockId,
    bits,
    bitLength,
    meta: opts.meta ?? JSON.stringify({ pulses: 1_000_000, detections: { mu1: 4_100, mu2: 1_200, mu3: 3 }, zErrors: 17, disclosedBits: bitLength >> 2 }),
    storedAt: opts.storedAt ?? 1_700_000_000_000,
  };
}

/** A block with its bits as a SHA-256 digest: compares exactly, and fast for megabytes (toEqual walks arrays element by element). */
export function summary(b: ReconciledBlock): Omit<ReconciledBlock, 'bits'> & { bits: string; bytes: number } {
  return { blockId: b.blockId, bitLength: b.bitLength, meta: b.meta, storedAt: b.storedAt, bytes: b.bits.length, bits: createHash('sha256').update(b.bits).digest('hex') };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

/** Every text an error carries, to check that no bits leaked into it. */
function errorText(err: unknown): string {
  const e = err as Error;
  return `${e.message} ${e.stack} ${JSON.stringify(e)} ${String(e.cause)}`;
}

function expectNoBits(err: unknown, bits: Uint8Array): void {
  const text = errorText(err);
  const probe = Buffer.from(bits.subarray(0, 12));
  expect(text).not.toContain(probe.toString('hex'));
  expect(text).not.toContain(probe.toString('base64').slice(0, 12));
}

/**
 * What an adapter can be asked beyond the port: `reopen` (a durable backend opened again) and `holdsBytes` (a probe
 * of the backend's raw bytes). The memory adapter has neither, so those cases are not defined for it at all
 * (rather than skipped); a factory that declares one must provide it.
 */
export interface ReconciledContractCapabilities {
  reopen: boolean;
  holdsBytes: boolean;
}

export function runReconciledBlockStoreContract(name: string, factory: ReconciledBlockStoreFactory, capabilities: ReconciledContractCapabilities = { reopen: true, holdsBytes: true }): void {
  const itWhen = (capable: boolean): typeof it | ((...args: unknown[]) => void) => (capable ? it : () => undefined);
  describe(`ReconciledBlockStore contract: ${name}`, () => {
    let fx: ReconciledStoreFixture;
    let store: ReconciledBlockStore;
    let stream: string;

    beforeEach(async () => {
      fx = await factory();
      store = fx.store;
      stream = randomUUID();
    });
    afterEach(async () => {
      await fx.cleanup();
    });

    it('when blocks are appended, then list returns them in append order with every field as given', async () => {
      // IDs and storedAt deliberately out of order: only the append sequence can order them.
      const blocks = [
        sampleBlock('round-c', { storedAt: 1_700_000_000_300, bitLength: 13 }),
        sampleBlock('round-a', { storedAt: 1_700_000_000_100, bitLength: 64_000 }),
        sampleBlock('round-e', { storedAt: 1_700_000_000_050, bitLength: 1 }),
        sampleBlock('9_b-x', { storedAt: 1_700_000_000_200 }),
      ];
      for (const b of blocks) await store.append(stream, b);
      const listed = await store.list(stream);
      expect(listed.map((b) => b.blockId)).toEqual(['round-c', 'round-a', 'round-e', '9_b-x']);
      expect(listed).toEqual(blocks);
      for (const b of listed) expect(b.bits).toBeInstanceOf(Uint8Array);
    });

    it('when a stream is unknown or empty, then list is empty', async () => {
      expect(await store.list(stream)).toEqual([]);
    });

    it('when the same block is appended again (another storedAt), then nothing changes: one copy, its first storedAt and place', async () => {
      const a = sampleBlock('a', { storedAt: 1 });
      const b = sampleBlock('b', { storedAt: 2 });
      await store.append(stream, a);
      await store.append(stream, b);
      await store.append(stream, { ...a, storedAt: 99, bits: Uint8Array.from(a.bits) });
      expect(await store.list(stream)).toEqual([a, b]);
    });

    it('when a blockId is appended again with other bits, bitLength or meta, then it rejects with conflict naming the block, without bits, and nothing changes', async () => {
      const a = sampleBlock('blk-1');
      await store.append(stream, a);
      const otherBits = Uint8Array.from(a.bits);
      otherBits[otherBits.length - 1] ^= 0x01;
      const variants: ReconciledBlock[] = [
        { ...a, bits: otherBits },
        { ...a, bitLength: a.bitLength - 1 },
        { ...a, meta: JSON.stringify({ pulses: 2 }) },
      ];
      for (const v of variants) {
        const err = await rejection(store.append(stream, v));
        expect(err).toBeInstanceOf(StoreError);
        expect((err as StoreError).kind).toBe('conflict');
        expect((err as StoreError).message).toMatch(/blk-1/);
        expectNoBits(err, a.bits);
      }
      expect(await store.list(stream)).toEqual([a]);
    });

    it('when blocks are consumed, then exactly those are gone, unknown IDs are ignored, the rest keep their order', async () => {
      const blocks = ['b0', 'b1', 'b2', 'b3', 'b4'].map((id) => sampleBlock(id));
      for (const b of blocks) await store.append(stream, b);
      await store.consume(stream, ['b3', 'b1', 'never-there']);
      expect(await store.list(stream)).toEqual([blocks[0], blocks[2], blocks[4]]);
      await store.consume(stream, []);
      await store.append(stream, sampleBlock('b5'));
      expect((await store.list(stream)).map((b) => b.blockId)).toEqual(['b0', 'b2', 'b4', 'b5']);
    });

    it('when a consumed block is appended again, also after a repeated consume, then it is refused and stays gone', async () => {
      const a = sampleBlock('used-once');
      await store.append(stream, a);
      await store.consume(stream, ['used-once']);
      await store.consume(stream, ['used-once']);
      const err = await rejection(store.append(stream, a));
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).kind).toBe('conflict');
      expect((err as StoreError).message).toMatch(/used-once.*consumed/);
      expectNoBits(err, a.bits);
      expect(await store.list(stream)).toEqual([]);
    });

    itWhen(capabilities.reopen)('when the store is reopened, then appended blocks are there in order, consumed ones never come back and cannot be appended again', async () => {
      if (!fx.reopen) throw new Error('the factory declares reopen but provides none');
      const blocks = ['r2', 'r0', 'r1', 'r3'].map((id, i) => sampleBlock(id, { storedAt: 1_000 + i }));
      for (const b of blocks) await store.append(stream, b);
      await store.consume(stream, ['r0', 'r3']);
      store = await fx.reopen();
      expect(await store.list(stream)).toEqual([blocks[0], blocks[2]]);
      await expect(store.append(stream, blocks[1])).rejects.toMatchObject({ kind: 'conflict' });
      await store.append(stream, sampleBlock('r4'));
      store = await fx.reopen();
      expect((await store.list(stream)).map((b) => b.blockId)).toEqual(['r2', 'r1', 'r4']);
    });

    it('when a stream is deleted, then its blocks and consumed IDs are gone and other streams are untouched', async () => {
      const other = randomUUID();
      await store.append(stream, sampleBlock('x1'));
      await store.append(stream, sampleBlock('x2'));
      await store.consume(stream, ['x2']);
      await store.append(other, sampleBlock('x1', { seed: 'other' }));
      await store.deleteStream(stream);
      expect(await store.list(stream)).toEqual([]);
      expect(await store.list(other)).toEqual([sampleBlock('x1', { seed: 'other' })]);
      // A stream ID used again after CLOSE starts from nothing.
      await store.append(stream, sampleBlock('x2'));
      expect((await store.list(stream)).map((b) => b.blockId)).toEqual(['x2']);
      await expect(store.deleteStream(randomUUID())).resolves.toBeUndefined();
    });

    it('when two streams use the same blockId with different bits, then each sees only its own and consume in one leaves the other', async () => {
      const other = randomUUID();
      const mine = sampleBlock('shared-id', { seed: 'mine' });
      const theirs = sampleBlock('shared-id', { seed: 'theirs' });
      await store.append(stream, mine);
      await store.append(other, theirs);
      expect(await store.list(stream)).toEqual([mine]);
      expect(await store.list(other)).toEqual([theirs]);
      await store.consume(stream, ['shared-id']);
      expect(await store.list(stream)).toEqual([]);
      expect(await store.list(other)).toEqual([theirs]);
    });

    it('when a blockId is malformed, then append and consume reject with a RangeError naming blockId and store nothing', async () => {
      for (const bad of ['', 'a/b', '../x', 'a b', 'a.b', 'x'.repeat(65), 'é', 'a?list=1']) {
        const err = await rejection(store.append(stream, { ...sampleBlock('ok'), blockId: bad }));
        expect(err).toBeInstanceOf(RangeError);
        expect((err as Error).message).toMatch(/blockId/);
        await expect(store.consume(stream, [bad])).rejects.toThrow(/blockId/);
      }
      await store.append(stream, sampleBlock('x'.repeat(64)));
      expect((await store.list(stream)).map((b) => b.blockId)).toEqual(['x'.repeat(64)]);
    });

    it('when a field breaks the rules, then append rejects with a RangeError naming that field, without bits, and stores nothing', async () => {
      const good = sampleBlock('field-check', { bitLength: 20 });
      const cases: Array<[Partial<ReconciledBlock>, RegExp]> = [
        [{ meta: 'x'.repeat(MAX_RECONCILED_BLOCK_META_BYTES + 1) }, /meta/],
        // 8,193 characters of two bytes each: under the limit in characters, over it in bytes.
        [{ meta: JSON.stringify('é'.repeat(8_193)) }, /meta/],
        [{ meta: '{"pulses": 1' }, /meta/],
        [{ meta: '"\ud800"' }, /meta/], // a lone surrogate
        [{ meta: 7 as unknown as string }, /meta/],
        [{ bitLength: -1 }, /bitLength/],
        [{ bitLength: 2.5 }, /bitLength/],
        [{ bitLength: MAX_RECONCILED_BLOCK_BITS + 8 }, /bitLength/],
        [{ bitLength: 28 }, /bits/],
        [{ bitLength: 8 }, /bits/],
        [{ bits: [1, 2, 3] as unknown as Uint8Array }, /bits/],
        [{ storedAt: -5 }, /storedAt/],
        [{ storedAt: Number.NaN }, /storedAt/],
      ];
      for (const [patch, field] of cases) {
        const err = await rejection(store.append(stream, { ...good, ...patch }));
        expect(err, `${field}`).toBeInstanceOf(RangeError);
        expect((err as Error).message).toMatch(field);
        expectNoBits(err, good.bits);
      }
      for (const bad of ['', 'a/b', '../x', 'x'.repeat(65)]) {
        await expect(store.append(bad, good)).rejects.toThrow(/keyStreamId/);
        await expect(store.list(bad)).rejects.toThrow(/keyStreamId/);
        await expect(store.consume(bad, ['a'])).rejects.toThrow(/keyStreamId/);
        await expect(store.deleteStream(bad)).rejects.toThrow(/keyStreamId/);
      }
      expect(await store.list(stream)).toEqual([]);
    });

    it('when meta is exactly the size limit in bytes of UTF-8, then it is stored and comes back verbatim', async () => {
      const body = 'ü'.repeat((MAX_RECONCILED_BLOCK_META_BYTES - 2) / 2);
      const meta = JSON.stringify(body);
      expect(Buffer.byteLength(meta)).toBe(MAX_RECONCILED_BLOCK_META_BYTES);
      const b = sampleBlock('meta-limit', { meta });
      await store.append(stream, b);
      expect((await store.list(stream))[0].meta).toBe(meta);
    });

    it('when a block has no bits, or more than 4 Mbit, then it round-trips exactly', async () => {
      const empty = sampleBlock('empty', { bitLength: 0 });
      // 5 Mbit + 3 bits: several 256 KiB parts in Vault, overflow pages in SQLite.
      const large = sampleBlock('large', { bitLength: 5_000_003 });
      await store.append(stream, empty);
      await store.append(stream, large);
      expect((await store.list(stream)).map(summary)).toEqual([empty, large].map(summary));
      await store.append(stream, { ...large, bits: Uint8Array.from(large.bits) }); // idempotent at this size too
      expect(await store.list(stream)).toHaveLength(2);
    });

    it('when the caller changes its arrays after append or list, then the stored bits are unchanged', async () => {
      const b = sampleBlock('copy');
      const backing = new Uint8Array(b.bits.length + 16);
      backing.set(b.bits, 8);
      const view = backing.subarray(8, 8 + b.bits.length);
      await store.append(stream, { ...b, bits: view });
      backing.fill(0);
      const [first] = await store.list(stream);
      first.bits.fill(0);
      expect(await store.list(stream)).toEqual([b]);
    });

    it('when 12 appends of different blocks run concurrently, then all are stored once, in one order that later lists repeat', async () => {
      const blocks = Array.from({ length: 12 }, (_, i) => sampleBlock(`c${i}`, { bitLength: 800 + i }));
      await Promise.all(blocks.map((b) => store.append(stream, b)));
      const listed = await store.list(stream);
      expect(listed.map((b) => b.blockId).sort()).toEqual(blocks.map((b) => b.blockId).sort());
      for (const b of listed) expect(b).toEqual(blocks.find((x) => x.blockId === b.blockId));
      expect((await store.list(stream)).map((b) => b.blockId)).toEqual(listed.map((b) => b.blockId));
    });

    it('when the same blockId is appended concurrently with the same and with other content, then one copy is kept and the others conflict', async () => {
      const a = sampleBlock('race');
      const rival = sampleBlock('race', { seed: 'rival' });
      const results = await Promise.allSettled([a, a, rival, a, rival].map((b) => store.append(stream, b)));
      const listed = await store.list(stream);
      expect(listed).toHaveLength(1);
      const winner = listed[0];
      expect([a, rival]).toContainEqual(winner);
      const kept = Buffer.from(winner.bits).equals(Buffer.from(a.bits)) ? a : rival;
      [a, a, rival, a, rival].forEach((b, i) => {
        if (b === kept) expect(results[i].status).toBe('fulfilled');
        else expect(results[i]).toMatchObject({ status: 'rejected', reason: { kind: 'conflict' } });
      });
    });

    itWhen(capabilities.holdsBytes)('when blocks are consumed or their stream deleted, then the backend holds none of their bytes', async () => {
      if (!fx.holdsBytes) throw new Error('the factory declares holdsBytes but provides none');
      const patternA = distinctiveBytes(`${stream}/A`, 64);
      const patternB = distinctiveBytes(`${stream}/B`, 64);
      const patternKeep = distinctiveBytes(`${stream}/keep`, 64);
      // The pattern at the start of a small block, and in the middle and at the end of a large one.
      const small = { ...sampleBlock('small'), bits: Uint8Array.from([...patternA, ...distinctiveBytes('pad', 136)]), bitLength: 200 * 8 };
      const largeBits = distinctiveBytes(`${stream}/large`, 700_000);
      largeBits.set(patternB, 350_000);
      largeBits.set(patternA, largeBits.length - 64);
      const large = { ...sampleBlock('large'), bits: largeBits, bitLength: largeBits.length * 8 };
      const keep = { ...sampleBlock('keep'), bits: patternKeep, bitLength: 512 };
      await store.append(stream, small);
      await store.append(stream, large);
      await store.append(stream, keep);
      expect(await fx.holdsBytes(patternA)).toBe(true); // the probe itself works
      expect(await fx.holdsBytes(patternB)).toBe(true);
      await store.consume(stream, ['small', 'large']);
      expect(await fx.holdsBytes(patternA)).toBe(false);
      expect(await fx.holdsBytes(patternB)).toBe(false);
      expect(await fx.holdsBytes(patternKeep)).toBe(true);
      await store.deleteStream(stream);
      expect(await fx.holdsBytes(patternKeep)).toBe(false);
    });

    it('when streams() is offered, then it names the streams holding blocks or consumed IDs until they are deleted', async ({ skip }) => {
      if (!store.streams) return skip('adapter has no streams()');
      const other = randomUUID();
      await store.append(stream, sampleBlock('s1'));
      await store.append(other, sampleBlock('s1'));
      await store.consume(other, ['s1']);
      expect((await store.streams()).filter((s) => s === stream || s === other).sort()).toEqual([stream, other].sort());
      await store.deleteStream(stream);
      await store.deleteStream(other);
      expect((await store.streams()).filter((s) => s === stream || s === other)).toEqual([]);
    });

    it('when the store is closed, then calls reject with StoreError unavailable', async () => {
      await store.close();
      await expect(store.list(stream)).rejects.toMatchObject({ name: 'StoreError', kind: 'unavailable' });
      await expect(store.append(stream, sampleBlock('late'))).rejects.toMatchObject({ name: 'StoreError', kind: 'unavailable' });
    });
  });
}
