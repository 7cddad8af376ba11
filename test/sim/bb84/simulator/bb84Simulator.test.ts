/**
 * The BB84 simulator's two halves (Alice's runSenderRound, Bob's openReceiverRound) joined by an in-memory channel
 * that JSON-round-trips every payload and reply, as the peer channel does. Real SLH-DSA-SHA2-128f signatures in
 * worker threads (run `npx tsc -p tsconfig.json` first when calling vitest directly: the worker is compiled code).
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BODY_BYTES } from '../../../../src/api/app.js';
import { configSchema } from '../../../../src/config/schema.js';
import { encodeKey } from '../../../../src/crypto/keys.js';
import { SignaturePool, type KeyPair } from '../../../../src/crypto/signatures.js';
import { PeerError } from '../../../../src/exchange/peerProtocol.js';
import { SignatureAuthenticator } from '../../../../src/sim/bb84/simulator/authenticator.js';
import { Bb84Simulator, type Bb84Settings } from '../../../../src/sim/bb84/simulator/Bb84Simulator.js';
import { cutKeys } from '../../../../src/sim/bb84/simulator/keyOutput.js';
import { BitArray } from '../../../../src/sim/bb84/common/bits.js';
import { BINOMIAL_INVERSION_MIN_MEAN } from '../../../../src/sim/bb84/common/binomial.js';
import { channelFormulas, clickProbabilityExact, drawDetectionCount, qberWithEve, receiveDetections } from '../../../../src/sim/bb84/detection/channel.js';
import { binaryEntropy, secretKeyLength } from '../../../../src/sim/bb84/estimation/finiteKey.js';
import { bitsToBase64 } from '../../../../src/sim/bb84/protocol/wire.js';
import { chooseBlockPulses, MAX_FRAME_DETECTIONS, MIN_SHRUNK_SIFTED_BITS, predictBlock } from '../../../../src/sim/bb84/protocol/sizing.js';
import { binomialCount, randomBits, seededRng } from '../../../../src/sim/bb84/common/rng.js';
import { canonicalJson } from '../../../../src/sim/bb84/protocol/transcript.js';
import { VERIFY_TAG_BITS } from '../../../../src/sim/bb84/verification/verify.js';
import { createSimulator } from '../../../../src/sim/index.js';
import { RoundProtocolError, type RoundParams, type RoundResult, type RoundStats } from '../../../../src/sim/Simulator.js';

/** 5 km: pClick about 3.9 %, QBER about 1 %. */
const SHORT_LINK: Bb84Settings = {
  channel: { lengthKm: 5, attenuationDbPerKm: 0.2, detectorEfficiency: 0.1, darkCountProbability: 1e-6, misalignmentError: 0.01, meanPhotonNumber: 0.5 },
  pulseRateHz: 1e8,
  eve: 0,
  pace: 'max',
  qberThreshold: 0.11,
  blockPulses: 2_000_000,
  sampleFraction: 0.1,
  epsPE: 1e-10,
  epsEC: 1e-10,
  epsPA: 1e-10,
  cascadePasses: 14,
  seed: 7,
  signature: 'slh-dsa-sha2-128f',
};

let pool: SignaturePool;
let aliceKeys: KeyPair;
let bobKeys: KeyPair;

beforeAll(async () => {
  pool = SignaturePool.create('slh-dsa-sha2-128f', { workers: 2 });
  [aliceKeys, bobKeys] = await Promise.all([pool.generateKeyPair(), pool.generateKeyPair()]);
});
afterAll(async () => {
  await pool?.close();
});

function pair(overrides: Partial<Bb84Settings> = {}, keys: { alicePeer?: Uint8Array; bobPeer?: Uint8Array } = {}): { alice: Bb84Simulator; bob: Bb84Simulator } {
  const settings = { ...SHORT_LINK, ...overrides };
  return {
    alice: new Bb84Simulator({ settings, authenticator: new SignatureAuthenticator(pool, aliceKeys.secretKey.slice(), keys.alicePeer ?? bobKeys.publicKey, false) }),
    bob: new Bb84Simulator({ settings, authenticator: new SignatureAuthenticator(pool, bobKeys.secretKey.slice(), keys.bobPeer ?? aliceKeys.publicKey, false) }),
  };
}

