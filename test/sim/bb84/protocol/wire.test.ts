import { describe, expect, it } from 'vitest';
import { RoundProtocolError } from '../../../../src/sim/Simulator.js';
import type { ParityQuestion } from '../../../../src/sim/bb84/reconciliation/cascade.js';
import { BitArray } from '../../../../src/sim/bb84/common/bits.js';
import { seededRng } from '../../../../src/sim/bb84/common/rng.js';
import {
  answersFromBase64,
  answersToBase64,
  bitsFromBase64,
  bitsToBase64,
  bitsFromChunks,
  bitsToChunks,
  bytesFromBase64,
  bytesFromChunks,
  bytesToChunks,
  canonicalBase64Bytes,
  CHUNK_BYTES,
  chunkCount,
  expectFields,
  decodeQuestions,
  encodeQuestions,
  type EncodedQuestions,
} from '../../../../src/sim/bb84/protocol/wire.js';

const MAX = 1 << 20;
/** MAX_QUESTION_BYTES, the limit the rounds use. */
const MAX_QUESTION_BYTES = 512 * 1024;

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

// ---- The codec as it was before it was optimised: the reference the optimised one must equal byte for byte ----------

const refZigzag = (d: number): number => (d >= 0 ? 2 * d : -2 * d - 1);
const refUnzigzag = (z: number): number => (z % 2 === 0 ? z / 2 : -(z + 1) / 2);

class RefVarintWriter {
  private buf = new Uint8Array(1024);
  length = 0;

  write(v: number): void {
    if (this.length + 5 > this.buf.length) {
      const next = new Uint8Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    let x = v;
    while (x >= 0x80) {
      this.buf[this.length++] = (x % 0x80) | 0x80;
      x = Math.floor(x / 0x80);
    }
    this.buf[this.length++] = x;
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

const refBytesToBase64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');

function refEncodeQuestions(questions: readonly ParityQuestion[], maxBytes: number): EncodedQuestions[] {
  const chunks: EncodedQuestions[] = [];
  let w = new RefVarintWriter();
  let count = 0;
  let prevEnd = 0;
  for (const q of questions) {
    if (count > 0 && w.length + 15 > maxBytes) {
      chunks.push({ count, data: refBytesToBase64(w.bytes()) });
      w = new RefVarintWriter();
      count = 0;
      prevEnd = 0;
    }
    w.write(q.pass);
    w.write(refZigzag(q.start - prevEnd));
    w.write(q.end - q.start - 1);
    prevEnd = q.end;
    count++;
  }
  if (count > 0 || chunks.length === 0) chunks.push({ count, data: refBytesToBase64(w.bytes()) });
  return chunks;
}

const refError = (step: string, problem: string): RoundProtocolError => new RoundProtocolError(`bb84 ${step}: ${problem}`);

function refDecodeQuestions(value: unknown, count: number, maxBytes: number, step: string): Int32Array {
  if (typeof value !== 'string' || value.length > 4 * Math.ceil(maxBytes / 3)) throw refError(step, 'questions must be base64 within the message size limit');
  const bytes = Buffer.from(value, 'base64');
  if (bytes.toString('base64') !== value) throw refError(step, 'questions are not canonical base64');
  const out = new Int32Array(3 * count);
  let pos = 0;
  const read = (): number => {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 5; i++) {
      if (pos >= bytes.length) throw refError(step, 'questions end early');
      const b = bytes[pos++]!;
      v += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (i > 0 && b === 0) throw refError(step, 'questions contain an overlong varint');
        return v;
      }
      scale *= 0x80;
    }
    throw refError(step, 'questions contain a varint longer than 5 bytes');
  };
  let prevEnd = 0;
  for (let i = 0; i < count; i++) {
    const pass = read();
    const start = prevEnd + refUnzigzag(read());
    const end = start + read() + 1;
    if (pass > 0x7fffffff || start < 0 || end > 0x7fffffff) throw refError(step, `question ${i} is out of range`);
    out[3 * i] = pass;
    out[3 * i + 1] = start;
    out[3 * i + 2] = end;
    prevEnd = end;
  }
  if (pos !== bytes.length) throw refError(step, 'questions have trailing bytes');
  return out;
}

function refAnswersToBase64(answers: Uint8Array): string {
  const bits = new BitArray(answers.length);
  for (let i = 0; i < answers.length; i++) if (answers[i]) bits.set(i, 1);
  return bitsToBase64(bits);
}

/** What a call returns, or the class and message of what it throws. */
function outcome(f: () => ArrayLike<number>): { value: number[] } | { error: string } {
  try {
    return { value: Array.from(f()) };
  } catch (e) {
    return { error: `${(e as Error).constructor.name}: ${(e as Error).message}` };
  }
}

/** Random questions as Cascade asks them: runs of top-level blocks, BINARY halves anywhere, some far-away and large values. */
function randomQuestions(rng: ReturnType<typeof seededRng>, n: number, maxPosition: number): ParityQuestion[] {
  const out: ParityQuestion[] = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    const kind = rng.nextUint32() % 8;
    const pass = kind === 0 ? rng.nextUint32() % 0x80000000 : rng.nextUint32() % 16;
    let start: number;
    let end: number;
    if (kind <= 3 && at < maxPosition) {
      // The next block in order.
      start = at;
      end = Math.min(maxPosition, start + 1 + (rng.nextUint32() % 300));
    } else {
      // Anywhere: back or forward, one bit to very long.
      start = rng.nextUint32() % maxPosition;
      const longest = maxPosition - start;
      const len = kind === 7 ? 1 + (rng.nextUint32() % longest) : 1 + (rng.nextUint32() % Math.min(longest, 1 + (rng.nextUint32() % 20_000)));
      end = start + len;
    }
    out.push({ pass, start, end });
    at = end;
  }
  return out;
}

