/**
 * Etsi014KeyIdStore on the embedded SQLite database (table `etsi014_key_ids`, schema steps 2 and 6 of
 * {@link openSqliteDatabase}). Prepared statements only.
 *
 * - Every write (putMany, claim, remove, expire, discard) is all-or-none and durable when it resolves
 *   (WAL + synchronous=FULL), so issued key IDs and their claims survive a restart, and a claim whose
 *   re-delivery window closed is never claimed again.
 * - Group commit: writes requested in the same event-loop turn run in one transaction, each in its own
 *   savepoint (a refused putMany rolls back alone), so concurrent requests share one fsync instead of
 *   blocking the event loop for one each.
 */
import type { Statement, Transaction } from 'better-sqlite3';
import type { Etsi014KeyIdStore, IssuedKeyRecord } from '../Etsi014KeyIdStore.js';
import { releaseDatabase, retainDatabase, sqliteError, type SqliteDb } from './SqliteDatabase.js';

interface Row {
  key_id: string;
  part: number;
  stream: string;
  idx: number;
  size: number;
  master_sae: string;
  slave_sae: string;
  created_at: number;
  claimed_at: number | null;
}

/** Groups rows (any order) into records with their indices in part order. */
function toRecords(rows: readonly Row[]): IssuedKeyRecord[] {
  const byId = new Map<string, { record: IssuedKeyRecord; parts: Array<[number, number]> }>();
  for (const r of rows) {
    let entry = byId.get(r.key_id);
    if (!entry) {
      entry = {
        record: {
          keyId: r.key_id,
          keyStreamId: r.stream,
          indices: [],
          sizeBits: r.size,
          masterSaeId: r.master_sae,
          slaveSaeId: r.slave_sae,
          createdAt: r.created_at,
          ...(r.claimed_at === null ? {} : { claimedAt: r.claimed_at }),
        },
        parts: [],
      };
      byId.set(r.key_id, entry);
    }
    entry.parts.push([r.part, r.idx]);
  }
  return [...byId.values()].map(({ record, parts }) => ({ ...record, indices: parts.sort((a, b) => a[0] - b[0]).map((p) => p[1]) }));
}

export class SqliteEtsi014KeyIdStore implements Etsi014KeyIdStore {
  private readonly insert: Statement<[string, number, string, number, number, string, string, number], unknown>;
  private readonly select: Statement<[string], Row>;
  /** The key IDs using one stream index (read-only; discard and recorded use it). */
  private readonly removeByIndex: Statement<[string, number], { key_id: string }>;
  /** Recorded indices of a stream in a range: one indexed range scan (UNIQUE (stream, idx)) per orphan check. */
  private readonly recordedBetween: Statement<[string, number, number], { idx: number }>;
  private readonly removeId: Statement<[string], unknown>;
  private readonly countIds: Statement<[], { n: number }>;
  private readonly markClaimed: Statement<[number, string], unknown>;
  private readonly selectExpiredWaiting: Statement<[number], Row>;
  private readonly selectExpiredClaimed: Statement<[number], Row>;
  private readonly putTx: Transaction<(records: readonly IssuedKeyRecord[]) => boolean>;
  private readonly claimTx: Transaction<(keyIds: readonly string[], now: number, windowMs: number) => IssuedKeyRecord[] | undefined>;
  private readonly removeTx: Transaction<(keyIds: readonly string[]) => number>;
  private readonly expireTx: Transaction<(createdAtOrBefore: number | undefined, claimedAtOrBefore: number) => IssuedKeyRecord[]>;
  private readonly discardTx: Transaction<(keyStreamId: string, indices: readonly number[]) => number>;
  private readonly batchTx: Transaction<(batch: readonly PendingWrite[]) => void>;
  private pending: PendingWrite[] = [];
  private closed = false;

