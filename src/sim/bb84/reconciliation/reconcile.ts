/**
 * Bob's side of Cascade: the passes, and BINARY run in lockstep over every odd block with the cascade effect, one
 * round trip per level.
 */
import type { BitArray } from '../common/bits.js';
import { blockOfLight, BobPass, KNOWN, PENDING, QUEUED, rootEntry, SearchList, togglePath, TREE_PAGE_SHIFT, UNKNOWN } from './bobPass.js';
import { CascadeProtocolError, type ParityOracle, type ParityQuestion } from './oracle.js';
import { affineView, andParity, isAffinePass, pooledMembers, pooledView, releaseMembers, releaseSplitView } from './passViews.js';
import { drawShuffle } from './shuffles.js';
import { cascadeBlockSizes, validateSeed, type CascadeParams } from './variants.js';
import { INT32_POOL, pooledKeyBits, pooledKeyCopy, releaseKeyBits, SHARED_SCRATCH, TREE_POOL } from './workspace.js';

export interface CascadeResult {
  /**
   * Bob's key after correction (equal to Alice's unless Cascade left residual errors), over pooled words: the
   * caller owns it, and once done hands it back with releaseKeyBits (which zeroes it) or wipes it itself.
   */
  corrected: BitArray;
  /** Parities disclosed by Alice: what privacy amplification must subtract. */
  leakedBits: number;
  /** Calls to the oracle. */
  roundTrips: number;
  /** Questions asked in total (equals leakedBits). */
  parityQuestions: number;
  /** Passes run. */
  passes: number;
  /** Bits Bob flipped (the errors found: correctedBits / n is the measured QBER). */
  correctedBits: number;
  /** Per pass: the block size, and the round trips, questions and flips spent while that pass ran. */
  passStats: PassStats[];
}

export interface PassStats {
  blockSize: number;
  roundTrips: number;
  parityQuestions: number;
  correctedBits: number;
}

/** Everything one reconciliation needs; `reconcile` is its only user. */
class BobReconciler {
  private readonly n: number;
  private readonly sizes: number[];
  private readonly numBlocksOf: number[];
  private readonly aliceTop: (Uint8Array | undefined)[];
  private aliceWholeParity = 0;
  /** The passes started so far: built[p] is pass p. */
  private readonly built: BobPass[] = [];
  /** The searches of the current BINARY level, and those of the next (swapped level by level). */
  private searches = new SearchList();
  private waiting = new SearchList();
  /** Bits flipped so far (where the two keys differed: secret, in pooled words like the key). */
  private readonly flippedEver: BitArray;
  /** The original positions of the errors found in one BINARY level (grown as needed; see runSearches). */
  private found = new Int32Array(0);
  private readonly scratch = SHARED_SCRATCH;
  /** Pooled arrays this reconciliation holds (see ArrayPool); handed back by release(). */
  private readonly leasedInt32: Int32Array[] = [];
  private readonly reuse: boolean;
  readonly corrected: BitArray;
  readonly stats = { leakedBits: 0, roundTrips: 0, parityQuestions: 0, correctedBits: 0 };
  readonly passStats: PassStats[] = [];

  constructor(
    bobKey: BitArray,
    private readonly params: CascadeParams,
    private readonly seed: Uint8Array,
    private readonly oracle: ParityOracle,
  ) {
    this.n = bobKey.length;
    this.sizes = cascadeBlockSizes(params, this.n);
    this.numBlocksOf = this.sizes.map((k) => Math.ceil(this.n / k));
    this.aliceTop = new Array<Uint8Array | undefined>(params.passes).fill(undefined);
    this.corrected = pooledKeyCopy(bobKey);
    this.flippedEver = pooledKeyBits(this.n);
    this.reuse = params.reuseKnownParities ?? true;
  }

  /**
   * Hands the pooled arrays back, the shuffled copies of Bob's key and the flipped bits zeroed; the reconciler must
   * not be used afterwards. The corrected key goes too when the reconciliation failed (`withCorrected`), else to the
   * caller.
   */
  release(withCorrected: boolean): void {
    releaseKeyBits(this.flippedEver);
    if (withCorrected) releaseKeyBits(this.corrected);
    for (const a of this.leasedInt32.splice(0)) INT32_POOL.give(a);
    for (const ps of this.built) {
      if (ps.node.length > 0) {
        ps.clearTrees(); // TREE_POOL holds zeroed trees only
        TREE_POOL.give(ps.node);
      }
      // The member set goes back with its view once materialized, else on its own.
      if (ps.split) releaseSplitView(ps.split);
      else if (ps.firstBlock) releaseMembers(ps.firstBlock);
      ps.split = undefined;
      ps.firstBlock = undefined;
      releaseKeyBits(ps.key);
      ps.key = undefined;
      ps.node = new Uint8Array(0);
      ps.perm = undefined;
      ps.inv = undefined;
    }
  }

