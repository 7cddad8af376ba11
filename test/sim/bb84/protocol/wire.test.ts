import { describe, expect, it } from 'vitest';
import { RoundProtocolError } from '../../../../src/sim/Simulator.js';
import type { ParityQuestion } from '../../../../src/sim/bb84/reconciliation/cascade.js';
import { decodeQuestions, encodeQuestions } from '../../../../src/sim/bb84/protocol/wire.js';

const MAX = 1 << 20;

/** Hand-built varints (unsigned LEB128), to write what encodeQuestions never would. */
function varints(...values: number[]): string {
  const out: number[] = [];
  for (let v of values) {
    while (v >= 0x80) {
      out.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    out.push(v);
  }
  return Buffer.from(out).toString('base64');
}

describe('Cascade questions on the wire', () => {
  it('when questions are encoded and decoded, then the triples are the questions in order (top-level runs, back steps, one-bit ranges)', () => {
    const questions: ParityQuestion[] = [
      { pass: 0, start: 0, end: 36 },
      { pass: 0, start: 36, end: 72 },
      { pass: 1, start: 500_000, end: 500_073 },
      { pass: 13, start: 10, end: 11 },
      { pass: 2, start: 0, end: 440_000 },
    ];
    const [chunk] = encodeQuestions(questions, MAX);
    expect(chunk!.count).toBe(questions.length);
    const triples = decodeQuestions(chunk!.data, chunk!.count, MAX, 'parities');
    expect(Array.from(triples)).toEqual(questions.flatMap((q) => [q.pass, q.start, q.end]));
  });

  it('when a question would start before 0 or end past int32, then decoding refuses it instead of wrapping', () => {
    // pass 0, start = 0 + unzigzag(1) = -1, length 1
    expect(() => decodeQuestions(varints(0, 1, 0), 1, MAX, 'parities')).toThrow(RoundProtocolError);
    // pass 0, start = unzigzag(2 * 2^31) = 2^31 (5-byte varint), length 1: end past int32
    expect(() => decodeQuestions(varints(0, 2 ** 32, 0), 1, MAX, 'parities')).toThrow(/out of range/);
    // pass 2^32 - 1
    expect(() => decodeQuestions(varints(2 ** 32 - 1, 0, 0), 1, MAX, 'parities')).toThrow(/out of range/);
  });

  it('when the bytes end early, carry extra bytes or are not canonical base64, then decoding refuses them', () => {
    expect(() => decodeQuestions(varints(0, 0), 1, MAX, 'parities')).toThrow(/end early/);
    expect(() => decodeQuestions(varints(0, 0, 0, 7), 1, MAX, 'parities')).toThrow(/trailing/);
    expect(() => decodeQuestions('AAA', 1, MAX, 'parities')).toThrow(/canonical/);
    expect(() => decodeQuestions(42, 1, MAX, 'parities')).toThrow(/base64/);
  });
});
