/** Alice's side of Cascade: answers Bob's parity questions about her key, within a disclosure budget. */
import { BitArray } from '../common/bits.js';
import { CascadeProtocolError, type ParityOracle, type ParityQuestion } from './oracle.js';
import { AffineView, affineView, isAffinePass, isTwoBlockPass, pooledSplitView, releaseSplitView, SplitView } from './passViews.js';
import { shuffleKey } from './shuffles.js';
import { cascadeBlockSizes, validateParams, validateSeed, type CascadeParams } from './variants.js';
import { pooledKeyCopy, releaseKeyBits, SHARED_SCRATCH } from './workspace.js';

export interface CascadeResponderOptions {
  /**
   * Most parities this responder will ever disclose (default n: past that nothing secret is left).
   * A batch that would exceed it is refused whole.
   */
  maxDisclosedBits?: number;
}

/**
 * answer()'s packed copy of the questions, kept for the next call: the first batch of a 1-Mbit block is 44,000
 * questions, a 0.5 MB array that would be fresh memory every block. Safe to share: answer() is synchronous and the
 * positions are public.
 */
let questionScratch = new Int32Array(0);
/** Larger batches get an array of their own (4 MB kept at most). */
const MAX_KEPT_TRIPLES = 1 << 20;

/** Alice's side: answers Bob's parity questions about her key under the shared shuffles. */
export class CascadeResponder {
  readonly n: number;
  readonly passes: number;
  /** Parities disclosed so far (Alice's own count of the leak; privacy amplification uses it). */
  disclosedBits = 0;
  private readonly maxDisclosedBits: number;
  /** Alice's key in the shuffled order of each pass of three or more blocks (one block: the key itself), once asked (pooled words). */
  private readonly passKeys: (BitArray | undefined)[];
  /** The member sets of the two-block passes, once asked. */
  private readonly splitViews: (SplitView | undefined)[];
  /** The first pass's order, once asked (when it is affine). */
  private affine: AffineView | undefined;
  private readonly sizes: number[];
  private aliceKey: BitArray;
  private readonly wholeParity: number;
  private readonly seed: Uint8Array;
  private readonly scratch = SHARED_SCRATCH;
  private disposed = false;

  constructor(aliceKey: BitArray, params: CascadeParams, shuffleSeed: Uint8Array, options: CascadeResponderOptions = {}) {
    validateParams(params);
    validateSeed(shuffleSeed);
    this.aliceKey = pooledKeyCopy(aliceKey);
    this.wholeParity = this.aliceKey.popcount() & 1;
    this.seed = shuffleSeed.slice();
    this.n = aliceKey.length;
    this.passes = params.passes;
    this.sizes = cascadeBlockSizes(params, this.n);
    this.maxDisclosedBits = options.maxDisclosedBits ?? this.n;
    this.passKeys = new Array<BitArray | undefined>(this.passes).fill(undefined);
    this.splitViews = new Array<SplitView | undefined>(this.passes).fill(undefined);
  }

  /**
   * Zeroes this end's copies of the key (the key and its shuffled orders) once the block is over, and hands their
   * memory back for the next block; the responder answers nothing afterwards.
   */
  dispose(): void {
    if (this.disposed) return; // the key's words may already serve another block
    this.disposed = true;
    releaseKeyBits(this.aliceKey, ...this.passKeys);
    this.aliceKey = new BitArray(0); // its words may serve another block now
    this.passKeys.fill(undefined);
    for (const view of this.splitViews) if (view) releaseSplitView(view);
    this.splitViews.fill(undefined);
  }