  async run(): Promise<void> {
    if (this.n === 0) return;
    const passCount = this.params.passes;
    const prefetch = this.params.prefetchTopLevel ?? true;
    if (prefetch) await this.fetchTop(Array.from({ length: passCount }, (_, p) => p));
    for (let p = 0; p < passCount; p++) {
      if (!prefetch) await this.fetchTop([p]);
      const before = { ...this.stats };
      this.startPass(p);
      await this.runSearches();
      this.passStats.push({
        blockSize: this.sizes[p]!,
        roundTrips: this.stats.roundTrips - before.roundTrips,
        parityQuestions: this.stats.parityQuestions - before.parityQuestions,
        correctedBits: this.stats.correctedBits - before.correctedBits,
      });
    }
  }

  /** One round trip; validates the answers and counts the leak. */
  private async ask(questions: ParityQuestion[]): Promise<Uint8Array> {
    const answers = await this.oracle.askParities(questions);
    this.stats.roundTrips++;
    this.stats.parityQuestions += questions.length;
    this.stats.leakedBits += questions.length;
    if (!(answers instanceof Uint8Array) || answers.length !== questions.length) {
      throw new CascadeProtocolError('BAD_ANSWER', `expected ${questions.length} parities, got ${answers instanceof Uint8Array ? answers.length : typeof answers}`);
    }
    for (let i = 0; i < answers.length; i++) if (answers[i]! > 1) throw new CascadeProtocolError('BAD_ANSWER', `parity ${i} is ${answers[i]}, not 0 or 1`);
    return answers;
  }

  /**
   * Alice's top-level parities of the given passes, in one round trip. The last block of every pass
   * after the first is not asked: the parities of a pass's blocks XOR to the parity of the whole key,
   * which pass 0 already disclosed.
   */
  private async fetchTop(passes: number[]): Promise<void> {
    const { n } = this;
    // Sized up front: grown push by push, the 44,000 questions of a 1-Mbit block took several arrays of 128 KiB
    // and more (fresh memory for the garbage collector's large objects, page-faulted every block).
    let total = 0;
    for (const p of passes) total += p === 0 ? this.numBlocksOf[p]! : this.numBlocksOf[p]! - 1;
    const questions = new Array<ParityQuestion>(total);
    const offsets: number[] = [];
    let q = 0;
    for (const p of passes) {
      offsets.push(q);
      const k = this.sizes[p]!;
      const asked = p === 0 ? this.numBlocksOf[p]! : this.numBlocksOf[p]! - 1;
      for (let b = 0; b < asked; b++) questions[q++] = { pass: p, start: b * k, end: Math.min(n, b * k + k) };
    }
    const answers = questions.length > 0 ? await this.ask(questions) : new Uint8Array(0);
    passes.forEach((p, i) => {
      const blocks = this.numBlocksOf[p]!;
      const top = new Uint8Array(blocks);
      const asked = p === 0 ? blocks : blocks - 1;
      let acc = 0;
      for (let b = 0; b < asked; b++) {
        top[b] = answers[offsets[i]! + b]!;
        acc ^= top[b]!;
      }
      if (p === 0) this.aliceWholeParity = acc;
      else top[blocks - 1] = this.aliceWholeParity ^ acc;
      this.aliceTop[p] = top;
    });
  }

  /** Builds pass p from Bob's current key, and a search for each odd top-level block. */
  private startPass(p: number): void {
    const { n } = this;
    const ps = new BobPass(p, n, this.sizes[p]!, this.numBlocksOf[p]!);
    this.built.push(ps);
    const top = this.aliceTop[p]!;
    if (ps.numBlocks <= 2) {
      // Light: block membership and Bob's block parities, without the permutation.
      const total = this.corrected.parityRange(0, n);
      let first = total;
      if (ps.numBlocks === 2) {
        ps.firstBlock = pooledMembers(this.seed, p, n, ps.blockSize);
        first = andParity(this.corrected, ps.firstBlock);
        ps.lightRoots[1] = KNOWN | (top[1]! ^ first ^ total);
      }
      ps.lightRoots[0] = KNOWN | (top[0]! ^ first);
    } else {
      this.materialize(ps);
      if (ps.affine) {
        const own = ps.affine.blockParities(this.corrected, ps.blockSize);
        for (let b = 0; b < ps.numBlocks; b++) ps.setNode(b * ps.span + 1, KNOWN | (top[b]! ^ own[b]!));
      } else {
        const key = ps.key!;
        for (let b = 0; b < ps.numBlocks; b++) {
          const s = b * ps.blockSize;
          ps.setNode(b * ps.span + 1, KNOWN | (top[b]! ^ key.parityRange(s, Math.min(n, s + ps.blockSize))));
        }
      }
    }
    for (let b = 0; b < ps.numBlocks; b++) {
      if (rootEntry(ps, b) & 1) this.pushRoot(this.searches, ps, b);
    }
  }