describe('Cascade questions: the optimised codec against the one it replaced', () => {
  it('when random question lists are encoded, then the chunks equal the reference encoder\'s (also at chunk boundaries, tiny and maximal limits)', () => {
    const rng = seededRng(61);
    const limits = [1, 14, 15, 16, 29, 30, 31, 44, 45, 46, 100, 1000, 4096, MAX_QUESTION_BYTES];
    for (let trial = 0; trial < 300; trial++) {
      const n = trial < 5 ? trial : rng.nextUint32() % 400;
      const maxPosition = trial % 3 === 0 ? 0x7fffffff : trial % 3 === 1 ? 1_050_000 : 1 + (rng.nextUint32() % 1000);
      const questions = randomQuestions(rng, n, maxPosition);
      for (const maxBytes of limits) expect(encodeQuestions(questions, maxBytes), `trial ${trial} maxBytes ${maxBytes}`).toEqual(refEncodeQuestions(questions, maxBytes));
    }
  });

  it('when the questions pass MAX_QUESTION_BYTES, then they are cut into the same chunks as before, each decoding to its questions', () => {
    const rng = seededRng(62);
    // Starts anywhere in 2^31 positions: mostly 5-byte zigzags, so 250k questions pass 512 kB more than once.
    const questions = randomQuestions(rng, 250_000, 0x7fffffff);
    const chunks = encodeQuestions(questions, MAX_QUESTION_BYTES);
    expect(chunks.length).toBeGreaterThan(2);
    expect(chunks).toEqual(refEncodeQuestions(questions, MAX_QUESTION_BYTES));
    let at = 0;
    for (const chunk of chunks) {
      expect(Buffer.from(chunk.data, 'base64').length).toBeLessThanOrEqual(MAX_QUESTION_BYTES);
      const triples = decodeQuestions(chunk.data, chunk.count, MAX_QUESTION_BYTES, 'parities');
      expect(Array.from(triples)).toEqual(questions.slice(at, at + chunk.count).flatMap((q) => [q.pass, q.start, q.end]));
      at += chunk.count;
    }
    expect(at).toBe(questions.length);
  });

  it('when the extremes are encoded (pass and end 2^31 - 1, the largest step back), then they equal the reference and decode back', () => {
    const top = 0x7fffffff;
    const questions: ParityQuestion[] = [
      { pass: top, start: top - 1, end: top },
      { pass: 0, start: 0, end: top },
      { pass: 127, start: 127, end: 128 },
      { pass: 128, start: 16_383, end: 16_384 },
      { pass: 16_384, start: 0, end: 1 },
      { pass: 2 ** 28, start: 2 ** 28, end: 2 ** 28 + 2 ** 21 + 1 },
    ];
    const [chunk] = encodeQuestions(questions, MAX);
    expect([chunk]).toEqual(refEncodeQuestions(questions, MAX));
    expect(Array.from(decodeQuestions(chunk!.data, chunk!.count, MAX, 'parities'))).toEqual(questions.flatMap((q) => [q.pass, q.start, q.end]));
  });

  it('when a question is not integers 0 <= start < end < 2^31 with a pass in [0, 2^31), then encoding throws instead of writing it', () => {
    for (const q of [
      { pass: -1, start: 0, end: 1 },
      { pass: 0.5, start: 0, end: 1 },
      { pass: 2 ** 31, start: 0, end: 1 },
      { pass: 0, start: -1, end: 1 },
      { pass: 0, start: 5, end: 5 },
      { pass: 0, start: 5, end: 4 },
      { pass: 0, start: 0, end: 2 ** 31 },
      { pass: 0, start: 0.5, end: 2 },
      { pass: 0, start: 0, end: Number.NaN },
    ]) {
      expect(() => encodeQuestions([{ pass: 0, start: 0, end: 1 }, q], MAX), JSON.stringify(q)).toThrow(RangeError);
    }
  });

  it('when valid or malformed question bytes are decoded, then the triples or the error are exactly the reference decoder\'s', () => {
    const rng = seededRng(63);
    const texts: { data: string; count: number }[] = [];
    // Valid encodings, then the same cut, extended, with bytes changed; random bytes leaning to varint edges.
    for (let trial = 0; trial < 200; trial++) {
      const questions = randomQuestions(rng, rng.nextUint32() % 60, trial % 2 === 0 ? 0x7fffffff : 100_000);
      const [chunk] = encodeQuestions(questions, MAX);
      const bytes = Buffer.from(chunk!.data, 'base64');
      const counts = [chunk!.count, chunk!.count + 1, Math.max(0, chunk!.count - 1), 0];
      const variants: Buffer[] = [bytes, bytes.subarray(0, Math.max(0, bytes.length - 1)), Buffer.concat([bytes, Buffer.from([0])]), Buffer.concat([bytes, Buffer.from([0x80])])];
      for (let k = 0; k < 4 && bytes.length > 0; k++) {
        const changed = Buffer.from(bytes);
        changed[rng.nextUint32() % changed.length] = [0x00, 0x80, 0xff, 0x7f, rng.nextUint32() & 0xff][rng.nextUint32() % 5]!;
        variants.push(changed);
      }
      for (const v of variants) for (const count of counts) texts.push({ data: v.toString('base64'), count });
    }
    const edgeBytes = [0x00, 0x01, 0x7f, 0x80, 0x81, 0xff, 0x0f, 0x10, 0x08, 0x07];
    for (let trial = 0; trial < 3000; trial++) {
      const length = rng.nextUint32() % 24;
      const bytes = Buffer.alloc(length);
      for (let i = 0; i < length; i++) bytes[i] = rng.nextUint32() % 3 === 0 ? rng.nextUint32() & 0xff : edgeBytes[rng.nextUint32() % edgeBytes.length]!;
      texts.push({ data: bytes.toString('base64'), count: rng.nextUint32() % 8 });
    }
    // Hand-picked: every error and the 5-byte values at the edges of int32 and uint32.
    for (const [values, count] of [
      [[0, 2 ** 32 - 2, 0], 1],
      [[0, 2 ** 32 - 1, 0], 1],
      [[2 ** 31 - 1, 2 * (2 ** 31 - 2), 0], 1],
      [[2 ** 31, 0, 0], 1],
      [[0, 0, 2 ** 31 - 2], 1],
      [[0, 0, 2 ** 31 - 1], 1],
      [[0, 2 ** 35 - 1, 0], 1],
      [[0, 2 ** 34, 0], 1],
      [[0, 0, 0, 0, 2 ** 32 - 1, 0], 2],
    ] as const) {
      texts.push({ data: varints(...values), count });
    }
    // Overlong and long varints where four bytes are in reach and where they are not (the decoder reads both ways).
    for (const bytes of [[0, 0x81, 0x00, 0, 0, 0, 0], [0, 0x81, 0x80, 0x80, 0x00, 0, 0, 0], [0, 0x81, 0x80, 0x00, 0], [0, 0x81, 0x00], [0, 0x80, 0x80, 0x80, 0x01, 0], [0, 0x80, 0x80, 0x81], [0x80, 0x00, 0, 0], [0, 0x80, 0x80, 0x80, 0x80, 0x00, 0], [0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0], [0, 0xff, 0xff, 0xff, 0xff, 0x7f, 0], [0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0]]) {
      texts.push({ data: Buffer.from(bytes).toString('base64'), count: 1 });
    }
    // Not canonical, or not base64 at all.
    for (const data of ['AAA', 'AA==A', 'AAB=', 'AAAA====', 'AA-A', 'AAA\u0141', 'A\uD83D\uDE00A', '\uD800AAA', ' AAA', 'AAAA\n']) texts.push({ data, count: 1 });
    const seen = new Set<string>();
    for (const { data, count } of texts) {
      const want = outcome(() => refDecodeQuestions(data, count, MAX, 'parities'));
      expect(outcome(() => decodeQuestions(data, count, MAX, 'parities')), `${JSON.stringify(data)} count ${count}`).toEqual(want);
      if ('error' in want) seen.add(want.error.replace(/question \d+/, 'question i'));
    }
    // Every refusal the decoder has was exercised.
    expect([...seen].sort()).toEqual([
      'RoundProtocolError: bb84 parities: question i is out of range',
      'RoundProtocolError: bb84 parities: questions are not canonical base64',
      'RoundProtocolError: bb84 parities: questions contain a varint longer than 5 bytes',
      'RoundProtocolError: bb84 parities: questions contain an overlong varint',
      'RoundProtocolError: bb84 parities: questions end early',
      'RoundProtocolError: bb84 parities: questions have trailing bytes',
    ]);
  });

  it('when the text is over the size limit or not a string, then both decoders refuse it the same way', () => {
    const over = 'A'.repeat(4 * Math.ceil(30 / 3) + 4);
    for (const [value, maxBytes] of [[over, 30], ['A'.repeat(40), 30], [42, MAX], [null, MAX], [undefined, MAX]] as const) {
      expect(outcome(() => decodeQuestions(value, 1, maxBytes, 'parities'))).toEqual(outcome(() => refDecodeQuestions(value, 1, maxBytes, 'parities')));
    }
  });
});

