/**
 * Alice's PA step (docs/bb84.md, "The PA block"): her held EC blocks of the stream, Lim 2014's length over their
 * summed counts, the Toeplitz seed (in `seed` chunks), then `amplify` with her block list and counts digest, signed.
 * Bob answers with keys, with `blocks-differ` and his own list (orphans after a crash: each end erases the blocks
 * the other lacks), or refuses. Alice consumes her blocks (durably) before she returns keys: a crash in between
 * loses those bits, never uses them twice.
 */
import type { RoundResult } from '../../Simulator.js';
import { countsDigest, sumRecords } from '../accumulation/blockRecord.js';
import { paInput, wipeHeld, type HeldBlock } from '../accumulation/heldBlocks.js';
import { paKeyLength, singlePhotonOnlyBits, type PaAbortReason } from '../accumulation/paSizing.js';
import { DEFAULT_PA_HASH_FAMILY, paHash, paSeedLength } from '../amplification/amplify.js';
import { BitArray } from '../common/bits.js';
import { cryptoRng, randomBits } from '../common/rng.js';
import { encodeBlockIds, decodeBlockIds } from '../protocol/decoyWire.js';
import { decoySettings } from '../protocol/settings.js';
import { maxBlocksPerPa, SEED_CHUNK_BITS } from '../protocol/sizing.js';
import { confirmMessage } from '../protocol/transcript.js';
import { bitsToChunks, bytesFromBase64, bytesToBase64, expectBoolean, expectFields, expectInt, expectString, protocolError } from '../protocol/wire.js';
import { BLOCK_ID_PATTERN } from '../../../store/ReconciledBlockStore.js';
import { cutKeys } from './keyOutput.js';
import { paBlockStats, secretFigures } from './roundStats.js';
import { replyStep, type SenderRound } from './senderRound.js';

