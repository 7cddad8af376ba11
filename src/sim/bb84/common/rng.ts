/**
 * Random sources for the BB84 simulation and post-processing.
 *
 * - `cryptoRng()`: the operating system CSPRNG (node:crypto randomFillSync), buffered. Use it for every value a
 *   protocol picks (sample seeds, hash seeds, Toeplitz seeds) and for the simulated quantum randomness in production.
 * - `sharedSeedRng(seed)`: a deterministic *cryptographic* stream (AES-256-CTR keystream keyed by SHA-256 of the
 *   seed). Both ends expand an exchanged CSPRNG seed with it and derive identical values (e.g. sample positions).
 * - `seededRng(seed)`: xoshiro128** (state from SHA-256 of the seed): fast and reproducible, for tests and
 *   benchmarks only. Not cryptographic.
 *
 * All word streams are platform independent (no reliance on the host's byte order).
 */
import { createCipheriv, createHash, randomFillSync } from 'node:crypto';
import { endianness } from 'node:os';
import { BitArray } from './bits.js';

export interface Rng {
  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number;
  /** Fills `w` with uniform 32-bit words (same stream as repeated nextUint32 calls). */
  fillWords(w: Uint32Array): void;
  /** A uniform float in [0, 1) with 53 random bits. */
  nextFloat(): number;
}

const BUFFER_WORDS = 4096;
const HOST_LITTLE_ENDIAN = endianness() === 'LE';
const TWO_POW_26 = 67108864;
const TWO_POW_53 = 9007199254740992;

/** An Rng over a bulk word source, buffered so single draws are cheap. */
class BufferedRng implements Rng {
  private readonly buf: Uint32Array;
  private pos: number;

  constructor(
    private readonly source: (out: Uint32Array) => void,
    bufferWords = BUFFER_WORDS,
  ) {
    this.buf = new Uint32Array(bufferWords);
    this.pos = bufferWords;
  }

  nextUint32(): number {
    if (this.pos === this.buf.length) {
      this.source(this.buf);
      this.pos = 0;
    }
    return this.buf[this.pos++]!;
  }

  fillWords(w: Uint32Array): void {
    const size = this.buf.length;
    let i = 0;
    while (i < w.length) {
      if (this.pos === size) {
        // A request of a buffer or more comes straight from the source; a small one refills the buffer (one call
        // to the source per buffer, not per request). Either way the words keep the stream's order.
        if (w.length - i >= size) {
          this.source(w.subarray(i));
          return;
        }
        this.source(this.buf);
        this.pos = 0;
      }
      const take = Math.min(w.length - i, size - this.pos);
      w.set(this.buf.subarray(this.pos, this.pos + take), i);
      this.pos += take;
      i += take;
    }
  }

  nextFloat(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * TWO_POW_26 + lo) / TWO_POW_53;
  }
}

/**
 * Words the CSPRNG is read in. A call to randomFillSync costs about 3 us besides its bytes, and the word method of
 * bernoulliBits asks for BERNOULLI_BATCH_WORDS at a time: with this buffer, one call serves four such batches.
 */
const CRYPTO_BUFFER_WORDS = 16384;
let sharedCryptoRng: Rng | undefined;

/**
 * The OS CSPRNG (node:crypto), read in buffered chunks. One instance per thread: the OS source has no state of its
 * own to keep apart, and a buffer per caller would be 64 kB of fresh memory each.
 */
export function cryptoRng(): Rng {
  sharedCryptoRng ??= new BufferedRng((out) => {
    // randomFillSync caps one call at 2^31-1 bytes.
    const maxWords = 1 << 28;
    for (let i = 0; i < out.length; i += maxWords) randomFillSync(out.subarray(i, Math.min(out.length, i + maxWords)));
  }, CRYPTO_BUFFER_WORDS);
  return sharedCryptoRng;
}

/** Bytes of a seed given as number, bigint or bytes (numbers and bigints of equal value give the same bytes). */
function seedBytes(seed: number | bigint | Uint8Array): Uint8Array {
  if (seed instanceof Uint8Array) return seed;
  let v: bigint;
  if (typeof seed === 'number') {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
    v = BigInt(seed);
  } else {
    v = seed;
  }
  const negative = v < 0n;
  if (negative) v = -v;
  const bytes: number[] = [negative ? 1 : 0];
  do {
    bytes.push(Number(v & 0xffn));
    v >>= 8n;
  } while (v > 0n);
  return Uint8Array.from(bytes);
}

