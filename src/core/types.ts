/**
 * Domain types shared by the core, the stores, the exchange and the API.
 * Words follow ETSI GS QKD 004: a key stream is identified by its Key_stream_ID (a UUID);
 * keys of a stream are numbered 0, 1, 2, ... by the sending module.
 */

/** What a module knows about one key stream. Persisted by a {@link HandleStore}. */
export interface KeyStream {
  /** Key_stream_ID, a UUID in canonical lower-case form. */
  keyStreamId: string;
  /** `source` given by the local application at OPEN_CONNECT (or by the peer at /sync). */
  source: string;
  /**
   * `destination` as given by the local application at OPEN_CONNECT (by the peer at /sync until the
   * local application opens): the peer module's address, or an ETSI 004 URI naming it.
   */
  destination: string;
  /** Base URL of the peer module for this stream, e.g. `http://127.0.0.1:5001`. */
  peerUrl: string;
  /** Key size in bits (QoS `length`), a positive multiple of 8. */
  keyLengthBits: number;
  /** QoS `timeout` in milliseconds: how long a call on this stream may wait. */
  timeoutMs: number;
  /** The local application has called OPEN_CONNECT for this stream. */
  localOpen: boolean;
  /** The peer module's application has opened the stream (known from /sync or a peer notice). */
  peerOpen: boolean;
  /** CLOSE was called (here or at the peer): no more exchange. A local CLOSE also erased this end's unused keys. */
  closed: boolean;
  /**
   * Commit counter: every key with index < nextIndex is final at this end and may be delivered.
   * Sender: advanced after the receiver acknowledged storing the round. Receiver: advanced when
   * the sender says it committed. Never decreases.
   */
  nextIndex: number;
  /** Creation time, ms since the epoch. */
  createdAt: number;
  /**
   * QoS TTL in seconds (ETSI GS QKD 004): every key of the stream is erased at this end once it is
   * older than this, delivered or not. 0 = no TTL. Set by the local application's OPEN_CONNECT.
   */
  ttlSeconds: number;
  /**
   * The identity at this end that opened the stream (an application ID from configuration, `local` when
   * no applications are configured, `etsi014` for the streams of ETSI 014 SAE pairs); '' until a local
   * application opened it. Only this identity can use the stream (docs/security.md, "Applications").
   */
  owner: string;
}

/** Fields of a {@link KeyStream} that may change after creation (nextIndex moves only via advanceIndex). */
export type KeyStreamPatch = Partial<
  Pick<KeyStream, 'source' | 'destination' | 'peerUrl' | 'keyLengthBits' | 'timeoutMs' | 'localOpen' | 'peerOpen' | 'closed' | 'ttlSeconds' | 'owner'>
>;

/** The identity of every caller when no applications are configured (the application API is then loopback-only). */
export const LOCAL_OWNER = 'local';
/** The identity of the ETSI 014 binding: its SAE pairs' streams are reachable through ETSI 014 only. */
export const ETSI014_OWNER = 'etsi014';

/** Largest key size a stream may ask for, in bits (a named, documented limit). */
export const MAX_KEY_LENGTH_BITS = 8192;
/** Longest QoS timeout accepted, in ms (10 minutes). */
export const MAX_TIMEOUT_MS = 600_000;
/** Largest QoS TTL, in seconds: the ETSI GS QKD 004 field is a uint32. */
export const MAX_TTL_SECONDS = 4_294_967_295;
