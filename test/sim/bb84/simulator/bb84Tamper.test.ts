/**
 * An active attacker on the classical channel between the two halves of the BB84 simulator: altered, dropped,
 * replayed (from an earlier block) and reordered or repeated messages. Whatever is done, the block yields no key
 * that gets committed: Alice returns zero keys (or fails with RoundProtocolError / PeerError), and Bob either ends
 * without keys or - only when the attack hits the last reply, after Bob's keys exist - holds keys Alice never
 * commits (the exchange overwrites them with the next round at the same indices).
 *
 * Needs the compiled signature worker (npm test builds first; otherwise `npx tsc -p tsconfig.json`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignaturePool, type KeyPair } from '../../../../src/crypto/signatures.js';
import { PeerError } from '../../../../src/exchange/peerProtocol.js';
import { SignatureAuthenticator } from '../../../../src/sim/bb84/simulator/authenticator.js';
import { Bb84Simulator, type Bb84Settings } from '../../../../src/sim/bb84/simulator/Bb84Simulator.js';
import { RoundProtocolError, type RoundParams, type RoundResult } from '../../../../src/sim/Simulator.js';

const SETTINGS: Bb84Settings = {
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
  seed: 11,
  signature: 'slh-dsa-sha2-128f',
};
const STREAM = '0b6f4f0e-5a55-4d7b-9f0c-3c1f5e2a9d41';

let pool: SignaturePool;
let alice: Bb84Simulator;
let bob: Bb84Simulator;

beforeAll(async () => {
  pool = SignaturePool.create('slh-dsa-sha2-128f', { workers: 2 });
  const [a, b]: KeyPair[] = await Promise.all([pool.generateKeyPair(), pool.generateKeyPair()]);
  // No keyless back-off: every attacked block ends without keys, and the cases run back to back.
  alice = new Bb84Simulator({ settings: SETTINGS, authenticator: new SignatureAuthenticator(pool, a!.secretKey, b!.publicKey, false), keylessBackoffMs: { initial: 0, max: 0 } });
  bob = new Bb84Simulator({ settings: SETTINGS, authenticator: new SignatureAuthenticator(pool, b!.secretKey, a!.publicKey, false) });
});
afterAll(async () => {
  await pool?.close();
});

type Json = Record<string, unknown>;
/** Delivers one message to Bob's round (JSON round trip both ways); Bob's protocol errors come back as PeerError. */
type Deliver = (step: string, payload: unknown) => Promise<Json>;
/** The attacker: sees every message Alice sends and decides what reaches Bob and what comes back. */
type Attack = (step: string, payload: Json, deliver: Deliver, occurrence: number) => Promise<Json>;

interface Outcome {
  aliceKeys: number;
  aliceError: Error | undefined;
  /** Bob's result if his round produced one (keys stored uncommitted by the exchange). */
  bobResult: RoundResult | undefined;
  /** Keys that would become deliverable at Bob: the exchange commits only what Alice returned. */
  bobCommitted: number;
  /** Payloads Alice sent, by step (first occurrence). */
  sent: Map<string, Json>;
}

let nextIndex = 0;
const params = (): RoundParams => ({ keyStreamId: STREAM, firstIndex: (nextIndex += 1000), keyLengthBits: 256, maxKeys: 500 });

