/**
 * Key confirmation (docs/peer-protocol.md, "Key confirmation"): before a round's keys become
 * deliverable, both ends prove they hold the same keys. Each end computes HMAC-SHA256 under a fresh
 * random 32-byte seed (chosen by the sender per round) over the round's context and keys, with its
 * role in the input, so neither end can answer by echoing the other's tag. Tags travel over the
 * authenticated peer channel; a mismatch discards the round at both ends and halts the stream.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface ConfirmationContext {
  keyStreamId: string;
  roundId: string;
  firstIndex: number;
  keyLengthBits: number;
}

export function confirmationTag(seed: Uint8Array, role: 'sender' | 'receiver', ctx: ConfirmationContext, keys: readonly Uint8Array[]): Buffer {
  // Every key has the stream's length (hashed below), so the concatenation of the keys is unambiguous.
  const bytes = ctx.keyLengthBits / 8;
  if (keys.some((k) => k.length !== bytes)) throw new RangeError(`every key must be ${bytes} bytes`);
  const mac = createHmac('sha256', seed);
  mac.update(`qkdm/key-confirmation/v1\0${role}\0${ctx.keyStreamId}\0${ctx.roundId}\0${ctx.firstIndex}\0${keys.length}\0${ctx.keyLengthBits}\0`, 'utf8');
  for (const key of keys) mac.update(key);
  return mac.digest();
}

/** Constant-time comparison of a tag with the base64 text received. */
export function tagMatches(expected: Buffer, receivedBase64: string | undefined): boolean {
  if (typeof receivedBase64 !== 'string') return false;
  const received = Buffer.from(receivedBase64, 'base64');
  return received.length === expected.length && timingSafeEqual(received, expected);
}
