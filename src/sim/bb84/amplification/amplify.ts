/**
 * Stage 7: privacy amplification of a verified KeyBlock to the finite-key length, with a universal hash family
 * (hashFamilies.ts: Toeplitz or modified Toeplitz) computed as a convolution (toeplitz.ts; engines ntt.ts, fft.ts).
 * This file is the stage over a KeyBlock and the stage's public face.
 */
import type { BitArray } from '../common/bits.js';
import { advance, dropped, kept, requireStage, type KeyBlock, type StageOutcome } from '../common/keyBlock.js';
import { secretKeyLength } from '../estimation/finiteKey.js';
import { DEFAULT_PA_HASH_FAMILY, paHash, type PaHashFamily } from './hashFamilies.js';
import type { ToeplitzOptions } from './toeplitz.js';

export { MAX_FFT_SIZE } from './fft.js';
export {
  DEFAULT_PA_HASH_FAMILY,
  modifiedToeplitzHash,
  modifiedToeplitzHashNaive,
  newToeplitzSeed,
  PA_HASH_FAMILIES,
  paHash,
  paSeedLength,
  type PaHashFamily,
} from './hashFamilies.js';
export { MAX_NTT_SIZE, NTT_PRIME } from './ntt.js';
export {
  DEFAULT_TOEPLITZ_ENGINE,
  releaseToeplitzCaches,
  toeplitzHash,
  toeplitzHashNaive,
  toeplitzSeedLength,
  toeplitzWorkspaceIsClear,
  type ToeplitzEngine,
  type ToeplitzOptions,
} from './toeplitz.js';

export interface AmplifyParams {
  /** Error-verification failure probability (bound of the verify tag). */
  epsEC: number;
  /** Privacy-amplification security parameter. */
  epsPA: number;
  /** Hash family (default DEFAULT_PA_HASH_FAMILY). */
  family?: PaHashFamily;
}

/** Output length both ends compute for a verified block: the finite-key formula on its remaining bits and leak. */
export function amplifiedLength(block: KeyBlock, params: AmplifyParams): number {
  if (block.qberUpper === undefined) throw new Error(`amplify: block ${block.blockId} has no qberUpper (was it estimated?)`);
  return secretKeyLength({ n: block.bits.length, qberUpper: block.qberUpper, leakEC: block.leakedBits, epsEC: params.epsEC, epsPA: params.epsPA });
}

/**
 * The stage over a KeyBlock: 'verified' -> 'amplified' with l = amplifiedLength(block, params) bits, or dropped
 * when l = 0 (then the seed is not used). The seed must have paSeedLength(family, n, l) bits (newToeplitzSeed).
 */
export function amplifyBlock(block: KeyBlock, params: AmplifyParams, seedBits: BitArray, options: ToeplitzOptions = {}): StageOutcome<KeyBlock> {
  requireStage(block, 'verified', 'amplifyBlock');
  const l = amplifiedLength(block, params);
  if (l === 0) {
    return dropped('no-secret-key', `no secret key left: ${block.bits.length} bits, qberUpper ${block.qberUpper}, ${block.leakedBits} bits leaked`);
  }
  return kept(advance(block, 'amplified', { bits: paHash(params.family ?? DEFAULT_PA_HASH_FAMILY, block.bits, seedBits, l, options) }));
}