describe('Cascade answers on the wire', () => {
  it('when answers of any length are packed, then the text is the reference\'s (any non-zero byte a 1) and unpacks to the bits', () => {
    const rng = seededRng(64);
    for (const n of [0, 1, 2, 31, 32, 33, 63, 64, 65, 95, 96, 97, 100, 1000, 4099]) {
      for (let trial = 0; trial < 3; trial++) {
        const answers = new Uint8Array(n);
        for (let i = 0; i < n; i++) answers[i] = trial === 0 ? rng.nextUint32() & 1 : trial === 1 ? rng.nextUint32() & 0xff : 1;
        const text = answersToBase64(answers);
        expect(text, `n ${n}`).toBe(refAnswersToBase64(answers));
        expect(Array.from(answersFromBase64(text, n, 'parities'))).toEqual(Array.from(answers, (a) => (a !== 0 ? 1 : 0)));
      }
    }
  });

  it('when answers are malformed, then unpacking refuses them naming the field', () => {
    const rng = seededRng(65);
    for (const n of [1, 31, 32, 33, 100]) {
      const answers = new Uint8Array(n);
      for (let i = 0; i < n; i++) answers[i] = rng.nextUint32() & 1;
      const text = answersToBase64(answers);
      expect(() => answersFromBase64(`${text.slice(0, -1)}-`, n, 'parities')).toThrow(/bb84 parities: parities is not canonical/);
      expect(() => answersFromBase64(text, n + 32, 'parities')).toThrow(/bb84 parities: parities must encode exactly/);
      expect(() => answersFromBase64(7, n, 'parities')).toThrow(/bb84 parities: parities must be a base64 string/);
      if (n % 32 !== 0) {
        const over = new Uint8Array(32 * Math.ceil(n / 32)).fill(1);
        expect(() => answersFromBase64(answersToBase64(over), n, 'parities')).toThrow(/bits set past its length/);
      }
    }
  });
});

