import { describe, it, expect } from 'vitest';
import { seededRng } from '../../../../src/sim/bb84/common/rng.js';
import { BitArray } from '../../../../src/sim/bb84/common/bits.js';
import { RoundProtocolError } from '../../../../src/sim/Simulator.js';
import {
  CascadeProtocolError,
  CascadeResponder,
  DEFAULT_CASCADE,
  HIGH_EFFICIENCY_CASCADE,
  InMemoryOracle,
  OPTIMIZED_CASCADE,
  ORIGINAL_CASCADE,
  cascadeBlockSizes,
  cascadePermutation,
  twoBlockMembers,
  efficiency,
  reconcile,
  type CascadeParams,
  type CascadeVariant,
  type ParityOracle,
  type ParityQuestion,
} from '../../../../src/sim/bb84/reconciliation/cascade.js';
import { SplitView } from '../../../../src/sim/bb84/reconciliation/passViews.js';
import { keyPair, seedBytes, testRng } from './testData.js';

async function run(variant: CascadeVariant, n: number, qber: number, seed: number, extra: Partial<CascadeParams> = {}) {
  const { alice, bob, errors } = keyPair(n, qber, seed);
  const params: CascadeParams = { ...variant, ...extra, estimatedQber: qber };
  const shuffleSeed = seedBytes(seed);
  const responder = new CascadeResponder(alice, params, shuffleSeed);
  const oracle = new InMemoryOracle(responder);
  const result = await reconcile(bob, params, shuffleSeed, oracle);
  return { alice, bob, errors, params, responder, oracle, result, residual: result.corrected.hammingDistance(alice) };
}

function h(e: number): number {
  return -e * Math.log2(e) - (1 - e) * Math.log2(1 - e);
}

// ---- tests ----

