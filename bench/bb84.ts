/**
 * BB84 simulator benchmark (docs/bb84.md, "Measured figures"). Build and run:
 *
 *   npx tsc -p tsconfig.json && node dist/bench/bb84.js [--blocks 20] [--seconds 20] [--realtime-seconds 20]
 *                                                        [--only pipeline,distances,modules,realtime] [--streams 2] [--warmup 10]
 *                                                        [--auth hmac,slh-dsa] (pipeline variants)
 *                                                        [--distances 0,25,50,100] [--pa-blocks 1] [--distance-auth slh-dsa]
 *    (or npm run build && npm run bench:bb84 -- [options])
 *
 * 1. pipeline: Alice's runSenderRound against Bob's receiver round in this process, over an in-memory channel that
 *    JSON-round-trips every message (as the peer channel does); 25 km default link with 2 % misalignment (QBER about
 *    2 %), default EC blocks (~0.8 Mbit sifted) and PA blocks. Once with SLH-DSA-SHA2-128f signatures (worker
 *    threads), once with the signatures replaced by an HMAC over the transcript (to show what the signatures cost).
 *    Reports sifted and secret Mbit/s and the per-stage milliseconds.
 * 1b. distances: the same pipeline on the default link at each distance until `--pa-blocks` PA blocks completed:
 *    secret bits per pulse realised and planned (Lim 2014 for the same pulses, bench/lib/bb84Distances.ts), secret
 *    bit/s and sifted bit/s of the one-core pipeline.
 * 2. modules: two real module processes (node dist/src/main.js) over loopback, pace max, signatures on,
 *    max_key_count 100000 and 8192-bit keys so blocks are not truncated, `--streams` streams; secret bits per second
 *    from GET /streams/{id}/stats (sum of secretBits - l of the PA blocks - of the rounds that completed in the window
 *    / window length).
 * 3. realtime: the same with pace realtime at 25 km, 100 MHz (default configuration), one stream: measured secret
 *    rate against the rate planned by protocol/sizing.ts plannedRate (Lim 2014 for the PA block, with the Cascade
 *    efficiency actually reached).
 *
 * Prints readable lines, then one JSON object {bench: 'bb84', ...} on the last line; progress goes to stderr.
 */
import type { ChildProcess } from 'node:child_process';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { toPyLiteral, type PyValue } from '../src/api/codec/pyLiteral.js';
import { encodeKey } from '../src/crypto/keys.js';
import { SignaturePool } from '../src/crypto/signatures.js';
import { SignatureAuthenticator, type TranscriptAuthenticator } from '../src/sim/bb84/simulator/authenticator.js';
import { Bb84Simulator, type Bb84Settings } from '../src/sim/bb84/simulator/Bb84Simulator.js';
import { clickProbabilityPerPulse, plannedRate } from '../src/sim/bb84/protocol/sizing.js';
import { hmacAuthenticator, runInMemoryBlock } from './lib/bb84Pair.js';
import { distanceRuns, printDistanceRuns } from './lib/bb84Distances.js';
import type { RoundParams, RoundResult, RoundStats } from '../src/sim/Simulator.js';
import { credentialsEnv, writeLinkCredentials } from '../scripts/lib/linkCredentials.js';
import { freePort, spawnModule, stopModuleProcess } from '../scripts/lib/moduleProcess.js';
import { Progress, waitShowingProgress } from '../scripts/lib/progress.js';

const { values } = parseArgs({
  options: {
    blocks: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '20' },
    'realtime-seconds': { type: 'string', default: '20' },
    only: { type: 'string', default: 'pipeline,distances,modules,realtime' },
    distances: { type: 'string', default: '0,25,50,100' },
    'pa-blocks': { type: 'string', default: '1' },
    'distance-auth': { type: 'string', default: 'slh-dsa' },
    /** Override the default configuration's EC block (pulses) and PA block (key-basis bits) for the in-process runs. */
    'block-pulses': { type: 'string' },
    'pa-bits': { type: 'string' },
    streams: { type: 'string', default: '2' },
    auth: { type: 'string', default: 'hmac,slh-dsa' },
    'insecure-peer': { type: 'boolean', default: false },
  },
});
/** modules/realtime: run the peer channel without authentication (to measure what authentication costs). */
const insecurePeer = values['insecure-peer'] ?? false;
const only = new Set(values.only!.split(','));
const round = (x: number, digits = 3): number => Number(x.toFixed(digits));