  constructor(private readonly db: SqliteDb) {
    try {
      this.insert = db.prepare(
        'INSERT INTO etsi014_key_ids (key_id, part, stream, idx, size, master_sae, slave_sae, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      );
      this.select = db.prepare('SELECT key_id, part, stream, idx, size, master_sae, slave_sae, created_at, claimed_at FROM etsi014_key_ids WHERE key_id = ?');
      this.removeByIndex = db.prepare('SELECT key_id FROM etsi014_key_ids WHERE stream = ? AND idx = ?');
      this.recordedBetween = db.prepare('SELECT idx FROM etsi014_key_ids WHERE stream = ? AND idx BETWEEN ? AND ?');
      this.removeId = db.prepare('DELETE FROM etsi014_key_ids WHERE key_id = ?');
      this.countIds = db.prepare('SELECT COUNT(DISTINCT key_id) AS n FROM etsi014_key_ids WHERE claimed_at IS NULL');
      this.markClaimed = db.prepare('UPDATE etsi014_key_ids SET claimed_at = ? WHERE key_id = ? AND claimed_at IS NULL');
      this.selectExpiredWaiting = db.prepare(
        'SELECT key_id, part, stream, idx, size, master_sae, slave_sae, created_at, claimed_at FROM etsi014_key_ids WHERE claimed_at IS NULL AND created_at <= ?',
      );
      this.selectExpiredClaimed = db.prepare(
        'SELECT key_id, part, stream, idx, size, master_sae, slave_sae, created_at, claimed_at FROM etsi014_key_ids WHERE claimed_at IS NOT NULL AND claimed_at <= ?',
      );
    } catch (err) {
      throw sqliteError(err, 'prepare');
    }
    this.putTx = db.transaction((records: readonly IssuedKeyRecord[]) => {
      try {
        for (const r of records) {
          r.indices.forEach((idx, part) => this.insert.run(r.keyId, part, r.keyStreamId, idx, r.sizeBits, r.masterSaeId, r.slaveSaeId, r.createdAt));
        }
      } catch (err) {
        if (typeof (err as { code?: unknown }).code === 'string' && (err as { code: string }).code.startsWith('SQLITE_CONSTRAINT')) {
          throw new DuplicateRecord();
        }
        throw err;
      }
      return true;
    });
    this.claimTx = db.transaction((keyIds: readonly string[], now: number, windowMs: number) => {
      const rows: Row[] = [];
      for (const id of keyIds) {
        const found = this.select.all(id);
        // Missing, or claimed and its window closed: nothing changed yet, the transaction changes nothing.
        if (found.length === 0 || found.some((r) => r.claimed_at !== null && now - r.claimed_at >= windowMs)) return undefined;
        rows.push(...found);
      }
      for (const id of keyIds) this.markClaimed.run(now, id);
      return toRecords(rows.map((r) => (r.claimed_at === null ? { ...r, claimed_at: now } : r)));
    });
    this.removeTx = db.transaction((keyIds: readonly string[]) => {
      let n = 0;
      for (const id of keyIds) if (this.removeId.run(id).changes > 0) n++;
      return n;
    });
    this.expireTx = db.transaction((createdAtOrBefore: number | undefined, claimedAtOrBefore: number) => {
      const rows = [...(createdAtOrBefore === undefined ? [] : this.selectExpiredWaiting.all(createdAtOrBefore)), ...this.selectExpiredClaimed.all(claimedAtOrBefore)];
      const records = toRecords(rows);
      for (const r of records) this.removeId.run(r.keyId);
      return records;
    });
    this.discardTx = db.transaction((keyStreamId: string, indices: readonly number[]) => {
      const ids = new Set<string>();
      for (const idx of indices) for (const row of this.removeByIndex.all(keyStreamId, idx)) ids.add(row.key_id);
      for (const id of ids) this.removeId.run(id);
      return ids.size;
    });
    // Inside this transaction each write's own transaction function becomes a savepoint.
    this.batchTx = db.transaction((batch: readonly PendingWrite[]) => {
      for (const w of batch) {
        try {
          w.result = { ok: true, value: w.run() };
        } catch (err) {
          w.result = { ok: false, err };
        }
      }
    });
    retainDatabase(db);
  }

  /** Queues a write for the group commit of this event-loop turn. */
  private write<T>(run: () => T, operation: string): Promise<T> {
    if (this.closed) return Promise.reject(sqliteError(new TypeError('The database connection is not open'), operation));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ run, resolve: resolve as (v: unknown) => void, reject, operation, result: undefined });
      if (this.pending.length === 1) setImmediate(this.flush);
    });
  }

  private readonly flush = (): void => {
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    try {
      this.batchTx.immediate(batch);
    } catch (err) {
      for (const w of batch) w.reject(sqliteError(err, w.operation));
      return;
    }
    for (const w of batch) {
      const r = w.result!;
      if (r.ok) w.resolve(r.value);
      else w.reject(r.err);
    }
  };

  async putMany(records: readonly IssuedKeyRecord[]): Promise<boolean> {
    if (records.length === 0) return true;
    return this.write(() => {
      try {
        return this.putTx(records);
      } catch (err) {
        if (err instanceof DuplicateRecord) return false;
        throw sqliteError(err, 'etsi014 putMany');
      }
    }, 'etsi014 putMany');
  }

  async get(keyIds: readonly string[]): Promise<IssuedKeyRecord[]> {
    try {
      return toRecords(keyIds.flatMap((id) => this.select.all(id)));
    } catch (err) {
      throw sqliteError(err, 'etsi014 get');
    }
  }

  claim(keyIds: readonly string[], now: number, windowMs: number): Promise<IssuedKeyRecord[] | undefined> {
    const ids = [...new Set(keyIds)];
    return this.write(() => {
      try {
        return this.claimTx(ids, now, windowMs);
      } catch (err) {
        throw sqliteError(err, 'etsi014 claim');
      }
    }, 'etsi014 claim');
  }

  async remove(keyIds: readonly string[]): Promise<number> {
    const ids = [...new Set(keyIds)];
    if (ids.length === 0) return 0;
    return this.write(() => {
      try {
        return this.removeTx(ids);
      } catch (err) {
        throw sqliteError(err, 'etsi014 remove');
      }
    }, 'etsi014 remove');
  }

  expire(createdAtOrBefore: number | undefined, claimedAtOrBefore: number): Promise<IssuedKeyRecord[]> {
    return this.write(() => {
      try {
        return this.expireTx(createdAtOrBefore, claimedAtOrBefore);
      } catch (err) {
        throw sqliteError(err, 'etsi014 expire');
      }
    }, 'etsi014 expire');
  }

  async recorded(keyStreamId: string, indices: readonly number[]): Promise<Set<number>> {
    try {
      if (indices.length === 0) return new Set();
      let lo = indices[0]!;
      let hi = lo;
      for (const i of indices) {
        if (i < lo) lo = i;
        if (i > hi) hi = i;
      }
      const wanted = new Set(indices);
      return new Set(this.recordedBetween.all(keyStreamId, lo, hi).map((r) => r.idx).filter((i) => wanted.has(i)));
    } catch (err) {
      throw sqliteError(err, 'etsi014 recorded');
    }
  }

  async discard(keyStreamId: string, indices: readonly number[]): Promise<number> {
    if (indices.length === 0) return 0;
    return this.write(() => {
      try {
        return this.discardTx(keyStreamId, indices);
      } catch (err) {
        throw sqliteError(err, 'etsi014 discard');
      }
    }, 'etsi014 discard');
  }

  async count(): Promise<number> {
    try {
      return this.countIds.get()?.n ?? 0;
    } catch (err) {
      throw sqliteError(err, 'etsi014 count');
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush(); // writes already requested complete before the database closes
    this.closed = true;
    releaseDatabase(this.db);
  }
}

interface PendingWrite {
  run(): unknown;
  resolve(value: unknown): void;
  reject(err: unknown): void;
  operation: string;
  result: { ok: true; value: unknown } | { ok: false; err: unknown } | undefined;
}

/** Thrown inside the put transaction to roll it back on a duplicate key ID or index. */
class DuplicateRecord extends Error {}
