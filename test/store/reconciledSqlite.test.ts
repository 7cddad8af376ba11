import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteDatabase, SQLITE_SCHEMA_VERSION } from '../../src/store/sqlite/SqliteDatabase.js';
import { SqliteKeyStore } from '../../src/store/sqlite/SqliteKeyStore.js';
import { SqliteReconciledBlockStore } from '../../src/store/sqlite/SqliteReconciledBlockStore.js';
import { transpileForChild } from './childModules.js';
import { crashBlock } from './crashBlocks.js';
import { distinctiveBytes, runReconciledBlockStoreContract, sampleBlock } from './reconciledContract.js';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'qkdm-reconciled-'));
}

/** The raw bytes of the database file and its WAL, as anyone with the disk would read them. */
function rawFiles(dataDir: string): Buffer[] {
  return ['qkdm.sqlite', 'qkdm.sqlite-wal'].map((f) => join(dataDir, f)).filter((p) => existsSync(p)).map((p) => readFileSync(p));
}

/** True when the database file or its WAL contains `pattern`. */
function filesHold(dataDir: string, pattern: Uint8Array): boolean {
  return rawFiles(dataDir).some((raw) => raw.includes(Buffer.from(pattern)));
}

runReconciledBlockStoreContract('sqlite', async () => {
  const dir = tempDir();
  let store = new SqliteReconciledBlockStore(openSqliteDatabase(dir));
  return {
    get store() {
      return store;
    },
    async reopen() {
      await store.close();
      store = new SqliteReconciledBlockStore(openSqliteDatabase(dir));
      return store;
    },
    async holdsBytes(pattern) {
      return filesHold(dir, pattern);
    },
    async cleanup() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

/**
 * Child script (constant text; paths and the first block number arrive as arguments): appends blocks
 * b<first>, b<first+1>, ... and every fourth time consumes the two oldest, printing each step once
 * it resolved ("A id" / "C ids") and a consume before it starts ("c ids"), until it is killed.
 */
const CHILD_SCRIPT = `
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
const [moduleDir, dataDir, firstArg] = process.argv.slice(1);
const { openSqliteDatabase } = await import(pathToFileURL(join(moduleDir, 'src/store/sqlite/SqliteDatabase.js')).href);
const { SqliteReconciledBlockStore } = await import(pathToFileURL(join(moduleDir, 'src/store/sqlite/SqliteReconciledBlockStore.js')).href);
const { crashBlock } = await import(pathToFileURL(join(moduleDir, 'test/store/crashBlocks.js')).href);
const store = new SqliteReconciledBlockStore(openSqliteDatabase(dataDir));
process.stdout.write('ready\\n');
for (let i = Number(firstArg); ; i++) {
  await store.append('crash-stream', crashBlock(i));
  process.stdout.write('A b' + i + '\\n');
  if (i % 4 === 3) {
    const oldest = (await store.list('crash-stream')).slice(0, 2).map((b) => b.blockId);
    process.stdout.write('c ' + oldest.join(',') + '\\n');
    await store.consume('crash-stream', oldest);
    process.stdout.write('C ' + oldest.join(',') + '\\n');
  }
}
`;

describe('SqliteReconciledBlockStore specifics', () => {
  const dirs: string[] = [];
  const mkdir = (): string => {
    const d = tempDir();
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it(
    'when a process appending and consuming is SIGKILLed at random moments, then every resolved append is there intact, in order, and no consumed block returns or leaves bytes',
    async () => {
      const moduleDir = mkdir();
      const dataDir = join(mkdir(), 'data');
      transpileForChild(moduleDir, ['src/store/sqlite/SqliteDatabase.ts', 'src/store/sqlite/SqliteReconciledBlockStore.ts', 'test/store/crashBlocks.ts']);

      const appended = new Set<number>(); // resolved appends, not yet known consumed
      const consumed = new Set<number>(); // resolved (or observed) consumes
      let next = 0;
      let kills = 0;
      for (let round = 0; round < 5; round++) {
        const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD_SCRIPT, moduleDir, dataDir, String(next)], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const closed = new Promise<NodeJS.Signals | null>((res) => child.on('close', (_code, signal) => res(signal)));
        await new Promise<void>((res, rej) => {
          const onData = (): void => {
            if (!stdout.includes('ready\n')) return;
            child.stdout.off('data', onData);
            // A random moment within the append/consume loop (kills land in appends, consumes, fsyncs).
            setTimeout(() => {
              child.kill('SIGKILL');
              res();
            }, 150 + Math.floor(Math.random() * 450));
          };
          child.stdout.on('data', onData);
          child.on('exit', (code) => code !== null && rej(new Error(`child exited (${code}) before it was killed: ${stderr}`)));
        });
        expect(await closed).toBe('SIGKILL');
        kills++;

        let inFlightConsume: number[] = [];
        let highest = next - 1;
        for (const line of stdout.split('\n')) {
          const [tag, arg] = line.split(' ');
          const ids = (arg ?? '').split(',').filter(Boolean).map((id) => Number(id.slice(1)));
          if (tag === 'A') {
            appended.add(ids[0]);
            highest = Math.max(highest, ids[0]);
          } else if (tag === 'c') {
            inFlightConsume = ids;
          } else if (tag === 'C') {
            for (const i of ids) {
              consumed.add(i);
              appended.delete(i);
            }
            inFlightConsume = [];
          }
        }
        expect(highest).toBeGreaterThanOrEqual(next); // the child got somewhere before each kill

        const store = new SqliteReconciledBlockStore(openSqliteDatabase(dataDir));
        try {
          const listed = await store.list('crash-stream');
          const present = listed.map((b) => Number(b.blockId.slice(1)));
          // No torn block: each present block is exactly what the child appended.
          const torn = listed
            .filter((b) => {
              const want = crashBlock(Number(b.blockId.slice(1)));
              return !(Buffer.from(b.bits).equals(Buffer.from(want.bits)) && b.bitLength === want.bitLength && b.meta === want.meta && b.storedAt === want.storedAt);
            })
            .map((b) => b.blockId);
          expect(torn).toEqual([]);
          // Append order.
          expect(present).toEqual([...present].sort((a, b) => a - b));
          // Every resolved append is there, unless a consume of it was under way at the kill.
          for (const i of appended) if (!inFlightConsume.includes(i)) expect(present).toContain(i);
          // Nothing beyond the one append that may have been under way at the kill.
          for (const i of present) expect(i === highest + 1 || appended.has(i)).toBe(true);
          // Consumed blocks never come back, and their bytes are in neither file (the reopen checkpointed the WAL).
          for (const i of consumed) expect(present).not.toContain(i);
          for (const i of inFlightConsume) {
            if (!present.includes(i)) {
              consumed.add(i);
              appended.delete(i);
            }
          }
          const raw = rawFiles(dataDir);
          const leftovers = [...consumed].filter((i) => raw.some((r) => r.includes(Buffer.from(crashBlock(i).bits.subarray(0, 64)))));
          expect(leftovers).toEqual([]);
          for (const i of present) appended.add(i);
        } finally {
          await store.close();
        }
        next = highest + 2; // never reuse a number: the one under way at the kill may have landed
      }
      expect(kills).toBe(5);
      expect(consumed.size).toBeGreaterThan(0);
    },
    60_000,
  );

  it('when another connection keeps the WAL from being checkpointed, then consume still resolves with the block gone, and the bytes go at the next checkpoint', async () => {
    const dataDir = mkdir();
    const store = new SqliteReconciledBlockStore(openSqliteDatabase(dataDir));
    const reader = new Database(join(dataDir, 'qkdm.sqlite'), { readonly: true });
    const pattern = distinctiveBytes('blocked-checkpoint', 64);
    try {
      await store.append('s1', { ...sampleBlock('p'), bits: pattern, bitLength: 512 });
      // An open read transaction on another connection pins the WAL frames.
      reader.exec('BEGIN');
      reader.prepare('SELECT count(*) FROM reconciled_blocks').get();
      await store.consume('s1', ['p']);
      expect(await store.list('s1')).toEqual([]);
      reader.exec('COMMIT');
      expect(await store.flushErasures()).toBe(true);
      expect(filesHold(dataDir, pattern)).toBe(false);
    } finally {
      reader.close();
      await store.close();
    }
  });

  it('when the key store and the block store share the database, then it closes only after both are closed and keys are untouched by consume', async () => {
    const db = openSqliteDatabase(mkdir());
    const keys = new SqliteKeyStore(db);
    const blocks = new SqliteReconciledBlockStore(db);
    await keys.putMany('s1', 0, [new Uint8Array(32).fill(7)]);
    await blocks.append('s1', sampleBlock('k'));
    await blocks.deleteStream('s1');
    expect(await keys.indices('s1')).toEqual([0]);
    await blocks.close();
    expect(db.open).toBe(true);
    await keys.close();
    expect(db.open).toBe(false);
  });

  it('when a file of schema version 6 is opened, then the block tables are added and its keys stay', async () => {
    const dataDir = mkdir();
    const db = openSqliteDatabase(dataDir);
    const keys = new SqliteKeyStore(db);
    await keys.putMany('old', 0, [new Uint8Array(32).fill(3)]);
    db.exec('DROP TABLE reconciled_blocks; DROP TABLE consumed_blocks;');
    db.pragma('user_version = 6');
    await keys.close();
    const reopened = openSqliteDatabase(dataDir);
    const keys2 = new SqliteKeyStore(reopened);
    const blocks = new SqliteReconciledBlockStore(reopened);
    try {
      expect(reopened.pragma('user_version', { simple: true })).toBe(SQLITE_SCHEMA_VERSION);
      expect(await keys2.indices('old')).toEqual([0]);
      await blocks.append('old', sampleBlock('after-upgrade'));
      expect((await blocks.list('old')).map((b) => b.blockId)).toEqual(['after-upgrade']);
    } finally {
      await blocks.close();
      await keys2.close();
    }
  });
});