  /** Adds a search from the root of top-level block b of pass ps (materializing a light pass). */
  private pushRoot(into: SearchList, ps: BobPass, b: number): void {
    if (ps.light) this.materialize(ps);
    const s = b * ps.blockSize;
    into.push(ps.index, b * ps.span, 1, s, Math.min(this.n, s + ps.blockSize));
  }

  /**
   * Trees for pass ps, and the way to its shuffled order: the member set's rank table for a two-block
   * pass, else the permutation, its inverse and a shuffled copy of Bob's current key.
   */
  private materialize(ps: BobPass): void {
    const { n } = this;
    const wasLight = ps.light;
    ps.node = TREE_POOL.take(ps.numBlocks * ps.span, false); // zeroed already (see TREE_POOL)
    ps.dirtyPages = new Uint8Array((ps.node.length >>> TREE_PAGE_SHIFT) + 1);
    if (wasLight) for (let b = 0; b < ps.numBlocks; b++) ps.setNode(b * ps.span + 1, ps.lightRoots[b]!);
    if (ps.firstBlock) {
      ps.split = pooledView(ps.firstBlock, ps.blockSize);
      return;
    }
    if (isAffinePass(ps.index, n, ps.blockSize)) {
      ps.affine = affineView(this.seed, ps.index, n);
      return;
    }
    const perm = INT32_POOL.take(n, false);
    const inv = INT32_POOL.take(n, false);
    this.leasedInt32.push(perm, inv);
    const shuffle = drawShuffle(this.corrected, this.seed, ps.index, n, this.scratch, perm, inv);
    ps.perm = shuffle.perm;
    ps.inv = shuffle.inv;
    ps.key = shuffle.key;
  }

