/**
 * Wire encodings and strict validation of the BB84 simulator's peer messages (docs/peer-protocol.md, "BB84
 * simulator messages"). Payloads are flat JSON objects of strings, numbers and booleans; bit strings travel as
 * base64 of the packed little-endian 32-bit words (BitArray.toWireBytes), Cascade questions as base64 of varints.
 *
 * Every check throws RoundProtocolError with a message naming the step and the field, never a value (payloads
 * carry key bits).
 */
import { BitArray } from '../common/bits.js';
import type { ParityQuestion } from '../reconciliation/cascade.js';
import { RoundProtocolError } from '../../Simulator.js';

export function protocolError(step: string, problem: string): RoundProtocolError {
  return new RoundProtocolError(`bb84 ${step}: ${problem}`);
}

/** The payload as a plain object with exactly the `required` fields (plus any of `optional`); nothing else. */
export function expectFields(payload: unknown, step: string, required: readonly string[], optional: readonly string[] = []): Record<string, unknown> {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw protocolError(step, 'payload must be an object');
  const obj = payload as Record<string, unknown>;
  const keys = Object.keys(obj);
  for (const f of required) if (!Object.hasOwn(obj, f)) throw protocolError(step, `field ${f} is missing`);
  const allowed = new Set([...required, ...optional]);
  if (keys.some((k) => !allowed.has(k))) throw protocolError(step, `payload has fields other than ${[...allowed].join(', ')}`);
  for (const k of keys) {
    const t = typeof obj[k];
    if (t !== 'string' && t !== 'number' && t !== 'boolean') throw protocolError(step, `field ${k} must be a string, number or boolean`);
  }
  return obj;
}

export function expectInt(value: unknown, min: number, max: number, step: string, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw protocolError(step, `${field} must be an integer in [${min}, ${max}]`);
  }
  return value;
}

export function expectNumber(value: unknown, min: number, max: number, step: string, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw protocolError(step, `${field} must be a number in [${min}, ${max}]`);
  }
  return value;
}

export function expectBoolean(value: unknown, step: string, field: string): boolean {
  if (typeof value !== 'boolean') throw protocolError(step, `${field} must be a boolean`);
  return value;
}

export function expectString(value: unknown, maxLength: number, pattern: RegExp, step: string, field: string): string {
  if (typeof value !== 'string' || value.length > maxLength || !pattern.test(value)) throw protocolError(step, `${field} is malformed`);
  return value;
}

// ---- bytes and bits ---------------------------------------------------------------------------------------------

export function bytesToBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function base64Length(bytes: number): number {
  return 4 * Math.ceil(bytes / 3);
}

