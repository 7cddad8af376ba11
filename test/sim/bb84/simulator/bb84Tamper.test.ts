/**
 * An active attacker on the classical channel between the two halves of the BB84 simulator: altered, dropped,
 * replayed (from an earlier round) and reordered or repeated messages, forged counts, block lists, output lengths
 * and intensity announcements. Whatever is done, no key gets committed from the round: Alice returns zero keys (or
 * fails with RoundProtocolError / PeerError), and Bob either ends without keys or - only when the attack hits the
 * last reply, after Bob's keys exist - holds keys Alice never commits (the exchange overwrites them with the next
 * round at the same indices). And no block is stored at one end with counts the other end did not record.
 *
 * Every round here is one EC block and one PA block (harness.ts ONE_ROUND_PA), so every step is attacked.
 * Needs the compiled signature worker (npm test builds first; otherwise `npx tsc -p tsconfig.json`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignaturePool, type KeyPair } from '../../../../src/crypto/signatures.js';
import { PeerError } from '../../../../src/exchange/peerProtocol.js';
import type { Bb84Simulator } from '../../../../src/sim/bb84/simulator/Bb84Simulator.js';
import type { BitArray } from '../../../../src/sim/bb84/common/bits.js';
import { decodeIntensities, encodeIntensities } from '../../../../src/sim/bb84/protocol/decoyWire.js';
import { confirmMessage, Transcript } from '../../../../src/sim/bb84/protocol/transcript.js';
import { bitsFromChunks } from '../../../../src/sim/bb84/protocol/wire.js';
import { compressBits } from '../../../../src/sim/bb84/sifting/sift.js';
import { RoundProtocolError } from '../../../../src/sim/Simulator.js';
import { MemoryReconciledBlockStore } from '../../../../src/store/memory/MemoryReconciledBlockStore.js';
import { ONE_ROUND_PA, pairOf, params, runRound, STREAM, type Attack, type Deliver, type Json, type Round } from './harness.js';

let pool: SignaturePool;
let aliceKeys: KeyPair;
let alice: Bb84Simulator;
let bob: Bb84Simulator;
let aliceStore: MemoryReconciledBlockStore;
let bobStore: MemoryReconciledBlockStore;

beforeAll(async () => {
  pool = SignaturePool.create('slh-dsa-sha2-128f', { workers: 2 });
  const [a, b]: KeyPair[] = await Promise.all([pool.generateKeyPair(), pool.generateKeyPair()]);
  aliceKeys = a!;
  aliceStore = new MemoryReconciledBlockStore();
  bobStore = new MemoryReconciledBlockStore();
  ({ alice, bob } = pairOf({ ...ONE_ROUND_PA, seed: 11 }, { slh: { pool, alice: a!, bob: b! }, aliceStore, bobStore }));
});
afterAll(async () => {
  await pool?.close();
});

let nextIndex = 0;
/** Each case on its own stream: an attacked round's leftovers (a block at one end) do not meet the next case. */
let streamNumber = 0;
const next = () => params((nextIndex += 1000), 500, 256, `${STREAM.slice(0, -4)}${String(++streamNumber).padStart(4, '0')}`);

interface Outcome extends Round {
  aliceKeys: number;
  /** Keys that would become deliverable at Bob: the exchange commits only what Alice returned. */
  bobCommitted: number;
  stream: string;
}

async function attacked(attack?: Attack): Promise<Outcome> {
  const p = next();
  const r = await runRound(alice, bob, p, attack);
  const aliceKeys = r.alice?.keys.length ?? 0;
  return { ...r, aliceKeys, bobCommitted: aliceKeys > 0 ? (r.bob?.keys.length ?? 0) : 0, stream: p.keyStreamId };
}

