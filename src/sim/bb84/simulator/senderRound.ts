/**
 * Alice's side of one block: she drives every step of the protocol (docs/bb84.md; the message table is in
 * Bb84Simulator.ts) and returns keys only after Bob's signature over his transcript verifies.
 */
import { randomBytes } from 'node:crypto';
import type { RoundChannel, RoundParams, RoundResult, RoundStats } from '../../Simulator.js';
import { DEFAULT_PA_HASH_FAMILY, paHash, paSeedLength } from '../amplification/amplify.js';
import { BitArray } from '../common/bits.js';
import { cryptoRng, randomBits, type Rng } from '../common/rng.js';
import { drawDetectionCount } from '../detection/channel.js';
import { estimate, SAMPLE_SEED_BYTES } from '../estimation/estimate.js';
import { secretKeyLength } from '../estimation/finiteKey.js';
import { BB84_CASCADE, MAX_QUESTION_BYTES, NONCE_BYTES, type AbortReason, type DropReason } from '../protocol/messages.js';
import type { Bb84Settings } from '../protocol/settings.js';
import { chooseBlockPulses, MAX_FRAME_DETECTIONS, MIN_SIFTED_BITS, sampleSizeFor } from '../protocol/sizing.js';
import { confirmMessage, Transcript, type Party } from '../protocol/transcript.js';
import {
  answersFromBase64,
  bitsFromBase64,
  bitsToBase64,
  bytesFromBase64,
  bytesToBase64,
  encodeQuestions,
  expectBoolean,
  expectFields,
  expectString,
  protocolError,
} from '../protocol/wire.js';
import { efficiency, reconcile, SHUFFLE_SEED_BYTES, type CascadeParams, type ParityOracle } from '../reconciliation/cascade.js';
import { compressBits } from '../sifting/sift.js';
import { VERIFY_SEED_BYTES, VERIFY_TAG_BITS, verifyTag } from '../verification/verify.js';
import type { TranscriptAuthenticator } from './authenticator.js';
import { cutKeys, wipe } from './keyOutput.js';
import type { BlockOutcome } from './pacing.js';
import { round3, round6, Stopwatch } from './stopwatch.js';

/** What Alice's round needs from the simulator that runs it. */
export interface SenderLink {
  readonly settings: Bb84Settings;
  readonly auth: TranscriptAuthenticator;
  /** channelHash(settings), sent in the frame. */
  readonly channelHash: string;
  /** Expected sifted QBER of the configured channel (reported in stats). */
  readonly predictedQber: number;
  physicsRng(role: Party, params: RoundParams): Rng;
  waitForBlockStart(keyStreamId: string): Promise<number>;
  scheduleNextBlock(keyStreamId: string, scheduled: number, linkMs: number, outcome: BlockOutcome): void;
  logBlock(role: Party, params: RoundParams, stats: RoundStats): void;
}

/** The error a reply from the peer gets when it is malformed (Alice's side). */
function replyStep(step: string): string {
  return `${step} reply`;
}

/** Runs one block as Alice over `channel` (requests to Bob's module). */
export async function runSenderRound(link: SenderLink, params: RoundParams, channel: RoundChannel): Promise<RoundResult> {
  const s = link.settings;
  const { keyLengthBits, maxKeys } = params;
  const pulses = chooseBlockPulses(s, maxKeys, keyLengthBits);
  const linkSeconds = pulses / s.pulseRateHz;
  const scheduledStart = await link.waitForBlockStart(params.keyStreamId);
  let outcome: BlockOutcome = 'failed';

  const watch = new Stopwatch();
  const transcript = new Transcript(params);
  const stats: RoundStats = {
    pace: s.pace,
    pulses,
    linkSeconds: round6(linkSeconds),
    predictedQber: round6(link.predictedQber),
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
    link.logBlock('alice', params, stats);
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
    const rng = link.physicsRng('alice', params);
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
      channelHash: link.channelHash,
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
    const signing = link.auth.sign(confirmMessage('alice', transcript.digest()));
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
    const bobSignature = bytesFromBase64(cr.signature, link.auth.signatureBytes, replyStep('amplify'), 'signature');
    const { signature: _omitted, ...confirmBody } = cr;
    transcript.message('bob', 'amplify', confirmBody);
    const verifyStart = performance.now();
    const peerOk = await link.auth.verify(bobSignature, confirmMessage('bob', transcript.digest()));
    watch.add('sign', performance.now() - verifyStart);
    watch.lap('wait_sign');
    if (!peerOk) return finish([], 'peer-signature-invalid');
    const keys = cutKeys(finalKey, keyCount, keyLengthBits);
    Object.assign(stats, { keyBits: outputBits, keys: keyCount });
    return finish(keys, null);
  } finally {
    wipe(...secrets);
    link.scheduleNextBlock(params.keyStreamId, scheduledStart, linkSeconds * 1000, outcome);
  }
}