interface Block {
  alice: RoundResult;
  /** Bob's result, if his round reached one. */
  bob: RoundResult | undefined;
  /** Bytes of each payload sent, by step. */
  sizes: Map<string, number>;
}

/** One block through an in-memory channel that JSON-round-trips payloads and replies (as the HTTP peer channel). */
async function runBlock(alice: Bb84Simulator, bob: Bb84Simulator, params: RoundParams): Promise<Block> {
  const round = bob.openReceiverRound(params);
  let bobResult: RoundResult | undefined;
  const sizes = new Map<string, number>();
  const result = await alice.runSenderRound(params, {
    async request(step, payload) {
      const text = JSON.stringify(payload);
      sizes.set(step, Math.max(sizes.get(step) ?? 0, text.length));
      let out;
      try {
        out = await round.handle(step, JSON.parse(text));
      } catch (err) {
        if (err instanceof RoundProtocolError) throw new PeerError('refused', err.message, 'BAD_REQUEST');
        throw err;
      }
      if (out.result) bobResult = out.result;
      return JSON.parse(JSON.stringify(out.reply));
    },
  });
  return { alice: result, bob: bobResult, sizes };
}

const params = (firstIndex: number, maxKeys = 1000, keyLengthBits = 256): RoundParams => ({ keyStreamId: '6f1c1c2e-8a43-4c55-9e43-8d1c7a3d2b10', firstIndex, keyLengthBits, maxKeys });
const hex = (keys: Uint8Array[]): string[] => keys.map((k) => Buffer.from(k).toString('hex'));
const num = (stats: RoundStats | undefined, field: string): number => stats![field] as number;

/** secretKeyLength for the figures a block reports. */
function finiteKeyBound(stats: RoundStats, s: Bb84Settings): number {
  return secretKeyLength({ n: num(stats, 'remainingBits'), qberUpper: num(stats, 'qberUpper'), leakEC: num(stats, 'leakedBits'), epsEC: s.epsEC, epsPA: s.epsPA });
}

