/**
 * Cascade's pooled memory: the key-bit arrays (corrected key, flipped bits, shuffled copies, Alice's copy) come from
 * KEY_WORDS_POOL, which must never hand out dirty memory, and the public work arrays from pools that reuse the
 * best-fitting buffer. Pooling must not change a single question, answer or corrected bit: the golden results
 * below were recorded from the implementation before pooling (commit 9519f8d) with these same inputs.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BitArray } from '../../../../src/sim/bb84/common/bits.js';
import {
  CascadeResponder,
  DEFAULT_CASCADE,
  HIGH_EFFICIENCY_CASCADE,
  OPTIMIZED_CASCADE,
  ORIGINAL_CASCADE,
  reconcile,
  releaseKeyBits,
  type CascadeParams,
  type CascadeResult,
  type CascadeVariant,
  type ParityOracle,
} from '../../../../src/sim/bb84/reconciliation/cascade.js';
import { INT32_POOL, KEY_WORDS_POOL, pooledKeyBits, pooledKeyCopy, TREE_POOL } from '../../../../src/sim/bb84/reconciliation/workspace.js';
import { keyPair, seedBytes, testRng } from './testData.js';

const VARIANTS: Record<string, CascadeVariant> = { optimized: OPTIMIZED_CASCADE, original: ORIGINAL_CASCADE, 'high-efficiency': HIGH_EFFICIENCY_CASCADE };

interface Golden {
  variant: string;
  n: number;
  qber: number;
  seed: number;
  extra: Partial<CascadeParams>;
  leakedBits: number;
  roundTrips: number;
  correctedBits: number;
  /** Per pass: block size, round trips, questions, flips. */
  passStats: string;
  /** SHA-256 (first 16 bytes) of the corrected key's words. */
  corrected: string;
  /** SHA-256 (first 16 bytes) of every question asked, in order, round trips separated. */
  questions: string;
}

