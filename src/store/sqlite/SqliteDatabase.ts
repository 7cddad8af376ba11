/**
 * The embedded SQLite database (better-sqlite3) shared by {@link SqliteHandleStore},
 * {@link SqliteKeyStore} and {@link SqliteReconciledBlockStore}: one file, `<dataDir>/qkdm.sqlite`.
 *
 * Guarantees:
 * - The data directory is created with mode 0700 and the database file with mode 0600 (an existing
 *   file is tightened to 0600); SQLite gives the `-wal`/`-shm` files the database file's mode.
 * - `journal_mode = WAL`, `synchronous = FULL`: a transaction is fsynced to the WAL before the call
 *   returns, so committed keys survive SIGKILL (and power loss, as far as the disk honours fsync).
 * - `secure_delete = ON`: deleted rows and freed pages are overwritten with zeros in the database
 *   file. (Copies in WAL frames stay until a checkpoint; see SqliteKeyStore.flushErasures.)
 * - `busy_timeout` so a second connection waits instead of failing at once.
 * - The schema lives in code and is versioned with `PRAGMA user_version`; a file written by a newer
 *   schema version is refused instead of being misread.
 */
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StoreError } from '../errors.js';

export type SqliteDb = Database.Database;

export const DEFAULT_SQLITE_FILE = 'qkdm.sqlite';
/** How long a statement waits for a lock held by another connection, in ms. */
export const SQLITE_BUSY_TIMEOUT_MS = 5_000;

/**
 * Schema steps; step i brings user_version from i to i+1. Only ever append.
 * Table names are fixed here (the embedded file belongs to one module).
 */
