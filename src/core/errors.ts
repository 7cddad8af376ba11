/**
 * Every error the module can answer with, defined once: a code, what it means, the HTTP status
 * and the status number each API binding returns. The api layer maps QkdmError values through
 * this table; nothing else invents statuses. docs/api.md lists the same table (a test checks it).
 */

/** Status numbers of the original ("seed") API, which existing clients read. */
export const SeedStatus = {
  SUCCESSFUL: 0,
  INSUFFICIENT_KEY_AVAILABLE: 1,
  NO_QKD_CONNECTION_AVAILABLE: 2,
  HANDLE_IN_USE: 3,
  TIMEOUT: 4,
} as const;
export type SeedStatusCode = (typeof SeedStatus)[keyof typeof SeedStatus];

/** Status numbers of ETSI GS QKD 004 v2.1.1 (names after the standard's table). */
export const Etsi004Status = {
  SUCCESSFUL: 0,
  PEER_NOT_CONNECTED: 1,
  GET_KEY_INSUFFICIENT_KEY: 2,
  GET_KEY_PEER_NOT_CONNECTED: 3,
  NO_QKD_CONNECTION_AVAILABLE: 4,
  OPEN_CONNECT_KSID_IN_USE: 5,
  TIMEOUT_ERROR: 6,
  OPEN_CONNECT_QOS_NOT_MET: 7,
  GET_KEY_METADATA_INSUFFICIENT: 8,
} as const;
export type Etsi004StatusCode = (typeof Etsi004Status)[keyof typeof Etsi004Status];

export type ErrorCode =
  | 'BAD_REQUEST'
  | 'UNKNOWN_STREAM'
  | 'STREAM_IN_USE'
  | 'STREAM_CLOSED'
  | 'STREAM_NOT_OPEN'
  | 'PEER_UNREACHABLE'
  | 'PEER_REFUSED'
  | 'ROLE_CLASH'
  | 'STALE_ROUND'
  | 'STORE_UNAVAILABLE'
  | 'REGISTRATION_LIMIT'
  | 'LIMIT_REACHED'
  | 'UNAUTHORIZED';

export interface ErrorDefinition {
  httpStatus: number;
  /** Status the seed API answers with, or undefined to use the route's own failure status. */
  seedStatus?: SeedStatusCode;
  /**
   * Status the ETSI 004 binding answers with (HTTP 200: the call ran). Undefined: the error is not a
   * call outcome and the ETSI 004 binding answers with `httpStatus` and `{code, message}`.
   */
  etsi004Status?: Etsi004StatusCode;
  description: string;
}

export const ERROR_CATALOGUE: Readonly<Record<ErrorCode, ErrorDefinition>> = {
  BAD_REQUEST: { httpStatus: 400, description: 'the request is malformed or a field has the wrong type or range' },
  UNKNOWN_STREAM: { httpStatus: 404, seedStatus: SeedStatus.NO_QKD_CONNECTION_AVAILABLE, etsi004Status: Etsi004Status.NO_QKD_CONNECTION_AVAILABLE, description: 'no key stream with this Key_stream_ID exists on this module' },
  STREAM_IN_USE: { httpStatus: 409, seedStatus: SeedStatus.HANDLE_IN_USE, etsi004Status: Etsi004Status.OPEN_CONNECT_KSID_IN_USE, description: 'the Key_stream_ID is already open here or bound to other endpoints' },
  STREAM_CLOSED: { httpStatus: 409, seedStatus: SeedStatus.NO_QKD_CONNECTION_AVAILABLE, etsi004Status: Etsi004Status.OPEN_CONNECT_KSID_IN_USE, description: 'the key stream was closed (its Key_stream_ID cannot be opened again)' },
  STREAM_NOT_OPEN: { httpStatus: 409, seedStatus: SeedStatus.NO_QKD_CONNECTION_AVAILABLE, etsi004Status: Etsi004Status.NO_QKD_CONNECTION_AVAILABLE, description: 'the local application has not opened this key stream (OPEN_CONNECT first)' },
  PEER_UNREACHABLE: { httpStatus: 200, seedStatus: SeedStatus.NO_QKD_CONNECTION_AVAILABLE, etsi004Status: Etsi004Status.NO_QKD_CONNECTION_AVAILABLE, description: 'the peer module did not answer within the timeout' },
  PEER_REFUSED: { httpStatus: 200, seedStatus: SeedStatus.NO_QKD_CONNECTION_AVAILABLE, etsi004Status: Etsi004Status.NO_QKD_CONNECTION_AVAILABLE, description: 'the peer module refused the request' },
  ROLE_CLASH: { httpStatus: 409, seedStatus: SeedStatus.NO_QKD_CONNECTION_AVAILABLE, etsi004Status: Etsi004Status.NO_QKD_CONNECTION_AVAILABLE, description: 'both modules of the link have the same module.sender setting (one must be 1, the other 0) or run different simulators' },
  STALE_ROUND: { httpStatus: 409, description: 'a key-exchange round for indices already committed here (the peer lost state)' },
  STORE_UNAVAILABLE: { httpStatus: 503, description: 'the handle store or key store failed; nothing was delivered' },
  REGISTRATION_LIMIT: { httpStatus: 429, seedStatus: SeedStatus.NO_QKD_CONNECTION_AVAILABLE, etsi004Status: Etsi004Status.NO_QKD_CONNECTION_AVAILABLE, description: 'the peer has registered module.max_pending_registrations streams that no application here opened yet' },
  LIMIT_REACHED: { httpStatus: 429, description: 'a per-application or module limit was reached (open streams, waiting GET_KEY calls); retry later' },
  UNAUTHORIZED: { httpStatus: 401, description: 'missing or wrong credentials' },
};

/** An expected failure, carried as a value through the core and mapped by the api layer. */
export class QkdmError extends Error {
  override readonly name = 'QkdmError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }

  get definition(): ErrorDefinition {
    return ERROR_CATALOGUE[this.code];
  }
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: QkdmError };
export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const fail = <T = never>(code: ErrorCode, message: string): Result<T> => ({ ok: false, error: new QkdmError(code, message) });
