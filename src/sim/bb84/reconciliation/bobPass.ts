/** Bob's state for one Cascade pass: the BINARY trees of its blocks, and the way to its shuffled order. */
import type { BitArray } from '../common/bits.js';
import type { AffineView, SplitView } from './passViews.js';
import { nextPow2 } from './variants.js';

export const UNKNOWN = 0;
export const PENDING = 1;
export const KNOWN = 2;
/** Added to a known odd node while the cascade effect collects the searches of a level: it is queued already. */
export const QUEUED = 4;
/** log2 of the page size (4 KiB) by which trees are marked written and zeroed (see BobPass.dirtyPages). */
export const TREE_PAGE_SHIFT = 12;

/**
 * Bob's state for one pass. Nodes of the BINARY tree of top-level block b are numbered heap-style
 * (root 1, children 2h and 2h + 1) at offset b * span of `node`, which holds 0 (parity unknown),
 * 1 (asked in the current round) or 2 | e (known; e = error parity = Alice's parity xor Bob's current
 * parity), plus QUEUED for a moment (see runSearches). Error parities of known nodes are kept current as Bob
 * flips bits.
 *
 * A pass of at most two blocks (the n/2 passes of the optimized variants) starts "light": it keeps
 * only which block each bit is in and the two error parities, and builds its permutation, inverse
 * and shuffled key only if one of its blocks turns odd. Most such passes never do, which saves two
 * n-entry Int32Arrays each.
 */
export class BobPass {
  readonly span: number;
  /** The BINARY trees (allocated when the pass is materialized; light passes keep only lightRoots). */
  node: Uint8Array;
  /**
   * One flag per 4 KiB page of `node`, set where an entry may be nonzero: trees go back to TREE_POOL zeroed, page by
   * page, and a two-block pass's 4 MB of trees is mostly never written (a search touches one node per level).
   */
  dirtyPages: Uint8Array;
  /** Light passes: error parity entries (0, or KNOWN | e) of the one or two top-level blocks. */
  readonly lightRoots = new Uint8Array(2);
  /** Passes of one or three or more blocks, once materialized: the permutation and its inverse. */
  perm: Int32Array | undefined;
  inv: Int32Array | undefined;
  /** Bob's current key, shuffled for this pass (with perm). */
  key: BitArray | undefined;
  /** Two-block passes: bit x is 1 iff original bit x lies in block 0 (from the start). */
  firstBlock: BitArray | undefined;
  /** Two-block passes, once materialized: positions and parities from firstBlock, no permutation. */
  split: SplitView | undefined;
  /** The affine first pass: positions and parities computed, no permutation. */
  affine: AffineView | undefined;

  constructor(
    readonly index: number,
    readonly n: number,
    readonly blockSize: number,
    readonly numBlocks: number,
  ) {
    this.span = 2 * nextPow2(blockSize);
    this.node = new Uint8Array(0);
    this.dirtyPages = new Uint8Array(0);
  }

  /** Sets tree entry i (a first write there, else see the other writers: they only change entries already set). */
  setNode(i: number, v: number): void {
    this.node[i] = v;
    this.dirtyPages[i >>> TREE_PAGE_SHIFT] = 1;
  }

  /** Zeroes the pages of the trees that were written (all of `node` is zero afterwards). */
  clearTrees(): void {
    const { node, dirtyPages } = this;
    for (let p = 0; p < dirtyPages.length; ) {
      if (!dirtyPages[p]) {
        p++;
        continue;
      }
      let q = p + 1;
      while (q < dirtyPages.length && dirtyPages[q]) q++;
      node.fill(0, p << TREE_PAGE_SHIFT, Math.min(node.length, q << TREE_PAGE_SHIFT));
      dirtyPages.fill(0, p, q);
      p = q;
    }
  }

  /** Light passes (at most two blocks) start without trees, permutation or shuffled key. */
  get light(): boolean {
    return this.inv === undefined && this.split === undefined && this.affine === undefined;
  }

  /** Shuffled position of original bit x (materialized passes). */
  positionOf(x: number): number {
    if (this.affine) return this.affine.positionOf(x);
    return this.split ? this.split.positionOf(x) : this.inv![x]!;
  }

  /** Original bit at shuffled position j (materialized passes). */
  originalAt(j: number): number {
    if (this.affine) return this.affine.originalAt(j);
    return this.split ? this.split.originalAt(j) : this.perm![j]!;
  }

  /** Parity of Bob's current key (`corrected`, in original order) at shuffled positions [start, end). */
  parity(corrected: BitArray, start: number, end: number): number {
    if (this.affine) return this.affine.parity(corrected, start, end);
    return this.split ? this.split.parity(corrected, start, end) : this.key!.parityRange(start, end);
  }
}

/**
 * BINARY searches in progress, entry i for search i: its pass, and its current node (known, believed odd): the offset
 * b * span of its tree, its heap index h, and the shuffled positions [s, e) it covers. Columns of integers rather than
 * an object per search (reused level after level): the search objects and the arrays holding them were 6 of the 19 MB
 * a 1-Mbit block allocated on the JavaScript heap, and they outlive round trips, so the garbage collector copied them
 * into fresh, page-faulting memory.
 */
export class SearchList {
  count = 0;
  pass: Int32Array = new Int32Array(256);
  base: Int32Array = new Int32Array(256);
  h: Int32Array = new Int32Array(256);
  s: Int32Array = new Int32Array(256);
  e: Int32Array = new Int32Array(256);

  push(pass: number, base: number, h: number, s: number, e: number): void {
    if (this.count === this.pass.length) this.grow();
    const i = this.count++;
    this.pass[i] = pass;
    this.base[i] = base;
    this.h[i] = h;
    this.s[i] = s;
    this.e[i] = e;
  }

  private grow(): void {
    const wider = (a: Int32Array): Int32Array => {
      const b = new Int32Array(2 * a.length);
      b.set(a);
      return b;
    };
    this.pass = wider(this.pass);
    this.base = wider(this.base);
    this.h = wider(this.h);
    this.s = wider(this.s);
    this.e = wider(this.e);
  }
}

/** Entry (0, or KNOWN | error parity) of the top-level block b of pass ps. */
export function rootEntry(ps: BobPass, b: number): number {
  return ps.light ? ps.lightRoots[b]! : ps.node[b * ps.span + 1]!;
}

/** Block (0 or 1) of original bit x in a light pass. */
export function blockOfLight(ps: BobPass, x: number): number {
  return ps.firstBlock && !ps.firstBlock.get(x) ? 1 : 0;
}

/** Flips original bit x in pass ps: its shuffled key copy and the error parity of every known block containing it. */
export function togglePath(ps: BobPass, x: number): void {
  if (ps.light) {
    ps.lightRoots[blockOfLight(ps, x)]! ^= 1;
    return;
  }
  const pos = ps.positionOf(x);
  ps.key?.flip(pos); // split and affine passes read Bob's corrected key itself
  const b = Math.floor(pos / ps.blockSize);
  const base = b * ps.span;
  const node = ps.node;
  let s = b * ps.blockSize;
  let e = Math.min(ps.n, s + ps.blockSize);
  let h = 1;
  for (;;) {
    if (node[base + h]! < KNOWN) return;
    node[base + h] ^= 1;
    if (e - s === 1) return;
    const mid = s + ((e - s + 1) >>> 1);
    if (pos < mid) {
      h = 2 * h;
      e = mid;
    } else {
      h = 2 * h + 1;
      s = mid;
    }
  }
}
