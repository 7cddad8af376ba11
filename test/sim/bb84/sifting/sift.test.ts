import { describe, expect, it } from 'vitest';
import { BitArray } from '../../../../src/sim/bb84/common/bits.js';
import { allDetected, transmit, type ChannelParams } from '../../../../src/sim/bb84/detection/channel.js';
import { bernoulliBits, randomBits, seededRng } from '../../../../src/sim/bb84/common/rng.js';
import { aliceSiftReply, bobSiftRequest, compressBits, invertBits, sift, siftAlice, siftBob } from '../../../../src/sim/bb84/sifting/sift.js';
import { prepareSource } from '../../../../src/sim/bb84/source/source.js';

const PERFECT: ChannelParams = { lengthKm: 1, attenuationDbPerKm: 0.2, detectorEfficiency: 0.6, darkCountProbability: 0, misalignmentError: 0, meanPhotonNumber: 0.5 };
const NOISY: ChannelParams = { ...PERFECT, darkCountProbability: 1e-4, misalignmentError: 0.03 };

function naiveCompress(src: BitArray, mask: BitArray): BitArray {
  const bits: number[] = [];
  for (let i = 0; i < mask.length; i++) if (mask.get(i)) bits.push(src.get(i));
  const out = new BitArray(bits.length);
  bits.forEach((b, i) => out.set(i, b));
  return out;
}

describe('compressBits', () => {
  it('when masks of any density and length are applied, then the result equals bit-by-bit selection', () => {
    const rng = seededRng(1);
    for (const n of [0, 1, 7, 31, 32, 33, 64, 65, 100, 1000, 4097]) {
      for (const p of [0, 0.01, 0.3, 0.5, 0.9, 0.999, 1]) {
        const src = randomBits(rng, n);
        const mask = bernoulliBits(rng, n, p);
        const got = compressBits(src, mask);
        expect(got.equals(naiveCompress(src, mask)), `n=${n} p=${p}`).toBe(true);
        expect(got.words.length === 0 || got.words[got.words.length - 1]! >>> (got.length & 31) === 0 || (got.length & 31) === 0).toBe(true);
      }
    }
  });

  it('when a mask is inverted, then the two selections partition the source', () => {
    const rng = seededRng(2);
    const src = randomBits(rng, 999);
    const mask = bernoulliBits(rng, 999, 0.4);
    expect(compressBits(src, mask).length + compressBits(src, invertBits(mask)).length).toBe(999);
    expect(invertBits(mask).popcount()).toBe(999 - mask.popcount());
  });
});

describe('sift', () => {
  it('when the channel is error-free, then sifting keeps about half of the detections and both keys are equal', () => {
    const rng = seededRng(3);
    const alice = prepareSource(200_000, rng);
    const bob = transmit(alice, PERFECT, 0, rng);
    const req = bobSiftRequest(bob.detected, bob.bobBases);
    expect(req.bases.length).toBe(bob.detectedCount);
    const reply = aliceSiftReply(alice.bases, req);
    const a = siftAlice(alice.bits, req, reply);
    const b = siftBob(bob.bobBits, bob.detected, reply);
    expect(Math.abs(a.length / bob.detectedCount - 0.5)).toBeLessThan(5 * Math.sqrt(0.25 / bob.detectedCount));
    expect(a.equals(b)).toBe(true);
  });

  it('when the channel has errors, then the keys differ only at the channel error rate, and both halves agree with sift()', () => {
    const rng = seededRng(4);
    const alice = prepareSource(300_000, rng);
    const bob = transmit(alice, NOISY, 0, rng);
    const req = bobSiftRequest(bob.detected, bob.bobBases);
    const reply = aliceSiftReply(alice.bases, req);
    const a = siftAlice(alice.bits, req, reply);
    const b = siftBob(bob.bobBits, bob.detected, reply);
    const combined = sift(alice.bits, alice.bases, bob.bobBases, bob.detected);
    expect(combined.sifted.equals(a)).toBe(true);
    expect(combined.kept.popcount()).toBe(a.length);
    const qber = a.hammingDistance(b) / a.length;
    expect(qber).toBeGreaterThan(0.01);
    expect(qber).toBeLessThan(0.05);
    // sifted positions are exactly the detected pulses with matching bases
    let expected = 0;
    for (let i = 0; i < alice.bits.length; i++) if (bob.detected.get(i) && alice.bases.get(i) === bob.bobBases.get(i)) expected++;
    expect(a.length).toBe(expected);
  });

  it('when every pulse is detected (detections-only path), then an all-ones mask sifts the compact arrays', () => {
    const rng = seededRng(5);
    const aliceBits = randomBits(rng, 1001);
    const aliceBases = randomBits(rng, 1001);
    const bobBases = randomBits(rng, 1001);
    const { sifted, kept } = sift(aliceBits, aliceBases, bobBases, allDetected(1001));
    let matches = 0;
    for (let i = 0; i < 1001; i++) if (aliceBases.get(i) === bobBases.get(i)) matches++;
    expect(sifted.length).toBe(matches);
    expect(kept.length).toBe(1001);
  });

  it('when a message is inconsistent, then sifting throws', () => {
    const detected = allDetected(10);
    const req = bobSiftRequest(detected, new BitArray(10));
    expect(() => aliceSiftReply(new BitArray(10), { ...req, bases: new BitArray(9) })).toThrow(RangeError);
    expect(() => siftBob(new BitArray(10), detected, { match: new BitArray(3) })).toThrow(RangeError);
    expect(() => sift(new BitArray(10), new BitArray(10), new BitArray(9), detected)).toThrow(RangeError);
  });
});
