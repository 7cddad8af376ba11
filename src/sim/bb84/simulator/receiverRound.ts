/**
 * Bob's side of one block: answers each step Alice sends, validating its input strictly (RoundProtocolError on
 * anything unexpected), and derives keys only after Alice's signature over her transcript verifies.
 */
import { randomBytes } from 'node:crypto';
import { RoundProtocolError, type ReceiverRound, type ReceiverStepResult, type RoundParams, type RoundStats } from '../../Simulator.js';
import { DEFAULT_PA_HASH_FAMILY, paHash, paSeedLength } from '../amplification/amplify.js';
import type { BitArray } from '../common/bits.js';
import type { Rng } from '../common/rng.js';
import { receiveDetections } from '../detection/channel.js';
import { qberUpperBound, SAMPLE_SEED_BYTES, takeSample } from '../estimation/estimate.js';
import { secretKeyLength } from '../estimation/finiteKey.js';
import { ABORT_REASONS, BB84_CASCADE, MAX_QUESTION_BYTES, NONCE_B64, NONCE_BYTES } from '../protocol/messages.js';
import type { Bb84Settings } from '../protocol/settings.js';
import { MAX_FRAME_DETECTIONS } from '../protocol/sizing.js';
import { confirmMessage, Transcript, type Party } from '../protocol/transcript.js';
import {
  answersToBase64,
  bitsFromBase64,
  bitsToBase64,
  bytesFromBase64,
  bytesToBase64,
  decodeQuestions,
  expectFields,
  expectInt,
  expectNumber,
  expectString,
  protocolError,
} from '../protocol/wire.js';
import { CascadeResponder, MAX_PASSES, SHUFFLE_SEED_BYTES } from '../reconciliation/cascade.js';
import { compressBits } from '../sifting/sift.js';
import { tagsEqual, VERIFY_SEED_BYTES, VERIFY_TAG_BITS, VERIFY_TAG_BYTES, verifyTag } from '../verification/verify.js';
import type { TranscriptAuthenticator } from './authenticator.js';
import { cutKeys, wipe } from './keyOutput.js';
import { Stopwatch } from './stopwatch.js';

/** What Bob's round needs from the simulator that runs it. */
export interface ReceiverLink {
  readonly settings: Bb84Settings;
  physicsRng(role: Party, params: RoundParams): Rng;
}

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
    private readonly sim: ReceiverLink,
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
      qberUpper: null,
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
    // The block's QBER as Alice measured it on Bob's sample, and Bob's own bound on it: Bob's stats show them too (dashboard).
    Object.assign(this.stats, { qberEstimate: qber, qberUpper });
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
