/**
 * The BB84 simulator over the two-module protocol (docs/bb84.md; messages in docs/peer-protocol.md).
 *
 * One round = one block. Alice is the sending module (runSenderRound drives every step), Bob the receiving module
 * (a Bb84ReceiverRound answers each step):
 *
 *   frame     A→B  pulses N, detections k, Alice's states and bases of the k detected pulses, nonceA, channelHash
 *             B→A  Bob's bases, nonceB                     (Bob's module applies Eve, dark counts, misalignment)
 *   sift      A→B  matching-basis mask                     B→A  sifted length
 *   estimate  A→B  sample seed, sample size                B→A  Bob's sampled bits
 *   abort     A→B  reason (QBER too high, too few bits, no secret key left)     B→A  {aborted}; the block ends
 *   parities  A→B  batched Cascade questions (the first carries the QBER, the error count, passes, shuffle seed)
 *             B→A  packed parities of Bob's key            (Alice corrects her key to Bob's)
 *   verify    A→B  verify seed, Alice's tag                B→A  match (a mismatch ends the block at both ends)
 *   amplify   A→B  Toeplitz seed, output length, key count, Alice's signature over her transcript
 *             B→A  confirmed, key count, Bob's signature over his transcript    (Bob's keys: the receiver result)
 *
 * Alice returns keys only after Bob's signature verifies; Bob derives keys only after Alice's verifies. Every step
 * at Bob validates its input strictly and throws RoundProtocolError on anything unexpected; nothing here logs or
 * throws key bits.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { ModuleConfig } from '../../config/schema.js';
import { KeyMaterialError, parseKeyMaterial } from '../../crypto/keys.js';
import { SCHEME_SIZES, SignaturePool, type SignatureScheme } from '../../crypto/signatures.js';
import { RoundProtocolError, type ReceiverRound, type ReceiverStepResult, type RoundChannel, type RoundParams, type RoundResult, type RoundStats, type Simulator } from '../Simulator.js';
import { DEFAULT_PA_HASH_FAMILY, paHash, paSeedLength } from './amplify.js';
import { BitArray } from './bits.js';
import { CascadeResponder, DEFAULT_CASCADE, efficiency, MAX_PASSES, reconcile, SHUFFLE_SEED_BYTES, type CascadeParams, type ParityOracle } from './cascade.js';
import { drawDetectionCount, qberWithEve, receiveDetections } from './channel.js';
import { estimate, qberUpperBound, SAMPLE_SEED_BYTES, takeSample } from './estimate.js';
import { predictedRates, secretKeyLength } from './finiteKey.js';
import { bb84SettingsFromConfig, type Bb84Settings } from './protocol/settings.js';
import { chooseBlockPulses, MAX_FRAME_DETECTIONS, MIN_SIFTED_BITS, sampleSizeFor } from './protocol/sizing.js';
import {
  answersFromBase64,
  answersToBase64,
  bitsFromBase64,
  bitsToBase64,
  bytesFromBase64,
  bytesToBase64,
  decodeQuestions,
  encodeQuestions,
  expectBoolean,
  expectFields,
  expectInt,
  expectNumber,
  expectString,
  protocolError,
} from './protocol/wire.js';
import { cryptoRng, randomBits, seededRng, type Rng } from './rng.js';
import { compressBits } from './sift.js';
import { canonicalJson, confirmMessage, Transcript, type Party } from './transcript.js';
import { tagsEqual, VERIFY_SEED_BYTES, VERIFY_TAG_BITS, VERIFY_TAG_BYTES, verifyTag } from './verify.js';

export { bb84SettingsFromConfig, type Bb84Settings } from './protocol/settings.js';

/** Bytes of each nonce. */
export const NONCE_BYTES = 32;
/** Raw bytes of encoded Cascade questions per `parities` message (base64 makes it 4/3 larger). */
export const MAX_QUESTION_BYTES = 512 * 1024;
/** The Cascade variant both ends use (a protocol constant: the two ends must agree on it). */
export const BB84_CASCADE = DEFAULT_CASCADE;

/** Why Alice ended a block without keys (sent in `abort`, reported in stats). */
export const ABORT_REASONS = ['too-few-bits', 'qber-too-high', 'no-secret-key'] as const;
export type AbortReason = (typeof ABORT_REASONS)[number];
/** Every reason a block can end without keys, as reported in stats. */
export const DROP_REASONS = [...ABORT_REASONS, 'verify-mismatch', 'peer-rejected-signature', 'peer-signature-invalid'] as const;
export type DropReason = (typeof DROP_REASONS)[number];

const NONCE_B64 = /^[A-Za-z0-9+/]+={0,2}$/;

// ---------------------------------------------------------------------------------------------
// Authentication of the transcript
// ---------------------------------------------------------------------------------------------

/** Signs this module's transcript confirmations and verifies the peer's. */
export interface TranscriptAuthenticator {
  /** Exact length of a signature on the wire (bytes). */
  readonly signatureBytes: number;
  sign(message: Uint8Array): Promise<Uint8Array>;
  verify(signature: Uint8Array, message: Uint8Array): Promise<boolean>;
  close?(): Promise<void>;
}

/** SLH-DSA / SPHINCS+ signatures computed in the SignaturePool's worker threads. */
export class SignatureAuthenticator implements TranscriptAuthenticator {
  readonly signatureBytes: number;

  /** `ownsPool`: close the pool with the authenticator. */
  constructor(
    private readonly pool: SignaturePool,
    private readonly secretKey: Uint8Array,
    private readonly peerPublicKey: Uint8Array,
    private readonly ownsPool = true,
  ) {
    this.signatureBytes = SCHEME_SIZES[pool.scheme].signature;
  }