describe('BB84 simulator: Alice and Bob over an in-memory channel', () => {
  it('when several seeded blocks run on a quiet link, then both ends get identical keys within the finite-key bound', async () => {
    const { alice, bob } = pair();
    let index = 0;
    const qbers: number[] = [];
    const errorRates: number[] = [];
    for (let b = 0; b < 3; b++) {
      const block = await runBlock(alice, bob, params(index));
      const stats = block.alice.stats!;
      expect(stats.aborted).toBe(false);
      expect(block.alice.keys.length).toBeGreaterThan(20);
      expect(hex(block.bob!.keys)).toEqual(hex(block.alice.keys));
      expect(new Set(hex(block.alice.keys)).size).toBe(block.alice.keys.length);
      for (const k of block.alice.keys) expect(k.length).toBe(32);
      expect(num(stats, 'keys')).toBe(block.alice.keys.length);
      expect(num(stats, 'keyBits')).toBe(256 * block.alice.keys.length);
      expect(num(stats, 'secretBits')).toBe(finiteKeyBound(stats, SHORT_LINK));
      expect(num(stats, 'keyBits')).toBeLessThanOrEqual(num(stats, 'secretBits'));
      expect(num(stats, 'leakedBits')).toBeGreaterThan(VERIFY_TAG_BITS);
      expect(num(stats, 'cascadeEfficiency')).toBeLessThan(1.5);
      // Bob's view of the same block.
      expect(block.bob!.stats).toMatchObject({ aborted: false, keys: block.alice.keys.length, siftedBits: stats.siftedBits, leakedBits: stats.leakedBits });
      qbers.push(num(stats, 'qberEstimate'));
      errorRates.push(num(stats, 'correctedBits') / num(stats, 'remainingBits'));
      index += block.alice.keys.length;
    }
    const formula = channelFormulas(SHORT_LINK.channel).qber;
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(Math.abs(mean(qbers) - formula)).toBeLessThan(0.004); // 3 samples of ~3,900 bits
    expect(Math.abs(mean(errorRates) - formula)).toBeLessThan(0.0015); // ~105,000 corrected-key bits
  });

  it('when a block completes, then its stats are flat numbers, strings and booleans with every documented field', async () => {
    const { alice, bob } = pair();
    const block = await runBlock(alice, bob, params(0));
    const stats = block.alice.stats!;
    for (const field of ['pulses', 'detections', 'siftedBits', 'sampleBits', 'qberEstimate', 'qberUpper', 'leakedBits', 'cascadeEfficiency', 'cascadeRoundTrips', 'secretBits', 'keys', 'aborted', 'reason', 'predictedQber', 'ms_frame', 'ms_sift', 'ms_estimate', 'ms_cascade', 'ms_verify', 'ms_amplify', 'ms_sign']) {
      expect(stats, field).toHaveProperty(field);
    }
    for (const [field, v] of Object.entries(stats)) {
      expect(v === null || ['number', 'string', 'boolean'].includes(typeof v), field).toBe(true);
      if (typeof v === 'string') expect(v.length, field).toBeLessThan(40);
    }
    expect(stats.pulses).toBe(2_000_000);
    expect(num(stats, 'predictedQber')).toBeCloseTo(channelFormulas(SHORT_LINK.channel).qber, 6);
  });

  it('when Eve intercepts every pulse, then the QBER is near 25 % and every block is aborted without a key', async () => {
    const { alice, bob } = pair({ eve: 1 });
    for (let b = 0; b < 2; b++) {
      const block = await runBlock(alice, bob, params(0));
      expect(block.alice.keys).toEqual([]);
      expect(block.alice.stats).toMatchObject({ aborted: true, reason: 'qber-too-high', keys: 0, secretBits: 0 });
      expect(num(block.alice.stats, 'qberEstimate')).toBeGreaterThan(0.2);
      expect(num(block.alice.stats, 'qberEstimate')).toBeLessThan(0.3);
      expect(block.bob!.keys).toEqual([]);
      expect(block.bob!.stats).toMatchObject({ aborted: true, reason: 'qber-too-high' });
    }
  });

  it('when Eve intercepts 20 % of the pulses, then the QBER rises by about 5 points and the secret fraction falls as the finite-key formula says', async () => {
    const big = { blockPulses: 10_000_000 };
    const quiet = pair(big);
    const attacked = pair({ ...big, eve: 0.2 });
    const q = await runBlock(quiet.alice, quiet.bob, params(0, 100_000));
    const a = await runBlock(attacked.alice, attacked.bob, params(0, 100_000));
    for (const block of [q, a]) {
      expect(block.alice.stats!.aborted).toBe(false);
      expect(hex(block.bob!.keys)).toEqual(hex(block.alice.keys));
    }
    const qs = q.alice.stats!;
    const as = a.alice.stats!;
    const rise = num(as, 'qberEstimate') - num(qs, 'qberEstimate');
    expect(rise).toBeGreaterThan(0.035);
    expect(rise).toBeLessThan(0.065);
    expect(num(as, 'predictedQber') - num(qs, 'predictedQber')).toBeCloseTo(0.2 * (0.25 + 0.005 - 0.01), 3);
    // The output is exactly the finite-key length of what each block measured and leaked...
    expect(num(qs, 'secretBits')).toBe(finiteKeyBound(qs, SHORT_LINK));
    expect(num(as, 'secretBits')).toBe(finiteKeyBound(as, SHORT_LINK));
    // ...and the fractions match the formula's expectation for the link (with the efficiency Cascade reached).
    const fraction = (s: RoundStats): number => num(s, 'secretBits') / num(s, 'siftedBits');
    const expected = (eve: number, f: number): number => {
      const p = predictBlock({ ...SHORT_LINK, ...big, eve }, 10_000_000, f);
      return p.secretBits / p.siftedBits;
    };
    const quietExpected = expected(0, num(qs, 'cascadeEfficiency'));
    const attackedExpected = expected(0.2, num(as, 'cascadeEfficiency'));
    expect(fraction(qs)).toBeGreaterThan(0.9 * quietExpected);
    expect(fraction(qs)).toBeLessThan(1.1 * quietExpected);
    expect(fraction(as)).toBeGreaterThan(0.75 * attackedExpected);
    expect(fraction(as)).toBeLessThan(1.25 * attackedExpected);
    expect(fraction(as)).toBeLessThan(0.6 * fraction(qs));
    // Asymptotic sanity: the attacked block cannot beat 1 - h(e) - f h(e) at its measured QBER.
    const e = num(as, 'qberEstimate');
    expect(fraction(as)).toBeLessThan(1 - 2 * binaryEntropy(e));
    expect(qberWithEve(SHORT_LINK.channel, 0.2)).toBeCloseTo(num(as, 'predictedQber'), 6);
  });

  it('when maxKeys is small, then the block yields exactly maxKeys keys and the rest of the output is discarded', async () => {
    const { alice, bob } = pair();
    const block = await runBlock(alice, bob, params(40, 3, 1024));
    expect(block.alice.keys.length).toBe(3);
    expect(block.alice.keys.every((k) => k.length === 128)).toBe(true);
    expect(hex(block.bob!.keys)).toEqual(hex(block.alice.keys));
    expect(num(block.alice.stats, 'secretBits')).toBeGreaterThan(3 * 1024);
  });

  it("when Bob holds a wrong public key for Alice, then Bob rejects the block and neither end keeps a key", async () => {
    const { alice, bob } = pair({}, { bobPeer: new Uint8Array(randomBytes(32)) });
    const block = await runBlock(alice, bob, params(0));
    expect(block.alice.keys).toEqual([]);
    expect(block.alice.stats).toMatchObject({ aborted: true, reason: 'peer-rejected-signature', keys: 0 });
    expect(block.bob!.keys).toEqual([]);
    expect(block.bob!.stats).toMatchObject({ aborted: true, reason: 'peer-signature-invalid' });
  });

  it("when Alice holds a wrong public key for Bob, then Alice returns no key (Bob's keys are never committed)", async () => {
    const { alice, bob } = pair({}, { alicePeer: new Uint8Array(randomBytes(32)) });
    const block = await runBlock(alice, bob, params(0));
    expect(block.alice.keys).toEqual([]);
    expect(block.alice.stats).toMatchObject({ aborted: true, reason: 'peer-signature-invalid', keys: 0 });
  });

  it("issue 16: when the key configured for the peer is this module's own (a pasted keygen line), then the first failed block is reported once as an error naming the fix, and later blocks back off instead of spinning", async () => {
    const lines: Array<{ level: number; msg: string }> = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const settings = { ...SHORT_LINK };
    const backoff = { initial: 150, max: 150 };
    // Alice was given her own public key as Bob's.
    const alice = new Bb84Simulator({ settings, log, keylessBackoffMs: backoff, authenticator: new SignatureAuthenticator(pool, aliceKeys.secretKey.slice(), aliceKeys.publicKey, false) });
    const bob = new Bb84Simulator({ settings, keylessBackoffMs: backoff, authenticator: new SignatureAuthenticator(pool, bobKeys.secretKey.slice(), aliceKeys.publicKey, false) });
    const starts: number[] = [];
    for (let i = 0; i < 3; i++) {
      starts.push(performance.now());
      const block = await runBlock(alice, bob, params(0));
      expect(block.alice.keys).toEqual([]);
    }
    const errors = lines.filter((l) => l.level >= 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.msg).toMatch(/BB84 blocks fail authentication: the peer's signature does not verify here.*simulator\.public_key.*PEER's `npm run keygen`/);
    // Back-off: 150 ms before the 2nd block, 300 ms before the 3rd (beyond the keyless maximum: a wrong key does not heal).
    expect(starts[2]! - starts[1]!).toBeGreaterThanOrEqual(290);
    await alice.close?.();
    await bob.close?.();
  });

  it('when the exchange abandons a round midway (the sender gave up), then Bob\'s round ends and refuses further steps', async () => {
    const { alice, bob } = pair();
    const round = bob.openReceiverRound(params(0));
    let asked = 0;
    const outcome = await alice
      .runSenderRound(params(0), {
        async request(step, payload) {
          if (step === 'parities' && asked++ > 0) throw new Error('link down');
          return JSON.parse(JSON.stringify((await round.handle(step, JSON.parse(JSON.stringify(payload)))).reply));
        },
      })
      .then(() => 'returned', () => 'threw');
    expect(['returned', 'threw']).toContain(outcome);
    expect(asked).toBe(2); // Bob is in the middle of Cascade
    round.abandon!();
    await expect(round.handle('parities', {})).rejects.toThrow(/block is over/);
  });

  it('when the two modules simulate different channels, then Bob refuses the frame naming the settings', async () => {
    const alice = pair().alice;
    const bob = pair({ channel: { ...SHORT_LINK.channel, lengthKm: 6 } }).bob;
    await expect(runBlock(alice, bob, params(0))).rejects.toThrow(/simulator\.channel/);
  });

  it('when pace is realtime, then block starts are spaced by the link time of the previous block', async () => {
    // 2e6 pulses at 5 MHz: 400 ms of link time per block.
    const { alice, bob } = pair({ pace: 'realtime', pulseRateHz: 5e6 });
    const frames: number[] = [];
    const round = async (firstIndex: number): Promise<void> => {
      const r = bob.openReceiverRound(params(firstIndex));
      await alice.runSenderRound(params(firstIndex), {
        async request(step, payload) {
          if (step === 'frame') frames.push(performance.now());
          return JSON.parse(JSON.stringify((await r.handle(step, JSON.parse(JSON.stringify(payload)))).reply));
        },
      });
    };
    await round(0);
    await round(100);
    expect(frames[1]! - frames[0]!).toBeGreaterThanOrEqual(380); // the first frame leaves a few ms after its block start
    expect(frames[1]! - frames[0]!).toBeLessThan(2000);
  });
});

