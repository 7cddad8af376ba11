/** The generator behind the public shuffles of Cascade's passes. */

/** xoshiro128** (Blackman & Vigna, 2018): fast, well mixed, 2^128 - 1 period. Not secret: the shuffles are public. */
export class Xoshiro128 {
  // Public so that shuffleRanks can run the generator in local variables.
  s0: number;
  s1: number;
  s2: number;
  s3: number;

  constructor(state: Uint8Array) {
    const v = new DataView(state.buffer, state.byteOffset, 16);
    this.s0 = v.getUint32(0, true);
    this.s1 = v.getUint32(4, true);
    this.s2 = v.getUint32(8, true);
    this.s3 = v.getUint32(12, true);
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the all-zero state is a fixed point
  }

  /** Next uniform 32-bit unsigned integer. */
  next(): number {
    const x = Math.imul(this.s1, 5);
    const result = Math.imul((x << 7) | (x >>> 25), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = (this.s3 << 11) | (this.s3 >>> 21);
    return result;
  }

  /** Uniform integer in [0, bound), 1 <= bound <= 2^32, without modulo bias. */
  below(bound: number): number {
    if (bound <= EXACT_PRODUCT_BOUND) {
      // Lemire's multiply-and-reject: r * bound is exact in a double; keep the high 32 bits, reject
      // the few r whose low part falls under 2^32 mod bound.
      for (;;) {
        const m = this.next() * bound;
        const high = Math.floor(m / 4294967296);
        const low = m - high * 4294967296;
        if (low >= bound || low >= (4294967296 - bound) % bound) return high;
      }
    }
    const limit = 4294967296 - (4294967296 % bound);
    for (;;) {
      const r = this.next();
      if (r < limit) return r % bound;
    }
  }
}

/** Bounds up to this keep r * bound (r < 2^32) exact in a double. */
const EXACT_PRODUCT_BOUND = 2 ** 21;