const SCHEMA_STEPS: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS handles (
     seq          INTEGER PRIMARY KEY AUTOINCREMENT,
     handle       TEXT    NOT NULL UNIQUE,
     source       TEXT    NOT NULL,
     destination  TEXT    NOT NULL,
     peer_url     TEXT    NOT NULL,
     length       INTEGER NOT NULL,
     timeout      INTEGER NOT NULL,
     local_open   INTEGER NOT NULL DEFAULT 0,
     synchronized INTEGER NOT NULL DEFAULT 0,
     closed       INTEGER NOT NULL DEFAULT 0,
     next_index   INTEGER NOT NULL DEFAULT 0,
     created_at   INTEGER NOT NULL,
     updated_at   INTEGER NOT NULL
   );
   CREATE TABLE IF NOT EXISTS keys (
     stream TEXT    NOT NULL,
     idx    INTEGER NOT NULL,
     key    BLOB    NOT NULL,
     PRIMARY KEY (stream, idx)
   ) WITHOUT ROWID;`,
  // 2: ETSI GS QKD 014 key IDs issued to a slave SAE, kept until its dec_keys (SqliteEtsi014KeyIdStore).
  // One row per stream key making up the delivered key; an index belongs to at most one key ID.
  `CREATE TABLE IF NOT EXISTS etsi014_key_ids (
     key_id     TEXT    NOT NULL,
     part       INTEGER NOT NULL,
     stream     TEXT    NOT NULL,
     idx        INTEGER NOT NULL,
     size       INTEGER NOT NULL,
     master_sae TEXT    NOT NULL,
     slave_sae  TEXT    NOT NULL,
     created_at INTEGER NOT NULL,
     PRIMARY KEY (key_id, part),
     UNIQUE (stream, idx)
   ) WITHOUT ROWID;`,
  // 3: QoS TTL in seconds per key stream (ETSI GS QKD 004), 0 = none. Same column as sql/002_ttl.sql.
  `ALTER TABLE handles ADD COLUMN ttl INTEGER NOT NULL DEFAULT 0;`,
  // 4: the identity that opened the stream here (docs/security.md, "Applications"). Same as sql/003_owner.sql.
  `ALTER TABLE handles ADD COLUMN owner TEXT NOT NULL DEFAULT 'local';`,
  // 5: delivered keys kept for the re-delivery window (SqliteKeyStore.deliver): when, and the caller's
  // idempotency token. NULL delivered_at = not delivered yet.
  `ALTER TABLE keys ADD COLUMN delivered_at INTEGER;
   ALTER TABLE keys ADD COLUMN delivery_token TEXT;`,
  // 6: ETSI 014 key IDs claimed by a dec_keys stay for the re-delivery window (SqliteEtsi014KeyIdStore.claim):
  // when they were claimed, NULL = waiting. The index serves the expiry sweep (waiting by age, claimed by claim time).
  `ALTER TABLE etsi014_key_ids ADD COLUMN claimed_at INTEGER;
   CREATE INDEX IF NOT EXISTS etsi014_key_ids_expiry ON etsi014_key_ids (claimed_at, created_at);`,
  // 7: reconciled blocks waiting for privacy amplification (SqliteReconciledBlockStore). A rowid table,
  // not WITHOUT ROWID, because rows hold blobs of up to 8 MiB; seq (never reused) is the append order.
  // consumed_blocks: the IDs consumed from a stream (no bits), so none is appended a second time.
  `CREATE TABLE IF NOT EXISTS reconciled_blocks (
     seq        INTEGER PRIMARY KEY AUTOINCREMENT,
     stream     TEXT    NOT NULL,
     block_id   TEXT    NOT NULL,
     bits       BLOB    NOT NULL,
     bit_length INTEGER NOT NULL,
     meta       TEXT    NOT NULL,
     stored_at  INTEGER NOT NULL,
     UNIQUE (stream, block_id)
   );
   CREATE TABLE IF NOT EXISTS consumed_blocks (
     stream      TEXT    NOT NULL,
     block_id    TEXT    NOT NULL,
     consumed_at INTEGER NOT NULL,
     PRIMARY KEY (stream, block_id)
   ) WITHOUT ROWID;`,
];
export const SQLITE_SCHEMA_VERSION = SCHEMA_STEPS.length;

/** Maps a better-sqlite3 / fs error to a StoreError carrying only the error code. */
export function sqliteError(err: unknown, operation: string): StoreError {
  if (err instanceof StoreError) return err;
  if (err instanceof TypeError && /not open/i.test(err.message)) {
    return new StoreError('unavailable', `sqlite: database is closed (${operation})`);
  }
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'unknown error';
  let kind: StoreError['kind'] = 'unavailable';
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_ERROR') || code === 'SQLITE_SCHEMA') {
    kind = 'corrupt';
  } else if (code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_PERM') || code.startsWith('SQLITE_AUTH') || code === 'EACCES' || code === 'EPERM') {
    kind = 'permission';
  } else if (code.startsWith('SQLITE_CONSTRAINT')) {
    kind = 'conflict';
  }
  return new StoreError(kind, `sqlite: ${code} on ${operation}`);
}

function applySchema(db: SqliteDb): void {
  const current = Number(db.pragma('user_version', { simple: true }));
  if (current > SQLITE_SCHEMA_VERSION) {
    throw new StoreError('corrupt', `sqlite: schema version ${current} is newer than this module supports (${SQLITE_SCHEMA_VERSION})`);
  }
  for (let v = current; v < SQLITE_SCHEMA_VERSION; v++) {
    db.transaction(() => {
      db.exec(SCHEMA_STEPS[v]);
      db.pragma(`user_version = ${v + 1}`); // integer from code, not data
    }).immediate();
  }
}

function configure(db: SqliteDb, inMemory: boolean): void {
  if (!inMemory) {
    const mode = String(db.pragma('journal_mode = WAL', { simple: true }));
    if (mode.toLowerCase() !== 'wal') throw new StoreError('unavailable', `sqlite: WAL mode refused (journal_mode=${mode})`);
  }
  db.pragma('synchronous = FULL');
  db.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
  db.pragma('secure_delete = ON');
  applySchema(db);
  // A crash (SIGKILL) can leave page images of delivered or replaced keys in the -wal file: fold it into
  // the main file (where secure_delete zeroed them) and truncate it before the module serves anything.
  if (!inMemory) db.pragma('wal_checkpoint(TRUNCATE)');
}

/**
 * Opens (creating if needed) `<dataDir>/<fileName>` with the settings above. Pass `':memory:'` as
 * dataDir for a private in-memory database (tests). The caller, or the last store closed, closes it.
 */
export function openSqliteDatabase(dataDir: string, fileName: string = DEFAULT_SQLITE_FILE): SqliteDb {
  if (dataDir === ':memory:') {
    const db = new Database(':memory:');
    try {
      configure(db, true);
    } catch (err) {
      db.close();
      throw sqliteError(err, 'open');
    }
    return db;
  }
  if (fileName.length === 0 || /[\\/]/.test(fileName) || fileName === '.' || fileName === '..') {
    throw new RangeError('invalid SQLite file name: must be a plain file name');
  }
  const path = join(dataDir, fileName);
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    closeSync(openSync(path, 'a', 0o600));
    chmodSync(path, 0o600);
  } catch (err) {
    throw sqliteError(err, 'open');
  }
  let db: SqliteDb | undefined;
  try {
    db = new Database(path, { fileMustExist: true });
    configure(db, false);
    return db;
  } catch (err) {
    db?.close();
    throw sqliteError(err, 'open');
  }
}

/**
 * Reference counts of stores sharing one Database: each store retains it in its constructor and
 * releases it in close(); the last release closes the database (idempotently).
 */
const users = new WeakMap<SqliteDb, number>();

export function retainDatabase(db: SqliteDb): void {
  users.set(db, (users.get(db) ?? 0) + 1);
}

export function releaseDatabase(db: SqliteDb): void {
  const left = (users.get(db) ?? 1) - 1;
  users.set(db, left);
  if (left <= 0 && db.open) db.close();
}