describe('BB84 pacing of blocks that yield no key', () => {
  it('when blocks of a stream keep ending without keys, then the next ones wait with a doubling back-off', async () => {
    const settings = { ...SHORT_LINK, eve: 1 };
    const alice = new Bb84Simulator({ settings, authenticator: new SignatureAuthenticator(pool, aliceKeys.secretKey.slice(), bobKeys.publicKey, false), keylessBackoffMs: { initial: 150, max: 250 } });
    const bob = new Bb84Simulator({ settings, authenticator: new SignatureAuthenticator(pool, bobKeys.secretKey.slice(), aliceKeys.publicKey, false) });
    const frames: number[] = [];
    for (let b = 0; b < 3; b++) {
      const r = bob.openReceiverRound(params(0));
      const res = await alice.runSenderRound(params(0), {
        async request(step, payload) {
          if (step === 'frame') frames.push(performance.now());
          return JSON.parse(JSON.stringify((await r.handle(step, JSON.parse(JSON.stringify(payload)))).reply));
        },
      });
      expect(res.keys).toEqual([]);
    }
    expect(frames[1]! - frames[0]!).toBeGreaterThanOrEqual(145);
    expect(frames[2]! - frames[1]!).toBeGreaterThanOrEqual(245); // 300 capped at 250
    // Another stream is not held back by this one.
    const other = { ...params(0), keyStreamId: '9d3b1a52-2f4e-4f0a-8c1e-1d2b3c4d5e6f' };
    const t0 = performance.now();
    const r = bob.openReceiverRound(other);
    await alice.runSenderRound(other, { request: async (step, payload) => JSON.parse(JSON.stringify((await r.handle(step, JSON.parse(JSON.stringify(payload)))).reply)) });
    expect(performance.now() - t0).toBeLessThan(140);
  });
});

