/**
 * HandleStore on the embedded SQLite database (see {@link openSqliteDatabase}); same columns as the
 * MySQL table.
 *
 * Guarantees:
 * - Every statement is prepared once with `?` placeholders.
 * - Each call is one statement on one connection (better-sqlite3 is synchronous), so calls from one
 *   process never interleave; `advanceIndex` is a single
 *   `UPDATE ... SET next_index = max(next_index, ?) ... RETURNING next_index`.
 * - Durable when the promise resolves (WAL + synchronous=FULL).
 * - `list` returns streams in creation order (AUTOINCREMENT `seq`).
 * - close() releases this store's share of the Database; the last store closed closes it.
 */
import type { Statement } from 'better-sqlite3';
import type { KeyStream, KeyStreamPatch } from '../../core/types.js';
import { checkNextIndex, HANDLE_COLUMNS, PATCH_SET_SQL, patchParams, rowToStream, type HandleRowLike } from '../handleRow.js';
import type { HandleStore } from '../HandleStore.js';
import { releaseDatabase, retainDatabase, sqliteError, type SqliteDb } from './SqliteDatabase.js';



export class SqliteHandleStore implements HandleStore {
  private readonly db: SqliteDb;
  private readonly insert: Statement<unknown[], unknown>;
  private readonly selectOne: Statement<[string], HandleRowLike>;
  private readonly selectAll: Statement<[], HandleRowLike>;
  private readonly advance: Statement<[number, number, string], { next_index: number }>;
  private readonly updateStmt: Statement<unknown[], unknown>;
  private readonly deleteStmt: Statement<[string], unknown>;
  private closed = false;

  constructor(db: SqliteDb) {
    this.db = db;
    try {
      this.insert = db.prepare(
        `INSERT INTO handles (${HANDLE_COLUMNS}, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (handle) DO NOTHING`,
      );
      this.selectOne = db.prepare(`SELECT ${HANDLE_COLUMNS} FROM handles WHERE handle = ?`);
      this.selectAll = db.prepare(`SELECT ${HANDLE_COLUMNS} FROM handles ORDER BY seq`);
      this.updateStmt = db.prepare(`UPDATE handles SET ${PATCH_SET_SQL} WHERE handle = ?`);
      this.deleteStmt = db.prepare('DELETE FROM handles WHERE handle = ?');
      this.advance = db.prepare(
        'UPDATE handles SET next_index = max(next_index, ?), updated_at = ? WHERE handle = ? RETURNING next_index',
      );
    } catch (err) {
      throw sqliteError(err, 'prepare');
    }
    retainDatabase(db);
  }

  async create(stream: KeyStream): Promise<boolean> {
    checkNextIndex(stream.nextIndex);
    try {
      const info = this.insert.run(
        stream.keyStreamId,
        stream.source,
        stream.destination,
        stream.peerUrl,
        stream.keyLengthBits,
        stream.timeoutMs,
        stream.localOpen ? 1 : 0,
        stream.peerOpen ? 1 : 0,
        stream.closed ? 1 : 0,
        stream.nextIndex,
        stream.createdAt,
        stream.ttlSeconds,
        stream.owner,
        Date.now(),
      );
      return info.changes === 1;
    } catch (err) {
      throw sqliteError(err, 'create');
    }
  }

  async get(keyStreamId: string): Promise<KeyStream | undefined> {
    try {
      const row = this.selectOne.get(keyStreamId);
      return row ? rowToStream(row) : undefined;
    } catch (err) {
      throw sqliteError(err, 'get');
    }
  }

  async list(): Promise<KeyStream[]> {
    try {
      return this.selectAll.all().map(rowToStream);
    } catch (err) {
      throw sqliteError(err, 'list');
    }
  }

  async update(keyStreamId: string, patch: KeyStreamPatch): Promise<void> {
    const params = patchParams(patch);
    if (!params) return;
    try {
      this.updateStmt.run(...params, keyStreamId);
    } catch (err) {
      throw sqliteError(err, 'update');
    }
  }

  async delete(keyStreamId: string): Promise<void> {
    try {
      this.deleteStmt.run(keyStreamId);
    } catch (err) {
      throw sqliteError(err, 'delete');
    }
  }

  async advanceIndex(keyStreamId: string, to: number): Promise<number | undefined> {
    checkNextIndex(to);
    try {
      return this.advance.get(to, Date.now(), keyStreamId)?.next_index;
    } catch (err) {
      throw sqliteError(err, 'advanceIndex');
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    releaseDatabase(this.db);
  }
}
