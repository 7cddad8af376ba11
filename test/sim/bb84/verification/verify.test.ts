import { describe, expect, it } from 'vitest';
import { BitArray } from '../../../../src/sim/bb84/common/bits.js';
import { newKeyBlock } from '../../../../src/sim/bb84/common/keyBlock.js';
import { randomBelow, randomBits, seededRng } from '../../../../src/sim/bb84/common/rng.js';
import { newVerifySeed, tagsEqual, verifyBlock, verifyCollisionProbability, verifyTag, VERIFY_TAG_BITS, VERIFY_TAG_BYTES } from '../../../../src/sim/bb84/verification/verify.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** The definition in BigInt, word by word: H = m_1·r^L + ... + m_L·r + len (mod 2^61 - 1). */
function referenceTag(bits: BitArray, seed: Uint8Array): string {
  const p = (1n << 61n) - 1n;
  let r = 0n;
  for (let i = 7; i >= 0; i--) r = (r << 8n) | BigInt(seed[i]!);
  r = (r & p) % p;
  let h = 0n;
  for (const word of bits.words) h = (h * r + BigInt(word)) % p;
  h = (h * r + BigInt(bits.length)) % p;
  return h.toString(16).padStart(16, '0');
}

/** An 8-byte seed whose low 61 bits are v (little-endian, as hashKey reads it). */
function seedOf(v: bigint): Uint8Array {
  const out = new Uint8Array(8);
  for (let i = 0; i < 8; i++) out[i] = Number((v >> BigInt(8 * i)) & 0xffn);
  return out;
}

describe('verifyTag', () => {
  it('when two keys are equal, then their tags are equal and 8 bytes long', () => {
    const rng = seededRng(1);
    for (const n of [1, 31, 32, 33, 1000, 100_000]) {
      const key = randomBits(rng, n);
      const seed = newVerifySeed(rng);
      const tag = verifyTag(key, seed);
      expect(tag.length).toBe(VERIFY_TAG_BYTES);
      expect(hex(verifyTag(key.clone(), Uint8Array.from(seed)))).toBe(hex(tag));
    }
  });

  it('when one bit is flipped, then the tag changes (many trials, fresh seeds)', () => {
    const rng = seededRng(2);
    let same = 0;
    for (let t = 0; t < 2000; t++) {
      const key = randomBits(rng, 1 + randomBelow(rng, 5000));
      const other = key.clone();
      other.flip(randomBelow(rng, key.length));
      const seed = newVerifySeed(rng);
      if (tagsEqual(verifyTag(key, seed), verifyTag(other, seed))) same++;
    }
    expect(same).toBe(0);
  });

  it('when the seed changes, then the tag of the same key changes', () => {
    const rng = seededRng(3);
    const key = randomBits(rng, 10_000);
    const tags = new Set<string>();
    for (let t = 0; t < 1000; t++) tags.add(hex(verifyTag(key, newVerifySeed(rng))));
    expect(tags.size).toBe(1000);
  });

  it('when keys differ only by a trailing zero bit, then the length block tells them apart', () => {
    const seed = newVerifySeed(seededRng(4));
    const a = new BitArray(64);
    const b = new BitArray(65);
    a.set(3, 1);
    b.set(3, 1);
    expect(tagsEqual(verifyTag(a, seed), verifyTag(b, seed))).toBe(false);
  });

  it('when computed, then the tag equals the BigInt definition (random keys, all-ones words, extreme seeds)', () => {
    const rng = seededRng(5);
    const p = (1n << 61n) - 1n;
    const seeds = [0n, 1n, 2n, p - 1n, p, (1n << 64n) - 1n, 1n << 60n, (1n << 42n) - 1n, 1n << 42n];
    const keys: BitArray[] = [new BitArray(0)];
    for (const n of [1, 31, 32, 33, 64, 1000, 4097, 100_003]) keys.push(randomBits(rng, n));
    for (const n of [70_000, 1_000_000]) {
      const ones = new BitArray(n);
      ones.words.fill(0xffffffff);
      keys.push(ones.clearTail());
    }
    for (const key of keys) {
      for (const v of seeds) expect(hex(verifyTag(key, seedOf(v)))).toBe(referenceTag(key, seedOf(v)));
      for (let t = 0; t < 20; t++) {
        const seed = newVerifySeed(rng);
        expect(hex(verifyTag(key, seed))).toBe(referenceTag(key, seed));
      }
    }
  });

  it('when the seed has the wrong size, then it throws', () => {
    expect(() => verifyTag(new BitArray(8), new Uint8Array(7))).toThrow(RangeError);
  });

  it('when asked for the collision bound, then a 1 Mbit key is below 1e-13', () => {
    expect(verifyCollisionProbability(1 << 20)).toBeLessThan(1e-13);
    expect(verifyCollisionProbability(1 << 20)).toBeGreaterThan(0);
  });
});

