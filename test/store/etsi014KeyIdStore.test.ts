/**
 * Etsi014KeyIdStore contract, run against the SQLite adapter (file on disk, reopened to show that
 * issued key IDs survive a restart) and the in-memory test double.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Etsi014KeyIdStore, IssuedKeyRecord } from '../../src/store/Etsi014KeyIdStore.js';
import { openSqliteDatabase, SQLITE_SCHEMA_VERSION } from '../../src/store/sqlite/SqliteDatabase.js';
import { SqliteEtsi014KeyIdStore } from '../../src/store/sqlite/SqliteEtsi014KeyIdStore.js';
import { MemoryEtsi014KeyIdStore } from '../support/memoryEtsi014Store.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const STREAM = '3f1e8a52-8c3b-8d2e-9a41-5b6c7d8e9f00';
const record = (indices: number[], over: Partial<IssuedKeyRecord> = {}): IssuedKeyRecord => ({
  keyId: randomUUID(),
  keyStreamId: STREAM,
  indices,
  sizeBits: 256 * indices.length,
  masterSaeId: 'sae-a',
  slaveSaeId: 'sae-b',
  createdAt: 1_700_000_000_000,
  ...over,
});

function contract(name: string, open: () => Etsi014KeyIdStore) {
  describe(`${name} Etsi014KeyIdStore`, () => {
    it('when records are stored, then get returns them with their indices in part order', async () => {
      const s = open();
      const a = record([5, 3, 9]);
      const b = record([4]);
      expect(await s.putMany([a, b])).toBe(true);
      const got = await s.get([b.keyId, a.keyId, randomUUID()]);
      expect(got.sort((x, y) => x.indices.length - y.indices.length)).toEqual([b, a]);
      expect(await s.count()).toBe(2);
      await s.close();
    });

    it('when a key ID or a stream index is recorded already, then the whole batch is refused', async () => {
      const s = open();
      const a = record([1, 2]);
      expect(await s.putMany([a])).toBe(true);
      expect(await s.putMany([record([7]), record([2])])).toBe(false);
      expect(await s.putMany([{ ...record([8]), keyId: a.keyId }])).toBe(false);
      expect(await s.count()).toBe(1);
      expect(await s.putMany([record([2], { keyStreamId: randomUUID() })])).toBe(true);
      await s.close();
    });

    it('when key IDs are claimed, then all go at once, and a claim with any missing ID takes none', async () => {
      const s = open();
      const a = record([10]);
      const b = record([11, 12]);
      await s.putMany([a, b]);
      expect(await s.claim([a.keyId, randomUUID()])).toBeUndefined();
      expect(await s.count()).toBe(2);
      const claimed = await s.claim([a.keyId, b.keyId]);
      expect(claimed?.map((r) => r.keyId).sort()).toEqual([a.keyId, b.keyId].sort());
      expect(await s.claim([a.keyId])).toBeUndefined();
      expect(await s.count()).toBe(0);
      await s.close();
    });

    it('when writes are issued concurrently (one commit), then each is still all-or-none on its own', async () => {
      const s = open();
      const a = record([30]);
      const [x, y, z] = await Promise.all([s.putMany([a]), s.putMany([record([31]), record([30])]), s.putMany([record([32])])]);
      expect([x, y, z]).toEqual([true, false, true]);
      expect(await s.count()).toBe(2);
      const claims = await Promise.all([s.claim([a.keyId]), s.claim([a.keyId]), s.claim([a.keyId])]);
      expect(claims.filter((c) => c !== undefined)).toHaveLength(1);
      await s.close();
    });

    it('when asked which indices are recorded, then it names exactly those of this stream a record uses', async () => {
      const s = open();
      await s.putMany([record([40, 41]), record([43]), record([44], { keyStreamId: randomUUID() })]);
      expect([...(await s.recorded(STREAM, [39, 40, 41, 42, 43, 44]))].sort()).toEqual([40, 41, 43]);
      expect((await s.recorded(STREAM, [])).size).toBe(0);
      await s.close();
    });

    it('when indices are discarded, then every record using one of them goes', async () => {
      const s = open();
      const a = record([20, 21]);
      const b = record([22]);
      await s.putMany([a, b]);
      expect(await s.discard(STREAM, [21, 99])).toBe(1);
      expect((await s.get([a.keyId, b.keyId])).map((r) => r.keyId)).toEqual([b.keyId]);
      await s.close();
    });
  });
}

contract('memory', () => new MemoryEtsi014KeyIdStore());
contract('SQLite', () => new SqliteEtsi014KeyIdStore(openSqliteDatabase(':memory:')));

describe('SQLite Etsi014KeyIdStore on disk', () => {
  it('when the database is reopened (a restart), then issued key IDs are still there and claimable once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qkdm-etsi014-store-'));
    dirs.push(dir);
    const first = new SqliteEtsi014KeyIdStore(openSqliteDatabase(dir));
    const a = record([0, 1]);
    await first.putMany([a]);
    await first.close();
    const db = openSqliteDatabase(dir);
    expect(db.pragma('user_version', { simple: true })).toBe(SQLITE_SCHEMA_VERSION);
    const second = new SqliteEtsi014KeyIdStore(db);
    expect(await second.claim([a.keyId])).toEqual([a]);
    await second.close();
    const third = new SqliteEtsi014KeyIdStore(openSqliteDatabase(dir));
    expect(await third.get([a.keyId])).toEqual([]);
    await third.close();
  });
});
