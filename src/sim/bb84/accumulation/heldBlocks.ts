/**
 * One end's accumulated EC blocks of each stream, in its ReconciledBlockStore (durable, each block used at most
 * once: see src/store/ReconciledBlockStore.ts). A block whose stored record is unreadable, of another version or
 * made under other settings (the settings hash differs) is never amplified: `held` erases it. Both ends run the
 * same settings (the frame's channelHash), so they erase the same blocks; any other difference is settled by the
 * PA step's block lists (`blocks-differ`).
 */
import type { ReconciledBlockStore } from '../../../store/ReconciledBlockStore.js';
import { BitArray } from '../common/bits.js';
import { decodeBlockRecord, encodeBlockRecord, packBits, unpackBits, type EcBlockRecord } from './blockRecord.js';

export interface HeldBlock {
  id: string;
  record: EcBlockRecord;
  /** Key bits (packed, see blockRecord.ts packBits): KEY MATERIAL, a fresh copy the caller zeroes. */
  bits: Uint8Array;
  bitLength: number;
}

export class AccumulatedBlocks {
  constructor(
    private readonly store: ReconciledBlockStore,
    /** Intensities of the source (the length of every per-intensity count). */
    private readonly intensities: number,
    /** The settings hash blocks are made under. */
    private readonly config: string,
  ) {}

  /** Stores the block durably (idempotent for the same block; see the port). */
  async append(keyStreamId: string, id: string, bits: BitArray, record: EcBlockRecord): Promise<void> {
    const packed = packBits(bits);
    try {
      await this.store.append(keyStreamId, { blockId: id, bits: packed, bitLength: bits.length, meta: encodeBlockRecord(record), storedAt: Date.now() });
    } finally {
      packed.fill(0);
    }
  }

  /** The stream's blocks usable for amplification, in append order; erases those that are not (see the file comment). */
  async held(keyStreamId: string): Promise<HeldBlock[]> {
    const blocks = await this.store.list(keyStreamId);
    const usable: HeldBlock[] = [];
    const unusable: string[] = [];
    for (const b of blocks) {
      const record = decodeBlockRecord(b.meta, this.intensities);
      if (record && record.config === this.config) {
        usable.push({ id: b.blockId, record, bits: b.bits, bitLength: b.bitLength });
      } else {
        b.bits.fill(0);
        unusable.push(b.blockId);
      }
    }
    if (unusable.length > 0) await this.store.consume(keyStreamId, unusable);
    return usable;
  }

  /** Erases the blocks durably before resolving; they can never be appended or amplified again. */
  async consume(keyStreamId: string, ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.store.consume(keyStreamId, ids);
  }
}

/** Zeroes the bits of held blocks (copies read from the store). */
export function wipeHeld(blocks: readonly HeldBlock[]): void {
  for (const b of blocks) b.bits.fill(0);
}

/** The PA block's input: the blocks' key bits one after the other, in list order (KEY MATERIAL: zero it). */
export function paInput(blocks: readonly HeldBlock[]): BitArray {
  const n = blocks.reduce((a, b) => a + b.bitLength, 0);
  const out = new BitArray(n);
  const o = out.words;
  let pos = 0;
  for (const b of blocks) {
    const part = unpackBits(b.bits, b.bitLength);
    const w = part.words;
    const shift = pos & 31;
    const base = pos >>> 5;
    for (let i = 0; i < w.length; i++) {
      const word = w[i]!;
      if (shift === 0) {
        o[base + i] = word;
      } else {
        o[base + i]! |= word << shift;
        if (base + i + 1 < o.length) o[base + i + 1]! |= word >>> (32 - shift);
      }
    }
    pos += b.bitLength;
    part.words.fill(0);
  }
  return out;
}
