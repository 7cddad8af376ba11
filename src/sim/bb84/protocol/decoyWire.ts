/**
 * Wire encodings of the decoy-state announcements (docs/peer-protocol.md, "BB84 simulator messages"):
 * the intensity of every detected or sifted pulse, per-intensity counts, and lists of block IDs.
 *
 * Intensities travel as nested masks: for j = 0 .. K-2, one mask over the pulses whose intensity is j or later,
 * 1 where it is j; each mask as its packed 32-bit words (little-endian), the masks concatenated, base64. Most
 * detections come from the signal intensity (index 0), so the first mask costs one bit per pulse and the others
 * only the decoys: about 1.3 bits per pulse instead of two.
 *
 * Every check throws RoundProtocolError naming the step and the field, never a value.
 */
import { BitArray } from '../common/bits.js';
import { compressBits, expandBits } from '../common/bitSelect.js';
import { bytesToBase64, canonicalBase64Bytes, protocolError } from './wire.js';

/**
 * The nested-mask encoding of `masks` (disjoint, one per intensity, covering every pulse), or, given `select`, of
 * the pulses at its one bits only: the same text as encodeIntensities(masks.map((m) => compressBits(m, select)))
 * without building those masks.
 */
export function encodeIntensities(masks: readonly BitArray[], select?: BitArray): string {
  const n = masks[0]?.length ?? 0;
  if (select && select.length !== n) throw new RangeError(`encodeIntensities: select has ${select.length} bits for ${n} pulses`);
  const remaining = select ? select.clone() : allOnes(n);
  const parts: Uint32Array[] = [];
  for (let j = 0; j < masks.length - 1; j++) {
    const nested = compressBits(masks[j]!, remaining);
    parts.push(nested.words);
    const r = remaining.words, m = masks[j]!.words;
    for (let i = 0; i < r.length; i++) r[i] = r[i]! & ~m[i]!;
  }
  const total = parts.reduce((a, p) => a + p.length, 0);
  const words = new Uint32Array(total);
  let at = 0;
  for (const p of parts) {
    words.set(p, at);
    at += p.length;
  }
  return bytesToBase64(new Uint8Array(words.buffer));
}

/**
 * Decodes the intensity masks of `n` pulses for `intensities` intensities: exactly the words the nested masks
 * need, canonical base64, no bit set past a mask's length. Returns one mask per intensity over the n pulses.
 */
export function decodeIntensities(value: unknown, n: number, intensities: number, step: string, field: string): BitArray[] {
  return decodeIntensitiesAt(value, allOnes(n), intensities, step, field);
}

/**
 * decodeIntensities for the pulses at the one bits of `where` (n = where.popcount() of them), with the masks
 * deposited there: the same masks as expandBits(decodeIntensities(value, n, ...)[k], where), built in one step.
 */
export function decodeIntensitiesAt(value: unknown, where: BitArray, intensities: number, step: string, field: string): BitArray[] {
  if (typeof value !== 'string') throw protocolError(step, `${field} must be a base64 string`);
  const n = where.popcount();
  // Every mask is at most n bits: bound the text before decoding it.
  const maxWords = (intensities - 1) * ((n + 31) >>> 5);
  if (value.length > 4 * Math.ceil((4 * maxWords) / 3)) throw protocolError(step, `${field} is longer than ${intensities - 1} masks of ${n} pulses`);
  const buf = canonicalBase64Bytes(value);
  if (buf === null || buf.length % 4 !== 0) throw protocolError(step, `${field} is not canonical base64 of whole 32-bit words`);
  const words = new Uint32Array(buf.buffer, 0, buf.length / 4);
  const masks: BitArray[] = [];
  let remaining = where.clone();
  let at = 0;
  for (let j = 0; j < intensities - 1; j++) {
    const length = remaining.popcount();
    const nWords = (length + 31) >>> 5;
    if (at + nWords > words.length) throw protocolError(step, `${field} ends before mask ${j}`);
    const nested = new BitArray(length, words.subarray(at, at + nWords));
    const r = length & 31;
    if (r !== 0 && nested.words[nWords - 1]! >>> r !== 0) throw protocolError(step, `${field} mask ${j} has bits set past its length`);
    at += nWords;
    const mask = expandBits(nested, remaining);
    masks.push(mask);
    const rest = new BitArray(where.length);
    for (let i = 0; i < rest.words.length; i++) rest.words[i] = remaining.words[i]! & ~mask.words[i]!;
    remaining = rest;
  }
  if (at !== words.length) throw protocolError(step, `${field} has trailing words`);
  masks.push(remaining);
  return masks;
}

/** The inverse of compressBits (common/bitSelect.ts). */
export { expandBits };

function allOnes(n: number): BitArray {
  const out = new BitArray(n);
  out.words.fill(0xffffffff);
  return out.clearTail();
}

// ---- per-intensity counts and block lists -------------------------------------------------------------------------

/** Digits of a count on the wire (below 2^53). */
const COUNT = /^(0|[1-9][0-9]{0,15})$/;

/** Counts, one per intensity, as comma-separated decimal text ("1203,88,2"). */
export function encodeCounts(counts: readonly number[]): string {
  return counts.join(',');
}

/** Exactly `length` non-negative integers, each at most `max`. */
export function decodeCounts(value: unknown, length: number, max: number, step: string, field: string): number[] {
  if (typeof value !== 'string' || value.length > length * 17) throw protocolError(step, `${field} must be ${length} comma-separated counts`);
  const parts = value.split(',');
  if (parts.length !== length) throw protocolError(step, `${field} must be ${length} comma-separated counts`);
  return parts.map((p, k) => {
    if (!COUNT.test(p)) throw protocolError(step, `${field}[${k}] is not a count`);
    const v = Number(p);
    if (!Number.isSafeInteger(v) || v > max) throw protocolError(step, `${field}[${k}] must be an integer in [0, ${max}]`);
    return v;
  });
}

/** Block IDs as comma-separated text, in order. */
export function encodeBlockIds(ids: readonly string[]): string {
  return ids.join(',');
}

/** At most `max` distinct IDs matching `pattern` (an empty string is the empty list). */
export function decodeBlockIds(value: unknown, max: number, pattern: RegExp, step: string, field: string): string[] {
  if (typeof value !== 'string' || value.length > max * 65) throw protocolError(step, `${field} must be at most ${max} comma-separated block IDs`);
  if (value === '') return [];
  const ids = value.split(',');
  if (ids.length > max) throw protocolError(step, `${field} lists more than ${max} blocks`);
  const seen = new Set<string>();
  for (const id of ids) {
    if (!pattern.test(id)) throw protocolError(step, `${field} holds a malformed block ID`);
    if (seen.has(id)) throw protocolError(step, `${field} lists a block twice`);
    seen.add(id);
  }
  return ids;
}
