/**
 * bench/hostile: a pair of real module processes under a flood of hostile requests (issue 13 point 15:
 * "Under 100,000 hostile requests one connection was reset without an answer, and resident memory grew
 * from 110 to 270 MB per module").
 *
 *   npm run bench:hostile [-- --requests 100000 --concurrency 8 --settle 5]
 *
 * Starts Alice and Bob (fake exchange, embedded stores, fresh link credentials, applications and peer on
 * separate listeners, ETSI 014 enabled without SAEs), opens a stream and checks keys at both ends, then
 * sends N requests from `concurrency` keep-alive clients, cycling through every kind of
 * bench/lib/hostile.ts at both listeners of both modules. It counts answers by status, requests without
 * an answer (a reset is a defect), 5xx answers and answers that repeat the request, samples each module's
 * resident memory (VmRSS) before, during and after, and checks the pair still delivers identical keys.
 * Prints one JSON line and a readable summary; exits 1 when a request went unanswered, got a 5xx or an
 * echo, or the keys differ.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parsePyLiteral, toPyLiteral, type PyValue } from '../src/api/codec/pyLiteral.js';
import { writeLinkCredentials } from '../scripts/lib/linkCredentials.js';
import { freePort, spawnModule, stopModuleProcess } from '../scripts/lib/moduleProcess.js';
import { ALL_KINDS, hostilePairEnv, runHostile, rssMiB, type Listener } from './lib/hostile.js';
import { Progress } from '../scripts/lib/progress.js';

const USAGE = [
  'usage: npm run bench:hostile -- [--requests N] [--concurrency C] [--warmup N] [--settle S]',
  '  --requests N      hostile requests in all (default 100000)',
  '  --concurrency C   concurrent clients (default 8)',
  '  --warmup N        hostile requests before the "before" memory reading (default 3000)',
  '  --settle S        seconds to wait after the flood before the "after" reading (default 5)',
  '  --kinds REGEX     only the request kinds whose name matches (default: all; names in bench/lib/hostile.ts)',
  '  --node-arg ARG    an extra node argument for both modules, e.g. --node-arg=--trace-gc (repeatable)',
].join('\n');

let values: { requests?: string; concurrency?: string; warmup?: string; settle?: string; kinds?: string; 'node-arg'?: string[]; help?: boolean };
try {
  ({ values } = parseArgs({
    options: {
      requests: { type: 'string', default: '100000' },
      concurrency: { type: 'string', default: '8' },
      warmup: { type: 'string', default: '3000' },
      settle: { type: 'string', default: '5' },
      kinds: { type: 'string' },
      'node-arg': { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (err) {
  console.error(`bench:hostile: ${(err as Error).message}\n${USAGE}`);
  process.exit(2);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const total = Number(values.requests);
const concurrency = Number(values.concurrency);
const warmup = Number(values.warmup);
const settleS = Number(values.settle);
if (![total, concurrency, warmup, settleS].every((n) => Number.isInteger(n) && n >= 0) || total === 0 || concurrency === 0) {
  console.error(`bench:hostile: --requests and --concurrency must be positive integers, --warmup and --settle non-negative\n${USAGE}`);
  process.exit(2);
}

const kinds = values.kinds ? ALL_KINDS.filter((k) => new RegExp(values.kinds!).test(k.name)) : ALL_KINDS;
if (kinds.length === 0) {
  console.error(`bench:hostile: --kinds matches no request kind\n${USAGE}`);
  process.exit(2);
}

interface Mod {
  name: 'alice' | 'bob';
  proc: ChildProcess;
  port: number;
  peerPort: number;
}

const work = mkdtempSync(join(tmpdir(), 'qkdm-bench-hostile-'));
const mods: Mod[] = [];
let streamId = '';

async function start(): Promise<void> {
  const link = await writeLinkCredentials(join(work, 'link'));
  for (const [name, sender] of [['alice', 1], ['bob', 0]] as const) {
    const port = await freePort();
    const peerPort = await freePort();
    const file = join(work, `${name}.yaml`);
    writeFileSync(file, 'module:\n  sim: fake\n');
    const { proc } = await spawnModule({
      name,
      configFile: file,
      nodeArgs: values['node-arg'] ?? [],
      env: {
        ...hostilePairEnv(name, sender, port, peerPort, join(work, name), link),
      },
    });
    mods.push({ name, proc, port, peerPort });
  }
}

async function post(port: number, path: string, body: PyValue): Promise<PyValue> {
  return parsePyLiteral(await (await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', body: toPyLiteral(body) })).text());
}

/** Opens a stream at both ends. */
async function openStream(): Promise<string> {
  const [alice, bob] = mods as [Mod, Mod];
  const [id, s1] = (await post(alice.port, '/open_connect', [null, `127.0.0.1:${bob.peerPort}`, { timeout: 10_000, length: 256 }, null])) as [string, number];
  if (s1 !== 0) throw new Error(`open_connect at alice: status ${s1}`);
  const [, s2] = (await post(bob.port, '/open_connect', [null, `127.0.0.1:${alice.peerPort}`, { timeout: 10_000, length: 256 }, id])) as [string, number];
  if (s2 !== 0) throw new Error(`open_connect at bob: status ${s2}`);
  return id;
}

