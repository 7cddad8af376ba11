/**
 * Key bytes, by (Key_stream_ID, index). Adapters: HashiCorp Vault KV v2 and embedded SQLite.
 * Implementations must never log or echo key bytes, and must not keep a readable copy of a key
 * after take() or deleteStream() (Vault: destroy all versions and metadata).
 */
/** A delivered key kept for the re-delivery window. */
export interface DeliveredRecord {
  index: number;
  deliveredAt: number;
  /** The idempotency token the delivery carried, if any. */
  token: string | undefined;
}

export interface KeyStore {
  /**
   * Stores keys at consecutive indices firstIndex, firstIndex+1, ... Overwrites a key already at one
   * of those indices (it belongs to an uncommitted round). Durable when the promise resolves.
   */
  putMany(keyStreamId: string, firstIndex: number, keys: readonly Uint8Array[]): Promise<void>;
  /**
   * Reads and erases the key at index in one step; undefined when absent. Concurrent calls for the
   * same key hand it to at most one caller.
   */
  take(keyStreamId: string, index: number): Promise<Uint8Array | undefined>;
  /**
   * Re-delivery window (docs/api.md, "Lost answers"): reads an undelivered key and marks it delivered
   * at `at` (ms since the epoch), with the caller's idempotency token if any, in one step, durable when
   * the promise resolves. Undefined when absent or delivered already. The key stays in the store, out
   * of indices(), readable with redeliver(), until erase() or deleteStream().
   */
  deliver(keyStreamId: string, index: number, at: number, token?: string): Promise<Uint8Array | undefined>;
  /** A delivered key once more (its answer was lost); undefined when absent or not delivered. */
  redeliver(keyStreamId: string, index: number): Promise<Uint8Array | undefined>;
  /** The delivered keys still held, ascending by index. */
  delivered(keyStreamId: string): Promise<DeliveredRecord[]>;
  /** Erases keys (delivered or not); absent ones are ignored. */
  erase(keyStreamId: string, indices: readonly number[]): Promise<void>;
  /** Indices of the undelivered keys of the stream, ascending. */
  indices(keyStreamId: string): Promise<number[]>;
  /** Erases every key of the stream. */
  deleteStream(keyStreamId: string): Promise<void>;
  /** Releases connections. */
  close(): Promise<void>;
}
