/**
 * The peer-channel handshake: a post-quantum signed key agreement that opens a session
 * (docs/peer-protocol.md, "Authentication"; docs/security.md).
 *
 *   client -> server  POST /peer/hello  {v, link, from, to, time, nonce, kem, signature}
 *   server -> client                    {v, session, nonce, ciphertext, signature}
 *
 * `kem` is a fresh ML-KEM-768 (FIPS 203) encapsulation key of the client; the server encapsulates a
 * shared secret to it. Each side signs its message with its SLH-DSA (FIPS 205) link key over a digest
 * that covers everything sent so far, so the server's signature also binds the client's hello. Both
 * derive the session's two AES-256-GCM keys with HKDF-SHA256 from the shared secret and the
 * transcript. The decapsulation key lives only for one handshake (forward secrecy).
 *
 * Replay: a hello carries the time and a random nonce; the server refuses hellos older than
 * HELLO_MAX_SKEW_MS and nonces it has seen. A replayed hello would anyway get a session whose keys
 * only the holder of the (erased) decapsulation key can derive.
 */
import { createHash, hkdfSync, randomBytes } from 'node:crypto';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { z } from 'zod';
import type { SignaturePool } from '../../crypto/signatures.js';
import type { LinkCredentials } from './linkCredentials.js';

export const HELLO_PATH = '/peer/hello';
export const HANDSHAKE_VERSION = 1;
/** A hello older (or further in the future) than this is refused: bounds the nonce cache. */
export const HELLO_MAX_SKEW_MS = 5 * 60_000;

const b64 = (len: number) =>
  z.string().max(Math.ceil(len / 3) * 4 + 4).transform((s, ctx) => {
    const buf = Buffer.from(s, 'base64');
    if (buf.length !== len || buf.toString('base64') !== s) {
      ctx.addIssue({ code: 'custom', message: `expected ${len} bytes of canonical base64` });
      return z.NEVER;
    }
    return new Uint8Array(buf);
  });
const b64Signature = z.string().max(64 * 1024).transform((s) => new Uint8Array(Buffer.from(s, 'base64')));

export const helloSchema = z.strictObject({
  v: z.literal(HANDSHAKE_VERSION),
  link: z.string().max(64),
  from: z.string().regex(/^[0-9a-f]{32}$/),
  to: z.string().regex(/^[0-9a-f]{32}$/),
  time: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  nonce: b64(32),
  kem: b64(1184),
  signature: b64Signature,
});
export type Hello = z.output<typeof helloSchema>;

export const acceptSchema = z.strictObject({
  v: z.literal(HANDSHAKE_VERSION),
  session: z.string().regex(/^[A-Za-z0-9_-]{22}$/),
  nonce: b64(32),
  ciphertext: b64(1088),
  signature: b64Signature,
});

/** The keys of one session: requests are sealed with `request`, answers with `answer`. */
export interface SessionKeys {
  sessionId: string;
  request: Uint8Array;
  answer: Uint8Array;
}

/** SHA-256 over a label and length-prefixed fields: no two field lists give the same input. */
function digest(label: string, fields: (string | Uint8Array)[]): Buffer {
  const h = createHash('sha256').update(`qkdm/peer/${label}/v1\0`);
  for (const f of fields) {
    const bytes = typeof f === 'string' ? Buffer.from(f, 'utf8') : f;
    const len = Buffer.alloc(4);
    len.writeUInt32BE(bytes.length);
    h.update(len).update(bytes);
  }
  return h.digest();
}

function helloDigest(h: Omit<Hello, 'signature'>): Buffer {
  return digest('hello', [String(h.v), h.link, h.from, h.to, String(h.time), h.nonce, h.kem]);
}

function acceptDigest(hello: Buffer, sessionId: string, nonce: Uint8Array, ciphertext: Uint8Array): Buffer {
  return digest('accept', [hello, sessionId, nonce, ciphertext]);
}

function deriveKeys(sharedSecret: Uint8Array, transcript: Buffer, sessionId: string): SessionKeys {
  const okm = new Uint8Array(hkdfSync('sha256', sharedSecret, transcript, 'qkdm/peer/v1/session-keys', 64));
  return { sessionId, request: okm.slice(0, 32), answer: okm.slice(32, 64) };
}

export class HandshakeError extends Error {
  override readonly name = 'HandshakeError';
  constructor(
    message: string,
    /** HTTP status the server answers with. */
    readonly httpStatus = 401,
  ) {
    super(message);
  }
}

const enc = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');

/**
 * Client side: runs one handshake through `post` (which sends the hello as JSON to the peer and
 * resolves its JSON answer) and returns the session keys.
 */
