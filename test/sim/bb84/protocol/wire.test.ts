import { describe, expect, it } from 'vitest';
import { RoundProtocolError } from '../../../../src/sim/Simulator.js';
import type { ParityQuestion } from '../../../../src/sim/bb84/reconciliation/cascade.js';
import { BitArray } from '../../../../src/sim/bb84/common/bits.js';
import { seededRng } from '../../../../src/sim/bb84/common/rng.js';
import { bitsFromBase64, bitsToBase64, canonicalBase64Bytes, decodeQuestions, encodeQuestions } from '../../../../src/sim/bb84/protocol/wire.js';

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

describe('canonical base64', () => {
  /** The definition: the text decodes to bytes whose base64 is the text itself. */
  const reference = (value: string): Uint8Array | null => {
    const b = Buffer.from(value, 'base64');
    return b.toString('base64') === value ? new Uint8Array(b) : null;
  };

  it('when texts of any length are decoded, altered or not, then the check and the bytes are those of the re-encoding definition', () => {
    const rng = seededRng(51);
    const swaps = ['=', 'A', '/', '+', '-', '_', ' ', '\n', '.', '\u00e9', '\u0141', '\u0100', '\u0130', 'Q', 'g', 'w', 'B'];
    for (let n = 0; n < 40; n++) {
      const bytes = new Uint8Array(n);
      for (let i = 0; i < n; i++) bytes[i] = rng.nextUint32() & 255;
      const text = Buffer.from(bytes).toString('base64');
      const variants = [text, `${text}=`, `${text}==`, `${text}A`, `${text}AAAA`, text.slice(0, -1), text.slice(0, -2), text.slice(1), `${text.slice(0, -2)}==`, `${text.slice(0, -1)}=`];
      for (let i = 0; i < text.length; i++) for (const c of swaps) variants.push(text.slice(0, i) + c + text.slice(i + 1));
      for (const v of variants) {
        const want = reference(v);
        const got = canonicalBase64Bytes(v);
        expect(got === null ? null : Array.from(got), JSON.stringify(v)).toEqual(want === null ? null : Array.from(want));
      }
      const decoded = canonicalBase64Bytes(text)!;
      expect(decoded.buffer.byteLength % 4).toBe(0);
    }
  });

  it('when bit strings are decoded, then non-canonical text and bits past the length are refused with the field named', () => {
    const rng = seededRng(52);
    for (const n of [1, 31, 32, 33, 100]) {
      const bits = new BitArray(n);
      for (let i = 0; i < n; i++) bits.set(i, rng.nextUint32() & 1);
      expect(bitsFromBase64(bitsToBase64(bits), n, 'sift', 'mask').equals(bits)).toBe(true);
      const text = bitsToBase64(bits);
      expect(() => bitsFromBase64(`${text.slice(0, -1)}-`, n, 'sift', 'mask')).toThrow(/bb84 sift: mask/);
      if (n % 32 !== 0) {
        const over = new BitArray(32 * Math.ceil(n / 32));
        over.set(over.length - 1, 1);
        expect(() => bitsFromBase64(bitsToBase64(over), n, 'sift', 'mask')).toThrow(/bits set past its length/);
      }
    }
  });
});
