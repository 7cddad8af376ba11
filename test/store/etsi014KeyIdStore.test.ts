/**
 * Etsi014KeyIdStore contract, run against the SQLite adapter (file on disk, reopened to show that
 * issued key IDs and their claims survive a restart) and the in-memory test double.
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
/** Claim times and the re-delivery window of these tests (ms). */
const T0 = 1_700_000_100_000;
const WINDOW = 60_000;
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

    it('when key IDs are claimed, then all are claimed at once (claimedAt), and a claim with any missing ID claims none', async () => {
      const s = open();
      const a = record([10]);
      const b = record([11, 12]);
      await s.putMany([a, b]);
      expect(await s.claim([a.keyId, randomUUID()], T0, WINDOW)).toBeUndefined();
      expect(await s.count()).toBe(2);
      expect((await s.get([a.keyId]))[0]!.claimedAt).toBeUndefined();
      const claimed = await s.claim([a.keyId, b.keyId], T0, WINDOW);
      expect(claimed?.sort((x, y) => x.indices.length - y.indices.length)).toEqual([{ ...a, claimedAt: T0 }, { ...b, claimedAt: T0 }]);
      expect(await s.count()).toBe(0); // none waiting any more
      expect((await s.get([a.keyId, b.keyId])).map((r) => r.claimedAt)).toEqual([T0, T0]);
      await s.close();
    });

    it('issue 13 "delivery that survives a lost answer": a claimed record is claimed again within the window with its first claim time, and never once the window closed', async () => {
      const s = open();
      const a = record([13, 14]);
      const b = record([15]);
      await s.putMany([a, b]);
      expect(await s.claim([a.keyId], T0, WINDOW)).toEqual([{ ...a, claimedAt: T0 }]);
      // A repeat within the window: the same record, the window not extended.
      expect(await s.claim([a.keyId], T0 + WINDOW - 1, WINDOW)).toEqual([{ ...a, claimedAt: T0 }]);
      // A waiting record and a claimed one together: the waiting one is claimed now, the other keeps its time.
      expect((await s.claim([a.keyId, b.keyId], T0 + 10, WINDOW))?.map((r) => r.claimedAt).sort()).toEqual([T0, T0 + 10]);
      // Window closed for a: the whole claim fails and changes nothing.
      expect(await s.claim([a.keyId], T0 + WINDOW, WINDOW)).toBeUndefined();
      expect(await s.claim([a.keyId, b.keyId], T0 + WINDOW + 5, WINDOW)).toBeUndefined();
      expect((await s.get([b.keyId]))[0]!.claimedAt).toBe(T0 + 10);
      // Window 0 (module.redelivery_window_s 0): a claimed record is never claimed again.
      const c = record([16]);
      await s.putMany([c]);
      expect(await s.claim([c.keyId], T0, 0)).toEqual([{ ...c, claimedAt: T0 }]);
      expect(await s.claim([c.keyId], T0, 0)).toBeUndefined();
      await s.close();
    });

    it('when the records of key IDs are removed (the answer left), then they go whether claimed or not, and only they', async () => {
      const s = open();
      const a = record([17]);
      const b = record([18, 19]);
      const c = record([20]);
      await s.putMany([a, b, c]);
      await s.claim([a.keyId], T0, WINDOW);
      expect(await s.remove([a.keyId, b.keyId, randomUUID()])).toBe(2);
      expect((await s.get([a.keyId, b.keyId, c.keyId])).map((r) => r.keyId)).toEqual([c.keyId]);
      expect(await s.remove([])).toBe(0);
      expect(await s.claim([a.keyId], T0 + 1, WINDOW)).toBeUndefined();
      await s.close();
    });

    it('issue 13 "no sequence of requests may leave a pair unable to serve": expire removes waiting records at or past the TTL and claimed ones whose window closed, and returns them with their indices', async () => {
      const s = open();
      const old = record([50, 51], { createdAt: T0 - 10_000 });
      const fresh = record([52], { createdAt: T0 });
      const claimedOld = record([53], { createdAt: T0 - 10_000 });
      const claimedFresh = record([54], { createdAt: T0 - 10_000 });
      await s.putMany([old, fresh, claimedOld, claimedFresh]);
      await s.claim([claimedOld.keyId], T0 - 5_000, WINDOW);
      await s.claim([claimedFresh.keyId], T0, WINDOW);
      // No TTL: waiting records never expire; claimed ones by their claim time only.
      expect(await s.expire(undefined, T0 - 6_000)).toEqual([]);
      const gone = await s.expire(T0 - 10_000, T0 - 5_000);
      expect(gone.map((r) => r.keyId).sort()).toEqual([old.keyId, claimedOld.keyId].sort());
      expect(gone.find((r) => r.keyId === old.keyId)).toEqual(old);
      expect(gone.find((r) => r.keyId === claimedOld.keyId)).toEqual({ ...claimedOld, claimedAt: T0 - 5_000 });
      expect((await s.get([old.keyId, fresh.keyId, claimedOld.keyId, claimedFresh.keyId])).map((r) => r.keyId).sort()).toEqual([fresh.keyId, claimedFresh.keyId].sort());
      // A claimed record does not expire by age, only by its window.
      expect(await s.expire(T0 + 1, T0 - 1)).toEqual([fresh]);
      expect((await s.recorded(STREAM, [50, 51, 52, 53, 54])).size).toBe(1);
      expect(await s.expire(undefined, T0)).toEqual([{ ...claimedFresh, claimedAt: T0 }]);
      await s.close();
    });

    it('when writes are issued concurrently (one commit), then each is still all-or-none on its own', async () => {
      const s = open();
      const a = record([30]);
      const [x, y, z] = await Promise.all([s.putMany([a]), s.putMany([record([31]), record([30])]), s.putMany([record([32])])]);
      expect([x, y, z]).toEqual([true, false, true]);
      expect(await s.count()).toBe(2);
      // Concurrent claims in one commit: one claim time, the same records (who may claim is the service's check).
      const claims = await Promise.all([s.claim([a.keyId], T0, WINDOW), s.claim([a.keyId], T0 + 1, WINDOW), s.claim([a.keyId, randomUUID()], T0 + 2, WINDOW)]);
      expect(claims).toEqual([[{ ...a, claimedAt: T0 }], [{ ...a, claimedAt: T0 }], undefined]);
      await s.close();
    });

    it('when asked which indices are recorded, then it names exactly those of this stream a record uses', async () => {
      const s = open();
      const claimed = record([43]);
      await s.putMany([record([40, 41]), claimed, record([44], { keyStreamId: randomUUID() })]);
      await s.claim([claimed.keyId], T0, WINDOW); // a claimed record still records its indices
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
  it('when the database is reopened (a restart), then issued key IDs are still there and claimable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qkdm-etsi014-store-'));
    dirs.push(dir);
    const first = new SqliteEtsi014KeyIdStore(openSqliteDatabase(dir));
    const a = record([0, 1]);
    await first.putMany([a]);
    await first.close();
    const db = openSqliteDatabase(dir);
    expect(db.pragma('user_version', { simple: true })).toBe(SQLITE_SCHEMA_VERSION);
    const second = new SqliteEtsi014KeyIdStore(db);
    expect(await second.claim([a.keyId], T0, WINDOW)).toEqual([{ ...a, claimedAt: T0 }]);
    await second.close();
    const third = new SqliteEtsi014KeyIdStore(openSqliteDatabase(dir));
    expect(await third.get([a.keyId])).toEqual([{ ...a, claimedAt: T0 }]);
    expect(await third.remove([a.keyId])).toBe(1);
    await third.close();
    const fourth = new SqliteEtsi014KeyIdStore(openSqliteDatabase(dir));
    expect(await fourth.get([a.keyId])).toEqual([]);
    await fourth.close();
  });

  it('issue 13 "delivery that survives a lost answer": a claim survives a restart (the module crashed between claim and answer), is re-claimable within the window, and expires by its claim time', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qkdm-etsi014-store-'));
    dirs.push(dir);
    const first = new SqliteEtsi014KeyIdStore(openSqliteDatabase(dir));
    const a = record([0, 1]);
    const stale = record([2], { createdAt: T0 - 7_200_000 });
    await first.putMany([a, stale]);
    await first.claim([a.keyId], T0, WINDOW);
    await first.close();
    const second = new SqliteEtsi014KeyIdStore(openSqliteDatabase(dir));
    expect(await second.claim([a.keyId], T0 + 1_000, WINDOW)).toEqual([{ ...a, claimedAt: T0 }]);
    expect(await second.count()).toBe(1);
    // Start-up sweep after the window, with a one-hour TTL: both go, durably.
    expect((await second.expire(T0 + WINDOW - 3_600_000, T0 + WINDOW - WINDOW)).map((r) => r.keyId).sort()).toEqual([a.keyId, stale.keyId].sort());
    await second.close();
    const third = new SqliteEtsi014KeyIdStore(openSqliteDatabase(dir));
    expect(await third.get([a.keyId, stale.keyId])).toEqual([]);
    await third.close();
  });

  it('when a database written by the schema before step 6 (no claimed_at) is opened, then its waiting key IDs are kept and claimable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qkdm-etsi014-store-'));
    dirs.push(dir);
    const db = openSqliteDatabase(dir);
    // Roll the file back to schema 5: what a module before this change left behind.
    db.exec('DROP INDEX etsi014_key_ids_expiry; ALTER TABLE etsi014_key_ids DROP COLUMN claimed_at;');
    db.pragma('user_version = 5');
    const a = record([7]);
    db.prepare('INSERT INTO etsi014_key_ids (key_id, part, stream, idx, size, master_sae, slave_sae, created_at) VALUES (?, 0, ?, 7, 256, ?, ?, ?)').run(a.keyId, STREAM, 'sae-a', 'sae-b', a.createdAt);
    db.close();
    const s = new SqliteEtsi014KeyIdStore(openSqliteDatabase(dir));
    expect(await s.get([a.keyId])).toEqual([a]);
    expect(await s.claim([a.keyId], T0, WINDOW)).toEqual([{ ...a, claimedAt: T0 }]);
    await s.close();
  });
});
