/**
 * ETSI 004 QoS negotiation: does a requested QoS fit the link and the stream, and if not, the
 * counter-proposal OPEN_CONNECT returns with status 7. Pure: the link capability and the existing
 * stream (if any) are passed in.
 */
import type { KeyStream } from '../core/types.js';
import { MAX_KEY_LENGTH_BITS, MAX_TIMEOUT_MS } from '../core/types.js';
import { METADATA_MIMETYPE, type Etsi004Qos, type Etsi004QosRequest } from './etsi004Schemas.js';

/** What the KM fills in for a new stream when the application leaves a field null or out (6.1 NOTE). */
export const DEFAULT_KEY_CHUNK_BYTES = 32;
export const DEFAULT_TIMEOUT_MS = 5000;

/**
 * The QoS of a request with every field the application left null or out filled in (ETSI GS QKD 004
 * v2.1.1, 6.1 NOTE): from the stream when it exists here (joining: 6.2.2), else the module's defaults.
 */
export function fillQos(requested: Etsi004QosRequest | undefined, existing?: Readonly<KeyStream>): Etsi004Qos {
  const r = requested ?? {};
  return {
    Key_chunk_size: r.Key_chunk_size ?? (existing ? existing.keyLengthBits / 8 : DEFAULT_KEY_CHUNK_BYTES),
    Max_bps: r.Max_bps ?? 0,
    Min_bps: r.Min_bps ?? 0,
    Jitter: r.Jitter ?? 0,
    Priority: r.Priority ?? 0,
    Timeout: r.Timeout ?? (existing ? existing.timeoutMs : DEFAULT_TIMEOUT_MS),
    TTL: r.TTL ?? (existing?.localOpen ? existing.ttlSeconds : 0),
    Metadata_mimetype: r.Metadata_mimetype ?? METADATA_MIMETYPE,
  };
}

/** Key_chunk_size range in bytes (a stream's key length is 8..MAX_KEY_LENGTH_BITS bits). */
export const MIN_KEY_CHUNK_BYTES = 1;
export const MAX_KEY_CHUNK_BYTES = MAX_KEY_LENGTH_BITS / 8;

export interface QosVerdict {
  /** The QoS the module would accept: the request itself when `problems` is empty. */
  qos: Etsi004Qos;
  /** What could not be met, one phrase per field (empty: accepted). */
  problems: string[];
}

/**
 * Checks a requested QoS.
 * @param secretBitsPerSecond the link's expected secret-key rate for a key size (undefined: unknown, not checked)
 * @param existing the stream the request joins or repeats, if it exists here
 */
export function negotiateQos(
  requested: Etsi004Qos,
  secretBitsPerSecond: (keyLengthBits: number) => number | undefined,
  existing?: Readonly<KeyStream>,
): QosVerdict {
  const qos: Etsi004Qos = { ...requested };
  const problems: string[] = [];

  if (existing) {
    // Joining (or repeating): the stream's key size is filled in; another value is not an error (6.1 NOTE).
    qos.Key_chunk_size = existing.keyLengthBits / 8;
  } else if (qos.Key_chunk_size < MIN_KEY_CHUNK_BYTES || qos.Key_chunk_size > MAX_KEY_CHUNK_BYTES) {
    qos.Key_chunk_size = Math.min(Math.max(qos.Key_chunk_size, MIN_KEY_CHUNK_BYTES), MAX_KEY_CHUNK_BYTES);
    problems.push(`Key_chunk_size: must be ${MIN_KEY_CHUNK_BYTES} to ${MAX_KEY_CHUNK_BYTES} bytes`);
  }

  if (qos.Timeout > MAX_TIMEOUT_MS) {
    qos.Timeout = MAX_TIMEOUT_MS;
    problems.push(`Timeout: at most ${MAX_TIMEOUT_MS} ms`);
  }

  // A repeated OPEN_CONNECT by the application that opened the stream cannot change its TTL.
  if (existing?.localOpen && qos.TTL !== existing.ttlSeconds) {
    qos.TTL = existing.ttlSeconds;
    problems.push(`TTL: the stream was opened with TTL ${existing.ttlSeconds} s`);
  }

  // Empty: the application wants no metadata (answered with none); anything else must be JSON.
  if (qos.Metadata_mimetype !== '' && mediaType(qos.Metadata_mimetype) !== METADATA_MIMETYPE) {
    qos.Metadata_mimetype = METADATA_MIMETYPE;
    problems.push(`Metadata_mimetype: only ${METADATA_MIMETYPE}`);
  }

  const capability = secretBitsPerSecond(qos.Key_chunk_size * 8);
  if (capability !== undefined && Number.isFinite(capability) && qos.Min_bps > capability) {
    qos.Min_bps = Math.max(0, Math.floor(capability));
    problems.push(`Min_bps: the link is expected to produce about ${qos.Min_bps} secret bit/s for this key size`);
  }
  if (qos.Max_bps > 0 && qos.Max_bps < qos.Min_bps) {
    qos.Max_bps = qos.Min_bps;
    problems.push('Max_bps: must not be below Min_bps (0: no maximum)');
  }
  return { qos, problems };
}

/** `Application/JSON; charset=utf-8` -> `application/json`. */
function mediaType(value: string): string {
  return value.split(';')[0]!.trim().toLowerCase();
}
