/**
 * When the keys of one stream were stored at this end: one batch per round (consecutive indices
 * stored together). It gives a key's age (ETSI 004 metadata) and the TTL erasure schedule.
 *
 * Kept in memory only. After a restart the store time of a key found in the key store is unknown;
 * the stream's creation time is then the only proven lower bound ("born after"), and TTL counts
 * from that bound (see KeyStreamManager.init).
 */

export interface KeyBatch {
  firstIndex: number;
  count: number;
  /** When the batch was stored here, ms since the epoch; undefined when unknown (found at start-up). */
  storedAt: number | undefined;
  /** The keys were certainly not stored before this time (storedAt, or the stream's creation). TTL counts from it. */
  bornAfter: number;
}

export class KeyBatches {
  /** Sorted by firstIndex, never overlapping. */
  private batches: KeyBatch[] = [];

  get size(): number {
    return this.batches.length;
  }

  /**
   * Records keys stored at [firstIndex, firstIndex + count). Whatever was recorded for those indices
   * before (an uncommitted round now overwritten) is forgotten.
   */
  record(firstIndex: number, count: number, storedAt: number | undefined, bornAfter: number = storedAt ?? Date.now()): void {
    if (count <= 0) return;
    const end = firstIndex + count;
    const kept: KeyBatch[] = [];
    for (const b of this.batches) {
      const bEnd = b.firstIndex + b.count;
      if (bEnd <= firstIndex || b.firstIndex >= end) {
        kept.push(b);
        continue;
      }
      if (b.firstIndex < firstIndex) kept.push({ ...b, count: firstIndex - b.firstIndex });
      if (bEnd > end) kept.push({ ...b, firstIndex: end, count: bEnd - end });
    }
    const batch: KeyBatch = { firstIndex, count, storedAt, bornAfter };
    const at = kept.findIndex((b) => b.firstIndex > firstIndex);
    if (at === -1) kept.push(batch);
    else kept.splice(at, 0, batch);
    this.batches = kept;
  }

  /** The batch holding `index`, or undefined. */
  find(index: number): KeyBatch | undefined {
    let lo = 0;
    let hi = this.batches.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.batches[mid]!.firstIndex <= index) lo = mid + 1;
      else hi = mid;
    }
    const b = this.batches[lo - 1];
    return b && index < b.firstIndex + b.count ? b : undefined;
  }

  /** Forgets the batches lying entirely below `index` (their keys are all gone); undefined: forgets all. */
  forgetBelow(index: number | undefined): void {
    if (index === undefined) {
      this.batches = [];
      return;
    }
    let drop = 0;
    while (drop < this.batches.length && this.batches[drop]!.firstIndex + this.batches[drop]!.count <= index) drop++;
    if (drop > 0) this.batches = this.batches.slice(drop);
  }

  /** The earliest `bornAfter` of any batch, or undefined when there is none. */
  earliestBorn(): number | undefined {
    let earliest: number | undefined;
    for (const b of this.batches) if (earliest === undefined || b.bornAfter < earliest) earliest = b.bornAfter;
    return earliest;
  }

  /** Removes and returns the batches born at or before `cutoff`. */
  removeBornBy(cutoff: number): KeyBatch[] {
    const removed = this.batches.filter((b) => b.bornAfter <= cutoff);
    if (removed.length > 0) this.batches = this.batches.filter((b) => b.bornAfter > cutoff);
    return removed;
  }
}