  sign(message: Uint8Array): Promise<Uint8Array> {
    return this.pool.sign(message, this.secretKey);
  }

  verify(signature: Uint8Array, message: Uint8Array): Promise<boolean> {
    return this.pool.verify(signature, message, this.peerPublicKey);
  }

  async close(): Promise<void> {
    this.secretKey.fill(0);
    if (this.ownsPool) await this.pool.close();
  }
}

/**
 * Parses simulator.private_key / public_key for the configured scheme and starts a signature pool. Throws an Error
 * whose one-line message names the field (never its value) when a key is missing or malformed.
 */
export function authenticatorFromConfig(cfg: ModuleConfig, workers = 2, linkKeys?: LinkSigningKeys): SignatureAuthenticator {
  // The link credentials' keys sign the transcripts unless simulator.private_key / public_key are set.
  if (linkKeys && !cfg.simulator.private_key && !cfg.simulator.public_key) {
    return new SignatureAuthenticator(SignaturePool.create(linkKeys.scheme, { workers }), Uint8Array.from(linkKeys.secretKey), Uint8Array.from(linkKeys.peerPublicKey));
  }
  const scheme = cfg.simulator.signature;
  const parse = (field: 'private_key' | 'public_key', text: string | undefined, what: string): Uint8Array => {
    if (!text) {
      throw new Error(
        `simulator.${field}: required when module.sim is bb84 and simulator.${field === 'private_key' ? 'public_key' : 'private_key'} is set, or when there are no link credentials `
          + `(${what} for ${scheme}, hex or base64; or set QKDM_SIMULATOR_${field.toUpperCase()}_FILE; or leave both unset to sign with peer_auth.credentials)`,
      );
    }
    try {
      return parseKeyMaterial(text, field, scheme);
    } catch (err) {
      if (err instanceof KeyMaterialError) throw new Error(`simulator.${err.message}`);
      throw err;
    }
  };
  const secretKey = parse('private_key', cfg.simulator.private_key, "this module's signing secret key");
  const publicKey = parse('public_key', cfg.simulator.public_key, "the peer module's public key");
  return new SignatureAuthenticator(SignaturePool.create(scheme, { workers }), secretKey, publicKey);
}

/** The simulator configured by `cfg` (module.sim: bb84). */
/** Signing keys of the link credentials (peer_auth.credentials), lent to the BB84 transcript signatures. */
export interface LinkSigningKeys {
  scheme: SignatureScheme;
  secretKey: Uint8Array;
  peerPublicKey: Uint8Array;
}

export function createBb84Simulator(cfg: ModuleConfig, log?: Logger, linkKeys?: LinkSigningKeys): Bb84Simulator {
  if (cfg.simulator.cascade_passes > MAX_PASSES) throw new Error(`simulator.cascade_passes: at most ${MAX_PASSES} with module.sim bb84`);
  return new Bb84Simulator({ settings: bb84SettingsFromConfig(cfg), authenticator: authenticatorFromConfig(cfg, 2, linkKeys), ...(log ? { log } : {}) });
}

/**
 * Hash of the simulated channel's parameters (channel section, pulse rate, Eve). Sent in every frame: two modules
 * whose channel configurations differ refuse each other's blocks instead of producing a meaningless QBER.
 */
