/**
 * ReconciledBlockStore on the embedded SQLite database (see {@link openSqliteDatabase}): table
 * `reconciled_blocks` in the same file as the keys, one row per block, `seq` the append order;
 * table `consumed_blocks` the consumed IDs per stream (no bits).
 *
 * Guarantees (in addition to the port's):
 * - `append` is one IMMEDIATE transaction (look up the blockId among held and consumed blocks,
 *   insert if absent): all or nothing,
 *   durable when it resolves (WAL + synchronous=FULL, survives SIGKILL). The idempotence check
 *   compares bits and meta inside SQLite, so the stored bits are not read back into the process.
 * - Erasure (`consume`, `deleteStream`): one IMMEDIATE transaction overwrites each row's bits with
 *   zeros, deletes the row and (consume) records its ID as consumed (with `secure_delete = ON` the freed cells and pages are zeroed
 *   too; the overwrite does not rely on it). Then, before the call resolves, the WAL is
 *   checkpointed into the database file and truncated, so no page image that held the bits is left
 *   in `qkdm.sqlite` or `qkdm.sqlite-wal`. Only if a reader on another connection keeps the
 *   checkpoint from completing through {@link ERASURE_PURGE_RETRY_DELAYS_MS} does the call resolve
 *   before it, and it is retried every {@link ERASURE_CHECKPOINT_DELAY_MS} (the rows are gone either
 *   way: nothing can read them through SQLite); a crash before that is covered by the checkpoint at open.
 *   The file system or SSD may still hold old blocks (docs/security.md).
 * - Statements are prepared with parameters; bits never appear in errors (only SQLite error codes).
 */
import type { Statement, Transaction } from 'better-sqlite3';
import { StoreError } from '../errors.js';
import type { ReconciledBlock, ReconciledBlockStore } from '../ReconciledBlockStore.js';
import { checkBlockIds, checkReconciledBlock, checkReconciledStreamId, conflictMessage, consumedMessage } from '../reconciledBlockChecks.js';
import { ERASURE_CHECKPOINT_DELAY_MS } from './SqliteKeyStore.js';
import { releaseDatabase, retainDatabase, SQLITE_BUSY_TIMEOUT_MS, sqliteError, type SqliteDb } from './SqliteDatabase.js';

/** Waits between the attempts to purge the WAL after an erasure, before the erasure resolves anyway. */
export const ERASURE_PURGE_RETRY_DELAYS_MS: readonly number[] = [10, 50, 200];

interface BlockRow {
  block_id: string;
  bits: Buffer;
  bit_length: number;
  meta: string;
  stored_at: number;
}

type AppendOutcome = 'stored' | 'same' | 'conflict' | 'consumed';

export class SqliteReconciledBlockStore implements ReconciledBlockStore {
  private readonly db: SqliteDb;
  private readonly sameAs: Statement<[Buffer, number, string, string, string], { same: number }>;
  private readonly insert: Statement<[string, string, Buffer, number, string, number], unknown>;
  private readonly listRows: Statement<[string], BlockRow>;
  private readonly zeroOne: Statement<[string, string], unknown>;
  private readonly deleteOne: Statement<[string, string], unknown>;
  private readonly zeroStream: Statement<[string], unknown>;
  private readonly deleteStreamRows: Statement<[string], unknown>;
  private readonly listStreams: Statement<[], { stream: string }>;
  private readonly wasConsumed: Statement<[string, string], { one: number }>;
  private readonly recordConsumed: Statement<[string, string, number], unknown>;
  private readonly forgetConsumed: Statement<[string], unknown>;
  private readonly appendTx: Transaction<(keyStreamId: string, block: ReconciledBlock, bits: Buffer) => AppendOutcome>;
  private readonly consumeTx: Transaction<(keyStreamId: string, blockIds: readonly string[], at: number) => number>;
  private readonly deleteStreamTx: Transaction<(keyStreamId: string) => number>;
  private checkpointTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(db: SqliteDb) {
    this.db = db;
    try {
      this.sameAs = db.prepare('SELECT (bits = ? AND bit_length = ? AND meta = ?) AS same FROM reconciled_blocks WHERE stream = ? AND block_id = ?');
      this.insert = db.prepare('INSERT INTO reconciled_blocks (stream, block_id, bits, bit_length, meta, stored_at) VALUES (?, ?, ?, ?, ?, ?)');
      this.listRows = db.prepare('SELECT block_id, bits, bit_length, meta, stored_at FROM reconciled_blocks WHERE stream = ? ORDER BY seq');
      this.zeroOne = db.prepare('UPDATE reconciled_blocks SET bits = zeroblob(length(bits)) WHERE stream = ? AND block_id = ?');
      this.deleteOne = db.prepare('DELETE FROM reconciled_blocks WHERE stream = ? AND block_id = ?');
      this.zeroStream = db.prepare('UPDATE reconciled_blocks SET bits = zeroblob(length(bits)) WHERE stream = ?');
      this.deleteStreamRows = db.prepare('DELETE FROM reconciled_blocks WHERE stream = ?');
      this.listStreams = db.prepare('SELECT stream FROM reconciled_blocks UNION SELECT stream FROM consumed_blocks ORDER BY stream');
      this.wasConsumed = db.prepare('SELECT 1 AS one FROM consumed_blocks WHERE stream = ? AND block_id = ?');
      this.recordConsumed = db.prepare('INSERT OR IGNORE INTO consumed_blocks (stream, block_id, consumed_at) VALUES (?, ?, ?)');
      this.forgetConsumed = db.prepare('DELETE FROM consumed_blocks WHERE stream = ?');
    } catch (err) {
      throw sqliteError(err, 'prepare');
    }
    this.appendTx = db.transaction((keyStreamId: string, block: ReconciledBlock, bits: Buffer): AppendOutcome => {
      if (this.wasConsumed.get(keyStreamId, block.blockId)) return 'consumed';
      const held = this.sameAs.get(bits, block.bitLength, block.meta, keyStreamId, block.blockId);
      if (held) return held.same === 1 ? 'same' : 'conflict';
      this.insert.run(keyStreamId, block.blockId, bits, block.bitLength, block.meta, block.storedAt);
      return 'stored';
    });
    this.consumeTx = db.transaction((keyStreamId: string, blockIds: readonly string[], at: number) => {
      let erased = 0;
      for (const id of blockIds) {
        this.zeroOne.run(keyStreamId, id);
        if ((this.deleteOne.run(keyStreamId, id) as { changes: number }).changes === 0) continue;
        this.recordConsumed.run(keyStreamId, id, at);
        erased++;
      }
      return erased;
    });
    this.deleteStreamTx = db.transaction((keyStreamId: string) => {
      this.zeroStream.run(keyStreamId);
      this.forgetConsumed.run(keyStreamId);
      return (this.deleteStreamRows.run(keyStreamId) as { changes: number }).changes;
    });
    retainDatabase(db);
  }

