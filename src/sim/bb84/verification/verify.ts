/**
 * Stage 6: error verification after correction. One end picks a fresh random seed (CSPRNG) and both compare a
 * universal hash of their corrected keys. Different tags drop the block; equal tags pass it on with the tag counted
 * as leaked.
 *
 * Hash family: polynomial evaluation over the prime field GF(p), p = 2^61 - 1. The key is read as 32-bit blocks
 * m_1..m_L (its packed words, LSB-first) followed by one block holding its bit length, and
 *   H_r(m) = m_1·r^L + m_2·r^(L-1) + ... + m_L·r + len  (mod p),
 * with r the seed's low 61 bits reduced mod p. Two different keys of at most L blocks collide only if r is a root
 * of a non-zero polynomial of degree ≤ L, so for a key of n bits
 *   epsEC = Pr[collision] ≤ (ceil(n/32) + 1) · 2/2^61     (r hits each residue with probability ≤ 2/2^61),
 * about 2.7e-14 for a 1 Mbit key. The tag is sent as 8 bytes and counted as VERIFY_TAG_BITS = 64 leaked bits.
 */
import { timingSafeEqual } from 'node:crypto';
import type { BitArray } from '../common/bits.js';
import { advance, dropped, kept, requireStage, type KeyBlock, type StageOutcome } from '../common/keyBlock.js';
import { cryptoRng, type Rng } from '../common/rng.js';

export const VERIFY_SEED_BYTES = 8;
export const VERIFY_TAG_BYTES = 8;
/** Bits the tag discloses, charged to the block's leak. */
export const VERIFY_TAG_BITS = 64;

const P = (1n << 61n) - 1n;

/** A fresh hash seed from the CSPRNG. */
export function newVerifySeed(rng: Rng = cryptoRng()): Uint8Array {
  const a = rng.nextUint32();
  const b = rng.nextUint32();
  return Uint8Array.from([a, a >>> 8, a >>> 16, a >>> 24, b, b >>> 8, b >>> 16, b >>> 24]);
}

/** Upper bound on the probability that two different keys of `nBits` bits get the same tag. */
export function verifyCollisionProbability(nBits: number): number {
  return (Math.ceil(nBits / 32) + 1) * 2 ** -60;
}

/** Most independent tags one block is checked with (two already bound a 2^26-bit block's collision by 2^-78). */
export const MAX_VERIFY_TAGS = 4;

/**
 * Independent tags (each with its own fresh seed) a block of `nBits` bits needs so that `blocks` such blocks
 * together collide with probability at most `budget` (union bound): the smallest t with
 * verifyCollisionProbability(nBits)^t · blocks <= budget. The PA block's eps_cor budget is shared this way by every
 * EC block it is made of (docs/bb84.md, "What eps_cor covers").
 */
export function verifyTagCount(nBits: number, blocks: number, budget: number): number {
  if (!(budget > 0 && budget < 1)) throw new RangeError(`verifyTagCount: budget must be in (0, 1), got ${budget}`);
  if (!(Number.isSafeInteger(blocks) && blocks >= 1)) throw new RangeError(`verifyTagCount: blocks must be a positive integer, got ${blocks}`);
  const p = verifyCollisionProbability(nBits);
  for (let t = 1; t <= MAX_VERIFY_TAGS; t++) if (p ** t * blocks <= budget) return t;
  throw new RangeError(`verifyTagCount: ${MAX_VERIFY_TAGS} tags of a ${nBits}-bit block cannot bound ${blocks} blocks by ${budget}`);
}

/** `seeds.length / VERIFY_SEED_BYTES` tags of `bits`, one per seed, concatenated. */
export function verifyTags(bits: BitArray, seeds: Uint8Array): Uint8Array {
  if (seeds.length === 0 || seeds.length % VERIFY_SEED_BYTES !== 0) throw new RangeError(`verify seeds must be a positive multiple of ${VERIFY_SEED_BYTES} bytes, got ${seeds.length}`);
  const count = seeds.length / VERIFY_SEED_BYTES;
  const out = new Uint8Array(count * VERIFY_TAG_BYTES);
  for (let i = 0; i < count; i++) out.set(verifyTag(bits, seeds.subarray(i * VERIFY_SEED_BYTES, (i + 1) * VERIFY_SEED_BYTES)), i * VERIFY_TAG_BYTES);
  return out;
}

