/**
 * Work arrays reused across passes and blocks: fresh typed arrays of 128 KiB and more are fresh memory from the
 * system, page-faulted in on first touch (15-25 us a page on the test VM), and cost garbage collection, on every
 * block. The public pools hold positions and parity flags; key bits go to KEY_WORDS_POOL only, which zeroes them.
 */
import { BitArray } from '../common/bits.js';

/**
 * Reusable work space for pass orders. Fresh large typed arrays are expensive (the pages are faulted
 * in on first touch, and the garbage collector runs more often), so one of these serves every pass of
 * every block in this thread (SHARED_SCRATCH). That is safe because its users (drawShuffle, shuffleKey)
 * are synchronous: nothing else runs between filling and reading it. It never holds key bits.
 */
export class PermutationScratch {
  private bucketOf: Uint8Array | undefined;
  private ranks: Int32Array | undefined;
  private offsets: Int32Array | undefined;
  /** n bucket numbers (every entry is written by assignBuckets). */
  buckets(n: number): Uint8Array {
    if (!this.bucketOf || this.bucketOf.length < n) this.bucketOf = new Uint8Array(roundUpLength(n));
    return this.bucketOf.subarray(0, n);
  }
  /** `length` bucket offsets (assignBuckets counts into them from zero). */
  bucketOffsets(length: number): Int32Array {
    if (!this.offsets || this.offsets.length !== length) this.offsets = new Int32Array(length);
    else this.offsets.fill(0);
    return this.offsets;
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
 *
 * A request takes the smallest kept buffer that holds it, up to MAX_FIT times its size: the trees' sizes follow the
 * key length and the QBER estimate, which differ from block to block, and a pool that wanted the exact size
 * missed on about every other block in the pipeline bench (a fresh 4 MB tree, faulted in page by page).
 */
class ArrayPool<T extends Int32Array | Uint32Array | Uint8Array> {
  private readonly free: ArrayBuffer[] = [];
  /** The buffers this pool allocated: give() keeps only these (never a view into someone else's memory). */
  private readonly own = new WeakSet<ArrayBuffer>();
  constructor(
    private readonly view: (buffer: ArrayBuffer, length: number) => T,
    private readonly bytesPerElement: number,
    private readonly maxKept: number,
    private readonly step = LENGTH_STEP,
  ) {}

  /** An array of `length` elements; zeroed when `zero` (else it holds whatever its last user left). */
  take(length: number, zero: boolean): T {
    const bytes = roundUpLength(length, this.step) * this.bytesPerElement;
    const i = this.bestFit(bytes);
    if (i < 0) return this.view(this.allocate(bytes), length);
    const a = this.view(this.free.splice(i, 1)[0]!, length);
    if (zero) a.fill(0);
    return a;
  }

  /** Returns an array from take(); the caller must not use it afterwards. */
  give(a: T): void {
    this.keep(a.buffer as ArrayBuffer);
  }

  protected owns(buffer: ArrayBuffer): boolean {
    return this.own.has(buffer);
  }

  protected allocate(bytes: number): ArrayBuffer {
    const buffer = new ArrayBuffer(bytes);
    this.own.add(buffer);
    return buffer;
  }

  /**
   * Index in `free` of the smallest buffer of at least `bytes` and at most MAX_FIT times that, or -1; of equal ones
   * the one given back last (the likeliest still in the caches).
   */
  private bestFit(bytes: number): number {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const size = this.free[i]!.byteLength;
      if (size >= bytes && size <= MAX_FIT * bytes && (best < 0 || size <= this.free[best]!.byteLength)) best = i;
    }
    return best;
  }

  /** Adds a buffer of this pool to the free list; when full, the oldest kept goes. */
  protected keep(buffer: ArrayBuffer): void {
    if (!this.owns(buffer) || this.free.includes(buffer)) return;
    if (this.free.length >= this.maxKept) this.free.shift(); // likely another key length
    this.free.push(buffer);
  }
}

/** A kept buffer serves requests down to 1 / MAX_FIT of its size (the trees of one key length differ by up to 15 %). */
const MAX_FIT = 1.5;

export const INT32_POOL = new ArrayPool<Int32Array>((b, n) => new Int32Array(b, 0, n), 4, 8);
/**
 * Bob's BINARY trees. Every buffer in here is all zero: fresh ones are, and BobReconciler zeroes the pages it wrote
 * before giving a tree back (BobPass.clearTrees), so a tree is taken without a fill. A fill of the whole view on every
 * take cost a 4 MB memset per two-block pass and, on a buffer's first reuse, faulted in the pages its first, sparse
 * use had never touched (about 1,000 faults for a two-block pass's trees).
 */
export const TREE_POOL = new ArrayPool<Uint8Array>((b, n) => new Uint8Array(b, 0, n), 1, 8);

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

/**
 * The words of the n-bit arrays that hold key bits or where they differ: Bob's corrected key and the bits he
 * flipped (reconcile), the shuffled copies of either end's key and Alice's copy of hers (responder). Separate
 * from the public pools, and never handed out dirty: give() zeroes the whole buffer before it is kept or dropped,
 * so no key bit outlives its user in a free buffer, and take() zeroes again (a 128 KiB memset, a few
 * microseconds), so a consumer gets zeros even if a former owner wrote after giving back.
 */
class KeyWordsPool extends ArrayPool<Uint32Array> {
  constructor() {
    super((b, n) => new Uint32Array(b, 0, n), 4, 16, SPLIT_STEP);
  }

  /** A zeroed array of `length` words (whatever `zero` says). */
  override take(length: number, _zero = true): Uint32Array {
    return super.take(length, true);
  }

  /**
   * Zeroes `a`, then keeps its buffer, zeroed whole, if it came from this pool. An array from elsewhere is only
   * zeroed (its buffer may hold other data).
   */
  override give(a: Uint32Array): void {
    a.fill(0);
    const buffer = a.buffer as ArrayBuffer;
    if (!this.owns(buffer)) return;
    new Uint32Array(buffer).fill(0);
    this.keep(buffer);
  }
}

export const KEY_WORDS_POOL = new KeyWordsPool();

/** An all-zero n-bit array over pooled words (hand it back with releaseKeyBits). */
export function pooledKeyBits(n: number): BitArray {
  return new BitArray(n, KEY_WORDS_POOL.take((n + 31) >>> 5));
}

/** A copy of `bits` over pooled words (hand it back with releaseKeyBits). */
export function pooledKeyCopy(bits: BitArray): BitArray {
  const copy = pooledKeyBits(bits.length);
  copy.words.set(bits.words);
  return copy;
}

/**
 * Zeroes every given bit array and hands those over pooled words back for the next block (Cascade's corrected key,
 * once its owner is done with it); anything else given is ignored. The arrays must not be used afterwards.
 */
export function releaseKeyBits(...arrays: (BitArray | Uint8Array | undefined | null)[]): void {
  for (const a of arrays) if (a instanceof BitArray) KEY_WORDS_POOL.give(a.words);
}
