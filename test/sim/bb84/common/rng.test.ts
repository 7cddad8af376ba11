import { createCipheriv, createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BitArray } from '../../../../src/sim/bb84/common/bits.js';
import { bernoulliBits, binomialCount, cryptoRng, orBernoulliBits, randomBelow, randomBits, seededRng, sharedSeedRng, type Rng } from '../../../../src/sim/bb84/common/rng.js';

function words(rng: Rng, n: number): number[] {
  return Array.from({ length: n }, () => rng.nextUint32());
}

describe('seededRng', () => {
  it('when two generators share a seed, then they produce the same stream; different seeds differ', () => {
    expect(words(seededRng(42), 100)).toEqual(words(seededRng(42), 100));
    expect(words(seededRng(42), 100)).toEqual(words(seededRng(42n), 100));
    expect(words(seededRng(Uint8Array.from([1, 2, 3])), 10)).toEqual(words(seededRng(Uint8Array.from([1, 2, 3])), 10));
    expect(words(seededRng(42), 10)).not.toEqual(words(seededRng(43), 10));
    expect(words(seededRng(1), 10)).not.toEqual(words(seededRng(-1), 10));
  });

  it('when fillWords is used, then it continues the same stream as nextUint32', () => {
    const a = seededRng(7);
    const b = seededRng(7);
    const w = new Uint32Array(50);
    a.nextUint32();
    a.fillWords(w);
    expect(Array.from(w)).toEqual(words(b, 51).slice(1));
  });

  it('when drawing floats, then they lie in [0, 1) with mean 1/2', () => {
    const rng = seededRng(8);
    let sum = 0;
    let outside = 0;
    const n = 200_000;
    for (let i = 0; i < n; i++) {
      const f = rng.nextFloat();
      if (!(f >= 0 && f < 1)) outside++;
      sum += f;
    }
    expect(outside).toBe(0);
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / n));
  });

  it('when a non-integer number seed is given, then it throws', () => {
    expect(() => seededRng(1.5)).toThrow(RangeError);
  });
});

describe('sharedSeedRng and cryptoRng', () => {
  it('when both ends expand the same seed, then they derive the same words, across buffer refills', () => {
    const seed = Uint8Array.from({ length: 32 }, (_, i) => i);
    const a = sharedSeedRng(seed);
    const b = sharedSeedRng(seed);
    const big = new Uint32Array(10_000);
    a.nextUint32();
    a.fillWords(big);
    const expected = words(b, 10_001).slice(1);
    expect(Array.from(big)).toEqual(expected);
    expect(words(sharedSeedRng(Uint8Array.from([1])), 8)).not.toEqual(words(sharedSeedRng(Uint8Array.from([2])), 8));
  });

  it('when a fill spans several keystream chunks, then the words are the AES-256-CTR keystream of the definition, little-endian', () => {
    const seed = Uint8Array.from({ length: 32 }, (_, i) => 7 * i + 1);
    const key = createHash('sha256').update('bb84-shared-seed\0').update(seed).digest();
    const nWords = 3 * 4096 + 5 + 33_000; // a two-block Cascade pass of a 10^6-bit key asks for ~33,000 words at once
    const ks = createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(4 * (nWords + 1)));
    const expected = Array.from({ length: nWords + 1 }, (_, i) => ks.readUInt32LE(4 * i));
    const a = sharedSeedRng(seed);
    const first = a.nextUint32();
    const big = new Uint32Array(nWords);
    a.fillWords(big);
    expect([first, ...big]).toEqual(expected);
  });

  it('when many small fills cross buffer refills, then they continue the same stream as single draws', () => {
    const seed = Uint8Array.from({ length: 32 }, (_, i) => 3 * i);
    const a = sharedSeedRng(seed);
    const b = sharedSeedRng(seed);
    const got: number[] = [];
    // 1, 2, 3 ... words per call: about 20,000 words, five refills of the 4,096-word buffer, then one large fill.
    for (let size = 1; got.length < 20_000; size = (size % 7) + 1) {
      const w = new Uint32Array(size);
      a.fillWords(w);
      got.push(...w);
    }
    const big = new Uint32Array(9000);
    a.fillWords(big);
    got.push(...big);
    expect(got).toEqual(words(b, got.length));
  });

  it('when the CSPRNG fills words, then the values are not constant and buffered draws keep working past a refill', () => {
    const rng = cryptoRng();
    const w = new Uint32Array(100_000);
    rng.fillWords(w);
    expect(new Set(w).size).toBeGreaterThan(99_000);
    const singles = words(rng, 10_000);
    expect(new Set(singles).size).toBeGreaterThan(9_900);
  });
});

