import { describe, expect, it } from 'vitest';
import { BitArray } from '../../../../src/sim/bb84/common/bits.js';
import { bernoulliBits, randomBelow, seededRng } from '../../../../src/sim/bb84/common/rng.js';
import { decodeBlockIds, decodeCounts, decodeIntensities, decodeIntensitiesAt, encodeBlockIds, encodeCounts, encodeIntensities, expandBits } from '../../../../src/sim/bb84/protocol/decoyWire.js';
import { bytesToChunks } from '../../../../src/sim/bb84/protocol/wire.js';
import { compressBits } from '../../../../src/sim/bb84/sifting/sift.js';
import { RoundProtocolError } from '../../../../src/sim/Simulator.js';

/** Disjoint masks over n pulses, intensity k with probability p[k]. */
function randomMasks(n: number, p: number[], seed: number): BitArray[] {
  const rng = seededRng(seed);
  const masks = p.map(() => new BitArray(n));
  for (let i = 0; i < n; i++) {
    let u = randomBelow(rng, 1000) / 1000;
    let k = 0;
    while (k < p.length - 1 && u >= p[k]!) u -= p[k++]!;
    masks[k]!.set(i, 1);
  }
  return masks;
}

/** The bytes a chunk list carries, and a byte string as the chunk list the encoder would write. */
const wireBytes = (chunks: string[]): Buffer => Buffer.concat(chunks.map((c) => Buffer.from(c, 'base64')));
const chunked = (bytes: Uint8Array): string[] => bytesToChunks(bytes);

const bitsOf = (m: BitArray): string => Array.from({ length: m.length }, (_, i) => m.get(i)).join('');

describe('intensity announcements on the wire', () => {
  it('when masks of 0 to 10,000 pulses are encoded, then they decode to the same masks and cost about one bit per signal pulse', () => {
    for (const n of [0, 1, 31, 32, 33, 1000, 10_000]) {
      const masks = randomMasks(n, [0.9, 0.08, 0.02], n + 1);
      const text = encodeIntensities(masks);
      const back = decodeIntensities(text, n, 3, 'frame', 'intensities');
      expect(back.map(bitsOf)).toEqual(masks.map(bitsOf));
      if (n === 10_000) expect(wireBytes(text).length * 8).toBeLessThan(1.15 * n);
      if (n === 10_000) expect(wireBytes(text).length * 8).toBeGreaterThan(n);
    }
  });

  it('when the text is altered (trailing word, short, bits past a mask, non-canonical), then decoding names the field', () => {
    const masks = randomMasks(100, [0.6, 0.3, 0.1], 3);
    const text = encodeIntensities(masks);
    expect(text).toHaveLength(1);
    const bytes = wireBytes(text);
    const bad = [
      chunked(Buffer.concat([bytes, Buffer.alloc(4)])),
      chunked(bytes.subarray(0, bytes.length - 4)),
      (() => {
        const b = Buffer.from(bytes);
        b[15] = 0xff; // past the first mask's 100 bits (4 words, 4 bits in the last)
        return chunked(b);
      })(),
      [`${text[0]}\n`],
      [...text, ''],
      text[0], // the text itself, not a list of chunks
      123,
    ];
    for (const v of bad) {
      expect(() => decodeIntensities(v, 100, 3, 'sift', 'intensities')).toThrow(RoundProtocolError);
      expect(() => decodeIntensities(v, 100, 3, 'sift', 'intensities')).toThrow(/bb84 sift: intensities/);
    }
  });

  it('when the masks of selected pulses are encoded and decoded in place, then the text and the masks are those of the compressed masks', () => {
    const rng = seededRng(9);
    for (const n of [0, 1, 31, 32, 33, 95, 1000, 10_000]) {
      for (const density of [0, 0.05, 0.68, 1]) {
        const masks = randomMasks(n, [0.6, 0.3, 0.1], n + 7);
        const select = bernoulliBits(rng, n, density);
        const selected = masks.map((m) => compressBits(m, select));
        const text = encodeIntensities(masks, select);
        expect(text, `n=${n} density=${density}`).toEqual(encodeIntensities(selected));
        const inPlace = decodeIntensitiesAt(text, select, 3, 'sift', 'intensities');
        const decoded = decodeIntensities(text, select.popcount(), 3, 'sift', 'intensities');
        expect(inPlace.map(bitsOf)).toEqual(decoded.map((m) => bitsOf(expandBits(m, select))));
        expect(inPlace.map(bitsOf)).toEqual(masks.map((m) => bitsOf(expandBits(compressBits(m, select), select))));
      }
    }
    // The same refusals as over all pulses: a word too many or too few for the selection.
    const select = bernoulliBits(rng, 200, 0.5);
    const text = encodeIntensities(randomMasks(200, [0.6, 0.3, 0.1], 11), select);
    const bytes = wireBytes(text);
    expect(() => decodeIntensitiesAt(text, select, 3, 'sift', 'intensities')).not.toThrow();
    expect(() => decodeIntensitiesAt(chunked(Buffer.concat([bytes, Buffer.alloc(4)])), select, 3, 'sift', 'intensities')).toThrow(/bb84 sift: intensities/);
    expect(() => decodeIntensitiesAt(chunked(bytes.subarray(0, bytes.length - 4)), select, 3, 'sift', 'intensities')).toThrow(/bb84 sift: intensities/);
  });

  it('when bits are compressed to a mask and expanded again, then they land where they were', () => {
    const where = randomMasks(200, [0.3, 0.7], 5)[0]!;
    const src = randomMasks(200, [0.5, 0.5], 6)[0]!;
    const nested = compressBits(src, where);
    const back = expandBits(nested, where);
    for (let i = 0; i < 200; i++) expect(back.get(i)).toBe(where.get(i) ? src.get(i) : 0);
  });
});

describe('counts and block lists on the wire', () => {
  it('when counts round-trip, then they are equal; malformed lists name the field and the index', () => {
    expect(decodeCounts(encodeCounts([0, 17, 2 ** 40]), 3, 2 ** 50, 'sift', 'nX')).toEqual([0, 17, 2 ** 40]);
    expect(() => decodeCounts('1,2', 3, 10, 'sift', 'nX')).toThrow(/bb84 sift: nX must be 3 comma-separated counts/);
    expect(() => decodeCounts('1,02,3', 3, 10, 'sift', 'nX')).toThrow(/nX\[1\] is not a count/);
    expect(() => decodeCounts('1,2,11', 3, 10, 'sift', 'nX')).toThrow(/nX\[2\] must be an integer in \[0, 10\]/);
    expect(() => decodeCounts('1,-2,3', 3, 10, 'sift', 'nX')).toThrow(RoundProtocolError);
  });

  it('when block lists round-trip, then order is kept; duplicates, bad IDs and overlong lists are refused', () => {
    const ids = ['a1', 'B_2', 'c-3'];
    const re = /^[A-Za-z0-9_-]{1,64}$/;
    expect(decodeBlockIds(encodeBlockIds(ids), 10, re, 'amplify', 'blockIds')).toEqual(ids);
    expect(decodeBlockIds('', 10, re, 'amplify', 'blockIds')).toEqual([]);
    expect(() => decodeBlockIds('a,a', 10, re, 'amplify', 'blockIds')).toThrow(/lists a block twice/);
    expect(() => decodeBlockIds('a,b/c', 10, re, 'amplify', 'blockIds')).toThrow(/malformed block ID/);
    expect(() => decodeBlockIds('a,b,c', 2, re, 'amplify', 'blockIds')).toThrow(/more than 2 blocks/);
  });
});
