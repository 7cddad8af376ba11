/**
 * Cascade information reconciliation (Brassard & Salvail 1993) with batched parity exchange.
 *
 * Bob corrects his sifted key towards Alice's by asking her for parities of blocks of shuffled
 * positions. The classical channel is the {@link ParityOracle} interface: one call is one round trip
 * and carries every question of one "level" of the protocol:
 *   - round 1: the top-level block parities of every pass (Alice's key never changes, so asking them
 *     all at once discloses exactly the same bits as asking pass by pass; see `prefetchTopLevel`);
 *   - then one round per level of BINARY, run in lockstep over every odd block of every pass
 *     (the blocks of the current pass and the blocks of earlier passes re-opened by the cascade effect).
 *
 * Shuffles: every pass, the first included, uses its own pseudo-random order derived from the
 * 32-byte `shuffleSeed` (chosen by the initiator from a CSPRNG and sent explicitly). Shuffling the first
 * pass too protects against bursts of errors (real detectors produce them); with uniformly placed errors
 * it makes no difference. The permutation is public anyway, so the generator needs no secrecy, only
 * determinism and good mixing: SHA-256(domain, seed, pass, n) seeds a xoshiro128** generator. Long keys
 * (the default blocks) put every index into one of 256 random buckets and take the buckets in order, each
 * in index order: a pass's blocks are then random sets, which is what Cascade needs of them, in one
 * sweep (see cascadePermutation); short keys get a uniform permutation (Fisher-Yates, unbiased bounded
 * integers by rejection). Two exceptions need no permutation array: the first pass, when it has three or more blocks, uses a
 * random affine order j -> (a j + b) mod n (AffineView: spreads bursts as well, and for independent
 * errors any fixed order is as good); the passes of exactly two blocks (the n/2 passes) are a uniformly
 * random split, each block in index order (SplitView). docs/bb84.md has the table.
 *
 * Presets (measured with bench/cascade.ts, n = 10^6, QBER 2 %, both ends in one process):
 *   ORIGINAL_CASCADE         f = 1.154, ~85 round trips
 *   OPTIMIZED_CASCADE        f = 1.083, ~85 round trips   (DEFAULT_CASCADE)
 *   HIGH_EFFICIENCY_CASCADE  f = 1.038, ~490 round trips
 * f = leakedBits / (n h(q)); see efficiency().
 *
 * Conventions: passes are numbered from 0 in {@link ParityQuestion}; in pass p, position j of the
 * shuffled key holds original bit perm_p[j]. A top-level block is [b*k, min((b+1)*k, n)); a block
 * [s, e) of length >= 2 splits into [s, m) and [m, e) with m = s + ceil((e - s) / 2). BINARY asks
 * only for the left half; the right half's parity is inferred (parent xor left) and costs nothing.
 *
 * Leak accounting: every parity Alice discloses is one bit of `leakedBits` (exactly one per question).
 * Parities Bob can infer from disclosed ones (right halves; the last top-level block of every pass
 * after the first, from the parity of the whole key disclosed by pass 0) are never asked.
 *
 * Files: variants.ts (parameter sets), oracle.ts (the channel and its errors), shuffles.ts, passViews.ts,
 * passSeeds.ts and xoshiro128.ts (the pass orders), responder.ts (Alice), bobPass.ts and reconcile.ts (Bob: BINARY
 * and the cascade effect), workspace.ts (reused work arrays), efficiency.ts. This file is the stage's public face.
 */
export { efficiency } from './efficiency.js';
export { CascadeProtocolError, type CascadeErrorCode, type ParityOracle, type ParityQuestion } from './oracle.js';
export { twoBlockMembers } from './passViews.js';
export { reconcile, type CascadeResult, type PassStats } from './reconcile.js';
export { CascadeResponder, InMemoryOracle, type CascadeResponderOptions } from './responder.js';
export { cascadePermutation } from './shuffles.js';
export {
  cascadeBlockSizes,
  DEFAULT_CASCADE,
  HIGH_EFFICIENCY_CASCADE,
  MAX_PASSES,
  MIN_BLOCK_SIZE,
  OPTIMIZED_CASCADE,
  ORIGINAL_CASCADE,
  SHUFFLE_SEED_BYTES,
  type CascadeParams,
  type CascadeVariant,
} from './variants.js';
export { releaseKeyBits } from './workspace.js';