/** The default configuration (25 km, 0.2 dB/km, eta_det 0.1, decoys [0.5, 0.25, 2e-4], q_x 0.8, 100 MHz, PA blocks of 4e6 bits). */
const DEFAULT_LINK: Bb84Settings = {
  link: { lengthKm: 25, attenuationDbPerKm: 0.2, detectorEfficiency: 0.1, darkCountProbability: 1e-6, afterpulseProbability: 0, misalignmentError: 0.01 },
  source: { intensities: [0.5, 0.25, 2e-4], intensityProbabilities: [0.4, 0.4, 0.2], basisXProbability: 0.8 },
  attack: { kind: 'none' },
  pulseRateHz: 1e8,
  pace: 'max',
  qberThreshold: 0.11,
  blockPulses: 175_000_000,
  paBlockBits: 4_000_000,
  epsSec: 1e-10,
  epsCor: 1e-15,
  cascadePasses: 14,
  signature: 'slh-dsa-sha2-128f',
  ...(values['block-pulses'] ? { blockPulses: Number(values['block-pulses']) } : {}),
  ...(values['pa-bits'] ? { paBlockBits: Number(values['pa-bits']) } : {}),
};

const STAGES = ['frame', 'sift', 'phase', 'cascade', 'verify', 'accumulate', 'seed', 'amplify', 'toeplitz', 'sign', 'wait_sign', 'confirm', 'peer', 'total'];

