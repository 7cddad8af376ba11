/**
 * bench/bb84.ts `distances`: the one-core pipeline (Alice and Bob in this process) on the default link at several
 * distances, each until a number of PA blocks completed. Per distance: secret bits per pulse realised (l over the
 * PA blocks' pulses) and planned (Lim 2014 for the same pulses, lambda_EC at the Cascade efficiency reached, and at
 * the planner's f = 1.1), secret bit/s and sifted bit/s of the pipeline's wall time.
 */
import { randomBytes } from 'node:crypto';
import { binaryEntropy } from '../../src/sim/bb84/analysis/entropy.js';
import { lim2014Rate } from '../../src/sim/bb84/analysis/lim2014Rate.js';
import { SignaturePool } from '../../src/crypto/signatures.js';
import { decoySettings } from '../../src/sim/bb84/protocol/settings.js';
import { PLANNING_F_EC } from '../../src/sim/bb84/protocol/sizing.js';
import { SignatureAuthenticator, type TranscriptAuthenticator } from '../../src/sim/bb84/simulator/authenticator.js';
import { Bb84Simulator, type Bb84Settings } from '../../src/sim/bb84/simulator/Bb84Simulator.js';
import type { RoundStats } from '../../src/sim/Simulator.js';
import { hmacAuthenticator, runInMemoryBlock } from './bb84Pair.js';

/** Rounds at most per distance (a link that yields no key must not run forever). */
const MAX_ROUNDS = 2000;

export interface DistanceRun {
  distanceKm: number;
  authentication: string;
  rounds: number;
  paBlocks: number;
  /** Pulses of the completed PA blocks. */
  pulses: number;
  secretBits: number;
  /** l / pulses, and the plan for the same pulses: at the efficiency reached, and at the planner's f. */
  secretBitsPerPulse: number;
  plannedBitsPerPulse: number;
  plannedBitsPerPulseAtPlannerF: number;
  fEC: number;
  /** Over the wall time of every round run (EC and PA): the one-core pipeline's rates. */
  secretBitsPerSecond: number;
  siftedBitsPerSecond: number;
  seconds: number;
  abort: string | null;
}

export async function distanceRuns(o: { base: Bb84Settings; distances: number[]; paBlocks: number; auth: 'hmac' | 'slh-dsa' }): Promise<DistanceRun[]> {
  const pool = o.auth === 'slh-dsa' ? SignaturePool.create('slh-dsa-sha2-128f', { workers: 2 }) : undefined;
  const runs: DistanceRun[] = [];
  try {
    const keys = pool ? await Promise.all([pool.generateKeyPair(), pool.generateKeyPair()]) : undefined;
    const hmacKey = randomBytes(32);
    for (const km of o.distances) {
      const settings: Bb84Settings = { ...o.base, link: { ...o.base.link, lengthKm: km } };
      const auth = (who: 0 | 1): TranscriptAuthenticator =>
        keys ? new SignatureAuthenticator(pool!, keys[who].secretKey.slice(), keys[1 - who]!.publicKey, false) : hmacAuthenticator(hmacKey);
      const alice = new Bb84Simulator({ settings, authenticator: auth(0), keylessBackoffMs: { initial: 0, max: 0 } });
      const bob = new Bb84Simulator({ settings, authenticator: auth(1) });
      const pa: RoundStats[] = [];
      let sifted = 0;
      let rounds = 0;
      const t0 = performance.now();
      while (pa.length < o.paBlocks && rounds < MAX_ROUNDS) {
        const r = await runInMemoryBlock(alice, bob, { keyStreamId: `bench-${km}`, firstIndex: 0, keyLengthBits: 8192, maxKeys: 100_000 });
        rounds++;
        const s = r.alice.stats!;
        sifted += typeof s.siftedBits === 'number' ? s.siftedBits : 0;
        if (typeof s.paBlocks === 'number') {
          pa.push(s);
          process.stderr.write(`distances ${km} km: PA block ${pa.length} of ${o.paBlocks} after ${rounds} rounds\n`);
        }
      }
      const seconds = (performance.now() - t0) / 1000;
      await alice.close();
      await bob.close();
      const total = (f: string): number => pa.reduce((a, s) => a + (typeof s[f] === 'number' ? (s[f] as number) : 0), 0);
      const pulses = total('paPulses');
      const secretBits = total('secretBits');
      const plannedFor = (f: number): number => (pulses > 0 ? lim2014Rate(settings.link, { ...decoySettings(settings), pX: settings.source.basisXProbability, pulses: pulses / Math.max(1, pa.length) }, f).ratePerPulse : 0);
      const qberX = pulses > 0 ? lim2014Rate(settings.link, { ...decoySettings(settings), pX: settings.source.basisXProbability, pulses: pulses / pa.length }, PLANNING_F_EC).qberX : 0;
      const fEC = total('paBits') > 0 && qberX > 0 ? total('paLambdaEC') / (total('paBits') * binaryEntropy(qberX)) : PLANNING_F_EC;
      runs.push({
        distanceKm: km,
        authentication: o.auth,
        rounds,
        paBlocks: pa.length,
        pulses,
        secretBits,
        secretBitsPerPulse: pulses > 0 ? secretBits / pulses : 0,
        plannedBitsPerPulse: plannedFor(Math.max(1, fEC)),
        plannedBitsPerPulseAtPlannerF: plannedFor(PLANNING_F_EC),
        fEC: Number(fEC.toFixed(4)),
        secretBitsPerSecond: Math.round(secretBits / seconds),
        siftedBitsPerSecond: Math.round(sifted / seconds),
        seconds: Number(seconds.toFixed(2)),
        abort: pa.find((s) => typeof s.reason === 'string')?.reason as string | undefined ?? null,
      });
    }
  } finally {
    await pool?.close();
  }
  return runs;
}

export function printDistanceRuns(runs: DistanceRun[]): void {
  for (const r of runs) {
    console.log(
      `distances ${String(r.distanceKm).padStart(3)} km (${r.authentication}): ${r.paBlocks} PA blocks in ${r.rounds} rounds, ${(r.pulses / 1e9).toFixed(2)}e9 pulses: `
        + `${r.secretBitsPerPulse.toExponential(3)} secret bits/pulse simulated, ${r.plannedBitsPerPulse.toExponential(3)} planned (f=${r.fEC}; `
        + `${r.plannedBitsPerPulseAtPlannerF.toExponential(3)} at f=${PLANNING_F_EC}); pipeline ${(r.secretBitsPerSecond / 1e3).toFixed(1)} kbit/s secret, `
        + `${(r.siftedBitsPerSecond / 1e6).toFixed(3)} Mbit/s sifted over ${r.seconds} s${r.abort ? ` (aborted: ${r.abort})` : ''}`,
    );
  }
}