describe('verifyBlock', () => {
  it('when the peer tag matches, then the block is verified and the tag is charged to the leak', () => {
    const rng = seededRng(5);
    const key = randomBits(rng, 5000);
    const seed = newVerifySeed(rng);
    const r = verifyBlock(newKeyBlock('v1', 'corrected', key, { leakedBits: 1234, qberUpper: 0.02 }), seed, verifyTag(key.clone(), seed));
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.value.stage).toBe('verified');
      expect(r.value.leakedBits).toBe(1234 + VERIFY_TAG_BITS);
      expect(r.value.qberUpper).toBe(0.02);
    }
  });

  it('when a residual error remains, then the block is dropped with verify-mismatch (not thrown)', () => {
    const rng = seededRng(6);
    const key = randomBits(rng, 5000);
    const bobs = key.clone();
    bobs.flip(4321);
    const seed = newVerifySeed(rng);
    const r = verifyBlock(newKeyBlock('v2', 'corrected', key), seed, verifyTag(bobs, seed));
    expect(r).toMatchObject({ ok: false, dropped: true, code: 'verify-mismatch' });
  });

  it('when the block is not corrected yet, then verifyBlock throws', () => {
    expect(() => verifyBlock(newKeyBlock('v3', 'estimated', new BitArray(8)), new Uint8Array(8), new Uint8Array(8))).toThrow(/stage/);
  });
});

describe('verification tags per block of a PA block', () => {
  it('when a PA block holds many EC blocks, then each gets enough independent tags to keep the union bound under the eps_cor budget', async () => {
    const { verifyTagCount, verifyTags, MAX_VERIFY_TAGS, VERIFY_SEED_BYTES } = await import('../../../../src/sim/bb84/verification/verify.js');
    // One 64-bit tag of a 1 Mbit block: 2.7e-14, more than eps_cor = 1e-15 alone; two tags: 7e-28 each.
    expect(verifyCollisionProbability(1e6)).toBeGreaterThan(1e-15);
    expect(verifyTagCount(1e6, 4000, 5e-16)).toBe(2);
    expect(verifyTagCount(100, 1, 0.5)).toBe(1);
    const t = verifyTagCount(2 ** 26, 100_000, 5e-16);
    expect(verifyCollisionProbability(2 ** 26) ** t * 100_000).toBeLessThanOrEqual(5e-16);
    expect(t).toBeLessThanOrEqual(MAX_VERIFY_TAGS);
    const bits = randomBits(seededRng(8), 5000);
    const seeds = new Uint8Array(2 * VERIFY_SEED_BYTES).map((_, i) => i * 37);
    const tags = verifyTags(bits, seeds);
    expect(hex(tags)).toBe(hex(verifyTag(bits, seeds.subarray(0, 8))) + hex(verifyTag(bits, seeds.subarray(8))));
    expect(() => verifyTags(bits, new Uint8Array(9))).toThrow(RangeError);
  });
});