/**
 * bernoulliBits before it became orBernoulliBits over a fresh array and before the word method compared 8 digits
 * branch-free (kept verbatim as the reference for the draws that did not change).
 */
function referenceBernoulliBits(rng: Rng, n: number, p: number): BitArray {
  const out = new BitArray(n);
  if (n === 0 || p === 0) return out;
  const w = out.words;
  if (p === 1) {
    w.fill(0xffffffff);
    return out.clearTail();
  }
  if (p > 1 - 1 / 16) {
    const c = referenceBernoulliBits(rng, n, 1 - p);
    for (let i = 0; i < w.length; i++) w[i] = ~c.words[i]!;
    return out.clearTail();
  }
  if (p < 1 / 16) {
    const logQ = Math.log1p(-p);
    let pos = -1;
    for (;;) {
      pos += Math.floor(Math.log1p(-rng.nextFloat()) / logQ) + 1;
      if (!(pos < n)) break;
      w[pos >>> 5]! |= 1 << (pos & 31);
    }
    return out;
  }
  const digits = Math.round(p * 0x100000000) >>> 0;
  let nDigits = 32;
  while (((digits >>> (32 - nDigits)) & 1) === 0) nDigits--;
  const batch = new Uint32Array(Math.min(4096, 8 * w.length + 32));
  let next = batch.length;
  for (let i = 0; i < w.length; i++) {
    let undecided = -1;
    let acc = 0;
    for (let k = 0; k < nDigits && undecided !== 0; k++) {
      if (next === batch.length) {
        rng.fillWords(batch);
        next = 0;
      }
      const r = batch[next++]!;
      const d = -((digits >>> (31 - k)) & 1);
      acc |= undecided & ~r & d;
      undecided &= ~(r ^ d);
    }
    w[i] = acc;
  }
  return out.clearTail();
}