export async function runSenderAmplify(round: SenderRound): Promise<RoundResult> {
  const { link, params, transcript, stats, watch, secrets } = round;
  const s = link.settings;
  const stream = params.keyStreamId;
  let held = await link.blocks.held(stream);
  try {
    // Only after PA steps failed again and again can a stream hold more blocks than one PA block may: the oldest go.
    const limit = maxBlocksPerPa(s);
    if (held.length > limit) {
      const excess = held.slice(0, held.length - limit);
      await link.blocks.consume(stream, excess.map((b) => b.id));
      wipeHeld(excess);
      held = held.slice(held.length - limit);
    }
    const decoy = decoySettings(s);
    const sum = sumRecords(held.map((b) => b.record), s.source.intensities.length);
    const n = held.reduce((a, b) => a + b.bitLength, 0);
    const pa = paKeyLength(sum, decoy);
    Object.assign(stats, paBlockStats(sum, pa.bounds, s), { singlePhotonOnlyBits: singlePhotonOnlyBits(sum, decoy), paAbort: pa.ok ? null : pa.code }, secretFigures(pa.ok ? pa.length : 0, sum.siftedBits));
    const family = s.paHash ?? DEFAULT_PA_HASH_FAMILY;
    let keyCount = 0;
    let reason: PaAbortReason | undefined;
    if (!pa.ok) reason = pa.reason;
    else {
      // Output = min(l, the keys the round can store); the rest of l is not kept (docs/bb84.md).
      keyCount = Math.min(params.maxKeys, Math.floor(Math.min(pa.length, n - 1) / params.keyLengthBits));
      if (keyCount === 0) reason = 'no-secret-key';
    }
    const outputBits = keyCount * params.keyLengthBits;
    watch.lap('pa_length');

    // The Toeplitz seed, drawn now that every EC block of the PA block is fixed, in chunks of SEED_CHUNK_BITS.
    let seed: BitArray | undefined;
    if (!reason) {
      seed = randomBits(cryptoRng(), paSeedLength(family, n, outputBits));
      for (let index = 0, offset = 0; offset < seed.length; index++, offset += SEED_CHUNK_BITS) {
        const length = Math.min(SEED_CHUNK_BITS, seed.length - offset);
        const chunk = new BitArray(length, seed.words.slice(offset >>> 5, (offset + length + 31) >>> 5));
        const reply = await round.exchange('seed', { index, length, bits: bitsToChunks(chunk) });
        const f = expectFields(reply, replyStep('seed'), ['received']);
        if (f.received !== index) throw protocolError(replyStep('seed'), 'received is not the chunk sent');
        transcript.message('bob', 'seed', reply);
      }
      watch.lap('seed');
    }

    const ids = held.map((b) => b.id);
    const payload: Record<string, unknown> = {
      blockIds: encodeBlockIds(ids),
      countsDigest: countsDigest(held.map((b) => ({ id: b.id, counts: b.record }))),
      hash: family,
      outputBits,
      keys: keyCount,
      ...(reason ? { reason } : {}),
    };
    transcript.message('alice', 'amplify', payload);
    const signStart = performance.now();
    const signature = await link.auth.sign(confirmMessage('alice', transcript.digest()));
    watch.add('sign', performance.now() - signStart);
    watch.lap('wait_sign');
    const replying = round.request('amplify', { ...payload, signature: bytesToBase64(signature) });
    replying.catch(() => undefined); // awaited below; keeps an early rejection from being unhandled
    // The Toeplitz product overlaps Bob's work; the keys leave this function only after the blocks are consumed.
    let finalKey: BitArray | undefined;
    if (!reason) {
      const input = paInput(held);
      secrets.push(input, seed);
      finalKey = paHash(family, input, seed!, outputBits);
      secrets.push(finalKey);
      watch.lap('amplify');
    }
    const reply = await replying;
    watch.lap('confirm');
    const cr = expectFields(reply, replyStep('amplify'), ['confirmed'], ['keys', 'signature', 'reason', 'held']);
    if (!expectBoolean(cr.confirmed, replyStep('amplify'), 'confirmed')) {
      const why = expectString(cr.reason, 64, /^[a-z-]+$/, replyStep('amplify'), 'reason');
      if (why === 'blocks-differ') return await settleBlockLists(round, held, cr);
      return round.finish([], 'peer-rejected-signature');
    }
    if (cr.keys !== keyCount || cr.held !== undefined || cr.reason !== undefined) throw protocolError(replyStep('amplify'), 'keys differs from the count sent');
    const bobSignature = bytesFromBase64(cr.signature, link.auth.signatureBytes, replyStep('amplify'), 'signature');
    transcript.message('bob', 'amplify', { confirmed: true, keys: keyCount });
    const verifyStart = performance.now();
    const peerOk = await link.auth.verify(bobSignature, confirmMessage('bob', transcript.digest()));
    watch.add('sign', performance.now() - verifyStart);
    watch.lap('wait_sign');
    // Bob consumed the blocks before he answered: they are spent either way.
    await link.blocks.consume(stream, ids);
    watch.lap('consume');
    if (!peerOk) return round.finish([], 'peer-signature-invalid');
    if (reason) return round.finish([], reason);
    const keys = cutKeys(finalKey!, keyCount, params.keyLengthBits);
    Object.assign(stats, { keyBits: outputBits, keys: keyCount });
    return round.finish(keys, null);
  } finally {
    wipeHeld(held);
  }
}

/** Bob holds other blocks than Alice: once his signed list verifies, Alice erases hers that he lacks. */
async function settleBlockLists(round: SenderRound, held: readonly HeldBlock[], reply: Record<string, unknown>): Promise<RoundResult> {
  const { link, params, transcript, watch } = round;
  const bobHeld = decodeBlockIds(reply.held, maxBlocksPerPa(link.settings) + 1, BLOCK_ID_PATTERN, replyStep('amplify'), 'held');
  const bobSignature = bytesFromBase64(reply.signature, link.auth.signatureBytes, replyStep('amplify'), 'signature');
  if (reply.keys !== undefined) expectInt(reply.keys, 0, 0, replyStep('amplify'), 'keys');
  transcript.message('bob', 'amplify', { confirmed: false, reason: 'blocks-differ', held: reply.held });
  const peerOk = await link.auth.verify(bobSignature, confirmMessage('bob', transcript.digest()));
  watch.lap('wait_sign');
  if (!peerOk) return round.finish([], 'peer-signature-invalid');
  const his = new Set(bobHeld);
  const orphans = held.filter((b) => !his.has(b.id)).map((b) => b.id);
  await link.blocks.consume(params.keyStreamId, orphans);
  Object.assign(round.stats, { orphansErased: orphans.length });
  return round.finish([], 'blocks-differ');
}
