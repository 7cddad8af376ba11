/**
 * The re-delivery window of one stream end (docs/api.md, "Lost answers").
 *
 * An application cannot tell a lost GET_KEY answer (its module crashed, the connection broke) from a
 * key it received; if its module erased the key at delivery, the peer application would use a key this
 * side never got. So a delivered key is kept, marked delivered in the key store, for `windowMs`:
 * during that time the stream's owner (and nobody else: the manager checks the caller first) may ask
 * for the same index again, or repeat its request with the same idempotency token, and gets the same
 * key. The key is erased when the window closes or when the stream delivers a higher index (the
 * application has moved on), and at CLOSE.
 *
 * This class holds only indices, delivery times and tokens, never key bytes (those stay in the store).
 */
export interface RetainedKey {
  index: number;
  deliveredAt: number;
  token: string | undefined;
}

export class RetainedKeys {
  private readonly byIndex = new Map<number, RetainedKey>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  /** Indices whose erasure failed: no longer re-deliverable, erased again at the next timer. */
  private readonly failed = new Set<number>();

  constructor(
    private readonly windowMs: number,
    /** Erases keys from the store; rejects when the store failed. */
    private readonly eraseKeys: (indices: number[]) => Promise<void>,
    private readonly onEraseError: (err: unknown, count: number) => void,
  ) {}

  get size(): number {
    return this.byIndex.size;
  }

  /** The kept key for this index, while its window is open. */
  find(index: number, now = Date.now()): RetainedKey | undefined {
    const r = this.byIndex.get(index);
    return r && now - r.deliveredAt < this.windowMs ? r : undefined;
  }

  /** The kept key delivered with this idempotency token, while its window is open. */
  findToken(token: string, now = Date.now()): RetainedKey | undefined {
    for (const r of this.byIndex.values()) if (r.token === token && now - r.deliveredAt < this.windowMs) return r;
    return undefined;
  }

  /**
   * Records a delivery. Keys of lower indices are erased now (the application took a later one),
   * except when `supersede` is false (restoring after a restart, in ascending order).
   */
  add(entry: RetainedKey, supersede = true): void {
    this.byIndex.set(entry.index, entry);
    if (supersede) {
      const older = [...this.byIndex.keys()].filter((i) => i < entry.index);
      if (older.length > 0) this.drop(older);
    }
    this.arm(entry.deliveredAt + this.windowMs);
  }

  /** Forgets every kept key (the caller erased the whole stream). */
  clear(): void {
    this.byIndex.clear();
    this.failed.clear();
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  /** Stops the timer (the module is stopping); the store keeps the marks for the next start. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  private drop(indices: number[]): void {
    for (const i of indices) this.byIndex.delete(i);
    const all = [...indices, ...this.failed];
    this.failed.clear();
    this.eraseKeys(all).catch((err: unknown) => {
      for (const i of all) this.failed.add(i);
      this.onEraseError(err, all.length);
      this.arm(Date.now() + RETRY_MS);
    });
  }

  private arm(at: number): void {
    if (this.timer && this.timerAt <= at) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.expire(), Math.max(0, at - Date.now()));
    this.timer.unref();
  }

  private expire(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    const due = [...this.byIndex.values()].filter((r) => now - r.deliveredAt >= this.windowMs).map((r) => r.index);
    if (due.length > 0 || this.failed.size > 0) this.drop(due);
    let next = Number.POSITIVE_INFINITY;
    for (const r of this.byIndex.values()) next = Math.min(next, r.deliveredAt + this.windowMs);
    if (next < Number.POSITIVE_INFINITY) this.arm(next);
  }
}

/** Retry delay for an erasure the key store refused. */
const RETRY_MS = 1_000;