/** The 6-bit value of each character of the standard base64 alphabet, -1 for every other UTF-16 code unit. */
const BASE64_VALUE = new Int8Array(65536).fill(-1);
for (let i = 0; i < 64; i++) BASE64_VALUE['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;
const PAD = 61; // '='

/**
 * The bytes `value` encodes if it is canonical base64 (exactly what Buffer's toString('base64') writes: the standard
 * alphabet, '=' padding to a multiple of 4 characters, the unused bits of the last character zero), else null.
 * Checked while decoding, instead of re-encoding the bytes (a second string as long as the value). The bytes sit
 * at the start of a buffer of whole 32-bit words.
 */
export function canonicalBase64Bytes(value: string): Uint8Array | null {
  const length = value.length;
  if (length % 4 !== 0) return null;
  if (length === 0) return new Uint8Array(0);
  const pad = value.charCodeAt(length - 1) === PAD ? (value.charCodeAt(length - 2) === PAD ? 2 : 1) : 0;
  const nBytes = (length / 4) * 3 - pad;
  const out = new Uint8Array(new ArrayBuffer(4 * Math.ceil(nBytes / 4)), 0, nBytes);
  const full = pad === 0 ? length : length - 4;
  let bad = 0; // negative once any character is outside the alphabet
  let o = 0;
  for (let i = 0; i < full; i += 4) {
    const a = BASE64_VALUE[value.charCodeAt(i)]!;
    const b = BASE64_VALUE[value.charCodeAt(i + 1)]!;
    const c = BASE64_VALUE[value.charCodeAt(i + 2)]!;
    const d = BASE64_VALUE[value.charCodeAt(i + 3)]!;
    bad |= a | b | c | d;
    const v = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = v >>> 16;
    out[o++] = v >>> 8;
    out[o++] = v;
  }
  if (pad !== 0) {
    const a = BASE64_VALUE[value.charCodeAt(full)]!;
    const b = BASE64_VALUE[value.charCodeAt(full + 1)]!;
    const c = pad === 1 ? BASE64_VALUE[value.charCodeAt(full + 2)]! : 0;
    bad |= a | b | c;
    // The bits past the last byte must be zero (else another text encodes the same bytes).
    if (pad === 1 ? (c & 3) !== 0 : (b & 15) !== 0) bad = -1;
    const v = (a << 18) | (b << 12) | (c << 6);
    out[o++] = v >>> 16;
    if (pad === 1) out[o++] = v >>> 8;
  }
  if (bad < 0) {
    out.fill(0);
    return null;
  }
  return out;
}

/** Strict, canonical base64 of exactly `bytes` bytes (or at most `bytes` when `exact` is false). */
export function bytesFromBase64(value: unknown, bytes: number, step: string, field: string, exact = true): Uint8Array {
  if (typeof value !== 'string') throw protocolError(step, `${field} must be a base64 string`);
  if (exact ? value.length !== base64Length(bytes) : value.length > base64Length(bytes)) {
    throw protocolError(step, exact ? `${field} must encode exactly ${bytes} bytes` : `${field} must encode at most ${bytes} bytes`);
  }
  const out = canonicalBase64Bytes(value);
  if (out === null || (exact && out.length !== bytes)) {
    out?.fill(0);
    throw protocolError(step, `${field} is not canonical base64 of ${exact ? 'exactly ' : 'at most '}${bytes} bytes`);
  }
  return out;
}

/** A bit string on the wire: base64 of its packed words (4·ceil(n/32) bytes). */
export function bitsToBase64(bits: BitArray): string {
  return Buffer.from(bits.words.buffer, bits.words.byteOffset, bits.words.length * 4).toString('base64');
}

/** Decodes exactly `nBits` bits; bits past nBits in the last word must be zero. */
export function bitsFromBase64(value: unknown, nBits: number, step: string, field: string): BitArray {
  const nWords = (nBits + 31) >>> 5;
  const bytes = bytesFromBase64(value, nWords * 4, step, field);
  // The decoded bytes are the words' buffer (a little-endian host, as BitArray.fromWireBytes assumes).
  const words = new Uint32Array(bytes.buffer, 0, nWords);
  const bits = new BitArray(nBits, words);
  const r = nBits & 31;
  if (r !== 0 && words[nWords - 1]! >>> r !== 0) {
    words.fill(0);
    throw protocolError(step, `${field} has bits set past its length`);
  }
  return bits;
}

// ---- Cascade parity questions and answers -------------------------------------------------------------------------

/**
 * Questions are sent as base64 of unsigned LEB128 varints, three per question: the pass, the zigzag-encoded
 * difference between its start and the previous question's end (0 for the first), and end - start - 1. Top-level
 * blocks in order cost about 3 bytes a question, BINARY halves 4-6 bytes.
 */
class VarintWriter {
  private buf = new Uint8Array(1024);
  length = 0;

  write(v: number): void {
    if (this.length + 5 > this.buf.length) {
      const next = new Uint8Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    let x = v;
    while (x >= 0x80) {
      this.buf[this.length++] = (x % 0x80) | 0x80;
      x = Math.floor(x / 0x80);
    }
    this.buf[this.length++] = x;
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

const zigzag = (d: number): number => (d >= 0 ? 2 * d : -2 * d - 1);
const unzigzag = (z: number): number => (z % 2 === 0 ? z / 2 : -(z + 1) / 2);

export interface EncodedQuestions {
  /** Number of questions in `data`. */
  count: number;
  /** base64 of the varints. */
  data: string;
}

/** Encodes questions into one or more chunks, each at most `maxBytes` bytes before base64. */
export function encodeQuestions(questions: readonly ParityQuestion[], maxBytes: number): EncodedQuestions[] {
  const chunks: EncodedQuestions[] = [];
  let w = new VarintWriter();
  let count = 0;
  let prevEnd = 0;
  for (const q of questions) {
    if (count > 0 && w.length + 15 > maxBytes) {
      chunks.push({ count, data: bytesToBase64(w.bytes()) });
      w = new VarintWriter();
      count = 0;
      prevEnd = 0;
    }
    w.write(q.pass);
    w.write(zigzag(q.start - prevEnd));
    w.write(q.end - q.start - 1);
    prevEnd = q.end;
    count++;
  }
  if (count > 0 || chunks.length === 0) chunks.push({ count, data: bytesToBase64(w.bytes()) });
  return chunks;
}

/**
 * Decodes exactly `count` questions into packed triples (pass, start, end) - the form the Cascade responder answers
 * without building an object per question. Ranges are checked by the responder.
 */
export function decodeQuestions(value: unknown, count: number, maxBytes: number, step: string): Int32Array {
  if (typeof value !== 'string' || value.length > base64Length(maxBytes)) throw protocolError(step, 'questions must be base64 within the message size limit');
  const bytes = Buffer.from(value, 'base64');
  if (bytes.toString('base64') !== value) throw protocolError(step, 'questions are not canonical base64');
  const out = new Int32Array(3 * count);
  let pos = 0;
  const read = (): number => {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 5; i++) {
      if (pos >= bytes.length) throw protocolError(step, 'questions end early');
      const b = bytes[pos++]!;
      v += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (i > 0 && b === 0) throw protocolError(step, 'questions contain an overlong varint');
        return v;
      }
      scale *= 0x80;
    }
    throw protocolError(step, 'questions contain a varint longer than 5 bytes');
  };
  let prevEnd = 0;
  for (let i = 0; i < count; i++) {
    const pass = read();
    const start = prevEnd + unzigzag(read());
    const end = start + read() + 1;
    // Beyond int32 no key position is valid; refuse here rather than let the triple wrap around.
    if (pass > 0x7fffffff || start < 0 || end > 0x7fffffff) throw protocolError(step, `question ${i} is out of range`);
    out[3 * i] = pass;
    out[3 * i + 1] = start;
    out[3 * i + 2] = end;
    prevEnd = end;
  }
  if (pos !== bytes.length) throw protocolError(step, 'questions have trailing bytes');
  return out;
}

/** Parity answers (one bit each) as packed bits. */
export function answersToBase64(answers: Uint8Array): string {
  const bits = new BitArray(answers.length);
  for (let i = 0; i < answers.length; i++) if (answers[i]) bits.set(i, 1);
  return bitsToBase64(bits);
}

export function answersFromBase64(value: unknown, count: number, step: string): Uint8Array {
  const bits = bitsFromBase64(value, count, step, 'parities');
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) out[i] = bits.get(i);
  return out;
}
