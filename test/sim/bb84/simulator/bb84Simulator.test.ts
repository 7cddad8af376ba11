/**
 * The decoy-state BB84 simulator's two halves over an in-memory channel (harness.ts): EC blocks accumulate, a PA
 * block turns them into identical keys at both ends, sized by Lim et al. 2014 from each end's own records; attacks
 * on the quantum channel are refused with the reason in the stats.
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BODY_BYTES } from '../../../../src/api/app.js';
import { blockFigures } from '../../../../src/api/routes/etsi004.js';
import { configSchema } from '../../../../src/config/schema.js';
import { encodeKey } from '../../../../src/crypto/keys.js';
import { SignaturePool, type KeyPair } from '../../../../src/crypto/signatures.js';
import { lim2014KeyLength } from '../../../../src/sim/bb84/analysis/lim2014.js';
import { pulseStatistics } from '../../../../src/sim/bb84/analysis/linkModel.js';
import { randomBits, seededRng } from '../../../../src/sim/bb84/common/rng.js';
import { BitArray } from '../../../../src/sim/bb84/common/bits.js';
import { encodeIntensities } from '../../../../src/sim/bb84/protocol/decoyWire.js';
import { decoySettings } from '../../../../src/sim/bb84/protocol/settings.js';
import { clickProbabilityPerPulse, DETECTION_HEADROOM, ecBlockPulses, MAX_FRAME_DETECTIONS, maxFrameDetections, plannedRate } from '../../../../src/sim/bb84/protocol/sizing.js';
import { canonicalJson } from '../../../../src/sim/bb84/protocol/transcript.js';
import { bitsToChunks } from '../../../../src/sim/bb84/protocol/wire.js';
import { SignatureAuthenticator } from '../../../../src/sim/bb84/simulator/authenticator.js';
import { Bb84Simulator, MEASURED_CASCADE_EFFICIENCY, type Bb84Settings } from '../../../../src/sim/bb84/simulator/Bb84Simulator.js';
import { cutKeys } from '../../../../src/sim/bb84/simulator/keyOutput.js';
import { createSimulator } from '../../../../src/sim/index.js';
import type { RoundStats } from '../../../../src/sim/Simulator.js';
import { DEFAULT_LINK, DEFAULT_SOURCE, hex, num, ONE_ROUND_PA, pairOf, params, roundsUntilKeys, runRound, SHORT_LINK, STREAM } from './harness.js';

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

const slh = () => ({ pool, alice: aliceKeys, bob: bobKeys });
/** Lim 2014 eq. (1) recomputed from what a PA round's stats report (the summed counts and lambda_EC). */
function lim2014FromStats(stats: RoundStats, s: Bb84Settings): number {
  const list = (name: string): number[] => [1, 2, 3].map((k) => num(stats, `${name}_mu${k}`));
  const r = lim2014KeyLength({ nX: list('paNX'), nZ: list('paNZ'), mZ: list('paMZ') }, decoySettings(s), num(stats, 'paLambdaEC'));
  return 'length' in r ? r.length : 0;
}

