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
import type { BitArray } from './bits.js';
import { advance, dropped, kept, requireStage, type KeyBlock, type StageOutcome } from './keyBlock.js';
import { cryptoRng, type Rng } from './rng.js';

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

function hashKey(seed: Uint8Array): bigint {
  if (seed.length !== VERIFY_SEED_BYTES) throw new RangeError(`verify seed must be ${VERIFY_SEED_BYTES} bytes, got ${seed.length}`);
  let v = 0n;
  for (let i = VERIFY_SEED_BYTES - 1; i >= 0; i--) v = (v << 8n) | BigInt(seed[i]!);
  return (v & P) % P;
}

/** The 8-byte tag (big-endian value below 2^61) of `bits` under `seed`. */
export function verifyTag(bits: BitArray, seed: Uint8Array): Uint8Array {
  const r = hashKey(seed);
  const w = bits.words;
  let h = 0n;
  // Invariant: h < 2^62. h·r + m < 2^123; two Mersenne folds bring it below 2^61 + 2.
  for (let i = 0; i < w.length; i++) {
    h = h * r + BigInt(w[i]!);
    h = (h & P) + (h >> 61n);
    h = (h & P) + (h >> 61n);
  }
  h = h * r + BigInt(bits.length);
  h = (h & P) + (h >> 61n);
  h = (h & P) + (h >> 61n);
  h %= P;
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
