/**
 * Work arrays reused across passes and blocks (they hold positions and parity flags, never key bits): fresh
 * multi-megabyte typed arrays cost page faults and garbage collection on every block.
 */

/**
 * Reusable work space for pass orders. Fresh large typed arrays are expensive (the pages are faulted
 * in on first touch, and the garbage collector runs more often), so one of these serves every pass of
 * every block in this thread (SHARED_SCRATCH). That is safe because its users (drawShuffle, shuffleKey)
 * are synchronous: nothing else runs between filling and reading it. It never holds key bits.
 */
export class PermutationScratch {
  private bucketOf: Uint8Array | undefined;
  private ranks: Int32Array | undefined;
  /** n bucket numbers (every entry is written by assignBuckets). */
  buckets(n: number): Uint8Array {
    if (!this.bucketOf || this.bucketOf.length < n) this.bucketOf = new Uint8Array(roundUpLength(n));
    return this.bucketOf.subarray(0, n);
  }
  /** Room for the ranks of a short key's Fisher-Yates. */
  rankSpace(len: number): Int32Array {
    if (!this.ranks || this.ranks.length < len) this.ranks = new Int32Array(len);
    return this.ranks;
  }
}

/** Keys differ in length by a few bits from block to block: work arrays are sized in steps of 2^16 elements. */
const LENGTH_STEP = 1 << 16;
function roundUpLength(n: number, step = LENGTH_STEP): number {
  return Math.ceil(n / step) * step;
}

export const SHARED_SCRATCH = new PermutationScratch();

/**
 * Free lists of the large public arrays one reconciliation holds across round trips (Bob's
 * permutation, inverse and BINARY trees of a shuffled pass: 3-4 MB each for a 1-Mbit block), so
 * consecutive blocks reuse them instead of allocating about 14 MB per block. They hold positions and
 * error-parity flags, never key bits. Arrays are handed out as views of exactly the length asked for,
 * over buffers sized in steps of LENGTH_STEP elements; a few buffers are kept in all (several streams
 * may reconcile at once; beyond that, arrays are allocated and dropped as before).
 */
class ArrayPool<T extends Int32Array | Uint32Array | Uint8Array> {
  private readonly free: ArrayBuffer[] = [];
  constructor(
    private readonly view: (buffer: ArrayBuffer, length: number) => T,
    private readonly bytesPerElement: number,
    private readonly maxKept: number,
    private readonly step = LENGTH_STEP,
  ) {}

  /** An array of `length` elements; zeroed when `zero` (else it holds whatever its last user left). */
  take(length: number, zero: boolean): T {
    const bytes = roundUpLength(length, this.step) * this.bytesPerElement;
    const i = this.free.findIndex((b) => b.byteLength === bytes);
    if (i < 0) return this.view(new ArrayBuffer(bytes), length);
    const a = this.view(this.free.splice(i, 1)[0]!, length);
    if (zero) a.fill(0);
    return a;
  }

  /** Returns an array from take(); the caller must not use it afterwards. */
  give(a: T): void {
    const buffer = a.buffer as ArrayBuffer;
    if (buffer.byteLength !== roundUpLength(a.length, this.step) * this.bytesPerElement || this.free.includes(buffer)) return;
    if (this.free.length >= this.maxKept) this.free.shift(); // drop the oldest (likely another key length)
    this.free.push(buffer);
  }
}

export const INT32_POOL = new ArrayPool<Int32Array>((b, n) => new Int32Array(b, 0, n), 4, 8);
export const UINT8_POOL = new ArrayPool<Uint8Array>((b, n) => new Uint8Array(b, 0, n), 1, 8);

/**
 * The member sets (BitArray words) and rank tables of the two-block passes: one n-bit array and one n/32-entry
 * table per pass at each end, 12 passes a block with the default variant. Allocated fresh on every block, they
 * cost page faults (measured in the BB84 pipeline bench at 1.06 Mbit, just past 2^20 bits where these arrays
 * reach glibc's 128 KiB mmap threshold: about 150 faults a block in Bob's first Cascade answer, 10-30 us each
 * on the test VM). Public (derived from the shuffle seed), never key bits. Sized in steps of 4096 elements.
 */
const SPLIT_STEP = 4096;
export const MEMBERS_POOL = new ArrayPool<Uint32Array>((b, n) => new Uint32Array(b, 0, n), 4, 32, SPLIT_STEP);
export const RANK_POOL = new ArrayPool<Int32Array>((b, n) => new Int32Array(b, 0, n), 4, 32, SPLIT_STEP);