describe('BB84 simulator: EC blocks accumulate, a PA block yields keys', () => {
  it('when EC rounds run on a quiet link, then they accumulate without keys until the PA block is full, and then both ends get identical keys of Lim 2014\'s length', async () => {
    const { alice, bob } = pairOf(SHORT_LINK, { slh: slh() });
    const rounds = await roundsUntilKeys(alice, bob, 0, 8);
    expect(rounds.length).toBeGreaterThanOrEqual(3); // ~300,000 key-basis bits per EC block, 1e6 per PA block
    const accumulating = rounds.slice(0, -1);
    let bits = 0;
    for (const r of accumulating) {
      expect(r.alice!.keys).toEqual([]);
      expect(r.alice!.stats).toMatchObject({ accumulated: true, aborted: false, reason: null, keys: 0 });
      expect(r.bob!.stats).toMatchObject({ accumulated: true, keys: 0 });
      bits += num(r.alice!.stats, 'keyBasisBits');
      expect(num(r.alice!.stats, 'accumulatedBits')).toBe(bits);
      expect(r.alice!.stats!.paBlocks).toBeUndefined();
    }
    const last = rounds[rounds.length - 1]!;
    const stats = last.alice!.stats!;
    expect(num(stats, 'accumulatedBits')).toBeGreaterThanOrEqual(SHORT_LINK.paBlockBits);
    expect(stats).toMatchObject({ analysis: 'lim2014', paBlocks: rounds.length, aborted: false, reason: null, epsSec: 1e-10, epsCor: 1e-15 });
    expect(num(stats, 'paBits')).toBe(num(stats, 'accumulatedBits'));
    // l from eq. (1) over the PA block's summed counts, at both ends; the keys are whole keys within it.
    const l = lim2014FromStats(stats, SHORT_LINK);
    expect(num(stats, 'secretBits')).toBe(l);
    expect(num(last.bob!.stats, 'secretBits')).toBe(l);
    expect(l).toBeGreaterThan(0.2 * num(stats, 'paBits'));
    const keys = last.alice!.keys;
    expect(keys.length).toBe(Math.floor(l / 256));
    expect(hex(last.bob!.keys)).toEqual(hex(keys));
    expect(new Set(hex(keys)).size).toBe(keys.length);
    for (const k of keys) expect(k.length).toBe(32);
    // The decoy bounds are reported, and the single-photon-only oracle claims more than the bound allows.
    for (const field of ['sX0', 'sX1', 'sZ1', 'vZ1', 'phiX']) expect(typeof stats[field], field).toBe('number');
    expect(num(stats, 'sX1')).toBeGreaterThan(0.5 * num(stats, 'paBits'));
    expect(num(stats, 'phiX')).toBeLessThan(0.2);
    expect(num(stats, 'singlePhotonOnlyBits')).toBeGreaterThan(l);
    // The blocks are consumed at both ends: the next round starts a new PA block.
    const next = await runRound(alice, bob, params(keys.length));
    expect(num(next.alice!.stats, 'accumulatedBlocks')).toBe(1);
  });

  it('when a round completes, then its stats are flat numbers, strings and booleans with the documented fields, per intensity too', async () => {
    const { alice, bob } = pairOf(ONE_ROUND_PA, { slh: slh() });
    const r = await runRound(alice, bob, params(0));
    const stats = r.alice!.stats!;
    expect(r.alice!.keys.length).toBeGreaterThan(0);
    for (const field of [
      'pulses', 'detections', 'detections_mu1', 'detections_mu2', 'detections_mu3', 'siftedBits', 'keyBasisBits', 'testBasisBits',
      'nX', 'nZ', 'mZ', 'nX_mu1', 'nZ_mu3', 'mZ_mu2', 'qberZ', 'leakedBits', 'correctedBits', 'cascadeEfficiency', 'cascadeRoundTrips',
      'accumulated', 'accumulatedBits', 'accumulatedBlocks', 'analysis', 'paBlocks', 'paPulses', 'paBits', 'paNX_mu1', 'paMZ_mu3', 'paLambdaEC',
      'sX0', 'sX1', 'sZ1', 'vZ1', 'phiX', 'epsSec', 'epsCor', 'secretBits', 'secretFraction', 'paSiftedBits', 'singlePhotonOnlyBits', 'keys', 'keyBits', 'qber', 'aborted', 'reason',
      'ms_frame', 'ms_sift', 'ms_phase', 'ms_cascade', 'ms_verify', 'ms_accumulate', 'ms_seed', 'ms_amplify', 'ms_sign',
    ]) {
      expect(stats, field).toHaveProperty(field);
    }
    for (const [field, v] of Object.entries(stats)) {
      expect(v === null || ['number', 'string', 'boolean'].includes(typeof v), field).toBe(true);
      if (typeof v === 'string') expect(v.length, field).toBeLessThan(40);
    }
    expect(num(stats, 'detections')).toBe(num(stats, 'detections_mu1') + num(stats, 'detections_mu2') + num(stats, 'detections_mu3'));
    // ETSI 004 key metadata: the key's QBER and secret fraction are the PA block's (l per sifted bit).
    const figures = blockFigures([{ firstIndex: 0, keys: r.alice!.keys.length, at: '', stats }], 0);
    expect(figures.secret_fraction).toBeCloseTo(num(stats, 'secretBits') / num(stats, 'paSiftedBits'), 5);
    expect(figures.qber).toBe(num(stats, 'qber'));
    expect(figures.qber).toBeGreaterThan(0.005);
    expect(figures.qber).toBeLessThan(0.02);
    expect(num(stats, 'nX')).toBe(num(stats, 'keyBasisBits'));
    // Detections per intensity follow the link model: N p_k R_k within 5 standard deviations.
    const s = ONE_ROUND_PA;
    s.source.intensities.forEach((mu, k) => {
      const expected = s.blockPulses * s.source.intensityProbabilities[k]! * pulseStatistics(s.link, mu).click;
      expect(Math.abs(num(stats, `detections_mu${k + 1}`) - expected)).toBeLessThan(5 * Math.sqrt(expected) + 3);
    });
    // Bob's view of the same round.
    expect(r.bob!.stats).toMatchObject({ keys: r.alice!.keys.length, siftedBits: stats.siftedBits, nX: stats.nX, mZ: stats.mZ, leakedBits: stats.leakedBits, secretBits: stats.secretBits });
    const totals = alice.streamStats(STREAM)!;
    expect(totals).toMatchObject({ rounds: 1, ecBlocksAccumulated: 1, paBlocks: 1, paBlocksWithKeys: 1, keys: r.alice!.keys.length, analysis: 'lim2014' });
    expect(bob.streamStats(STREAM)).toMatchObject({ rounds: 1, keys: r.alice!.keys.length });
  });

  it('when maxKeys is small, then the PA block yields exactly maxKeys keys, the rest of l is not kept and the blocks are spent', async () => {
    const { alice, bob } = pairOf(ONE_ROUND_PA, { slh: slh() });
    const r = await runRound(alice, bob, params(40, 3, 1024));
    expect(r.alice!.keys.length).toBe(3);
    expect(r.alice!.keys.every((k) => k.length === 128)).toBe(true);
    expect(hex(r.bob!.keys)).toEqual(hex(r.alice!.keys));
    expect(num(r.alice!.stats, 'secretBits')).toBeGreaterThan(3 * 1024);
    expect(num(r.alice!.stats, 'keyBits')).toBe(3 * 1024);
    const next = await runRound(alice, bob, params(43, 3, 1024));
    expect(num(next.alice!.stats, 'paBlocks')).toBe(1); // only the new EC block
  });

  it('when Eve intercepts and resends every pulse, then the test-basis QBER is near 25 % and every EC block is aborted before it is kept', async () => {
    const { alice, bob } = pairOf({ ...SHORT_LINK, attack: { kind: 'intercept-resend', fraction: 1 } });
    for (let b = 0; b < 2; b++) {
      const r = await runRound(alice, bob, params(0));
      expect(r.alice!.keys).toEqual([]);
      expect(r.alice!.stats).toMatchObject({ aborted: true, reason: 'qber-too-high', accumulated: false, keys: 0 });
      expect(num(r.alice!.stats, 'qberZ')).toBeGreaterThan(0.2);
      expect(num(r.alice!.stats, 'qberZ')).toBeLessThan(0.3);
      expect(r.bob!.stats).toMatchObject({ aborted: true, reason: 'qber-too-high' });
    }
    expect(alice.streamStats(STREAM)).toMatchObject({ ecBlocksAborted: 2, ecBlocksAccumulated: 0, lastReason: 'qber-too-high' });
  });

  it('when Eve intercepts 20 % of the pulses, then the test-basis QBER rises by about 5 points and Bob\'s stats count the key bits she knows', async () => {
    const quiet = pairOf(SHORT_LINK);
    const attacked = pairOf({ ...SHORT_LINK, attack: { kind: 'intercept-resend', fraction: 0.2 } });
    const q = await runRound(quiet.alice, quiet.bob, params(0));
    const a = await runRound(attacked.alice, attacked.bob, params(0));
    const rise = num(a.alice!.stats, 'qberZ') - num(q.alice!.stats, 'qberZ');
    expect(rise).toBeGreaterThan(0.03);
    expect(rise).toBeLessThan(0.07);
    expect(a.alice!.stats!.accumulated).toBe(true);
    // She knows the bit when her basis was Alice's: f / 2 of the key-basis bits.
    const known = num(a.bob!.stats, 'eveKnownBits') / num(a.bob!.stats, 'keyBasisBits');
    expect(known).toBeGreaterThan(0.09);
    expect(known).toBeLessThan(0.11);
  });

  it('when a photon-number-splitting attacker holds the channel, then the decoy analysis aborts the PA block (no key, reason in stats) while the single-photon-only oracle says the old sizing would have output key', async () => {
    // 50 km: the multi-photon pulses alone can supply the signal's click rate (pnsAttack.ts), so Eve learns the key.
    const settings: Bb84Settings = { ...SHORT_LINK, link: { ...DEFAULT_LINK, lengthKm: 50 }, attack: { kind: 'photon-number-splitting' }, blockPulses: 200_000_000 };
    const honestRate = plannedRate({ ...settings, attack: { kind: 'none' } });
    expect(honestRate.plan.length).toBeGreaterThan(0); // the same link without Eve yields key
    const { alice, bob } = pairOf(settings);
    const rounds = await roundsUntilKeys(alice, bob, 0, 8);
    const last = rounds[rounds.length - 1]!;
    const stats = last.alice!.stats!;
    expect(typeof stats.paBlocks).toBe('number');
    expect(last.alice!.keys).toEqual([]);
    expect(last.bob!.keys).toEqual([]);
    expect(stats).toMatchObject({ aborted: true, reason: 'bounds-inconsistent', analysis: 'lim2014', secretBits: 0, keys: 0 });
    expect(stats.paAbort).toMatch(/^single-photon-bound-x|phase-error-bound$/);
    expect(num(stats, 'singlePhotonOnlyBits')).toBeGreaterThan(0.5 * num(stats, 'paBits'));
    expect(last.bob!.stats).toMatchObject({ reason: 'bounds-inconsistent' });
    // Eve knows nearly every key bit (Bob's module marks them; the protocol never sees it).
    expect(num(last.bob!.stats, 'paEveKnownBits') / num(last.bob!.stats, 'paBits')).toBeGreaterThan(0.95);
    // The blocks were consumed: the next round starts a new PA block.
    const next = await runRound(alice, bob, params(0));
    expect(num(next.alice!.stats, 'accumulatedBlocks')).toBe(1);
  });

  it("when Bob holds a wrong public key for Alice, then he refuses her block at accumulate and neither end keeps it", async () => {
    const { alice, bob } = pairOf(ONE_ROUND_PA, { slh: { ...slh(), bobPeer: new Uint8Array(randomBytes(32)) } });
    const r = await runRound(alice, bob, params(0));
    expect(r.alice!.keys).toEqual([]);
    expect(r.alice!.stats).toMatchObject({ aborted: true, reason: 'peer-rejected-signature', accumulated: false });
    expect(r.bob!.stats).toMatchObject({ aborted: true, reason: 'peer-signature-invalid', accumulated: false });
  });

  it("when Alice holds a wrong public key for Bob, then Alice keeps no block and returns no key (Bob's block is an orphan the next PA settles)", async () => {
    const { alice, bob } = pairOf(ONE_ROUND_PA, { slh: { ...slh(), alicePeer: new Uint8Array(randomBytes(32)) } });
    const r = await runRound(alice, bob, params(0));
    expect(r.alice!.keys).toEqual([]);
    expect(r.alice!.stats).toMatchObject({ aborted: true, reason: 'peer-signature-invalid', accumulated: false });
  });

  it("issue 16: when the key configured for the peer is this module's own (a pasted keygen line), then the first failed round is reported once as an error naming the fix, and later rounds back off instead of spinning", async () => {
    const lines: Array<{ level: number; msg: string }> = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const backoff = { initial: 150, max: 150 };
    // Alice was given her own public key as Bob's.
    const alice = new Bb84Simulator({ settings: ONE_ROUND_PA, log, keylessBackoffMs: backoff, authenticator: new SignatureAuthenticator(pool, aliceKeys.secretKey.slice(), aliceKeys.publicKey, false) });
    const bob = new Bb84Simulator({ settings: ONE_ROUND_PA, keylessBackoffMs: backoff, authenticator: new SignatureAuthenticator(pool, bobKeys.secretKey.slice(), aliceKeys.publicKey, false) });
    const starts: number[] = [];
    for (let i = 0; i < 3; i++) {
      starts.push(performance.now());
      const r = await runRound(alice, bob, params(0));
      expect(r.alice!.keys).toEqual([]);
    }
    const errors = lines.filter((l) => l.level >= 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.msg).toMatch(/BB84 blocks fail authentication: the peer's signature does not verify here.*simulator\.public_key.*PEER's `npm run keygen`/);
    // Back-off: 150 ms before the 2nd round, 300 ms before the 3rd (beyond the keyless maximum: a wrong key does not heal).
    expect(starts[2]! - starts[1]!).toBeGreaterThanOrEqual(290);
    await alice.close?.();
    await bob.close?.();
  });

  it("when the exchange abandons a round midway (the sender gave up), then Bob's round ends and refuses further steps", async () => {
    const { alice, bob } = pairOf(SHORT_LINK);
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
    expect(outcome).toBe('threw');
    expect(asked).toBe(2); // Bob is in the middle of Cascade
    round.abandon!();
    await expect(round.handle('parities', {})).rejects.toThrow(/block is over/);
  });

  it('when the two modules simulate different links, sources or PA sizes, then Bob refuses the frame naming the settings', async () => {
    const alice = pairOf(SHORT_LINK).alice;
    for (const other of [{ link: { ...SHORT_LINK.link, lengthKm: 6 } }, { source: { ...DEFAULT_SOURCE, basisXProbability: 0.7 } }, { paBlockBits: 2_000_000 }, { epsSec: 1e-9 }, { attack: { kind: 'photon-number-splitting' as const } }]) {
      const bob = pairOf({ ...SHORT_LINK, ...other }).bob;
      const r = await runRound(alice, bob, params(0));
      expect(r.aliceError?.message).toMatch(/simulator\.channel\.\*, simulator\.intensities.*simulator\.pa_block_bits must be equal at both ends/);
    }
  });

  it('when pace is realtime, then round starts are spaced by the link time of the previous round', async () => {
    // 2e6 pulses at 5 MHz: 400 ms of link time per round.
    const { alice, bob } = pairOf({ ...SHORT_LINK, pace: 'realtime', pulseRateHz: 5e6, blockPulses: 2_000_000 });
    const frames: number[] = [];
    const round = async (firstIndex: number): Promise<void> => {
      await runRound(alice, bob, params(firstIndex), async (step, payload, deliver) => {
        if (step === 'frame') frames.push(performance.now());
        return deliver(step, payload);
      });
    };
    await round(0);
    await round(0);
    expect(frames[1]! - frames[0]!).toBeGreaterThanOrEqual(380);
    expect(frames[1]! - frames[0]!).toBeLessThan(3000);
  });
});

