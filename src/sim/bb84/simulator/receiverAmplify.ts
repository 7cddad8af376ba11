/**
 * Bob's PA step: the Toeplitz seed's chunks, then `amplify`. Bob acts on nothing before Alice's signature over the
 * transcript verifies; then he compares her block list with his own (`blocks-differ`: he erases his blocks she
 * lacks and answers with his list, signed), her counts digest with his records, and her output length with his
 * own Lim 2014 bound over his own records; he consumes (erases durably) the blocks before he derives the keys.
 */
import type { ReceiverStepResult } from '../../Simulator.js';
import { BLOCK_ID_PATTERN } from '../../../store/ReconciledBlockStore.js';
import { countsDigest, sumRecords } from '../accumulation/blockRecord.js';
import { paInput, wipeHeld } from '../accumulation/heldBlocks.js';
import { PA_ABORT_REASONS, paKeyLength, singlePhotonOnlyBits, type PaAbortReason } from '../accumulation/paSizing.js';
import { DEFAULT_PA_HASH_FAMILY, paHash, paSeedLength } from '../amplification/amplify.js';
import { BitArray } from '../common/bits.js';
import { decodeBlockIds, encodeBlockIds } from '../protocol/decoyWire.js';
import { NONCE_B64 } from '../protocol/messages.js';
import { decoySettings } from '../protocol/settings.js';
import { maxBlocksPerPa, maxSeedChunks, SEED_CHUNK_BITS } from '../protocol/sizing.js';
import { confirmMessage } from '../protocol/transcript.js';
import { bitsFromChunks, bytesFromBase64, bytesToBase64, expectFields, expectInt, expectString, protocolError } from '../protocol/wire.js';
import { cutKeys, wipe } from './keyOutput.js';
import type { Bb84ReceiverRound } from './receiverRound.js';
import { paBlockStats, secretFigures } from './roundStats.js';

/** The seed chunks received so far. */
export interface SeedChunks {
  chunks: BitArray[];
  bits: number;
}

/** One `seed` message: the next chunk, every chunk but the last SEED_CHUNK_BITS long. Returns Bob's reply. */
export function receiveSeed(round: Bb84ReceiverRound, payload: unknown): Record<string, unknown> {
  const step = 'seed';
  const f = expectFields(payload, step, ['index', 'length', 'bits']);
  const seed = round.seed;
  const index = expectInt(f.index, 0, maxSeedChunks(round.link.settings) - 1, step, 'index');
  if (index !== seed.chunks.length) throw protocolError(step, 'index is not the next chunk');
  if (index > 0 && seed.chunks[index - 1]!.length !== SEED_CHUNK_BITS) throw protocolError(step, 'only the last chunk may be shorter');
  const length = expectInt(f.length, 1, SEED_CHUNK_BITS, step, 'length');
  seed.chunks.push(bitsFromChunks(f.bits, length, step, 'bits'));
  seed.bits += length;
  return { received: index };
}

/** The seed's chunks as one bit string (every chunk but the last is whole words). */
function joinSeed(seed: SeedChunks): BitArray {
  const words = new Uint32Array((seed.bits + 31) >>> 5);
  let at = 0;
  for (const c of seed.chunks) {
    words.set(c.words, at);
    at += c.words.length;
  }
  return new BitArray(seed.bits, words);
}

