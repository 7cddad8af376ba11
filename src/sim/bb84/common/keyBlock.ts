/**
 * The record the BB84 post-processing stages pass along. A block carries its own state (stage), the number of bits
 * disclosed about it over the classical channel (error-correction parities, the verification tag) and its QBER
 * estimate, so privacy amplification sizes its output from what was actually leaked.
 *
 * Stage contract: each stage is a pure function that takes a KeyBlock (plus the peer's message and exchanged seeds)
 * and returns a `StageOutcome<KeyBlock>`:
 * - `{ ok: true, value }`: the block advanced to the next stage;
 * - `{ ok: false, dropped: true, code, reason }`: the protocol decided to discard the block on purpose (QBER above
 *   the abort threshold, verification tags differ, no secret key left). This is a normal result, not an error;
 * - a thrown exception is a failure: a bug or malformed input (wrong stage, wrong seed length, ...).
 */
import type { BitArray } from './bits.js';

export const KEY_BLOCK_STAGES = ['raw', 'sifted', 'estimated', 'corrected', 'verified', 'amplified'] as const;
export type KeyBlockStage = (typeof KEY_BLOCK_STAGES)[number];

export interface KeyBlock {
  /** Identifies the block at both ends (e.g. `${keyStreamId}:${round}`). */
  readonly blockId: string;
  readonly stage: KeyBlockStage;
  /** This end's key bits at this stage. */
  readonly bits: BitArray;
  /**
   * Bits disclosed about `bits` over the classical channel and not removed from the key: error-correction parities
   * and verification tags. Sampled (estimation) bits are removed from the key, so they are not counted here.
   */
  readonly leakedBits: number;
  /** Length of the sifted key before sampling. */
  readonly siftedLength?: number;
  /** Number of bits disclosed and removed for parameter estimation. */
  readonly sampleSize?: number;
  /** Errors observed in the sample. */
  readonly sampleErrors?: number;
  /** QBER measured on the sample. */
  readonly qberEstimate?: number;
  /** Upper confidence bound on the error rate of the remaining bits (failure probability epsPE). */
  readonly qberUpper?: number;
}

export type DropCode = 'qber-too-high' | 'reconciliation-failed' | 'verify-mismatch' | 'no-secret-key';

export type StageOutcome<T> = { ok: true; value: T } | { ok: false; dropped: true; code: DropCode; reason: string };

export function kept<T>(value: T): StageOutcome<T> {
  return { ok: true, value };
}

export function dropped<T = never>(code: DropCode, reason: string): StageOutcome<T> {
  return { ok: false, dropped: true, code, reason };
}

export function stageIndex(stage: KeyBlockStage): number {
  return KEY_BLOCK_STAGES.indexOf(stage);
}

/** A new block at `stage` with nothing leaked yet. */
export function newKeyBlock(blockId: string, stage: KeyBlockStage, bits: BitArray, extra: Partial<Omit<KeyBlock, 'blockId' | 'stage' | 'bits'>> = {}): KeyBlock {
  const block: KeyBlock = { leakedBits: 0, ...extra, blockId, stage, bits };
  checkLeak(block.leakedBits);
  return block;
}

/** Throws unless the block is at `expected` (calling a stage out of order is a failure, not a drop). */
export function requireStage(block: KeyBlock, expected: KeyBlockStage, stageName: string): void {
  if (block.stage !== expected) throw new Error(`${stageName}: block ${block.blockId} is at stage '${block.stage}', expected '${expected}'`);
}

/** The block moved forward to `stage` with some fields changed; never moves backwards. */
export function advance(block: KeyBlock, stage: KeyBlockStage, changes: Partial<Omit<KeyBlock, 'blockId' | 'stage'>>): KeyBlock {
  if (stageIndex(stage) <= stageIndex(block.stage)) throw new Error(`advance: cannot move block ${block.blockId} from '${block.stage}' to '${stage}'`);
  const next: KeyBlock = { ...block, ...changes, blockId: block.blockId, stage };
  checkLeak(next.leakedBits);
  return next;
}

function checkLeak(leak: number): void {
  if (!Number.isSafeInteger(leak) || leak < 0) throw new RangeError(`leakedBits must be a non-negative integer, got ${leak}`);
}
