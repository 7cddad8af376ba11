/**
 * Bob's side of one round: answers each step Alice sends, validating its input strictly (RoundProtocolError on
 * anything unexpected), checks every count Alice announces against his own records, stores the EC block only after
 * Alice's signature over the transcript verifies, and derives keys (receiverAmplify.ts) only from his own records.
 */
import { randomBytes } from 'node:crypto';
import { RoundProtocolError, type ReceiverRound, type ReceiverStepResult, type RoundParams, type RoundStats } from '../../Simulator.js';
import { blockIdFor, countDisclosureBits, type EcBlockRecord } from '../accumulation/blockRecord.js';
import type { AccumulatedBlocks } from '../accumulation/heldBlocks.js';
import { BitArray } from '../common/bits.js';
import type { Rng } from '../common/rng.js';
import { measureDetectedPulses } from '../detection/detectedPulses.js';
import type { DetectionModel } from '../detection/detectionModel.js';
import { countPerIntensity, errorsPerIntensityAt, sumOf } from '../estimation/intensityCounts.js';
import { decodeCounts, decodeIntensities, decodeIntensitiesAt, encodeCounts } from '../protocol/decoyWire.js';
import { ABORT_REASONS, BB84_CASCADE, CHANNEL_HASH_SETTINGS, MAX_QUESTION_BYTES, NONCE_B64, NONCE_BYTES } from '../protocol/messages.js';
import type { Bb84Settings } from '../protocol/settings.js';
import { MAX_FRAME_DETECTIONS, maxBlocksPerPa, minKeyBits } from '../protocol/sizing.js';
import { confirmMessage, Transcript, type Party } from '../protocol/transcript.js';
import {
  answersToBase64,
  bitsFromChunks,
  bitsToChunks,
  bytesFromBase64,
  bytesToBase64,
  decodeQuestions,
  expectBoolean,
  expectFields,
  expectInt,
  expectNumber,
  expectString,
  protocolError,
} from '../protocol/wire.js';
import { CascadeResponder, MAX_PASSES, SHUFFLE_SEED_BYTES } from '../reconciliation/cascade.js';
import { compressBits } from '../sifting/sift.js';
import { tagsEqual, VERIFY_SEED_BYTES, VERIFY_TAG_BITS, VERIFY_TAG_BYTES, verifyTagCount, verifyTags } from '../verification/verify.js';
import type { TranscriptAuthenticator } from './authenticator.js';
import { wipe } from './keyOutput.js';
import { receiveAmplify, receiveSeed, type SeedChunks } from './receiverAmplify.js';
import { ecBlockStats, perIntensity } from './roundStats.js';
import { Stopwatch } from './stopwatch.js';

/** What Bob's round needs from the simulator that runs it. */
export interface ReceiverLink {
  readonly settings: Bb84Settings;
  readonly auth: TranscriptAuthenticator;
  readonly channelHash: string;
  readonly model: DetectionModel;
  readonly blocks: AccumulatedBlocks;
  physicsRng(role: Party, params: RoundParams): Rng;
}

type BobState = 'frame' | 'sift' | 'phase' | 'decision' | 'cascade' | 'accumulate' | 'amplify' | 'done';

/** States in which Alice may still abort the EC block. */
const ABORTABLE: ReadonlySet<BobState> = new Set(['sift', 'phase', 'decision', 'cascade']);

export class Bb84ReceiverRound implements ReceiverRound {
  private state: BobState = 'frame';
  readonly transcript: Transcript;
  readonly watch = new Stopwatch();
  readonly stats: RoundStats;
  private nonces: { a: Uint8Array; b: Uint8Array } | undefined;
  private pulses = 0;
  private detections: number[] = [];
  private bobBits: BitArray | undefined;
  private bobBases: BitArray | undefined;
  private eveKnows: BitArray | undefined;
  private bobX: BitArray | undefined;
  private bobZ: BitArray | undefined;
  /** After sift: the test-basis detections, and the announced intensity of every sifted detection (one mask each). */
  private zKept: BitArray | undefined;
  private intensityMasks: BitArray[] = [];
  private nX: number[] = [];
  private nZ: number[] = [];
  private mZ: number[] = [];
  private eveKnownBits = 0;
  private responder: CascadeResponder | undefined;
  private lambdaEC = 0;
  /** The Toeplitz seed's chunks, once the PA step began. */
  readonly seed: SeedChunks = { chunks: [], bits: 0 };
  private busy: { step: string; started: number } | undefined;

