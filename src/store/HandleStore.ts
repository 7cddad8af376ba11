import type { KeyStream, KeyStreamPatch } from '../core/types.js';

/**
 * Persistent state of key streams ("handles"). Adapters: MySQL (mysql2) and embedded SQLite.
 * Never holds key bytes. All methods are safe to call concurrently from one process.
 */
export interface HandleStore {
  /** Creates the stream. Resolves false (and changes nothing) when the ID already exists. */
  create(stream: KeyStream): Promise<boolean>;
  /** The stream, or undefined when unknown. */
  get(keyStreamId: string): Promise<KeyStream | undefined>;
  /** Every stream, in creation order. */
  list(): Promise<KeyStream[]>;
  /** Applies the given fields; unknown ID: no effect. */
  update(keyStreamId: string, patch: KeyStreamPatch): Promise<void>;
  /**
   * Moves the commit counter forward: nextIndex = max(nextIndex, to), atomically and durably.
   * Resolves the resulting nextIndex (undefined for an unknown ID).
   */
  advanceIndex(keyStreamId: string, to: number): Promise<number | undefined>;
  /** Removes the stream (purge of a closed stream); unknown ID: no effect. */
  delete(keyStreamId: string): Promise<void>;
  /** Releases connections. */
  close(): Promise<void>;
}
