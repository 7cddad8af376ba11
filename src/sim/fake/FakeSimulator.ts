/**
 * The fake key exchange: the sending module draws keys from the CSPRNG and hands them to the
 * receiver over the peer channel. No physics, no security: it exists to test applications and
 * the module's bookkeeping. Keys travel base64-encoded in one message per round.
 */
import { randomBytes } from 'node:crypto';
import { RoundProtocolError, type ReceiverRound, type RoundChannel, type RoundParams, type RoundResult, type Simulator } from '../Simulator.js';

/** Keys per round at most (one peer message carries them all). */
export const FAKE_MAX_KEYS_PER_ROUND = 256;

export class FakeSimulator implements Simulator {
  readonly name = 'fake';

  async runSenderRound(params: RoundParams, channel: RoundChannel): Promise<RoundResult> {
    const count = Math.min(params.maxKeys, FAKE_MAX_KEYS_PER_ROUND);
    const bytes = params.keyLengthBits / 8;
    const keys = Array.from({ length: count }, () => new Uint8Array(randomBytes(bytes)));
    await channel.request('keys', { keys: keys.map((k) => Buffer.from(k).toString('base64')) });
    return { keys, stats: { keys: count } };
  }

  /**
   * Unlimited for QoS purposes: the fake device is bound only by the CPU and the peer channel
   * (docs/api.md quotes a measured figure), far above any rate a real link produces.
   */
  expectedSecretBitsPerSecond(): number {
    return Number.POSITIVE_INFINITY;
  }

  openReceiverRound(params: RoundParams): ReceiverRound {
    return {
      async handle(step: string, payload: unknown) {
        if (step !== 'keys') throw new RoundProtocolError(`fake round: unexpected step '${step}'`);
        const list = (payload as { keys?: unknown } | null)?.keys;
        if (!Array.isArray(list) || list.length === 0 || list.length > Math.min(params.maxKeys, FAKE_MAX_KEYS_PER_ROUND)) {
          throw new RoundProtocolError('fake round: keys must be a non-empty list within maxKeys');
        }
        const bytes = params.keyLengthBits / 8;
        const keys = list.map((k) => {
          if (typeof k !== 'string') throw new RoundProtocolError('fake round: every key must be a base64 string');
          const key = new Uint8Array(Buffer.from(k, 'base64'));
          if (key.length !== bytes) throw new RoundProtocolError(`fake round: every key must be ${bytes} bytes`);
          return key;
        });
        return { reply: { received: keys.length }, result: { keys } };
      },
    };
  }
}
