/**
 * Serialises async work per name within this process (e.g. one Vault secret or one stream): work
 * under a name starts when the previous work under it settled. Idle names hold no memory.
 */
export class KeyedLock {
  /** Tail of the queue per name; removed when the queue empties. */
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `work` when the name is free; the name is released in finally, whatever the outcome. */
  async run<T>(name: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(name) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(name, tail);
    await previous;
    try {
      return await work();
    } finally {
      release();
      if (this.tails.get(name) === tail) this.tails.delete(name);
    }
  }
}
