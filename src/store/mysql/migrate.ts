/**
 * Schema migrations for the MySQL/MariaDB handle table.
 *
 * Guarantees:
 * - The table name is validated (`^[A-Za-z_][A-Za-z0-9_]{0,63}$`, and short enough that
 *   `<table>_migrations` stays within MySQL's 64-character limit) before any SQL is sent.
 * - Files `sql/NNN_<name>.sql` are applied in numeric order, each at most once; applied files are
 *   recorded in `<table>_migrations` (id, name, applied_at).
 * - Concurrent callers (two modules sharing one database) are serialised by a server-wide named lock
 *   (`GET_LOCK`), released in `finally`; calling it again is a no-op.
 *
 * MySQL DDL commits implicitly, so a crash between a file's DDL and its bookkeeping row re-runs the
 * file next time: migration files must be idempotent (`CREATE TABLE IF NOT EXISTS`, ...). A statement
 * failing because what it adds is already there (duplicate column or index name) counts as applied,
 * since MySQL 8 has no `ADD COLUMN IF NOT EXISTS`.
 * In the SQL files, `{{table}}` (optionally followed by a suffix such as `{{table}}_old`) becomes the
 * backquoted table name; statements end with `;` at the end of a line.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { StoreError } from '../errors.js';
import { packageRootOf } from '../../packageRoot.js';

/** Identifier rule for configurable table names. */
export const TABLE_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** MySQL's limit on identifier length. */
const MAX_IDENTIFIER_LENGTH = 64;
/** Suffix of the bookkeeping table. */
const MIGRATIONS_SUFFIX = '_migrations';
/** Seconds a caller waits for another module's migration run before giving up. */
export const MIGRATION_LOCK_TIMEOUT_S = 60;
const MIGRATION_FILE = /^(\d{3})_[A-Za-z0-9_-]+\.sql$/;
/** Errors meaning a statement's change is already in place (a file re-run after a crash). */
const ALREADY_APPLIED_CODES: ReadonlySet<string> = new Set(['ER_DUP_FIELDNAME', 'ER_DUP_KEYNAME']);

/** Backquoted identifiers derived from a validated table name. */
export interface TableIdentifiers {
  /** e.g. `` `handles` `` */
  table: string;
  /** e.g. `` `handles_migrations` `` */
  migrations: string;
}

/**
 * Validates a configured table name and returns its quoted identifiers. Throws RangeError (without
 * echoing the rejected value) when the name could inject SQL or is too long.
 */
export function tableIdentifiers(table: string): TableIdentifiers {
  if (typeof table !== 'string' || !TABLE_NAME_PATTERN.test(table)) {
    throw new RangeError('invalid table name: must match ^[A-Za-z_][A-Za-z0-9_]{0,63}$');
  }
  if (table.length + MIGRATIONS_SUFFIX.length > MAX_IDENTIFIER_LENGTH) {
    throw new RangeError(
      `invalid table name: at most ${MAX_IDENTIFIER_LENGTH - MIGRATIONS_SUFFIX.length} characters (room for "${MIGRATIONS_SUFFIX}")`,
    );
  }
  return { table: `\`${table}\``, migrations: `\`${table}${MIGRATIONS_SUFFIX}\`` };
}

/** The package root: the nearest directory above this file that holds a package.json. */
function packageRoot(): string {
  const root = packageRootOf(import.meta.url);
  if (root === null) throw new StoreError('corrupt', 'mysql: package root (package.json) not found above migrate module');
  return root;
}

/** The default migrations directory, `<package root>/sql`. */
export function defaultSqlDir(): string {
  return join(packageRoot(), 'sql');
}

interface MigrationFile {
  id: number;
  name: string;
  statements: string[];
}

