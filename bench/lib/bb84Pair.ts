/** The BB84 simulator's two halves in one process, for the benches: an in-memory channel and a fast authenticator. */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { TranscriptAuthenticator } from '../../src/sim/bb84/simulator/authenticator.js';
import type { Bb84Simulator } from '../../src/sim/bb84/simulator/Bb84Simulator.js';
import type { RoundParams, RoundResult } from '../../src/sim/Simulator.js';

/** "Signatures excluded": the transcript is authenticated with HMAC-SHA-256 under a key both ends share (fast). */
export function hmacAuthenticator(key: Uint8Array): TranscriptAuthenticator {
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

/** One round over a channel that JSON-round-trips every message (as the peer channel does). */
export async function runInMemoryBlock(alice: Bb84Simulator, bob: Bb84Simulator, params: RoundParams): Promise<{ alice: RoundResult; bob?: RoundResult }> {
  const round = bob.openReceiverRound(params);
  let bobResult: RoundResult | undefined;
  const result = await alice.runSenderRound(params, {
    async request(step, payload) {
      const out = await round.handle(step, JSON.parse(JSON.stringify(payload)));
      if (out.result) bobResult = out.result;
      return JSON.parse(JSON.stringify(out.reply));
    },
  });
  return { alice: result, ...(bobResult ? { bob: bobResult } : {}) };
}
