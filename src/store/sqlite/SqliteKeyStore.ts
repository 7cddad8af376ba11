/**
 * KeyStore on the embedded SQLite database (see {@link openSqliteDatabase}).
 *
 * Guarantees:
 * - `putMany` writes all keys in one transaction (`INSERT ... ON CONFLICT DO UPDATE`): all or none,
 *   durable when the promise resolves (WAL + synchronous=FULL, survives SIGKILL).
 * - `take` is one statement, `DELETE ... RETURNING key`, and `deliver` one `UPDATE ... WHERE
 *   delivered_at IS NULL RETURNING key`, so a key is handed out at most once even to concurrent
 *   callers (better-sqlite3 runs statements one at a time on the connection).
 * - Erasure: `secure_delete = ON` zeroes deleted rows in the pages. The page images written before
 *   the delete may remain in the `-wal` file and the main file until a checkpoint; a
 *   `wal_checkpoint(TRUNCATE)` is therefore scheduled {@link ERASURE_CHECKPOINT_DELAY_MS} after
 *   takes/deletes (and can be forced with {@link SqliteKeyStore.flushErasures}), after which no copy of
 *   a taken key remains in the database files (the file system / SSD may still hold old blocks).
 * - Returned keys are fresh Uint8Array copies; the driver's buffer is zeroed.
 * - Key bytes never appear in errors (messages carry only the SQLite error code).
 */
import type { Statement, Transaction } from 'better-sqlite3';
import type { DeliveredRecord, KeyStore } from '../KeyStore.js';
import { releaseDatabase, retainDatabase, sqliteError, type SqliteDb } from './SqliteDatabase.js';

/** Delay between the last take/deleteStream and the checkpoint that purges old page images. */
export const ERASURE_CHECKPOINT_DELAY_MS = 1_000;

function checkIndex(index: number, what: string): void {
  if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`${what} must be a non-negative safe integer`);
}

/** A take or deliver waiting for this turn's group commit: `run` is its one statement. */
interface PendingTake {
  run(): { key: Buffer } | undefined;
  operation: string;
  resolve(key: Uint8Array | undefined): void;
  reject(err: unknown): void;
}

export class SqliteKeyStore implements KeyStore {
  private readonly db: SqliteDb;
  private readonly upsert: Statement<[string, number, Buffer], unknown>;
  private readonly takeOne: Statement<[string, number], { key: Buffer }>;
  private readonly deliverOne: Statement<[number, string | null, string, number], { key: Buffer }>;
  private readonly readDelivered: Statement<[string, number], { key: Buffer }>;
  private readonly listDelivered: Statement<[string], { idx: number; delivered_at: number; delivery_token: string | null }>;
  private readonly eraseOne: Statement<[string, number], unknown>;
  private readonly eraseTx: Transaction<(keyStreamId: string, indices: readonly number[]) => number>;
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
        // An overwrite (an uncommitted round replaced) is a new, undelivered key.
        'INSERT INTO keys (stream, idx, key) VALUES (?, ?, ?) ON CONFLICT (stream, idx) DO UPDATE SET key = excluded.key, delivered_at = NULL, delivery_token = NULL',
      );
      this.takeOne = db.prepare('DELETE FROM keys WHERE stream = ? AND idx = ? RETURNING key');
      this.deliverOne = db.prepare('UPDATE keys SET delivered_at = ?, delivery_token = ? WHERE stream = ? AND idx = ? AND delivered_at IS NULL RETURNING key');
      this.readDelivered = db.prepare('SELECT key FROM keys WHERE stream = ? AND idx = ? AND delivered_at IS NOT NULL');
      this.listDelivered = db.prepare('SELECT idx, delivered_at, delivery_token FROM keys WHERE stream = ? AND delivered_at IS NOT NULL ORDER BY idx');
      this.eraseOne = db.prepare('DELETE FROM keys WHERE stream = ? AND idx = ?');
      this.listIdx = db.prepare('SELECT idx FROM keys WHERE stream = ? AND delivered_at IS NULL ORDER BY idx');
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
    this.takeTx = db.transaction((batch: readonly PendingTake[]) => batch.map((t) => t.run()));
    this.eraseTx = db.transaction((keyStreamId: string, indices: readonly number[]) => {
      let n = 0;
      for (const idx of indices) n += (this.eraseOne.run(keyStreamId, idx) as { changes: number }).changes;
      return n;
    });
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
    return this.queue(index, 'take', () => this.takeOne.get(keyStreamId, index));
  }

  /** Same group commit as take: the mark is durable when the key is handed out. */
  deliver(keyStreamId: string, index: number, at: number, token?: string): Promise<Uint8Array | undefined> {
    return this.queue(index, 'deliver', () => this.deliverOne.get(at, token ?? null, keyStreamId, index));
  }

  async redeliver(keyStreamId: string, index: number): Promise<Uint8Array | undefined> {
    checkIndex(index, 'index');
    let row: { key: Buffer } | undefined;
    try {
      row = this.readDelivered.get(keyStreamId, index);
    } catch (err) {
      throw sqliteError(err, 'redeliver');
    }
    if (!row) return undefined;
    const key = Uint8Array.from(row.key);
    row.key.fill(0);
    return key;
  }

  async delivered(keyStreamId: string): Promise<DeliveredRecord[]> {
    try {
      return this.listDelivered.all(keyStreamId).map((r) => ({ index: r.idx, deliveredAt: r.delivered_at, token: r.delivery_token ?? undefined }));
    } catch (err) {
      throw sqliteError(err, 'delivered');
    }
  }

  async erase(keyStreamId: string, indices: readonly number[]): Promise<void> {
    if (indices.length === 0) return;
    for (const i of indices) checkIndex(i, 'index');
    try {
      if (this.eraseTx.immediate(keyStreamId, indices) > 0) this.scheduleCheckpoint();
    } catch (err) {
      throw sqliteError(err, 'erase');
    }
  }

  private queue(index: number, operation: string, run: () => { key: Buffer } | undefined): Promise<Uint8Array | undefined> {
    try {
      checkIndex(index, 'index');
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.pendingTakes.push({ run, operation, resolve, reject });
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