export function channelHash(s: Bb84Settings): string {
  return createHash('sha256')
    .update(canonicalJson({ v: 1, ...s.channel, pulseRateHz: s.pulseRateHz, eve: s.eve }))
    .digest('base64');
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

class Stopwatch {
  private last = performance.now();
  readonly start = this.last;
  readonly laps: Record<string, number> = {};

  lap(name: string): void {
    const now = performance.now();
    this.laps[name] = (this.laps[name] ?? 0) + (now - this.last);
    this.last = now;
  }

  /** Adds an interval measured elsewhere. */
  add(name: string, ms: number): void {
    this.laps[name] = (this.laps[name] ?? 0) + ms;
  }

  /** ms_<stage> for every stage, and ms_total: the wall time since construction, or (busyTotal) the sum of the stages. */
  flat(busyTotal = false): Record<string, number> {
    const out: Record<string, number> = {};
    let busy = 0;
    for (const [k, v] of Object.entries(this.laps)) {
      out[`ms_${k}`] = round3(v);
      if (k !== 'sign' && k !== 'toeplitz') busy += v; // parts of other stages (sign runs in worker threads)
    }
    out.ms_total = round3(busyTotal ? busy : performance.now() - this.start);
    return out;
  }
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;
const round6 = (x: number): number => Math.round(x * 1e6) / 1e6;

function wipe(...arrays: (BitArray | Uint8Array | undefined | null)[]): void {
  for (const a of arrays) {
    if (!a) continue;
    if (a instanceof BitArray) a.words.fill(0);
    else a.fill(0);
  }
}

/** REVERSE8[b]: the bits of byte b in reverse order. */
const REVERSE8 = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  let r = 0;
  for (let i = 0; i < 8; i++) r |= ((b >>> i) & 1) << (7 - i);
  REVERSE8[b] = r;
}

/** The bits packed MSB-first into bytes, as BitArray.toBytesMsbFirst (length a multiple of 8), a byte at a time. */
function toBytesMsbFirst(bits: BitArray): Uint8Array {
  const out = new Uint8Array(bits.length / 8);
  const w = bits.words;
  for (let i = 0; i < out.length; i++) out[i] = REVERSE8[(w[i >>> 2]! >>> (8 * (i & 3))) & 0xff]!;
  return out;
}

/** The first `count` keys of `bits` (count · keyLengthBits bits), each packed MSB-first (BitArray.toBytesMsbFirst). */
export function cutKeys(bits: BitArray, count: number, keyLengthBits: number): Uint8Array[] {
  const all = toBytesMsbFirst(bits);
  const bytes = keyLengthBits / 8;
  const keys: Uint8Array[] = [];
  for (let i = 0; i < count; i++) keys.push(all.slice(i * bytes, (i + 1) * bytes));
  all.fill(0);
  return keys;
}

/** The error a reply from the peer gets when it is malformed (Alice's side). */
function replyStep(step: string): string {
  return `${step} reply`;
}

// ---------------------------------------------------------------------------------------------
// The simulator
// ---------------------------------------------------------------------------------------------

export interface Bb84Options {
  settings: Bb84Settings;
  authenticator: TranscriptAuthenticator;
  /** One info line per block (numbers only). */
  log?: Logger;
  /**
   * After a block of a stream ends without keys (aborted, discarded), that stream's next block waits this long,
   * doubling per consecutive keyless block up to `max` (a link that cannot produce key does not spin at full speed).
   * Default 200 ms .. 5 s; tests may pass 0.
   */
  keylessBackoffMs?: { initial: number; max: number };
}

export const DEFAULT_KEYLESS_BACKOFF_MS = { initial: 200, max: 5000 };
/** Longest back-off between blocks while their signatures fail (a configuration error). */
export const AUTH_FAILURE_BACKOFF_MAX_MS = 60_000;
/** Above this many streams with a booked block start, bookings older than a minute are dropped. */
const MAX_TRACKED_STREAMS = 1000;

interface PaceWait {
  timer: NodeJS.Timeout;
  resolve(): void;
}

/** Cascade efficiency f = leak / (n·h(e)) of the default variant at 1-2 % QBER (bench/cascade.ts). */
export const MEASURED_CASCADE_EFFICIENCY = 1.08;

export class Bb84Simulator implements Simulator {
  readonly name = 'bb84';
  readonly settings: Bb84Settings;
  private readonly auth: TranscriptAuthenticator;
  private readonly log: Logger | undefined;
  private readonly channelHash: string;
  private readonly predictedQber: number;
  /** Per stream, the earliest start of its next block (performance.now() ms): realtime pacing and keyless back-off. */
  private readonly nextBlockStart = new Map<string, number>();
  /** Per stream, consecutive blocks without keys. */
  private readonly keyless = new Map<string, number>();
  private readonly backoff: { initial: number; max: number };
  /** Streams whose blocks fail the peer's signature check: reported once, backed off longer (a configuration error). */
  private readonly authFailing = new Set<string>();
  private readonly waits = new Set<PaceWait>();
  private rounds = 0;
  private closed = false;

  constructor(options: Bb84Options) {
    this.settings = options.settings;
    this.auth = options.authenticator;
    this.log = options.log;
    this.backoff = options.keylessBackoffMs ?? DEFAULT_KEYLESS_BACKOFF_MS;
    this.channelHash = channelHash(this.settings);
    this.predictedQber = qberWithEve(this.settings.channel, this.settings.eve);
  }

  /**
   * The link's secret key rate for ETSI 004 QoS (`Min_bps`): with pace realtime, what a device on the
   * configured channel delivers (docs/bb84.md "Predicted rates", with the Cascade efficiency measured
   * for the default variant), in whole keys. With pace max the rate is bounded by this machine's CPU,
   * not by the channel, so it is unknown and a `Min_bps` is not refused on that ground.
   */
  expectedSecretBitsPerSecond(keyLengthBits: number): number | undefined {
    if (this.settings.pace !== 'realtime') return undefined;
    const { secretRate } = predictedRates(this.settings.channel, this.settings.pulseRateHz, MEASURED_CASCADE_EFFICIENCY, this.settings.sampleFraction);
    return Math.floor(secretRate / keyLengthBits) * keyLengthBits;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waits) {
      clearTimeout(w.timer);
      w.resolve();
    }
    this.waits.clear();
    await this.auth.close?.();
  }

  /** Randomness of the simulated physics: the CSPRNG, or a per-round seeded stream when simulator.seed is set (tests). */
  physicsRng(role: Party, params: RoundParams): Rng {
    if (this.settings.seed === undefined) return cryptoRng();
    const digest = createHash('sha256')
      .update(`qkdm/bb84/physics\0${this.settings.seed}\0${role}\0${params.keyStreamId}\0${params.firstIndex}\0${this.rounds++}`)
      .digest();
    return seededRng(new Uint8Array(digest));
  }

  /**
   * Waits (one timer, never a loop) until this stream's next block may start; returns the block's scheduled start
   * (now, or the booked start - which may lie up to one block in the past while a realtime link catches up).
   */
  private async waitForBlockStart(keyStreamId: string): Promise<number> {
    const now = performance.now();
    const booked = this.nextBlockStart.get(keyStreamId);
    if (booked === undefined) return now;
    const delay = booked - now;
    if (delay > 0 && !this.closed) {
      await new Promise<void>((resolve) => {
        const w: PaceWait = {
          timer: setTimeout(() => {
            this.waits.delete(w);
            resolve();
          }, delay),
          resolve,
        };
        this.waits.add(w);
      });
    }
    return booked;
  }

  /**
   * Books the stream's next block start. pace realtime: the blocks of a stream follow each other on the link
   * without gaps - the next starts one link time (pulses / pulse rate) after this one's scheduled start - as a
   * device's source and detectors keep running while a block is post-processed; a block that took longer than its
   * link time is caught up by starting the next at once, but the schedule never lags more than one block (a
   * device that cannot keep up loses that key, it does not queue it forever). A block that completed without keys
   * adds the keyless back-off.
   */
  private scheduleNextBlock(keyStreamId: string, scheduled: number, linkMs: number, outcome: 'keys' | 'keyless' | 'failed'): void {
    const now = performance.now();
    let next = this.settings.pace === 'realtime' ? Math.max(scheduled + linkMs, now - linkMs) : 0;
    if (outcome === 'keys') {
      this.keyless.delete(keyStreamId);
    } else if (outcome === 'keyless') {
      // (A failed round - an exception - is backed off by the exchange's retry logic instead.)
      const n = (this.keyless.get(keyStreamId) ?? 0) + 1;
      this.keyless.set(keyStreamId, n);
      // A wrong key does not heal by itself: back off up to a minute rather than the keyless maximum.
      const max = this.authFailing.has(keyStreamId) ? Math.max(this.backoff.max, AUTH_FAILURE_BACKOFF_MAX_MS) : this.backoff.max;
      next = Math.max(next, now + Math.min(max, this.backoff.initial * 2 ** (n - 1)));
    }
    if (this.settings.pace === 'realtime' || next > now) this.nextBlockStart.set(keyStreamId, next);
    else this.nextBlockStart.delete(keyStreamId);
    if (this.nextBlockStart.size > MAX_TRACKED_STREAMS) {
      // Streams that have not run a block for a minute (closed ones) lose their bookings.
      for (const [id, t] of this.nextBlockStart) if (t < now - 60_000) this.nextBlockStart.delete(id);
      for (const id of this.keyless.keys()) if (!this.nextBlockStart.has(id)) this.keyless.delete(id);
    }
  }

  private logBlock(role: Party, params: RoundParams, stats: RoundStats): void {
    this.watchAuthentication(role, params.keyStreamId, stats);
    if (!this.log) return;
    // `keys` is a redacted log path (src/log.ts): the count goes out as keyCount.
    const { keys, ...rest } = stats;
    this.log.info({ keyStreamId: params.keyStreamId, firstIndex: params.firstIndex, role, keyCount: keys, ...rest }, 'bb84 block');
  }

  /**
   * A block whose signature does not verify is a wrong key far more often than an attack: the first one
   * of a stream is reported once, as an error naming the settings and the fix (issue 16); the stream's
   * blocks then back off (scheduleNextBlock) until one verifies again.
   */
  private watchAuthentication(role: Party, keyStreamId: string, stats: RoundStats): void {
    const failed = stats.reason === 'peer-rejected-signature' || stats.reason === 'peer-signature-invalid';
    if (failed && !this.authFailing.has(keyStreamId)) {
      if (this.authFailing.size >= MAX_TRACKED_STREAMS) this.authFailing.clear();
      this.authFailing.add(keyStreamId);
      const side = stats.reason === 'peer-signature-invalid' ? "the peer's signature does not verify here" : "the peer module could not verify this module's signature";
      this.log?.error(
        { keyStreamId, role, reason: stats.reason },
        `BB84 blocks fail authentication: ${side}. The public key configured for the peer is not the peer's: ` +
          "set simulator.public_key to the key the PEER's `npm run keygen` printed for its peer (never this module's own), " +
          'or unset simulator.private_key and simulator.public_key to sign with the link credentials. No key is produced; blocks are retried with back-off',
      );
    } else if (!failed && Number(stats.keys ?? 0) > 0 && this.authFailing.delete(keyStreamId)) {
      this.log?.warn({ keyStreamId, role }, 'BB84 blocks authenticate again: key production resumed');
    }
  }

  // ------------------------------------------------------------------------------------------- Alice

  async runSenderRound(params: RoundParams, channel: RoundChannel): Promise<RoundResult> {
    const s = this.settings;
    const { keyLengthBits, maxKeys } = params;
    const pulses = chooseBlockPulses(s, maxKeys, keyLengthBits);
    const linkSeconds = pulses / s.pulseRateHz;
    const scheduledStart = await this.waitForBlockStart(params.keyStreamId);
    let outcome: 'keys' | 'keyless' | 'failed' = 'failed';

    const watch = new Stopwatch();
    const transcript = new Transcript(params);
    const stats: RoundStats = {
      pace: s.pace,
      pulses,
      linkSeconds: round6(linkSeconds),
      predictedQber: round6(this.predictedQber),
      detections: null,
      siftedBits: null,
      sampleBits: null,
      remainingBits: null,
      qberEstimate: null,
      qberUpper: null,
      leakedBits: null,
      cascadeEfficiency: null,
      cascadeRoundTrips: null,
      cascadeMessages: null,
      correctedBits: null,
      secretBits: 0,
      keyBits: 0,
      keys: 0,
      aborted: false,
      reason: null,
    };
    const secrets: (BitArray | Uint8Array | undefined)[] = [];

    let peerMs = 0;
    let requests = 0;
    /** channel.request, timed: ms_peer is the time spent waiting for the peer (network + Bob's processing). */
    const request = async (step: string, payload: Record<string, unknown>): Promise<unknown> => {
      const t0 = performance.now();
      try {
        return await channel.request(step, payload);
      } finally {
        peerMs += performance.now() - t0;
        requests++;
      }
    };
    /** A request whose payload goes into the transcript (the caller records the reply once it validated it). */
    const exchange = async (step: string, payload: Record<string, unknown>): Promise<unknown> => {
      transcript.message('alice', step, payload);
      return request(step, payload);
    };
    const finish = (keys: Uint8Array[], reason: DropReason | null): RoundResult => {
      if (reason) {
        stats.aborted = true;
        stats.reason = reason;
        stats.secretBits = 0;
        stats.keyBits = 0;
        stats.keys = 0;
      }
      Object.assign(stats, watch.flat(), { ms_peer: round3(peerMs), requests });
      this.logBlock('alice', params, stats);
      outcome = keys.length > 0 ? 'keys' : 'keyless';
      return { keys, stats };
    };
    const abort = async (reason: AbortReason): Promise<RoundResult> => {
      const reply = await request('abort', { reason });
      const f = expectFields(reply, replyStep('abort'), ['aborted']);
      if (f.aborted !== true) throw protocolError(replyStep('abort'), 'aborted must be true');
      return finish([], reason);
    };

    try {
      // 1. frame: the quantum channel. Loss is drawn here; Bob's module measures the detected pulses.
      const rng = this.physicsRng('alice', params);
      const k = Math.min(drawDetectionCount(pulses, s.channel, rng), MAX_FRAME_DETECTIONS);
      const aliceBits = randomBits(rng, k);
      const aliceBases = randomBits(rng, k);
      secrets.push(aliceBits);
      stats.detections = k;
      const nonceA = randomBytes(NONCE_BYTES);
      const frameReply = await exchange('frame', {
        pulses,
        detections: k,
        states: bitsToBase64(aliceBits),
        bases: bitsToBase64(aliceBases),
        nonceA: bytesToBase64(nonceA),
        channelHash: this.channelHash,
      });
      const fr = expectFields(frameReply, replyStep('frame'), ['bases', 'nonceB']);
      const bobBases = bitsFromBase64(fr.bases, k, replyStep('frame'), 'bases');
      const nonceB = bytesFromBase64(fr.nonceB, NONCE_BYTES, replyStep('frame'), 'nonceB');
      transcript.message('bob', 'frame', frameReply);
      transcript.nonces(nonceA, nonceB);
      watch.lap('frame');

      // 2. sift: Alice announces which detections were measured in her basis.
      const match = new BitArray(k);
      for (let i = 0; i < match.words.length; i++) match.words[i] = ~(aliceBases.words[i]! ^ bobBases.words[i]!);
      match.clearTail();
      const sifted = compressBits(aliceBits, match);
      secrets.push(sifted);
      wipe(aliceBits);
      stats.siftedBits = sifted.length;
      if (sifted.length < MIN_SIFTED_BITS) return await abort('too-few-bits');
      const siftReply = await exchange('sift', { mask: bitsToBase64(match) });
      const sr = expectFields(siftReply, replyStep('sift'), ['siftedBits']);
      if (sr.siftedBits !== sifted.length) throw protocolError(replyStep('sift'), 'siftedBits differs from the mask');
      transcript.message('bob', 'sift', siftReply);
      watch.lap('sift');

      // 3. estimate: Bob discloses a random sample; Alice bounds the QBER of the rest.
      const sampleSize = sampleSizeFor(sifted.length, s.sampleFraction);
      const sampleSeed = randomBytes(SAMPLE_SEED_BYTES);
      const estReply = await exchange('estimate', { seed: bytesToBase64(sampleSeed), sampleSize });
      const er = expectFields(estReply, replyStep('estimate'), ['sample']);
      const bobSample = bitsFromBase64(er.sample, sampleSize, replyStep('estimate'), 'sample');
      transcript.message('bob', 'estimate', estReply);
      const est = estimate(sifted, bobSample, { seed: sampleSeed, sampleSize, epsPE: s.epsPE });
      const remaining = est.remaining;
      secrets.push(remaining);
      wipe(sifted);
      Object.assign(stats, { sampleBits: sampleSize, remainingBits: remaining.length, qberEstimate: est.qber, qberUpper: est.qberUpper });
      watch.lap('estimate');
      if (est.qberUpper > s.qberThreshold) return await abort('qber-too-high');

      // 4. Cascade: Alice asks, Bob answers from his key; Alice's key ends equal to Bob's.
      const cascadeParams: CascadeParams = { ...BB84_CASCADE, estimatedQber: est.qber, passes: s.cascadePasses };
      const shuffleSeed = randomBytes(SHUFFLE_SEED_BYTES);
      let setupSent = false;
      let messages = 0;
      const oracle: ParityOracle = {
        askParities: async (questions) => {
          const answers = new Uint8Array(questions.length);
          let offset = 0;
          for (const chunk of encodeQuestions(questions, MAX_QUESTION_BYTES)) {
            if (chunk.count === 0) continue;
            const payload: Record<string, unknown> = { count: chunk.count, questions: chunk.data };
            if (!setupSent) {
              Object.assign(payload, { qber: est.qber, sampleErrors: est.errors, passes: cascadeParams.passes, shuffleSeed: bytesToBase64(shuffleSeed) });
              setupSent = true;
            }
            const reply = await exchange('parities', payload);
            const pr = expectFields(reply, replyStep('parities'), ['parities']);
            answers.set(answersFromBase64(pr.parities, chunk.count, replyStep('parities')), offset);
            transcript.message('bob', 'parities', reply);
            offset += chunk.count;
            messages++;
          }
          return answers;
        },
      };
      const rec = await reconcile(remaining, cascadeParams, shuffleSeed, oracle);
      const corrected = rec.corrected;
      secrets.push(corrected);
      const n = corrected.length;
      Object.assign(stats, {
        leakedBits: rec.leakedBits + VERIFY_TAG_BITS,
        cascadeRoundTrips: rec.roundTrips,
        cascadeMessages: messages,
        correctedBits: rec.correctedBits,
        cascadeEfficiency: rec.correctedBits > 0 ? round6(efficiency(rec.leakedBits, n, rec.correctedBits / n)) : null,
      });
      watch.lap('cascade');

      // 5. verify: a fresh universal hash of the corrected key.
      const verifySeed = randomBytes(VERIFY_SEED_BYTES);
      const tag = verifyTag(corrected, verifySeed);
      const verReply = await exchange('verify', { seed: bytesToBase64(verifySeed), tag: bytesToBase64(tag) });
      const vr = expectFields(verReply, replyStep('verify'), ['match']);
      const tagsMatch = expectBoolean(vr.match, replyStep('verify'), 'match');
      transcript.message('bob', 'verify', verReply);
      watch.lap('verify');
      if (!tagsMatch) return finish([], 'verify-mismatch');

      // 6. amplify + confirm: output length from the finite-key formula, capped to the keys the round can take.
      const secretBits = secretKeyLength({ n, qberUpper: est.qberUpper, leakEC: rec.leakedBits + VERIFY_TAG_BITS, epsEC: s.epsEC, epsPA: s.epsPA });
      stats.secretBits = secretBits;
      const keyCount = Math.min(maxKeys, Math.floor(secretBits / keyLengthBits));
      if (keyCount === 0) return await abort('no-secret-key');
      const outputBits = keyCount * keyLengthBits;
      const family = s.paHash ?? DEFAULT_PA_HASH_FAMILY;
      const toeplitzSeed = randomBits(cryptoRng(), paSeedLength(family, n, outputBits));
      const amplifyPayload = { seed: bitsToBase64(toeplitzSeed), hash: family, outputBits, keys: keyCount };
      transcript.message('alice', 'amplify', amplifyPayload);
      const signStart = performance.now();
      const signing = this.auth.sign(confirmMessage('alice', transcript.digest()));
      signing.catch(() => undefined); // awaited below; keeps an early rejection from being unhandled
      const finalKey = paHash(family, corrected, toeplitzSeed, outputBits); // overlaps the signature (worker thread)
      secrets.push(finalKey);
      watch.lap('amplify');
      const signature = await signing;
      watch.add('sign', performance.now() - signStart);
      watch.lap('wait_sign');
      const confirm = await request('amplify', { ...amplifyPayload, signature: bytesToBase64(signature) });
      watch.lap('confirm');
      const cr = expectFields(confirm, replyStep('amplify'), ['confirmed'], ['keys', 'signature', 'reason']);
      if (!expectBoolean(cr.confirmed, replyStep('amplify'), 'confirmed')) {
        expectString(cr.reason, 64, /^[a-z-]+$/, replyStep('amplify'), 'reason');
        return finish([], 'peer-rejected-signature');
      }
      if (cr.keys !== keyCount) throw protocolError(replyStep('amplify'), 'keys differs from the count sent');
      const bobSignature = bytesFromBase64(cr.signature, this.auth.signatureBytes, replyStep('amplify'), 'signature');
      const { signature: _omitted, ...confirmBody } = cr;
      transcript.message('bob', 'amplify', confirmBody);
      const verifyStart = performance.now();
      const peerOk = await this.auth.verify(bobSignature, confirmMessage('bob', transcript.digest()));
      watch.add('sign', performance.now() - verifyStart);
      watch.lap('wait_sign');
      if (!peerOk) return finish([], 'peer-signature-invalid');
      const keys = cutKeys(finalKey, keyCount, keyLengthBits);
      Object.assign(stats, { keyBits: outputBits, keys: keyCount });
      return finish(keys, null);
    } finally {
      wipe(...secrets);
      this.scheduleNextBlock(params.keyStreamId, scheduledStart, linkSeconds * 1000, outcome);
    }
  }

  // ------------------------------------------------------------------------------------------- Bob

  openReceiverRound(params: RoundParams): ReceiverRound {
    return new Bb84ReceiverRound(this, params, this.auth, this.channelHash, (stats) => this.logBlock('bob', params, stats));
  }
}

