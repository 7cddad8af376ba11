/**
 * The rules every ReconciledBlockStore adapter applies before any I/O, and the content comparison
 * behind idempotent appends. Messages name the field and the rule, never a value of `bits` (key
 * material) and never the meta text.
 */
import { timingSafeEqual } from 'node:crypto';
import {
  BLOCK_ID_PATTERN,
  MAX_RECONCILED_BLOCK_BITS,
  MAX_RECONCILED_BLOCK_META_BYTES,
  RECONCILED_STREAM_ID_PATTERN,
  type ReconciledBlock,
} from './ReconciledBlockStore.js';

export function checkReconciledStreamId(keyStreamId: string): void {
  if (typeof keyStreamId !== 'string' || !RECONCILED_STREAM_ID_PATTERN.test(keyStreamId)) {
    throw new RangeError('keyStreamId must match ^[A-Za-z0-9_-]{1,64}$');
  }
}

export function checkBlockId(blockId: string): void {
  if (typeof blockId !== 'string' || !BLOCK_ID_PATTERN.test(blockId)) {
    throw new RangeError('blockId must match ^[A-Za-z0-9_-]{1,64}$');
  }
}

export function checkBlockIds(blockIds: readonly string[]): void {
  if (!Array.isArray(blockIds)) throw new RangeError('blockIds must be an array of block IDs');
  for (const id of blockIds) checkBlockId(id);
}

/** Throws a RangeError naming the first field that breaks the port's rules. */
export function checkReconciledBlock(block: ReconciledBlock): void {
  if (typeof block !== 'object' || block === null) throw new RangeError('block must be an object');
  checkBlockId(block.blockId);
  const { bitLength, bits, meta, storedAt } = block;
  if (!Number.isSafeInteger(bitLength) || bitLength < 0 || bitLength > MAX_RECONCILED_BLOCK_BITS) {
    throw new RangeError(`bitLength must be an integer from 0 to ${MAX_RECONCILED_BLOCK_BITS}`);
  }
  if (!(bits instanceof Uint8Array)) throw new RangeError('bits must be a Uint8Array');
  if (bits.byteLength !== Math.ceil(bitLength / 8)) throw new RangeError('bits must hold exactly ceil(bitLength / 8) bytes');
  if (typeof meta !== 'string') throw new RangeError('meta must be a JSON string');
  const metaBytes = Buffer.from(meta, 'utf8');
  if (metaBytes.length > MAX_RECONCILED_BLOCK_META_BYTES) {
    throw new RangeError(`meta must be at most ${MAX_RECONCILED_BLOCK_META_BYTES} bytes of UTF-8`);
  }
  // A lone surrogate would not survive UTF-8 storage unchanged, and an idempotent repeat would then conflict.
  if (metaBytes.toString('utf8') !== meta) throw new RangeError('meta must be well-formed Unicode');
  try {
    JSON.parse(meta);
  } catch {
    throw new RangeError('meta must be valid JSON');
  }
  if (!Number.isSafeInteger(storedAt) || storedAt < 0) throw new RangeError('storedAt must be a non-negative integer (ms since the epoch)');
}

/** Same bits, bitLength and meta (storedAt is not content: a repeat keeps the first one). */
export function sameBlockContent(a: Pick<ReconciledBlock, 'bits' | 'bitLength' | 'meta'>, b: Pick<ReconciledBlock, 'bits' | 'bitLength' | 'meta'>): boolean {
  if (a.bitLength !== b.bitLength || a.meta !== b.meta || a.bits.byteLength !== b.bits.byteLength) return false;
  return timingSafeEqual(a.bits, b.bits);
}

/** The error for a repeated blockId with other content; names the block, never its bits. */
export function conflictMessage(adapter: string, blockId: string): string {
  return `${adapter}: reconciled block ${blockId} is already stored with different content`;
}

/** The error for appending a blockId that was consumed from the stream. */
export function consumedMessage(adapter: string, blockId: string): string {
  return `${adapter}: reconciled block ${blockId} was consumed already and cannot be appended again`;
}
