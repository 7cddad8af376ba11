/**
 * Sealing of peer messages inside an authenticated session (docs/security.md, "Peer channel").
 *
 * AES-256-GCM: one key per direction (client->server requests, server->client answers), a 96-bit
 * nonce made of the direction and the request's sequence number (each number is used once per key:
 * the client never repeats one, and the server answers each accepted number once). The associated
 * data binds the session, the sequence number, the method and path (requests) or the HTTP status
 * (answers), so a sealed body cannot be moved to another request, route or answer.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';

export const TAG_BYTES = 16;

export type Direction = 'request' | 'answer';

function nonce(direction: Direction, seq: number): Buffer {
  const iv = Buffer.alloc(12);
  iv.writeUInt32BE(direction === 'request' ? 0 : 1, 0);
  iv.writeBigUInt64BE(BigInt(seq), 4);
  return iv;
}

/** `requestId` names the call across sessions (the same when a call is sent again in a new session). */
export function requestAad(sessionId: string, seq: number, method: string, pathAndQuery: string, requestId = ''): Buffer {
  return Buffer.from(`qkdm/peer/v1/request\0${sessionId}\0${seq}\0${method.toUpperCase()}\0${pathAndQuery}\0${requestId}`, 'utf8');
}

export function answerAad(sessionId: string, seq: number, httpStatus: number): Buffer {
  return Buffer.from(`qkdm/peer/v1/answer\0${sessionId}\0${seq}\0${httpStatus}`, 'utf8');
}

export interface Sealed {
  ciphertext: Buffer;
  tag: Buffer;
}

export function seal(key: Uint8Array, direction: Direction, seq: number, aad: Buffer, plaintext: Uint8Array): Sealed {
  const cipher = createCipheriv('aes-256-gcm', key, nonce(direction, seq), { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  // GCM is a stream mode: final() is empty, so the update's output is the whole ciphertext (no copy
  // of a megabyte-sized BB84 frame).
  const body = cipher.update(plaintext);
  const rest = cipher.final();
  const ciphertext = rest.length > 0 ? Buffer.concat([body, rest]) : body;
  return { ciphertext, tag: cipher.getAuthTag() };
}

/** The plaintext, or undefined when the tag does not verify (forged, altered, replayed elsewhere). */
export function open(key: Uint8Array, direction: Direction, seq: number, aad: Buffer, sealed: Sealed): Buffer | undefined {
  if (sealed.tag.length !== TAG_BYTES) return undefined;
  const decipher = createDecipheriv('aes-256-gcm', key, nonce(direction, seq), { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.tag);
  const out = decipher.update(sealed.ciphertext);
  try {
    const rest = decipher.final(); // throws when the tag does not verify
    return rest.length > 0 ? Buffer.concat([out, rest]) : out;
  } catch {
    out.fill(0);
    return undefined;
  }
}

/**
 * Which sequence numbers a session has accepted: every number at most once. Requests of one session
 * run concurrently (several streams share it), so they may arrive out of order: numbers within
 * `size` below the highest seen are accepted once each, older ones are refused (as IPsec and DTLS do).
 */
export class ReplayWindow {
  private highest = 0;
  private readonly seen: Uint8Array;

  constructor(private readonly size = 4096) {
    this.seen = new Uint8Array(size);
  }

  /** True when `seq` may be accepted (never seen, not too old). Does not record it. */
  check(seq: number): boolean {
    if (!Number.isSafeInteger(seq) || seq < 1) return false;
    if (seq > this.highest) return true;
    if (this.highest - seq >= this.size) return false;
    return this.seen[seq % this.size] === 0;
  }

  /** Records an accepted number (call only after the message authenticated). */
  accept(seq: number): void {
    if (seq > this.highest) {
      // Slots of the numbers skipped over (and of those that fall out of the window) become free.
      const steps = Math.min(seq - this.highest, this.size);
      for (let i = 1; i <= steps; i++) this.seen[(this.highest + i) % this.size] = 0;
      this.highest = seq;
    }
    this.seen[seq % this.size] = 1;
  }
}
