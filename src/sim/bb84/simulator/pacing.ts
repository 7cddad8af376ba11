/**
 * When a stream's next block may start: realtime pacing (blocks follow each other on the simulated link) and the
 * back-off after blocks without keys. One timer per waiting block, never a polling loop.
 */

/**
 * How a round ended, for pacing: with keys, with its EC block accumulated for a later PA block (the link works:
 * no back-off), without either (aborted, discarded), or with an exception.
 */
export type BlockOutcome = 'keys' | 'accumulated' | 'keyless' | 'failed';

export const DEFAULT_KEYLESS_BACKOFF_MS = { initial: 200, max: 5000 };
/** Longest back-off between blocks while their signatures fail (a configuration error). */
export const AUTH_FAILURE_BACKOFF_MAX_MS = 60_000;
/** Above this many streams with a booked block start, bookings older than a minute are dropped. */
export const MAX_TRACKED_STREAMS = 1000;

interface PaceWait {
  timer: NodeJS.Timeout;
  resolve(): void;
}

export class BlockPacer {
  /** Per stream, the earliest start of its next block (performance.now() ms): realtime pacing and keyless back-off. */
  private readonly nextBlockStart = new Map<string, number>();
  /** Per stream, consecutive blocks without keys. */
  private readonly keyless = new Map<string, number>();
  private readonly waits = new Set<PaceWait>();
  private closed = false;

  constructor(
    private readonly pace: 'max' | 'realtime',
    private readonly backoff: { initial: number; max: number } = DEFAULT_KEYLESS_BACKOFF_MS,
  ) {}

  /**
   * Waits (one timer, never a loop) until this stream's next block may start; returns the block's scheduled start
   * (now, or the booked start - which may lie up to one block in the past while a realtime link catches up).
   */
  async waitForBlockStart(keyStreamId: string): Promise<number> {
    const now = performance.now();
    const booked = this.nextBlockStart.get(keyStreamId);
    if (booked === undefined) return now;
    const delay = booked - now;
    if (delay > 0 && !this.closed) {
      await new Promise<void>((resolve) => {
        const w: PaceWait = {
          timer: setTimeout(() => {
            this.waits.delete(w);
            resolve();
          }, delay),
          resolve,
        };
        this.waits.add(w);
      });
    }
    return booked;
  }

  /**
   * Books the stream's next block start. pace realtime: the blocks of a stream follow each other on the link
   * without gaps - the next starts one link time (pulses / pulse rate) after this one's scheduled start - as a
   * device's source and detectors keep running while a block is post-processed; a block that took longer than its
   * link time is caught up by starting the next at once, but the schedule never lags more than one block (a
   * device that cannot keep up loses that key, it does not queue it forever). A block that completed without keys
   * adds the keyless back-off (longer while the stream's blocks fail authentication: `authFailing`).
   */
  scheduleNextBlock(keyStreamId: string, scheduled: number, linkMs: number, outcome: BlockOutcome, authFailing: boolean): void {
    const now = performance.now();
    let next = this.pace === 'realtime' ? Math.max(scheduled + linkMs, now - linkMs) : 0;
    if (outcome === 'keys' || outcome === 'accumulated') {
      this.keyless.delete(keyStreamId);
    } else if (outcome === 'keyless') {
      // (A failed round - an exception - is backed off by the exchange's retry logic instead.)
      const n = (this.keyless.get(keyStreamId) ?? 0) + 1;
      this.keyless.set(keyStreamId, n);
      // A wrong key does not heal by itself: back off up to a minute rather than the keyless maximum.
      const max = authFailing ? Math.max(this.backoff.max, AUTH_FAILURE_BACKOFF_MAX_MS) : this.backoff.max;
      next = Math.max(next, now + Math.min(max, this.backoff.initial * 2 ** (n - 1)));
    }
    if (this.pace === 'realtime' || next > now) this.nextBlockStart.set(keyStreamId, next);
    else this.nextBlockStart.delete(keyStreamId);
    if (this.nextBlockStart.size > MAX_TRACKED_STREAMS) {
      // Streams that have not run a block for a minute (closed ones) lose their bookings.
      for (const [id, t] of this.nextBlockStart) if (t < now - 60_000) this.nextBlockStart.delete(id);
      for (const id of this.keyless.keys()) if (!this.nextBlockStart.has(id)) this.keyless.delete(id);
    }
  }

  /** Releases every waiting block at once; later waits return immediately. */
  close(): void {
    this.closed = true;
    for (const w of this.waits) {
      clearTimeout(w.timer);
      w.resolve();
    }
    this.waits.clear();
  }
}