  /** Validates every question, then answers all of them (one bit each) or none. */
  answer(questions: readonly ParityQuestion[]): Uint8Array {
    if (!Array.isArray(questions)) throw new CascadeProtocolError('BAD_QUESTION', 'questions must be an array');
    const count = questions.length;
    this.checkBudget(count);
    // Copy each field once as checked (a getter could answer differently on a second read).
    if (questionScratch.length < 3 * count && 3 * count <= MAX_KEPT_TRIPLES) questionScratch = new Int32Array(3 * count);
    const triples = 3 * count <= questionScratch.length ? questionScratch.subarray(0, 3 * count) : new Int32Array(3 * count);
    for (let i = 0; i < count; i++) {
      const q = questions[i] as unknown;
      if (typeof q !== 'object' || q === null) throw new CascadeProtocolError('BAD_QUESTION', `question ${i} is not an object`);
      const { pass, start, end } = q as Record<string, unknown>;
      if (!Number.isInteger(pass) || !Number.isInteger(start) || !Number.isInteger(end)) {
        throw new CascadeProtocolError('BAD_QUESTION', `question ${i}: pass, start and end must be integers`);
      }
      this.checkQuestion(i, pass as number, start as number, end as number);
      triples[3 * i] = pass as number;
      triples[3 * i + 1] = start as number;
      triples[3 * i + 2] = end as number;
    }
    return this.answerChecked(triples);
  }

  /** answer() for questions packed as (pass, start, end) triples, as the peer channel decodes them. */
  answerPacked(triples: Int32Array): Uint8Array {
    if (triples.length % 3 !== 0) throw new CascadeProtocolError('BAD_QUESTION', 'questions must be (pass, start, end) triples');
    const count = triples.length / 3;
    this.checkBudget(count);
    for (let i = 0; i < count; i++) this.checkQuestion(i, triples[3 * i]!, triples[3 * i + 1]!, triples[3 * i + 2]!);
    return this.answerChecked(triples);
  }

  private checkBudget(count: number): void {
    if (this.disposed) throw new CascadeProtocolError('BAD_QUESTION', 'the block is over: this responder was disposed');
    if (count > this.maxDisclosedBits - this.disclosedBits) {
      throw new CascadeProtocolError('TOO_MANY_QUESTIONS', `${count} more parities would exceed the budget of ${this.maxDisclosedBits} (already disclosed ${this.disclosedBits})`);
    }
  }

  private checkQuestion(i: number, pass: number, start: number, end: number): void {
    if (pass < 0 || pass >= this.passes) throw new CascadeProtocolError('BAD_QUESTION', `question ${i}: pass ${pass} not in [0, ${this.passes})`);
    if (start < 0 || start >= end || end > this.n) {
      throw new CascadeProtocolError('BAD_QUESTION', `question ${i}: range [${start}, ${end}) not within [0, ${this.n}) or empty`);
    }
  }

  /** Answers questions already checked (all of them, so a bad one discloses nothing). */
  private answerChecked(triples: Int32Array): Uint8Array {
    const count = triples.length / 3;
    const out = new Uint8Array(count);
    for (let i = 0; i < count; i++) out[i] = this.parity(triples[3 * i]!, triples[3 * i + 1]!, triples[3 * i + 2]!);
    this.disclosedBits += count;
    return out;
  }

  /** Parity of Alice's bits at shuffled positions [start, end) of the pass. */
  private parity(pass: number, start: number, end: number): number {
    if (start === 0 && end === this.n) return this.wholeParity;
    const k = this.sizes[pass]!;
    if (isTwoBlockPass(this.n, k)) {
      let view = this.splitViews[pass];
      if (!view) {
        view = pooledSplitView(this.seed, pass, this.n, k);
        this.splitViews[pass] = view;
      }
      return view.parity(this.aliceKey, start, end);
    }
    if (isAffinePass(pass, this.n, k)) {
      this.affine ??= affineView(this.seed, pass, this.n);
      return this.affine.parity(this.aliceKey, start, end);
    }
    let key = this.passKeys[pass];
    if (!key) {
      key = shuffleKey(this.aliceKey, this.seed, pass, this.scratch);
      this.passKeys[pass] = key;
    }
    return key.parityRange(start, end);
  }
}

/** An in-process channel to a responder, for tests and single-process simulation. */
export class InMemoryOracle implements ParityOracle {
  roundTrips = 0;
  questionsAsked = 0;
  constructor(readonly responder: CascadeResponder) {}

  async askParities(questions: ParityQuestion[]): Promise<Uint8Array> {
    this.roundTrips++;
    this.questionsAsked += questions.length;
    // Copy what crosses the "wire" so neither side can alias the other's objects.
    return this.responder.answer(questions.map((q) => ({ pass: q.pass, start: q.start, end: q.end })));
  }
}