/** The round produced no committed key anywhere, and nothing but protocol or peer errors were raised. */
function expectDiscarded(o: Outcome, opts: { bobMayHoldUncommitted?: boolean } = {}): void {
  expect(o.aliceKeys).toBe(0);
  expect(o.bobCommitted).toBe(0);
  if (o.aliceError) expect(o.aliceError instanceof RoundProtocolError || o.aliceError instanceof PeerError, o.aliceError.stack).toBe(true);
  if (!opts.bobMayHoldUncommitted) expect(o.bob?.keys.length ?? 0).toBe(0);
}

/** The blocks each end holds for the stream. */
async function heldIds(stream: string): Promise<{ alice: string[]; bob: string[] }> {
  return { alice: (await aliceStore.list(stream)).map((b) => b.blockId), bob: (await bobStore.list(stream)).map((b) => b.blockId) };
}

/**
 * A base64 field with one bit flipped (bit `bit` of byte `byte`): of the text, or of the first chunk of a chunked bit
 * string (a list of base64 chunks, wire.ts).
 */
function flipBase64(field: unknown, byte = 0, bit = 0): string | string[] {
  const flip = (text: string): string => {
    const b = Buffer.from(text, 'base64');
    b[byte % b.length]! ^= 1 << bit;
    return b.toString('base64');
  };
  if (typeof field === 'string') return flip(field);
  expect(Array.isArray(field)).toBe(true);
  const [first, ...rest] = field as string[];
  return [flip(first!), ...rest];
}

/** Alters the payload of the `occurrence`-th message of `step`. */
const alterPayload = (target: string, change: (p: Json) => Json, occurrence = 1): Attack => async (step, payload, deliver, n) =>
  deliver(step, step === target && n === occurrence ? change(payload) : payload);

/** Alters Bob's reply to the `occurrence`-th message of `step`. */
const alterReply = (target: string, change: (r: Json) => Json, occurrence = 1): Attack => async (step, payload, deliver, n) => {
  const reply = await deliver(step, payload);
  return step === target && n === occurrence ? change(reply) : reply;
};

/** One more than the first count of a comma-separated list. */
const bumpFirst = (list: unknown): string => (list as string).split(',').map((v, i) => (i === 0 ? String(Number(v) + 1) : v)).join(',');

/**
 * Changes the intensity announcement without changing a count: a mu2 and a mu3 pulse of the key basis swap
 * intensities, so Bob's per-intensity counts still equal Alice's and only the signed transcripts can tell.
 */
function swapIntensities(): Attack {
  let frame: Json | undefined;
  return async (step, payload, deliver) => {
    if (step === 'frame') frame = payload;
    if (step !== 'sift') return deliver(step, payload);
    const k = frame!.detections as number;
    const mask = bitsFromChunks(payload.mask, k, 'test', 'mask');
    const siftedBases = compressBits(bitsFromChunks(frame!.bases, k, 'test', 'bases'), mask);
    const masks = decodeIntensities(payload.intensities, mask.popcount(), 3, 'test', 'intensities');
    const keyBasis = (m: BitArray): number => Array.from({ length: m.length }, (_, i) => i).find((i) => m.get(i) === 1 && siftedBases.get(i) === 0)!;
    const i = keyBasis(masks[1]!);
    const j = keyBasis(masks[2]!);
    masks[1]!.set(i, 0);
    masks[1]!.set(j, 1);
    masks[2]!.set(j, 0);
    masks[2]!.set(i, 1);
    return deliver(step, { ...payload, intensities: encodeIntensities(masks) });
  };
}

