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
import type { HandleStore } from '../HandleStore.js';
import { releaseDatabase, retainDatabase, sqliteError, type SqliteDb } from './SqliteDatabase.js';

const COLUMNS =
  'handle, source, destination, peer_url, length, timeout, local_open, synchronized, closed, next_index, created_at, ttl';

/** Patch field -> column; the only column names ever spliced into an UPDATE. */
const PATCH_COLUMNS: Readonly<Record<keyof KeyStreamPatch, string>> = {
  source: 'source',
  destination: 'destination',
  peerUrl: 'peer_url',
  keyLengthBits: 'length',
  timeoutMs: 'timeout',
  localOpen: 'local_open',
  peerOpen: 'synchronized',
  closed: 'closed',
  ttlSeconds: 'ttl',
};

interface HandleRow {
  handle: string;
  source: string;
  destination: string;
  peer_url: string;
  length: number;
  timeout: number;
  local_open: number;
  synchronized: number;
  closed: number;
  next_index: number;
  created_at: number;
  ttl: number;
}

function rowToStream(r: HandleRow): KeyStream {
  return {
    keyStreamId: r.handle,
    source: r.source,
    destination: r.destination,
    peerUrl: r.peer_url,
    keyLengthBits: r.length,
    timeoutMs: r.timeout,
    localOpen: r.local_open !== 0,
    peerOpen: r.synchronized !== 0,
    closed: r.closed !== 0,
    nextIndex: r.next_index,
    createdAt: r.created_at,
    ttlSeconds: r.ttl,
  };
}

function checkIndex(to: number): void {
  if (!Number.isSafeInteger(to) || to < 0) throw new RangeError('nextIndex must be a non-negative safe integer');
}

export class SqliteHandleStore implements HandleStore {
  private readonly db: SqliteDb;
  private readonly insert: Statement<unknown[], unknown>;
  private readonly selectOne: Statement<[string], HandleRow>;
  private readonly selectAll: Statement<[], HandleRow>;
  private readonly advance: Statement<[number, number, string], { next_index: number }>;
  /** UPDATE statements by the set of patched columns (at most 2^9 shapes), prepared on first use. */
  private readonly updates = new Map<string, Statement<unknown[], unknown>>();
  private closed = false;

  constructor(db: SqliteDb) {
    this.db = db;
    try {
      this.insert = db.prepare(
        `INSERT INTO handles (${COLUMNS}, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (handle) DO NOTHING`,
      );
      this.selectOne = db.prepare(`SELECT ${COLUMNS} FROM handles WHERE handle = ?`);
      this.selectAll = db.prepare(`SELECT ${COLUMNS} FROM handles ORDER BY seq`);
      this.advance = db.prepare(
        'UPDATE handles SET next_index = max(next_index, ?), updated_at = ? WHERE handle = ? RETURNING next_index',
      );
    } catch (err) {
      throw sqliteError(err, 'prepare');
    }
    retainDatabase(db);
  }

  async create(stream: KeyStream): Promise<boolean> {
    checkIndex(stream.nextIndex);
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
    const columns: string[] = [];
    const params: (string | number)[] = [];
    for (const field of Object.keys(PATCH_COLUMNS) as (keyof KeyStreamPatch)[]) {
      const value = patch[field];
      if (value === undefined) continue;
      columns.push(PATCH_COLUMNS[field]);
      params.push(typeof value === 'boolean' ? (value ? 1 : 0) : value);
    }
    if (columns.length === 0) return;
    params.push(Date.now(), keyStreamId);
    try {
      const shape = columns.join(',');
      let stmt = this.updates.get(shape);
      if (!stmt) {
        stmt = this.db.prepare(`UPDATE handles SET ${columns.map((c) => `${c} = ?`).join(', ')}, updated_at = ? WHERE handle = ?`);
        this.updates.set(shape, stmt);
      }
      stmt.run(...params);
    } catch (err) {
      throw sqliteError(err, 'update');
    }
  }

  async advanceIndex(keyStreamId: string, to: number): Promise<number | undefined> {
    checkIndex(to);
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
