/**
 * Wire encodings of the decoy-state announcements (docs/peer-protocol.md, "BB84 simulator messages"):
 * the intensity of every detected or sifted pulse, per-intensity counts, and lists of block IDs.
 *
 * Intensities travel as nested masks: for j = 0 .. K-2, one mask over the pulses whose intensity is j or later,
 * 1 where it is j; each mask as its packed 32-bit words (little-endian), the masks concatenated, as a chunked field
 * (wire.ts: a list of base64 chunks). Most
 * detections come from the signal intensity (index 0), so the first mask costs one bit per pulse and the others
 * only the decoys: about 1.3 bits per pulse instead of two.
 *
 * Every check throws RoundProtocolError naming the step and the field, never a value.
 */
import { BitArray, popcount32 } from '../common/bits.js';
import { compressInto, depositSplit, expandBits } from '../common/bitSelect.js';
import { ScratchWords } from '../common/scratch.js';
import { bytesFromChunks, bytesToChunks, protocolError } from './wire.js';

/** Words for the encoder's and the decoder's working masks and the encoder's output (common/scratch.ts). */
const scratch = new ScratchWords();

/** The last word of an n-bit mask with every bit set (0xffffffff when n is a multiple of 32). */
function lastWordOnes(n: number): number {
  return n % 32 === 0 ? 0xffffffff : (2 ** (n % 32) - 1) >>> 0;
}

/**
 * The nested-mask encoding of `masks` (disjoint, one per intensity, covering every pulse), or, given `select`, of
 * the pulses at its one bits only: the same chunks as encodeIntensities(masks.map((m) => compressBits(m, select)))
 * without building those masks.
 *
 * Nested mask j is masks[j] extracted at the pulses left after masks 0 .. j-1 (`remaining`, all pulses or `select`
 * at first); the masks go one after the other into one word array, each padded to whole words.
 */
export function encodeIntensities(masks: readonly BitArray[], select?: BitArray): string[] {
  const n = masks[0]?.length ?? 0;
  if (select && select.length !== n) throw new RangeError(`encodeIntensities: select has ${select.length} bits for ${n} pulses`);
  for (let j = 0; j < masks.length - 1; j++) {
    if (masks[j]!.length !== n) throw new RangeError(`encodeIntensities: intensity mask ${j} has ${masks[j]!.length} bits for ${n} pulses`);
  }
  if (masks.length < 2) return [];
  const nWords = (n + 31) >>> 5;
  // One scratch block: `remaining` first, then the nested masks (at most one full mask each).
  return scratch.with(masks.length * nWords, (space) => {
    const remaining = space.subarray(0, nWords);
    const out = space.subarray(nWords);
    if (select) remaining.set(select.words);
    else if (nWords > 0) {
      remaining.fill(0xffffffff);
      remaining[nWords - 1] = lastWordOnes(n);
    }
    let at = 0;
    for (let j = 0; j < masks.length - 1; j++) {
      const m = masks[j]!.words;
      at = compressInto(out, at, m, remaining, nWords);
      if (j < masks.length - 2) for (let i = 0; i < nWords; i++) remaining[i] = remaining[i]! & ~m[i]!;
    }
    return bytesToChunks(new Uint8Array(out.buffer, out.byteOffset, 4 * at));
  });
}

/**
 * Decodes the intensity masks of `n` pulses for `intensities` intensities: exactly the words the nested masks
 * need, as strict chunks of canonical base64, no bit set past a mask's length. Returns one mask per intensity over the n pulses.
 */
export function decodeIntensities(value: unknown, n: number, intensities: number, step: string, field: string): BitArray[] {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`BitArray length must be a non-negative integer, got ${n}`);
  return decodeNested(value, null, n, intensities, step, field);
}

/**
 * decodeIntensities for the pulses at the one bits of `where` (n = where.popcount() of them), with the masks
 * deposited there: the same masks as expandBits(decodeIntensities(value, n, ...)[k], where), built in one step.
 */
export function decodeIntensitiesAt(value: unknown, where: BitArray, intensities: number, step: string, field: string): BitArray[] {
  return decodeNested(value, where, where.length, intensities, step, field);
}

/**
 * Both decoders: the masks over `length` positions, of the pulses at the one bits of `where` (all positions when
 * null). Nested mask j is deposited at the pulses left after masks 0 .. j-1 (`remaining`), and in the same pass
 * `remaining` loses them. What is left after the last nested mask is the last intensity's mask.
 */
function decodeNested(value: unknown, where: BitArray | null, length: number, intensities: number, step: string, field: string): BitArray[] {
  const n = where ? where.popcount() : length;
  // Every mask is at most n bits: the chunks are bounded before anything is decoded.
  const maxWords = (intensities - 1) * ((n + 31) >>> 5);
  const buf = bytesFromChunks(value, 4 * maxWords, step, field, false);
  if (buf.length % 4 !== 0) {
    buf.fill(0);
    throw protocolError(step, `${field} is not whole 32-bit words`);
  }
  const words = new Uint32Array(buf.buffer, 0, buf.length / 4);
  const nWords = (length + 31) >>> 5;
  try {
    return scratch.with(nWords, (remaining) => {
      if (where) remaining.set(where.words);
      else if (nWords > 0) {
        remaining.fill(0xffffffff);
        remaining[nWords - 1] = lastWordOnes(length);
      }
      const masks: BitArray[] = [];
      let left = n; // one bits of `remaining`
      let at = 0;
      for (let j = 0; j < intensities - 1; j++) {
        const maskWords = (left + 31) >>> 5;
        if (at + maskWords > words.length) throw protocolError(step, `${field} ends before mask ${j}`);
        const nested = words.subarray(at, at + maskWords);
        const r = left & 31;
        if (r !== 0 && nested[maskWords - 1]! >>> r !== 0) throw protocolError(step, `${field} mask ${j} has bits set past its length`);
        at += maskWords;
        const mask = new BitArray(length);
        masks.push(mask);
        // The last nested mask leaves the last intensity's mask: `remaining` goes there instead of the scratch.
        const last = j === intensities - 2 ? new BitArray(length) : null;
        depositSplit(nested, remaining, nWords, mask.words, last ? last.words : remaining);
        // Every bit of the nested mask found a place (it has exactly `left` bits): the rest stay.
        for (let i = 0; i < maskWords; i++) left -= popcount32(nested[i]!);
        if (last) masks.push(last);
      }
      if (at !== words.length) throw protocolError(step, `${field} has trailing words`);
      if (intensities < 2) masks.push(new BitArray(length, remaining.slice()));
      return masks;
    });
  } finally {
    buf.fill(0); // the decoded words are intensities too
  }
}

/** The inverse of compressBits (common/bitSelect.ts). */
export { expandBits };

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
