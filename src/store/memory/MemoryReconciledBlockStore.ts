/**
 * ReconciledBlockStore in process memory, for tests and the fake device: nothing survives the
 * process. It keeps its own copies of the bits and zeroes them when a block is consumed or its
 * stream deleted (hygiene: the engine may still hold copies it made itself).
 */
import { StoreError } from '../errors.js';
import type { ReconciledBlock, ReconciledBlockStore } from '../ReconciledBlockStore.js';
import { checkBlockIds, checkReconciledBlock, checkReconciledStreamId, conflictMessage, consumedMessage, sameBlockContent } from '../reconciledBlockChecks.js';

function copy(block: ReconciledBlock): ReconciledBlock {
  return { blockId: block.blockId, bits: Uint8Array.from(block.bits), bitLength: block.bitLength, meta: block.meta, storedAt: block.storedAt };
}

export class MemoryReconciledBlockStore implements ReconciledBlockStore {
  /** Per stream, blocks by blockId; a Map keeps insertion (= append) order. */
  private readonly blocks = new Map<string, Map<string, ReconciledBlock>>();
  /** Per stream, the blockIds consumed from it. */
  private readonly consumed = new Map<string, Set<string>>();
  private closed = false;

  async append(keyStreamId: string, block: ReconciledBlock): Promise<void> {
    checkReconciledStreamId(keyStreamId);
    checkReconciledBlock(block);
    this.checkOpen();
    if (this.consumed.get(keyStreamId)?.has(block.blockId)) throw new StoreError('conflict', consumedMessage('memory', block.blockId));
    let stream = this.blocks.get(keyStreamId);
    const held = stream?.get(block.blockId);
    if (held) {
      if (sameBlockContent(held, block)) return;
      throw new StoreError('conflict', conflictMessage('memory', block.blockId));
    }
    if (!stream) this.blocks.set(keyStreamId, (stream = new Map()));
    stream.set(block.blockId, copy(block));
  }

  async list(keyStreamId: string): Promise<ReconciledBlock[]> {
    checkReconciledStreamId(keyStreamId);
    this.checkOpen();
    return [...(this.blocks.get(keyStreamId)?.values() ?? [])].map(copy);
  }

  async consume(keyStreamId: string, blockIds: readonly string[]): Promise<void> {
    checkReconciledStreamId(keyStreamId);
    checkBlockIds(blockIds);
    this.checkOpen();
    const stream = this.blocks.get(keyStreamId);
    if (!stream) return;
    for (const id of blockIds) {
      const held = stream.get(id);
      if (!held) continue;
      held.bits.fill(0);
      stream.delete(id);
      let consumed = this.consumed.get(keyStreamId);
      if (!consumed) this.consumed.set(keyStreamId, (consumed = new Set()));
      consumed.add(id);
    }
    if (stream.size === 0) this.blocks.delete(keyStreamId);
  }

  async deleteStream(keyStreamId: string): Promise<void> {
    checkReconciledStreamId(keyStreamId);
    this.checkOpen();
    for (const block of this.blocks.get(keyStreamId)?.values() ?? []) block.bits.fill(0);
    this.blocks.delete(keyStreamId);
    this.consumed.delete(keyStreamId);
  }

  async streams(): Promise<string[]> {
    this.checkOpen();
    return [...new Set([...this.blocks.keys(), ...this.consumed.keys()])];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const stream of this.blocks.values()) for (const block of stream.values()) block.bits.fill(0);
    this.blocks.clear();
    this.consumed.clear();
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreError('unavailable', 'memory: store is closed');
  }
}
