/**
 * Alice's side of one round (docs/bb84.md; the message table is in Bb84Simulator.ts): one EC block (frame, sift
 * with the decoy announcement, phase, Cascade, verify), then `accumulate`, and, when the stream's accumulated
 * key-basis bits reach simulator.pa_block_bits, the PA step (senderAmplify.ts) in the same round.
 */
import { randomBytes } from 'node:crypto';
import type { RoundChannel, RoundParams, RoundResult, RoundStats } from '../../Simulator.js';
import { blockIdFor, countDisclosureBits, type EcBlockRecord } from '../accumulation/blockRecord.js';
import type { AccumulatedBlocks } from '../accumulation/heldBlocks.js';
import { BitArray } from '../common/bits.js';
import type { Rng } from '../common/rng.js';
import { emitDetectedPulses } from '../detection/detectedPulses.js';
import type { DetectionModel } from '../detection/detectionModel.js';
import { countPerIntensity, errorsPerIntensityAt, sumOf } from '../estimation/intensityCounts.js';
import { decodeCounts, encodeCounts, encodeIntensities } from '../protocol/decoyWire.js';
import { BB84_CASCADE, MAX_QUESTION_BYTES, NONCE_BYTES, type AbortReason, type DropReason } from '../protocol/messages.js';
import type { Bb84Settings } from '../protocol/settings.js';
import { ecBlockPulses, MAX_FRAME_BYTES, MAX_FRAME_DETECTIONS, maxBlocksPerPa, minKeyBits } from '../protocol/sizing.js';
import { confirmMessage, Transcript, type Party } from '../protocol/transcript.js';
import {
  answersFromBase64,
  bitsFromChunks,
  bitsToChunks,
  bytesFromBase64,
  bytesToBase64,
  encodeQuestions,
  expectBoolean,
  expectFields,
  expectString,
  protocolError,
} from '../protocol/wire.js';
import { efficiency, reconcile, releaseKeyBits, SHUFFLE_SEED_BYTES, type CascadeParams, type ParityOracle } from '../reconciliation/cascade.js';
import { compressBits } from '../sifting/sift.js';
import { VERIFY_SEED_BYTES, VERIFY_TAG_BITS, verifyTagCount, verifyTags } from '../verification/verify.js';
import type { TranscriptAuthenticator } from './authenticator.js';
import { wipe } from './keyOutput.js';
import type { BlockOutcome } from './pacing.js';
import { ecBlockStats, perIntensity } from './roundStats.js';
import { runSenderAmplify } from './senderAmplify.js';
import { round3, round6, Stopwatch } from './stopwatch.js';

/** What Alice's round needs from the simulator that runs it. */
export interface SenderLink {
  readonly settings: Bb84Settings;
  readonly auth: TranscriptAuthenticator;
  /** channelHash(settings), sent in the frame and stored with every block. */
  readonly channelHash: string;
  /** The link's click model (honest or attacked), shared by both halves of the simulated channel. */
  readonly model: DetectionModel;
  /** This module's accumulated EC blocks. */
  readonly blocks: AccumulatedBlocks;
  physicsRng(role: Party, params: RoundParams): Rng;
  waitForBlockStart(keyStreamId: string): Promise<number>;
  scheduleNextBlock(keyStreamId: string, scheduled: number, linkMs: number, outcome: BlockOutcome): void;
  logBlock(role: Party, params: RoundParams, stats: RoundStats): void;
}

/** The error a reply from the peer gets when it is malformed (Alice's side). */
export function replyStep(step: string): string {
  return `${step} reply`;
}

/** Bytes of the frame's bit strings: bits and bases, then one nested intensity mask per intensity but the last. */
function frameBytes(detectionsPerIntensity: readonly number[]): number {
  const words = (n: number): number => (n + 31) >>> 5;
  let later = detectionsPerIntensity.reduce((a, b) => a + b, 0);
  let total = 2 * words(later);
  for (let j = 0; j < detectionsPerIntensity.length - 1; j++) {
    total += words(later);
    later -= detectionsPerIntensity[j]!;
  }
  return 4 * total;
}

/** The state one round of Alice carries from step to step (senderAmplify.ts continues it). */
export interface SenderRound {
  link: SenderLink;
  params: RoundParams;
  transcript: Transcript;
  stats: RoundStats;
  watch: Stopwatch;
  /** Arrays that held key bits, zeroed when the round ends. */
  secrets: (BitArray | Uint8Array | undefined)[];
  /** A request whose payload goes into the transcript (the caller records the reply once it validated it). */
  exchange(step: string, payload: Record<string, unknown>): Promise<unknown>;
  /** A request outside the transcript (abort, and the signed final messages). */
  request(step: string, payload: Record<string, unknown>): Promise<unknown>;
  finish(keys: Uint8Array[], reason: DropReason | null): RoundResult;
}