function sum(rs: RoundStats[], field: string): number {
  return rs.reduce((a, s) => a + (typeof s[field] === 'number' ? (s[field] as number) : 0), 0);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function stageMeans(rs: RoundStats[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const st of STAGES) out[st] = round(sum(rs, `ms_${st}`) / Math.max(1, rs.length), 1);
  return out;
}

// ---------------------------------------------------------------------------------------------
// 1. The pipeline in one process
// ---------------------------------------------------------------------------------------------

interface PipelineResult {
  authentication: string;
  blocks: number;
  aborted: number;
  siftedMbitPerS: number;
  secretMbitPerS: number;
  /** Sifted Mbit per CPU second of this process (all threads): insensitive to idle time and to other load on the host. */
  siftedMbitPerCpuS: number;
  /**
   * Sifted Mbit per second of everything but the simulated quantum frame (Alice's 'frame' stage: drawing the
   * detected pulses, the frame message and Bob's channel model and measurement, which a real link's devices do):
   * sifting, estimation, Cascade, verification, amplification, transcripts and their messages.
   */
  postFrameMbitPerS: number;
  meanSiftedBits: number;
  meanQber: number;
  meanCascadeEfficiency: number;
  meanCascadeRoundTrips: number;
  aliceStageMs: Record<string, number>;
  bobStageMs: Record<string, number>;
  /** Wall time of each warm-up block (not counted), then the median and slowest timed block. */
  warmupBlockMs: number[];
  medianBlockMs: number;
  maxBlockMs: number;
}

async function pipeline(blocks: number, warmupBlocks: number): Promise<PipelineResult[]> {
  const settings: Bb84Settings = { ...DEFAULT_LINK, link: { ...DEFAULT_LINK.link, misalignmentError: 0.02 } };
  const pool = SignaturePool.create('slh-dsa-sha2-128f', { workers: 2 });
  const [a, b] = [await pool.generateKeyPair(), await pool.generateKeyPair()];
  const hmacKey = randomBytes(32);
  const variants: [string, () => [TranscriptAuthenticator, TranscriptAuthenticator]][] = [
    ['hmac (signatures excluded)', () => [hmacAuthenticator(hmacKey), hmacAuthenticator(hmacKey)]],
    ['slh-dsa-sha2-128f', () => [new SignatureAuthenticator(pool, a.secretKey.slice(), b.publicKey, false), new SignatureAuthenticator(pool, b.secretKey.slice(), a.publicKey, false)]],
  ];
  const results: PipelineResult[] = [];
  const wanted = new Set(values.auth!.split(','));
  try {
    for (const [name, make] of variants) {
      if (!wanted.has(name.split(' ')[0]!.replace('-sha2-128f', ''))) continue;
      const [authA, authB] = make();
      const alice = new Bb84Simulator({ settings, authenticator: authA });
      const bob = new Bb84Simulator({ settings, authenticator: authB });
      const params = (i: number): RoundParams => ({ keyStreamId: 'bench', firstIndex: i * 1000, keyLengthBits: 8192, maxKeys: 100_000 });
      // Warm-up: V8 needs a few blocks to optimize the hot loops (the first block takes about twice as long as a
      // steady one), and the FFT tables are built once. A module runs for hours, so the steady rate is the figure.
      const progress = new Progress({ label: `pipeline ${name}`, total: warmupBlocks + blocks, unit: 'blocks' });
      const warmupMs: number[] = [];
      for (let i = 0; i < warmupBlocks; i++) {
        const w0 = performance.now();
        await runInMemoryBlock(alice, bob, params(i));
        warmupMs.push(round(performance.now() - w0, 1));
        progress.update(i + 1, 'warm-up');
      }
      const aliceStats: RoundStats[] = [];
      const bobStats: RoundStats[] = [];
      const blockMs: number[] = [];
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      for (let i = 1; i <= blocks; i++) {
        const b0 = performance.now();
        const r = await runInMemoryBlock(alice, bob, params(warmupBlocks + i));
        blockMs.push(performance.now() - b0);
        // BENCH_BLOCK_MS=1 prints every timed block's wall time (to see warm-up and host noise).
        if (process.env.BENCH_BLOCK_MS) progress.log(`block ${i}: ${(performance.now() - b0).toFixed(1)} ms`, process.stdout);
        aliceStats.push(r.alice.stats!);
        if (r.bob?.stats) bobStats.push(r.bob.stats);
        progress.update(warmupBlocks + i, 'timed');
      }
      progress.finish();
      const seconds = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const cpuSeconds = (cpu.user + cpu.system) / 1e6;
      const done = aliceStats.filter((s) => !s.aborted);
      results.push({
        authentication: name,
        blocks,
        aborted: blocks - done.length,
        siftedMbitPerS: round(sum(aliceStats, 'siftedBits') / seconds / 1e6),
        siftedMbitPerCpuS: round(sum(aliceStats, 'siftedBits') / cpuSeconds / 1e6),
        postFrameMbitPerS: round(sum(aliceStats, 'siftedBits') / (seconds - sum(aliceStats, 'ms_frame') / 1000) / 1e6),
        secretMbitPerS: round(sum(aliceStats, 'secretBits') / seconds / 1e6),
        meanSiftedBits: Math.round(sum(aliceStats, 'siftedBits') / blocks),
        meanQber: round(sum(done, 'qberZ') / Math.max(1, done.length), 5),
        meanCascadeEfficiency: round(sum(done, 'cascadeEfficiency') / Math.max(1, done.length), 4),
        meanCascadeRoundTrips: round(sum(done, 'cascadeRoundTrips') / Math.max(1, done.length), 1),
        aliceStageMs: stageMeans(aliceStats),
        bobStageMs: stageMeans(bobStats),
        warmupBlockMs: warmupMs,
        medianBlockMs: round(median(blockMs), 1),
        maxBlockMs: round(Math.max(...blockMs), 1),
      });
    }
  } finally {
    await pool.close();
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// 2./3. Two module processes over loopback
// ---------------------------------------------------------------------------------------------


interface Module {
  url: string;
  address: string;
  proc: ChildProcess;
  dir: string;
  output(): string;
}

async function startModule(name: string, sender: 0 | 1, env: Record<string, string>): Promise<Module> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), `qkdm-bench-${name}-`));
  const configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, 'module:\n  sim: bb84\n');
  // BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/x" profiles the modules.
  const nodeArgs = process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : [];
  const { proc, output } = await spawnModule({
    name,
    configFile,
    nodeArgs,
    env: {
      QKDM_MODULE_HOST: '127.0.0.1',
      QKDM_MODULE_PORT: String(port),
      QKDM_MODULE_THIS_PUBLIC_IP: `127.0.0.1:${port}`,
      QKDM_MODULE_SENDER: String(sender),
      QKDM_MODULE_DATA_DIR: dir,
      QKDM_MODULE_MAX_KEY_COUNT: '100000',
      QKDM_MODULE_LOG_LEVEL: 'warn',
      QKDM_MODULE_PEER_TIMEOUT_MS: '10000',
      ...env,
    },
  });
  return { url: `http://127.0.0.1:${port}`, address: `127.0.0.1:${port}`, proc, dir, output };
}

