/**
 * The intensity encoder and decoders against the implementations they replaced (kept below verbatim as the
 * reference, which wrote one base64 text where the wire now carries a list of chunks, wire.ts): the same text, cut
 * into chunks, for the same masks; the same masks for the same text; a refusal naming the field for every altered
 * text the reference refused.
 */
import { describe, expect, it } from 'vitest';
import { compressBits, expandBits } from '../../../../src/sim/bb84/common/bitSelect.js';
import { BitArray } from '../../../../src/sim/bb84/common/bits.js';
import { randomArrangement } from '../../../../src/sim/bb84/common/randomSubset.js';
import { bernoulliBits, randomBelow, randomBits, seededRng, type Rng } from '../../../../src/sim/bb84/common/rng.js';
import { decodeIntensities, decodeIntensitiesAt, encodeIntensities } from '../../../../src/sim/bb84/protocol/decoyWire.js';
import { bytesToBase64, canonicalBase64Bytes, CHUNK_BYTES, protocolError } from '../../../../src/sim/bb84/protocol/wire.js';

// ---- the reference: decoyWire.ts before the single-pass encoder and decoder ----------------------------------------

function referenceEncodeIntensities(masks: readonly BitArray[], select?: BitArray): string {
  const n = masks[0]?.length ?? 0;
  if (select && select.length !== n) throw new RangeError(`encodeIntensities: select has ${select.length} bits for ${n} pulses`);
  const remaining = select ? select.clone() : allOnes(n);
  const parts: Uint32Array[] = [];
  for (let j = 0; j < masks.length - 1; j++) {
    const nested = compressBits(masks[j]!, remaining);
    parts.push(nested.words);
    const r = remaining.words, m = masks[j]!.words;
    for (let i = 0; i < r.length; i++) r[i] = r[i]! & ~m[i]!;
  }
  const total = parts.reduce((a, p) => a + p.length, 0);
  const words = new Uint32Array(total);
  let at = 0;
  for (const p of parts) {
    words.set(p, at);
    at += p.length;
  }
  return bytesToBase64(new Uint8Array(words.buffer));
}

function referenceDecodeIntensities(value: unknown, n: number, intensities: number, step: string, field: string): BitArray[] {
  return referenceDecodeIntensitiesAt(value, allOnes(n), intensities, step, field);
}

function referenceDecodeIntensitiesAt(value: unknown, where: BitArray, intensities: number, step: string, field: string): BitArray[] {
  if (typeof value !== 'string') throw protocolError(step, `${field} must be a base64 string`);
  const n = where.popcount();
  const maxWords = (intensities - 1) * ((n + 31) >>> 5);
  if (value.length > 4 * Math.ceil((4 * maxWords) / 3)) throw protocolError(step, `${field} is longer than ${intensities - 1} masks of ${n} pulses`);
  const buf = canonicalBase64Bytes(value);
  if (buf === null || buf.length % 4 !== 0) throw protocolError(step, `${field} is not canonical base64 of whole 32-bit words`);
  const words = new Uint32Array(buf.buffer, 0, buf.length / 4);
  const masks: BitArray[] = [];
  let remaining = where.clone();
  let at = 0;
  for (let j = 0; j < intensities - 1; j++) {
    const length = remaining.popcount();
    const nWords = (length + 31) >>> 5;
    if (at + nWords > words.length) throw protocolError(step, `${field} ends before mask ${j}`);
    const nested = new BitArray(length, words.subarray(at, at + nWords));
    const r = length & 31;
    if (r !== 0 && nested.words[nWords - 1]! >>> r !== 0) throw protocolError(step, `${field} mask ${j} has bits set past its length`);
    at += nWords;
    const mask = expandBits(nested, remaining);
    masks.push(mask);
    const rest = new BitArray(where.length);
    for (let i = 0; i < rest.words.length; i++) rest.words[i] = remaining.words[i]! & ~mask.words[i]!;
    remaining = rest;
  }
  if (at !== words.length) throw protocolError(step, `${field} has trailing words`);
  masks.push(remaining);
  return masks;
}

/** The reference's single text as the chunk list the wire carries now: cut every CHUNK_BYTES bytes' worth of characters. */
function asChunks(text: string): string[] {
  const chars = (4 * CHUNK_BYTES) / 3;
  const out: string[] = [];
  for (let at = 0; at < text.length; at += chars) out.push(text.slice(at, at + chars));
  return out;
}