describe('BB84 block sizing and wire limits', () => {
  const DEFAULT_25KM: Bb84Settings = { ...SHORT_LINK, channel: { ...SHORT_LINK.channel, lengthKm: 25 }, blockPulses: 125_000_000 };

  it('when maxKeys is large, then a default block is block_pulses pulses (about 1 Mbit sifted at 25 km)', () => {
    expect(chooseBlockPulses(DEFAULT_25KM, 100_000, 256)).toBe(125_000_000);
    const p = predictBlock(DEFAULT_25KM, 125_000_000);
    expect(p.siftedBits).toBeGreaterThan(900_000);
    expect(p.siftedBits).toBeLessThan(1_100_000);
  });

  it('when maxKeys is small, then the block shrinks to about 1.5 times the output needed but keeps the sifted-bit floor', () => {
    const needed = 1000 * 256;
    const pulses = chooseBlockPulses(DEFAULT_25KM, 1000, 256);
    expect(pulses).toBeLessThan(125_000_000);
    const out = predictBlock(DEFAULT_25KM, pulses).secretBits;
    expect(out).toBeGreaterThanOrEqual(1.5 * needed);
    expect(out).toBeLessThan(1.52 * needed);
    const tiny = chooseBlockPulses(DEFAULT_25KM, 1, 256);
    expect(predictBlock(DEFAULT_25KM, tiny).siftedBits).toBeGreaterThanOrEqual(MIN_SHRUNK_SIFTED_BITS - 1);
    expect(predictBlock(DEFAULT_25KM, tiny).siftedBits).toBeLessThan(MIN_SHRUNK_SIFTED_BITS * 1.01);
  });

  it('when the link clicks often, then block_pulses is capped so a frame stays under the peer body limit', () => {
    const close: Bb84Settings = { ...DEFAULT_25KM, channel: { ...DEFAULT_25KM.channel, lengthKm: 0, detectorEfficiency: 1 } };
    const pulses = chooseBlockPulses(close, 100_000, 256);
    expect(pulses).toBeLessThan(125_000_000);
    const bits = randomBits(seededRng(1), MAX_FRAME_DETECTIONS);
    const frame = { pulses, detections: MAX_FRAME_DETECTIONS, states: bitsToBase64(bits), bases: bitsToBase64(bits), nonceA: 'x'.repeat(44), channelHash: 'y'.repeat(44) };
    const envelope = { keyStreamId: params(0).keyStreamId, roundId: 'r'.repeat(36), firstIndex: 1e12, keyLengthBits: 8192, maxKeys: 100_000, committedUpTo: 1e12, step: 'frame', payload: frame };
    expect(JSON.stringify(envelope).length).toBeLessThan(MAX_BODY_BYTES);
  });

  it("when Bob's half of the channel measures detections, then the QBER matches the channel formula", () => {
    const k = 400_000;
    const rng = seededRng(3);
    const bits = randomBits(rng, k);
    const bases = randomBits(rng, k);
    for (const eve of [0, 1]) {
      const { bobBits, bobBases } = receiveDetections(bits, bases, SHORT_LINK.channel, eve, rng);
      let same = 0;
      let errors = 0;
      for (let i = 0; i < k; i++) {
        if (bobBases.get(i) !== bases.get(i)) continue;
        same++;
        if (bobBits.get(i) !== bits.get(i)) errors++;
      }
      expect(same / k).toBeCloseTo(0.5, 2);
      expect(Math.abs(errors / same - qberWithEve(SHORT_LINK.channel, eve))).toBeLessThan(0.005);
    }
    expect(new BitArray(0).length).toBe(0);
  });
});

