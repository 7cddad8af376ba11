/**
 * Everything random in a Cascade pass is derived from the 32-byte shuffle seed Alice sends: SHA-256(domain, seed,
 * pass, n) is the pass's root; labelled digests of it seed the generators of its separate jobs.
 */
import { createHash } from 'node:crypto';
import { Xoshiro128 } from './xoshiro128.js';

// v3: long keys in bucket order, no shuffle inside the buckets (v2: Fisher-Yates inside each bucket; v1: one
// generator per job). Peers of different versions order passes differently: their blocks fail verification.
export const PERMUTATION_DOMAIN = Buffer.from('qkdm/cascade/permutation/v3', 'utf8');

/** Generator label of a two-block pass's member set (see labelledRng). */
export const MEMBERS_LABEL = 0x100;
/** Generator label of the affine first pass's multiplier and offset. */
export const AFFINE_LABEL = 0x101;

/** SHA-256(domain, seed, pass, n): the root of everything random in pass `pass`. */
export function passDigest(seed: Uint8Array, pass: number, n: number): Buffer {
  const info = Buffer.alloc(8);
  info.writeUInt32BE(pass >>> 0, 0);
  info.writeUInt32BE(n >>> 0, 4);
  return createHash('sha256').update(PERMUTATION_DOMAIN).update(seed).update(info).digest();
}

/** A generator of its own for one job of a pass (the shuffle itself uses passDigest directly). */
export function labelledRng(digest: Buffer, label: number): Xoshiro128 {
  return new Xoshiro128(labelDigest(digest, label));
}

/** SHA-256(digest, label): the seed of one job of a pass. */
export function labelDigest(digest: Buffer, label: number): Buffer {
  const info = Buffer.alloc(4);
  info.writeUInt32BE(label, 0);
  return createHash('sha256').update(digest).update(info).digest();
}
