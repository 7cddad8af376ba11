import { describe, expect, it } from 'vitest';
import { BitArray } from '../../../../src/sim/bb84/common/bits.js';
import { advance, dropped, kept, newKeyBlock, requireStage, type StageOutcome } from '../../../../src/sim/bb84/common/keyBlock.js';

describe('KeyBlock', () => {
  it('when a block advances, then it keeps its id, changes stage and fields, and never moves backwards', () => {
    const b = newKeyBlock('s:1', 'sifted', new BitArray(10));
    expect(b.leakedBits).toBe(0);
    const c = advance(b, 'corrected', { leakedBits: 12 });
    expect(c).toMatchObject({ blockId: 's:1', stage: 'corrected', leakedBits: 12 });
    expect(b.stage).toBe('sifted');
    expect(() => advance(c, 'estimated', {})).toThrow();
    expect(() => advance(c, 'corrected', {})).toThrow();
  });

  it('when the leak is negative or fractional, then it throws', () => {
    expect(() => newKeyBlock('x', 'raw', new BitArray(1), { leakedBits: -1 })).toThrow(RangeError);
    expect(() => advance(newKeyBlock('x', 'raw', new BitArray(1)), 'sifted', { leakedBits: 1.5 })).toThrow(RangeError);
  });

  it('when a stage is called on the wrong block, then requireStage throws', () => {
    expect(() => requireStage(newKeyBlock('x', 'raw', new BitArray(1)), 'verified', 'amplify')).toThrow(/amplify/);
  });

  it('when a stage drops a block, then the outcome is distinguishable from a kept one by its type', () => {
    const outcomes: StageOutcome<number>[] = [kept(1), dropped('qber-too-high', 'too noisy')];
    const summary = outcomes.map((o) => (o.ok ? `kept ${o.value}` : `dropped ${o.code}: ${o.reason}`));
    expect(summary).toEqual(['kept 1', 'dropped qber-too-high: too noisy']);
  });
});