async function stopModule(m: Module): Promise<void> {
  await stopModuleProcess(m.proc);
  rmSync(m.dir, { recursive: true, force: true });
}

async function postPy(url: string, path: string, value: PyValue): Promise<string> {
  const res = await fetch(`${url}${path}`, { method: 'POST', body: toPyLiteral(value) });
  return res.text();
}

async function openStream(alice: Module, bob: Module, lengthBits: number): Promise<string> {
  const a = await postPy(alice.url, '/open_connect', [null, bob.address, { timeout: 5000, length: lengthBits }, null]);
  const id = /'([0-9a-f-]{36})'/.exec(a)?.[1];
  if (!id) throw new Error(`open_connect failed at alice: ${a}`);
  const b = await postPy(bob.url, '/open_connect', [null, alice.address, { timeout: 5000, length: lengthBits }, id]);
  if (!b.includes(id)) throw new Error(`open_connect failed at bob: ${b}`);
  return id;
}

interface StatsRound {
  firstIndex: number;
  keys: number;
  at: string;
  stats?: RoundStats;
}

async function rounds(m: Module, id: string): Promise<StatsRound[]> {
  const res = await fetch(`${m.url}/streams/${id}/stats`);
  return ((await res.json()) as { rounds: StatsRound[] }).rounds;
}

interface LinkRun {
  blocks: number;
  aborted: number;
  windowSeconds: number;
  secretBits: number;
  keyBits: number;
  secretBitsPerS: number;
  keyBitsPerS: number;
  siftedBitsPerS: number;
  meanQber: number;
  meanCascadeEfficiency: number;
  aliceStageMs: Record<string, number>;
  /** Bob's own processing per block (ms). */
  bobStageMs: Record<string, number>;
  /** Peer requests per block, and the mean time per request not spent in Bob's processing (HTTP, JSON, queueing). */
  requestsPerBlock: number;
  overheadMsPerRequest: number;
  warnings: string[];
}

/**
 * Runs `streams` streams for `seconds`. Per stream, the window runs from the start of its first block to the start
 * of its last one (start = completion time - ms_total) and holds the blocks started before the last: their secret
 * bits over the window is the stream's rate; the link's rate is the sum over the streams (they run concurrently).
 */