// ---------------------------------------------------------------------------------------------
// Bob's side of one block
// ---------------------------------------------------------------------------------------------

type BobState = 'frame' | 'sift' | 'estimate' | 'decision' | 'cascade' | 'amplify' | 'done';

export class Bb84ReceiverRound implements ReceiverRound {
  private state: BobState = 'frame';
  private readonly transcript: Transcript;
  private readonly watch = new Stopwatch();
  private readonly stats: RoundStats;
  private bobBits: BitArray | undefined;
  private sifted: BitArray | undefined;
  private remaining: BitArray | undefined;
  private sampleSize = 0;
  private qberUpper = 1;
  private responder: CascadeResponder | undefined;
  private busy: { step: string; started: number } | undefined;

  constructor(
    private readonly sim: Bb84Simulator,
    private readonly params: RoundParams,
    private readonly auth: TranscriptAuthenticator,
    private readonly channelHash: string,
    private readonly onDone: (stats: RoundStats) => void,
  ) {
    this.transcript = new Transcript(params);
    this.stats = {
      pulses: null,
      detections: null,
      siftedBits: null,
      sampleBits: null,
      remainingBits: null,
      qberEstimate: null,
      leakedBits: null,
      secretBits: 0,
      keyBits: 0,
      keys: 0,
      aborted: false,
      reason: null,
    };
  }