describe('cascade shuffles', () => {
  it('when both ends derive a pass permutation from the same seed, then they are identical valid permutations', () => {
    for (const n of [1, 2, 1000, 70_001]) {
      // 70,001 bits takes the bucketed path, 1,000 plain Fisher-Yates.
      const a = cascadePermutation(seedBytes(1), 3, n);
      const b = cascadePermutation(seedBytes(1), 3, n);
      expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
      const seen = new Uint8Array(n);
      for (const x of a) seen[x]!++;
      expect(seen.every((c) => c === 1)).toBe(true);
    }
  });

  it('when the seed or the pass differs, then the permutation differs', () => {
    for (const n of [1000, 70_001]) {
      const base = cascadePermutation(seedBytes(1), 0, n);
      const otherSeed = cascadePermutation(seedBytes(2), 0, n);
      const otherPass = cascadePermutation(seedBytes(1), 1, n);
      const same = (x: Int32Array, y: Int32Array) => x.reduce((acc, v, i) => acc + (v === y[i] ? 1 : 0), 0);
      // A random permutation has about one fixed point in common with another.
      expect(same(base, otherSeed)).toBeLessThan(10);
      expect(same(base, otherPass)).toBeLessThan(10);
    }
  });

  it('when many seeds shuffle 4 items, then all 24 orders come out about equally often', () => {
    const counts = new Map<string, number>();
    const trials = 4800;
    for (let i = 0; i < trials; i++) {
      const key = cascadePermutation(seedBytes(10_000 + i), 0, 4).join('');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(counts.size).toBe(24);
    for (const c of counts.values()) expect(Math.abs(c - trials / 24)).toBeLessThan(60); // ~4.3 sigma
  });

  it('when many seeds shuffle 5 items, then all 120 orders come out about equally often (bounds that reject)', () => {
    const counts = new Map<string, number>();
    const trials = 12_000;
    for (let i = 0; i < trials; i++) {
      const key = cascadePermutation(seedBytes(30_000 + i), 1, 5).join('');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(counts.size).toBe(120);
    for (const c of counts.values()) expect(Math.abs(c - trials / 120)).toBeLessThan(45); // ~4.5 sigma
  });

  it('when a long key is shuffled, then every index lands in each eighth of the positions about equally often', () => {
    const n = 70_001; // bucketed path
    const eighths = new Array<number>(8).fill(0);
    for (let s = 0; s < 4; s++) {
      const perm = cascadePermutation(seedBytes(40 + s), 0, n);
      for (let j = 0; j < n; j++) if (perm[j]! % 7 === 0) eighths[Math.floor((j * 8) / n)]!++;
    }
    const expected = (4 * n) / 7 / 8;
    for (const c of eighths) expect(Math.abs(c - expected)).toBeLessThan(5 * Math.sqrt(expected));
  });

  it('when a two-block pass is shuffled, then block 0 is exactly the drawn member set and both ends agree', () => {
    for (const [n, k] of [[2, 1], [5, 3], [1000, 500], [1001, 501], [70_001, 35_001], [70_001, 60_000]] as const) {
      const perm = cascadePermutation(seedBytes(3), 5, n, k);
      expect(Buffer.from(perm.buffer).equals(Buffer.from(cascadePermutation(seedBytes(3), 5, n, k).buffer))).toBe(true);
      const seen = new Uint8Array(n);
      for (const x of perm) seen[x]!++;
      expect(seen.every((c) => c === 1), `n=${n}`).toBe(true);
      const members = twoBlockMembers(seedBytes(3), 5, n, k);
      expect(members.popcount()).toBe(k);
      let misplaced = 0;
      for (let j = 0; j < n; j++) if (members.get(perm[j]!) !== (j < k ? 1 : 0)) misplaced++;
      expect(misplaced, `n=${n}`).toBe(0);
    }
    expect(() => twoBlockMembers(seedBytes(3), 5, 100, 40)).toThrow(/BAD_PARAMS/); // three blocks
    expect(() => twoBlockMembers(seedBytes(3), 5, 100, 100)).toThrow(/BAD_PARAMS/); // one block
  });

  it('when a two-block pass reuses pooled arrays holding an earlier pass, then its member set and views equal fresh ones', () => {
    const n = 70_001, k = 35_001;
    const words = (n + 31) >>> 5;
    const fresh = twoBlockMembers(seedBytes(3), 5, n, k);
    const dirtyWords = new Uint32Array(words).fill(0xdeadbeef);
    const reused = twoBlockMembers(seedBytes(3), 5, n, k, dirtyWords);
    expect(reused.words).toBe(dirtyWords);
    expect(reused.equals(fresh)).toBe(true);
    const key = new BitArray(n);
    const rnd = testRng(8);
    for (let i = 0; i < key.words.length; i++) key.words[i] = rnd();
    key.clearTail();
    const freshView = new SplitView(fresh, k);
    const reusedView = new SplitView(reused, k, new Int32Array(words + 1).fill(-7));
    for (const [a, b] of [[0, k], [k, n], [3, 30_000], [40_000, 69_999], [34_990, 35_020]] as const) {
      expect(reusedView.parity(key, a, b), `[${a}, ${b})`).toBe(freshView.parity(key, a, b));
    }
    for (const j of [0, 1, k - 1, k, n - 1]) expect(reusedView.originalAt(j)).toBe(freshView.originalAt(j));
    expect(() => new SplitView(fresh, k, new Int32Array(words))).toThrow(RangeError);
  });

  it('when blocks are reconciled one after another (pooled member sets handed back and reused), then each result equals that of the same block reconciled again', async () => {
    const runBlock = async (seed: number) => {
      const { alice, bob } = keyPair(200_003, 0.02, seed);
      const params: CascadeParams = { ...OPTIMIZED_CASCADE, estimatedQber: 0.02 };
      const responder = new CascadeResponder(alice, params, seedBytes(seed));
      const r = await reconcile(bob, params, seedBytes(seed), new InMemoryOracle(responder));
      responder.dispose();
      return { leaked: r.leakedBits, corrected: r.correctedBits, equal: r.corrected.equals(alice) };
    };
    const first = [await runBlock(31), await runBlock(32), await runBlock(33)];
    const again = [await runBlock(33), await runBlock(31), await runBlock(32)];
    expect([again[1], again[2], again[0]]).toEqual(first);
    for (const r of first) expect(r.equal).toBe(true);
  });

  it('when many seeds split 4 items in a two-block pass, then all 6 splits come out about equally often, each block in index order', () => {
    const counts = new Map<string, number>();
    const trials = 3000;
    for (let i = 0; i < trials; i++) {
      const perm = cascadePermutation(seedBytes(20_000 + i), 2, 4, 2);
      expect(perm[0]!).toBeLessThan(perm[1]!);
      expect(perm[2]!).toBeLessThan(perm[3]!);
      const key = perm.join('');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(counts.size).toBe(6);
    for (const c of counts.values()) expect(Math.abs(c - trials / 6)).toBeLessThan(90); // ~4.4 sigma
  });

  it('when a long two-block pass is drawn, then every part of the key lands in block 0 about half the time', () => {
    const n = 100_000;
    const members = twoBlockMembers(seedBytes(6), 9, n, n / 2);
    const quarters = [0, 0, 0, 0];
    for (let i = 0; i < n; i++) if (members.get(i)) quarters[Math.floor((i * 4) / n)]!++;
    for (const q of quarters) expect(Math.abs(q - n / 8)).toBeLessThan(600); // ~5 sigma
  });

  it('when the first pass has many blocks, then its order is an affine map that spreads a burst of adjacent bits over different blocks', () => {
    const n = 100_003, k = 36;
    for (let t = 0; t < 20; t++) {
      const perm = cascadePermutation(seedBytes(300 + t), 0, n, k);
      const step = (perm[1]! - perm[0]! + n) % n;
      let affine = true;
      for (let j = 1; j < n && affine; j++) affine = (perm[j]! - perm[j - 1]! + n) % n === step;
      expect(affine).toBe(true);
      const pos = new Int32Array(n);
      perm.forEach((x, j) => (pos[x] = j));
      const burst = new Set(Array.from({ length: 12 }, (_, i) => Math.floor(pos[5000 + i]! / k)));
      expect(burst.size).toBeGreaterThanOrEqual(11); // 12 neighbours, (almost) never two in one block
    }
    // Both ends derive the same map; a different seed gives another one.
    expect(cascadePermutation(seedBytes(1), 0, n, k)).toEqual(cascadePermutation(seedBytes(1), 0, n, k));
    expect(cascadePermutation(seedBytes(2), 0, n, k)).not.toEqual(cascadePermutation(seedBytes(1), 0, n, k));
  });

  it('when a long key is shuffled, then the first half is spread evenly over the key', () => {
    const n = 100_000;
    const perm = cascadePermutation(seedBytes(5), 7, n);
    const quarters = [0, 0, 0, 0];
    for (let j = 0; j < n / 2; j++) quarters[Math.floor((perm[j]! * 4) / n)]!++;
    for (const q of quarters) expect(Math.abs(q - n / 8)).toBeLessThan(600); // ~5 sigma
  });
});

describe('cascade reconciliation', () => {
  const qbers = [0.005, 0.01, 0.02, 0.05, 0.08];

  it('when 10,000-bit blocks are reconciled at 0.5-8 % QBER with the default variant, then every block comes out equal to Alice\'s key and the leak equals the parities answered', async () => {
    const residualBlocks: Record<string, number> = {};
    for (const q of qbers) {
      let bad = 0;
      for (let t = 0; t < 40; t++) {
        const { result, residual, responder, oracle } = await run(DEFAULT_CASCADE, 10_000, q, 1000 * t + Math.round(q * 1000));
        if (residual > 0) bad++;
        expect(result.leakedBits).toBe(result.parityQuestions);
        expect(result.leakedBits).toBe(responder.disclosedBits);
        expect(result.leakedBits).toBe(oracle.questionsAsked);
        expect(result.roundTrips).toBe(oracle.roundTrips);
      }
      residualBlocks[q] = bad;
    }
    // Measured over 4,000 such blocks per variant while tuning: 0 residual errors at 0.5-8 %.
    expect(residualBlocks).toEqual({ 0.005: 0, 0.01: 0, 0.02: 0, 0.05: 0, 0.08: 0 });
  });

  it('when 10,000-bit blocks are reconciled with the original variant, then residual errors stay rare (0 at 1-8 %)', async () => {
    let bad = 0;
    for (const q of qbers) {
      for (let t = 0; t < 20; t++) {
        const { residual, errors, result } = await run(ORIGINAL_CASCADE, 10_000, q, 77 + 1000 * t + Math.round(q * 1000));
        if (residual > 0) bad++;
        // Whatever Cascade corrected was a real error: residual = errors - corrected.
        expect(residual).toBe(errors - result.correctedBits);
      }
    }
    expect(bad).toBeLessThanOrEqual(1); // measured: about 1 in 1,000 at 0.5 %, none above
  });

  it('when 100,000-bit blocks are reconciled at 2 %, then keys agree, efficiency is 1.05-1.25 and batching keeps round trips under 100', async () => {
    const f: Record<string, number[]> = { original: [], optimized: [] };
    const trips: number[] = [];
    for (const [name, variant] of [['original', ORIGINAL_CASCADE], ['optimized', OPTIMIZED_CASCADE]] as const) {
      for (let t = 0; t < 3; t++) {
        const { residual, result } = await run(variant, 100_000, 0.02, 500 + t);
        expect(residual).toBe(0);
        f[name]!.push(efficiency(result.leakedBits, 100_000, 0.02));
        trips.push(result.roundTrips);
        // Without batching there would be one round trip per parity (about 16,000 here).
        expect(result.roundTrips).toBeLessThan(result.parityQuestions / 100);
        // Pass 1 has no earlier pass to cascade into: exactly one round trip per BINARY level.
        const k1 = result.passStats[0]!.blockSize;
        expect(result.passStats[0]!.roundTrips).toBe(Math.ceil(Math.log2(k1)));
      }
    }
    for (const x of [...f.original!, ...f.optimized!]) {
      expect(x).toBeGreaterThan(1.05);
      expect(x).toBeLessThan(1.25);
    }
    for (const x of f.optimized!) expect(x).toBeLessThan(1.12); // measured 1.08 at n = 10^5..10^6
    expect(trips.reduce((a, b) => a + b, 0) / trips.length).toBeLessThan(100);
    for (const r of trips) expect(r).toBeLessThan(150);
  });

  it('when 100,000-bit blocks are reconciled at 0.5, 1, 5 and 8 %, then keys agree and every error found is a real one', async () => {
    for (const q of [0.005, 0.01, 0.05, 0.08]) {
      const { residual, result } = await run(DEFAULT_CASCADE, 100_000, q, 900 + Math.round(q * 1000));
      expect(residual).toBe(0);
      expect(result.correctedBits).toBe(Math.round(q * 100_000));
      // measured f: 1.07 at 0.5-1 %, 1.09 at 5 %, 1.13 at 8 %
      expect(efficiency(result.leakedBits, 100_000, q)).toBeLessThan(q <= 0.05 ? 1.12 : 1.16);
    }
  });

  it('when the high-efficiency variant is used, then it leaks less than the default at the cost of more round trips', async () => {
    // Summed over a few keys: the high-efficiency variant's leak has a long tail (f up to ~1.11 on an unlucky shuffle).
    const sum = { def: { leak: 0, trips: 0 }, hi: { leak: 0, trips: 0 } };
    for (const seed of [31, 32, 33, 34]) {
      const def = await run(DEFAULT_CASCADE, 100_000, 0.02, seed);
      const hi = await run(HIGH_EFFICIENCY_CASCADE, 100_000, 0.02, seed);
      expect(hi.residual).toBe(0);
      sum.def.leak += def.result.leakedBits;
      sum.def.trips += def.result.roundTrips;
      sum.hi.leak += hi.result.leakedBits;
      sum.hi.trips += hi.result.roundTrips;
    }
    expect(sum.hi.leak).toBeLessThan(sum.def.leak);
    expect(sum.hi.trips).toBeGreaterThan(sum.def.trips);
  });

  /** Top-level parities Bob asks for: every block of pass 1, all but the last block of later passes. */
  const topLevelQuestions = (params: CascadeParams, n: number) =>
    cascadeBlockSizes(params, n).reduce((acc, k, i) => acc + Math.ceil(n / k) - (i === 0 ? 0 : 1), 0);

  it('when the QBER is 0 and the keys are identical, then nothing is flipped and only top-level parities leak, in one round trip', async () => {
    for (const variant of [ORIGINAL_CASCADE, OPTIMIZED_CASCADE]) {
      const { result, residual, params } = await run(variant, 10_000, 0, 4);
      expect(residual).toBe(0);
      expect(result.correctedBits).toBe(0);
      expect(result.leakedBits).toBe(topLevelQuestions(params, 10_000));
      expect(result.roundTrips).toBe(1);
    }
    // Original: every block is clamped to n, so the whole-key parity is the only disclosure.
    expect((await run(ORIGINAL_CASCADE, 10_000, 0, 4)).result.leakedBits).toBe(1);
    // Optimized: passes 3-14 still split the key in halves (one parity each), which catches error pairs a q = 0 estimate missed.
    expect((await run(OPTIMIZED_CASCADE, 10_000, 0, 4)).result.leakedBits).toBe(13);
  });

  it('when the keys are identical but a QBER is assumed, then the leak is exactly the top-level parities', async () => {
    const n = 10_007; // prime: every pass has a short last block
    for (const variant of [ORIGINAL_CASCADE, OPTIMIZED_CASCADE]) {
      const params = { ...variant, estimatedQber: 0.03 };
      const { alice } = keyPair(n, 0, 8);
      const r = await reconcile(alice, params, seedBytes(8), new InMemoryOracle(new CascadeResponder(alice, params, seedBytes(8))));
      expect(r.correctedBits).toBe(0);
      expect(r.corrected.equals(alice)).toBe(true);
      expect(r.leakedBits).toBe(topLevelQuestions(params, n));
      expect(r.roundTrips).toBe(1);
    }
  });

  it('when the QBER estimate is tiny, then the first block is capped at the key length and errors are still corrected', async () => {
    const { alice, bob } = keyPair(5000, 0.002, 12); // 10 errors
    const params = { ...DEFAULT_CASCADE, estimatedQber: 1e-6 };
    expect(cascadeBlockSizes(params, 5000)[0]).toBe(5000);
    const r = await reconcile(bob, params, seedBytes(12), new InMemoryOracle(new CascadeResponder(alice, params, seedBytes(12))));
    expect(r.corrected.hammingDistance(alice)).toBeLessThanOrEqual(2); // a 1-block pass only sees odd counts
  });

  it('when top-level parities are not prefetched, then the same parities leak and each later pass costs one more round trip', async () => {
    const a = await run(DEFAULT_CASCADE, 20_000, 0.03, 21);
    const b = await run(DEFAULT_CASCADE, 20_000, 0.03, 21, { prefetchTopLevel: false });
    expect(b.result.corrected.equals(a.result.corrected)).toBe(true);
    expect(b.result.leakedBits).toBe(a.result.leakedBits);
    expect(b.result.roundTrips).toBe(a.result.roundTrips + DEFAULT_CASCADE.passes - 1);
  });

  it('when known sub-block parities are not reused (textbook mode), then it still corrects but discloses more', async () => {
    const reuse = await run(ORIGINAL_CASCADE, 50_000, 0.02, 41);
    const naive = await run(ORIGINAL_CASCADE, 50_000, 0.02, 41, { reuseKnownParities: false });
    expect(reuse.residual).toBe(0);
    expect(naive.residual).toBe(0);
    expect(naive.result.leakedBits).toBeGreaterThan(reuse.result.leakedBits);
    expect(naive.result.leakedBits).toBe(naive.responder.disclosedBits);
  });

  it('when the key is empty or tiny, then reconcile returns without trouble', async () => {
    const empty = new BitArray(0);
    const params = { ...DEFAULT_CASCADE, estimatedQber: 0.02 };
    const r0 = await reconcile(empty, params, seedBytes(1), new InMemoryOracle(new CascadeResponder(empty, params, seedBytes(1))));
    expect(r0.corrected.length).toBe(0);
    expect(r0.leakedBits).toBe(0);
    const one = new BitArray(1);
    const r1 = await reconcile(one, params, seedBytes(1), new InMemoryOracle(new CascadeResponder(one, params, seedBytes(1))));
    expect(r1.corrected.equals(one)).toBe(true);
  });

  it('when bobKey is reconciled, then the caller\'s array is left untouched', async () => {
    const { alice, bob } = keyPair(2000, 0.05, 3);
    const before = bob.clone();
    const params = { ...DEFAULT_CASCADE, estimatedQber: 0.05 };
    await reconcile(bob, params, seedBytes(3), new InMemoryOracle(new CascadeResponder(alice, params, seedBytes(3))));
    expect(bob.equals(before)).toBe(true);
  });

  it('when several reconciliations of different lengths run at once (pooled work arrays), then each asks and corrects exactly as it does alone', async () => {
    // Long enough for the bucketed pass 1 and its pooled permutation arrays; the
    // oracle yields to the event loop so the reconciliations interleave round trip by round trip.
    const cases = [200_000, 200_100, 131_000].map((n, i) => ({ n, seed: seedBytes(900 + i), ...keyPair(n, 0.03, 900 + i) }));
    const params = { ...DEFAULT_CASCADE, estimatedQber: 0.03 };
    const yielding = (alice: BitArray, seed: Uint8Array): ParityOracle => {
      const inner = new InMemoryOracle(new CascadeResponder(alice, params, seed));
      return {
        async askParities(questions: ParityQuestion[]): Promise<Uint8Array> {
          await new Promise((resolve) => setImmediate(resolve));
          return inner.askParities(questions);
        },
      };
    };
    const alone = [];
    for (const c of cases) alone.push(await reconcile(c.bob, params, c.seed, yielding(c.alice, c.seed)));
    const together = await Promise.all(cases.map((c) => reconcile(c.bob, params, c.seed, yielding(c.alice, c.seed))));
    cases.forEach((c, i) => {
      expect(alone[i]!.corrected.equals(c.alice)).toBe(true);
      expect(together[i]!.corrected.equals(c.alice)).toBe(true);
      expect(together[i]!.leakedBits).toBe(alone[i]!.leakedBits);
      expect(together[i]!.roundTrips).toBe(alone[i]!.roundTrips);
    });
  });
});

describe('cascade responder (Alice) against a hostile or broken peer', () => {
  const n = 1000;
  const params: CascadeParams = { ...DEFAULT_CASCADE, estimatedQber: 0.02 };
  const responder = () => new CascadeResponder(keyPair(n, 0, 1).alice, params, seedBytes(1));

  it('when a question is malformed, then the whole batch is refused with BAD_QUESTION and nothing is disclosed', () => {
    const bad: unknown[] = [
      { pass: -1, start: 0, end: 10 },
      { pass: params.passes, start: 0, end: 10 },
      { pass: 0.5, start: 0, end: 10 },
      { pass: 0, start: -1, end: 10 },
      { pass: 0, start: 10, end: 10 },
      { pass: 0, start: 11, end: 10 },
      { pass: 0, start: 0, end: n + 1 },
      { pass: 0, start: 0, end: Number.POSITIVE_INFINITY },
      { pass: 0, start: '0', end: 10 },
      { pass: 0 },
      null,
      42,
    ];
    for (const q of bad) {
      const r = responder();
      const batch = [{ pass: 0, start: 0, end: 10 }, q] as ParityQuestion[];
      expect(() => r.answer(batch)).toThrow(CascadeProtocolError);
      try {
        r.answer(batch);
      } catch (err) {
        expect(err).toBeInstanceOf(RoundProtocolError);
        expect((err as CascadeProtocolError).code).toBe('BAD_QUESTION');
      }
      expect(r.disclosedBits).toBe(0);
    }
    expect(() => responder().answer('nope' as unknown as ParityQuestion[])).toThrow(/BAD_QUESTION/);
  });

  it('when the block is over and the responder disposed, then it answers nothing more', () => {
    const { alice } = keyPair(1000, 0.02, 11);
    const r = new CascadeResponder(alice, { ...DEFAULT_CASCADE, estimatedQber: 0.02 }, seedBytes(11));
    expect(r.answer([{ pass: 0, start: 0, end: 10 }]).length).toBe(1);
    r.dispose();
    expect(() => r.answer([{ pass: 0, start: 0, end: 10 }])).toThrow(/disposed/);
    expect(() => r.answerPacked(Int32Array.of(0, 0, 10))).toThrow(/disposed/);
    expect(alice.popcount()).toBeGreaterThan(0); // the caller's key is its own: only the responder's copies are zeroed
  });

  it('when a peer asks for more parities than the budget, then it is refused with TOO_MANY_QUESTIONS', () => {
    const r = responder();
    const many = Array.from({ length: n + 1 }, (_, i) => ({ pass: 0, start: i % n, end: (i % n) + 1 }));
    expect(() => r.answer(many)).toThrow(/TOO_MANY_QUESTIONS/);
    expect(r.disclosedBits).toBe(0);
    const small = new CascadeResponder(keyPair(n, 0, 1).alice, params, seedBytes(1), { maxDisclosedBits: 5 });
    expect(small.answer(many.slice(0, 5))).toHaveLength(5);
    expect(() => small.answer(many.slice(0, 1))).toThrow(/TOO_MANY_QUESTIONS/);
  });

  it('when a valid question is asked, then the answer is the parity of Alice\'s bits at those shuffled positions', () => {
    // 70,001 bits: two-block passes are answered from block membership without the permutation (bucketed path).
    for (const len of [n, 70_001]) {
      const { alice } = keyPair(len, 0, 1);
      const r = new CascadeResponder(alice, params, seedBytes(1));
      const sizes = cascadeBlockSizes(params, len);
      const parityAt = (pass: number, start: number, end: number) => {
        const perm = cascadePermutation(seedBytes(1), pass, len, sizes[pass]!);
        let acc = 0;
        for (let j = start; j < end; j++) acc ^= alice.get(perm[j]!);
        return acc;
      };
      const k = sizes[2]!;
      expect(Math.ceil(len / k)).toBe(2);
      const questions = [
        { pass: 2, start: 0, end: k },
        { pass: 2, start: k, end: len },
        { pass: 0, start: 0, end: sizes[0]! },
        { pass: 1, start: 100, end: 357 },
        { pass: 3, start: 0, end: len },
        { pass: 2, start: 100, end: 357 }, // a sub-block: the pass is now built in full
        { pass: 2, start: 0, end: k },
      ];
      expect(Array.from(r.answer(questions))).toEqual(questions.map((q) => parityAt(q.pass, q.start, q.end)));
      expect(r.disclosedBits).toBe(questions.length);
    }
  });

  it('when any range of a two-block pass is asked (sub-blocks, ranges across both blocks, word edges), then Alice answers as the permutation says', () => {
    for (const len of [1001, 4096, 70_001]) {
      const { alice } = keyPair(len, 0, 3);
      const sizes = cascadeBlockSizes(params, len);
      const pass = sizes.findIndex((k) => k < len && 2 * k >= len);
      expect(pass).toBeGreaterThan(1);
      const perm = cascadePermutation(seedBytes(4), pass, len, sizes[pass]!);
      const r = new CascadeResponder(alice, params, seedBytes(4));
      const rng = seededRng(len);
      const questions: { pass: number; start: number; end: number }[] = [];
      for (const [start, end] of [[0, 1], [31, 33], [32, 64], [len - 1, len], [sizes[pass]! - 1, sizes[pass]! + 1]]) questions.push({ pass, start: start!, end: end! });
      for (let t = 0; t < 200; t++) {
        const a = Math.floor(rng.nextFloat() * len);
        const b = Math.floor(rng.nextFloat() * len);
        questions.push({ pass, start: Math.min(a, b), end: Math.max(a, b) + 1 });
      }
      const expected = questions.map((q) => {
        let acc = 0;
        for (let j = q.start; j < q.end; j++) acc ^= alice.get(perm[j]!);
        return acc;
      });
      expect(Array.from(r.answer(questions)), `n=${len}`).toEqual(expected);
    }
  });

  it('when the parameters or the seed are malformed, then both ends refuse them with BAD_PARAMS', async () => {
    const { alice } = keyPair(100, 0, 1);
    expect(() => new CascadeResponder(alice, { ...params, estimatedQber: 0.5 }, seedBytes(1))).toThrow(/BAD_PARAMS/);
    expect(() => new CascadeResponder(alice, { ...params, estimatedQber: Number.NaN }, seedBytes(1))).toThrow(/BAD_PARAMS/);
    expect(() => new CascadeResponder(alice, { ...params, passes: 0 }, seedBytes(1))).toThrow(/BAD_PARAMS/);
    expect(() => new CascadeResponder(alice, params, new Uint8Array(16))).toThrow(/BAD_PARAMS/);
    const oracle: ParityOracle = { askParities: async () => new Uint8Array(0) };
    await expect(reconcile(alice, { ...params, passes: 1.5 }, seedBytes(1), oracle)).rejects.toThrow(/BAD_PARAMS/);
    await expect(reconcile(alice, params, new Uint8Array(31), oracle)).rejects.toThrow(/BAD_PARAMS/);
  });

  it('when the peer answers with the wrong count or a value other than 0/1, then Bob stops with BAD_ANSWER', async () => {
    const { bob } = keyPair(n, 0.02, 2);
    const short: ParityOracle = { askParities: async (qs) => new Uint8Array(qs.length - 1) };
    const two: ParityOracle = { askParities: async (qs) => new Uint8Array(qs.length).fill(2) };
    await expect(reconcile(bob, params, seedBytes(2), short)).rejects.toThrow(/BAD_ANSWER/);
    await expect(reconcile(bob, params, seedBytes(2), two)).rejects.toThrow(/BAD_ANSWER/);
  });

  it('when the peer answers at random, then Bob terminates (rejecting contradictions) instead of looping', async () => {
    for (let t = 0; t < 10; t++) {
      const { bob } = keyPair(5000, 0.03, 60 + t);
      const next = testRng(t);
      const liar: ParityOracle = { askParities: async (qs) => Uint8Array.from(qs, () => next() & 1) };
      const p = { ...params, estimatedQber: 0.03 };
      try {
        const r = await reconcile(bob, p, seedBytes(t), liar);
        expect(r.correctedBits).toBeLessThanOrEqual(5000);
      } catch (err) {
        expect(err).toBeInstanceOf(CascadeProtocolError);
        expect((err as CascadeProtocolError).code).toBe('INCONSISTENT_ANSWERS');
      }
    }
  });
});

describe('cascade efficiency', () => {
  it('when the leak equals n h(q), then the efficiency is 1', () => {
    expect(efficiency(10_000 * h(0.02), 10_000, 0.02)).toBeCloseTo(1, 12);
    expect(efficiency(1.1 * 1000 * h(0.05), 1000, 0.05)).toBeCloseTo(1.1, 12);
    expect(efficiency(0, 1000, 0)).toBe(1);
    expect(efficiency(1, 1000, 0)).toBe(Infinity);
  });
});
