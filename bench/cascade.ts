/**
 * Cascade benchmark: throughput (both ends in one process, in-memory channel), efficiency
 * f = leak / (n h(e)), round trips and residual errors, for n = 100k and 1M at QBER 1 %, 2 %, 5 %.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/cascade.js [--trials N] [--variant original|optimized|all] [--n 100000,1000000] [--qber 0.01,0.02,0.05] [--warmup 6]
 *
 * Prints one readable line per case, then one JSON object {bench: 'cascade', results: [...]}; progress on stderr.
 * Errors are placed uniformly at random: exactly round(q n) distinct positions.
 */
import { randomBytes } from 'node:crypto';
import { BitArray } from '../src/sim/bb84/common/bits.js';
import {
  CascadeResponder,
  HIGH_EFFICIENCY_CASCADE,
  InMemoryOracle,
  OPTIMIZED_CASCADE,
  ORIGINAL_CASCADE,
  efficiency,
  reconcile,
  releaseKeyBits,
  type CascadeVariant,
} from '../src/sim/bb84/reconciliation/cascade.js';
import { Progress } from '../scripts/lib/progress.js';

const VARIANTS: Record<string, CascadeVariant> = {
  original: ORIGINAL_CASCADE,
  'original-no-reuse': { ...ORIGINAL_CASCADE, name: 'original-no-reuse', reuseKnownParities: false },
  optimized: OPTIMIZED_CASCADE,
  'high-efficiency': HIGH_EFFICIENCY_CASCADE,
};

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

/** A random key and a copy with exactly `errors` flipped bits at distinct uniformly random positions. */
function keyPair(n: number, errors: number): { alice: BitArray; bob: BitArray } {
  const words = new Uint32Array((n + 31) >>> 5);
  const bytes = randomBytes(words.length * 4);
  new Uint8Array(words.buffer).set(bytes);
  const alice = new BitArray(n, words).clearTail();
  const bob = alice.clone();
  // Partial Fisher-Yates over positions picks `errors` distinct ones.
  const pos = new Int32Array(n);
  for (let i = 0; i < n; i++) pos[i] = i;
  const rnd = new Uint32Array(errors);
  randomFillU32(rnd);
  for (let i = 0; i < errors; i++) {
    const j = i + (rnd[i]! % (n - i));
    const t = pos[i]!;
    pos[i] = pos[j]!;
    pos[j] = t;
    bob.flip(pos[i]!);
  }
  return { alice, bob };
}

function randomFillU32(a: Uint32Array): void {
  const b = randomBytes(a.length * 4);
  new Uint8Array(a.buffer).set(b);
}

interface CaseResult {
  variant: string;
  n: number;
  qber: number;
  trials: number;
  mbitPerSec: number;
  msPerBlock: number;
  efficiency: number;
  efficiencyMin: number;
  efficiencyMax: number;
  roundTrips: number;
  passes: number;
  residualErrorBlocks: number;
  residualErrorBits: number;
}

async function runCase(variantName: string, variant: CascadeVariant, n: number, qber: number, trials: number): Promise<CaseResult> {
  let totalMs = 0;
  let leak = 0;
  let effMin = Infinity;
  let effMax = 0;
  let rt = 0;
  let residualBlocks = 0;
  let residualBits = 0;
  let passes = 0;
  for (let t = 0; t < trials; t++) {
    const errors = Math.round(qber * n);
    const { alice, bob } = keyPair(n, errors);
    const params = { ...variant, estimatedQber: qber };
    const seed = randomBytes(32);
    const t0 = process.hrtime.bigint();
    const responder = new CascadeResponder(alice, params, seed);
    const oracle = new InMemoryOracle(responder);
    const r = await reconcile(bob, params, seed, oracle);
    totalMs += Number(process.hrtime.bigint() - t0) / 1e6;
    const eff = efficiency(r.leakedBits, n, qber);
    effMin = Math.min(effMin, eff);
    effMax = Math.max(effMax, eff);
    leak += r.leakedBits;
    rt += r.roundTrips;
    passes = r.passes;
    const residual = r.corrected.hammingDistance(alice);
    if (residual > 0) residualBlocks++;
    residualBits += residual;
    // As a BB84 round does when its block is over: the next trial reuses the key arrays' memory.
    responder.dispose();
    releaseKeyBits(r.corrected);
  }
  const round = (x: number, d: number): number => Number(x.toFixed(d));
  return {
    variant: variantName,
    n,
    qber,
    trials,
    mbitPerSec: round((n * trials) / (totalMs * 1000), 3),
    msPerBlock: round(totalMs / trials, 1),
    efficiency: round(efficiency(leak / trials, n, qber), 4),
    efficiencyMin: round(effMin, 4),
    efficiencyMax: round(effMax, 4),
    roundTrips: round(rt / trials, 1),
    passes,
    residualErrorBlocks: residualBlocks,
    residualErrorBits: residualBits,
  };
}

async function main(): Promise<void> {
  const variantArg = arg('variant', 'all');
  const names = variantArg === 'all' ? Object.keys(VARIANTS) : variantArg.split(',');
  const sizes = arg('n', '100000,1000000').split(',').map(Number);
  const qbers = arg('qber', '0.01,0.02,0.05').split(',').map(Number);
  const trialsArg = process.argv.includes('--trials') ? Number(arg('trials', '1')) : undefined;
  const results: CaseResult[] = [];
  // Warm-up (not reported): V8 optimizes the hot loops over the first few reconciliations, which otherwise
  // dominate the 3-trial cases. A module reconciles block after block for hours.
  const warmups = Number(arg('warmup', '6'));
  const unknown = names.filter((name) => !VARIANTS[name]);
  if (unknown.length > 0) throw new Error(`unknown variant ${unknown.join(', ')}`);
  const progress = new Progress({ label: 'cascade', total: warmups + names.length * sizes.length * qbers.length, unit: 'cases' });
  for (let i = 0; i < warmups; i++) {
    await runCase('warm-up', OPTIMIZED_CASCADE, 1_000_000, 0.02, 1);
    progress.increment(1, 'warm-up done');
  }
  for (const name of names) {
    const variant = VARIANTS[name]!;
    for (const n of sizes) {
      for (const q of qbers) {
        const trials = trialsArg ?? (n >= 1_000_000 ? 3 : 10);
        const r = await runCase(name, variant, n, q, trials);
        results.push(r);
        progress.increment(1, `${name} n=${n} q=${q} done`);
        progress.log(
          `cascade ${r.variant.padEnd(9)} n=${String(n).padStart(8)} q=${(q * 100).toFixed(1)}%  ${r.mbitPerSec.toFixed(2)} Mbit/s  ${r.msPerBlock} ms/block  f=${r.efficiency.toFixed(3)} [${r.efficiencyMin.toFixed(3)}..${r.efficiencyMax.toFixed(3)}]  round trips ${r.roundTrips}  passes ${r.passes}  residual ${r.residualErrorBlocks}/${r.trials} blocks (${r.residualErrorBits} bits)`,
          process.stdout,
        );
      }
    }
  }
  progress.finish();
  console.log(JSON.stringify({ bench: 'cascade', node: process.version, results }));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