/** Takes `n` keys at both ends; resolves how many were delivered at both ends and identical. */
/** The key at `index` (-1: the next one) at one module, asking again for up to 10 s while none is ready. */
async function takeKey(port: number, index: number): Promise<{ key: Buffer; index: number } | undefined> {
  const t0 = Date.now();
  while (Date.now() - t0 < 10_000) {
    const [key, idx, status] = (await post(port, '/get_key', [streamId, index, {}])) as [Uint8Array | null, number, number];
    if (status === 0 && key) return { key: Buffer.from(key), index: idx };
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

async function sameKeys(id: string, n: number): Promise<{ compared: number; identical: number }> {
  const [alice, bob] = mods as [Mod, Mod];
  let identical = 0;
  for (let i = 0; i < n; i++) {
    // A key at Alice (waiting for the exchange if none is ready yet), then the same index at Bob.
    const a = await takeKey(alice.port, -1);
    const b = a ? await takeKey(bob.port, a.index) : undefined;
    if (a && b && a.key.equals(b.key)) identical++;
  }
  return { compared: n, identical };
}

const rssAll = async (): Promise<Record<string, number>> => Object.fromEntries(await Promise.all(mods.map(async (m) => [m.name, await rssMiB(m.proc.pid!)] as const)));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<number> {
  await start();
  const targets = mods.flatMap((m) => [
    { listener: 'app' as Listener, port: m.port },
    { listener: 'peer' as Listener, port: m.peerPort },
  ]);
  const id = await openStream();
  streamId = id;
  const keysBefore = await sameKeys(id, 5);
  const fresh = await rssAll();
  if (warmup > 0) {
    const warming = new Progress({ label: 'warm-up', total: warmup, unit: 'requests' });
    await runHostile({ total: warmup, concurrency, kinds, targets, onProgress: (done) => warming.update(done) });
    warming.finish();
  }
  await sleep(1000);
  const before = await rssAll();
  const peak: Record<string, number> = { ...before };
  const sampler = setInterval(() => {
    void rssAll().then((r) => {
      for (const [k, v] of Object.entries(r)) peak[k] = Math.max(peak[k] ?? 0, v);
    }, () => undefined);
  }, 250);
  const t0 = Date.now();
  const flood = new Progress({ label: 'hostile requests', total, unit: 'requests' });
  const tally = await runHostile({ total, concurrency, kinds, targets, onProgress: (done) => flood.update(done) });
  const seconds = (Date.now() - t0) / 1000;
  clearInterval(sampler);
  flood.finish();
  const during = await rssAll();
  for (const [k, v] of Object.entries(during)) peak[k] = Math.max(peak[k] ?? 0, v);
  await sleep(settleS * 1000);
  const after = await rssAll();
  const keysAfter = await sameKeys(id, 5);
  const alive = mods.every((m) => m.proc.exitCode === null && m.proc.signalCode === null);

  const noAnswer = Object.values(tally.noAnswer).reduce((a, b) => a + b, 0);
  const memory = Object.fromEntries(mods.map((m) => [m.name, { freshMiB: fresh[m.name], beforeMiB: before[m.name], peakMiB: peak[m.name], afterMiB: after[m.name], growthMiB: Math.round(((after[m.name] ?? 0) - (before[m.name] ?? 0)) * 10) / 10 }]));
  const result = {
    bench: 'hostile',
    node: process.version,
    requests: tally.requests,
    concurrency,
    warmup,
    seconds: Math.round(seconds * 10) / 10,
    perSecond: Math.round(tally.requests / seconds),
    byStatus: tally.byStatus,
    noAnswer: tally.noAnswer,
    server5xx: tally.server5xx,
    echoed: tally.echoed,
    unexpectedStatus: tally.unexpected,
    withoutErrorBody: tally.emptyBodies,
    memory,
    keys: { before: keysBefore, after: keysAfter },
    modulesAlive: alive,
    byKind: tally.byKind,
    examples: tally.examples,
  };
  console.log(JSON.stringify(result));
  console.log(`hostile: ${tally.requests} requests in ${result.seconds} s (${result.perSecond}/s, ${concurrency} clients) at both listeners of both modules`);
  console.log(`  answers by status: ${Object.entries(tally.byStatus).map(([s, n]) => `${s}: ${n}`).join(', ')}`);
  console.log(`  without an answer (resets, hang-ups): ${noAnswer}${noAnswer ? ` (${Object.entries(tally.noAnswer).map(([e, n]) => `${e}: ${n}`).join(', ')})` : ''}; 5xx: ${tally.server5xx}; echoing the request: ${tally.echoed}; status outside 4xx: ${tally.unexpected}; without an error body: ${tally.emptyBodies}`);
  for (const m of mods) {
    const r = memory[m.name]!;
    console.log(`  ${m.name} RSS: fresh ${r.freshMiB} MiB, after ${warmup} warm-up requests ${r.beforeMiB} MiB, peak ${r.peakMiB} MiB, after ${r.afterMiB} MiB (${settleS} s later): growth ${r.growthMiB} MiB`);
  }
  console.log(`  keys: before ${keysBefore.identical}/${keysBefore.compared} identical, after ${keysAfter.identical}/${keysAfter.compared}; modules alive: ${alive}`);
  for (const e of tally.examples.slice(0, 10)) console.log(`  defect: ${e.kind}: ${e.status ?? e.error} ${e.echoed ? '(echoes the request) ' : ''}${e.bodyHead.slice(0, 100)}`);
  const ok = noAnswer === 0 && tally.server5xx === 0 && tally.echoed === 0 && tally.unexpected === 0 && tally.emptyBodies === 0 && keysAfter.identical === keysAfter.compared && alive;
  return ok ? 0 : 1;
}

const cleanup = async (): Promise<void> => {
  await Promise.all(mods.map((m) => stopModuleProcess(m.proc, 'SIGKILL')));
  rmSync(work, { recursive: true, force: true });
};

main().then(
  async (code) => {
    await cleanup();
    process.exit(code);
  },
  async (err: unknown) => {
    console.error(`bench:hostile failed: ${(err as Error).message}`);
    await cleanup();
    process.exit(1);
  },
);