function readUint32Le(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
}

/** xoshiro128** (Blackman & Vigna), 128-bit state. */
class Xoshiro128ss implements Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(state: Uint8Array) {
    this.s0 = readUint32Le(state, 0);
    this.s1 = readUint32Le(state, 4);
    this.s2 = readUint32Le(state, 8);
    this.s3 = readUint32Le(state, 12);
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the all-zero state is a fixed point
  }

  nextUint32(): number {
    const s1 = this.s1;
    const m = Math.imul(s1, 5);
    const result = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = (this.s3 << 11) | (this.s3 >>> 21);
    return result;
  }

  fillWords(w: Uint32Array): void {
    for (let i = 0; i < w.length; i++) w[i] = this.nextUint32();
  }

  nextFloat(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * TWO_POW_26 + lo) / TWO_POW_53;
  }
}

/**
 * A fast deterministic generator (xoshiro128**) for tests, benchmarks and reproducible simulations. The state is
 * the first 16 bytes of SHA-256("bb84-seeded-rng" || seed bytes). Not cryptographic: never use it for protocol
 * choices in production.
 */
export function seededRng(seed: number | bigint | Uint8Array): Rng {
  const digest = createHash('sha256').update('bb84-seeded-rng\0').update(seedBytes(seed)).digest();
  return new Xoshiro128ss(new Uint8Array(digest.buffer, digest.byteOffset, 16));
}

/** Keystream words sharedSeedRng encrypts per call to the cipher, and the zeros it encrypts (never written). */
const KEYSTREAM_CHUNK_WORDS = BUFFER_WORDS;
const KEYSTREAM_ZEROS = Buffer.alloc(4 * KEYSTREAM_CHUNK_WORDS);

/**
 * A deterministic cryptographic stream from a shared seed: AES-256-CTR keystream with key SHA-256("bb84-shared-seed"
 * || seed) and a zero IV. Both ends of a link expand an exchanged seed (picked with a CSPRNG by one end) into the same
 * words, so positions, shuffles and the like need not be sent explicitly.
 */
export function sharedSeedRng(seed: Uint8Array): Rng {
  const key = createHash('sha256').update('bb84-shared-seed\0').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return new BufferedRng((out) => {
    // Keystream in chunks of at most KEYSTREAM_CHUNK_WORDS (the same stream as one call): a request of n words
    // would otherwise allocate two fresh n-word buffers (the zeros and the output), and fresh pages are costly
    // here (a page fault each; a two-block Cascade pass asks for n/32 words of a 10^6-bit key).
    for (let at = 0; at < out.length; at += KEYSTREAM_CHUNK_WORDS) {
      const words = Math.min(KEYSTREAM_CHUNK_WORDS, out.length - at);
      const ks = cipher.update(KEYSTREAM_ZEROS.subarray(0, 4 * words));
      // The words are little-endian by definition; on a little-endian host (and an aligned buffer) a view reads them as such.
      if (HOST_LITTLE_ENDIAN && ks.byteOffset % 4 === 0) out.set(new Uint32Array(ks.buffer, ks.byteOffset, words), at);
      else for (let i = 0; i < words; i++) out[at + i] = readUint32Le(ks, 4 * i);
    }
  });
}

/** A uniform integer in [0, bound), bound in [1, 2^32] (rejection sampling, no modulo bias). */
export function randomBelow(rng: Rng, bound: number): number {
  if (!Number.isInteger(bound) || bound < 1 || bound > 0x100000000) throw new RangeError(`randomBelow: bound must be an integer in [1, 2^32], got ${bound}`);
  if (bound === 0x100000000) return rng.nextUint32();
  const limit = 0x100000000 - (0x100000000 % bound);
  for (;;) {
    const x = rng.nextUint32();
    if (x < limit) return x % bound;
  }
}

