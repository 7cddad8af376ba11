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
import { parsePyLiteral, toPyLiteral, type PyValue } from '../src/api/codec/pyLiteral.js';
import { loadConfig } from '../src/config/load.js';
import { createLogger } from '../src/log.js';
import { createModule } from '../src/server.js';
import { openStores } from '../src/store/index.js';
import { parseMysqlUrl } from '../src/store/mysql/MysqlHandleStore.js';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { credentialsEnv, writeLinkCredentials } from '../scripts/lib/linkCredentials.js';
import { freePort, spawnModule, stopModuleProcess } from '../scripts/lib/moduleProcess.js';
import { percentile, round, runLoad, type LoadSummary } from './lib/load.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '16' },
    mysql: { type: 'string', default: process.env.QKDM_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test' },
    'skip-mysql': { type: 'boolean', default: false },
    /** Also run the two-process pair (keys produced by the fake exchange and delivered at both ends). */
    pair: { type: 'boolean', default: true },
    /** Run the pair's peer channel without authentication (to measure what authentication costs). */
    'insecure-peer': { type: 'boolean', default: false },
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
  // The module authenticates its (unused here) peer channel like any default module.
  Object.assign(env, credentialsEnv(await writeLinkCredentials(join(dataDir, 'link')), 1));
  const cfg = loadConfig({ env });
  const log = createLogger('warn');
  const stores = await openStores(cfg, log);
  const id = randomUUID();
  await stores.handles.create({
    keyStreamId: id, source: 'bench', destination: '127.0.0.1:1', peerUrl: 'http://127.0.0.1:1', keyLengthBits: 256, timeoutMs: 0,
    localOpen: true, peerOpen: true, closed: true, nextIndex: KEYS, createdAt: Date.now(), ttlSeconds: 0, owner: 'local',
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

/**
 * Two module processes (fake exchange, embedded stores, max_key_count 1000), one stream of 256-bit keys:
 * `concurrency` clients split over both ends take keys for the whole duration; keys/s is what the slower
 * end delivered. This path includes the peer channel (rounds, key confirmation) and its authentication.
 */
async function pairRun(insecure: boolean): Promise<{ keysPerSecond: number; alice: number; bob: number; compared: number; mismatched: number; p50Ms: number; p99Ms: number }> {
  const work = mkdtempSync(join(tmpdir(), 'qkdm-bench-pair-'));
  const link = insecure ? undefined : await writeLinkCredentials(join(work, 'link'));
  const procs: ChildProcess[] = [];
  const ports = { alice: await freePort(), bob: await freePort() };
  for (const [name, sender] of [['alice', 1], ['bob', 0]] as const) {
    const file = join(work, `${name}.yaml`);
    writeFileSync(file, 'module:\n  sim: fake\n');
    const { proc } = await spawnModule({
      name,
      configFile: file,
      env: {
        QKDM_MODULE_HOST: '127.0.0.1',
        QKDM_MODULE_PORT: String(ports[name]),
        QKDM_MODULE_THIS_PUBLIC_IP: `127.0.0.1:${ports[name]}`,
        QKDM_MODULE_SENDER: String(sender),
        QKDM_MODULE_DATA_DIR: join(work, name),
        QKDM_MODULE_MAX_KEY_COUNT: '1000',
        QKDM_MODULE_LOG_LEVEL: 'error',
        ...(link ? credentialsEnv(link, sender) : { QKDM_PEER_AUTH_INSECURE: 'true' }),
      },
    });
    procs.push(proc);
  }
  // Prefer: wait: a Python-literal get_key answers at once unless asked to wait for the exchange.
  const post = async (port: number, path: string, body: unknown): Promise<PyValue> =>
    parsePyLiteral(await (await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', body: toPyLiteral(body as PyValue), headers: { prefer: 'wait=5' } })).text());
  try {
    const [id] = (await post(ports.alice, '/open_connect', [null, `127.0.0.1:${ports.bob}`, { timeout: 5000, length: 256 }, null])) as [string];
    await post(ports.bob, '/open_connect', [null, `127.0.0.1:${ports.alice}`, { timeout: 5000, length: 256 }, id]);
    const got = { alice: new Map<number, string>(), bob: new Map<number, string>() };
    const latencies: number[] = [];
    const end = Date.now() + durationMs;
    const client = async (who: 'alice' | 'bob'): Promise<void> => {
      while (Date.now() < end) {
        const t0 = performance.now();
        const [key, index, status] = (await post(ports[who], '/get_key', [id, -1, {}])) as [Uint8Array | null, number, number];
        latencies.push(performance.now() - t0);
        if (status === 0 && key) got[who].set(index, Buffer.from(key).toString('hex'));
      }
    };
    const t0 = Date.now();
    await Promise.all(Array.from({ length: concurrency }, (_, i) => client(i % 2 === 0 ? 'alice' : 'bob')));
    const seconds = (Date.now() - t0) / 1000;
    let compared = 0;
    let mismatched = 0;
    for (const [index, key] of got.alice) {
      const other = got.bob.get(index);
      if (other === undefined) continue;
      compared++;
      if (other !== key) mismatched++;
    }
    latencies.sort((a, b) => a - b);
    return {
      keysPerSecond: round(Math.min(got.alice.size, got.bob.size) / seconds, 0),
      alice: got.alice.size,
      bob: got.bob.size,
      compared,
      mismatched,
      p50Ms: round(percentile(latencies, 50)),
      p99Ms: round(percentile(latencies, 99)),
    };
  } finally {
    await Promise.all(procs.map((p) => stopModuleProcess(p, 'SIGKILL')));
    rmSync(work, { recursive: true, force: true });
  }
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
let pair: Awaited<ReturnType<typeof pairRun>> | undefined;
if (values.pair) {
  pair = await pairRun(values['insecure-peer'] ?? false);
  results.pair = { peerChannel: values['insecure-peer'] ? 'insecure' : 'authenticated', ...pair };
}
for (const k of ['emptyRoute', 'embedded', 'mysql']) {
  const r = results[k] as { samples?: unknown } | undefined;
  if (r) delete r.samples;
}
console.log(JSON.stringify(results));
console.log(line('empty Express route', empty));
console.log(line('get_key, embedded store', embedded, `  = ${round((embedded.perSecond / empty.perSecond) * 100, 1)} % of empty (target >= 25 %)`));
if (mysqlRun) console.log(line('get_key, MySQL handles', mysqlRun, `  = ${round((mysqlRun.perSecond / empty.perSecond) * 100, 1)} % of empty (target >= 2000 keys/s)`));
if (pair) {
  console.log(
    `${`get_key, pair (${values['insecure-peer'] ? 'insecure' : 'authenticated'})`.padEnd(28)} ${pair.keysPerSecond.toString().padStart(7)} keys/s at both ends  `
      + `p50 ${pair.p50Ms} ms  p99 ${pair.p99Ms} ms  (alice ${pair.alice}, bob ${pair.bob}, ${pair.compared} compared, ${pair.mismatched} mismatched)`,
  );
}
console.log(`targets: p99 < 10 ms at ${concurrency} clients`);