export async function receiveAmplify(round: Bb84ReceiverRound, payload: unknown): Promise<ReceiverStepResult> {
  const step = 'amplify';
  const { link, params, transcript, stats, watch } = round;
  const s = link.settings;
  const stream = params.keyStreamId;
  const f = expectFields(payload, step, ['blockIds', 'countsDigest', 'hash', 'outputBits', 'keys', 'signature'], ['reason']);
  const family = s.paHash ?? DEFAULT_PA_HASH_FAMILY;
  if (f.hash !== family) throw protocolError(step, `hash is not this module's privacy-amplification family ${family} (set simulator.privacy_amplification alike at both ends)`);
  const ids = decodeBlockIds(f.blockIds, maxBlocksPerPa(s), BLOCK_ID_PATTERN, step, 'blockIds');
  if (ids.length === 0) throw protocolError(step, 'blockIds is empty');
  expectString(f.countsDigest, 44, NONCE_B64, step, 'countsDigest');
  const keyCount = expectInt(f.keys, 0, params.maxKeys, step, 'keys');
  const outputBits = expectInt(f.outputBits, 0, Number.MAX_SAFE_INTEGER, step, 'outputBits');
  if (outputBits !== keyCount * params.keyLengthBits) throw protocolError(step, 'outputBits must be keys × keyLengthBits');
  let reason: PaAbortReason | undefined;
  if (f.reason !== undefined) {
    if (!(PA_ABORT_REASONS as readonly unknown[]).includes(f.reason)) throw protocolError(step, 'unknown reason');
    reason = f.reason as PaAbortReason;
    if (keyCount !== 0 || round.seed.chunks.length > 0) throw protocolError(step, 'an aborted PA block has no keys and no seed');
  } else if (keyCount === 0) {
    throw protocolError(step, 'keys must be at least 1 unless the PA block is aborted with a reason');
  }
  const aliceSignature = bytesFromBase64(f.signature, link.auth.signatureBytes, step, 'signature');
  const { signature: _omitted, ...signedPart } = f;
  transcript.message('alice', step, signedPart);
  const signStart = performance.now();
  const valid = await link.auth.verify(aliceSignature, confirmMessage('alice', transcript.digest()));
  watch.add('sign', performance.now() - signStart);
  // Nothing is erased or derived on the word of an unauthenticated message.
  if (!valid) return { reply: { confirmed: false, reason: 'signature-invalid' }, result: round.finish([], 'peer-signature-invalid') };

  let held = await link.blocks.held(stream);
  try {
    const mine = held.map((b) => b.id);
    const hers = new Set(ids);
    if (mine.length !== ids.length || mine.some((id) => !hers.has(id))) {
      // Orphans of a crash: each end erases the blocks the other lacks; no key from this PA step.
      const orphans = mine.filter((id) => !hers.has(id));
      await link.blocks.consume(stream, orphans);
      const body = { confirmed: false, reason: 'blocks-differ', held: encodeBlockIds(mine.filter((id) => hers.has(id))) };
      transcript.message('bob', step, body);
      const signature = await link.auth.sign(confirmMessage('bob', transcript.digest()));
      Object.assign(stats, { orphansErased: orphans.length });
      return { reply: { ...body, signature: bytesToBase64(signature) }, result: round.finish([], 'blocks-differ') };
    }
    // Alice's order (the append order at both ends, unless a store reordered): the PA input is the same string.
    const byId = new Map(held.map((b) => [b.id, b]));
    held = ids.map((id) => byId.get(id)!);
    if (countsDigest(held.map((b) => ({ id: b.id, counts: b.record }))) !== f.countsDigest) {
      throw protocolError(step, "countsDigest differs from this module's records of the blocks");
    }
    // Bob's own bound, from his own records: Alice may not ask for more key than it allows.
    const decoy = decoySettings(s);
    const sum = sumRecords(held.map((b) => b.record), round.intensities);
    const n = held.reduce((a, b) => a + b.bitLength, 0);
    const pa = paKeyLength(sum, decoy);
    Object.assign(stats, paBlockStats(sum, pa.bounds, s), {
      singlePhotonOnlyBits: singlePhotonOnlyBits(sum, decoy),
      ...secretFigures(pa.ok ? pa.length : 0, sum.siftedBits),
      paAbort: pa.ok ? null : pa.code,
      ...(s.attack.kind !== 'none' ? { paEveKnownBits: sum.eveKnownBits } : {}),
    });
    if (!reason) {
      if (!pa.ok) throw protocolError(step, `outputBits exceeds this module's finite-key bound: Lim 2014 gives no key for these blocks here (${pa.code})`);
      if (outputBits > pa.length || outputBits >= n) throw protocolError(step, "outputBits exceeds this module's finite-key bound (are simulator.eps_sec and eps_cor equal at both ends?)");
      if (round.seed.bits !== paSeedLength(family, n, outputBits)) throw protocolError(step, 'the seed chunks do not add up to the seed length of the hash family');
    }
    // Consumed before any key exists: a crash from here on loses these bits, never uses them twice.
    await link.blocks.consume(stream, ids);
    const body = { confirmed: true, keys: keyCount };
    transcript.message('bob', step, body);
    const signing = link.auth.sign(confirmMessage('bob', transcript.digest()));
    signing.catch(() => undefined);
    let keys: Uint8Array[] = [];
    if (!reason) {
      const toeplitzStart = performance.now();
      const input = paInput(held);
      const seed = joinSeed(round.seed);
      const finalKey = paHash(family, input, seed, outputBits);
      watch.add('toeplitz', performance.now() - toeplitzStart);
      keys = cutKeys(finalKey, keyCount, params.keyLengthBits);
      wipe(input, seed, finalKey);
      Object.assign(stats, { keyBits: outputBits, keys: keyCount });
    }
    const signature = await signing;
    return { reply: { ...body, signature: bytesToBase64(signature) }, result: round.finish(keys, reason ?? null) };
  } finally {
    wipeHeld(held);
  }
}