describe('BB84 under an active attacker on the classical channel', () => {
  it('when nobody interferes, then the harness itself yields identical committed keys and the blocks are spent at both ends', async () => {
    const o = await attacked();
    expect(o.aliceError).toBeUndefined();
    expect(o.aliceKeys).toBeGreaterThan(10);
    expect(o.bobCommitted).toBe(o.aliceKeys);
    expect(await heldIds(o.stream)).toEqual({ alice: [], bob: [] });
  });

  describe('when one message is altered, then the round is discarded at both ends', () => {
    const cases: [string, Attack, boolean?][] = [
      ['frame: one state bit', alterPayload('frame', (p) => ({ ...p, states: flipBase64(p.states, 5, 3) }))],
      ['frame: one intensity of a detection', alterPayload('frame', (p) => ({ ...p, intensities: flipBase64(p.intensities, 9, 2) }))],
      ['frame: nonceA', alterPayload('frame', (p) => ({ ...p, nonceA: flipBase64(p.nonceA) }))],
      ["frame reply: one of Bob's bases", alterReply('frame', (r) => ({ ...r, bases: flipBase64(r.bases, 7, 1) }))],
      ['sift: one mask bit', alterPayload('sift', (p) => ({ ...p, mask: flipBase64(p.mask, 3, 2) }))],
      ['sift: the intensity announcement of one sifted pulse', alterPayload('sift', (p) => ({ ...p, intensities: flipBase64(p.intensities, 11, 5) }))],
      ['sift reply: a per-intensity count', alterReply('sift', (r) => ({ ...r, nX: bumpFirst(r.nX) }))],
      ['sift: two sifted key-basis pulses swap intensities (every count stays the same)', swapIntensities()],
      ["phase: one of Alice's Z bits", alterPayload('phase', (p) => ({ ...p, bits: flipBase64(p.bits, 1, 1) }))],
      ["phase reply: one of Bob's Z bits", alterReply('phase', (r) => ({ ...r, bits: flipBase64(r.bits, 1, 1) }))],
      ['parities: the stated QBER', alterPayload('parities', (p) => ({ ...p, qber: (p.qber as number) + 0.001 }))],
      ['parities: the stated Z errors', alterPayload('parities', (p) => ({ ...p, zErrors: (p.zErrors as number) + 1 }))],
      ['parities: the passes', alterPayload('parities', (p) => ({ ...p, passes: 4 }))],
      ['parities: one question', alterPayload('parities', (p) => ({ ...p, questions: flipBase64(p.questions, 1, 0) }))],
      ['parities reply: one answer (first batch)', alterReply('parities', (r) => ({ ...r, parities: flipBase64(r.parities, 0, 0) }))],
      ['parities reply: one answer (a BINARY level)', alterReply('parities', (r) => ({ ...r, parities: flipBase64(r.parities, 0, 0) }), 3)],
      ['verify: the tag', alterPayload('verify', (p) => ({ ...p, tag: flipBase64(p.tag, 7, 0) }))],
      ['verify: replaced by an abort', async (step, payload, deliver) => deliver(step === 'verify' ? 'abort' : step, step === 'verify' ? { reason: 'qber-too-high' } : payload)],
      ['verify: tag altered and the mismatch hidden from Alice', async (step, payload, deliver) => {
        if (step !== 'verify') return deliver(step, payload);
        await deliver(step, { ...payload, tag: flipBase64(payload.tag, 7, 0) });
        return { match: true };
      }],
      ['accumulate: a forged count (n_X of the signal)', alterPayload('accumulate', (p) => ({ ...p, nX: bumpFirst(p.nX) }))],
      ['accumulate: forged Z errors', alterPayload('accumulate', (p) => ({ ...p, mZ: bumpFirst(p.mZ) }))],
      ['accumulate: forged disclosed bits', alterPayload('accumulate', (p) => ({ ...p, lambdaEC: (p.lambdaEC as number) - 100 }))],
      ['accumulate: forged corrected errors', alterPayload('accumulate', (p) => ({ ...p, correctedErrors: (p.correctedErrors as number) + 1 }))],
      ['accumulate: another block ID', alterPayload('accumulate', (p) => ({ ...p, blockId: 'AAAAAAAAAAAAAAAAAAAAAA' }))],
      ['accumulate: the PA step announced away', alterPayload('accumulate', (p) => ({ ...p, amplify: false }))],
      ['accumulate: the signature', alterPayload('accumulate', (p) => ({ ...p, signature: flipBase64(p.signature, 1000, 6) }))],
      ["accumulate reply: Bob's signature", alterReply('accumulate', (r) => ({ ...r, signature: flipBase64(r.signature, 99, 2) }))],
      ['seed: one Toeplitz seed bit', alterPayload('seed', (p) => ({ ...p, bits: flipBase64(p.bits, 100, 4) }))],
      ['amplify: a forged block list', alterPayload('amplify', (p) => ({ ...p, blockIds: `${p.blockIds as string},AAAAAAAAAAAAAAAAAAAAAA` }))],
      ['amplify: an empty block list', alterPayload('amplify', (p) => ({ ...p, blockIds: '' }))],
      ['amplify: the counts digest', alterPayload('amplify', (p) => ({ ...p, countsDigest: flipBase64(p.countsDigest, 3, 3) }))],
      ['amplify: the hash family swapped for the plain Toeplitz one', alterPayload('amplify', (p) => ({ ...p, hash: 'toeplitz' }))],
      ['amplify: fewer keys asked', alterPayload('amplify', (p) => ({ ...p, keys: (p.keys as number) - 1, outputBits: (p.outputBits as number) - 256 }))],
      ['amplify: turned into an abort', alterPayload('amplify', (p) => ({ ...p, keys: 0, outputBits: 0, reason: 'no-secret-key' }))],
      ['amplify: the signature', alterPayload('amplify', (p) => ({ ...p, signature: flipBase64(p.signature, 1000, 6) }))],
      ["amplify reply: Bob's signature", alterReply('amplify', (r) => ({ ...r, signature: flipBase64(r.signature, 99, 2) })), true],
      ['amplify reply: the key count', alterReply('amplify', (r) => ({ ...r, keys: (r.keys as number) + 1 })), true],
      ['amplify reply: turned into blocks-differ with an empty list', alterReply('amplify', (r) => ({ confirmed: false, reason: 'blocks-differ', held: '', signature: r.signature })), true],
    ];
    it.each(cases)('%s', async (_name, attack, afterBobConsumed) => {
      const o = await attacked(attack);
      expectDiscarded(o, { bobMayHoldUncommitted: afterBobConsumed ?? false });
      // A forged or unauthenticated message never erases a block at Bob, and Alice never keeps one Bob lacks
      // (except once Bob consumed it: Alice's leftover is then erased by the next PA step's block lists).
      const held = await heldIds(o.stream);
      if (!afterBobConsumed) for (const id of held.alice) expect(held.bob).toContain(id);
    });
  });

  it("when Alice's signing key is compromised and her amplify asks for more key than Bob's own Lim 2014 bound, then Bob refuses naming his bound and erases nothing", async () => {
    // The attacker mirrors the transcript from the channel (as both ends hash it) and re-signs with Alice's key.
    const p = next();
    const mirror = new Transcript(p);
    let nonceA: Uint8Array | undefined;
    const r = await runRound(alice, bob, p, async (step, payload, deliver) => {
      if (step === 'amplify') {
        const { signature: _sig, ...body } = payload;
        const forged = { ...body, keys: 500, outputBits: 500 * 256 };
        mirror.message('alice', step, forged);
        const signature = await pool.sign(confirmMessage('alice', mirror.digest()), aliceKeys.secretKey);
        return deliver(step, { ...forged, signature: Buffer.from(signature).toString('base64') });
      }
      const { signature: _sig, ...signed } = payload;
      mirror.message('alice', step, step === 'accumulate' ? signed : payload);
      const reply = await deliver(step, payload);
      if (step === 'frame') {
        nonceA = Buffer.from(payload.nonceA as string, 'base64');
        mirror.message('bob', step, reply);
        mirror.nonces(nonceA, Buffer.from(reply.nonceB as string, 'base64'));
      } else {
        mirror.message('bob', step, step === 'accumulate' ? { appended: reply.appended } : reply);
      }
      return reply;
    });
    expect(r.alice?.keys.length ?? 0).toBe(0);
    expect(r.bob?.keys.length ?? 0).toBe(0);
    expect(r.aliceError).toBeInstanceOf(PeerError);
    expect(r.aliceError!.message).toMatch(/bb84 amplify: outputBits exceeds this module's finite-key bound/);
    expect((await heldIds(p.keyStreamId)).bob).toHaveLength(1);
  });

  describe('when a message or its reply is dropped, then the round fails without a committed key', () => {
    const steps = ['frame', 'sift', 'phase', 'parities', 'verify', 'accumulate', 'seed', 'amplify'];
    it.each(steps)('request %s dropped', async (target) => {
      const o = await attacked(async (step, payload, deliver) => {
        if (step === target) throw new PeerError('unreachable', 'message dropped');
        return deliver(step, payload);
      });
      expect(o.aliceError).toBeInstanceOf(PeerError);
      expectDiscarded(o);
    });
    it.each(steps)('reply to %s dropped', async (target) => {
      const o = await attacked(async (step, payload, deliver) => {
        const reply = await deliver(step, payload);
        if (step === target) throw new PeerError('unreachable', 'reply dropped');
        return reply;
      });
      expect(o.aliceError).toBeInstanceOf(PeerError);
      expectDiscarded(o, { bobMayHoldUncommitted: target === 'amplify' });
    });
  });

  describe('when a message of an earlier round is replayed into a later round, then the later round is discarded', () => {
    let earlier: Map<string, Json>;
    beforeAll(async () => {
      const o = await attacked();
      expect(o.aliceKeys).toBeGreaterThan(0);
      earlier = o.sent;
    });
    it.each(['frame', 'sift', 'phase', 'parities', 'verify', 'accumulate', 'seed', 'amplify'])('replayed %s', async (target) => {
      const o = await attacked(async (step, payload, deliver, n) => deliver(step, step === target && n === 1 ? earlier.get(target)! : payload));
      expectDiscarded(o);
    });
  });

  describe('when messages are reordered or repeated within a round, then the round is discarded', () => {
    const cases: [string, Attack][] = [
      ['sift delivered twice', async (step, payload, deliver) => {
        if (step === 'sift') await deliver(step, payload);
        return deliver(step, payload);
      }],
      ['phase delivered before sift', async (step, payload, deliver) => (step === 'sift' ? deliver('phase', { bits: '' }) : deliver(step, payload))],
      ['a parities batch delivered twice', async (step, payload, deliver, n) => {
        if (step === 'parities' && n === 2) await deliver(step, payload);
        return deliver(step, payload);
      }],
      ['the first parities batch repeated later in place of another', (() => {
        let first: Json | undefined;
        return async (step: string, payload: Json, deliver: Deliver, n: number) => {
          if (step === 'parities' && n === 1) first = payload;
          return deliver(step, step === 'parities' && n === 2 ? { count: first!.count, questions: first!.questions } : payload);
        };
      })()],
      ['verify delivered twice', async (step, payload, deliver) => {
        if (step === 'verify') await deliver(step, payload);
        return deliver(step, payload);
      }],
      ['amplify delivered before the seed', async (step, payload, deliver) => (step === 'seed' ? deliver('amplify', payload) : deliver(step, payload))],
      ['an abort after the block was accumulated', async (step, payload, deliver) => (step === 'seed' ? deliver('abort', { reason: 'qber-too-high' }) : deliver(step, payload))],
      ['frame delivered again after sift', async (step, payload, deliver) => {
        const reply = await deliver(step, payload);
        if (step === 'sift') await deliver('frame', payload);
        return reply;
      }],
    ];
    it.each(cases)('%s', async (_name, attack) => {
      expectDiscarded(await attacked(attack));
    });

    it('when amplify is delivered twice, then the second copy is refused and Alice commits nothing', async () => {
      const o = await attacked(async (step, payload, deliver) => {
        const reply = await deliver(step, payload);
        if (step === 'amplify') await deliver(step, payload);
        return reply;
      });
      expectDiscarded(o, { bobMayHoldUncommitted: true });
      expect(o.aliceError).toBeInstanceOf(PeerError);
    });
  });
});
