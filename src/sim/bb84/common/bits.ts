/**
 * Packed bit arrays for the BB84 pipeline. Bit i lives in word i >>> 5 at position i & 31
 * (LSB-first inside a word). Bits past `length` in the last word are always zero.
 */
export class BitArray {
  readonly length: number;
  readonly words: Uint32Array;

  constructor(length: number, words?: Uint32Array) {
    if (!Number.isInteger(length) || length < 0) throw new RangeError(`BitArray length must be a non-negative integer, got ${length}`);
    this.length = length;
    const nWords = (length + 31) >>> 5;
    if (words) {
      if (words.length < nWords) throw new RangeError('BitArray words too short for length');
      this.words = words.length === nWords ? words : words.subarray(0, nWords);
    } else {
      this.words = new Uint32Array(nWords);
    }
  }

  get(i: number): number {
    return (this.words[i >>> 5]! >>> (i & 31)) & 1;
  }

  set(i: number, bit: number): void {
    const w = i >>> 5;
    const m = 1 << (i & 31);
    if (bit) this.words[w]! |= m;
    else this.words[w]! &= ~m;
  }

  flip(i: number): void {
    this.words[i >>> 5]! ^= 1 << (i & 31);
  }

  clone(): BitArray {
    return new BitArray(this.length, this.words.slice());
  }

  /** Clears bits past `length` in the last word (keeps the invariant after bulk writes). */
  clearTail(): this {
    const r = this.length & 31;
    if (r !== 0) this.words[this.words.length - 1]! &= ((2 ** r) - 1) >>> 0;
    return this;
  }

  /** Number of one bits. */
  popcount(): number {
    let n = 0;
    for (let w = 0; w < this.words.length; w++) n += popcount32(this.words[w]!);
    return n;
  }

  /** Number of positions where this and other differ (same length required). */
  hammingDistance(other: BitArray): number {
    if (other.length !== this.length) throw new RangeError('hammingDistance: lengths differ');
    let n = 0;
    for (let w = 0; w < this.words.length; w++) n += popcount32(this.words[w]! ^ other.words[w]!);
    return n;
  }

  equals(other: BitArray): boolean {
    if (other.length !== this.length) return false;
    for (let w = 0; w < this.words.length; w++) if (this.words[w] !== other.words[w]) return false;
    return true;
  }

  /** Parity (XOR) of bits [start, end). */
  parityRange(start: number, end: number): number {
    if (start >= end) return 0;
    let acc = 0;
    const ws = start >>> 5;
    const we = (end - 1) >>> 5;
    if (ws === we) {
      const lo = start & 31;
      const width = end - start;
      const mask = width === 32 ? 0xffffffff : ((1 << width) - 1) >>> 0;
      acc = (this.words[ws]! >>> lo) & mask;
    } else {
      acc = this.words[ws]! >>> (start & 31);
      for (let w = ws + 1; w < we; w++) acc ^= this.words[w]!;
      const hiBits = ((end - 1) & 31) + 1;
      const mask = hiBits === 32 ? 0xffffffff : ((1 << hiBits) - 1) >>> 0;
      acc ^= this.words[we]! & mask;
    }
    return popcount32(acc >>> 0) & 1;
  }

  /** A new array with bits [start, end). */
  slice(start: number, end: number): BitArray {
    const out = new BitArray(end - start);
    for (let i = start; i < end; i++) if (this.get(i)) out.set(i - start, 1);
    return out;
  }

  /** Bits packed MSB-first into bytes (the original module's key format); length must be a multiple of 8. */
  toBytesMsbFirst(): Uint8Array {
    if (this.length % 8 !== 0) throw new RangeError('toBytesMsbFirst: length must be a multiple of 8');
    const out = new Uint8Array(this.length / 8);
    for (let i = 0; i < this.length; i++) if (this.get(i)) out[i >>> 3]! |= 0x80 >>> (i & 7);
    return out;
  }

  static fromBytesMsbFirst(bytes: Uint8Array, length = bytes.length * 8): BitArray {
    const out = new BitArray(length);
    for (let i = 0; i < length; i++) if ((bytes[i >>> 3]! >>> (7 - (i & 7))) & 1) out.set(i, 1);
    return out;
  }

  /** Raw little-endian bytes of the words (for hashing and for sending over the wire). */
  toWireBytes(): Uint8Array {
    return new Uint8Array(this.words.buffer, this.words.byteOffset, this.words.length * 4).slice();
  }

  static fromWireBytes(bytes: Uint8Array, length: number): BitArray {
    const nWords = (length + 31) >>> 5;
    if (bytes.length !== nWords * 4) throw new RangeError(`fromWireBytes: expected ${nWords * 4} bytes for ${length} bits, got ${bytes.length}`);
    const words = new Uint32Array(nWords);
    new Uint8Array(words.buffer).set(bytes);
    return new BitArray(length, words).clearTail();
  }
}

export function popcount32(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}
