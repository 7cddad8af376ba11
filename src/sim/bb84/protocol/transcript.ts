/**
 * The classical transcript of one BB84 block, hashed identically at both ends, and the messages the two modules
 * sign over it.
 *
 * Each end feeds, in order:
 *   1. a header: the domain-separation label TRANSCRIPT_LABEL, keyStreamId, firstIndex (the block number, which is
 *      independent of the exchange's roundId), keyLengthBits and maxKeys;
 *   2. every message of the block as it was sent or received: who sent it (Alice / Bob), the step name and the
 *      canonical JSON of the payload (object keys sorted, no whitespace);
 *   3. after the frame exchange, the round's nonces nonceA and nonceB (also inside the first two messages; bound a
 *      second time as their own record so the nonces are explicit in the hash);
 * every variable-length field with an 8-byte big-endian length prefix, every record with a one-byte type, into
 * SHA-256 (node:crypto). Nothing is ambiguous: two different sequences of records never hash the same bytes.
 *
 * The final messages carry signatures over `confirmMessage(role, digest)`, where the digest covers the transcript
 * up to and including the signed message itself without its `signature` field. A replayed, reordered, altered,
 * injected or dropped message makes the two transcripts differ, so the peer's signature does not verify and the
 * block yields no key.
 */
import { createHash, type Hash } from 'node:crypto';

export const TRANSCRIPT_LABEL = 'qkdm/bb84/transcript/v1';
const CONFIRM_LABEL = 'qkdm/bb84/confirm/v1/';
/** Deepest nesting canonicalJson accepts (the protocol's payloads are flat). */
const MAX_DEPTH = 8;

export type Party = 'alice' | 'bob';

const RECORD_HEADER = 1;
const RECORD_BY_ALICE = 2;
const RECORD_BY_BOB = 3;
const RECORD_NONCES = 4;

export interface TranscriptHeader {
  keyStreamId: string;
  firstIndex: number;
  keyLengthBits: number;
  maxKeys: number;
}

/**
 * Canonical JSON: object keys sorted by code unit, no whitespace, properties whose value is undefined left out (as
 * JSON.stringify does), numbers as JSON.stringify writes them (shortest round-trip form; -0 as 0). A value survives
 * a JSON round trip unchanged in this form, so the sender (hashing what it sends) and the receiver (hashing what it
 * parsed) get the same bytes. Throws TypeError for values JSON cannot carry (non-finite numbers, functions, ...).
 */
export function canonicalJson(value: unknown): string {
  return canonicalJsonParts(value).join('');
}

/**
 * Strings made of these characters only (printable ASCII but '"' and '\\') are the ones JSON.stringify leaves as they
 * are: they are quoted unchanged, and their UTF-8 bytes are their code units. Anchored, the test scans a quarter faster
 * than a search for a character to escape (a failing string, which only a string to escape is, costs twice as much).
 */