async function runBlock(attack: Attack = (step, payload, deliver) => deliver(step, payload)): Promise<Outcome> {
  const p = params();
  const round = bob.openReceiverRound(p);
  let bobResult: RoundResult | undefined;
  const sent = new Map<string, Json>();
  const seen = new Map<string, number>();
  const deliver: Deliver = async (step, payload) => {
    let out;
    try {
      out = await round.handle(step, JSON.parse(JSON.stringify(payload)));
    } catch (err) {
      if (err instanceof RoundProtocolError) throw new PeerError('refused', err.message, 'BAD_REQUEST');
      throw err;
    }
    if (out.result) bobResult = out.result;
    return JSON.parse(JSON.stringify(out.reply)) as Json;
  };
  let aliceKeys = 0;
  let aliceError: Error | undefined;
  try {
    const result = await alice.runSenderRound(p, {
      async request(step, payload) {
        const copy = JSON.parse(JSON.stringify(payload)) as Json;
        if (!sent.has(step)) sent.set(step, copy);
        const n = (seen.get(step) ?? 0) + 1;
        seen.set(step, n);
        return attack(step, copy, deliver, n);
      },
    });
    aliceKeys = result.keys.length;
  } catch (err) {
    aliceError = err as Error;
  }
  return { aliceKeys, aliceError, bobResult, bobCommitted: aliceKeys > 0 ? (bobResult?.keys.length ?? 0) : 0, sent };
}

/** The block produced no committed key anywhere, and nothing but protocol or peer errors were raised. */
function expectDiscarded(o: Outcome, opts: { bobMayHoldUncommitted?: boolean } = {}): void {
  expect(o.aliceKeys).toBe(0);
  expect(o.bobCommitted).toBe(0);
  if (o.aliceError) expect(o.aliceError instanceof RoundProtocolError || o.aliceError instanceof PeerError, o.aliceError.stack).toBe(true);
  if (!opts.bobMayHoldUncommitted) expect(o.bobResult?.keys.length ?? 0).toBe(0);
}

/** A base64 bit string with one bit flipped (bit `bit` of byte `byte`). */
function flipBase64(text: unknown, byte = 0, bit = 0): string {
  const b = Buffer.from(text as string, 'base64');
  b[byte % b.length]! ^= 1 << bit;
  return b.toString('base64');
}

/** Alters the payload of the `occurrence`-th message of `step`. */
const alterPayload = (target: string, change: (p: Json) => Json, occurrence = 1): Attack => async (step, payload, deliver, n) =>
  deliver(step, step === target && n === occurrence ? change(payload) : payload);

/** Alters Bob's reply to the `occurrence`-th message of `step`. */
const alterReply = (target: string, change: (r: Json) => Json, occurrence = 1): Attack => async (step, payload, deliver, n) => {
  const reply = await deliver(step, payload);
  return step === target && n === occurrence ? change(reply) : reply;
};

