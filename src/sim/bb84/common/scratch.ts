/**
 * Word arrays reused for the temporaries of one synchronous step. A fresh 200 kB typed array is zeroed by the
 * allocator and, when its memory is new to the process, costs a page fault per 4 KiB on its first write (15-25 us
 * each on the VMs measured), more than a pass over it; reused words cost neither. The words are lent to one callback
 * at a time, all zero, and zeroed when it returns or throws (they may hold random draws, intensities or bits), so
 * they never outlive the step nor cross an await.
 */
export class ScratchWords {
  private words = new Uint32Array(0);
  private busy = false;

  /**
   * Calls `use` (synchronous) with `n` zero words, zeroes them afterwards. Not re-entrant (throws if the words are
   * lent already).
   */
  with<T>(n: number, use: (words: Uint32Array) => T): T {
    if (this.busy) throw new Error('ScratchWords: already in use');
    // Grown with headroom: frames differ in size by a little from block to block.
    if (this.words.length < n) this.words = new Uint32Array(Math.max(n, Math.ceil(this.words.length * 1.25)));
    const words = this.words.subarray(0, n);
    this.busy = true;
    try {
      return use(words);
    } finally {
      words.fill(0);
      this.busy = false;
    }
  }
}
