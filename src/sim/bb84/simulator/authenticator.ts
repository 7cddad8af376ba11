/** Authentication of the transcript: each module signs its confirmation and verifies the peer's. */
import type { ModuleConfig } from '../../../config/schema.js';
import { KeyMaterialError, parseKeyMaterial } from '../../../crypto/keys.js';
import { SCHEME_SIZES, SignaturePool, type SignatureScheme } from '../../../crypto/signatures.js';

/** Signs this module's transcript confirmations and verifies the peer's. */
export interface TranscriptAuthenticator {
  /** Exact length of a signature on the wire (bytes). */
  readonly signatureBytes: number;
  sign(message: Uint8Array): Promise<Uint8Array>;
  verify(signature: Uint8Array, message: Uint8Array): Promise<boolean>;
  close?(): Promise<void>;
}

/** SLH-DSA / SPHINCS+ signatures computed in the SignaturePool's worker threads. */
export class SignatureAuthenticator implements TranscriptAuthenticator {
  readonly signatureBytes: number;

  /** `ownsPool`: close the pool with the authenticator. */
  constructor(
    private readonly pool: SignaturePool,
    private readonly secretKey: Uint8Array,
    private readonly peerPublicKey: Uint8Array,
    private readonly ownsPool = true,
  ) {
    this.signatureBytes = SCHEME_SIZES[pool.scheme].signature;
  }

  sign(message: Uint8Array): Promise<Uint8Array> {
    return this.pool.sign(message, this.secretKey);
  }

  verify(signature: Uint8Array, message: Uint8Array): Promise<boolean> {
    return this.pool.verify(signature, message, this.peerPublicKey);
  }

  async close(): Promise<void> {
    this.secretKey.fill(0);
    if (this.ownsPool) await this.pool.close();
  }
}

/**
 * Parses simulator.private_key / public_key for the configured scheme and starts a signature pool. Throws an Error
 * whose one-line message names the field (never its value) when a key is missing or malformed.
 */
export function authenticatorFromConfig(cfg: ModuleConfig, workers = 2, linkKeys?: LinkSigningKeys): SignatureAuthenticator {
  // The link credentials' keys sign the transcripts unless simulator.private_key / public_key are set.
  if (linkKeys && !cfg.simulator.private_key && !cfg.simulator.public_key) {
    return new SignatureAuthenticator(SignaturePool.create(linkKeys.scheme, { workers }), Uint8Array.from(linkKeys.secretKey), Uint8Array.from(linkKeys.peerPublicKey));
  }
  const scheme = cfg.simulator.signature;
  const parse = (field: 'private_key' | 'public_key', text: string | undefined, what: string): Uint8Array => {
    if (!text) {
      throw new Error(
        `simulator.${field}: required when module.sim is bb84 and simulator.${field === 'private_key' ? 'public_key' : 'private_key'} is set, or when there are no link credentials `
          + `(${what} for ${scheme}, hex or base64; or set QKDM_SIMULATOR_${field.toUpperCase()}_FILE; or leave both unset to sign with peer_auth.credentials)`,
      );
    }
    try {
      return parseKeyMaterial(text, field, scheme);
    } catch (err) {
      if (err instanceof KeyMaterialError) throw new Error(`simulator.${err.message}`);
      throw err;
    }
  };
  const secretKey = parse('private_key', cfg.simulator.private_key, "this module's signing secret key");
  const publicKey = parse('public_key', cfg.simulator.public_key, "the peer module's public key");
  return new SignatureAuthenticator(SignaturePool.create(scheme, { workers }), secretKey, publicKey);
}

/** Signing keys of the link credentials (peer_auth.credentials), lent to the BB84 transcript signatures. */
export interface LinkSigningKeys {
  scheme: SignatureScheme;
  secretKey: Uint8Array;
  peerPublicKey: Uint8Array;
}
