/**
 * Reconciled blocks waiting for privacy amplification (issue 11, point 3). The BB84 pipeline runs
 * several error-correction rounds per stream; each yields one corrected and verified block of key
 * bits (X basis) with its public counts. The blocks are kept here until their total reaches the
 * privacy-amplification block size; then both ends read them, consume them and amplify the copies.
 *
 * Adapters: embedded SQLite (same file as the keys), HashiCorp Vault KV v2 (when the keys live in
 * Vault), memory (tests). Every adapter passes test/store/reconciledContract.ts.
 *
 * Guarantees every adapter gives:
 * - Durability: `append` resolves only once the block is durable (SQLite: committed with
 *   synchronous=FULL; Vault: acknowledged). A crash never leaves a torn block: after a restart a
 *   block is either absent or present with exactly its bits, bitLength and meta.
 * - Idempotence: appending a blockId already held with the same bits, bitLength and meta is a no-op
 *   (the first storedAt and position stay); with different content it rejects with
 *   StoreError 'conflict' and changes nothing. So a caller that does not know whether an append
 *   landed (crash, lost answer) may simply repeat it.
 * - Order: `list` returns the stream's blocks in the order of their first successful append.
 * - At most once: `consume` erases the blocks durably and irrecoverably (no readable copy left in
 *   the backend: SQLite zeroes and deletes the rows and checkpoints the WAL; Vault destroys every
 *   version and the metadata) BEFORE it resolves. The caller derives keys only from the copies it
 *   read with `list`, after `consume` resolved: a crash in between loses those bits but never lets
 *   them be used twice. If `consume` rejects, the blocks may or may not be gone: repeat it before
 *   using the copies (unknown blockIds are ignored, so a repeat is safe).
 * - Never twice: the store remembers the blockIds consumed from a stream (no bits) until
 *   deleteStream; appending one of them again rejects with StoreError 'conflict', so a replayed
 *   block cannot be amplified a second time.
 * - Isolation: blocks of one stream are never visible through another stream.
 * - Secrecy: bits never appear in a log line or an error message; returned bits are fresh copies
 *   the caller may zero; the store keeps no reference to the caller's arrays.
 * - Validation before any I/O: a malformed keyStreamId or block is a RangeError naming the field.
 *   Per backend, one module process per store (the same assumption as the KeyStore).
 */

/** One corrected and verified error-correction block waiting for privacy amplification. */
export interface ReconciledBlock {
  /** Unique within the stream, agreed by both ends (e.g. derived from the round's nonces). {@link BLOCK_ID_PATTERN} */
  blockId: string;
  /** The corrected key bits, packed (kept byte for byte): KEY MATERIAL. Exactly ceil(bitLength / 8) bytes. */
  bits: Uint8Array;
  /** Number of valid bits in `bits`, 0 .. {@link MAX_RECONCILED_BLOCK_BITS} (0: a round that only adds counts). */
  bitLength: number;
  /**
   * JSON of the block's public counts (per-intensity detections, Z errors, disclosed bits, pulses).
   * Not secret; at most {@link MAX_RECONCILED_BLOCK_META_BYTES} bytes of UTF-8; kept verbatim.
   */
  meta: string;
  /** When the block was first appended, ms since the epoch (set by the caller; kept on an idempotent repeat). */
  storedAt: number;
}

export interface ReconciledBlockStore {
  /** Stores a block at the end of the stream's list; durable when it resolves. See the guarantees above. */
  append(keyStreamId: string, block: ReconciledBlock): Promise<void>;
  /** The stream's blocks in append order (fresh copies); [] for an unknown stream. */
  list(keyStreamId: string): Promise<ReconciledBlock[]>;
  /**
   * Erases those blocks durably and irrecoverably before resolving and remembers their IDs as
   * consumed; unknown ids are ignored, other blocks of the stream stay. Derive keys from the copies
   * read with `list` only after this resolved.
   */
  consume(keyStreamId: string, blockIds: readonly string[]): Promise<void>;
  /** At CLOSE or purge: erases every block of the stream as consume does, and forgets its consumed IDs. */
  deleteStream(keyStreamId: string): Promise<void>;
  /** Streams holding anything (blocks, consumed IDs, in Vault a leftover of an interrupted append): for housekeeping with deleteStream. */
  streams?(): Promise<string[]>;
  /** Releases connections (the SQLite database closes when its last store closes). */
  close(): Promise<void>;
}

/** Block IDs: safe as a Vault path segment and a log field. */
export const BLOCK_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Key_stream_IDs the store accepts (UUIDs and similar), the same in every adapter so none refuses what another took. */
export const RECONCILED_STREAM_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/**
 * Largest block: 2^26 bits (8 MiB packed). An error-correction block of the default 125 Mpulse
 * BB84 block holds a few Mbit; a privacy-amplification block is made of many of them.
 */
export const MAX_RECONCILED_BLOCK_BITS = 2 ** 26;
/** Largest `meta`, in bytes of UTF-8. */
export const MAX_RECONCILED_BLOCK_META_BYTES = 16_384;
