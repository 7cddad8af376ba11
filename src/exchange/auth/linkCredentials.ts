/**
 * Link credentials: what one module needs to authenticate the peer channel of its link
 * (docs/security.md, "Peer channel").
 *
 * A link has two credential files, one per module, written together by `npm run keygen -- --pair DIR`:
 *   DIR/<sender>.json    for the module with module.sender 1 (its own SLH-DSA secret key, the peer's public key)
 *   DIR/<detector>.json  for the module with module.sender 0 (the same, the other way round)
 * Each file holds exactly one secret: its own module's signing key. A file states which module it is for
 * (name and module.sender); a module refuses a file made for the other end, a file whose public key does
 * not belong to its secret key, and a file that names its own key as the peer's.
 *
 * Errors name the field and the problem, never key bytes.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { encodeKey, generateKeyPair, parseKeyMaterial } from '../../crypto/keys.js';
import { SCHEME_SIZES, SIGNATURE_SCHEMES, type SignatureScheme } from '../../crypto/signatures.js';

export const CREDENTIALS_FORMAT = 'qkdm-link-credentials/1';

const moduleName = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'expected a name of 1 to 64 characters A-Z a-z 0-9 . _ -');
const sender = z.union([z.literal(0), z.literal(1)], { error: 'expected 0 or 1' });
const keyText = z.string().regex(/^[0-9a-f]+$/, 'expected lower-case hex');

const fileSchema = z.object({
  format: z.literal(CREDENTIALS_FORMAT, { error: `expected "${CREDENTIALS_FORMAT}"` }),
  link_id: z.string().regex(/^[0-9a-f-]{36}$/, 'expected a UUID'),
  signature: z.enum(SIGNATURE_SCHEMES as unknown as [SignatureScheme, ...SignatureScheme[]], { error: `expected one of ${SIGNATURE_SCHEMES.join(', ')}` }),
  this_module: z.object({ name: moduleName, sender }),
  secret_key: keyText,
  public_key: keyText,
  peer_module: z.object({ name: moduleName, sender, public_key: keyText }),
});
export type LinkCredentialsFile = z.infer<typeof fileSchema>;

/** Parsed, checked credentials of this module. `secretKey` is this module's only secret. */
export interface LinkCredentials {
  linkId: string;
  scheme: SignatureScheme;
  name: string;
  sender: 0 | 1;
  secretKey: Uint8Array;
  publicKey: Uint8Array;
  peerName: string;
  peerPublicKey: Uint8Array;
  /** Short public identifiers of the two keys (first 16 bytes of SHA-256, hex): safe to log. */
  fingerprint: string;
  peerFingerprint: string;
}

/** What a file path in the configuration looks like (anything else is never echoed in an error). */
const PATH_LIKE = /^[A-Za-z0-9._~\/-][A-Za-z0-9 ._~\/-]{0,254}$/;

export class CredentialsError extends Error {
  override readonly name = 'CredentialsError';
}

export function keyFingerprint(publicKey: Uint8Array): string {
  return createHash('sha256').update(publicKey).digest('hex').slice(0, 32);
}

/**
 * Reads credentials from `value`: JSON text (what QKDM_PEER_AUTH_CREDENTIALS_FILE gives) or the path of
 * the file. `field` names the setting in messages.
 */
export function loadLinkCredentials(value: string, expectedSender: 0 | 1, field = 'peer_auth.credentials'): LinkCredentials {
  let text: string;
  if (value.trimStart().replace(/^\uFEFF/, '').startsWith('{')) {
    text = value;
  } else {
    try {
      text = readFileSync(value, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // The value is echoed only when it looks like a path: a mistyped setting may hold key material.
      const shown = PATH_LIKE.test(value) && !/^[0-9a-fA-F]{32,}$/.test(value) ? value : '(the value, not shown: it is neither a JSON credentials document nor a path)';
      throw new CredentialsError(
        `${field}: cannot read ${shown}: ${code === 'ENOENT' ? 'no such file' : (code ?? 'read error')} `
          + `(create a link's credentials with: npm run keygen -- --pair DIR, then give each module its own file)`,
      );
    }
  }
  text = text.replace(/^\uFEFF/, ''); // a byte-order mark some editors write
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CredentialsError(`${field}: not a JSON credentials file`);
  }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new CredentialsError(`${field}: ${issue.path.join('.') || 'file'}: ${issue.message}`);
  }
  return checkCredentials(parsed.data, expectedSender, field);
}