describe('BB84 start-up errors', () => {
  const cfg = (simulator: Record<string, unknown>) => configSchema.parse({ module: { sim: 'bb84' }, simulator });

  it('when simulator.private_key is missing, then createSimulator fails with one line naming it', async () => {
    const err = await createSimulator(cfg({ public_key: encodeKey(new Uint8Array(32)) })).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/^simulator\.private_key: required/);
    expect((err as Error).message).not.toContain('\n');
  });

  it('when simulator.public_key has the wrong length, then the error names it and never the value', async () => {
    const secret = encodeKey(new Uint8Array(randomBytes(64)));
    const wrong = encodeKey(new Uint8Array(randomBytes(31)));
    const err = (await createSimulator(cfg({ private_key: secret, public_key: wrong })).catch((e: Error) => e)) as Error;
    expect(err.message).toMatch(/^simulator\.public_key: wrong length/);
    expect(err.message).not.toContain(secret);
    expect(err.message).not.toContain(wrong);
  });
});

describe('BB84 helpers', () => {
  it('when keys are cut from the amplified bits, then each is MSB-first like BitArray.toBytesMsbFirst', () => {
    const bits = randomBits(seededRng(5), 3 * 1024 + 40);
    const keys = cutKeys(bits, 3, 1024);
    for (let i = 0; i < 3; i++) expect(Buffer.from(keys[i]!).toString('hex')).toBe(Buffer.from(bits.slice(i * 1024, (i + 1) * 1024).toBytesMsbFirst()).toString('hex'));
  });

  it('when payloads are hashed, then canonical JSON equals sorted JSON.stringify and survives a JSON round trip', () => {
    const sortKeys = (v: unknown): unknown =>
      v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])])) : Array.isArray(v) ? v.map(sortKeys) : v;
    const samples: unknown[] = [
      { b: 'AAAA+/==', a: 1.5e-10, c: true, d: null, e: -0, f: 'quote " backslash \\ tab \t é \u2028 \ud83d\ude00', g: [1, 'x', { z: 1, y: 2 }] },
      { count: 3, questions: 'abc', qber: 0.011287839917906618, undefinedIsDropped: undefined },
    ];
    for (const v of samples) {
      expect(canonicalJson(v)).toBe(JSON.stringify(sortKeys(v)));
      expect(canonicalJson(JSON.parse(JSON.stringify(v)))).toBe(canonicalJson(v));
    }
    expect(() => canonicalJson({ x: Number.NaN })).toThrow(TypeError);
  });

  it('when the detection count is drawn by inversion, then it follows Binomial(n, pClick)', () => {
    const ch = { ...SHORT_LINK.channel, lengthKm: 25 };
    const p = clickProbabilityExact(ch);
    const rng = seededRng(9);
    const n = 100_000; // mean ~1,570: inversion from the mode
    expect(n * p).toBeGreaterThan(BINOMIAL_INVERSION_MIN_MEAN);
    const draws = Array.from({ length: 20_000 }, () => drawDetectionCount(n, ch, rng));
    const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
    const variance = draws.reduce((a, b) => a + (b - mean) ** 2, 0) / (draws.length - 1);
    expect(Math.abs(mean - n * p)).toBeLessThan(5 * Math.sqrt((n * p * (1 - p)) / draws.length));
    expect(variance / (n * p * (1 - p))).toBeGreaterThan(0.95);
    expect(variance / (n * p * (1 - p))).toBeLessThan(1.05);
    // Against the geometric-skipping sampler (exact), in 20-wide bins: a two-sample chi-square.
    const exact = Array.from({ length: 3000 }, () => binomialCount(rng, n, p));
    const bins = (xs: number[]): Map<number, number> => {
      const m = new Map<number, number>();
      for (const x of xs) m.set(Math.floor((x - n * p) / 20), (m.get(Math.floor((x - n * p) / 20)) ?? 0) + 1);
      return m;
    };
    const a = bins(draws.slice(0, 3000));
    const b = bins(exact);
    let chi = 0;
    let df = -1;
    for (const k of new Set([...a.keys(), ...b.keys()])) {
      const x = a.get(k) ?? 0;
      const y = b.get(k) ?? 0;
      if (x + y >= 20) {
        chi += (x - y) ** 2 / (x + y);
        df++;
      }
    }
    expect(chi).toBeLessThan(df + 5 * Math.sqrt(2 * df)); // far beyond the 99.9 % quantile
    expect(drawDetectionCount(125_000_000, { ...SHORT_LINK.channel, lengthKm: 25 }, rng)).toBeGreaterThan(1_900_000);
  });
});