  constructor(
    readonly link: ReceiverLink,
    readonly params: RoundParams,
    private readonly onDone: (stats: RoundStats) => void,
  ) {
    this.transcript = new Transcript(params);
    this.stats = {
      pulses: null,
      detections: null,
      siftedBits: null,
      keyBasisBits: null,
      testBasisBits: null,
      qberZ: null,
      leakedBits: null,
      accumulated: false,
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
      if (step === 'abort' && ABORTABLE.has(this.state)) return this.onAbort(payload);
      switch (this.state) {
        case 'frame':
          return this.expectStep(step, 'frame') && this.onFrame(payload);
        case 'sift':
          return this.expectStep(step, 'sift') && this.onSift(payload);
        case 'phase':
          return this.expectStep(step, 'phase') && this.onPhase(payload);
        case 'decision':
          return this.expectStep(step, 'parities') && this.onParities(payload, true);
        case 'cascade':
          if (step === 'verify') return this.onVerify(payload);
          return this.expectStep(step, 'parities') && this.onParities(payload, false);
        case 'accumulate':
          return this.expectStep(step, 'accumulate') && (await this.onAccumulate(payload));
        case 'amplify':
          if (step === 'seed') return this.reply('seed', payload, receiveSeed(this, payload), true);
          return this.expectStep(step, 'amplify') && (await receiveAmplify(this, payload));
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

  /** Ends the round here: no key, state wiped. */
  end(): void {
    this.state = 'done';
    wipe(this.bobBits, this.bobBases, this.eveKnows, this.bobX, this.bobZ, ...this.seed.chunks);
    this.bobBits = this.bobBases = this.eveKnows = this.bobX = this.bobZ = undefined;
    this.seed.chunks = [];
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

  finish(keys: Uint8Array[], reason: string | null): ReceiverStepResult['result'] {
    if (reason) Object.assign(this.stats, { aborted: true, reason, keyBits: 0, keys: 0 });
    this.charge();
    Object.assign(this.stats, this.watch.flat(true));
    this.end();
    this.onDone(this.stats);
    return { keys, stats: this.stats };
  }

  /** Records the message from Alice and Bob's reply in the transcript, returns the reply. */
  reply(step: string, payload: unknown, reply: Record<string, unknown>, charge = false): ReceiverStepResult {
    this.transcript.message('alice', step, payload);
    this.transcript.message('bob', step, reply);
    if (charge) this.charge();
    return { reply };
  }

  /** The records of this round's EC block, once accumulated (receiverAmplify.ts). */
  get intensities(): number {
    return this.link.settings.source.intensities.length;
  }

  private onAbort(payload: unknown): ReceiverStepResult {
    const f = expectFields(payload, 'abort', ['reason']);
    if (typeof f.reason !== 'string' || !(ABORT_REASONS as readonly string[]).includes(f.reason)) throw protocolError('abort', 'unknown reason');
    return { reply: { aborted: true }, result: this.finish([], f.reason) };
  }

  private onFrame(payload: unknown): ReceiverStepResult {
    const step = 'frame';
    const f = expectFields(payload, step, ['pulses', 'detections', 'states', 'bases', 'intensities', 'nonceA', 'channelHash']);
    const pulses = expectInt(f.pulses, 1, Number.MAX_SAFE_INTEGER, step, 'pulses');
    const k = expectInt(f.detections, 0, Math.min(pulses, MAX_FRAME_DETECTIONS), step, 'detections');
    expectString(f.channelHash, 64, NONCE_B64, step, 'channelHash');
    if (f.channelHash !== this.link.channelHash) throw protocolError(step, `the two modules simulate different links or sizes (${CHANNEL_HASH_SETTINGS} must be equal at both ends)`);
    const nonceA = bytesFromBase64(f.nonceA, NONCE_BYTES, step, 'nonceA');
    const states = bitsFromChunks(f.states, k, step, 'states');
    const aliceBases = bitsFromChunks(f.bases, k, step, 'bases');
    const masks = decodeIntensities(f.intensities, k, this.intensities, step, 'intensities');
    // The simulated quantum channel at Bob's module: his basis, the cause of each click and its outcome.
    const measured = measureDetectedPulses(states, aliceBases, masks, this.link.model, this.link.physicsRng('bob', this.params));
    this.detections = masks.map((m) => m.popcount());
    wipe(states, aliceBases, ...masks); // Bob's module keeps only what Bob's detectors saw; Bob learns intensities at sift
    this.bobBits = measured.bobBits;
    this.bobBases = measured.bobBases;
    this.eveKnows = measured.eveKnows;
    this.pulses = pulses;
    const nonceB = randomBytes(NONCE_BYTES);
    const out = this.reply(step, payload, { bases: bitsToChunks(measured.bobBases), nonceB: bytesToBase64(nonceB) });
    this.transcript.nonces(nonceA, nonceB);
    this.nonces = { a: nonceA, b: nonceB };
    Object.assign(this.stats, { pulses, detections: k }, perIntensity('detections', this.detections));
    this.state = 'sift';
    this.charge();
    return out;
  }

  private onSift(payload: unknown): ReceiverStepResult {
    const step = 'sift';
    const f = expectFields(payload, step, ['mask', 'intensities']);
    const bobBits = this.bobBits!;
    const bases = this.bobBases!.words; // matching bases: Bob's basis is Alice's
    const mask = bitsFromChunks(f.mask, bobBits.length, step, 'mask');
    // The key-basis (X) and test-basis (Z) detections, and the announced intensities, over the detections: the
    // sifted bits and the sifted intensity masks are never built.
    const xKept = new BitArray(mask.length);
    const zKept = new BitArray(mask.length);
    for (let i = 0; i < mask.words.length; i++) {
      xKept.words[i] = mask.words[i]! & ~bases[i]!;
      zKept.words[i] = mask.words[i]! & bases[i]!;
    }
    const masks = decodeIntensitiesAt(f.intensities, mask, this.intensities, step, 'intensities');
    this.nX = countPerIntensity(xKept, masks);
    this.nZ = countPerIntensity(zKept, masks);
    if (this.link.settings.attack.kind !== 'none') this.eveKnownBits = countPerIntensity(xKept, [this.eveKnows!])[0]!;
    this.bobX = compressBits(bobBits, xKept);
    this.bobZ = compressBits(bobBits, zKept);
    this.zKept = zKept;
    this.intensityMasks = masks;
    wipe(bobBits, this.eveKnows);
    this.bobBits = this.eveKnows = undefined;
    const keyBasisBits = sumOf(this.nX);
    const testBasisBits = sumOf(this.nZ);
    const siftedBits = keyBasisBits + testBasisBits;
    Object.assign(this.stats, { siftedBits, keyBasisBits, testBasisBits }, perIntensity('nX', this.nX), perIntensity('nZ', this.nZ));
    if (keyBasisBits < minKeyBits(this.link.settings) || testBasisBits === 0) throw protocolError(step, 'the mask leaves too few key-basis or test-basis bits (Alice should have aborted)');
    this.state = 'phase';
    return this.reply(step, payload, { siftedBits, nX: encodeCounts(this.nX), nZ: encodeCounts(this.nZ) }, true);
  }

  private onPhase(payload: unknown): ReceiverStepResult {
    const step = 'phase';
    const f = expectFields(payload, step, ['bits']);
    const aliceZ = bitsFromChunks(f.bits, this.bobZ!.length, step, 'bits');
    this.mZ = errorsPerIntensityAt(aliceZ, this.bobZ!, this.zKept!, this.intensityMasks);
    this.zKept = undefined;
    this.intensityMasks = [];
    Object.assign(this.stats, ecBlockStats({ detections: this.detections, nX: this.nX, nZ: this.nZ, mZ: this.mZ }));
    this.state = 'decision';
    return this.reply(step, payload, { bits: bitsToChunks(this.bobZ!) }, true);
  }

  private onParities(payload: unknown, first: boolean): ReceiverStepResult {
    const step = 'parities';
    const f = first
      ? expectFields(payload, step, ['count', 'questions', 'qber', 'zErrors', 'passes', 'shuffleSeed'])
      : expectFields(payload, step, ['count', 'questions']);
    if (first) this.startCascade(f);
    const count = expectInt(f.count, 1, MAX_QUESTION_BYTES / 3, step, 'count');
    const questions = decodeQuestions(f.questions, count, MAX_QUESTION_BYTES, step);
    const answers = this.responder!.answerPacked(questions);
    this.state = 'cascade';
    return this.reply(step, payload, { parities: answersToBase64(answers) }, true);
  }

  /** The first parities message carries Alice's decision to go on and the Cascade parameters. */
  private startCascade(f: Record<string, unknown>): void {
    const step = 'parities';
    const s = this.link.settings;
    const testBits = sumOf(this.nZ);
    const zErrors = expectInt(f.zErrors, 0, testBits, step, 'zErrors');
    if (zErrors !== sumOf(this.mZ)) throw protocolError(step, 'zErrors differs from the test-basis errors counted here');
    const qber = expectNumber(f.qber, 0, 0.5, step, 'qber');
    if (qber !== zErrors / testBits) throw protocolError(step, 'qber is not zErrors / test-basis bits');
    if (qber > s.qberThreshold) throw protocolError(step, "the test-basis QBER exceeds this module's simulator.qber_threshold (Alice should have aborted)");
    const passes = expectInt(f.passes, 1, MAX_PASSES, step, 'passes');
    const seed = bytesFromBase64(f.shuffleSeed, SHUFFLE_SEED_BYTES, step, 'shuffleSeed');
    this.responder = new CascadeResponder(this.bobX!, { ...BB84_CASCADE, estimatedQber: qber, passes }, seed);
  }

  private onVerify(payload: unknown): ReceiverStepResult {
    const step = 'verify';
    const s = this.link.settings;
    const f = expectFields(payload, step, ['seed', 'tag']);
    const keyBits = sumOf(this.nX);
    const tags = verifyTagCount(keyBits, maxBlocksPerPa(s), s.epsCor / 2);
    const seed = bytesFromBase64(f.seed, tags * VERIFY_SEED_BYTES, step, 'seed');
    const tag = bytesFromBase64(f.tag, tags * VERIFY_TAG_BYTES, step, 'tag');
    const match = tagsEqual(verifyTags(this.bobX!, seed), tag);
    this.lambdaEC = this.responder!.disclosedBits + tags * VERIFY_TAG_BITS + countDisclosureBits(keyBits);
    this.stats.leakedBits = this.lambdaEC;
    const out = this.reply(step, payload, { match }, true);
    if (!match) return { ...out, result: this.finish([], 'verify-mismatch') };
    this.responder!.dispose();
    this.responder = undefined;
    this.state = 'accumulate';
    return out;
  }

  /** Alice's counts must be Bob's own; her signature must verify; then the block is stored here first. */
  private async onAccumulate(payload: unknown): Promise<ReceiverStepResult> {
    const step = 'accumulate';
    const s = this.link.settings;
    const K = this.intensities;
    const f = expectFields(payload, step, ['blockId', 'pulses', 'nX', 'nZ', 'mZ', 'lambdaEC', 'correctedErrors', 'amplify', 'signature']);
    const keyBits = sumOf(this.nX);
    const blockId = blockIdFor(this.nonces!.a, this.nonces!.b);
    if (f.blockId !== blockId) throw protocolError(step, 'blockId is not the one the nonces give');
    if (f.pulses !== this.pulses) throw protocolError(step, 'pulses differs from the frame');
    const counts = { nX: decodeCounts(f.nX, K, keyBits, step, 'nX'), nZ: decodeCounts(f.nZ, K, sumOf(this.nZ), step, 'nZ'), mZ: decodeCounts(f.mZ, K, sumOf(this.nZ), step, 'mZ') };
    if (encodeCounts(counts.nX) !== encodeCounts(this.nX) || encodeCounts(counts.nZ) !== encodeCounts(this.nZ) || encodeCounts(counts.mZ) !== encodeCounts(this.mZ)) {
      throw protocolError(step, "the block's counts differ from this module's records");
    }
    if (f.lambdaEC !== this.lambdaEC) throw protocolError(step, 'lambdaEC differs from the bits disclosed here');
    const correctedErrors = expectInt(f.correctedErrors, 0, keyBits, step, 'correctedErrors');
    if (correctedErrors / keyBits > s.qberThreshold) throw protocolError(step, "the corrected errors exceed this module's simulator.qber_threshold (Alice should have aborted)");
    const amplify = expectBoolean(f.amplify, step, 'amplify');
    const aliceSignature = bytesFromBase64(f.signature, this.link.auth.signatureBytes, step, 'signature');
    const { signature: _omitted, ...signedPart } = f;
    this.transcript.message('alice', step, signedPart);
    const aliceDigest = this.transcript.digest();
    const body = { appended: true };
    this.transcript.message('bob', step, body);
    const bobDigest = this.transcript.digest();
    // Both signature operations run in worker threads; Bob stores the block only once Alice's verified.
    const signStart = performance.now();
    const verifying = this.link.auth.verify(aliceSignature, confirmMessage('alice', aliceDigest));
    const signing = this.link.auth.sign(confirmMessage('bob', bobDigest));
    signing.catch(() => undefined);
    const valid = await verifying;
    if (!valid) {
      this.watch.add('sign', performance.now() - signStart);
      return { reply: { appended: false, reason: 'signature-invalid' }, result: this.finish([], 'peer-signature-invalid') };
    }
    const record: EcBlockRecord = {
      config: this.link.channelHash,
      pulses: this.pulses,
      siftedBits: this.stats.siftedBits as number,
      detections: this.detections,
      nX: this.nX,
      nZ: this.nZ,
      mZ: this.mZ,
      lambdaEC: this.lambdaEC,
      correctedErrors,
      ...(s.attack.kind !== 'none' ? { eveKnownBits: this.eveKnownBits } : {}),
    };
    await this.link.blocks.append(this.params.keyStreamId, blockId, this.bobX!, record);
    const signature = await signing;
    this.watch.add('sign', performance.now() - signStart);
    Object.assign(this.stats, { accumulated: true, correctedBits: correctedErrors, ...(s.attack.kind !== 'none' ? { eveKnownBits: this.eveKnownBits } : {}) });
    const reply = { ...body, signature: bytesToBase64(signature) };
    if (!amplify) return { reply, result: this.finish([], null) };
    wipe(this.bobX, this.bobZ);
    this.bobX = this.bobZ = undefined;
    this.state = 'amplify';
    this.charge();
    return { reply };
  }
}
