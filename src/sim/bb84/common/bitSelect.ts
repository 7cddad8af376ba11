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
  const o = out.words, s = src.words, mw = mask.words;
  let oi = 0;
  let acc = 0; // pending output bits (low `fill` bits valid)
  let fill = 0;
  for (let i = 0; i < mw.length; i++) {
    const m = mw[i]!;
    if (m === 0) continue;
    const v = s[i]!;
    if (m === 0xffffffff) {
      if (fill === 0) o[oi++] = v;
      else {
        o[oi++] = acc | (v << fill);
        acc = v >>> (32 - fill);
      }
      continue;
    }
    for (let sh = 0; sh < 32; sh += 8) {
      const mb = (m >>> sh) & 255;
      if (mb === 0) continue;
      const bits = PEXT8[(mb << 8) | ((v >>> sh) & 255)]!;
      const c = POP8[mb]!;
      acc |= bits << fill;
      fill += c;
      if (fill >= 32) {
        o[oi++] = acc;
        fill -= 32;
        acc = bits >>> (c - fill); // bits that did not fit (0 when fill = 0, as bits < 2^c)
      }
    }
  }
  if (fill > 0) o[oi] = acc;
  return out;
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

/** The low popcount(mask) bits of `bits` placed at the one bits of the 32-bit `mask`, lowest first. */
export function depositWord(bits: number, mask: number): number {
  let placed = 0;
  for (let b = 0; b < 32; b += 8) {
    const mb = (mask >>> b) & 255;
    if (mb === 0) continue;
    placed |= PDEP8[(mb << 8) | (bits & 255)]! << b;
    bits >>>= POP8[mb]!;
  }
  return placed;
}

/** The inverse of compressBits: `nested` bit i goes to the position of the i-th one bit of `where`. */
export function expandBits(nested: BitArray, where: BitArray): BitArray {
  const out = new BitArray(where.length);
  depositInto(out.words, nested, where.words);
  return out;
}
