/**
 * HandleStore on MySQL/MariaDB (mysql2 pool).
 *
 * Guarantees:
 * - Every statement is prepared with `?` placeholders (`pool.execute`); the only text spliced into SQL
 *   is the configured table name, validated and backquoted by {@link tableIdentifiers}.
 * - The schema is brought up to date by {@link applyMigrations} (under a named lock) when opened.
 * - `create` is one INSERT: a duplicate ID resolves false and changes nothing.
 * - `advanceIndex` is one atomic `UPDATE ... SET next_index = GREATEST(next_index, ?)`, so the counter
 *   never decreases even under concurrent callers; the value is then read back (it may already be
 *   higher if another caller advanced it in between, which is still max(previous, to)).
 * - `list` returns streams in creation (insertion) order, via an AUTO_INCREMENT `seq` column.
 * - Failures surface as StoreError with the driver's error code only, never statement parameters
 *   or the password.
 */
import { createPool, type Pool, type PoolOptions, type ResultSetHeader, type RowDataPacket } from 'mysql2/promise';
import type { KeyStream, KeyStreamPatch } from '../../core/types.js';
import { checkNextIndex, HANDLE_COLUMNS, PATCH_SET_SQL, patchParams, rowToStream } from '../handleRow.js';
import type { HandleStore } from '../HandleStore.js';
import { applyMigrations, mysqlError, tableIdentifiers } from './migrate.js';

/** Connection settings for {@link MysqlHandleStore.open}. */
export interface MysqlHandleStoreOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** Handle table name (default in configuration: `handles`); validated identifier. */
  table: string;
  socketPath?: string;
  /** Pool size, default {@link DEFAULT_CONNECTION_LIMIT}. */
  connectionLimit?: number;
}

export const DEFAULT_CONNECTION_LIMIT = 8;
const DEFAULT_PORT = 3306;




export class MysqlHandleStore implements HandleStore {
  private readonly pool: Pool;
  private readonly sql: {
    update: string;
    remove: string;
    insert: string;
    get: string;
    list: string;
    advance: string;
    readIndex: string;
  };
  private readonly tableSql: string;

  private constructor(pool: Pool, table: string) {
    this.pool = pool;
    const t = tableIdentifiers(table).table;
    this.tableSql = t;
    this.sql = {
      update: `UPDATE ${t} SET ${PATCH_SET_SQL} WHERE handle = ?`,
      remove: `DELETE FROM ${t} WHERE handle = ?`,
      insert: `INSERT INTO ${t} (${HANDLE_COLUMNS}, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      get: `SELECT ${HANDLE_COLUMNS} FROM ${t} WHERE handle = ?`,
      list: `SELECT ${HANDLE_COLUMNS} FROM ${t} ORDER BY seq`,
      advance: `UPDATE ${t} SET next_index = GREATEST(next_index, ?), updated_at = ? WHERE handle = ?`,
      readIndex: `SELECT next_index FROM ${t} WHERE handle = ?`,
    };
  }

  /** Creates a pool, applies pending migrations and returns the store. Rejects on a bad table name before connecting. */
  static async open(opts: MysqlHandleStoreOptions): Promise<MysqlHandleStore> {
    tableIdentifiers(opts.table);
    const poolOptions: PoolOptions = {
      host: opts.host,
      port: opts.port,
      user: opts.user,
      password: opts.password,
      database: opts.database,
      connectionLimit: opts.connectionLimit ?? DEFAULT_CONNECTION_LIMIT,
      supportBigNumbers: true,
      bigNumberStrings: false,
      charset: 'utf8mb4',
    };
    if (opts.socketPath !== undefined) poolOptions.socketPath = opts.socketPath;
    const pool = createPool(poolOptions);
    try {
      await applyMigrations(pool, opts.table);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err;
    }
    return new MysqlHandleStore(pool, opts.table);
  }

  /**
   * Convenience for tests and simple setups: `mysql://user:password@host:port/database`
   * (`mariadb://` accepted too). The URL is never echoed in errors (it may hold a password).
   */
  static async fromUrl(url: string, table = 'handles'): Promise<MysqlHandleStore> {
    return MysqlHandleStore.open({ ...parseMysqlUrl(url), table });
  }

  async create(stream: KeyStream): Promise<boolean> {
    checkNextIndex(stream.nextIndex);
    try {
      await this.pool.execute(this.sql.insert, [
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
      ]);
      return true;
    } catch (err) {
      if ((err as { code?: unknown })?.code === 'ER_DUP_ENTRY') return false;
      throw mysqlError(err, 'create');
    }
  }

  async get(keyStreamId: string): Promise<KeyStream | undefined> {
    try {
      const [rows] = await this.pool.execute<RowDataPacket[]>(this.sql.get, [keyStreamId]);
      return rows.length > 0 ? rowToStream(rows[0]) : undefined;
    } catch (err) {
      throw mysqlError(err, 'get');
    }
  }

  async list(): Promise<KeyStream[]> {
    try {
      const [rows] = await this.pool.execute<RowDataPacket[]>(this.sql.list);
      return rows.map(rowToStream);
    } catch (err) {
      throw mysqlError(err, 'list');
    }
  }

  async update(keyStreamId: string, patch: KeyStreamPatch): Promise<void> {
    const params = patchParams(patch);
    if (!params) return;
    try {
      await this.pool.execute(this.sql.update, [...params, keyStreamId]);
    } catch (err) {
      throw mysqlError(err, 'update');
    }
  }

  async delete(keyStreamId: string): Promise<void> {
    try {
      await this.pool.execute(this.sql.remove, [keyStreamId]);
    } catch (err) {
      throw mysqlError(err, 'delete');
    }
  }

  async advanceIndex(keyStreamId: string, to: number): Promise<number | undefined> {
    checkNextIndex(to);
    try {
      await this.pool.execute<ResultSetHeader>(this.sql.advance, [to, Date.now(), keyStreamId]);
      const [rows] = await this.pool.execute<RowDataPacket[]>(this.sql.readIndex, [keyStreamId]);
      return rows.length > 0 ? Number(rows[0].next_index) : undefined;
    } catch (err) {
      throw mysqlError(err, 'advanceIndex');
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** Parses `mysql://user:password@host:port/database` into connection settings (without the table). */
export function parseMysqlUrl(url: string): Omit<MysqlHandleStoreOptions, 'table'> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RangeError('invalid MySQL URL (expected mysql://user:password@host:port/database)');
  }
  if (u.protocol !== 'mysql:' && u.protocol !== 'mariadb:') {
    throw new RangeError('invalid MySQL URL: scheme must be mysql:// or mariadb://');
  }
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (database.length === 0 || u.hostname.length === 0) {
    throw new RangeError('invalid MySQL URL: host and database are required');
  }
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : DEFAULT_PORT,
    user: decodeURIComponent(u.username) || 'root',
    password: decodeURIComponent(u.password),
    database,
  };
}