  async handle(step: string, payload: unknown): Promise<ReceiverStepResult> {
    if (this.state === 'done') throw protocolError(step, 'the block is over');
    const started = performance.now();
    // Bob's figures are his own processing time per step (the gaps between steps are Alice's and the network's).
    this.busy = { step, started };
    try {
      if (step === 'abort') return this.onAbort(payload);
      switch (this.state) {
        case 'frame':
          return this.expectStep(step, 'frame') && this.onFrame(payload);
        case 'sift':
          return this.expectStep(step, 'sift') && this.onSift(payload);
        case 'estimate':
          return this.expectStep(step, 'estimate') && this.onEstimate(payload);
        case 'decision':
          return this.expectStep(step, 'parities') && this.onParities(payload, true);
        case 'cascade':
          if (step === 'verify') return this.onVerify(payload);
          return this.expectStep(step, 'parities') && this.onParities(payload, false);
        case 'amplify':
          return this.expectStep(step, 'amplify') && (await this.onAmplify(payload));
      }
      throw protocolError(step, 'the block is over');
    } catch (err) {
      this.end();
      if (err instanceof RoundProtocolError) throw err;
      // A library check that our validation should have caught first: still the peer's fault, still no key.
      throw protocolError(step, `rejected (${(err as Error).name}: ${(err as Error).message})`);
    }
  }

