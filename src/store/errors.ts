/**
 * The one error type store adapters throw for storage failures. Messages name the adapter and the
 * operation (e.g. "vault: HTTP 503 on read"), never key bytes, tokens, passwords or response bodies,
 * so a StoreError can be logged as is. Adapters never attach the driver's error as `cause`
 * (HTTP client errors carry request headers, including the Vault token).
 *
 * Caller bugs (a malformed Key_stream_ID, a negative index, an invalid table name) are not
 * StoreErrors: they are thrown as RangeError before any I/O.
 */
export type StoreErrorKind =
  /** The backend cannot be reached or is busy (connection refused, timeout, 5xx, lock timeout): retry later. */
  | 'unavailable'
  /** The backend refused the credentials (Vault 403, MySQL access denied, read-only file). */
  | 'permission'
  /** Stored data or schema is not what this module expects (bad base64, newer schema version, SQL error). */
  | 'corrupt'
  /** The backend rejected the write as conflicting (e.g. a Vault check-and-set mismatch, HTTP 400/409). */
  | 'conflict';

export class StoreError extends Error {
  readonly kind: StoreErrorKind;

  constructor(kind: StoreErrorKind, message: string) {
    super(message);
    this.name = 'StoreError';
    this.kind = kind;
  }
}