const PLAIN = /^[ !#-[\]-~]*$/;
/** Plain strings at least this long stay pieces of their own (hashed in place, their byte count their length). */
const LONG_PIECE = 1024;

/**
 * canonicalJson as pieces whose concatenation is the canonical text, so long strings (the base64 bit strings of the
 * protocol) are hashed in place instead of being copied into one large string.
 */
export function canonicalJsonParts(value: unknown): string[] {
  return canonicalPieces(value).pieces;
}

/** The canonical text in pieces: short text joined, long plain strings apart and marked (their bytes are latin1). */
interface CanonicalPieces {
  pieces: string[];
  /** plain[i]: pieces[i] is printable ASCII without '"' or '\\' (bytes = code units). */
  plain: boolean[];
}

function canonicalPieces(value: unknown): CanonicalPieces {
  const pieces: string[] = [];
  const plain: boolean[] = [];
  let pending = ''; // short text not yet a piece
  const text = (s: string): void => {
    pending += s;
  };
  const walk = (v: unknown, depth: number): void => {
    if (depth > MAX_DEPTH) throw new TypeError('canonicalJson: nested too deeply');
    if (v === null) {
      text('null');
      return;
    }
    switch (typeof v) {
      case 'string':
        if (!PLAIN.test(v)) text(JSON.stringify(v));
        else if (v.length < LONG_PIECE) text(`"${v}"`);
        else {
          pieces.push(`${pending}"`);
          plain.push(false);
          pieces.push(v);
          plain.push(true);
          pending = '"';
        }
        return;
      case 'boolean':
        text(v ? 'true' : 'false');
        return;
      case 'number':
        if (!Number.isFinite(v)) throw new TypeError('canonicalJson: numbers must be finite');
        text(JSON.stringify(v));
        return;
      case 'object': {
        if (Array.isArray(v)) {
          text('[');
          v.forEach((item, i) => {
            if (i > 0) text(',');
            walk(item === undefined ? null : item, depth + 1);
          });
          text(']');
          return;
        }
        const obj = v as Record<string, unknown>;
        const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
        text('{');
        keys.forEach((k, i) => {
          text(`${i > 0 ? ',' : ''}${JSON.stringify(k)}:`);
          walk(obj[k], depth + 1);
        });
        text('}');
        return;
      }
      default:
        throw new TypeError(`canonicalJson: cannot encode a ${typeof v}`);
    }
  };
  walk(value, 0);
  if (pending !== '' || pieces.length === 0) {
    pieces.push(pending);
    plain.push(false);
  }
  return { pieces, plain };
}

function lengthPrefix(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** One end's running transcript hash of a block. */
export class Transcript {
  private readonly hash: Hash = createHash('sha256');
  private records = 0;

  constructor(header: TranscriptHeader) {
    this.record(RECORD_HEADER, [TRANSCRIPT_LABEL, header.keyStreamId, String(header.firstIndex), String(header.keyLengthBits), String(header.maxKeys)]);
  }

  /** A message of the block: who sent it, its step, its payload (hashed as canonical JSON). */
  message(from: Party, step: string, payload: unknown): this {
    return this.record(from === 'alice' ? RECORD_BY_ALICE : RECORD_BY_BOB, [step, canonicalPieces(payload)]);
  }

  /** The round's nonces, bound explicitly once both are known. */
  nonces(nonceA: Uint8Array, nonceB: Uint8Array): this {
    return this.record(RECORD_NONCES, [nonceA, nonceB]);
  }

  /** The hash of everything recorded so far (the transcript can go on afterwards). */
  digest(): Buffer {
    return this.hash.copy().digest();
  }

  /** Number of records so far (header included). */
  get length(): number {
    return this.records;
  }

  /**
   * Fields are bytes, or text hashed as its UTF-8 bytes (a list of strings is one field: their concatenation; so is a
   * canonical payload, whose plain pieces are their code units).
   */
  private record(type: number, fields: (Uint8Array | string | CanonicalPieces)[]): this {
    this.hash.update(Uint8Array.of(type));
    this.hash.update(lengthPrefix(fields.length));
    for (const f of fields) {
      if (typeof f === 'string') {
        this.hash.update(lengthPrefix(Buffer.byteLength(f, 'utf8')));
        this.hash.update(f, 'utf8');
      } else if (f instanceof Uint8Array) {
        this.hash.update(lengthPrefix(f.length));
        this.hash.update(f);
      } else {
        const { pieces, plain } = f;
        let bytes = 0;
        for (let i = 0; i < pieces.length; i++) bytes += plain[i] ? pieces[i]!.length : Buffer.byteLength(pieces[i]!, 'utf8');
        this.hash.update(lengthPrefix(bytes));
        for (let i = 0; i < pieces.length; i++) this.hash.update(pieces[i]!, plain[i] ? 'latin1' : 'utf8');
      }
    }
    this.records++;
    return this;
  }
}

/** The bytes a party signs (and the peer verifies) to confirm a transcript digest: label, role, digest. */
export function confirmMessage(signer: Party, digest: Uint8Array): Uint8Array {
  const label = Buffer.from(`${CONFIRM_LABEL}${signer}\0`, 'utf8');
  const out = new Uint8Array(label.length + digest.length);
  out.set(label, 0);
  out.set(digest, label.length);
  return out;
}
