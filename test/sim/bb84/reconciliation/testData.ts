/**
 * Deterministic test data for the Cascade tests (cascade.test.ts, pooling.test.ts): the golden results of
 * pooling.test.ts depend on exactly these generators.
 */
import { BitArray } from '../../../../src/sim/bb84/common/bits.js';

/** splitmix32-style generator: tests must be reproducible, so no CSPRNG here. */
export function testRng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export function seedBytes(seed: number): Uint8Array {
  const next = testRng(seed * 7919 + 1);
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i += 4) new DataView(out.buffer).setUint32(i, next());
  return out;
}

/** Alice's random key and Bob's copy with exactly round(q n) errors at distinct uniformly random positions. */
export function keyPair(n: number, qber: number, seed: number): { alice: BitArray; bob: BitArray; errors: number } {
  const next = testRng(seed);
  const alice = new BitArray(n);
  for (let w = 0; w < alice.words.length; w++) alice.words[w] = next();
  alice.clearTail();
  const bob = alice.clone();
  const errors = Math.round(qber * n);
  const pos = new Int32Array(n);
  for (let i = 0; i < n; i++) pos[i] = i;
  for (let i = 0; i < errors; i++) {
    const j = i + (next() % (n - i));
    const t = pos[i]!;
    pos[i] = pos[j]!;
    pos[j] = t;
    bob.flip(pos[i]!);
  }
  return { alice, bob, errors };
}
