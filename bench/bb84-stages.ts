/**
 * Throughput of each BB84 post-processing stage alone (Cascade is benchmarked separately), on 1 Mbit blocks at
 * about 2 % QBER. Build and run:
 *   npx tsc -p tsconfig.json && node dist/bench/bb84-stages.js
 * Prints one JSON object {bench: 'bb84-stages', results: [...]} and one readable line per stage; progress on stderr.
 */
import { BitArray } from '../src/sim/bb84/common/bits.js';
import { newToeplitzSeed, paHash, type PaHashFamily, type ToeplitzEngine } from '../src/sim/bb84/amplification/amplify.js';
import { fftKernel, useFftKernel } from '../src/sim/bb84/amplification/fft.js';
import type { LinkParams } from '../src/sim/bb84/analysis/linkModel.js';
import { allDetected, channelFormulas, drawDetectionCount, receiveDetections, transmit, transmitDetectionsOnly, type ChannelParams } from '../src/sim/bb84/detection/channel.js';
import { emitDetectedPulses, measureDetectedPulses } from '../src/sim/bb84/detection/detectedPulses.js';
import { detectionModel, type Attack } from '../src/sim/bb84/detection/detectionModel.js';
import { DEFAULT_DECOY_SOURCE } from '../src/sim/bb84/source/decoySource.js';
import { estimate, newSampleSeed, takeSample } from '../src/sim/bb84/estimation/estimate.js';
import { binaryEntropy, secretKeyLength } from '../src/sim/bb84/estimation/finiteKey.js';
import { bernoulliBits, cryptoRng, randomBits, seededRng } from '../src/sim/bb84/common/rng.js';
import { aliceSiftReply, bobSiftRequest, siftAlice, siftBob } from '../src/sim/bb84/sifting/sift.js';
import { prepareSource } from '../src/sim/bb84/source/source.js';
import { newVerifySeed, verifyTag } from '../src/sim/bb84/verification/verify.js';
import { Progress } from '../scripts/lib/progress.js';

const BLOCK_BITS = 1 << 20;
const RUNS = 7;

/** 25 km of fibre, mu = 0.5, e_mis = 2 %: QBER about 2 %, 3 % of pulses click. */
const CHANNEL: ChannelParams = {
  lengthKm: 25,
  attenuationDbPerKm: 0.2,
  detectorEfficiency: 0.2,
  darkCountProbability: 1e-6,
  misalignmentError: 0.02,
  meanPhotonNumber: 0.5,
};

/** The same fibre and detectors as the decoy link model sees them (no afterpulses). */
const LINK: LinkParams = {
  lengthKm: CHANNEL.lengthKm,
  attenuationDbPerKm: CHANNEL.attenuationDbPerKm,
  detectorEfficiency: CHANNEL.detectorEfficiency,
  darkCountProbability: CHANNEL.darkCountProbability,
  afterpulseProbability: 0,
  misalignmentError: CHANNEL.misalignmentError,
};

