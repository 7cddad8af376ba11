/** Turning a block's final bits into keys, and wiping what a block held. */
import { BitArray } from '../common/bits.js';

/** Zeroes every given array (what a block held of keys and states). */
export function wipe(...arrays: (BitArray | Uint8Array | undefined | null)[]): void {
  for (const a of arrays) {
    if (!a) continue;
    if (a instanceof BitArray) a.words.fill(0);
    else a.fill(0);
  }
}

/** REVERSE8[b]: the bits of byte b in reverse order. */
const REVERSE8 = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  let r = 0;
  for (let i = 0; i < 8; i++) r |= ((b >>> i) & 1) << (7 - i);
  REVERSE8[b] = r;
}

/** The bits packed MSB-first into bytes, as BitArray.toBytesMsbFirst (length a multiple of 8), a byte at a time. */
function toBytesMsbFirst(bits: BitArray): Uint8Array {
  const out = new Uint8Array(bits.length / 8);
  const w = bits.words;
  for (let i = 0; i < out.length; i++) out[i] = REVERSE8[(w[i >>> 2]! >>> (8 * (i & 3))) & 0xff]!;
  return out;
}

/** The first `count` keys of `bits` (count · keyLengthBits bits), each packed MSB-first (BitArray.toBytesMsbFirst). */
export function cutKeys(bits: BitArray, count: number, keyLengthBits: number): Uint8Array[] {
  const all = toBytesMsbFirst(bits);
  const bytes = keyLengthBits / 8;
  const keys: Uint8Array[] = [];
  for (let i = 0; i < count; i++) keys.push(all.slice(i * bytes, (i + 1) * bytes));
  all.fill(0);
  return keys;
}
