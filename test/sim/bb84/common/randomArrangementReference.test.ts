/**
 * randomArrangement against the implementation it replaced (kept below verbatim as the reference; it drew the subset
 * into a mask of its own): the same masks from the same stream, and the stream left at the same word.
 */
import { describe, expect, it } from 'vitest';
import { depositInto } from '../../../../src/sim/bb84/common/bitSelect.js';
import { BitArray } from '../../../../src/sim/bb84/common/bits.js';
import { randomArrangement, randomSubset } from '../../../../src/sim/bb84/common/randomSubset.js';
import { randomBelow, seededRng } from '../../../../src/sim/bb84/common/rng.js';

function referenceArrangement(rng: ReturnType<typeof seededRng>, counts: readonly number[]): BitArray[] {
  if (counts.some((c) => !Number.isSafeInteger(c) || c < 0)) throw new RangeError(`randomArrangement: counts must be integers >= 0, got ${JSON.stringify(counts)}`);
  const total = counts.reduce((a, b) => a + b, 0);
  const masks = counts.map(() => new BitArray(total));
  if (counts.length === 0) return masks;
  const largest = largestKind(counts);
  const others = randomSubset(rng, total, total - counts[largest]!);
  const lw = masks[largest]!.words;
  const ow = others.words;
  for (let i = 0; i < ow.length; i++) lw[i] = ~ow[i]!;
  masks[largest]!.clearTail();
  if (counts.length === 1) return masks;
  const rest = counts.filter((_, k) => k !== largest);
  const inner = referenceArrangement(rng, rest);
  const innerLargest = largestKind(rest);
  let j = 0;
  let fill = -1;
  counts.forEach((_, k) => {
    if (k === largest) return;
    if (j === innerLargest) fill = k;
    else depositInto(masks[k]!.words, inner[j]!, ow);
    j++;
  });
  const fw = masks[fill]!.words;
  for (let i = 0; i < fw.length; i++) fw[i] = ow[i]!;
  counts.forEach((_, k) => {
    if (k === largest || k === fill) return;
    const mw = masks[k]!.words;
    for (let i = 0; i < fw.length; i++) fw[i] = fw[i]! & ~mw[i]!;
  });
  return masks;
}

function largestKind(counts: readonly number[]): number {
  let largest = 0;
  counts.forEach((c, k) => {
    if (c > counts[largest]!) largest = k;
  });
  return largest;
}

describe('randomArrangement against the replaced implementation', () => {
  it('when kinds of any counts are arranged from a seed, then the masks and the next word of the stream are the reference ones', () => {
    const pick = seededRng(301);
    const cases: number[][] = [[], [0], [5], [0, 0], [3, 0], [0, 3], [10, 10], [1, 2, 3], [3, 2, 1], [2, 3, 3], [1_099_334, 551_372, 318], [600, 300, 99, 1], [40, 40, 40, 40]];
    for (let t = 0; t < 60; t++) cases.push(Array.from({ length: 1 + randomBelow(pick, 4) }, () => (randomBelow(pick, 3) === 0 ? randomBelow(pick, 5) : randomBelow(pick, 5000))));
    for (const counts of cases) {
      const seed = randomBelow(pick, 1 << 30);
      const a = seededRng(seed);
      const b = seededRng(seed);
      const got = randomArrangement(a, counts);
      const want = referenceArrangement(b, counts);
      expect(got.map((m) => Array.from(m.words)), JSON.stringify(counts)).toEqual(want.map((m) => Array.from(m.words)));
      expect(a.nextUint32()).toBe(b.nextUint32());
    }
    expect(() => randomArrangement(seededRng(1), [1, -1])).toThrow(RangeError);
  });
});