function hashKey(seed: Uint8Array): bigint {
  if (seed.length !== VERIFY_SEED_BYTES) throw new RangeError(`verify seed must be ${VERIFY_SEED_BYTES} bytes, got ${seed.length}`);
  let v = 0n;
  for (let i = VERIFY_SEED_BYTES - 1; i >= 0; i--) v = (v << 8n) | BigInt(seed[i]!);
  return (v & P) % P;
}

/** Limb base of the evaluation: values mod p are held as h0 + h1·2^21 + h2·2^42. */
const LIMB = 2 ** 21;
const TOP_LIMB = 2 ** 19; // 2^42 · 2^19 = 2^61 ≡ 1 (mod p)

/**
 * The 8-byte tag (big-endian value below 2^61) of `bits` under `seed`.
 *
 * Horner's rule, h ← h·r + m, in exact double arithmetic instead of BigInt (which allocates on every operation and
 * took about 2.5x as long: 3.4 against 1.3 ms per Mbit in bench/bb84-stages.ts): h and r are split into limbs of
 * 21, 21 and 19 bits; the nine limb products are below 2^43 and every sum below 2^47, so nothing is rounded. Columns of weight 2^63 and 2^84 fold down as 2^63 ≡ 4 and
 * 2^84 ≡ 4·2^21 (mod p), carries go up a limb at a time, and the carry out of the top limb (weight 2^61 ≡ 1) goes
 * back into the bottom one, twice per block so that each limb starts the next block within one of its width
 * (h0 ≤ 2^21, h1 < 2^21, h2 < 2^19). h is not reduced below p until the end, so the result is the same value mod p
 * as the definition; a test checks it against BigInt, the extreme seeds and all-ones keys included.
 */
export function verifyTag(bits: BitArray, seed: Uint8Array): Uint8Array {
  const r = hashKey(seed);
  const r0 = Number(r & 0x1fffffn), r1 = Number((r >> 21n) & 0x1fffffn), r2 = Number(r >> 42n);
  const w = bits.words;
  let h0 = 0, h1 = 0, h2 = 0;
  for (let i = 0; i <= w.length; i++) {
    // The blocks are the packed words, then one block holding the bit length.
    const m = i < w.length ? w[i]! : bits.length;
    let c0 = h0 * r0 + 4 * (h1 * r2 + h2 * r1) + (m & (LIMB - 1)); // m < 2^32: its low 21 bits and the rest
    let c1 = h0 * r1 + h1 * r0 + 4 * (h2 * r2) + (m >>> 21);
    let c2 = h0 * r2 + h1 * r1 + h2 * r0;
    let q = Math.floor(c0 / LIMB);
    h0 = c0 - q * LIMB;
    c1 += q;
    q = Math.floor(c1 / LIMB);
    h1 = c1 - q * LIMB;
    c2 += q;
    q = Math.floor(c2 / TOP_LIMB);
    h2 = c2 - q * TOP_LIMB;
    h0 += q;
    // q reaches 2^28 (c2 ≈ h0·r2): a second, short carry round keeps the limbs at 21/21/19 bits (+1), or h0
    // would feed on itself from block to block and eventually leave the exact range.
    q = Math.floor(h0 / LIMB);
    h0 -= q * LIMB;
    h1 += q;
    q = Math.floor(h1 / LIMB);
    h1 -= q * LIMB;
    h2 += q;
    q = Math.floor(h2 / TOP_LIMB);
    h2 -= q * TOP_LIMB;
    h0 += q;
  }
  let h = (BigInt(h0) + (BigInt(h1) << 21n) + (BigInt(h2) << 42n)) % P;
  const tag = new Uint8Array(VERIFY_TAG_BYTES);
  for (let i = VERIFY_TAG_BYTES - 1; i >= 0; i--) {
    tag[i] = Number(h & 0xffn);
    h >>= 8n;
  }
  return tag;
}

export function tagsEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The stage over a KeyBlock: 'corrected' -> 'verified' with VERIFY_TAG_BITS more leaked, or dropped when the peer's
 * tag differs from ours.
 */
export function verifyBlock(block: KeyBlock, seed: Uint8Array, peerTag: Uint8Array): StageOutcome<KeyBlock> {
  requireStage(block, 'corrected', 'verifyBlock');
  const mine = verifyTag(block.bits, seed);
  if (!tagsEqual(mine, peerTag)) return dropped('verify-mismatch', `verification tags differ for block ${block.blockId} (residual errors after correction)`);
  return kept(advance(block, 'verified', { leakedBits: block.leakedBits + VERIFY_TAG_BITS }));
}