describe('BB84 under an active attacker on the classical channel', () => {
  it('when nobody interferes, then the harness itself yields identical committed keys', async () => {
    const o = await runBlock();
    expect(o.aliceError).toBeUndefined();
    expect(o.aliceKeys).toBeGreaterThan(10);
    expect(o.bobCommitted).toBe(o.aliceKeys);
  });

  describe('when one message is altered, then the block is discarded at both ends', () => {
    const cases: [string, Attack, boolean?][] = [
      ['frame: one state bit', alterPayload('frame', (p) => ({ ...p, states: flipBase64(p.states, 5, 3) }))],
      ['frame: nonceA', alterPayload('frame', (p) => ({ ...p, nonceA: flipBase64(p.nonceA) }))],
      ['frame reply: one of Bob\'s bases', alterReply('frame', (r) => ({ ...r, bases: flipBase64(r.bases, 7, 1) }))],
      ['sift: one mask bit', alterPayload('sift', (p) => ({ ...p, mask: flipBase64(p.mask, 3, 2) }))],
      ['estimate: the sample seed', alterPayload('estimate', (p) => ({ ...p, seed: flipBase64(p.seed) }))],
      ['estimate: the sample size', alterPayload('estimate', (p) => ({ ...p, sampleSize: (p.sampleSize as number) + 1 }))],
      ['estimate reply: one sampled bit', alterReply('estimate', (r) => ({ ...r, sample: flipBase64(r.sample, 2, 0) }))],
      ['parities: the stated QBER', alterPayload('parities', (p) => ({ ...p, qber: (p.qber as number) + 0.001 }))],
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
      ['amplify: one Toeplitz seed bit', alterPayload('amplify', (p) => ({ ...p, seed: flipBase64(p.seed, 100, 4) }))],
      ['amplify: the hash family swapped for the plain Toeplitz one', alterPayload('amplify', (p) => ({ ...p, hash: 'toeplitz' }))],
      ['amplify: fewer keys asked', alterPayload('amplify', (p) => ({ ...p, keys: (p.keys as number) - 1, outputBits: (p.outputBits as number) - 256 }))],
      ['amplify: the signature', alterPayload('amplify', (p) => ({ ...p, signature: flipBase64(p.signature, 1000, 6) }))],
      ['amplify reply: Bob\'s signature', alterReply('amplify', (r) => ({ ...r, signature: flipBase64(r.signature, 99, 2) })), true],
      ['amplify reply: the key count', alterReply('amplify', (r) => ({ ...r, keys: (r.keys as number) + 1 })), true],
    ];
    it.each(cases)('%s', async (_name, attack, bobMayHoldUncommitted) => {
      expectDiscarded(await runBlock(attack), { bobMayHoldUncommitted: bobMayHoldUncommitted ?? false });
    });
  });

  describe('when a message or its reply is dropped, then the round fails without a committed key', () => {
    const steps = ['frame', 'sift', 'estimate', 'parities', 'verify', 'amplify'];
    it.each(steps)('request %s dropped', async (target) => {
      const o = await runBlock(async (step, payload, deliver) => {
        if (step === target) throw new PeerError('unreachable', 'message dropped');
        return deliver(step, payload);
      });
      expect(o.aliceError).toBeInstanceOf(PeerError);
      expectDiscarded(o);
    });
    it.each(steps)('reply to %s dropped', async (target) => {
      const o = await runBlock(async (step, payload, deliver) => {
        const reply = await deliver(step, payload);
        if (step === target) throw new PeerError('unreachable', 'reply dropped');
        return reply;
      });
      expect(o.aliceError).toBeInstanceOf(PeerError);
      expectDiscarded(o, { bobMayHoldUncommitted: target === 'amplify' });
    });
  });

  describe('when a message of an earlier block is replayed into a later block, then the later block is discarded', () => {
    let earlier: Map<string, Json>;
    beforeAll(async () => {
      const o = await runBlock();
      expect(o.aliceKeys).toBeGreaterThan(0);
      earlier = o.sent;
    });
    it.each(['frame', 'sift', 'estimate', 'parities', 'verify', 'amplify'])('replayed %s', async (target) => {
      const o = await runBlock(async (step, payload, deliver, n) => deliver(step, step === target && n === 1 ? earlier.get(target)! : payload));
      expectDiscarded(o);
    });
  });

  describe('when messages are reordered or repeated within a block, then the block is discarded', () => {
    const cases: [string, Attack][] = [
      ['sift delivered twice', async (step, payload, deliver) => {
        if (step === 'sift') await deliver(step, payload);
        return deliver(step, payload);
      }],
      ['estimate delivered before sift', async (step, payload, deliver) => (step === 'sift' ? deliver('estimate', { seed: Buffer.alloc(32).toString('base64'), sampleSize: 10 }) : deliver(step, payload))],
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
      ['frame delivered again after sift', async (step, payload, deliver) => {
        const reply = await deliver(step, payload);
        if (step === 'sift') await deliver('frame', payload);
        return reply;
      }],
    ];
    it.each(cases)('%s', async (_name, attack) => {
      expectDiscarded(await runBlock(attack));
    });

    it('when amplify is delivered twice, then the second copy is refused and Alice commits nothing', async () => {
      const o = await runBlock(async (step, payload, deliver) => {
        const reply = await deliver(step, payload);
        if (step === 'amplify') await deliver(step, payload);
        return reply;
      });
      expectDiscarded(o, { bobMayHoldUncommitted: true });
      expect(o.aliceError).toBeInstanceOf(PeerError);
    });
  });
});
