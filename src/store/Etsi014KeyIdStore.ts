/**
 * ETSI GS QKD 014 key IDs issued at the master's module and announced to the slave's module, kept
 * at the slave's module until the slave SAE fetches them with dec_keys (docs/etsi014.md).
 * Adapter: embedded SQLite (SqliteEtsi014KeyIdStore); tests use an in-memory one.
 * Never holds key bytes: a record names the stream indices the key is made of.
 */
export interface IssuedKeyRecord {
  /** key_ID (UUID, lower case). */
  keyId: string;
  keyStreamId: string;
  /** Stream indices whose keys, concatenated in this order and cut to sizeBits, form the key. */
  indices: number[];
  sizeBits: number;
  masterSaeId: string;
  slaveSaeId: string;
  createdAt: number;
}

export interface Etsi014KeyIdStore {
  /**
   * Stores every record or none, durably. Resolves false (and stores nothing) when a key ID or a
   * (stream, index) is recorded already: an index must never stand for two key IDs.
   */
  putMany(records: readonly IssuedKeyRecord[]): Promise<boolean>;
  /** The records of those key IDs that exist (any order). */
  get(keyIds: readonly string[]): Promise<IssuedKeyRecord[]>;
  /**
   * Removes the records of every given key ID in one step and resolves them, or removes nothing and
   * resolves undefined when any is missing (so a concurrent claim of the same ID wins at most once).
   */
  claim(keyIds: readonly string[]): Promise<IssuedKeyRecord[] | undefined>;
  /** Which of these stream indices a record uses (an index recorded under a key ID is not an orphan). */
  recorded(keyStreamId: string, indices: readonly number[]): Promise<Set<number>>;
  /** Removes the records using any of these stream indices; resolves how many key IDs went. */
  discard(keyStreamId: string, indices: readonly number[]): Promise<number>;
  /** Number of key IDs waiting. */
  count(): Promise<number>;
  close(): Promise<void>;
}