// Recorded at 9519f8d. Sizes around 2^20 (the pipeline's blocks), short keys (Fisher-Yates orders), lengths not a
// multiple of 32, every variant, textbook mode, no prefetch, and QBER estimates far below the real rate so that
// passes 2-3 of the original and the two-block passes of the optimized variants find errors too.
const GOLDEN: Golden[] = [
{ variant: 'optimized', n: 1050000, qber: 0.02, seed: 1, extra: {}, leakedBits: 160733, roundTrips: 74, correctedBits: 21000, passStats: '37,6,57957,11002 74,67,60196,9998 525000,0,0,0 525000,0,0,0 525000,0,0,0 525000,0,0,0 525000,0,0,0 525000,0,0,0 525000,0,0,0 525000,0,0,0 525000,0,0,0 525000,0,0,0 525000,0,0,0 525000,0,0,0', corrected: '34d25cfbe0a79351f19c9b39727c0e6a', questions: 'b1656e908ce837d61ded23784c3e2862' },
  { variant: 'optimized', n: 1048583, qber: 0.021, seed: 2, extra: {}, leakedBits: 166492, roundTrips: 100, correctedBits: 22020, passStats: '35,6,59810,11574 70,93,61731,10446 524292,0,0,0 524292,0,0,0 524292,0,0,0 524292,0,0,0 524292,0,0,0 524292,0,0,0 524292,0,0,0 524292,0,0,0 524292,0,0,0 524292,0,0,0 524292,0,0,0 524292,0,0,0', corrected: 'b5651a5b95941c7c0eb97adafa0f2188', questions: 'ebe6a20fa904788d8c8b8ee394d92b4d' },
  { variant: 'original', n: 200000, qber: 0.03, seed: 3, extra: {}, leakedBits: 45713, roundTrips: 70, correctedBits: 6000, passStats: '24,5,14902,3200 48,64,15187,2800 96,0,0,0 192,0,0,0', corrected: 'fa6e3f8596391fec65392e0293e7fd25', questions: '9b4081e0168c1adaca657a9c77038ffa' },
  { variant: 'original', n: 50000, qber: 0.05, seed: 4, extra: {reuseKnownParities: false}, leakedBits: 16979, roundTrips: 55, correctedBits: 2500, passStats: '15,4,5162,1310 30,44,5556,1188 60,6,12,2 120,0,0,0', corrected: '313bba22d85e637798f2dbe19751a357', questions: 'b84cdef7bcd7ad73715bccd56e865760' },
  { variant: 'high-efficiency', n: 100003, qber: 0.01, seed: 5, extra: {}, leakedBits: 8351, roundTrips: 344, correctedBits: 1000, passStats: '128,7,2492,356 512,336,4870,644 50002,0,0,0 50002,0,0,0 50002,0,0,0 50002,0,0,0 50002,0,0,0 50002,0,0,0 50002,0,0,0 50002,0,0,0 50002,0,0,0 50002,0,0,0 50002,0,0,0 50002,0,0,0', corrected: '0eb4eb98a502f15ba300e4a18b34fff1', questions: '82e3ff9f2fc1bf89648f024d105b8f17' },
  { variant: 'optimized', n: 10007, qber: 0.08, seed: 6, extra: {}, leakedBits: 4550, roundTrips: 38, correctedBits: 801, passStats: '9,4,1397,433 18,33,1474,368 5004,0,0,0 5004,0,0,0 5004,0,0,0 5004,0,0,0 5004,0,0,0 5004,0,0,0 5004,0,0,0 5004,0,0,0 5004,0,0,0 5004,0,0,0 5004,0,0,0 5004,0,0,0', corrected: '7f19a8aa5bf6b1d5866f1c7543475a2d', questions: '5da00d8970828fd80f0428861c007336' },
  { variant: 'original', n: 30001, qber: 0.02, seed: 7, extra: {prefetchTopLevel: false}, leakedBits: 4884, roundTrips: 62, correctedBits: 600, passStats: '37,6,1609,308 74,52,1756,292 148,0,0,0 296,0,0,0', corrected: '0901ab28d80928e80b82344564440bd9', questions: '7dc5e29b5d2114ebd8f2e73f565d36d9' },
  { variant: 'optimized', n: 300000, qber: 0.05, seed: 8, extra: {estimatedQber: 0.004}, leakedBits: 91419, roundTrips: 2203, correctedBits: 15000, passStats: '183,8,6352,834 366,2161,82521,14158 150000,33,75,8 150000,0,0,0 150000,0,0,0 150000,0,0,0 150000,0,0,0 150000,0,0,0 150000,0,0,0 150000,0,0,0 150000,0,0,0 150000,0,0,0 150000,0,0,0 150000,0,0,0', corrected: 'cf7e0283e74aa5783e0d912f53f06e12', questions: 'faf5534b399401695da34eb1038ce8a1' },
  { variant: 'optimized', n: 70001, qber: 0.06, seed: 9, extra: {estimatedQber: 0.01}, leakedBits: 24540, roundTrips: 685, correctedBits: 4200, passStats: '73,7,2965,476 146,612,19782,3696 35001,17,33,2 35001,48,310,26 35001,0,0,0 35001,0,0,0 35001,0,0,0 35001,0,0,0 35001,0,0,0 35001,0,0,0 35001,0,0,0 35001,0,0,0 35001,0,0,0 35001,0,0,0', corrected: 'effb5ca85ae3ddd70e85ba120bdd025b', questions: 'a4de865c607e9d971afaf6c8a69e42e4' },
  { variant: 'original', n: 150000, qber: 0.04, seed: 10, extra: {estimatedQber: 0.01}, leakedBits: 39236, roundTrips: 533, correctedBits: 6000, passStats: '73,7,6470,1038 146,512,28882,4958 292,13,33,4 584,0,0,0', corrected: '7282e80a88163231f3ed9aef56020462', questions: 'd229bdc03701a6e5d2914696b1d08b48' },
];

/** True when every byte of every buffer kept by the pool is zero (reads the pool's private free list). */
function poolAllZero(pool: object): boolean {
  const free = (pool as { free: ArrayBuffer[] }).free;
  expect(Array.isArray(free)).toBe(true);
  for (const buffer of free) {
    const w = new Uint32Array(buffer);
    let acc = 0;
    for (let i = 0; i < w.length; i++) acc |= w[i]!;
    if (acc !== 0) return false;
  }
  return true;
}

