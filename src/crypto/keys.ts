/**
 * Signing key material: parsing the configured text (simulator.private_key / public_key), generating key
 * pairs, encoding keys as hex.
 *
 * Accepted text: hex (upper or lower case, optional 0x prefix) or base64 (standard or URL-safe, padding
 * optional); whitespace anywhere is ignored (multi-line YAML scalars). The decoded length must be exactly
 * the scheme's key length. Errors (KeyMaterialError) name the field, the scheme and the expected length,
 * never the value.
 */
import { SCHEME_SIZES, SIGNATURE_SCHEMES, SignaturePool, isSignatureScheme, type KeyPair, type SignatureScheme } from './signatures.js';

export type KeyField = 'private_key' | 'public_key';

export class KeyMaterialError extends Error {
  readonly field: KeyField;
  readonly scheme: SignatureScheme;
  readonly expectedBytes: number;

  constructor(field: KeyField, scheme: SignatureScheme, expectedBytes: number, problem: string) {
    super(
      `${field}: ${problem}; expected ${expectedBytes} bytes for ${scheme} as hex (${expectedBytes * 2} hex digits, `
        + `optional 0x) or base64 (${Math.ceil(expectedBytes / 3) * 4} characters)`,
    );
    this.name = 'KeyMaterialError';
    this.field = field;
    this.scheme = scheme;
    this.expectedBytes = expectedBytes;
  }
}

const HEX = /^[0-9a-fA-F]*$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64URL = /^[A-Za-z0-9_-]*={0,2}$/;

function expectedLength(what: KeyField, scheme: SignatureScheme): number {
  return what === 'private_key' ? SCHEME_SIZES[scheme].secretKey : SCHEME_SIZES[scheme].publicKey;
}

function decodeHex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Strict base64 (standard or URL-safe): null unless `s` is the canonical encoding of its bytes. */
function decodeBase64(s: string): Uint8Array | null {
  const std = BASE64.test(s);
  if (!std && !BASE64URL.test(s)) return null;
  const body = s.replace(/=+$/, '');
  if (body.length % 4 === 1) return null;
  if (s.length !== body.length && s.length % 4 !== 0) return null; // padded, but badly
  const buf = Buffer.from(body, std ? 'base64' : 'base64url');
  try {
    // Reject non-canonical text (stray bits in the last character), which Buffer silently accepts.
    if (buf.toString(std ? 'base64' : 'base64url').replace(/=+$/, '') !== body) return null;
    return new Uint8Array(buf); // a copy outside Buffer's shared pool
  } finally {
    buf.fill(0);
  }
}

/**
 * Decodes configured key text for `scheme`. Throws KeyMaterialError (or TypeError for an unknown scheme)
 * with a message that never contains the value.
 */
export function parseKeyMaterial(text: string, what: KeyField, scheme: SignatureScheme): Uint8Array {
  if (!isSignatureScheme(scheme)) {
    throw new TypeError(`unknown signature scheme (expected one of ${SIGNATURE_SCHEMES.join(', ')})`);
  }
  const expected = expectedLength(what, scheme);
  function fail(problem: string): never {
    throw new KeyMaterialError(what, scheme, expected, problem);
  }
  if (typeof text !== 'string') fail('not text');
  const s = text.replace(/\s+/g, '');
  if (s.length === 0) fail('empty');

  if (/^0x/i.test(s)) {
    const digits = s.slice(2);
    if (!HEX.test(digits) || digits.length === 0) fail('0x prefix but not hex');
    if (digits.length % 2 !== 0) fail('odd number of hex digits');
    if (digits.length !== expected * 2) fail(`wrong length: ${digits.length / 2} bytes`);
    return decodeHex(digits);
  }
  if (HEX.test(s) && s.length === expected * 2) return decodeHex(s);
  const b64 = decodeBase64(s);
  if (b64) {
    if (b64.length === expected) return b64;
    b64.fill(0);
    // Text made only of hex digits is more likely hex of the wrong length than base64.
    if (HEX.test(s) && s.length % 2 === 0) fail(`wrong length: ${s.length / 2} bytes as hex`);
    fail(`wrong length: ${b64.length} bytes as base64`);
  }
  if (HEX.test(s)) fail(s.length % 2 === 0 ? `wrong length: ${s.length / 2} bytes as hex` : 'odd number of hex digits');
  return fail('neither hex nor base64');
}

/** Lower-case hex without prefix. */
export function encodeKey(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/**
 * A new key pair for `scheme`, generated in a short-lived worker thread (so the calling thread neither blocks
 * nor loads the `sphincs` WASM package). Pass a pool of the same scheme to reuse its workers.
 * Needs the compiled worker (npm run build) when called from the .ts sources.
 */
export async function generateKeyPair(scheme: SignatureScheme, pool?: SignaturePool): Promise<KeyPair> {
  if (pool) {
    if (pool.scheme !== scheme) throw new TypeError(`the pool signs with ${pool.scheme}, not ${scheme}`);
    return pool.generateKeyPair();
  }
  const own = SignaturePool.create(scheme);
  try {
    return await own.generateKeyPair();
  } finally {
    await own.close();
  }
}
