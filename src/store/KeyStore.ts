/**
 * Key bytes, by (Key_stream_ID, index). Adapters: HashiCorp Vault KV v2 and embedded SQLite.
 * Implementations must never log or echo key bytes, and must not keep a readable copy of a key
 * after take() or deleteStream() (Vault: destroy all versions and metadata).
 */
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
  /** Indices present for the stream, ascending. */
  indices(keyStreamId: string): Promise<number[]>;
  /** Erases every key of the stream. */
  deleteStream(keyStreamId: string): Promise<void>;
  /** Releases connections. */
  close(): Promise<void>;
}