function words(a: BitArray): Uint8Array {
  return new Uint8Array(a.words.buffer, a.words.byteOffset, a.words.byteLength);
}

async function runGolden(g: Golden, yieldEachRound = false): Promise<{ result: CascadeResult; questions: string; alice: BitArray; disclosed: number }> {
  const { alice, bob } = keyPair(g.n, g.qber, g.seed);
  const params: CascadeParams = { ...VARIANTS[g.variant]!, estimatedQber: g.qber, ...g.extra };
  const seed = seedBytes(g.seed);
  const responder = new CascadeResponder(alice, params, seed);
  const hash = createHash('sha256');
  const oracle: ParityOracle = {
    async askParities(questions) {
      for (const q of questions) hash.update(`${q.pass},${q.start},${q.end};`);
      hash.update('|');
      if (yieldEachRound) await new Promise((resolve) => setImmediate(resolve));
      return responder.answer(questions);
    },
  };
  const result = await reconcile(bob, params, seed, oracle);
  const disclosed = responder.disclosedBits;
  responder.dispose();
  return { result, questions: hash.digest('hex').slice(0, 32), alice, disclosed };
}

function expectGolden(g: Golden, r: Awaited<ReturnType<typeof runGolden>>): void {
  const { result } = r;
  const label = `${g.variant} n=${g.n} seed=${g.seed}`;
  expect(r.questions, label).toBe(g.questions);
  expect(createHash('sha256').update(words(result.corrected)).digest('hex').slice(0, 32), label).toBe(g.corrected);
  expect(result.leakedBits, label).toBe(g.leakedBits);
  expect(result.parityQuestions, label).toBe(g.leakedBits);
  expect(r.disclosed, label).toBe(g.leakedBits);
  expect(result.roundTrips, label).toBe(g.roundTrips);
  expect(result.correctedBits, label).toBe(g.correctedBits);
  expect(result.passStats.map((p) => [p.blockSize, p.roundTrips, p.parityQuestions, p.correctedBits].join(',')).join(' '), label).toBe(g.passStats);
  expect(result.corrected.equals(r.alice), label).toBe(true);
}

describe('cascade with pooled arrays gives the results of the implementation before pooling', () => {
  it('when the golden blocks are reconciled one after another, twice (the second time over reused, once-dirty buffers), then every question, leak count, round trip and corrected bit is as recorded', async () => {
    for (const pass of [0, 1]) {
      for (const g of pass === 0 ? GOLDEN : [...GOLDEN].reverse()) {
        const r = await runGolden(g);
        expectGolden(g, r);
        releaseKeyBits(r.result.corrected);
        // Trees are taken without a fill: every page a reconciliation wrote must have been zeroed when given back.
        expect(poolAllZero(TREE_POOL), `${g.variant} n=${g.n}`).toBe(true);
      }
    }
    expect(poolAllZero(KEY_WORDS_POOL)).toBe(true);
  }, 120_000);

  it('when several golden blocks are reconciled at once (round trips interleaved, pools shared), then each is as recorded', async () => {
    const some = GOLDEN.filter((g) => g.n <= 300_000);
    const all = await Promise.all(some.map((g) => runGolden(g, true)));
    some.forEach((g, i) => expectGolden(g, all[i]!));
    for (const r of all) releaseKeyBits(r.result.corrected);
  }, 120_000);

  it('when a peer answers at random, then Bob stops at the same round trip with the same contradiction as before', async () => {
    const expected = [
      { seed: 11, rounds: 12, error: 'cascade INCONSISTENT_ANSWERS: bit 9526 would be corrected twice' },
      { seed: 12, rounds: 12, error: 'cascade INCONSISTENT_ANSWERS: bit 4613 would be corrected twice' },
      { seed: 13, rounds: 12, error: 'cascade INCONSISTENT_ANSWERS: bit 9913 would be corrected twice' },
    ];
    for (const { seed, rounds, error } of expected) {
      const { bob } = keyPair(20_000, 0.03, seed);
      const next = testRng(seed + 500);
      let asked = 0;
      const liar: ParityOracle = {
        askParities: async (qs) => {
          asked++;
          return Uint8Array.from(qs, () => next() & 1);
        },
      };
      await expect(reconcile(bob, { ...DEFAULT_CASCADE, estimatedQber: 0.03 }, seedBytes(seed), liar)).rejects.toThrow(error);
      expect(asked).toBe(rounds);
      expect(poolAllZero(TREE_POOL)).toBe(true); // stopped in the middle of a level: its trees are zeroed all the same
    }
  });
});