export async function initiateHandshake(creds: LinkCredentials, pool: SignaturePool, post: (hello: unknown) => Promise<unknown>): Promise<SessionKeys> {
  const kem = ml_kem768.keygen();
  try {
    const body = { v: HANDSHAKE_VERSION, link: creds.linkId, from: creds.fingerprint, to: creds.peerFingerprint, time: Date.now(), nonce: randomBytes(32), kem: kem.publicKey } as const;
    const hDigest = helloDigest(body);
    const signature = await pool.sign(hDigest, creds.secretKey);
    const answer = await post({ ...body, nonce: enc(body.nonce), kem: enc(body.kem), signature: enc(signature) });
    const parsed = acceptSchema.safeParse(answer);
    if (!parsed.success) throw new HandshakeError('the peer answered the handshake with a malformed message');
    const a = parsed.data;
    const aDigest = acceptDigest(hDigest, a.session, a.nonce, a.ciphertext);
    if (!(await pool.verify(a.signature, aDigest, creds.peerPublicKey))) {
      throw new HandshakeError(`the peer's handshake signature does not verify with peer_module.public_key (fingerprint ${creds.peerFingerprint}): wrong credentials at one end, or not the peer`);
    }
    const shared = ml_kem768.decapsulate(a.ciphertext, kem.secretKey);
    try {
      return deriveKeys(shared, aDigest, a.session);
    } finally {
      shared.fill(0);
    }
  } finally {
    kem.secretKey.fill(0);
  }
}

const HELLO_FIELDS: ReadonlySet<string> = new Set(Object.keys(helloSchema.shape));

/**
 * A schema issue of a hello as `field: problem`, never repeating what the caller sent: unknown field
 * names are counted, not named (zod's own message quotes them).
 */
function describeHelloIssue(issue: z.core.$ZodIssue | undefined): string {
  if (!issue) return 'body: invalid';
  const field = typeof issue.path[0] === 'string' && HELLO_FIELDS.has(issue.path[0]) ? issue.path[0] : issue.path.length ? '<field>' : 'body';
  if (issue.code === 'unrecognized_keys') return `${field}: ${issue.keys.length} unknown field${issue.keys.length === 1 ? '' : 's'} (names not repeated)`;
  return `${field}: ${issue.message}`;
}

/** Server side: checks a hello (cheap checks first, then the signature) and answers it. */
export class HandshakeResponder {
  private readonly seenNonces = new Map<string, number>();
  /** Signature verifications allowed now (a token bucket): forged hellos cannot buy unbounded CPU. */
  private tokens: number;
  private lastRefill = Date.now();

  constructor(
    private readonly creds: LinkCredentials,
    private readonly pool: SignaturePool,
    private readonly limits = { burst: 10, perSecond: 2 },
  ) {
    this.tokens = limits.burst;
  }

  async accept(raw: unknown): Promise<{ reply: unknown; keys: SessionKeys }> {
    const parsed = helloSchema.safeParse(raw);
    if (!parsed.success) throw new HandshakeError(`malformed hello: ${describeHelloIssue(parsed.error.issues[0])}`, 400);
    const h = parsed.data;
    if (h.link !== this.creds.linkId) throw new HandshakeError('hello for another link (link_id differs from this module\'s credentials)');
    if (h.to !== this.creds.fingerprint) throw new HandshakeError('hello addressed to another module key');
    if (h.from !== this.creds.peerFingerprint) throw new HandshakeError('hello from a key that is not this link\'s peer_module.public_key');
    const now = Date.now();
    if (Math.abs(now - h.time) > HELLO_MAX_SKEW_MS) throw new HandshakeError(`hello time is more than ${HELLO_MAX_SKEW_MS / 1000} s from this module's clock (replayed, or clocks out of step)`);
    const nonceKey = Buffer.from(h.nonce).toString('base64');
    this.forgetOldNonces(now);
    if (this.seenNonces.has(nonceKey)) throw new HandshakeError('hello replayed (nonce already seen)');
    if (!this.takeToken(now)) throw new HandshakeError('too many handshakes; try again later', 429);
    // Reserved before the (asynchronous) verification, so copies of one hello in flight together are
    // refused too; released again when the signature does not verify (a forgery does not burn a nonce).
    this.seenNonces.set(nonceKey, h.time);
    const hDigest = helloDigest(h);
    if (!(await this.pool.verify(h.signature, hDigest, this.creds.peerPublicKey))) {
      this.seenNonces.delete(nonceKey);
      throw new HandshakeError('hello signature does not verify with peer_module.public_key');
    }
    const { cipherText, sharedSecret } = ml_kem768.encapsulate(h.kem);
    try {
      const sessionId = randomBytes(16).toString('base64url');
      const nonce = randomBytes(32);
      const aDigest = acceptDigest(hDigest, sessionId, nonce, cipherText);
      const signature = await this.pool.sign(aDigest, this.creds.secretKey);
      return {
        reply: { v: HANDSHAKE_VERSION, session: sessionId, nonce: enc(nonce), ciphertext: enc(cipherText), signature: enc(signature) },
        keys: deriveKeys(sharedSecret, aDigest, sessionId),
      };
    } finally {
      sharedSecret.fill(0);
    }
  }

  private takeToken(now: number): boolean {
    this.tokens = Math.min(this.limits.burst, this.tokens + ((now - this.lastRefill) / 1000) * this.limits.perSecond);
    this.lastRefill = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private forgetOldNonces(now: number): void {
    for (const [nonce, time] of this.seenNonces) {
      if (Math.abs(now - time) > HELLO_MAX_SKEW_MS) this.seenNonces.delete(nonce);
    }
  }
}