describe('BB84 pacing of rounds that keep nothing', () => {
  it('when rounds of a stream keep ending without keys or a kept block, then the next ones wait with a doubling back-off; accumulating rounds do not', async () => {
    const settings = { ...SHORT_LINK, attack: { kind: 'intercept-resend' as const, fraction: 1 }, blockPulses: 2_000_000 };
    const { alice, bob } = pairOf(settings, { alice: { keylessBackoffMs: { initial: 150, max: 250 } } });
    const frames: number[] = [];
    const stamp = async (p = params(0)) =>
      runRound(alice, bob, p, async (step, payload, deliver) => {
        if (step === 'frame') frames.push(performance.now());
        return deliver(step, payload);
      });
    for (let b = 0; b < 3; b++) expect((await stamp()).alice!.keys).toEqual([]);
    expect(frames[1]! - frames[0]!).toBeGreaterThanOrEqual(145);
    expect(frames[2]! - frames[1]!).toBeGreaterThanOrEqual(245); // 300 capped at 250
    // Another stream is not held back by this one.
    const t0 = performance.now();
    await stamp(params(0, 1000, 256, '9d3b1a52-2f4e-4f0a-8c1e-1d2b3c4d5e6f'));
    expect(performance.now() - t0).toBeLessThan(2000);
    // A link that accumulates is not backed off.
    const ok = pairOf({ ...SHORT_LINK, blockPulses: 2_000_000 }, { alice: { keylessBackoffMs: { initial: 1000, max: 1000 } } });
    const a0 = performance.now();
    for (let b = 0; b < 3; b++) expect((await runRound(ok.alice, ok.bob, params(0))).alice!.stats!.accumulated).toBe(true);
    expect(performance.now() - a0).toBeLessThan(1000 + 3 * 1500);
  });
});

