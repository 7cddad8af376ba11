/**
 * bench/signatures: median sign / verify time of each signature scheme on a 1 KB message, computed directly
 * on this thread and through a one-worker SignaturePool, with the longest event-loop stall seen meanwhile.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/signatures.js [--sign 10 --verify 30 --sphincs-sign 3 --sphincs-verify 10]
 *
 * Prints one readable line per scheme and mode, then one JSON object with every figure; progress on stderr.
 * Iterations run one after another (no concurrency): pool figures include the worker round trip.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import {
  loadDirectBackend,
  SIGNATURE_SCHEMES,
  SignaturePool,
  type KeyPair,
  type SignatureScheme,
} from '../src/crypto/signatures.js';
import { Progress } from '../scripts/lib/progress.js';

const { values } = parseArgs({
  options: {
    sign: { type: 'string', default: '10' },
    verify: { type: 'string', default: '30' },
    'sphincs-sign': { type: 'string', default: '3' },
    'sphincs-verify': { type: 'string', default: '10' },
  },
});

interface Figures {
  scheme: SignatureScheme;
  mode: 'direct' | 'pool';
  signIterations: number;
  verifyIterations: number;
  signMedianMs: number;
  verifyMedianMs: number;
  signMinMs: number;
  signMaxMs: number;
  /** Longest gap between ticks of a 10 ms interval on the calling thread while signing. */
  maxEventLoopStallMs: number;
}

const MESSAGE = new Uint8Array(randomBytes(1024));

const round = (x: number): number => Math.round(x * 100) / 100;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Times `n` sequential runs of `fn` while watching the event loop. */
async function timeRuns(n: number, fn: () => Promise<unknown>): Promise<{ times: number[]; maxStallMs: number }> {
  let last = performance.now();
  let maxStallMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxStallMs = Math.max(maxStallMs, now - last);
    last = now;
  }, 10);
  const times: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await fn();
      times.push(performance.now() - t0);
      // Let the ticker observe the end of this run before the next starts.
      await new Promise((r) => setTimeout(r, 15));
    }
  } finally {
    clearInterval(timer);
  }
  return { times, maxStallMs: Math.max(maxStallMs, performance.now() - last) };
}

interface Ops {
  sign(m: Uint8Array, sk: Uint8Array): Promise<Uint8Array>;
  verify(s: Uint8Array, m: Uint8Array, pk: Uint8Array): Promise<boolean>;
}

async function measure(scheme: SignatureScheme, mode: Figures['mode'], ops: Ops, keys: KeyPair): Promise<Figures> {
  const sphincs = scheme === 'sphincs-shake256-256s-robust';
  const nSign = Number(sphincs ? values['sphincs-sign'] : values.sign);
  const nVerify = Number(sphincs ? values['sphincs-verify'] : values.verify);
  let sig: Uint8Array = new Uint8Array();
  const s = await timeRuns(nSign, async () => {
    sig = await ops.sign(MESSAGE, keys.secretKey);
  });
  const v = await timeRuns(nVerify, async () => {
    if (!(await ops.verify(sig, MESSAGE, keys.publicKey))) throw new Error('benchmark signature did not verify');
  });
  return {
    scheme,
    mode,
    signIterations: nSign,
    verifyIterations: nVerify,
    signMedianMs: round(median(s.times)),
    verifyMedianMs: round(median(v.times)),
    signMinMs: round(Math.min(...s.times)),
    signMaxMs: round(Math.max(...s.times)),
    maxEventLoopStallMs: round(s.maxStallMs),
  };
}

async function main(): Promise<void> {
  const results: Figures[] = [];
  // Each scheme is measured twice: directly on this thread, then through a one-worker pool.
  const progress = new Progress({ label: 'signatures', total: SIGNATURE_SCHEMES.length * 2, unit: 'measurements' });
  for (const scheme of SIGNATURE_SCHEMES) {
    const direct = await loadDirectBackend(scheme);
    const keys = await direct.keyPair();
    // Warm-up (JIT / WASM compilation) outside the measurements.
    const warmups = scheme === 'sphincs-shake256-256s-robust' ? 1 : 3;
    for (let i = 0; i < warmups; i++) await direct.verify(await direct.sign(MESSAGE, keys.secretKey), MESSAGE, keys.publicKey);
    results.push(await measure(scheme, 'direct', direct, keys));
    progress.update(results.length, `${scheme} direct done`);

    const pool = SignaturePool.create(scheme, { workers: 1 });
    try {
      for (let i = 0; i < warmups; i++) await pool.verify(await pool.sign(MESSAGE, keys.secretKey), MESSAGE, keys.publicKey);
      results.push(await measure(scheme, 'pool', pool, keys));
      progress.update(results.length, `${scheme} pool done`);
    } finally {
      await pool.close();
    }
  }
  progress.finish();
  for (const r of results) {
    console.log(
      `${r.scheme.padEnd(29)} ${r.mode.padEnd(6)} sign median ${String(r.signMedianMs).padStart(8)} ms (n=${r.signIterations}), `
        + `verify median ${String(r.verifyMedianMs).padStart(6)} ms (n=${r.verifyIterations}), `
        + `longest event-loop stall while signing ${r.maxEventLoopStallMs} ms`,
    );
  }
  console.log(JSON.stringify({
    bench: 'signatures',
    node: process.version,
    messageBytes: MESSAGE.length,
    results,
  }));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