function allOnes(n: number): BitArray {
  const out = new BitArray(n);
  out.words.fill(0xffffffff);
  return out.clearTail();
}

// ---- inputs ---------------------------------------------------------------------------------------------------------

const LENGTHS = [0, 1, 7, 31, 32, 33, 63, 64, 65, 95, 96, 97, 1000, 4097, 100_003];

/** Disjoint masks covering n pulses, K kinds, with long runs of one kind (full and empty words) in some. */
function masksFor(rng: Rng, n: number, K: number, shares: number[]): BitArray[] {
  const counts = shares.slice(0, K).map((p) => Math.floor(n * p));
  counts[0]! += n - counts.reduce((a, b) => a + b, 0);
  const masks = randomArrangement(rng, counts);
  if (n > 200 && K > 1) {
    // words 2-3 all of kind 0, word 4 all of kind K-1
    for (const w of [2, 3]) for (let k = 0; k < K; k++) masks[k]!.words[w] = k === 0 ? 0xffffffff : 0;
    for (let k = 0; k < K; k++) masks[k]!.words[4] = k === K - 1 ? 0xffffffff : 0;
  }
  return masks;
}

function selectFor(rng: Rng, n: number, density: number): BitArray {
  const s = bernoulliBits(rng, n, density);
  if (n > 200) {
    s.words[2] = 0xffffffff;
    s.words[5] = 0;
  }
  return s;
}

const SHARES = [
  [0.66, 0.33, 0.01, 0],
  [0.3, 0.3, 0.2, 0.2],
  [1, 0, 0, 0],
  [0, 0, 1, 0],
];

function outcome<T>(f: () => T): { ok: T } | { error: string; kind: string } {
  try {
    return { ok: f() };
  } catch (err) {
    return { error: (err as Error).message, kind: (err as Error).constructor.name };
  }
}

const wordsOf = (masks: BitArray[]): { length: number; words: number[] }[] => masks.map((m) => ({ length: m.length, words: Array.from(m.words) }));

/**
 * The reference decodes `value` (a text, or anything else an attacker might send); the decoder gets the same text
 * cut into chunks. Same masks when the reference accepts; when it refuses, a refusal naming the step and field.
 */
function sameDecoding(value: unknown, where: BitArray | number, K: number): void {
  const chunked = typeof value === 'string' ? asChunks(value) : value;
  const got = outcome(() => wordsOf(typeof where === 'number' ? decodeIntensities(chunked, where, K, 'sift', 'intensities') : decodeIntensitiesAt(chunked, where, K, 'sift', 'intensities')));
  const want = outcome(() => wordsOf(typeof where === 'number' ? referenceDecodeIntensities(value, where, K, 'sift', 'intensities') : referenceDecodeIntensitiesAt(value, where, K, 'sift', 'intensities')));
  if ('ok' in want) expect(got).toEqual(want);
  else {
    expect(got).not.toHaveProperty('ok');
    expect((got as { error: string }).error).toMatch(/^bb84 sift: intensities /);
  }
}

/** Altered texts: every kind of damage the decoder checks, and some it need not see. */
function alterations(rng: Rng, text: string): unknown[] {
  const bytes = Buffer.from(text, 'base64');
  // (A list is what the wire carries now: the list of the reference's text is tested in wire.test.ts.)
  const out: unknown[] = [text, `${text}\n`, ` ${text}`, text.replace(/=/g, ''), `${text}AAAA`, text.slice(4), text.slice(0, -4), 7, null, undefined, { 0: text }, ''];
  out.push(Buffer.concat([bytes, Buffer.alloc(4)]).toString('base64'));
  out.push(Buffer.concat([bytes, Buffer.alloc(2)]).toString('base64'));
  if (bytes.length >= 4) out.push(bytes.subarray(0, bytes.length - 4).toString('base64'), bytes.subarray(4).toString('base64'), bytes.subarray(0, bytes.length - 1).toString('base64'));
  for (let t = 0; t < 12 && bytes.length > 0; t++) {
    const b = Buffer.from(bytes);
    const at = randomBelow(rng, b.length);
    b[at]! ^= 1 << randomBelow(rng, 8);
    out.push(b.toString('base64'));
    // the high bytes of words: bits past a mask's length when the word is a mask's last
    const w = randomBelow(rng, b.length >>> 2);
    const c = Buffer.from(bytes);
    c[4 * w + 3] = 0xff;
    out.push(c.toString('base64'));
  }
  if (text.length >= 4) {
    // non-canonical: a character outside the alphabet, or padding bits set
    out.push(`${text.slice(0, 1)}*${text.slice(2)}`);
    out.push(`${text.slice(0, 1)}\u00e9${text.slice(2)}`);
    if (text.endsWith('==')) out.push(`${text.slice(0, -3)}B==`);
    else if (text.endsWith('=')) out.push(`${text.slice(0, -2)}B=`);
  }
  return out;
}

