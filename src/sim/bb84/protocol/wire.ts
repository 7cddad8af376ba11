/**
 * Wire encodings and strict validation of the BB84 simulator's peer messages (docs/peer-protocol.md, "BB84
 * simulator messages"). Payloads are flat JSON objects of strings, numbers, booleans and lists of strings; bit
 * strings travel as base64 of the packed little-endian 32-bit words (BitArray.toWireBytes), the long ones (a frame's,
 * the sifting's, the seed's) as lists of base64 chunks (`bitsToChunks`), Cascade questions as base64 of varints.
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

/** The most strings a list-valued field may hold before its own decoder bounds it (a chunked field has at most 11). */
const MAX_LIST = 64;

/**
 * The payload as a plain object with exactly the `required` fields (plus any of `optional`); nothing else. Each field
 * is a string, number, boolean or a list of at most MAX_LIST strings (a chunked field; its decoder checks the rest).
 */
export function expectFields(payload: unknown, step: string, required: readonly string[], optional: readonly string[] = []): Record<string, unknown> {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw protocolError(step, 'payload must be an object');
  const obj = payload as Record<string, unknown>;
  const keys = Object.keys(obj);
  for (const f of required) if (!Object.hasOwn(obj, f)) throw protocolError(step, `field ${f} is missing`);
  const allowed = new Set([...required, ...optional]);
  if (keys.some((k) => !allowed.has(k))) throw protocolError(step, `payload has fields other than ${[...allowed].join(', ')}`);
  for (const k of keys) {
    const v = obj[k];
    const t = typeof v;
    if (t === 'string' || t === 'number' || t === 'boolean') continue;
    if (Array.isArray(v) && v.length <= MAX_LIST && v.every((item) => typeof item === 'string')) continue;
    throw protocolError(step, `field ${k} must be a string, number, boolean or a list of at most ${MAX_LIST} strings`);
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

/** The 6-bit value of each ASCII byte of the standard base64 alphabet, -1 for every other byte. */
const BASE64_VALUE = new Int8Array(256).fill(-1);
for (let i = 0; i < 64; i++) BASE64_VALUE['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;
const PAD = 61; // '='
const UTF8 = new TextEncoder();
/** Texts up to this many characters are checked in one reused buffer (a frame's fields are about 275k). */
const MAX_REUSED_TEXT = 1 << 20;
/** The text being checked, as bytes; zeroed after every use (the text may encode key bits). */
let base64Text = new Uint8Array(0);

/**
 * Negative if any of the first `end` bytes is not in the base64 alphabet. A function of its own so that the loop
 * is optimised with the function rather than on stack replacement (whose code then deoptimises after the loop).
 */
function alphabetCheck(text: Uint8Array, end: number): number {
  let bad = 0;
  let i = 0;
  for (; i + 4 <= end; i += 4) bad |= BASE64_VALUE[text[i]!]! | BASE64_VALUE[text[i + 1]!]! | BASE64_VALUE[text[i + 2]!]! | BASE64_VALUE[text[i + 3]!]!;
  for (; i < end; i++) bad |= BASE64_VALUE[text[i]!]!;
  return bad;
}

/** The bytes a base64 text of `length` characters ending in `pad` '=' would encode; -1 if `length` is not a multiple of 4. */
function decodedLength(value: string): number {
  const length = value.length;
  if (length % 4 !== 0) return -1;
  if (length === 0) return 0;
  const pad = value.charCodeAt(length - 1) === PAD ? (value.charCodeAt(length - 2) === PAD ? 2 : 1) : 0;
  return (length / 4) * 3 - pad;
}

/**
 * Writes the bytes `value` encodes into `out` from `at` if it is canonical base64 (exactly what Buffer's
 * toString('base64') writes: the standard alphabet, '=' padding to a multiple of 4 characters, the unused bits of
 * the last character zero) and they fit; returns their count, or -1 (nothing written) if not.
 * The characters are checked in JavaScript; only then does Node's native decoder turn them into bytes (it is
 * lenient, but on a text that passed these checks every decoder gives the same bytes). This avoids re-encoding the
 * bytes (a second string as long as the value) and takes about half the time of decoding in JavaScript.
 */
function canonicalBase64Into(value: string, out: Uint8Array, at: number): number {
  const nBytes = decodedLength(value);
  if (nBytes <= 0 || at + nBytes > out.length) return nBytes === 0 ? 0 : -1;
  const length = value.length;
  const pad = (length / 4) * 3 - nBytes;
  if (base64Text.length < length && length <= MAX_REUSED_TEXT) base64Text = new Uint8Array(length);
  const text = length <= MAX_REUSED_TEXT ? base64Text : new Uint8Array(length);
  // UTF-8 fits `length` characters into `length` bytes only if every one of them is ASCII (one byte each).
  let bad = UTF8.encodeInto(value, text.subarray(0, length)).read === length ? 0 : -1; // negative once anything is wrong
  bad |= alphabetCheck(text, length - pad);
  // The bits past the last byte must be zero (else another text encodes the same bytes).
  if (pad === 1 && (BASE64_VALUE[text[length - 2]!]! & 3) !== 0) bad = -1;
  if (pad === 2 && (BASE64_VALUE[text[length - 3]!]! & 15) !== 0) bad = -1;
  text.fill(0, 0, length);
  if (bad < 0) return -1;
  const target = Buffer.from(out.buffer, out.byteOffset + at, nBytes);
  // Cannot fall short on a checked text; if it ever did, refuse rather than leave a partly decoded value.
  if (target.write(value, 0, nBytes, 'base64') !== nBytes) {
    target.fill(0);
    return -1;
  }
  return nBytes;
}

/**
 * The bytes `value` encodes if it is canonical base64 (see canonicalBase64Into), else null. The bytes sit at the
 * start of a buffer of whole 32-bit words.
 */
export function canonicalBase64Bytes(value: string): Uint8Array | null {
  const nBytes = decodedLength(value);
  if (nBytes < 0) return null;
  const out = new Uint8Array(new ArrayBuffer(4 * Math.ceil(nBytes / 4)), 0, nBytes);
  return canonicalBase64Into(value, out, 0) === nBytes ? out : null;
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
  return bitsFromBytes(bytesFromBase64(value, 4 * ((nBits + 31) >>> 5), step, field), nBits, step, field);
}

/** The bit string in decoded words (4·ceil(nBits/32) bytes); refused, and zeroed, if a bit past nBits is set. */
function bitsFromBytes(bytes: Uint8Array, nBits: number, step: string, field: string): BitArray {
  const nWords = (nBits + 31) >>> 5;
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

// ---- chunked fields -------------------------------------------------------------------------------------------

/**
 * Bytes in every chunk of a chunked field but the last: a multiple of 12, so a chunk holds whole 32-bit words and
 * whole base64 groups (no padding but in the last chunk), and its 98,304-character text stays below V8's 128 KiB
 * limit for regular heap objects. A longer string is allocated in fresh pages of V8's large-object space, which
 * costs a page fault per 4 KiB at each end (docs/bb84.md, "Sifted-bit throughput").
 */
export const CHUNK_BYTES = 73_728;
const CHUNK_CHARS = base64Length(CHUNK_BYTES);

/** Chunks a field of `bytes` bytes takes on the wire (none for zero bytes). */
export function chunkCount(bytes: number): number {
  return Math.ceil(bytes / CHUNK_BYTES);
}

/**
 * A long byte string on the wire: a list of base64 texts, every one of exactly CHUNK_BYTES bytes but the last,
 * which holds the rest (1 to CHUNK_BYTES bytes); the empty list for zero bytes. One chunking per length, so the
 * encoding stays canonical.
 */
export function bytesToChunks(bytes: Uint8Array): string[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunks: string[] = [];
  for (let at = 0; at < buf.length; at += CHUNK_BYTES) chunks.push(buf.toString('base64', at, Math.min(at + CHUNK_BYTES, buf.length)));
  return chunks;
}

/** A bit string as chunks of its packed words (bitsToBase64's bytes, chunked). */
export function bitsToChunks(bits: BitArray): string[] {
  return bytesToChunks(new Uint8Array(bits.words.buffer, bits.words.byteOffset, bits.words.length * 4));
}

/**
 * The bytes of a chunked field (bytesToChunks), strictly: a list of canonical base64 texts, every one but the last
 * of exactly CHUNK_BYTES bytes, the last of 1 to CHUNK_BYTES, and `bytes` in all (`exact`) or at most `bytes`.
 * Every length is checked before anything is decoded. The bytes sit at the start of a buffer of whole 32-bit words.
 */
export function bytesFromChunks(value: unknown, bytes: number, step: string, field: string, exact = true): Uint8Array {
  if (!Array.isArray(value)) throw protocolError(step, `${field} must be a list of base64 chunks`);
  const chunks = chunkCount(bytes);
  if (exact ? value.length !== chunks : value.length > chunks) {
    throw protocolError(step, `${field} must be ${exact ? 'exactly' : 'at most'} ${chunks} chunks (${exact ? 'exactly' : 'at most'} ${bytes} bytes)`);
  }
  const last = value.length - 1;
  for (let i = 0; i <= last; i++) {
    const chunk: unknown = value[i];
    if (typeof chunk !== 'string') throw protocolError(step, `${field} chunk ${i} must be a base64 string`);
    if (i < last ? chunk.length !== CHUNK_CHARS : chunk.length === 0 || chunk.length > CHUNK_CHARS) {
      throw protocolError(step, `${field} chunk ${i} must encode ${i < last ? `exactly ${CHUNK_BYTES}` : `1 to ${CHUNK_BYTES}`} bytes`);
    }
  }
  const lastBytes = last < 0 ? 0 : decodedLength(value[last] as string);
  const total = last < 0 ? 0 : last * CHUNK_BYTES + lastBytes;
  if (lastBytes < 0 || (exact ? total !== bytes : total > bytes)) {
    throw protocolError(step, `${field} must encode ${exact ? 'exactly' : 'at most'} ${bytes} bytes`);
  }
  const out = new Uint8Array(new ArrayBuffer(4 * Math.ceil(total / 4)), 0, total);
  for (let i = 0; i <= last; i++) {
    if (canonicalBase64Into(value[i] as string, out, i * CHUNK_BYTES) !== (i < last ? CHUNK_BYTES : lastBytes)) {
      out.fill(0);
      throw protocolError(step, `${field} chunk ${i} is not canonical base64`);
    }
  }
  return out;
}

/** Decodes a chunked field of exactly `nBits` bits (bitsToChunks); bits past nBits in the last word must be zero. */
export function bitsFromChunks(value: unknown, nBits: number, step: string, field: string): BitArray {
  return bitsFromBytes(bytesFromChunks(value, 4 * ((nBits + 31) >>> 5), step, field), nBits, step, field);
}

// ---- Cascade parity questions and answers -------------------------------------------------------------------------

// Questions are sent as base64 of unsigned LEB128 varints, three per question: the pass, the zigzag-encoded
// difference between its start and the previous question's end (0 for the first), and end - start - 1. Top-level
// blocks in order cost about 3 bytes a question, BINARY halves 4-6 bytes.

/** The most bytes one question takes: three varints of values below 2^32, at most 5 bytes each. */
const MAX_BYTES_PER_QUESTION = 15;

/** Where encodeQuestions writes, reused across calls (questions are public positions, never key bits). */
let questionBytes = Buffer.alloc(0);

/** Writes `v` (an integer in [0, 2^32)) as a varint at `at`; returns the position after it. */
function writeVarint(buf: Buffer, at: number, v: number): number {
  while (v >= 0x80) {
    buf[at++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[at++] = v;
  return at;
}

export interface EncodedQuestions {
  /** Number of questions in `data`. */
  count: number;
  /** base64 of the varints. */
  data: string;
}

/**
 * Encodes questions into one or more chunks, each at most `maxBytes` bytes before base64. Passes and positions
 * are below 2^31 (key positions are int32), so every varint is written with 32-bit operations.
 */
export function encodeQuestions(questions: readonly ParityQuestion[], maxBytes: number): EncodedQuestions[] {
  const chunks: EncodedQuestions[] = [];
  // A chunk is cut before a question could take it past maxBytes, so it never holds more than
  // max(maxBytes, one question) bytes, nor more than the questions need.
  const capacity = Math.min(MAX_BYTES_PER_QUESTION * questions.length, Math.max(maxBytes, MAX_BYTES_PER_QUESTION));
  if (questionBytes.length < capacity) questionBytes = Buffer.alloc(capacity);
  const buf = questionBytes;
  let length = 0;
  let count = 0;
  let prevEnd = 0;
  for (let i = 0; i < questions.length; i++) {
    const { pass, start, end } = questions[i]!;
    // Our own Cascade asks only these; anything else is a bug here, not something to put on the wire.
    if ((pass | 0) !== pass || (start | 0) !== start || (end | 0) !== end || pass < 0 || start < 0 || end <= start) {
      throw new RangeError(`encodeQuestions: question ${i} is not a pass and a range 0 <= start < end below 2^31`);
    }
    if (count > 0 && length + MAX_BYTES_PER_QUESTION > maxBytes) {
      chunks.push({ count, data: buf.toString('base64', 0, length) });
      length = 0;
      count = 0;
      prevEnd = 0;
    }
    // start - prevEnd is a difference of two int32s, in (-2^31, 2^31); its zigzag (2d for d >= 0, -2d - 1 below)
    // as a uint32.
    const d = start - prevEnd;
    length = writeVarint(buf, length, pass);
    length = writeVarint(buf, length, ((d << 1) ^ (d >> 31)) >>> 0);
    length = writeVarint(buf, length, end - start - 1);
    prevEnd = end;
    count++;
  }
  if (count > 0 || chunks.length === 0) chunks.push({ count, data: buf.toString('base64', 0, length) });
  return chunks;
}

/**
 * One varint at `pos` (the bytes must hold it), exactly as strict as the format: at most 5 bytes (values below
 * 2^35, so the fifth byte is added in floating point rather than shifted), no overlong form (a last byte of 0
 * after others). Since the form is the shortest, the varint is varintBytes(value) bytes long.
 */
function readVarint(bytes: Uint8Array, pos: number, step: string): number {
  let v = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (pos >= bytes.length) throw protocolError(step, 'questions end early');
    const b = bytes[pos++]!;
    v += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) {
      if (shift > 0 && b === 0) throw protocolError(step, 'questions contain an overlong varint');
      return v;
    }
  }
  throw protocolError(step, 'questions contain a varint longer than 5 bytes');
}

function varintBytes(value: number): number {
  return value < 2 ** 7 ? 1 : value < 2 ** 14 ? 2 : value < 2 ** 21 ? 3 : value < 2 ** 28 ? 4 : 5;
}

/**
 * Decodes exactly `count` questions into packed triples (pass, start, end) - the form the Cascade responder answers
 * without building an object per question. Ranges are checked by the responder.
 */
export function decodeQuestions(value: unknown, count: number, maxBytes: number, step: string): Int32Array {
  if (typeof value !== 'string' || value.length > base64Length(maxBytes)) throw protocolError(step, 'questions must be base64 within the message size limit');
  const bytes = canonicalBase64Bytes(value);
  if (bytes === null) throw protocolError(step, 'questions are not canonical base64');
  const length = bytes.length;
  const view = new DataView(bytes.buffer, bytes.byteOffset, length);
  const out = new Int32Array(3 * count);
  let pos = 0;
  let prevEnd = 0;
  for (let i = 0; i < count; i++) {
    // The pass and end - start - 1 are almost always one byte (Cascade's blocks are short); anything else, and the
    // end of the bytes, takes readVarint.
    let pass = pos < length ? bytes[pos]! : 0x80;
    if (pass < 0x80) pos++;
    else {
      pass = readVarint(bytes, pos, step);
      pos += varintBytes(pass);
    }
    // The zigzagged start - prevEnd is 1 to 3 bytes at random, so it is read without a branch per byte: from the
    // next 4 bytes (little-endian), whose first byte with its top bit clear ends the varint.
    let delta: number;
    const word = pos + 4 <= length ? view.getInt32(pos, true) : -1; // -1: no end within reach, readVarint decides
    const ends = ~word & 0x80808080;
    if (ends !== 0) {
      const endBit = ends & -ends; // bit 8n - 1 for an n-byte varint
      const n = (32 - Math.clz32(endBit)) >>> 3;
      const varint = word & ((endBit << 1) - 1); // its n bytes; 7 value bits from each
      if (n > 1 && varint >>> (8 * n - 8) === 0) throw protocolError(step, 'questions contain an overlong varint');
      const zigzag = (varint & 0x7f) | ((varint >>> 1) & 0x3f80) | ((varint >>> 2) & 0x1fc000) | ((varint >>> 3) & 0xfe00000);
      delta = (zigzag >>> 1) ^ -(zigzag & 1); // below 2^28: int32 arithmetic is exact
      pos += n;
    } else {
      const zigzag = readVarint(bytes, pos, step);
      delta = zigzag % 2 === 0 ? zigzag / 2 : -(zigzag + 1) / 2; // up to 2^35: exact in floating point
      pos += varintBytes(zigzag);
    }
    let span = pos < length ? bytes[pos]! : 0x80;
    if (span < 0x80) pos++;
    else {
      span = readVarint(bytes, pos, step);
      pos += varintBytes(span);
    }
    const start = prevEnd + delta;
    const end = start + span + 1;
    // Beyond int32 no key position is valid; refuse here rather than let the triple wrap around.
    if (pass > 0x7fffffff || start < 0 || end > 0x7fffffff) throw protocolError(step, `question ${i} is out of range`);
    out[3 * i] = pass;
    out[3 * i + 1] = start;
    out[3 * i + 2] = end;
    prevEnd = end;
  }
  if (pos !== length) throw protocolError(step, 'questions have trailing bytes');
  return out;
}

/** Parity answers (one bit each, any non-zero byte a 1) as packed bits, 32 to a word. */
export function answersToBase64(answers: Uint8Array): string {
  const n = answers.length;
  const words = new Uint32Array((n + 31) >>> 5);
  for (let w = 0, i = 0; i < n; w++) {
    const stop = Math.min(i + 32, n);
    let word = 0;
    // -a >>> 31 is 1 for a byte 1..255, 0 for 0.
    for (let j = 0; i < stop; i++, j++) word |= (-answers[i]! >>> 31) << j;
    words[w] = word;
  }
  return bitsToBase64(new BitArray(n, words));
}

export function answersFromBase64(value: unknown, count: number, step: string): Uint8Array {
  const words = bitsFromBase64(value, count, step, 'parities').words;
  const out = new Uint8Array(count);
  for (let w = 0, i = 0; i < count; w++) {
    const stop = Math.min(i + 32, count);
    const word = words[w]!;
    for (let j = 0; i < stop; i++, j++) out[i] = (word >>> j) & 1;
  }
  return out;
}