describe('BB84 block sizing and wire limits', () => {
  const DEFAULT_25KM: Bb84Settings = { ...SHORT_LINK, link: DEFAULT_LINK, blockPulses: 125_000_000, paBlockBits: 4_000_000 };

  it('when the link is the default one, then an EC block is block_pulses pulses (about 1.65e6 detections at 25 km, just under a frame)', () => {
    const block = { ...DEFAULT_25KM, blockPulses: 175_000_000 };
    expect(ecBlockPulses(block)).toBe(175_000_000);
    expect(175_000_000 * clickProbabilityPerPulse(block)).toBeLessThan(DETECTION_HEADROOM * maxFrameDetections(block));
    expect(ecBlockPulses({ ...block, blockPulses: 1e9 })).toBeLessThan(180_000_000);
  });

  it('when the link clicks often, then block_pulses is capped so that a frame at the cap, with as many decoys as the source sends, stays under the peer body limit', () => {
    const close: Bb84Settings = { ...DEFAULT_25KM, link: { ...DEFAULT_LINK, lengthKm: 0, detectorEfficiency: 1 } };
    const pulses = ecBlockPulses(close);
    expect(pulses).toBeLessThan(125_000_000);
    const k = maxFrameDetections(close);
    const bits = randomBits(seededRng(1), k);
    // Non-signal detections at the share of non-signal pulses (1 - p_mu1 = 0.6), the most the source gives on average.
    const masks = [new BitArray(k), new BitArray(k), new BitArray(k)];
    for (let i = 0; i < k; i++) masks[i % 5 < 2 ? 0 : i % 5 < 4 ? 1 : 2]!.set(i, 1);
    const frame = { pulses, detections: k, states: bitsToChunks(bits), bases: bitsToChunks(bits), intensities: encodeIntensities(masks), nonceA: 'x'.repeat(44), channelHash: 'y'.repeat(44) };
    const envelope = { keyStreamId: STREAM, roundId: 'r'.repeat(36), roundSeq: 1e16, firstIndex: 1e12, keyLengthBits: 8192, maxKeys: 100_000, step: 'frame', payload: frame };
    expect(JSON.stringify(envelope).length).toBeLessThan(MAX_BODY_BYTES);
    expect(k).toBeLessThan(MAX_FRAME_DETECTIONS);
  });

  it('when a PA block\'s seed is long, then it travels in seed messages each under the body limit', async () => {
    const r = await runRound(...Object.values(pairOf({ ...ONE_ROUND_PA, paBlockBits: 120_000 })) as [Bb84Simulator, Bb84Simulator], params(0));
    expect(r.sizes.get('seed')!).toBeGreaterThan(120_000 / 8);
    for (const size of r.sizes.values()) expect(size).toBeLessThan(MAX_BODY_BYTES);
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
});

describe('link capability for ETSI 004 QoS', () => {
  it('when pace is realtime, then the expected secret rate is the Lim 2014 planned rate for the PA block in whole keys; with pace max it is unknown', () => {
    const base: Bb84Settings = { ...SHORT_LINK, link: DEFAULT_LINK, blockPulses: 125_000_000, paBlockBits: 4_000_000 };
    const auth = { signatureBytes: 32, sign: async () => new Uint8Array(), verify: async () => false };
    const realtime = new Bb84Simulator({ settings: { ...base, pace: 'realtime' }, authenticator: auth });
    const planned = plannedRate(base, MEASURED_CASCADE_EFFICIENCY);
    expect(planned.plan.length).toBeGreaterThan(0);
    const got = realtime.expectedSecretBitsPerSecond(256)!;
    expect(got % 256).toBe(0);
    expect(got).toBeGreaterThan(planned.secretBitsPerSecond - 256);
    expect(got).toBeLessThanOrEqual(planned.secretBitsPerSecond);
    // About 2.3e-3 secret bits per pulse at 25 km: some 230 kbit/s at 100 MHz.
    expect(got).toBeGreaterThan(150_000);
    expect(got).toBeLessThan(300_000);
    expect(new Bb84Simulator({ settings: { ...base, pace: 'max' }, authenticator: auth }).expectedSecretBitsPerSecond(256)).toBeUndefined();
  });
});