/** Runs one round as Alice over `channel` (requests to Bob's module). */
export async function runSenderRound(link: SenderLink, params: RoundParams, channel: RoundChannel): Promise<RoundResult> {
  const s = link.settings;
  const pulses = ecBlockPulses(s);
  const linkSeconds = pulses / s.pulseRateHz;
  const scheduledStart = await link.waitForBlockStart(params.keyStreamId);
  let outcome: BlockOutcome = 'failed';
  const stats: RoundStats = {
    pace: s.pace,
    pulses,
    linkSeconds: round6(linkSeconds),
    detections: null,
    siftedBits: null,
    keyBasisBits: null,
    testBasisBits: null,
    qberZ: null,
    leakedBits: null,
    cascadeEfficiency: null,
    cascadeRoundTrips: null,
    cascadeMessages: null,
    correctedBits: null,
    accumulated: false,
    accumulatedBits: null,
    accumulatedBlocks: null,
    secretBits: 0,
    keyBits: 0,
    keys: 0,
    aborted: false,
    reason: null,
  };
  let peerMs = 0;
  let requests = 0;
  const request = async (step: string, payload: Record<string, unknown>): Promise<unknown> => {
    const t0 = performance.now();
    try {
      return await channel.request(step, payload);
    } finally {
      peerMs += performance.now() - t0;
      requests++;
    }
  };
  const watch = new Stopwatch();
  const round: SenderRound = {
    link,
    params,
    transcript: new Transcript(params),
    stats,
    watch,
    secrets: [],
    request,
    exchange: async (step, payload) => {
      round.transcript.message('alice', step, payload);
      return request(step, payload);
    },
    finish: (keys, reason) => {
      if (reason) Object.assign(stats, { aborted: true, reason, keyBits: 0, keys: 0 });
      Object.assign(stats, watch.flat(), { ms_peer: round3(peerMs), requests });
      link.logBlock('alice', params, stats);
      outcome = keys.length > 0 ? 'keys' : stats.accumulated === true && !reason ? 'accumulated' : 'keyless';
      return { keys, stats };
    },
  };
  try {
    return await runEcBlock(round, pulses);
  } finally {
    wipe(...round.secrets);
    releaseKeyBits(...round.secrets); // the pooled corrected key goes back to its pool (zeroed again); other arrays are ignored
    link.scheduleNextBlock(params.keyStreamId, scheduledStart, linkSeconds * 1000, outcome);
  }
}