describe('canonical base64 of large fields', () => {
  it('when a frame-sized field is decoded, then the bytes are exact, and one changed character anywhere is refused', () => {
    const rng = seededRng(66);
    const bytes = new Uint8Array(206_251);
    for (let i = 0; i < bytes.length; i++) bytes[i] = rng.nextUint32() & 0xff;
    const text = Buffer.from(bytes).toString('base64');
    expect(Buffer.from(bytesFromBase64(text, bytes.length, 'frame', 'states')).equals(Buffer.from(bytes))).toBe(true);
    for (const at of [0, 1, 2, 3, 4, 1000, text.length - 5, text.length - 4, text.length - 3, text.length - 2, text.length - 1]) {
      for (const c of ['-', '_', '=', '\u0141', '\u00c1', '\uD83D']) {
        const bad = text.slice(0, at) + c + text.slice(at + 1);
        const want = Buffer.from(bad, 'base64').toString('base64') === bad;
        expect(canonicalBase64Bytes(bad) !== null, `${c} at ${at}`).toBe(want);
      }
    }
  });

  it('when a text is longer than the reused buffer (over 2^20 characters), then it is decoded and checked the same way', () => {
    const rng = seededRng(67);
    const bytes = new Uint8Array(800_002);
    for (let i = 0; i < bytes.length; i++) bytes[i] = rng.nextUint32() & 0xff;
    const text = Buffer.from(bytes).toString('base64');
    expect(text.length).toBeGreaterThan(1 << 20);
    expect(Buffer.from(canonicalBase64Bytes(text)!).equals(Buffer.from(bytes))).toBe(true);
    expect(canonicalBase64Bytes(`${text.slice(0, 500_000)}\u0141${text.slice(500_001)}`)).toBeNull();
    expect(canonicalBase64Bytes(`${text.slice(0, -2)}B=`)).toBeNull();
    // A short text after the long one still uses (and finds zeroed) the reused buffer.
    expect(Array.from(canonicalBase64Bytes('AAEC')!)).toEqual([0, 1, 2]);
  });
});