  private expectStep(step: string, expected: string): true {
    if (step !== expected) throw protocolError(step, `unexpected step (expected ${expected})`);
    return true;
  }

  abandon(): void {
    if (this.state !== 'done') this.end();
  }

  /** Ends the block here: no key, state wiped. */
  private end(): void {
    this.state = 'done';
    wipe(this.bobBits, this.sifted, this.remaining);
    this.bobBits = this.sifted = this.remaining = undefined;
    this.responder?.dispose();
    this.responder = undefined;
  }

  /** Charges the time since the current step began to its stage. */
  private charge(): void {
    if (!this.busy) return;
    const { step, started } = this.busy;
    this.watch.add(step === 'parities' ? 'cascade' : step, performance.now() - started);
    this.busy = undefined;
  }

  private finish(keys: Uint8Array[], reason: string | null): ReceiverStepResult['result'] {
    if (reason) Object.assign(this.stats, { aborted: true, reason, secretBits: 0, keyBits: 0, keys: 0 });
    this.charge();
    Object.assign(this.stats, this.watch.flat(true));
    this.end();
    this.onDone(this.stats);
    return { keys, stats: this.stats };
  }

  /** Records the message from Alice and Bob's reply in the transcript, returns the reply. */
  private reply(step: string, payload: unknown, reply: Record<string, unknown>): Record<string, unknown> {
    this.transcript.message('alice', step, payload);
    this.transcript.message('bob', step, reply);
    return reply;
  }