function checkCredentials(f: LinkCredentialsFile, expectedSender: 0 | 1, field: string): LinkCredentials {
  if (f.this_module.sender !== expectedSender) {
    throw new CredentialsError(
      `${field}: this file is for module '${f.this_module.name}' (module.sender ${f.this_module.sender}), but this module has module.sender ${expectedSender}: `
        + `give each module its own file (the one whose this_module.sender matches)`,
    );
  }
  if (f.peer_module.sender === f.this_module.sender) {
    throw new CredentialsError(`${field}: this_module and peer_module have the same sender; one end of a link must be 1 and the other 0`);
  }
  const decode = (text: string, what: 'private_key' | 'public_key', name: string): Uint8Array => {
    try {
      return parseKeyMaterial(text, what, f.signature);
    } catch {
      const expected = what === 'private_key' ? SCHEME_SIZES[f.signature].secretKey : SCHEME_SIZES[f.signature].publicKey;
      throw new CredentialsError(`${field}: ${name}: expected ${expected} bytes of hex for ${f.signature}`);
    }
  };
  const secretKey = decode(f.secret_key, 'private_key', 'secret_key');
  const publicKey = decode(f.public_key, 'public_key', 'public_key');
  const peerPublicKey = decode(f.peer_module.public_key, 'public_key', 'peer_module.public_key');
  // SLH-DSA and SPHINCS+ secret keys end with the public key (PK.seed || PK.root).
  if (!equalBytes(secretKey.subarray(secretKey.length - publicKey.length), publicKey)) {
    secretKey.fill(0);
    throw new CredentialsError(`${field}: public_key does not belong to secret_key (a file edited by hand?); generate the pair again`);
  }
  if (equalBytes(publicKey, peerPublicKey)) {
    secretKey.fill(0);
    throw new CredentialsError(`${field}: peer_module.public_key is this module's own public key; it must be the peer module's`);
  }
  return {
    linkId: f.link_id,
    scheme: f.signature,
    name: f.this_module.name,
    sender: f.this_module.sender,
    secretKey,
    publicKey,
    peerName: f.peer_module.name,
    peerPublicKey,
    fingerprint: keyFingerprint(publicKey),
    peerFingerprint: keyFingerprint(peerPublicKey),
  };
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export interface CredentialPair {
  sender: LinkCredentialsFile;
  detector: LinkCredentialsFile;
}

/**
 * New credentials for one link: a signing key pair per module, each file with its own secret and the
 * other's public key. `names` label the files (default alice / bob).
 */
export async function generateCredentialPair(
  scheme: SignatureScheme = 'slh-dsa-sha2-128f',
  names: { sender: string; detector: string } = { sender: 'alice', detector: 'bob' },
): Promise<CredentialPair> {
  const [a, b] = [await generateKeyPair(scheme), await generateKeyPair(scheme)];
  const linkId = randomUUID();
  const file = (own: typeof a, ownName: string, ownSender: 0 | 1, peer: typeof a, peerName: string): LinkCredentialsFile => ({
    format: CREDENTIALS_FORMAT,
    link_id: linkId,
    signature: scheme,
    this_module: { name: ownName, sender: ownSender },
    secret_key: encodeKey(own.secretKey),
    public_key: encodeKey(own.publicKey),
    peer_module: { name: peerName, sender: ownSender === 1 ? 0 : 1, public_key: encodeKey(peer.publicKey) },
  });
  const pair = { sender: file(a, names.sender, 1, b, names.detector), detector: file(b, names.detector, 0, a, names.sender) };
  a.secretKey.fill(0);
  b.secretKey.fill(0);
  return pair;
}
