/**
 * Bitwise parallel extract and deposit on packed bit arrays (LSB-first, as BitArray), word-level with byte tables:
 * compressBits keeps the bits of a source at a mask's one bits, packed; expandBits and depositInto put packed bits
 * back at a mask's one bits. Full and empty mask words take fast paths.
 */
import { BitArray, popcount32 } from './bits.js';

/** PEXT8[(mask << 8) | value]: the bits of `value` at the one bits of `mask`, packed to the low end. */
const PEXT8 = new Uint8Array(65536);
/** PDEP8[(mask << 8) | value]: the low popcount(mask) bits of `value` placed at the one bits of `mask`. */
const PDEP8 = new Uint8Array(65536);
const POP8 = new Uint8Array(256);
for (let m = 0; m < 256; m++) {
  let c = 0;
  for (let b = 0; b < 8; b++) if ((m >>> b) & 1) c++;
  POP8[m] = c;
  for (let v = 0; v < 256; v++) {
    let ext = 0;
    let dep = 0;
    let k = 0;
    for (let b = 0; b < 8; b++) {
      if ((m >>> b) & 1) {
        ext |= ((v >>> b) & 1) << k;
        dep |= ((v >>> k) & 1) << b;
        k++;
      }
    }
    PEXT8[(m << 8) | v] = ext;
    PDEP8[(m << 8) | v] = dep;
  }
}

/**
 * The bits of `src` at the positions where `mask` is 1, packed in order (a bitwise "parallel extract"). Length of
 * the result = mask.popcount().
 */
export function compressBits(src: BitArray, mask: BitArray): BitArray {
  if (src.length !== mask.length) throw new RangeError(`compressBits: src vs mask: lengths differ (${src.length} vs ${mask.length})`);
  const out = new BitArray(mask.popcount());
  compressInto(out.words, 0, src.words, mask.words, mask.words.length);
  return out;
}

/**
 * compressBits over the first `nWords` words of `src` and `mask`, written to `out` from word `at` on; returns the
 * word after the last one written. Every output word is assigned (no need for zeroed memory), the bits past the
 * packed ones in the last word are 0.
 *
 * Per mask word: the four bytes' extracts are joined into one packed value first (shifts by the byte popcounts), so
 * the stream takes one append per word, not one per byte; a word of the stream is complete at most once per word.
 */
export function compressInto(out: Uint32Array, at: number, src: Uint32Array, mask: Uint32Array, nWords: number): number {
  let oi = at;
  let acc = 0; // pending output bits (low `fill` bits valid)
  let fill = 0;
  for (let i = 0; i < nWords; i++) {
    const m = mask[i]!;
    if (m === 0) continue;
    const v = src[i]!;
    if (m === 0xffffffff) {
      if (fill === 0) out[oi++] = v;
      else {
        out[oi++] = acc | (v << fill);
        acc = v >>> (32 - fill);
      }
      continue;
    }
    const m0 = m & 255, m1 = (m >>> 8) & 255, m2 = (m >>> 16) & 255, m3 = m >>> 24;
    const s1 = POP8[m0]!, s2 = s1 + POP8[m1]!, s3 = s2 + POP8[m2]!, count = s3 + POP8[m3]!; // count < 32
    const packed =
      PEXT8[(m0 << 8) | (v & 255)]! |
      (PEXT8[(m1 << 8) | ((v >>> 8) & 255)]! << s1) |
      (PEXT8[(m2 << 8) | ((v >>> 16) & 255)]! << s2) |
      (PEXT8[(m3 << 8) | (v >>> 24)]! << s3);
    acc |= packed << fill;
    fill += count;
    if (fill >= 32) {
      out[oi++] = acc;
      fill -= 32;
      acc = fill === 0 ? 0 : packed >>> (count - fill); // the bits that did not fit
    }
  }
  if (fill > 0) out[oi++] = acc;
  return oi;
}

/**
 * ORs the bits of `src`, in order, into the positions where `mask` is 1 (a bitwise "parallel deposit"); bits of
 * `src` past its length count as 0. A mask word whose share of `src` is all zero costs one popcount.
 */