/** Below this probability Bernoulli bits are drawn by geometric skipping; above it by the word method. */
const GEOMETRIC_MAX_P = 1 / 16;
/** Random words the word method draws at a time. */
const BERNOULLI_BATCH_WORDS = 4096;
/** Digits of U the word method compares bit-sliced for every lane when p has more (see bernoulliBits). */
const SLICED_DIGITS = 8;

function checkProbability(p: number, what: string): void {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`${what} must be a probability in [0, 1], got ${p}`);
}

/**
 * n independent Bernoulli(p) bits, packed.
 *
 * - p < 1/16 (or > 15/16, by complement): geometric skipping. The gap to the next one bit is
 *   floor(ln U / ln(1 - p)), so the cost is about n·p float draws, not n.
 * - otherwise the word method: with p rounded to 32 binary digits 0.b1 b2 ... b32, the 32 lanes of a word each
 *   compare a uniform 32-bit U with p, most significant digit first, bit-sliced: one random word holds one digit
 *   of U for all 32 lanes. A lane whose digit of U is below p's is 1 (U < p), above it 0, equal stays undecided.
 *   - p with at most 8 digits: one word per digit while some lane is undecided (1 word when p = 1/2);
 *   - otherwise the first 8 digits of U take 8 words, branch-free; a lane still undecided (its 8 digits are p's,
 *     probability 2^-8) then takes one word of its own, lowest lane first, whose top 24 bits are U's other digits:
 *     the lane is 1 when they are below p's last 24. About 8.1 random words per 32 bits.
 *   Either way exactly Bernoulli(round(p·2^32)/2^32) in every lane (|error| ≤ 2^-33), independent across lanes
 *   and words.
 */
export function bernoulliBits(rng: Rng, n: number, p: number): BitArray {
  checkProbability(p, 'bernoulliBits p');
  const out = new BitArray(n);
  orBernoulliBits(rng, out.words, n, p);
  return out;
}

/**
 * ORs into `out` (n bits, no bit set past n) the bits bernoulliBits(rng, n, p) would return, drawing exactly the
 * same words from `rng`, kept at the one bits of `lanes` only when given (n bits, none past n): one pass, without
 * an n-bit array of the draw to allocate and mask afterwards.
 */