async function runEcBlock(round: SenderRound, pulses: number): Promise<RoundResult> {
  const { link, params, transcript, stats, watch, secrets } = round;
  const s = link.settings;
  const K = s.source.intensities.length;
  const abort = async (reason: AbortReason): Promise<RoundResult> => {
    const reply = await round.request('abort', { reason });
    const f = expectFields(reply, replyStep('abort'), ['aborted']);
    if (f.aborted !== true) throw protocolError(replyStep('abort'), 'aborted must be true');
    return round.finish([], reason);
  };

  // 1. frame: the quantum channel. Loss (and an attack) act here; Bob's module measures the detected pulses.
  const emitted = emitDetectedPulses(pulses, link.model, link.physicsRng('alice', params));
  secrets.push(emitted.bits);
  const k = emitted.detections;
  // The block is sized for 98 % of a frame on average; a draw far above that fails the round (it is retried).
  if (k > MAX_FRAME_DETECTIONS || frameBytes(emitted.detectionsPerIntensity) > MAX_FRAME_BYTES) throw new Error(`bb84 frame: ${k} detections exceed the frame limit (lower simulator.block_pulses)`);
  stats.detections = k;
  Object.assign(stats, perIntensity('detections', emitted.detectionsPerIntensity));
  const nonceA = randomBytes(NONCE_BYTES);
  const frameReply = await round.exchange('frame', {
    pulses,
    detections: k,
    states: bitsToChunks(emitted.bits),
    bases: bitsToChunks(emitted.bases),
    intensities: encodeIntensities(emitted.intensityMasks),
    nonceA: bytesToBase64(nonceA),
    channelHash: link.channelHash,
  });
  const fr = expectFields(frameReply, replyStep('frame'), ['bases', 'nonceB']);
  const bobBases = bitsFromChunks(fr.bases, k, replyStep('frame'), 'bases');
  const nonceB = bytesFromBase64(fr.nonceB, NONCE_BYTES, replyStep('frame'), 'nonceB');
  transcript.message('bob', 'frame', frameReply);
  transcript.nonces(nonceA, nonceB);
  watch.lap('frame');

  // 2. sift: the detections measured in Alice's basis, and the intensity of each (the decoy announcement). The
  // key-basis (X) and test-basis (Z) detections are selected straight from the detections: the sifted bits and the
  // sifted intensity masks are never built (the announcement is encoded from the detections' masks).
  const match = new BitArray(k);
  const xKept = new BitArray(k);
  const zKept = new BitArray(k); // the test basis is Z (1)
  for (let i = 0; i < match.words.length; i++) {
    const b = emitted.bases.words[i]!;
    const m = ~(b ^ bobBases.words[i]!);
    match.words[i] = m;
    xKept.words[i] = m & ~b;
    zKept.words[i] = m & b;
  }
  match.clearTail();
  xKept.clearTail();
  zKept.clearTail();
  const aliceX = compressBits(emitted.bits, xKept);
  const aliceZ = compressBits(emitted.bits, zKept);
  secrets.push(aliceX, aliceZ);
  wipe(emitted.bits);
  const siftedBits = aliceX.length + aliceZ.length;
  const nX = countPerIntensity(xKept, emitted.intensityMasks);
  const nZ = countPerIntensity(zKept, emitted.intensityMasks);
  const keyBasisBits = sumOf(nX);
  const testBasisBits = sumOf(nZ);
  Object.assign(stats, { siftedBits, keyBasisBits, testBasisBits }, perIntensity('nX', nX), perIntensity('nZ', nZ));
  if (keyBasisBits < minKeyBits(s) || testBasisBits === 0) return await abort('too-few-bits');
  const siftReply = await round.exchange('sift', { mask: bitsToChunks(match), intensities: encodeIntensities(emitted.intensityMasks, match) });
  const sr = expectFields(siftReply, replyStep('sift'), ['siftedBits', 'nX', 'nZ']);
  if (sr.siftedBits !== siftedBits) throw protocolError(replyStep('sift'), 'siftedBits differs from the mask');
  const bobNX = decodeCounts(sr.nX, K, siftedBits, replyStep('sift'), 'nX');
  const bobNZ = decodeCounts(sr.nZ, K, siftedBits, replyStep('sift'), 'nZ');
  if (encodeCounts(bobNX) !== encodeCounts(nX) || encodeCounts(bobNZ) !== encodeCounts(nZ)) throw protocolError(replyStep('sift'), 'the per-intensity counts differ from the announcement');
  transcript.message('bob', 'sift', siftReply);
  watch.lap('sift');

  // 3. phase: both disclose their Z bits (never key); each counts the errors per intensity.
  const phaseReply = await round.exchange('phase', { bits: bitsToChunks(aliceZ) });
  const pr = expectFields(phaseReply, replyStep('phase'), ['bits']);
  const bobZ = bitsFromChunks(pr.bits, testBasisBits, replyStep('phase'), 'bits');
  transcript.message('bob', 'phase', phaseReply);
  const mZ = errorsPerIntensityAt(aliceZ, bobZ, zKept, emitted.intensityMasks);
  const zErrors = sumOf(mZ);
  const qberZ = zErrors / testBasisBits;
  Object.assign(stats, ecBlockStats({ detections: emitted.detectionsPerIntensity, nX, nZ, mZ }), { keyBasisBits, testBasisBits });
  watch.lap('phase');
  // Lim 2014 bounds the phase error over the whole PA block; an EC block this noisy is refused outright.
  if (qberZ > s.qberThreshold) return await abort('qber-too-high');

  // 4. Cascade on the X bits: Alice asks, Bob answers from his; Alice's X bits end equal to Bob's.
  const cascadeParams: CascadeParams = { ...BB84_CASCADE, estimatedQber: qberZ, passes: s.cascadePasses };
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
          Object.assign(payload, { qber: qberZ, zErrors, passes: cascadeParams.passes, shuffleSeed: bytesToBase64(shuffleSeed) });
          setupSent = true;
        }
        const reply = await round.exchange('parities', payload);
        const f = expectFields(reply, replyStep('parities'), ['parities']);
        answers.set(answersFromBase64(f.parities, chunk.count, replyStep('parities')), offset);
        transcript.message('bob', 'parities', reply);
        offset += chunk.count;
        messages++;
      }
      return answers;
    },
  };
  const rec = await reconcile(aliceX, cascadeParams, shuffleSeed, oracle);
  const corrected = rec.corrected;
  secrets.push(corrected);
  const tags = verifyTagCount(keyBasisBits, maxBlocksPerPa(s), s.epsCor / 2);
  const lambdaEC = rec.leakedBits + tags * VERIFY_TAG_BITS + countDisclosureBits(keyBasisBits);
  Object.assign(stats, {
    leakedBits: lambdaEC,
    cascadeRoundTrips: rec.roundTrips,
    cascadeMessages: messages,
    correctedBits: rec.correctedBits,
    cascadeEfficiency: rec.correctedBits > 0 ? round6(efficiency(rec.leakedBits, keyBasisBits, rec.correctedBits / keyBasisBits)) : null,
  });
  watch.lap('cascade');
  // The key basis turned out noisier than the estimate allowed.
  if (rec.correctedBits / keyBasisBits > s.qberThreshold) return await abort('qber-too-high');

  // 5. verify: fresh universal hashes of the corrected X bits, as many as the eps_cor budget asks.
  const verifySeed = randomBytes(tags * VERIFY_SEED_BYTES);
  const tag = verifyTags(corrected, verifySeed);
  const verReply = await round.exchange('verify', { seed: bytesToBase64(verifySeed), tag: bytesToBase64(tag) });
  const vr = expectFields(verReply, replyStep('verify'), ['match']);
  const tagsMatch = expectBoolean(vr.match, replyStep('verify'), 'match');
  transcript.message('bob', 'verify', verReply);
  watch.lap('verify');
  if (!tagsMatch) return round.finish([], 'verify-mismatch');

  // 6. accumulate: both ends store the block with its counts, each after the other's signature verified (Bob first).
  const blockId = blockIdFor(nonceA, nonceB);
  const record: EcBlockRecord = { config: link.channelHash, pulses, siftedBits: stats.siftedBits as number, detections: emitted.detectionsPerIntensity, nX, nZ, mZ, lambdaEC, correctedErrors: rec.correctedBits };
  const before = await link.blocks.held(params.keyStreamId);
  const heldBits = before.reduce((a, b) => a + b.bitLength, 0);
  for (const b of before) b.bits.fill(0);
  const amplify = heldBits + keyBasisBits >= s.paBlockBits;
  const payload = {
    blockId,
    pulses,
    nX: encodeCounts(nX),
    nZ: encodeCounts(nZ),
    mZ: encodeCounts(mZ),
    lambdaEC,
    correctedErrors: rec.correctedBits,
    amplify,
  };
  transcript.message('alice', 'accumulate', payload);
  const signStart = performance.now();
  const signature = await link.auth.sign(confirmMessage('alice', transcript.digest()));
  watch.add('sign', performance.now() - signStart);
  watch.lap('wait_sign');
  const reply = await round.request('accumulate', { ...payload, signature: bytesToBase64(signature) });
  watch.lap('confirm');
  const ar = expectFields(reply, replyStep('accumulate'), ['appended'], ['signature', 'reason']);
  if (!expectBoolean(ar.appended, replyStep('accumulate'), 'appended')) {
    expectString(ar.reason, 64, /^[a-z-]+$/, replyStep('accumulate'), 'reason');
    return round.finish([], 'peer-rejected-signature');
  }
  const bobSignature = bytesFromBase64(ar.signature, link.auth.signatureBytes, replyStep('accumulate'), 'signature');
  transcript.message('bob', 'accumulate', { appended: true });
  const verifyStart = performance.now();
  const peerOk = await link.auth.verify(bobSignature, confirmMessage('bob', transcript.digest()));
  watch.add('sign', performance.now() - verifyStart);
  watch.lap('wait_sign');
  // Bob holds the block already; without his valid signature Alice does not: the PA's lists settle it.
  if (!peerOk) return round.finish([], 'peer-signature-invalid');
  await link.blocks.append(params.keyStreamId, blockId, corrected, record);
  Object.assign(stats, { accumulated: true, accumulatedBits: heldBits + keyBasisBits, accumulatedBlocks: before.length + 1 });
  watch.lap('accumulate');
  if (!amplify) return round.finish([], null);
  return runSenderAmplify(round);
}