interface Result {
  stage: string;
  /** What the stage consumes: bits, or (the link simulations) pulses sent. */
  unit: 'bits' | 'pulses';
  inputBits: number;
  outputBits: number;
  medianMs: number;
  /** Millions of input units per second (Mbit/s, or Mpulse/s for the link simulations). */
  mbitPerS: number;
  note: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time<T>(prepare: () => T, run: (input: T) => number, runs = RUNS): { ms: number; out: number } {
  const ms: number[] = [];
  let out = 0;
  run(prepare()); // warm-up
  for (let i = 0; i < runs; i++) {
    const input = prepare();
    const t0 = performance.now();
    out = run(input);
    ms.push(performance.now() - t0);
  }
  return { ms: median(ms), out };
}

/** Stages measured before the amplify cases (source, transmit, transmit-detections-only, detections-only-mu, the two decoy cases, sift, sift-dense, estimate, verify). */
const SINGLE_STAGES = 10;

function recordResult(results: Result[], stage: string, inputBits: number, r: { ms: number; out: number }, note: string, unit: Result['unit'] = 'bits'): void {
  results.push({ stage, unit, inputBits, outputBits: r.out, medianMs: +r.ms.toFixed(3), mbitPerS: +(inputBits / r.ms / 1000).toFixed(2), note });
}

function main(): void {
  const results: Result[] = [];
  const csprng = cryptoRng();
  const sim = seededRng(2024);
  const f = channelFormulas(CHANNEL);

  const qberUpper = 0.025;
  const leak = Math.ceil(1.16 * BLOCK_BITS * binaryEntropy(0.02)) + 64;
  const l = secretKeyLength({ n: BLOCK_BITS, qberUpper, leakEC: leak, epsEC: 1e-10, epsPA: 1e-10 });
  const lHigh = Math.round(0.9 * BLOCK_BITS);
  const amplifyCases: Array<[string, number, ToeplitzEngine, PaHashFamily, string]> = [
    ['amplify', l, 'fft', 'modified-toeplitz', `modified Toeplitz (default), FFT engine, output ${l} bits (finite-key l at qberUpper 2.5 %, Cascade leak f=1.16)`],
    ['amplify-0.9', lHigh, 'fft', 'modified-toeplitz', `modified Toeplitz, FFT engine, output ${lHigh} bits`],
    ['amplify-ntt', l, 'ntt', 'modified-toeplitz', `modified Toeplitz, NTT engine (mod 998244353), output ${l} bits`],
    ['amplify-toeplitz', l, 'fft', 'toeplitz', `plain Toeplitz, FFT engine, output ${l} bits`],
  ];
  // A PA block as the pipeline amplifies it at 25 km with the defaults: four EC blocks just over pa_block_bits
  // (4,222,862 key-basis bits, measured) to l = 1,105,920 bits; its transform is 9·2^19 points (one radix-9 top).
  const paBlock = { n: 4_222_862, l: 1_105_920 };
  const progress = new Progress({ label: 'bb84-stages', total: SINGLE_STAGES + amplifyCases.length + (fftKernel() === 'wasm' ? 2 : 1), unit: 'stages' });
  const record: typeof recordResult = (rs, stage, ...rest) => {
    recordResult(rs, stage, ...rest);
    progress.update(rs.length, `${stage} done`);
  };

  record(results, 'source', BLOCK_BITS, time(() => null, () => prepareSource(BLOCK_BITS, csprng).bits.length), 'pulses (bit + basis each), node:crypto CSPRNG');

  record(
    results,
    'transmit',
    BLOCK_BITS,
    time(() => prepareSource(BLOCK_BITS, sim), (alice) => transmit(alice, CHANNEL, 0, csprng).detectedCount),
    `pulses, pClick ${f.pClick.toExponential(2)}, CSPRNG`,
  );

  const fastPulses = 1e8;
  record(
    results,
    'transmit-detections-only',
    fastPulses,
    time(() => null, () => transmitDetectionsOnly(fastPulses, CHANNEL, 0, csprng).detectedCount, 3),
    'pulses simulated (only detections drawn)',
    'pulses',
  );

  // Both halves of the detections-only link at 10^8 pulses: the single-intensity path the protocol uses today
  // (drawDetectionCount, Alice's states, receiveDetections) and the decoy source + detector model (three
  // intensities, Eve's knowledge marked), both on the CSPRNG.
  let oldDetections = 0;
  record(
    results,
    'detections-only-mu',
    fastPulses,
    time(
      () => null,
      () => {
        const k = drawDetectionCount(fastPulses, CHANNEL, csprng);
        const bits = randomBits(csprng, k);
        const bases = randomBits(csprng, k);
        oldDetections = receiveDetections(bits, bases, CHANNEL, 0, csprng).bobBits.length;
        return k;
      },
    ),
    'pulses simulated, one intensity (mu 0.5): drawDetectionCount + states + receiveDetections',
    'pulses',
  );
  results[results.length - 1]!.note += `, ${oldDetections} detections`;
  const decoyCases: Array<[string, Attack]> = [
    ['detections-only-decoy', { kind: 'none' }],
    ['detections-only-decoy-pns', { kind: 'photon-number-splitting' }],
  ];
  for (const [stage, attack] of decoyCases) {
    const model = detectionModel(LINK, DEFAULT_DECOY_SOURCE, attack);
    let detections = 0;
    record(
      results,
      stage,
      fastPulses,
      time(
        () => null,
        () => {
          const alice = emitDetectedPulses(fastPulses, model, csprng);
          detections = measureDetectedPulses(alice.bits, alice.bases, alice.intensityMasks, model, csprng).bobBits.length;
          return detections;
        },
      ),
      `pulses simulated, intensities ${DEFAULT_DECOY_SOURCE.intensities.join('/')} (p ${DEFAULT_DECOY_SOURCE.intensityProbabilities.join('/')}), attack ${attack.kind}: emitDetectedPulses + measureDetectedPulses`,
      'pulses',
    );
    results[results.length - 1]!.note += `, ${detections} detections`;
  }

  record(
    results,
    'sift',
    BLOCK_BITS,
    time(
      () => {
        const alice = prepareSource(BLOCK_BITS, sim);
        return { alice, bob: transmit(alice, CHANNEL, 0, sim) };
      },
      ({ alice, bob }) => {
        const req = bobSiftRequest(bob.detected, bob.bobBases);
        const reply = aliceSiftReply(alice.bases, req);
        const a = siftAlice(alice.bits, req, reply);
        siftBob(bob.bobBits, bob.detected, reply);
        return a.length;
      },
    ),
    'pulses at 25 km (both halves: request, reply, Alice and Bob keys)',
  );
  // Every pulse detected (the detections-only arrays) is the worst case for the sifting kernels.
  record(
    results,
    'sift-dense',
    BLOCK_BITS,
    time(
      () => {
        const d = transmitDetectionsOnly(Math.ceil(BLOCK_BITS / f.pClick), CHANNEL, 0, sim);
        return { d, detected: allDetected(d.detectedCount) };
      },
      ({ d, detected }) => {
        const req = bobSiftRequest(detected, d.bobBases);
        const reply = aliceSiftReply(d.aliceBases, req);
        const a = siftAlice(d.aliceBits, req, reply);
        siftBob(d.bobBits, detected, reply);
        return a.length;
      },
    ),
    'detected pulses (every pulse clicked: worst case), both halves',
  );

  const keyPair = (): { alice: BitArray; bob: BitArray } => {
    const alice = randomBits(sim, BLOCK_BITS);
    const bob = alice.clone();
    const flips = bernoulliBits(sim, BLOCK_BITS, 0.02);
    for (let i = 0; i < bob.words.length; i++) bob.words[i]! ^= flips.words[i]!;
    return { alice, bob };
  };
  const sampleSize = Math.round(BLOCK_BITS / 10);
  record(
    results,
    'estimate',
    BLOCK_BITS,
    time(keyPair, ({ alice, bob }) => {
      const params = { seed: newSampleSeed(csprng), sampleSize, epsPE: 1e-10 };
      const bobSample = takeSample(bob, params).sample;
      return estimate(alice, bobSample, params).remaining.length;
    }),
    `key bits, 10 % sample, QBER 2 % (Bob's disclosure + Alice's estimate)`,
  );

  record(
    results,
    'verify',
    BLOCK_BITS,
    time(() => randomBits(sim, BLOCK_BITS), (key) => verifyTag(key, newVerifySeed(csprng)).length * 8),
    '64-bit polynomial tag over GF(2^61-1)',
  );

  for (const [stage, outBits, engine, family, note] of amplifyCases) {
    record(
      results,
      stage,
      BLOCK_BITS,
      time(() => ({ key: randomBits(sim, BLOCK_BITS), seed: newToeplitzSeed(BLOCK_BITS, outBits, sim, family) }), ({ key, seed }) => paHash(family, key, seed, outBits, { engine }).length),
      note,
    );
  }

  const kernel = fftKernel();
  for (const k of kernel === 'wasm' ? (['wasm', 'js'] as const) : (['js'] as const)) {
    useFftKernel(k);
    record(
      results,
      k === 'wasm' ? 'amplify-pa-block' : 'amplify-pa-block-js',
      paBlock.n,
      time(
        () => ({ key: randomBits(sim, paBlock.n), seed: newToeplitzSeed(paBlock.n, paBlock.l, sim, 'modified-toeplitz') }),
        ({ key, seed }) => paHash('modified-toeplitz', key, seed, paBlock.l).length,
      ),
      `modified Toeplitz, FFT engine (${k === 'wasm' ? 'WebAssembly' : 'JavaScript'} kernel), a default PA block at 25 km: ${paBlock.n} bits to ${paBlock.l}`,
    );
  }
  useFftKernel(kernel);

  progress.finish();
  console.log(JSON.stringify({ bench: 'bb84-stages', node: process.version, blockBits: BLOCK_BITS, results }));
  for (const r of results) {
    const [units, rate] = r.unit === 'pulses' ? ['pulses', 'Mpulse/s'] : ['bits', 'Mbit/s'];
    console.log(`${r.stage.padEnd(26)} ${String(r.inputBits).padStart(10)} ${units.padEnd(6)} in ${r.medianMs.toFixed(2).padStart(8)} ms = ${r.mbitPerS.toFixed(1).padStart(8)} ${rate}  (${r.note})`);
  }
}

main();