  private onAbort(payload: unknown): ReceiverStepResult {
    const f = expectFields(payload, 'abort', ['reason']);
    if (typeof f.reason !== 'string' || !(ABORT_REASONS as readonly string[]).includes(f.reason)) throw protocolError('abort', 'unknown reason');
    return { reply: { aborted: true }, result: this.finish([], f.reason) };
  }

  private onFrame(payload: unknown): ReceiverStepResult {
    const step = 'frame';
    const f = expectFields(payload, step, ['pulses', 'detections', 'states', 'bases', 'nonceA', 'channelHash']);
    const pulses = expectInt(f.pulses, 1, Number.MAX_SAFE_INTEGER, step, 'pulses');
    const k = expectInt(f.detections, 0, Math.min(pulses, MAX_FRAME_DETECTIONS), step, 'detections');
    expectString(f.channelHash, 64, NONCE_B64, step, 'channelHash');
    if (f.channelHash !== this.channelHash) {
      throw protocolError(step, 'the two modules simulate different channels (simulator.channel.* and simulator.eve must be equal at both ends)');
    }
    const nonceA = bytesFromBase64(f.nonceA, NONCE_BYTES, step, 'nonceA');
    const states = bitsFromBase64(f.states, k, step, 'states');
    const aliceBases = bitsFromBase64(f.bases, k, step, 'bases');
    // The rest of the channel model, at Bob's module: signal or dark count, Eve, misalignment, Bob's basis.
    const s = this.sim.settings;
    const { bobBits, bobBases } = receiveDetections(states, aliceBases, s.channel, s.eve, this.sim.physicsRng('bob', this.params));
    wipe(states, aliceBases); // Bob's module keeps only what Bob's detectors saw
    this.bobBits = bobBits;
    const nonceB = randomBytes(NONCE_BYTES);
    const reply = this.reply(step, payload, { bases: bitsToBase64(bobBases), nonceB: bytesToBase64(nonceB) });
    this.transcript.nonces(nonceA, nonceB);
    Object.assign(this.stats, { pulses, detections: k });
    this.state = 'sift';
    this.charge();
    return { reply };
  }

  private onSift(payload: unknown): ReceiverStepResult {
    const step = 'sift';
    const f = expectFields(payload, step, ['mask']);
    const bobBits = this.bobBits!;
    const mask = bitsFromBase64(f.mask, bobBits.length, step, 'mask');
    this.sifted = compressBits(bobBits, mask);
    wipe(bobBits);
    this.bobBits = undefined;
    if (this.sifted.length < 2) throw protocolError(step, 'the mask leaves fewer than 2 sifted bits');
    this.stats.siftedBits = this.sifted.length;
    this.state = 'estimate';
    this.charge();
    return { reply: this.reply(step, payload, { siftedBits: this.sifted.length }) };
  }

  private onEstimate(payload: unknown): ReceiverStepResult {
    const step = 'estimate';
    const f = expectFields(payload, step, ['seed', 'sampleSize']);
    const sifted = this.sifted!;
    const sampleSize = expectInt(f.sampleSize, 1, Math.min(sifted.length - 1, Math.ceil(sifted.length / 2)), step, 'sampleSize');
    const seed = bytesFromBase64(f.seed, SAMPLE_SEED_BYTES, step, 'seed');
    const { sample, remaining } = takeSample(sifted, { seed, sampleSize });
    wipe(sifted);
    this.sifted = undefined;
    this.remaining = remaining;
    this.sampleSize = sampleSize;
    Object.assign(this.stats, { sampleBits: sampleSize, remainingBits: remaining.length });
    this.state = 'decision';
    this.charge();
    return { reply: this.reply(step, payload, { sample: bitsToBase64(sample) }) };
  }

