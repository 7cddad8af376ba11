/**
 * The BB84 simulator's two halves (Alice's runSenderRound, Bob's openReceiverRound) joined by an in-memory channel
 * that JSON-round-trips every payload and reply, as the peer channel does. Signatures: real SLH-DSA-SHA2-128f in
 * worker threads (run `npx tsc -p tsconfig.json` first when calling vitest directly: the worker is compiled code),
 * or an HMAC over the transcript where a test is about statistics, not authentication.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { PeerError } from '../../../../src/exchange/peerProtocol.js';
import type { SignaturePool, KeyPair } from '../../../../src/crypto/signatures.js';
import { SignatureAuthenticator, type TranscriptAuthenticator } from '../../../../src/sim/bb84/simulator/authenticator.js';
import { Bb84Simulator, type Bb84Options, type Bb84Settings } from '../../../../src/sim/bb84/simulator/Bb84Simulator.js';
import { RoundProtocolError, type RoundParams, type RoundResult, type RoundStats } from '../../../../src/sim/Simulator.js';
import type { ReconciledBlockStore } from '../../../../src/store/ReconciledBlockStore.js';

export const DEFAULT_LINK = { lengthKm: 25, attenuationDbPerKm: 0.2, detectorEfficiency: 0.1, darkCountProbability: 1e-6, afterpulseProbability: 0, misalignmentError: 0.01 };
export const DEFAULT_SOURCE = { intensities: [0.5, 0.25, 2e-4], intensityProbabilities: [0.4, 0.4, 0.2], basisXProbability: 0.8 };

/** 5 km, the default decoy set; EC blocks of 2e7 pulses (~300,000 key-basis bits), PA blocks of 1e6: four rounds each. */
export const SHORT_LINK: Bb84Settings = {
  link: { ...DEFAULT_LINK, lengthKm: 5 },
  source: DEFAULT_SOURCE,
  attack: { kind: 'none' },
  pulseRateHz: 1e8,
  pace: 'max',
  qberThreshold: 0.11,
  blockPulses: 20_000_000,
  paBlockBits: 1_000_000,
  epsSec: 1e-10,
  epsCor: 1e-15,
  cascadePasses: 14,
  seed: 7,
  signature: 'slh-dsa-sha2-128f',
};

/**
 * Every round one EC block and one PA block: unbiased bases (more test-basis detections for a small block), 2.6e7
 * pulses at 5 km (~150,000 key-basis bits), PA blocks of 120,000 bits (Lim 2014 leaves about 40,000 key bits).
 */
export const ONE_ROUND_PA: Bb84Settings = {
  ...SHORT_LINK,
  source: { ...DEFAULT_SOURCE, basisXProbability: 0.5 },
  blockPulses: 26_000_000,
  paBlockBits: 120_000,
};

export const STREAM = '6f1c1c2e-8a43-4c55-9e43-8d1c7a3d2b10';
export const params = (firstIndex: number, maxKeys = 100_000, keyLengthBits = 256, keyStreamId = STREAM): RoundParams => ({ keyStreamId, firstIndex, keyLengthBits, maxKeys });
export const hex = (keys: Uint8Array[]): string[] => keys.map((k) => Buffer.from(k).toString('hex'));
export const num = (stats: RoundStats | undefined, field: string): number => stats![field] as number;

/** "Signatures excluded": an HMAC over the transcript under a key both ends share (fast; statistics tests only). */
export function hmacAuthenticator(key = 'test'): TranscriptAuthenticator {
  return {
    signatureBytes: 32,
    async sign(message) {
      return new Uint8Array(createHmac('sha256', key).update(message).digest());
    },
    async verify(signature, message) {
      const mac = createHmac('sha256', key).update(message).digest();
      return signature.length === 32 && timingSafeEqual(mac, signature);
    },
  };
}

export interface PairOptions {
  /** SLH-DSA keys (pool and both key pairs); HMAC when absent. */
  slh?: { pool: SignaturePool; alice: KeyPair; bob: KeyPair; alicePeer?: Uint8Array; bobPeer?: Uint8Array };
  aliceStore?: ReconciledBlockStore;
  bobStore?: ReconciledBlockStore;
  alice?: Partial<Bb84Options>;
  bob?: Partial<Bb84Options>;
}