export function depositInto(out: Uint32Array, src: BitArray, mask: Uint32Array): void {
  const s = src.words;
  const last = s.length - 1;
  let j = 0; // bits of src used so far
  for (let wi = 0; wi < mask.length; wi++) {
    const m = mask[wi]!;
    if (m === 0) continue;
    // The next 32 bits of src from bit j; they go to the set bits of this mask word, lowest first.
    const sw = j >>> 5;
    const sh = j & 31;
    const bits = sw > last ? 0 : sh === 0 ? s[sw]! : (s[sw]! >>> sh) | (sw < last ? s[sw + 1]! << (32 - sh) : 0);
    if (m === 0xffffffff) {
      out[wi]! |= bits;
      j += 32;
      continue;
    }
    if (bits === 0) {
      j += popcount32(m);
      continue;
    }
    out[wi]! |= depositWord(bits, m);
    j += popcount32(m);
  }
}

/**
 * Splits the one bits of `where` (its first `nWords` words) by the bits of `src` taken in order: `ones` gets those
 * that take a 1 (it must be zero there beforehand: the words with a one bit of `where` are assigned), `zeros` those
 * that take a 0 (every word assigned; it may be `where` itself). Bits of `src` past its words count as 0. The deposit
 * of src at where is `ones`; what is left of `where` is `zeros`.
 */
export function depositSplit(src: Uint32Array, where: Uint32Array, nWords: number, ones: Uint32Array, zeros: Uint32Array): void {
  const last = src.length - 1;
  let j = 0; // bits of src used so far
  for (let wi = 0; wi < nWords; wi++) {
    const m = where[wi]!;
    if (m === 0) {
      zeros[wi] = 0;
      continue;
    }
    // The next 32 bits of src from bit j; they go to the set bits of this word of `where`, lowest first.
    const sw = j >>> 5;
    const sh = j & 31;
    const bits = sw > last ? 0 : sh === 0 ? src[sw]! : (src[sw]! >>> sh) | (sw < last ? src[sw + 1]! << (32 - sh) : 0);
    if (m === 0xffffffff) {
      ones[wi] = bits;
      zeros[wi] = ~bits;
      j += 32;
      continue;
    }
    const m0 = m & 255, m1 = (m >>> 8) & 255, m2 = (m >>> 16) & 255, m3 = m >>> 24;
    const s1 = POP8[m0]!, s2 = s1 + POP8[m1]!, s3 = s2 + POP8[m2]!;
    const placed =
      PDEP8[(m0 << 8) | (bits & 255)]! |
      (PDEP8[(m1 << 8) | ((bits >>> s1) & 255)]! << 8) |
      (PDEP8[(m2 << 8) | ((bits >>> s2) & 255)]! << 16) |
      (PDEP8[(m3 << 8) | ((bits >>> s3) & 255)]! << 24);
    ones[wi] = placed;
    zeros[wi] = m & ~placed;
    j += s3 + POP8[m3]!;
  }
}

/** The low popcount(mask) bits of `bits` placed at the one bits of the 32-bit `mask`, lowest first. */
export function depositWord(bits: number, mask: number): number {
  const m0 = mask & 255, m1 = (mask >>> 8) & 255, m2 = (mask >>> 16) & 255, m3 = mask >>> 24;
  const s1 = POP8[m0]!, s2 = s1 + POP8[m1]!, s3 = s2 + POP8[m2]!; // at most 24
  return (
    PDEP8[(m0 << 8) | (bits & 255)]! |
    (PDEP8[(m1 << 8) | ((bits >>> s1) & 255)]! << 8) |
    (PDEP8[(m2 << 8) | ((bits >>> s2) & 255)]! << 16) |
    (PDEP8[(m3 << 8) | ((bits >>> s3) & 255)]! << 24)
  );
}

/** The inverse of compressBits: `nested` bit i goes to the position of the i-th one bit of `where`. */
export function expandBits(nested: BitArray, where: BitArray): BitArray {
  const out = new BitArray(where.length);
  depositInto(out.words, nested, where.words);
  return out;
}
