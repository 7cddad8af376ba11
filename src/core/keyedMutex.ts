/**
 * Serialises async work per key (a Key_stream_ID in the core, a Vault secret in the Vault adapters): work under a
 * key starts when the previous work under it settled, so state changes of one key never interleave.
 */
export class KeyedMutex {
  private tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    await previous;
    try {
      return await work();
    } finally {
      release();
      // Drop the entry when nobody queued behind us, so the map does not grow per stream forever.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
