import { describe, expect, it } from 'vitest';
import { compressBits, compressInto, depositInto, depositSplit, expandBits } from '../../../../src/sim/bb84/common/bitSelect.js';
import { BitArray } from '../../../../src/sim/bb84/common/bits.js';
import { bernoulliBits, randomBits, seededRng, type Rng } from '../../../../src/sim/bb84/common/rng.js';

const LENGTHS = [0, 1, 7, 8, 31, 32, 33, 63, 64, 65, 100, 1000, 4097];
const DENSITIES = [0, 0.001, 0.05, 0.3, 0.5, 0.9, 0.999, 1];

/** A mask of density p, with an all-ones and an all-zeros word when long enough (the fast paths). */
function mask(rng: Rng, n: number, p: number): BitArray {
  const m = bernoulliBits(rng, n, p);
  if (n > 96) {
    m.words[1] = 0xffffffff;
    m.words[2] = 0;
  }
  return m;
}

function naiveDeposit(src: BitArray, where: BitArray): BitArray {
  const out = new BitArray(where.length);
  let j = 0;
  for (let i = 0; i < where.length; i++) if (where.get(i)) out.set(i, j < src.length ? src.get(j++) : 0);
  return out;
}

describe('compressBits, expandBits and depositInto', () => {
  it('when a mask of any density and length is applied, then extract and deposit equal their bit-by-bit definitions', () => {
    const rng = seededRng(31);
    for (const n of LENGTHS) {
      for (const p of DENSITIES) {
        const where = mask(rng, n, p);
        const src = randomBits(rng, n);
        const packed = compressBits(src, where);
        const want: number[] = [];
        for (let i = 0; i < n; i++) if (where.get(i)) want.push(src.get(i));
        expect(packed.length).toBe(want.length);
        expect(Array.from({ length: packed.length }, (_, i) => packed.get(i))).toEqual(want);
        // Sources dense and sparse (a sparse one takes the all-zero shortcut), and the round trip.
        for (const q of [0.5, 0.01]) {
          const nested = bernoulliBits(rng, where.popcount(), q);
          const expanded = expandBits(nested, where);
          expect(expanded.equals(naiveDeposit(nested, where)), `n=${n} p=${p} q=${q}`).toBe(true);
          expect(compressBits(expanded, where).equals(nested)).toBe(true);
        }
      }
    }
  });

  it('when bits are deposited into a non-empty output, then they are ORed in and a short source counts as zeros', () => {
    const rng = seededRng(32);
    for (const n of [33, 1000, 4097]) {
      const where = mask(rng, n, 0.4);
      const before = randomBits(rng, n);
      const short = randomBits(rng, Math.floor(where.popcount() / 2) + 3);
      const out = before.words.slice();
      depositInto(out, short, where.words);
      const want = naiveDeposit(short, where);
      for (let i = 0; i < want.words.length; i++) expect(out[i]).toBe((before.words[i]! | want.words[i]!) >>> 0);
    }
  });

  it('when bits are split at a mask, then the ones are their deposit and the zeros the rest of the mask, also in place', () => {
    const rng = seededRng(33);
    for (const n of LENGTHS) {
      for (const p of DENSITIES) {
        const where = mask(rng, n, p);
        for (const srcBits of [where.popcount(), Math.floor(where.popcount() / 2)]) {
          const src = bernoulliBits(rng, srcBits, 0.5);
          const want = naiveDeposit(src, where);
          const ones = new Uint32Array(where.words.length);
          const zeros = new Uint32Array(where.words.length).fill(0xdeadbeef);
          depositSplit(src.words, where.words, where.words.length, ones, zeros);
          const inPlace = where.words.slice();
          const ones2 = new Uint32Array(where.words.length);
          depositSplit(src.words, inPlace, inPlace.length, ones2, inPlace);
          for (let i = 0; i < where.words.length; i++) {
            expect(ones[i], `n=${n} p=${p} word ${i}`).toBe(want.words[i]);
            expect(zeros[i]).toBe((where.words[i]! & ~want.words[i]!) >>> 0);
            expect(ones2[i]).toBe(want.words[i]);
            expect(inPlace[i]).toBe(zeros[i]);
          }
        }
      }
    }
  });

  it('when bits are compressed into a word array at an offset, then every word there is assigned and the rest untouched', () => {
    const rng = seededRng(34);
    for (const n of LENGTHS) {
      for (const p of DENSITIES) {
        const where = mask(rng, n, p);
        const src = randomBits(rng, n);
        const want = compressBits(src, where);
        const out = new Uint32Array(want.words.length + 5).fill(0xffffffff);
        const end = compressInto(out, 3, src.words, where.words, where.words.length);
        expect(end).toBe(3 + want.words.length);
        expect(Array.from(out.subarray(3, end))).toEqual(Array.from(want.words));
        expect(Array.from(out.subarray(0, 3))).toEqual([0xffffffff, 0xffffffff, 0xffffffff]);
        expect(Array.from(out.subarray(end))).toEqual([0xffffffff, 0xffffffff]);
      }
    }
  });
});