describe('link capability for ETSI 004 QoS', () => {
  it('when pace is realtime, then the expected secret rate is the predicted one in whole keys; with pace max it is unknown', async () => {
    const { Bb84Simulator: Sim, MEASURED_CASCADE_EFFICIENCY } = await import('../../../../src/sim/bb84/simulator/Bb84Simulator.js');
    const { predictedRates } = await import('../../../../src/sim/bb84/estimation/finiteKey.js');
    const channel = { lengthKm: 25, attenuationDbPerKm: 0.2, detectorEfficiency: 0.1, darkCountProbability: 1e-6, misalignmentError: 0.01, meanPhotonNumber: 0.5 };
    const base = { channel, pulseRateHz: 1e8, eve: 0, qberThreshold: 0.11, blockPulses: 1e6, sampleFraction: 0.1, epsPE: 1e-10, epsEC: 1e-10, epsPA: 1e-10, cascadePasses: 14, signature: 'slh-dsa-sha2-128f' as const };
    const auth = { sign: async () => new Uint8Array(), verify: async () => false } as never;
    const realtime = new Sim({ settings: { ...base, pace: 'realtime' }, authenticator: auth });
    const expected = predictedRates(channel, 1e8, MEASURED_CASCADE_EFFICIENCY, 0.1).secretRate;
    const got = realtime.expectedSecretBitsPerSecond(256)!;
    expect(got % 256).toBe(0);
    expect(got).toBeGreaterThan(expected - 256);
    expect(got).toBeLessThanOrEqual(expected);
    expect(got).toBeGreaterThan(400_000); // about 0.55 Mbit/s at 25 km, 100 MHz
    expect(new Sim({ settings: { ...base, pace: 'max' }, authenticator: auth }).expectedSecretBitsPerSecond(256)).toBeUndefined();
  });
});