describe('intensity wire encoding against the replaced implementation', () => {
  it('when masks of any length and kind count are encoded, over all pulses or a selection, then the chunks are the reference text cut into chunks', () => {
    const rng = seededRng(101);
    for (const n of LENGTHS) {
      for (const K of [1, 2, 3, 4]) {
        for (const shares of SHARES) {
          const masks = masksFor(rng, n, K, shares);
          expect(encodeIntensities(masks), `n=${n} K=${K}`).toEqual(asChunks(referenceEncodeIntensities(masks)));
          for (const density of [0, 0.05, 0.5, 0.68, 1]) {
            const select = selectFor(rng, n, density);
            expect(encodeIntensities(masks, select), `n=${n} K=${K} density=${density}`).toEqual(asChunks(referenceEncodeIntensities(masks, select)));
          }
        }
      }
    }
    expect(encodeIntensities([])).toEqual(asChunks(referenceEncodeIntensities([])));
    expect(() => encodeIntensities(masksFor(rng, 40, 3, SHARES[0]!), new BitArray(41))).toThrow(RangeError);
  });

  it('when a frame of the largest size is encoded, then the chunks are the reference text cut into chunks', () => {
    const rng = seededRng(102);
    const n = 2_026_666; // MAX_FRAME_DETECTIONS
    const masks = masksFor(rng, n, 3, SHARES[0]!);
    const chunks = encodeIntensities(masks);
    expect(chunks.length).toBeGreaterThan(3);
    expect(chunks).toEqual(asChunks(referenceEncodeIntensities(masks)));
    const select = selectFor(rng, n, 0.68);
    expect(encodeIntensities(masks, select)).toEqual(asChunks(referenceEncodeIntensities(masks, select)));
  });

  it('when texts, valid or altered, are decoded over all pulses or a selection, then the masks or the refusal are the reference ones', () => {
    const rng = seededRng(103);
    for (const n of LENGTHS.filter((x) => x < 50_000)) {
      for (const K of [1, 2, 3, 4]) {
        const masks = masksFor(rng, n, K, SHARES[randomBelow(rng, SHARES.length)]!);
        for (const v of alterations(rng, encodeIntensities(masks).join(''))) {
          sameDecoding(v, n, K);
          if (n > 0) sameDecoding(v, n - 1, K);
          sameDecoding(v, n + 1, K);
          if (K > 1) sameDecoding(v, n, K - 1);
          sameDecoding(v, n, K + 1);
        }
        for (const density of [0, 0.05, 0.68, 1]) {
          const select = selectFor(rng, n, density);
          for (const v of alterations(rng, encodeIntensities(masks, select).join(''))) {
            sameDecoding(v, select, K);
            sameDecoding(v, selectFor(rng, n, density), K);
          }
        }
      }
    }
    // A random text of random length, and a random selection.
    for (let t = 0; t < 200; t++) {
      const n = randomBelow(rng, 300);
      const bytes = randomBits(rng, 8 * randomBelow(rng, 120)).toWireBytes();
      sameDecoding(bytesToBase64(bytes), n, 3);
      sameDecoding(bytesToBase64(bytes), selectFor(rng, n, 0.5), 3);
    }
  });

  it('when a frame of the largest size is decoded, then the masks are the reference masks', () => {
    const rng = seededRng(104);
    const n = 2_026_666;
    const masks = masksFor(rng, n, 3, SHARES[0]!);
    sameDecoding(encodeIntensities(masks).join(''), n, 3);
    const select = selectFor(rng, n, 0.68);
    sameDecoding(encodeIntensities(masks, select).join(''), select, 3);
  });
});
