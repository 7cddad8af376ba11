/**
 * bench/get-key: throughput and latency of POST /get_key on one module, embedded store and MySQL
 * handle store, against an empty Express route measured in the same run.
 *
 *   npm run bench:get-key [-- --seconds 5 --concurrency 16 --mysql mysql://root@127.0.0.1:3306/test]
 *
 * The module runs in this process; the load generator runs in a worker thread (the other core).
 * Each stream is pre-filled through the stores (closed, so no exchange runs), then every request
 * takes the next key: a real delivery that reads and erases one key.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import express from 'express';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { toPyLiteral } from '../src/api/codec/pyLiteral.js';
import { loadConfig } from '../src/config/load.js';
import { createLogger } from '../src/log.js';
import { createModule } from '../src/server.js';
import { openStores } from '../src/store/index.js';
import { parseMysqlUrl } from '../src/store/mysql/MysqlHandleStore.js';
import { round, runLoad, type LoadSummary } from './lib/load.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '16' },
    mysql: { type: 'string', default: process.env.QKDM_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test' },
    'skip-mysql': { type: 'boolean', default: false },
  },
});
const durationMs = Number(values.seconds) * 1000;
const concurrency = Number(values.concurrency);
const KEYS = 400_000;

async function listen(app: express.Express): Promise<{ url: string; close(): Promise<void> }> {
  const server = await new Promise<Server>((res) => {
    const s = app.listen(0, '127.0.0.1', () => res(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }),
  };
}

async function emptyRoute(): Promise<LoadSummary> {
  const app = express();
  app.use(express.text({ type: () => true }));
  app.post('/empty', (_req, res) => {
    res.type('text/plain').send('[0]');
  });
  const srv = await listen(app);
  const r = await runLoad({ url: `${srv.url}/empty`, method: 'POST', body: "['x', -1, {}]", concurrency, durationMs, maxRequests: 0 });
  await srv.close();
  return r;
}

async function getKeyRun(mode: 'embedded' | 'mysql'): Promise<LoadSummary & { keysLeft: number }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'qkdm-bench-'));
  const env: Record<string, string> = { QKDM_MODULE_DATA_DIR: dataDir, QKDM_MODULE_PORT: '0', QKDM_MODULE_HOST: '127.0.0.1', QKDM_MODULE_LOG_LEVEL: 'warn' };
  let table: string | undefined;
  if (mode === 'mysql') {
    const u = parseMysqlUrl(values.mysql!);
    table = `bench_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    Object.assign(env, {
      QKDM_INTERNAL_DB_HOST: u.host,
      QKDM_INTERNAL_DB_PORT: String(u.port),
      QKDM_INTERNAL_DB_USER: u.user,
      QKDM_INTERNAL_DB_PASSWD: u.password,
      QKDM_INTERNAL_DB_DATABASE: u.database,
      QKDM_MODULE_TABLE: table,
    });
  }
  const cfg = loadConfig({ env });
  const log = createLogger('warn');
  const stores = await openStores(cfg, log);
  const id = randomUUID();
  await stores.handles.create({
    keyStreamId: id, source: 'bench', destination: '127.0.0.1:1', peerUrl: 'http://127.0.0.1:1', keyLengthBits: 256, timeoutMs: 0,
    localOpen: true, peerOpen: true, closed: true, nextIndex: KEYS, createdAt: Date.now(), ttlSeconds: 0,
  });
  for (let first = 0; first < KEYS; first += 10_000) {
    await stores.keys.putMany(id, first, Array.from({ length: 10_000 }, () => new Uint8Array(randomBytes(32))));
  }
  const mod = await createModule(cfg, { log, stores, requestLog: true });
  const port = await mod.listen();
  const r = await runLoad({ url: `http://127.0.0.1:${port}/get_key`, method: 'POST', body: toPyLiteral([id, -1, {}]), concurrency, durationMs, maxRequests: KEYS - 1000 });
  const keysLeft = mod.manager.available(id);
  await mod.stop();
  if (table) {
    const mysql = await import('mysql2/promise');
    const conn = await mysql.createConnection(values.mysql!);
    await conn.query('DROP TABLE IF EXISTS ??, ??', [table, `${table}_migrations`]);
    await conn.end();
  }
  rmSync(dataDir, { recursive: true, force: true });
  return { ...r, keysLeft };
}

function line(name: string, r: LoadSummary, extra = ''): string {
  return `${name.padEnd(28)} ${round(r.perSecond, 0).toString().padStart(7)} req/s  p50 ${round(r.p50Ms)} ms  p99 ${round(r.p99Ms)} ms  non-2xx ${r.non2xx}  errors ${r.errors}${extra}`;
}

const empty = await emptyRoute();
const embedded = await getKeyRun('embedded');
const results: Record<string, unknown> = {
  bench: 'get-key',
  concurrency,
  seconds: durationMs / 1000,
  node: process.version,
  emptyRoute: empty,
  embedded: { ...embedded, ratioToEmpty: round(embedded.perSecond / empty.perSecond, 3) },
};
let mysqlRun: (LoadSummary & { keysLeft: number }) | undefined;
if (!values['skip-mysql']) {
  mysqlRun = await getKeyRun('mysql');
  results.mysql = { ...mysqlRun, ratioToEmpty: round(mysqlRun.perSecond / empty.perSecond, 3) };
}
for (const k of ['emptyRoute', 'embedded', 'mysql']) {
  const r = results[k] as { samples?: unknown } | undefined;
  if (r) delete r.samples;
}
console.log(JSON.stringify(results));
console.log(line('empty Express route', empty));
console.log(line('get_key, embedded store', embedded, `  = ${round((embedded.perSecond / empty.perSecond) * 100, 1)} % of empty (target >= 25 %)`));
if (mysqlRun) console.log(line('get_key, MySQL handles', mysqlRun, `  = ${round((mysqlRun.perSecond / empty.perSecond) * 100, 1)} % of empty (target >= 2000 keys/s)`));
console.log(`targets: p99 < 10 ms at ${concurrency} clients`);