  private onParities(payload: unknown, first: boolean): ReceiverStepResult {
    const step = 'parities';
    const f = first
      ? expectFields(payload, step, ['count', 'questions', 'qber', 'sampleErrors', 'passes', 'shuffleSeed'])
      : expectFields(payload, step, ['count', 'questions']);
    if (first) this.startCascade(f);
    const count = expectInt(f.count, 1, MAX_QUESTION_BYTES / 3, step, 'count');
    const questions = decodeQuestions(f.questions, count, MAX_QUESTION_BYTES, step);
    const answers = this.responder!.answerPacked(questions);
    this.state = 'cascade';
    this.charge();
    return { reply: this.reply(step, payload, { parities: answersToBase64(answers) }) };
  }

  /** The first parities message carries Alice's decision to go on and the Cascade parameters. */
  private startCascade(f: Record<string, unknown>): void {
    const step = 'parities';
    const s = this.sim.settings;
    const remaining = this.remaining!;
    const k = this.sampleSize;
    const errors = expectInt(f.sampleErrors, 0, k, step, 'sampleErrors');
    const qber = expectNumber(f.qber, 0, 0.5, step, 'qber');
    if (qber !== errors / k) throw protocolError(step, 'qber is not sampleErrors / sampleSize');
    const qberUpper = qberUpperBound(errors, k, remaining.length, s.epsPE);
    if (qberUpper > s.qberThreshold) throw protocolError(step, "the QBER bound exceeds this module's simulator.qber_threshold (Alice should have aborted)");
    const passes = expectInt(f.passes, 1, MAX_PASSES, step, 'passes');
    const seed = bytesFromBase64(f.shuffleSeed, SHUFFLE_SEED_BYTES, step, 'shuffleSeed');
    this.qberUpper = qberUpper;
    this.stats.qberEstimate = qber; // Alice's estimate, checked above against her sample
    this.responder = new CascadeResponder(remaining, { ...BB84_CASCADE, estimatedQber: qber, passes }, seed);
  }

  private onVerify(payload: unknown): ReceiverStepResult {
    const step = 'verify';
    const f = expectFields(payload, step, ['seed', 'tag']);
    const seed = bytesFromBase64(f.seed, VERIFY_SEED_BYTES, step, 'seed');
    const tag = bytesFromBase64(f.tag, VERIFY_TAG_BYTES, step, 'tag');
    const match = tagsEqual(verifyTag(this.remaining!, seed), tag);
    this.stats.leakedBits = this.responder!.disclosedBits + VERIFY_TAG_BITS;
    const reply = this.reply(step, payload, { match });
    this.charge();
    if (!match) return { reply, result: this.finish([], 'verify-mismatch') };
    this.state = 'amplify';
    return { reply };
  }

  private async onAmplify(payload: unknown): Promise<ReceiverStepResult> {
    const step = 'amplify';
    const s = this.sim.settings;
    const { keyLengthBits, maxKeys } = this.params;
    const f = expectFields(payload, step, ['seed', 'hash', 'outputBits', 'keys', 'signature']);
    const family = s.paHash ?? DEFAULT_PA_HASH_FAMILY;
    if (f.hash !== family) throw protocolError(step, `hash is not this module's privacy-amplification family ${family} (set simulator.privacy_amplification alike at both ends)`);
    const keyCount = expectInt(f.keys, 1, maxKeys, step, 'keys');
    const outputBits = expectInt(f.outputBits, keyLengthBits, Number.MAX_SAFE_INTEGER, step, 'outputBits');
    if (outputBits !== keyCount * keyLengthBits) throw protocolError(step, 'outputBits must be keys × keyLengthBits');
    const remaining = this.remaining!;
    const n = remaining.length;
    // Bob's own finite-key bound, from what he disclosed: Alice may not ask for more key than it allows.
    const ownBound = secretKeyLength({ n, qberUpper: this.qberUpper, leakEC: this.responder!.disclosedBits + VERIFY_TAG_BITS, epsEC: s.epsEC, epsPA: s.epsPA });
    if (outputBits > ownBound) throw protocolError(step, "outputBits exceeds this module's finite-key bound (are simulator.eps_* equal at both ends?)");
    const seed = bitsFromBase64(f.seed, paSeedLength(family, n, outputBits), step, 'seed');
    const aliceSignature = bytesFromBase64(f.signature, this.auth.signatureBytes, step, 'signature');
    const { signature: _omitted, ...signedPart } = f;
    this.transcript.message('alice', step, signedPart);
    const aliceDigest = this.transcript.digest();
    const confirmBody = { confirmed: true, keys: keyCount };
    this.transcript.message('bob', step, confirmBody);
    const bobDigest = this.transcript.digest();
    // Both signature operations run in worker threads while this thread computes the Toeplitz product.
    const signStart = performance.now();
    const verifying = this.auth.verify(aliceSignature, confirmMessage('alice', aliceDigest));
    const signing = this.auth.sign(confirmMessage('bob', bobDigest));
    verifying.catch(() => undefined);
    signing.catch(() => undefined);
    const toeplitzStart = performance.now();
    const finalKey = paHash(family, remaining, seed, outputBits);
    this.watch.add('toeplitz', performance.now() - toeplitzStart);
    try {
      const [valid, signature] = await Promise.all([verifying, signing]);
      this.watch.add('sign', performance.now() - signStart);
      if (!valid) {
        return { reply: { confirmed: false, reason: 'signature-invalid' }, result: this.finish([], 'peer-signature-invalid') };
      }
      const keys = cutKeys(finalKey, keyCount, keyLengthBits);
      Object.assign(this.stats, { secretBits: ownBound, keyBits: outputBits, keys: keyCount });
      return { reply: { ...confirmBody, signature: bytesToBase64(signature) }, result: this.finish(keys, null) };
    } finally {
      wipe(finalKey);
    }
  }
}