export function pairOf(settings: Bb84Settings, o: PairOptions = {}): { alice: Bb84Simulator; bob: Bb84Simulator } {
  const auth = (who: 'alice' | 'bob'): TranscriptAuthenticator => {
    if (!o.slh) return hmacAuthenticator();
    const own = o.slh[who];
    const peer = who === 'alice' ? (o.slh.alicePeer ?? o.slh.bob.publicKey) : (o.slh.bobPeer ?? o.slh.alice.publicKey);
    return new SignatureAuthenticator(o.slh.pool, own.secretKey.slice(), peer, false);
  };
  return {
    alice: new Bb84Simulator({ settings, authenticator: auth('alice'), keylessBackoffMs: { initial: 0, max: 0 }, ...(o.aliceStore ? { blocks: o.aliceStore } : {}), ...o.alice }),
    bob: new Bb84Simulator({ settings, authenticator: auth('bob'), ...(o.bobStore ? { blocks: o.bobStore } : {}), ...o.bob }),
  };
}

export type Json = Record<string, unknown>;
/** Delivers one message to Bob's round (JSON round trip both ways); Bob's protocol errors come back as PeerError. */
export type Deliver = (step: string, payload: unknown) => Promise<Json>;
/** Sees every message Alice sends and decides what reaches Bob and what comes back. */
export type Attack = (step: string, payload: Json, deliver: Deliver, occurrence: number) => Promise<Json>;
export const honest: Attack = (step, payload, deliver) => deliver(step, payload);

export interface Round {
  alice: RoundResult | undefined;
  aliceError: Error | undefined;
  /** Bob's result, if his round reached one. */
  bob: RoundResult | undefined;
  /** Payloads Alice sent, by step (first occurrence), and the largest size of each step's payload. */
  sent: Map<string, Json>;
  sizes: Map<string, number>;
}

/** One round through the in-memory channel, with an optional attacker on it. Alice's errors are caught. */
export async function runRound(alice: Bb84Simulator, bob: Bb84Simulator, p: RoundParams, attack: Attack = honest): Promise<Round> {
  const round = bob.openReceiverRound(p);
  const out: Round = { alice: undefined, aliceError: undefined, bob: undefined, sent: new Map(), sizes: new Map() };
  const seen = new Map<string, number>();
  const deliver: Deliver = async (step, payload) => {
    let res;
    try {
      res = await round.handle(step, JSON.parse(JSON.stringify(payload)));
    } catch (err) {
      if (err instanceof RoundProtocolError) throw new PeerError('refused', err.message, 'BAD_REQUEST');
      throw err;
    }
    if (res.result) out.bob = res.result;
    return JSON.parse(JSON.stringify(res.reply)) as Json;
  };
  try {
    out.alice = await alice.runSenderRound(p, {
      async request(step, payload) {
        const text = JSON.stringify(payload);
        out.sizes.set(step, Math.max(out.sizes.get(step) ?? 0, text.length));
        const copy = JSON.parse(text) as Json;
        if (!out.sent.has(step)) out.sent.set(step, copy);
        const n = (seen.get(step) ?? 0) + 1;
        seen.set(step, n);
        return attack(step, copy, deliver, n);
      },
    });
  } catch (err) {
    out.aliceError = err as Error;
  }
  return out;
}

/** Runs rounds until one yields keys at Alice (or `maxRounds` pass); returns every round. */
export async function roundsUntilKeys(alice: Bb84Simulator, bob: Bb84Simulator, firstIndex: number, maxRounds: number, make = (i: number) => params(i)): Promise<Round[]> {
  const rounds: Round[] = [];
  for (let r = 0; r < maxRounds; r++) {
    const round = await runRound(alice, bob, make(firstIndex));
    if (round.aliceError) throw round.aliceError;
    rounds.push(round);
    if ((round.alice?.keys.length ?? 0) > 0) break;
  }
  return rounds;
}
