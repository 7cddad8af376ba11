/**
 * Per-stream totals of the BB84 rounds this module ran (served with the round history by /streams/:id/stats): EC
 * blocks accumulated and aborted, PA blocks amplified and aborted, pulses, bits, keys. In memory: a restart starts
 * them again (the blocks themselves are durable).
 */
import type { RoundStats } from '../../Simulator.js';

/** Streams whose totals are kept at most (the least recently updated go first). */
export const MAX_TOTALS_STREAMS = 1000;

/** Summed over rounds: these fields of the round stats, when they are numbers. */
const SUMMED = ['pulses', 'detections', 'siftedBits', 'keyBasisBits', 'testBasisBits', 'mZ', 'leakedBits', 'correctedBits', 'secretBits', 'keyBits', 'keys', 'singlePhotonOnlyBits', 'eveKnownBits', 'paEveKnownBits', 'orphansErased'];

export class StreamTotals {
  private readonly byStream = new Map<string, RoundStats>();

  /** Adds one finished round's stats. */
  record(keyStreamId: string, stats: RoundStats): void {
    const t = this.byStream.get(keyStreamId) ?? {
      rounds: 0,
      ecBlocksAccumulated: 0,
      ecBlocksAborted: 0,
      paBlocks: 0,
      paBlocksWithKeys: 0,
      ...Object.fromEntries(SUMMED.map((f) => [f, 0])),
      lastReason: null,
      analysis: 'lim2014',
    };
    this.byStream.delete(keyStreamId); // re-inserted last: the map's order is the update order
    t.rounds = (t.rounds as number) + 1;
    for (const f of SUMMED) if (typeof stats[f] === 'number') t[f] = (t[f] as number) + (stats[f] as number);
    if (stats.accumulated === true) t.ecBlocksAccumulated = (t.ecBlocksAccumulated as number) + 1;
    else if (stats.aborted === true) t.ecBlocksAborted = (t.ecBlocksAborted as number) + 1;
    if (typeof stats.paBlocks === 'number') {
      t.paBlocks = (t.paBlocks as number) + 1;
      if (typeof stats.keys === 'number' && stats.keys > 0) t.paBlocksWithKeys = (t.paBlocksWithKeys as number) + 1;
    }
    if (typeof stats.reason === 'string') t.lastReason = stats.reason;
    this.byStream.set(keyStreamId, t);
    if (this.byStream.size > MAX_TOTALS_STREAMS) this.byStream.delete(this.byStream.keys().next().value!);
  }

  get(keyStreamId: string): RoundStats | undefined {
    const t = this.byStream.get(keyStreamId);
    return t ? { ...t } : undefined;
  }
}
