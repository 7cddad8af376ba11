/**
 * Messages between the two modules of a link (the peer channel). One zod schema per message is
 * the single definition of its shape; docs/peer-protocol.md describes the flow.
 */
import { z } from 'zod';
import type { ErrorCode } from '../core/errors.js';
import { MAX_KEY_LENGTH_BITS, MAX_TIMEOUT_MS } from '../core/types.js';

const uuidLike = z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'must be a UUID');
const index = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** GET /sync?key_handle=...: the opener registers a new stream at the peer. */
export const syncRequestSchema = z.object({
  keyStreamId: uuidLike,
  source: z.string().max(255),
  destination: z.string().max(255),
  keyLengthBits: z.number().int().positive().multipleOf(8).max(MAX_KEY_LENGTH_BITS),
  timeoutMs: z.number().int().min(0).max(MAX_TIMEOUT_MS),
  /** The caller's module.sender: the two ends must differ. */
  sender: z.union([z.literal(0), z.literal(1)]),
  /** The caller's simulator: the two ends must agree. */
  sim: z.string().max(32),
  /** How this module reaches the caller (its this_public_IP). */
  peerAddress: z.string().min(1).max(255),
});
export type SyncRequest = z.infer<typeof syncRequestSchema>;
export interface SyncReply {
  status: 0;
  /** True when the callee's application had already opened the same ID (both opened with a chosen ID). */
  joined: boolean;
}

/** POST /peer/open and /peer/close: the peer's application opened / closed the stream. */
export const streamNoticeSchema = z.object({ keyStreamId: uuidLike });
export type StreamNotice = z.infer<typeof streamNoticeSchema>;

/** POST /start: "keys were retrieved here", with how many committed keys still wait at the caller. */
export const startNoticeSchema = z.object({ keyStreamId: uuidLike, available: z.number().int().min(0) });
export type StartNotice = z.infer<typeof startNoticeSchema>;

/** POST /peer/round: one simulator message of a key-exchange round, sender -> receiver. */
export const roundMessageSchema = z.object({
  keyStreamId: uuidLike,
  /** Random per round, so a retried round never mixes with an abandoned one. */
  roundId: z.string().regex(/^[A-Za-z0-9-]{1,64}$/),
  /**
   * Increases with every round the sender starts (microseconds since the epoch, or last + 1): the
   * receiver refuses messages of a round older than one it has seen, so a late message of an
   * abandoned round cannot overwrite the keys of the round that replaced it.
   */
  roundSeq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  /** Must equal the receiver's commit counter: rounds only ever produce the next keys. */
  firstIndex: index,
  keyLengthBits: z.number().int().positive().multipleOf(8),
  /** At most the receiver's own room under its module.max_key_count. */
  maxKeys: z.number().int().positive().max(100_000),
  step: z.string().min(1).max(64),
  payload: z.unknown(),
});
export type RoundMessage = z.infer<typeof roundMessageSchema>;
export interface RoundReply {
  reply: unknown;
  /** Keys the receiver stored (uncommitted) on this step; present on the round's final step. */
  stored?: number;
  /** Committed keys waiting undelivered at the receiver. */
  available: number;
}

/**
 * POST /peer/confirm: key confirmation of a finished round, sender -> receiver. The sender stored the
 * round's keys (not deliverable yet) and proves it holds the same keys as the receiver: `tag` is
 * HMAC-SHA256 under the fresh random `seed` over the round's keys (src/exchange/keyConfirmation.ts).
 * The receiver commits the round only when the tag matches its own keys and answers with its own tag.
 */
export const confirmMessageSchema = z.object({
  keyStreamId: uuidLike,
  roundId: z.string().regex(/^[A-Za-z0-9-]{1,64}$/),
  firstIndex: index,
  count: z.number().int().positive().max(100_000),
  seed: z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'must be 32 bytes of base64'),
  tag: z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'must be 32 bytes of base64'),
});
export type ConfirmMessage = z.infer<typeof confirmMessageSchema>;
export interface ConfirmReply {
  /** The receiver's keys match: it committed them (its counter is now firstIndex + count). */
  match: boolean;
  /** The receiver's tag over its keys (present when match is true). */
  tag?: string;
  nextIndex: number;
  available: number;
}

/**
 * POST /peer/counter: the sender asks the receiver's commit counter (after a restart or an error, and
 * after a close). Nothing moves: a receiver's counter moves only when a round is confirmed.
 */
export const counterMessageSchema = z.object({ keyStreamId: uuidLike });
export type CounterMessage = z.infer<typeof counterMessageSchema>;
export interface CounterReply {
  nextIndex: number;
  available: number;
  /** The receiver's module.max_key_count: rounds never ask for more room than the smaller end has. */
  maxKeyCount: number;
}

/** A failed peer call: `unreachable` (transport, timeout), `refused` (the peer answered with an error). */
export class PeerError extends Error {
  override readonly name = 'PeerError';
  constructor(
    readonly kind: 'unreachable' | 'refused' | 'protocol',
    message: string,
    /** The peer's error code when it refused. */
    readonly peerCode?: ErrorCode,
    /** Why an `unreachable` call failed, when it is more than a transport error (metrics, readiness). */
    readonly unreachableBecause?: 'timeout' | 'unauthenticated',
  ) {
    super(message);
  }
}

/** The peer channel as the core and the exchange see it. Adapters: HTTP(S); tests may use others. */
export interface PeerClient {
  sync(peerUrl: string, req: SyncRequest, timeoutMs: number): Promise<SyncReply>;
  open(peerUrl: string, notice: StreamNotice, timeoutMs: number): Promise<void>;
  close(peerUrl: string, notice: StreamNotice, timeoutMs: number): Promise<void>;
  start(peerUrl: string, notice: StartNotice, timeoutMs: number): Promise<void>;
  round(peerUrl: string, msg: RoundMessage, timeoutMs: number): Promise<RoundReply>;
  confirm(peerUrl: string, msg: ConfirmMessage, timeoutMs: number): Promise<ConfirmReply>;
  counter(peerUrl: string, msg: CounterMessage, timeoutMs: number): Promise<CounterReply>;
  /**
   * A JSON POST to another peer route (for bindings that add peer messages, e.g. ETSI 014 key IDs).
   * Same transport, credentials and error mapping as the calls above.
   */
  post(peerUrl: string, path: string, body: unknown, timeoutMs: number): Promise<unknown>;
}

/**
 * Normalises a peer address: `host:port` -> `http://host:port`; an http(s) URL keeps its scheme.
 * Returns undefined for anything else (so callers can answer 400 naming the field).
 */
export function normalizePeerAddress(address: string, defaultScheme: 'http' | 'https' = 'http'): string | undefined {
  const text = address.trim();
  if (text.length === 0 || text.length > 255) return undefined;
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `${defaultScheme}://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (!url.hostname || url.username || url.password || url.search || url.hash) return undefined;
  if (url.pathname !== '/' && url.pathname !== '') return undefined;
  const normalized = `${url.protocol}//${url.host}`;
  return normalized.length <= 255 ? normalized : undefined; // fits the handle store's column
}