/** Splits a migration file into statements: `--` comment lines dropped, split at `;` ending a line. */
function splitStatements(text: string): string[] {
  const withoutComments = text
    .split(/\r?\n/)
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n');
  return withoutComments
    .split(/;[ \t]*(?:\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Replaces `{{table}}` and `{{table}}<suffix>` with backquoted identifiers; checks the result length. */
function substituteTable(statement: string, table: string): string {
  return statement.replace(/\{\{table\}\}([A-Za-z0-9_]*)/g, (_match, suffix: string) => {
    const name = table + suffix;
    if (name.length > MAX_IDENTIFIER_LENGTH) {
      throw new RangeError(`invalid table name: "{{table}}${suffix}" would exceed ${MAX_IDENTIFIER_LENGTH} characters`);
    }
    return `\`${name}\``;
  });
}

function readMigrations(sqlDir: string, table: string): MigrationFile[] {
  let names: string[];
  try {
    names = readdirSync(sqlDir);
  } catch {
    throw new StoreError('corrupt', 'mysql: migrations directory not readable');
  }
  const files: MigrationFile[] = [];
  const seen = new Set<number>();
  for (const name of names) {
    const m = MIGRATION_FILE.exec(name);
    if (!m) continue;
    const id = Number(m[1]);
    if (seen.has(id)) throw new StoreError('corrupt', `mysql: two migration files numbered ${m[1]}`);
    seen.add(id);
    const statements = splitStatements(readFileSync(join(sqlDir, name), 'utf8')).map((s) => substituteTable(s, table));
    files.push({ id, name, statements });
  }
  return files.sort((a, b) => a.id - b.id);
}

/** Maps a mysql2 error to a StoreError without echoing statement parameters. */
export function mysqlError(err: unknown, operation: string): StoreError {
  if (err instanceof StoreError) return err;
  const e = err as { code?: unknown; errno?: unknown };
  const code = typeof e?.code === 'string' ? e.code : 'unknown error';
  if (code.startsWith('ER_ACCESS_DENIED') || code === 'ER_DBACCESS_DENIED_ERROR' || code === 'ER_TABLEACCESS_DENIED_ERROR') {
    return new StoreError('permission', `mysql: permission denied (${code}) on ${operation} (check mysql user/password/grants)`);
  }
  const unavailable =
    !code.startsWith('ER_') ||
    code === 'ER_LOCK_WAIT_TIMEOUT' ||
    code === 'ER_LOCK_DEADLOCK' ||
    code === 'ER_CON_COUNT_ERROR' ||
    code === 'ER_SERVER_SHUTDOWN' ||
    code === 'ER_QUERY_INTERRUPTED';
  return new StoreError(unavailable ? 'unavailable' : 'corrupt', `mysql: ${code} on ${operation}`);
}

/**
 * Applies the migration files not yet recorded for `table`. Resolves the names of the files applied
 * by this call (empty when the schema was already current).
 */
export async function applyMigrations(pool: Pool, table: string, sqlDir: string = defaultSqlDir()): Promise<string[]> {
  const ids = tableIdentifiers(table); // throws before any SQL runs
  const files = readMigrations(sqlDir, table);

  let conn: PoolConnection;
  try {
    conn = await pool.getConnection();
  } catch (err) {
    throw mysqlError(err, 'connect');
  }
  let locked = false;
  try {
    // Named locks are server-wide: scope the name to this database and table. SHA1 keeps it under 64 chars.
    const [lockRows] = await conn.query<RowDataPacket[]>(
      "SELECT GET_LOCK(CONCAT('qkdm_migrate_', SHA1(CONCAT(DATABASE(), '.', ?))), ?) AS got",
      [table, MIGRATION_LOCK_TIMEOUT_S],
    );
    if (Number(lockRows[0]?.got) !== 1) {
      throw new StoreError('unavailable', `mysql: migration lock not obtained within ${MIGRATION_LOCK_TIMEOUT_S} s`);
    }
    locked = true;

    await conn.query(
      `CREATE TABLE IF NOT EXISTS ${ids.migrations} (
         id INT NOT NULL PRIMARY KEY,
         name VARCHAR(255) NOT NULL,
         applied_at BIGINT NOT NULL
       ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4`,
    );
    const [appliedRows] = await conn.query<RowDataPacket[]>(`SELECT id FROM ${ids.migrations}`);
    const applied = new Set(appliedRows.map((r) => Number(r.id)));

    const done: string[] = [];
    for (const file of files) {
      if (applied.has(file.id)) continue;
      try {
        for (const statement of file.statements) {
          try {
            await conn.query(statement);
          } catch (err) {
            if (!ALREADY_APPLIED_CODES.has(String((err as { code?: unknown })?.code))) throw err;
          }
        }
        await conn.execute(`INSERT INTO ${ids.migrations} (id, name, applied_at) VALUES (?, ?, ?)`, [file.id, file.name, Date.now()]);
      } catch (err) {
        throw mysqlError(err, `migration ${file.name}`);
      }
      done.push(file.name);
    }
    return done;
  } catch (err) {
    throw mysqlError(err, 'migrate');
  } finally {
    if (locked) {
      await conn
        .query("SELECT RELEASE_LOCK(CONCAT('qkdm_migrate_', SHA1(CONCAT(DATABASE(), '.', ?))))", [table])
        .catch(() => undefined); // the lock also ends with the session
    }
    conn.release();
  }
}
