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
  /**
   * When a dec_keys claimed it (ms since the epoch); absent while it waits. A claimed record stays
   * for the re-delivery window, re-claimable by a repeat of that dec_keys whose answer was lost.
   */
  claimedAt?: number;
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
   * Claims the records of every given key ID in one durable step and resolves them (with claimedAt),
   * or changes nothing and resolves undefined when any is missing or was claimed `windowMs` or longer
   * before `now`. A waiting record gets claimedAt = now; one claimed less than `windowMs` ago is
   * claimed again unchanged (its window still counts from the first claim). Who may claim is the
   * caller's check (the slave SAE and master of the records; one claim at a time per key ID).
   */
  claim(keyIds: readonly string[], now: number, windowMs: number): Promise<IssuedKeyRecord[] | undefined>;
  /** Removes the records of these key IDs (claimed or not), durably; resolves how many key IDs went. */
  remove(keyIds: readonly string[]): Promise<number>;
  /**
   * Removes, in one durable step, the waiting records created at or before `createdAtOrBefore`
   * (undefined: none, issued key IDs never expire) and the claimed records claimed at or before
   * `claimedAtOrBefore`; resolves the removed records.
   */
  expire(createdAtOrBefore: number | undefined, claimedAtOrBefore: number): Promise<IssuedKeyRecord[]>;
  /** Which of these stream indices a record (waiting or claimed) uses (an index recorded under a key ID is not an orphan). */
  recorded(keyStreamId: string, indices: readonly number[]): Promise<Set<number>>;
  /** Removes the records using any of these stream indices; resolves how many key IDs went. */
  discard(keyStreamId: string, indices: readonly number[]): Promise<number>;
  /** Number of key IDs waiting (not claimed). */
  count(): Promise<number>;
  close(): Promise<void>;
}