async function runLink(label: string, env: Record<string, string>, streams: number, seconds: number): Promise<LinkRun> {
  const pool = SignaturePool.create('slh-dsa-sha2-128f');
  const [ka, kb] = [await pool.generateKeyPair(), await pool.generateKeyPair()];
  await pool.close();
  // The peer channel is authenticated (link credentials) unless --insecure-peer measures it without.
  const files = insecurePeer ? undefined : await writeLinkCredentials(mkdtempSync(join(tmpdir(), 'qkdm-bench-link-')));
  const auth = (sender: 0 | 1): Record<string, string> => (files ? credentialsEnv(files, sender) : { QKDM_PEER_AUTH_INSECURE: 'true' });
  const alice = await startModule('alice', 1, { ...env, ...auth(1), QKDM_SIMULATOR_PRIVATE_KEY: encodeKey(ka.secretKey), QKDM_SIMULATOR_PUBLIC_KEY: encodeKey(kb.publicKey) });
  const bob = await startModule('bob', 0, { ...env, ...auth(0), QKDM_SIMULATOR_PRIVATE_KEY: encodeKey(kb.secretKey), QKDM_SIMULATOR_PUBLIC_KEY: encodeKey(ka.publicKey) });
  try {
    const ids: string[] = [];
    for (let i = 0; i < streams; i++) ids.push(await openStream(alice, bob, 8192));
    await waitShowingProgress(seconds * 1000, { label });
    const counted: RoundStats[] = [];
    const bobCounted: RoundStats[] = [];
    let secretRate = 0;
    let keyRate = 0;
    let siftedRate = 0;
    let windowSeconds = 0;
    for (const id of ids) {
      const rs = (await rounds(alice, id))
        .filter((r) => r.stats)
        .map((r) => ({ start: Date.parse(r.at) - ((r.stats!.ms_total as number) ?? 0), stats: r.stats! }))
        .sort((a, b) => a.start - b.start);
      if (rs.length < 2) continue;
      const w = (rs[rs.length - 1]!.start - rs[0]!.start) / 1000;
      const inWindow = rs.slice(0, -1).map((r) => r.stats);
      counted.push(...inWindow);
      const first = Date.parse(new Date(rs[0]!.start).toISOString());
      bobCounted.push(...(await rounds(bob, id)).filter((r) => r.stats && Date.parse(r.at) >= first).map((r) => r.stats!));
      secretRate += sum(inWindow, 'secretBits') / w;
      keyRate += sum(inWindow, 'keyBits') / w;
      siftedRate += sum(inWindow, 'siftedBits') / w;
      windowSeconds = Math.max(windowSeconds, w);
    }
    const done = counted.filter((s) => !s.aborted);
    return {
      blocks: counted.length,
      aborted: counted.length - done.length,
      windowSeconds: round(windowSeconds, 2),
      secretBits: sum(counted, 'secretBits'),
      keyBits: sum(counted, 'keyBits'),
      secretBitsPerS: Math.round(secretRate),
      keyBitsPerS: Math.round(keyRate),
      siftedBitsPerS: Math.round(siftedRate),
      meanQber: round(sum(done, 'qberZ') / Math.max(1, done.length), 5),
      meanCascadeEfficiency: round(sum(done, 'cascadeEfficiency') / Math.max(1, done.length), 4),
      aliceStageMs: stageMeans(counted),
      bobStageMs: stageMeans(bobCounted),
      requestsPerBlock: round(sum(counted, 'requests') / Math.max(1, counted.length), 1),
      overheadMsPerRequest: round((sum(counted, 'ms_peer') / Math.max(1, counted.length) - sum(bobCounted, 'ms_total') / Math.max(1, bobCounted.length)) / Math.max(1, sum(counted, 'requests') / Math.max(1, counted.length)), 2),
      warnings: alice.output().split('\n').concat(bob.output().split('\n')).filter((l) => /"level":(40|50|60)/.test(l)).slice(0, 5),
    };
  } finally {
    await Promise.all([stopModule(alice), stopModule(bob)]);
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const report: Record<string, unknown> = { bench: 'bb84', node: process.version };

  if (only.has('pipeline')) {
    const blocks = Number(values.blocks);
    const res = await pipeline(blocks, Number(values.warmup));
    report.pipeline = res;
    for (const r of res) {
      console.log(
        `pipeline ${r.authentication.padEnd(27)} ${r.blocks} blocks of ~${(r.meanSiftedBits / 1e6).toFixed(2)} Mbit sifted, QBER ${(r.meanQber * 100).toFixed(2)} %: `
          + `${r.siftedMbitPerS.toFixed(2)} Mbit/s sifted -> ${r.secretMbitPerS.toFixed(2)} Mbit/s secret (f=${r.meanCascadeEfficiency}, ${r.meanCascadeRoundTrips} round trips, ${r.aborted} aborted); `
          + `${r.siftedMbitPerCpuS.toFixed(2)} Mbit sifted per CPU second (all threads)`,
      );
      console.log(`  without the simulated quantum frame (sifting and post-processing only): ${r.postFrameMbitPerS.toFixed(2)} Mbit/s sifted`);
      console.log(`  ms per block: warm-up ${r.warmupBlockMs.join(', ')} (not counted); timed median ${r.medianBlockMs}, slowest ${r.maxBlockMs}`);
      console.log(`  alice ms/block: ${JSON.stringify(r.aliceStageMs)}`);
      console.log(`  bob   ms/block: ${JSON.stringify(r.bobStageMs)}`);
    }
  }

  if (only.has('distances')) {
    const runs = await distanceRuns({
      base: DEFAULT_LINK,
      distances: values.distances!.split(',').map(Number),
      paBlocks: Number(values['pa-blocks']),
      auth: values['distance-auth'] === 'hmac' ? 'hmac' : 'slh-dsa',
    });
    report.distances = runs;
    printDistanceRuns(runs);
  }

  if (only.has('modules')) {
    const seconds = Number(values.seconds);
    const streams = Number(values.streams);
    const r = await runLink(`modules, pace max, ${streams} stream${streams === 1 ? "" : "s"}`, { QKDM_SIMULATOR_PACE: 'max' }, streams, seconds);
    report.modules = { streams, seconds, ...r };
    console.log(
      `modules  pace max, ${streams} streams, ${r.blocks} blocks in ${r.windowSeconds} s per stream: ${(r.secretBitsPerS / 1e6).toFixed(3)} Mbit/s secret `
        + `(${(r.keyBitsPerS / 1e6).toFixed(3)} Mbit/s as 8192-bit keys, ${(r.siftedBitsPerS / 1e6).toFixed(3)} Mbit/s sifted, ${r.aborted} aborted)`,
    );
    console.log(`  alice ms/block: ${JSON.stringify(r.aliceStageMs)}`);
    console.log(`  bob   ms/block: ${JSON.stringify(r.bobStageMs)}`);
    console.log(`  ${r.requestsPerBlock} peer requests per block, ${r.overheadMsPerRequest} ms each outside Bob's processing (HTTP, JSON, exchange, queueing)`);
    for (const w of r.warnings) console.log(`  warning: ${w.slice(0, 300)}`);
  }

  if (only.has('realtime')) {
    const seconds = Number(values['realtime-seconds']);
    const r = await runLink('realtime, 1 stream', { QKDM_SIMULATOR_PACE: 'realtime' }, 1, seconds);
    const fEC = r.meanCascadeEfficiency > 0 ? r.meanCascadeEfficiency : 1.1;
    const settings: Bb84Settings = { ...DEFAULT_LINK, pace: 'realtime' };
    const planned = plannedRate(settings, fEC);
    const p = settings.source.basisXProbability;
    const predicted = {
      secretRate: planned.secretBitsPerSecond,
      siftedRate: settings.pulseRateHz * clickProbabilityPerPulse(settings) * (p * p + (1 - p) * (1 - p)),
      qber: planned.plan.qberX,
      paBlockPulses: planned.paBlockPulses,
    };
    const ratio = r.secretBitsPerS / predicted.secretRate;
    report.realtime = { seconds, ...r, predicted, ratioToPlannedRate: round(ratio, 4) };
    console.log(
      `realtime 25 km, 100 MHz, ${r.blocks} blocks over ${r.windowSeconds} s: measured ${(r.secretBitsPerS / 1e3).toFixed(1)} kbit/s secret; `
        + `planned ${(predicted.secretRate / 1e3).toFixed(1)} kbit/s (Lim 2014, PA blocks of ${(predicted.paBlockPulses / 1e8).toFixed(2)} s, f=${fEC}); ratio ${ratio.toFixed(3)} `
        + '(a PA block completes every few seconds: use --realtime-seconds well above that)',
    );
    console.log(`  measured sifted ${(r.siftedBitsPerS / 1e3).toFixed(1)} kbit/s vs predicted ${(predicted.siftedRate / 1e3).toFixed(1)} kbit/s; QBER ${(r.meanQber * 100).toFixed(2)} % vs ${(predicted.qber * 100).toFixed(2)} %`);
    console.log(`  alice ms/block: ${JSON.stringify(r.aliceStageMs)}`);
    for (const w of r.warnings) console.log(`  warning: ${w.slice(0, 300)}`);
  }

  console.log(JSON.stringify(report));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
