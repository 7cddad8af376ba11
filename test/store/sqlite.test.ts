import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/store/errors.js';
import { openSqliteDatabase, SQLITE_SCHEMA_VERSION } from '../../src/store/sqlite/SqliteDatabase.js';
import { SqliteHandleStore } from '../../src/store/sqlite/SqliteHandleStore.js';
import { SqliteKeyStore } from '../../src/store/sqlite/SqliteKeyStore.js';
import { transpileForChild } from './childModules.js';
import { runHandleStoreContract, runKeyStoreContract, sampleStream, testKey } from './contract.js';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'qkdm-sqlite-'));
}

runHandleStoreContract('sqlite', async () => {
  const dir = tempDir();
  let store = new SqliteHandleStore(openSqliteDatabase(dir));
  return {
    get store() {
      return store;
    },
    async reopen() {
      await store.close();
      store = new SqliteHandleStore(openSqliteDatabase(dir));
      return store;
    },
    async cleanup() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

runKeyStoreContract('sqlite', async () => {
  const dir = tempDir();
  let store = new SqliteKeyStore(openSqliteDatabase(dir));
  return {
    get store() {
      return store;
    },
    async reopen() {
      await store.close();
      store = new SqliteKeyStore(openSqliteDatabase(dir));
      return store;
    },
    async cleanup() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

/**
 * Child script (constant text; paths arrive as arguments): stores 64 keys and a stream, prints
 * "stored", then idles until it is killed.
 */
const CHILD_SCRIPT = `
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
const [moduleDir, dataDir] = process.argv.slice(1);
const { openSqliteDatabase } = await import(pathToFileURL(join(moduleDir, 'src/store/sqlite/SqliteDatabase.js')).href);
const { SqliteKeyStore } = await import(pathToFileURL(join(moduleDir, 'src/store/sqlite/SqliteKeyStore.js')).href);
const { SqliteHandleStore } = await import(pathToFileURL(join(moduleDir, 'src/store/sqlite/SqliteHandleStore.js')).href);
const db = openSqliteDatabase(dataDir);
const keys = new SqliteKeyStore(db);
const handles = new SqliteHandleStore(db);
await handles.create({ keyStreamId: 'durable-stream', source: 's', destination: 'd', peerUrl: 'http://127.0.0.1:1',
  keyLengthBits: 256, timeoutMs: 1000, localOpen: true, peerOpen: true, closed: false, nextIndex: 0, createdAt: 1, ttlSeconds: 0, owner: 'local' });
const batch = Array.from({ length: 64 }, (_, k) => Uint8Array.from({ length: 32 }, (_, i) => (k * 31 + i * 7 + 1) & 0xff));
await keys.putMany('durable-stream', 0, batch);
await handles.advanceIndex('durable-stream', 64);
process.stdout.write('stored\\n');
setInterval(() => {}, 60_000);
`;

describe('SQLite specifics', () => {
  const dirs: string[] = [];
  const mkdir = (): string => {
    const d = tempDir();
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('when a process is SIGKILLed right after putMany resolved, then the keys and its nextIndex are there on reopen', async () => {
    const moduleDir = mkdir();
    const dataDir = join(mkdir(), 'data');
    transpileForChild(moduleDir, ['src/store/sqlite/SqliteDatabase.ts', 'src/store/sqlite/SqliteKeyStore.ts', 'src/store/sqlite/SqliteHandleStore.ts']);

    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD_SCRIPT, moduleDir, dataDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((res) => child.on('exit', (_code, signal) => res(signal)));
    await new Promise<void>((res, rej) => {
      child.stdout.on('data', (d: Buffer) => {
        if (d.toString().includes('stored')) {
          child.kill('SIGKILL');
          res();
        }
      });
      child.on('exit', () => rej(new Error(`child exited before storing: ${stderr}`)));
    });
    expect(await exited).toBe('SIGKILL');

    const db = openSqliteDatabase(dataDir);
    const keys = new SqliteKeyStore(db);
    const handles = new SqliteHandleStore(db);
    try {
      expect((await handles.get('durable-stream'))?.nextIndex).toBe(64);
      expect(await keys.indices('durable-stream')).toEqual([...Array(64).keys()]);
      for (let k = 0; k < 64; k++) expect(await keys.take('durable-stream', k)).toEqual(testKey(k));
    } finally {
      await keys.close();
      await handles.close();
    }
  });

  it('when the database is opened, then WAL, synchronous=FULL, secure_delete and the schema version are set', () => {
    const db = openSqliteDatabase(mkdir());
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('synchronous', { simple: true })).toBe(2); // FULL
      expect(db.pragma('secure_delete', { simple: true })).toBe(1);
      expect(Number(db.pragma('busy_timeout', { simple: true }))).toBeGreaterThan(0);
      expect(db.pragma('user_version', { simple: true })).toBe(SQLITE_SCHEMA_VERSION);
    } finally {
      db.close();
    }
  });

  it('when the data dir does not exist, then it is created 0700 with the database file 0600', () => {
    const dataDir = join(mkdir(), 'nested', 'data');
    const db = openSqliteDatabase(dataDir);
    db.close();
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dataDir, 'qkdm.sqlite')).mode & 0o777).toBe(0o600);
  });

  it('when a key is taken and erasures are flushed, then its bytes are in neither the database nor the WAL file', async () => {
    const dataDir = mkdir();
    const db = openSqliteDatabase(dataDir);
    const store = new SqliteKeyStore(db);
    const marker = Uint8Array.from({ length: 48 }, (_, i) => (0xa5 ^ (i * 13)) & 0xff);
    const contains = (file: string): boolean => existsSync(file) && readFileSync(file).includes(Buffer.from(marker));
    try {
      await store.putMany('s1', 0, [marker, testKey(1)]);
      const files = [join(dataDir, 'qkdm.sqlite'), join(dataDir, 'qkdm.sqlite-wal')];
      expect(files.some(contains)).toBe(true); // the probe itself works
      expect(await store.take('s1', 0)).toEqual(marker);
      expect(await store.flushErasures()).toBe(true);
      expect(files.filter(contains)).toEqual([]);
      expect(await store.indices('s1')).toEqual([1]);
    } finally {
      await store.close();
    }
  });

  it('when a handle store and a key store share the database, then it closes only after both are closed', async () => {
    const db = openSqliteDatabase(mkdir());
    const keys = new SqliteKeyStore(db);
    const handles = new SqliteHandleStore(db);
    await keys.close();
    await keys.close(); // idempotent
    expect(db.open).toBe(true);
    expect(await handles.create(sampleStream())).toBe(true);
    await handles.close();
    expect(db.open).toBe(false);
  });

  it('when the store is used after close, then it rejects with StoreError unavailable', async () => {
    const store = new SqliteKeyStore(openSqliteDatabase(':memory:'));
    await store.close();
    await expect(store.take('s', 0)).rejects.toMatchObject({ name: 'StoreError', kind: 'unavailable' });
  });

  it('when the file is not a SQLite database, then open fails with StoreError corrupt', () => {
    const dataDir = mkdir();
    writeFileSync(join(dataDir, 'qkdm.sqlite'), Buffer.alloc(4096, 0x42), { mode: 0o600 });
    let caught: unknown;
    try {
      openSqliteDatabase(dataDir);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(StoreError);
    expect((caught as StoreError).kind).toBe('corrupt');
  });

  it('when the file has a newer schema version, then open refuses it', () => {
    const dataDir = mkdir();
    const db = openSqliteDatabase(dataDir);
    db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => openSqliteDatabase(dataDir)).toThrow(/newer than this module supports/);
  });

  it('when a file written by schema version 1 is opened, then it is upgraded and its streams read TTL 0', async () => {
    const dataDir = mkdir();
    const old = new Database(join(dataDir, 'qkdm.sqlite'));
    // The handles table exactly as schema version 1 created it.
    old.exec(`CREATE TABLE handles (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, handle TEXT NOT NULL UNIQUE, source TEXT NOT NULL, destination TEXT NOT NULL,
      peer_url TEXT NOT NULL, length INTEGER NOT NULL, timeout INTEGER NOT NULL, local_open INTEGER NOT NULL DEFAULT 0,
      synchronized INTEGER NOT NULL DEFAULT 0, closed INTEGER NOT NULL DEFAULT 0, next_index INTEGER NOT NULL DEFAULT 0,
      created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
      CREATE TABLE keys (stream TEXT NOT NULL, idx INTEGER NOT NULL, key BLOB NOT NULL, PRIMARY KEY (stream, idx)) WITHOUT ROWID;`);
    old.prepare('INSERT INTO handles (handle, source, destination, peer_url, length, timeout, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run('old-stream', 's', 'd', 'http://127.0.0.1:1', 256, 1000, 5, 5);
    old.pragma('user_version = 1');
    old.close();
    const db = openSqliteDatabase(dataDir);
    const handles = new SqliteHandleStore(db);
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(SQLITE_SCHEMA_VERSION);
      expect(await handles.get('old-stream')).toMatchObject({ keyStreamId: 'old-stream', ttlSeconds: 0, nextIndex: 0 });
    } finally {
      await handles.close();
    }
  });

  it('when the file name has a path separator, then open rejects it', () => {
    expect(() => openSqliteDatabase(mkdir(), '../escape.sqlite')).toThrow(RangeError);
  });
});