describe('bernoulliBits', () => {
  it('when p ranges over small, middle and large values, then the count of ones is within 5 sigma of n·p and the tail stays clear', () => {
    const rng = seededRng(9);
    const n = 200_003;
    for (const p of [0, 1e-5, 1e-3, 0.01, 0.05, 0.0625, 0.1, 0.25, 1 / 3, 0.5, 0.7, 0.9375, 0.95, 0.999, 1]) {
      const bits = bernoulliBits(rng, n, p);
      expect(bits.length).toBe(n);
      const ones = bits.popcount();
      const sigma = Math.sqrt(n * p * (1 - p));
      expect(Math.abs(ones - n * p), `p=${p}`).toBeLessThanOrEqual(5 * sigma + 1e-9);
      expect(bits.words[bits.words.length - 1]! >>> (n & 31)).toBe(0);
    }
  });

  it('when drawing with geometric skipping, then neighbouring bits are independent (pairs occur at rate p²)', () => {
    const rng = seededRng(10);
    const n = 2_000_000;
    const p = 0.03;
    const bits = bernoulliBits(rng, n, p);
    let pairs = 0;
    for (let i = 0; i + 1 < n; i++) pairs += bits.get(i) & bits.get(i + 1);
    const expected = (n - 1) * p * p;
    expect(Math.abs(pairs - expected)).toBeLessThan(5 * Math.sqrt(expected));
  });

  it('when the word method is used, then each bit position within a word has the same rate', () => {
    const rng = seededRng(11);
    const p = 0.3;
    const counts = new Array<number>(32).fill(0);
    const rounds = 20_000;
    const bits = bernoulliBits(rng, 32 * rounds, p);
    for (let i = 0; i < bits.length; i++) counts[i & 31]! += bits.get(i);
    const sigma = Math.sqrt(rounds * p * (1 - p));
    for (const c of counts) expect(Math.abs(c - rounds * p)).toBeLessThan(5 * sigma);
  });

  it('when the word method draws its random words in batches, then the bits are those of the lane-wise comparison of U with p', () => {
    // The definition, lane by lane: U is a lane's 32-bit uniform, p rounded to 32 binary digits; the lane is 1 when
    // U < p. With p of at most 8 digits, stream words one per digit of U (bit b of a word is lane b's digit), most
    // significant first, until every lane is decided. Otherwise 8 words give every lane U's first 8 digits; a lane
    // whose 8 digits equal p's then takes the next word (lowest lane first) and compares its top 24 bits with p's
    // last 24 digits.
    for (const p of [0.3, 0.2, 1 / 3, 0.5, 0.0625, 0.9375, 0.7, 0.296875, 0.2988281, 0.25 + 2 ** -9, 0.75 - 2 ** -32]) {
      const digits = Math.round(p * 0x100000000) >>> 0;
      const nDigits = 32 - (31 - Math.clz32(digits & -digits)); // position of p's last one digit
      const n = 32 * 3000 + 7; // more than one batch, and a partial last word
      const reference = seededRng(21);
      const expected = new Uint32Array((n + 31) >>> 5);
      for (let i = 0; i < expected.length; i++) {
        let acc = 0;
        if (nDigits <= 8) {
          for (let k = 0, undecided = 0xffffffff; undecided !== 0 && k < nDigits; k++) {
            const r = reference.nextUint32();
            const d = (digits >>> (31 - k)) & 1;
            for (let b = 0; b < 32; b++) {
              if (!((undecided >>> b) & 1)) continue;
              const u = (r >>> b) & 1;
              if (u !== d) {
                if (u < d) acc |= 1 << b;
                undecided = (undecided & ~(1 << b)) >>> 0;
              }
            }
          }
        } else {
          const slices = Array.from({ length: 8 }, () => reference.nextUint32());
          const tied: number[] = [];
          for (let b = 0; b < 32; b++) {
            let top = 0;
            for (let k = 0; k < 8; k++) top = (top << 1) | ((slices[k]! >>> b) & 1);
            if (top < digits >>> 24) acc |= 1 << b;
            else if (top === digits >>> 24) tied.push(b);
          }
          for (const b of tied) if (reference.nextUint32() >>> 8 < (digits & 0xffffff)) acc |= 1 << b;
        }
        expected[i] = acc;
      }
      expected[expected.length - 1]! &= (1 << (n & 31)) - 1;
      expect(Array.from(bernoulliBits(seededRng(21), n, p).words), `p=${p}`).toEqual(Array.from(expected));
    }
  });

  it('when the word method is used, then bits of one word and of neighbouring words are independent (pairs at rate p²)', () => {
    const rng = seededRng(22);
    const n = 32 * 40_000;
    for (const p of [0.2, 0.5, 0.7]) {
      const bits = bernoulliBits(rng, n, p);
      // Lanes 0 and 1 of a word, lane 31 of a word with lane 0 of the next, and lane 5 of two consecutive words.
      for (const [a, b] of [[0, 1], [31, 32], [5, 37]] as const) {
        let pairs = 0;
        const trials = n / 32 - 2;
        for (let w = 0; w < trials; w++) pairs += bits.get(32 * w + a) & bits.get(32 * w + b);
        const expected = trials * p * p;
        expect(Math.abs(pairs - expected), `p=${p} lanes ${a},${b}`).toBeLessThan(5 * Math.sqrt(expected * (1 - p * p)));
      }
    }
  });

  const UNCHANGED = [0, 1e-4, 0.03, 0.0625, 0.5, 0.95, 0.999, 1];
  it('when Bernoulli bits are ORed into an array at some lanes, then they are the drawn bits there and the stream goes on alike', () => {
    const rng = seededRng(23);
    for (const n of [0, 1, 31, 32, 33, 1000, 32 * 3000 + 7]) {
      for (const p of [0, 1e-4, 0.03, 0.0625, 0.2, 1 / 3, 0.5, 0.7, 0.95, 0.999, 1]) {
        for (const withLanes of [false, true]) {
          const seed = randomBelow(rng, 1 << 30);
          const want = bernoulliBits(seededRng(seed), n, p);
          // Unchanged draws (geometric, complement, p of at most 8 binary digits) are those of the replaced code.
          if (UNCHANGED.includes(p)) expect(want.equals(referenceBernoulliBits(seededRng(seed), n, p)), `n=${n} p=${p}`).toBe(true);
          const lanes = withLanes ? bernoulliBits(rng, n, 0.6) : null;
          const before = randomBits(rng, n);
          const out = before.words.slice();
          const draws = seededRng(seed);
          orBernoulliBits(draws, out, n, p, lanes?.words);
          const reference = seededRng(seed);
          bernoulliBits(reference, n, p);
          expect(draws.nextUint32(), `n=${n} p=${p}`).toBe(reference.nextUint32());
          for (let i = 0; i < out.length; i++) {
            expect(out[i], `n=${n} p=${p} lanes=${withLanes} word ${i}`).toBe((before.words[i]! | (want.words[i]! & (lanes ? lanes.words[i]! : 0xffffffff))) >>> 0);
          }
        }
      }
    }
    expect(() => orBernoulliBits(seededRng(1), new Uint32Array(1), 33, 0.5)).toThrow(RangeError);
    expect(() => orBernoulliBits(seededRng(1), new Uint32Array(2), 33, 1.5)).toThrow(RangeError);
  });

  it('when p is not a probability, then it throws', () => {
    expect(() => bernoulliBits(seededRng(1), 10, -0.1)).toThrow(RangeError);
    expect(() => bernoulliBits(seededRng(1), 10, Number.NaN)).toThrow(RangeError);
  });

  it('when n = 0, then the result is empty', () => {
    expect(bernoulliBits(seededRng(1), 0, 0.5).length).toBe(0);
  });
});

