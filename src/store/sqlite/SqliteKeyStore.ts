/**
 * KeyStore on the embedded SQLite database (see {@link openSqliteDatabase}).
 *
 * Guarantees:
 * - `putMany` writes all keys in one transaction (`INSERT ... ON CONFLICT DO UPDATE`): all or none,
 *   durable when the promise resolves (WAL + synchronous=FULL, survives SIGKILL).
 * - `take` is one statement, `DELETE ... RETURNING key`, so a key is handed out at most once even to
 *   concurrent callers (better-sqlite3 runs statements one at a time on the connection).
 * - Erasure: `secure_delete = ON` zeroes deleted rows in the pages. The page images written before
 *   the delete may remain in the `-wal` file and the main file until a checkpoint; a
 *   `wal_checkpoint(TRUNCATE)` is therefore scheduled {@link ERASURE_CHECKPOINT_DELAY_MS} after
 *   takes/deletes (and can be forced with {@link SqliteKeyStore.flushErasures}), after which no copy of
 *   a taken key remains in the database files (the file system / SSD may still hold old blocks).
 * - Returned keys are fresh Uint8Array copies; the driver's buffer is zeroed.
 * - Key bytes never appear in errors (messages carry only the SQLite error code).
 */
import type { Statement, Transaction } from 'better-sqlite3';
import type { KeyStore } from '../KeyStore.js';
import { releaseDatabase, retainDatabase, sqliteError, type SqliteDb } from './SqliteDatabase.js';

/** Delay between the last take/deleteStream and the checkpoint that purges old page images. */
export const ERASURE_CHECKPOINT_DELAY_MS = 1_000;

function checkIndex(index: number, what: string): void {
  if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`${what} must be a non-negative safe integer`);
}

interface PendingTake {
  keyStreamId: string;
  index: number;
  resolve(key: Uint8Array | undefined): void;
  reject(err: unknown): void;
}

export class SqliteKeyStore implements KeyStore {
  private readonly db: SqliteDb;
  private readonly upsert: Statement<[string, number, Buffer], unknown>;
  private readonly takeOne: Statement<[string, number], { key: Buffer }>;
  private readonly listIdx: Statement<[string], { idx: number }>;
  private readonly deleteAll: Statement<[string], unknown>;
  private readonly putTx: Transaction<(keyStreamId: string, firstIndex: number, keys: readonly Uint8Array[]) => void>;
  private readonly takeTx: Transaction<(batch: readonly PendingTake[]) => Array<{ key: Buffer } | undefined>>;
  private pendingTakes: PendingTake[] = [];
  private checkpointTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(db: SqliteDb) {
    this.db = db;
    try {
      this.upsert = db.prepare(
        'INSERT INTO keys (stream, idx, key) VALUES (?, ?, ?) ON CONFLICT (stream, idx) DO UPDATE SET key = excluded.key',
      );
      this.takeOne = db.prepare('DELETE FROM keys WHERE stream = ? AND idx = ? RETURNING key');
      this.listIdx = db.prepare('SELECT idx FROM keys WHERE stream = ? ORDER BY idx');
      this.deleteAll = db.prepare('DELETE FROM keys WHERE stream = ?');
    } catch (err) {
      throw sqliteError(err, 'prepare');
    }
    this.putTx = db.transaction((keyStreamId: string, firstIndex: number, keys: readonly Uint8Array[]) => {
      keys.forEach((key, i) => {
        // A view, not a copy: SQLite copies the bytes into the page.
        this.upsert.run(keyStreamId, firstIndex + i, Buffer.from(key.buffer, key.byteOffset, key.byteLength));
      });
    });
    this.takeTx = db.transaction((batch: readonly PendingTake[]) => batch.map((t) => this.takeOne.get(t.keyStreamId, t.index)));
    retainDatabase(db);
  }

  async putMany(keyStreamId: string, firstIndex: number, keys: readonly Uint8Array[]): Promise<void> {
    checkIndex(firstIndex, 'firstIndex');
    if (keys.length === 0) return;
    checkIndex(firstIndex + keys.length - 1, 'last index');
    if (!keys.every((k) => k instanceof Uint8Array)) throw new RangeError('putMany: every key must be a Uint8Array');
    try {
      this.putTx.immediate(keyStreamId, firstIndex, keys);
    } catch (err) {
      throw sqliteError(err, 'putMany');
    }
  }

  /**
   * Group commit: takes requested in the same event-loop turn run in one transaction, so N concurrent
   * deliveries cost one durable commit (one fsync with synchronous=FULL) instead of N. Each take is
   * still its own `DELETE ... RETURNING`, so a key goes to at most one caller.
   */
  take(keyStreamId: string, index: number): Promise<Uint8Array | undefined> {
    try {
      checkIndex(index, 'index');
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.pendingTakes.push({ keyStreamId, index, resolve, reject });
      if (this.pendingTakes.length === 1) setImmediate(this.flushTakes);
    });
  }

  private readonly flushTakes = (): void => {
    const batch = this.pendingTakes;
    this.pendingTakes = [];
    if (batch.length === 0) return;
    let rows: Array<{ key: Buffer } | undefined>;
    try {
      rows = this.takeTx.immediate(batch);
    } catch (err) {
      const e = sqliteError(err, 'take');
      for (const t of batch) t.reject(e);
      return;
    }
    let any = false;
    batch.forEach((t, i) => {
      const row = rows[i];
      if (!row) return t.resolve(undefined);
      any = true;
      const key = Uint8Array.from(row.key);
      row.key.fill(0);
      t.resolve(key);
    });
    if (any) this.scheduleCheckpoint();
  };

  async indices(keyStreamId: string): Promise<number[]> {
    try {
      return this.listIdx.all(keyStreamId).map((r) => r.idx);
    } catch (err) {
      throw sqliteError(err, 'indices');
    }
  }

  async deleteStream(keyStreamId: string): Promise<void> {
    try {
      const info = this.deleteAll.run(keyStreamId) as { changes: number };
      if (info.changes > 0) this.scheduleCheckpoint();
    } catch (err) {
      throw sqliteError(err, 'deleteStream');
    }
  }

  /**
   * Checkpoints the WAL into the database file and truncates it now, so page images that still held
   * taken or deleted keys are overwritten. Resolves false when another connection kept it from completing.
   */
  async flushErasures(): Promise<boolean> {
    if (this.checkpointTimer) {
      clearTimeout(this.checkpointTimer);
      this.checkpointTimer = undefined;
    }
    if (!this.db.open || this.db.memory) return true;
    try {
      const rows = this.db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
      return rows[0]?.busy === 0;
    } catch (err) {
      throw sqliteError(err, 'checkpoint');
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.flushTakes(); // takes already requested complete before the database closes
    if (this.checkpointTimer) await this.flushErasures().catch(() => false);
    releaseDatabase(this.db);
  }

  private scheduleCheckpoint(): void {
    if (this.checkpointTimer || this.closed) return;
    this.checkpointTimer = setTimeout(() => {
      this.checkpointTimer = undefined;
      // Best effort; a failure here only delays the purge until SQLite's own auto-checkpoint.
      this.flushErasures().catch(() => undefined);
    }, ERASURE_CHECKPOINT_DELAY_MS);
    this.checkpointTimer.unref();
  }
}