describe('chunked fields (lists of base64 chunks)', () => {
  const randomBytes = (seed: number, n: number): Uint8Array => {
    const rng = seededRng(seed);
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = rng.nextUint32() & 0xff;
    return out;
  };
  const LENGTHS = [0, 1, 2, 3, 4, 5, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 2 * CHUNK_BYTES, 3 * CHUNK_BYTES + 5, 760_000];

  it('when byte strings of any length are chunked, then every chunk but the last holds exactly CHUNK_BYTES bytes, unpadded and under 128 KiB, and they decode back exactly', () => {
    expect(CHUNK_BYTES % 12).toBe(0); // whole words, whole base64 groups
    for (const n of LENGTHS) {
      const bytes = randomBytes(n + 1, n);
      const chunks = bytesToChunks(bytes);
      expect(chunks, `n=${n}`).toHaveLength(chunkCount(n));
      chunks.forEach((c, i) => {
        expect(c.length).toBeLessThan(128 * 1024);
        expect(c).toBe(Buffer.from(bytes.subarray(i * CHUNK_BYTES, Math.min(n, (i + 1) * CHUNK_BYTES))).toString('base64'));
        if (i < chunks.length - 1) expect(c.includes('=')).toBe(false);
      });
      expect(chunks.join(''), `n=${n}`).toBe(Buffer.from(bytes).toString('base64'));
      expect(Buffer.from(bytesFromChunks(chunks, n, 'frame', 'states')).equals(Buffer.from(bytes)), `n=${n}`).toBe(true);
      expect(Buffer.from(bytesFromChunks(chunks, n + 7, 'frame', 'states', false)).equals(Buffer.from(bytes)), `n=${n} at most`).toBe(true);
    }
  });

  it('when a bit string is chunked, then it decodes to the same bits, and a bit set past its length is refused', () => {
    for (const n of [0, 1, 31, 32, 33, 8 * CHUNK_BYTES + 1, 2_000_003]) {
      const bits = new BitArray(n);
      const rng = seededRng(n);
      for (let i = 0; i < bits.words.length; i++) bits.words[i] = rng.nextUint32();
      bits.clearTail();
      const back = bitsFromChunks(bitsToChunks(bits), n, 'sift', 'mask');
      expect(Array.from(back.words)).toEqual(Array.from(bits.words));
      if (n % 32 !== 0) {
        const over = new BitArray(n, bits.words.slice());
        over.words[over.words.length - 1]! |= 0x80000000;
        expect(() => bitsFromChunks(bitsToChunks(over), n, 'sift', 'mask')).toThrow(/bb84 sift: mask has bits set past its length/);
      }
    }
  });

  it('when the list is cut, counted, typed or encoded any other way, then it is refused naming the field (and the chunk), never a value', () => {
    const n = 2 * CHUNK_BYTES + 301; // the last chunk padded
    const bytes = randomBytes(5, n);
    const good = bytesToChunks(bytes);
    expect(good).toHaveLength(3);
    const text = good.join('');
    const [a, b, c] = good as [string, string, string];
    const bad: [string, unknown, RegExp][] = [
      ['one text instead of a list', text, /states must be a list of base64 chunks/],
      ['not a list', 7, /states must be a list of base64 chunks/],
      ['a chunk too few', [a, b], /states must be exactly 3 chunks/],
      ['a chunk too many', [a, b, c, 'AAAA'], /states must be exactly 3 chunks/],
      ['an empty chunk at the end', [a, b, c, ''], /states must be exactly 3 chunks/],
      ['the characters cut elsewhere', [a.slice(4), b, `${a.slice(0, 4)}${c}`], /states chunk 0 must encode exactly 73728 bytes/],
      ['an empty last chunk', [a, b, ''], /states chunk 2 must encode 1 to 73728 bytes/],
      ['a number as a chunk', [a, 12, c], /states chunk 1 must be a base64 string/],
      ['a middle chunk padded', [a, `${b.slice(0, -4)}AA==`, c], /states chunk 1 is not canonical base64/],
      ['a non-alphabet character', [a, `${b.slice(0, 10)}-${b.slice(11)}`, c], /states chunk 1 is not canonical base64/],
      ['a line break in the last chunk', [a, b, `${c.slice(0, 8)}\n${c.slice(9)}`], /states chunk 2 is not canonical base64/],
      ['the last chunk short', [a, b, c.slice(0, -4)], /states must encode exactly/],
      ['the last chunk unpadded', [a, b, c.replace(/=+$/, '')], /states chunk 2 must encode 1 to 73728 bytes|states must encode exactly/],
      ['padding bits set', [a, b, c.endsWith('==') ? `${c.slice(0, -3)}B==` : `${c.slice(0, -2)}B=`], /states chunk 2 is not canonical base64/],
    ];
    for (const [how, value, message] of bad) {
      let err: unknown;
      try {
        bytesFromChunks(value, n, 'frame', 'states');
      } catch (e) {
        err = e;
      }
      expect(err, how).toBeInstanceOf(RoundProtocolError);
      expect((err as Error).message, how).toMatch(/^bb84 frame: /);
      expect((err as Error).message, how).toMatch(message);
      expect((err as Error).message.includes(b.slice(0, 16)), how).toBe(false);
    }
    // At most: fewer bytes are fine, more are not, and the chunk rules stand.
    expect(bytesFromChunks(good, n + CHUNK_BYTES, 'sift', 'intensities', false)).toHaveLength(n);
    expect(() => bytesFromChunks(good, n - 1, 'sift', 'intensities', false)).toThrow(/intensities must encode at most/);
    expect(() => bytesFromChunks(good, 2 * CHUNK_BYTES, 'sift', 'intensities', false)).toThrow(/intensities must be at most 2 chunks/);
    expect(() => bytesFromChunks([a.slice(4), b, c], n, 'sift', 'intensities', false)).toThrow(/intensities chunk 0 must encode exactly/);
    expect(bytesFromChunks([], 0, 'frame', 'states')).toHaveLength(0);
    expect(() => bytesFromChunks([''], 0, 'frame', 'states')).toThrow(/states must be exactly 0 chunks/);
  });

  it('when a payload field is a list, then only a short list of strings passes the field check', () => {
    expect(expectFields({ states: ['AAAA', 'BBBB'] }, 'frame', ['states']).states).toEqual(['AAAA', 'BBBB']);
    expect(() => expectFields({ states: ['AAAA', 1] }, 'frame', ['states'])).toThrow(/field states must be a string, number, boolean or a list of at most 64 strings/);
    expect(() => expectFields({ states: [['AAAA']] }, 'frame', ['states'])).toThrow(/field states must be/);
    expect(() => expectFields({ states: new Array(65).fill('AAAA') }, 'frame', ['states'])).toThrow(/field states must be/);
    expect(() => expectFields({ states: { 0: 'AAAA' } }, 'frame', ['states'])).toThrow(/field states must be/);
  });
});