describe('the key-bit pool never hands out dirty memory', () => {
  afterEach(() => vi.restoreAllMocks());

  it('when a pooled array is written, given back and taken again, then it comes back zeroed, over the same memory', () => {
    // (Sizes in these tests differ from one another and from the keys above: the pool may hold their buffers.)
    const a = KEY_WORDS_POOL.take(120_000);
    a.fill(0xdeadbeef);
    const buffer = a.buffer;
    KEY_WORDS_POOL.give(a);
    expect(a.every((w) => w === 0)).toBe(true); // zeroed at once, not only when taken again
    expect(new Uint32Array(buffer).every((w) => w === 0)).toBe(true); // the whole buffer, past the view too
    const b = KEY_WORDS_POOL.take(119_900); // a little shorter: the same buffer fits best
    expect(b.buffer === buffer).toBe(true);
    expect(b.length).toBe(119_900);
    expect(b.every((w) => w === 0)).toBe(true);
    KEY_WORDS_POOL.give(b);
  });

  it('when a former owner writes after giving an array back, then the next taker still gets zeros', () => {
    const a = KEY_WORDS_POOL.take(200_000);
    KEY_WORDS_POOL.give(a);
    a.fill(7); // misuse: written after giving back
    const b = KEY_WORDS_POOL.take(200_000);
    expect(b.buffer === a.buffer).toBe(true);
    expect(b.every((w) => w === 0)).toBe(true);
    KEY_WORDS_POOL.give(b);
  });

  it('when take() is asked for unzeroed memory, then it zeroes anyway', () => {
    const a = KEY_WORDS_POOL.take(310_000);
    KEY_WORDS_POOL.give(a);
    a.fill(3);
    const b = KEY_WORDS_POOL.take(310_000, false);
    expect(b.buffer === a.buffer).toBe(true);
    expect(b.every((w) => w === 0)).toBe(true);
    KEY_WORDS_POOL.give(b);
  });

  it('when an array the pool did not hand out is given, then only that array is zeroed and it is never handed out', () => {
    const backing = new Uint32Array(40).fill(9);
    const foreign = backing.subarray(10, 20); // someone else's memory around it
    KEY_WORDS_POOL.give(foreign);
    expect(foreign.every((w) => w === 0)).toBe(true);
    expect(backing.subarray(0, 10).every((w) => w === 9)).toBe(true);
    expect(backing.subarray(20).every((w) => w === 9)).toBe(true);
    const taken = [KEY_WORDS_POOL.take(10), KEY_WORDS_POOL.take(10), KEY_WORDS_POOL.take(10)];
    for (const t of taken) expect(t.buffer === backing.buffer).toBe(false);
    for (const t of taken) KEY_WORDS_POOL.give(t);
  });

  it('when the same array is given back twice, then it is kept once (two takers never share it)', () => {
    const a = KEY_WORDS_POOL.take(470_000);
    KEY_WORDS_POOL.give(a);
    KEY_WORDS_POOL.give(a);
    const b = KEY_WORDS_POOL.take(470_000);
    const c = KEY_WORDS_POOL.take(470_000);
    expect(b.buffer === c.buffer).toBe(false);
    KEY_WORDS_POOL.give(b);
    KEY_WORDS_POOL.give(c);
  });

  it('when key bits are copied into pooled words and released, then the copy equals the key, and afterwards it is zero', () => {
    const { alice } = keyPair(100_037, 0, 3);
    const copy = pooledKeyCopy(alice);
    expect(copy.equals(alice)).toBe(true);
    expect(copy.words.buffer === alice.words.buffer).toBe(false);
    const fresh = pooledKeyBits(100_037);
    expect(fresh.popcount()).toBe(0);
    releaseKeyBits(copy, fresh, new Uint8Array(4), undefined, null);
    expect(copy.popcount()).toBe(0);
    expect(alice.popcount()).toBeGreaterThan(0);
  });

  it('when a reconciliation fails, then its corrected key and every other key-bit array it held are zeroed and handed back', async () => {
    const give = vi.spyOn(KEY_WORDS_POOL, 'give');
    const { bob } = keyPair(20_000, 0.03, 11);
    const next = testRng(511);
    const liar: ParityOracle = { askParities: async (qs) => Uint8Array.from(qs, () => next() & 1) };
    await expect(reconcile(bob, { ...DEFAULT_CASCADE, estimatedQber: 0.03 }, seedBytes(11), liar)).rejects.toThrow('INCONSISTENT_ANSWERS');
    // The corrected key, the flipped bits and pass 1's shuffled copy (pass 0 is affine, the rest two-block).
    expect(give.mock.calls.length).toBe(3);
    for (const [a] of give.mock.calls) {
      expect(a.length).toBe(625);
      expect(a.every((w) => w === 0)).toBe(true);
    }
  });

  it('when a reconciliation succeeds, then everything but the corrected key is handed back, and releasing the key hands its memory to the next block', async () => {
    const give = vi.spyOn(KEY_WORDS_POOL, 'give');
    const { alice, bob } = keyPair(70_001, 0.03, 12);
    const params = { ...DEFAULT_CASCADE, estimatedQber: 0.03 };
    const responder = new CascadeResponder(alice, params, seedBytes(12));
    const result = await reconcile(bob, params, seedBytes(12), { askParities: async (qs) => responder.answer(qs) });
    expect(give.mock.calls.length).toBe(2); // Bob's flipped bits and shuffled copy
    expect(give.mock.calls.some(([a]) => a === result.corrected.words)).toBe(false);
    expect(result.corrected.equals(alice)).toBe(true);
    responder.dispose();
    expect(give.mock.calls.length).toBe(4); // Alice's copy and her shuffled copy
    responder.dispose(); // a second dispose gives nothing back twice
    expect(give.mock.calls.length).toBe(4);
    const buffer = result.corrected.words.buffer;
    releaseKeyBits(result.corrected);
    expect(result.corrected.popcount()).toBe(0);
    const nextKey = pooledKeyBits(70_001);
    expect(nextKey.words.buffer === buffer).toBe(true); // the last given back of its size comes out first
    releaseKeyBits(nextKey);
  });
});