export function orBernoulliBits(rng: Rng, out: Uint32Array, n: number, p: number, lanes?: Uint32Array): void {
  checkProbability(p, 'bernoulliBits p');
  const nWords = (n + 31) >>> 5;
  if (out.length < nWords || (lanes && lanes.length < nWords)) throw new RangeError(`orBernoulliBits: arrays shorter than ${n} bits`);
  if (n === 0 || p === 0) return;
  const tail = n % 32 === 0 ? -1 : (2 ** (n % 32) - 1) | 0; // the last word's bits below n
  if (p === 1) {
    for (let i = 0; i < nWords; i++) out[i]! |= lanes ? lanes[i]! : i === nWords - 1 ? tail : -1;
    return;
  }
  if (p > 1 - GEOMETRIC_MAX_P) {
    const c = bernoulliBits(rng, n, 1 - p).words;
    for (let i = 0; i < nWords; i++) out[i]! |= ~c[i]! & (lanes ? lanes[i]! : i === nWords - 1 ? tail : -1);
    c.fill(0);
    return;
  }
  if (p < GEOMETRIC_MAX_P) {
    const logQ = Math.log1p(-p);
    let pos = -1;
    for (;;) {
      // 1 - U is in (0, 1], so the logarithm is finite; the gap counts failures before the next success.
      pos += Math.floor(Math.log1p(-rng.nextFloat()) / logQ) + 1;
      if (!(pos < n)) break;
      const bit = 1 << (pos & 31);
      if (!lanes || (lanes[pos >>> 5]! & bit) !== 0) out[pos >>> 5]! |= bit;
    }
    return;
  }
  const digits = Math.round(p * 0x100000000) >>> 0; // p in [1/16, 15/16]: fits in 32 bits
  // Digits past the last one of p never decide a lane (U >= p there), so the comparison stops at that digit.
  let nDigits = 32;
  while (((digits >>> (32 - nDigits)) & 1) === 0) nDigits--;
  // The stream's words come in batches (words left in the last batch are dropped).
  const batch = new Uint32Array(Math.min(BERNOULLI_BATCH_WORDS, (nDigits <= SLICED_DIGITS ? 8 : SLICED_DIGITS + 1) * nWords + 32));
  let next = batch.length;
  if (nDigits <= SLICED_DIGITS) {
    for (let i = 0; i < nWords; i++) {
      let undecided = -1;
      let acc = 0;
      for (let k = 0; k < nDigits && undecided !== 0; k++) {
        if (next === batch.length) {
          rng.fillWords(batch);
          next = 0;
        }
        const r = batch[next++]!;
        const d = -((digits >>> (31 - k)) & 1); // all ones where p's digit is 1
        acc |= undecided & ~r & d;
        undecided &= ~(r ^ d);
      }
      out[i]! |= acc & (lanes ? lanes[i]! : i === nWords - 1 ? tail : -1);
    }
    return;
  }
  // p's first 8 digits, each all ones or all zeros, and its last 24 as a number.
  const d0 = -(digits >>> 31), d1 = -((digits >>> 30) & 1), d2 = -((digits >>> 29) & 1), d3 = -((digits >>> 28) & 1);
  const d4 = -((digits >>> 27) & 1), d5 = -((digits >>> 26) & 1), d6 = -((digits >>> 25) & 1), d7 = -((digits >>> 24) & 1);
  const rest = digits & 0xffffff;
  for (let i = 0; i < nWords; i++) {
    if (next + SLICED_DIGITS > batch.length) {
      // The batch's last words, then fresh ones: the same stream, read on without a check per word.
      const left = batch.length - next;
      batch.copyWithin(0, next);
      rng.fillWords(batch.subarray(left));
      next = 0;
    }
    const r0 = batch[next]!, r1 = batch[next + 1]!, r2 = batch[next + 2]!, r3 = batch[next + 3]!;
    const r4 = batch[next + 4]!, r5 = batch[next + 5]!, r6 = batch[next + 6]!, r7 = batch[next + 7]!;
    next += SLICED_DIGITS;
    let acc = ~r0 & d0;
    let undecided = ~(r0 ^ d0);
    acc |= undecided & ~r1 & d1;
    undecided &= ~(r1 ^ d1);
    acc |= undecided & ~r2 & d2;
    undecided &= ~(r2 ^ d2);
    acc |= undecided & ~r3 & d3;
    undecided &= ~(r3 ^ d3);
    acc |= undecided & ~r4 & d4;
    undecided &= ~(r4 ^ d4);
    acc |= undecided & ~r5 & d5;
    undecided &= ~(r5 ^ d5);
    acc |= undecided & ~r6 & d6;
    undecided &= ~(r6 ^ d6);
    acc |= undecided & ~r7 & d7;
    undecided &= ~(r7 ^ d7);
    while (undecided !== 0) {
      if (next === batch.length) {
        rng.fillWords(batch);
        next = 0;
      }
      const lane = undecided & -undecided;
      undecided ^= lane;
      if (batch[next++]! >>> 8 < rest) acc |= lane;
    }
    out[i]! |= acc & (lanes ? lanes[i]! : i === nWords - 1 ? tail : -1);
  }
}

/** A uniform random BitArray of n bits. */
export function randomBits(rng: Rng, n: number): BitArray {
  const out = new BitArray(n);
  rng.fillWords(out.words);
  return out.clearTail();
}

/**
 * A Binomial(n, p) count, exact: sums geometric gaps (cost about n·min(p, 1-p) draws), complementing for p > 1/2.
 * Meant for counts whose per-success work follows anyway (e.g. detected pulses of a link).
 */
export function binomialCount(rng: Rng, n: number, p: number): number {
  checkProbability(p, 'binomialCount p');
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`binomialCount n must be a non-negative safe integer, got ${n}`);
  if (p > 0.5) return n - binomialCount(rng, n, 1 - p);
  if (p === 0 || n === 0) return 0;
  const logQ = Math.log1p(-p);
  let pos = -1;
  let count = 0;
  for (;;) {
    pos += Math.floor(Math.log1p(-rng.nextFloat()) / logQ) + 1;
    if (!(pos < n)) return count;
    count++;
  }
}