  async append(keyStreamId: string, block: ReconciledBlock): Promise<void> {
    checkReconciledStreamId(keyStreamId);
    checkReconciledBlock(block);
    this.checkOpen();
    let outcome: AppendOutcome;
    try {
      // A view, not a copy: SQLite copies the bytes into its pages.
      outcome = this.appendTx.immediate(keyStreamId, block, Buffer.from(block.bits.buffer, block.bits.byteOffset, block.bits.byteLength));
    } catch (err) {
      throw sqliteError(err, 'append');
    }
    if (outcome === 'conflict') throw new StoreError('conflict', conflictMessage('sqlite', block.blockId));
    if (outcome === 'consumed') throw new StoreError('conflict', consumedMessage('sqlite', block.blockId));
  }

  async list(keyStreamId: string): Promise<ReconciledBlock[]> {
    checkReconciledStreamId(keyStreamId);
    this.checkOpen();
    let rows: BlockRow[];
    try {
      rows = this.listRows.all(keyStreamId);
    } catch (err) {
      throw sqliteError(err, 'list');
    }
    return rows.map((r) => {
      const bits = Uint8Array.from(r.bits);
      r.bits.fill(0);
      return { blockId: r.block_id, bits, bitLength: r.bit_length, meta: r.meta, storedAt: r.stored_at };
    });
  }

  async consume(keyStreamId: string, blockIds: readonly string[]): Promise<void> {
    checkReconciledStreamId(keyStreamId);
    checkBlockIds(blockIds);
    this.checkOpen();
    if (blockIds.length === 0) return;
    let erased: number;
    try {
      erased = this.consumeTx.immediate(keyStreamId, blockIds, Date.now());
    } catch (err) {
      throw sqliteError(err, 'consume');
    }
    if (erased > 0) await this.purgeWal();
  }

  async deleteStream(keyStreamId: string): Promise<void> {
    checkReconciledStreamId(keyStreamId);
    this.checkOpen();
    let erased: number;
    try {
      erased = this.deleteStreamTx.immediate(keyStreamId);
    } catch (err) {
      throw sqliteError(err, 'deleteStream');
    }
    if (erased > 0) await this.purgeWal();
  }

  async streams(): Promise<string[]> {
    this.checkOpen();
    try {
      return this.listStreams.all().map((r) => r.stream);
    } catch (err) {
      throw sqliteError(err, 'streams');
    }
  }

  /**
   * Checkpoints the WAL into the database file and truncates it now. Resolves false when another
   * connection kept it from completing (a retry stays scheduled if one was).
   */
  async flushErasures(): Promise<boolean> {
    if (this.checkpointTimer) {
      clearTimeout(this.checkpointTimer);
      this.checkpointTimer = undefined;
    }
    return this.tryCheckpoint();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.checkpointTimer) await this.flushErasures();
    releaseDatabase(this.db);
  }

  /**
   * Called after a committed erasure: the rows are gone, and this removes the page images that held
   * the bits from the WAL before the erasure resolves. A reader on another connection can keep the
   * checkpoint from completing: it is retried a few times without blocking the event loop, then
   * left to a timer (and to the checkpoint at the next open). The erasure is durable either way.
   */
  private async purgeWal(): Promise<void> {
    if (this.tryCheckpoint()) return;
    for (const ms of ERASURE_PURGE_RETRY_DELAYS_MS) {
      await new Promise((resolve) => setTimeout(resolve, ms));
      if (this.tryCheckpoint()) return;
    }
    this.scheduleCheckpoint();
  }

  /**
   * One `wal_checkpoint(TRUNCATE)` that never waits for another connection (busy_timeout 0 for this
   * call only: a synchronous wait would stall the whole process). True when it completed.
   */
  private tryCheckpoint(): boolean {
    if (!this.db.open || this.db.memory) return true;
    try {
      this.db.pragma('busy_timeout = 0');
      try {
        const rows = this.db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
        return rows[0]?.busy === 0;
      } finally {
        this.db.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`); // integer from code, not data
      }
    } catch {
      return false; // busy or failed: the timer tries again
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreError('unavailable', 'sqlite: reconciled block store is closed');
  }

  private scheduleCheckpoint(): void {
    if (this.checkpointTimer || this.closed) return;
    this.checkpointTimer = setTimeout(() => {
      this.checkpointTimer = undefined;
      if (!this.tryCheckpoint()) this.scheduleCheckpoint();
    }, ERASURE_CHECKPOINT_DELAY_MS);
    this.checkpointTimer.unref();
  }
}