describe('the public work-array pools', () => {
  it('when a buffer is given back, then a request up to 1.5 times smaller reuses it, a much smaller one does not', () => {
    const a = INT32_POOL.take(3_900_000, true);
    a.fill(1);
    const buffer = a.buffer;
    INT32_POOL.give(a);
    const b = INT32_POOL.take(3_600_000, true);
    expect(b.buffer === buffer).toBe(true);
    expect(b.length).toBe(3_600_000);
    expect(b.every((x) => x === 0)).toBe(true); // zeroed when asked
    INT32_POOL.give(b);
    const small = INT32_POOL.take(2_500_000, false);
    expect(small.buffer === buffer).toBe(false);
    INT32_POOL.give(small);
  });

  it('when the pool is full, then the buffer given back longest ago goes', () => {
    // Larger than anything the other tests leave in the pool.
    const arrays = Array.from({ length: 9 }, () => INT32_POOL.take(2_200_000, false));
    for (const a of arrays) INT32_POOL.give(a); // 9 into 8 places: the first is dropped
    const again = Array.from({ length: 9 }, () => INT32_POOL.take(2_200_000, false));
    expect(again.some((a) => a.buffer === arrays[0]!.buffer)).toBe(false);
    expect(arrays.slice(1).every((b) => again.some((a) => a.buffer === b.buffer))).toBe(true);
    for (const a of again) INT32_POOL.give(a);
  });
});