  /**
   * BINARY in lockstep over all searches, with the cascade effect: each iteration descends every
   * search through already-known sub-block parities for free, asks all the unknown left halves in one
   * round trip, then flips the errors found and re-opens every known block (in every pass built so
   * far) that the flips made odd. Ends when no odd known block remains.
   */
  private async runSearches(): Promise<void> {
    const reuse = this.reuse;
    const built = this.built;
    while (this.searches.count > 0) {
      const searches = this.searches;
      const waiting = this.waiting;
      waiting.count = 0;
      const questions: ParityQuestion[] = [];
      // Each search finds at most one error per level.
      if (this.found.length < searches.count) this.found = new Int32Array(Math.max(searches.count, 2 * this.found.length));
      const found = this.found;
      let foundCount = 0;

      // 1. Free descent; collect the questions of this level.
      for (let i = 0; i < searches.count; i++) {
        const ps = built[searches.pass[i]!]!;
        const base = searches.base[i]!;
        const node = ps.node;
        let h = searches.h[i]!;
        let s = searches.s[i]!;
        let e = searches.e[i]!;
        for (;;) {
          if ((node[base + h]! & 1) === 0) break; // even now (a flip elsewhere fixed it): drop
          if (e - s === 1) {
            found[foundCount++] = ps.originalAt(s);
            break;
          }
          const mid = s + ((e - s + 1) >>> 1);
          const left = node[base + 2 * h]!;
          if (left === UNKNOWN || (!reuse && left >= KNOWN)) {
            ps.setNode(base + 2 * h, PENDING); // step 2 writes both children: the same page (base + 2h is even)
            questions.push({ pass: ps.index, start: s, end: mid });
            waiting.push(ps.index, base, h, s, e);
            break;
          }
          if (left === PENDING) break; // another search already waits on this very node
          if (left & 1) {
            h = 2 * h;
            e = mid;
          } else {
            h = 2 * h + 1;
            s = mid;
          }
        }
      }

      // 2. One round trip for the whole level; record both halves' error parities, step into the odd one.
      if (questions.length > 0) {
        const answers = await this.ask(questions);
        for (let i = 0; i < waiting.count; i++) {
          const ps = built[waiting.pass[i]!]!;
          const base = waiting.base[i]!;
          const h = waiting.h[i]!;
          const s = waiting.s[i]!;
          const e = waiting.e[i]!;
          const mid = s + ((e - s + 1) >>> 1);
          const leftErr = answers[i]! ^ ps.parity(this.corrected, s, mid);
          const parentErr = ps.node[base + h]! & 1;
          ps.node[base + 2 * h] = KNOWN | leftErr;
          ps.node[base + 2 * h + 1] = KNOWN | (parentErr ^ leftErr);
          if (leftErr) {
            waiting.h[i] = 2 * h;
            waiting.e[i] = mid;
          } else {
            waiting.h[i] = 2 * h + 1;
            waiting.s[i] = mid;
          }
        }
      }

      // 3. Flip the errors found; keep every known block's error parity current in every pass. In
      // increasing index order, pass by pass: the lookups of positions then walk each array forward.
      // The distinct errors are compacted in place to the front of `found` (flips[i] is written at or before
      // the i-th sorted entry, which has been read by then).
      const flips = found.subarray(0, foundCount).sort();
      let flipCount = 0;
      let previous = -1;
      for (let i = 0; i < foundCount; i++) {
        const x = flips[i]!;
        if (x === previous) continue; // two searches (in different passes) found the same error
        previous = x;
        if (this.flippedEver.get(x)) throw new CascadeProtocolError('INCONSISTENT_ANSWERS', `bit ${x} would be corrected twice`);
        this.flippedEver.set(x, 1);
        this.corrected.flip(x);
        flips[flipCount++] = x;
      }
      for (const ps of this.built) for (let i = 0; i < flipCount; i++) togglePath(ps, flips[i]!);
      this.stats.correctedBits += flipCount;

      // 4. Cascade effect: every known block on a flipped bit's path that is now odd gets searched (once: a
      // block queued here is marked QUEUED in its tree until the level's searches are all collected).
      const before = waiting.count;
      for (const ps of built) for (let i = 0; i < flipCount; i++) this.collectOdd(ps, flips[i]!, waiting);
      for (let i = before; i < waiting.count; i++) built[waiting.pass[i]!]!.node[waiting.base[i]! + waiting.h[i]!] &= ~QUEUED;
      this.searches = waiting;
      this.waiting = searches;
    }
  }

  /**
   * Adds a search for every known block containing original bit x whose error parity is odd
   * (without reuse: only the top-level block, if odd).
   */
  private collectOdd(ps: BobPass, x: number, into: SearchList): void {
    // (No closure for "add if not queued": this runs for every flip in every pass, some 250,000 times a block.)
    if (ps.light) {
      const b = blockOfLight(ps, x);
      if (ps.lightRoots[b]! & 1) {
        this.pushRoot(into, ps, b); // materializes the pass: the root is in ps.node from now on
        ps.node[b * ps.span + 1] |= QUEUED;
      }
      return;
    }
    const pos = ps.positionOf(x);
    const b = Math.floor(pos / ps.blockSize);
    const base = b * ps.span;
    const node = ps.node;
    let s = b * ps.blockSize;
    let e = Math.min(this.n, s + ps.blockSize);
    let h = 1;
    for (;;) {
      const v = node[base + h]!;
      if (v < KNOWN) return;
      if ((v & (QUEUED | 1)) === 1) {
        node[base + h] = v | QUEUED;
        into.push(ps.index, base, h, s, e);
      }
      if (e - s === 1 || !this.reuse) return;
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
}

/**
 * Bob's side of Cascade: corrects a copy of `bobKey` towards Alice's key by asking `oracle` for
 * parities. `params` and `shuffleSeed` must be the ones Alice's responder was built with.
 */
export async function reconcile(bobKey: BitArray, params: CascadeParams, shuffleSeed: Uint8Array, oracle: ParityOracle): Promise<CascadeResult> {
  validateSeed(shuffleSeed);
  const r = new BobReconciler(bobKey, params, shuffleSeed, oracle);
  let handedOver = false;
  try {
    await r.run();
    handedOver = true;
    return { corrected: r.corrected, ...r.stats, passes: params.passes, passStats: r.passStats };
  } finally {
    r.release(!handedOver); // a failed reconciliation's corrected key is zeroed here: no caller ever sees it
  }
}