describe('randomBelow, randomBits, binomialCount', () => {
  it('when drawing below a bound, then values are in range and roughly uniform', () => {
    const rng = seededRng(12);
    const counts = [0, 0, 0];
    for (let i = 0; i < 30_000; i++) counts[randomBelow(rng, 3)]!++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(5 * Math.sqrt(30_000 * (1 / 3) * (2 / 3)));
    expect(randomBelow(rng, 1)).toBe(0);
    expect(() => randomBelow(rng, 0)).toThrow(RangeError);
  });

  it('when drawing uniform bits, then about half are ones', () => {
    const bits = randomBits(seededRng(13), 100_001);
    expect(Math.abs(bits.popcount() - 50_000.5)).toBeLessThan(5 * Math.sqrt(100_001 / 4));
  });

  it('when drawing binomial counts, then mean and variance match n·p and n·p·(1-p)', () => {
    const rng = seededRng(14);
    for (const [n, p] of [[10_000, 0.01], [1_000, 0.7], [5_000_000, 1e-4]] as const) {
      const trials = 400;
      let sum = 0;
      let sumSq = 0;
      for (let t = 0; t < trials; t++) {
        const k = binomialCount(rng, n, p);
        sum += k;
        sumSq += k * k;
      }
      const mean = sum / trials;
      const variance = sumSq / trials - mean * mean;
      const v = n * p * (1 - p);
      expect(Math.abs(mean - n * p)).toBeLessThan(5 * Math.sqrt(v / trials));
      expect(variance / v).toBeGreaterThan(0.7);
      expect(variance / v).toBeLessThan(1.3);
    }
  });
});
