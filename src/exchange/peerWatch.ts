/**
 * Watches every call to a peer module: a PeerClient decorator that remembers, per peer, when a call last
 * ended and whether the peer answered, and reports failed calls by kind (metrics). Readiness and the
 * `qkdm_peer_up` metric read the remembered outcomes (peerReachability.ts), so the exchange's own
 * traffic proves the peer is there and no extra message is needed while it flows.
 */
import { PeerError, type PeerClient } from './peerProtocol.js';

/** Kinds of failed peer calls (the `kind` label of qkdm_peer_request_errors_total). */
export const PEER_ERROR_KINDS = [
  /** No connection (refused, reset, DNS, TLS). */
  'unreachable',
  /** No answer within the call's deadline. */
  'timeout',
  /** The peer answered with an error status (it refused the call: closed stream, stale round, ...). */
  'http-status',
  /** The session handshake failed, or the answer was not authenticated by the session. */
  'unauthenticated',
  /** The answer was not what the protocol says (malformed, missing fields). */
  'protocol',
] as const;
export type PeerErrorKind = (typeof PEER_ERROR_KINDS)[number];

/** Peers remembered at most (a module normally has one; the oldest is forgotten first). */
export const MAX_WATCHED_PEERS = 64;

export interface PeerOutcome {
  /** Date.now() when the call ended. */
  at: number;
  /** The peer module answered (with a result or with a refusal of its own). */
  answered: boolean;
  /** Why it did not answer. */
  kind?: PeerErrorKind;
}

export function peerErrorKind(err: unknown): PeerErrorKind {
  if (!(err instanceof PeerError)) return 'unreachable';
  if (err.kind === 'refused') return 'http-status';
  if (err.kind === 'protocol') return 'protocol';
  return err.unreachableBecause ?? 'unreachable';
}

export class PeerWatch {
  private readonly outcomes = new Map<string, PeerOutcome>();

  constructor(
    /** Called once per failed call (metrics); never with the error itself. */
    private readonly onError: (kind: PeerErrorKind) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** The last outcome of a call to this peer, if one was made. */
  lastOutcome(peerUrl: string): PeerOutcome | undefined {
    return this.outcomes.get(peerUrl);
  }

  /** `inner`, with every call's outcome recorded here. */
  wrap(inner: PeerClient): PeerClient {
    const watched = <A extends unknown[], R>(call: (peerUrl: string, ...args: A) => Promise<R>) =>
      (peerUrl: string, ...args: A): Promise<R> =>
        call(peerUrl, ...args).then(
          (value) => {
            this.record(peerUrl, { at: this.now(), answered: true });
            return value;
          },
          (err: unknown) => {
            const kind = peerErrorKind(err);
            // A refusal is an answer: the peer is there and authenticated this module.
            this.record(peerUrl, kind === 'http-status' ? { at: this.now(), answered: true } : { at: this.now(), answered: false, kind });
            this.onError(kind);
            throw err;
          },
        );
    return {
      sync: watched(inner.sync.bind(inner)),
      open: watched(inner.open.bind(inner)),
      close: watched(inner.close.bind(inner)),
      start: watched(inner.start.bind(inner)),
      round: watched(inner.round.bind(inner)),
      confirm: watched(inner.confirm.bind(inner)),
      counter: watched(inner.counter.bind(inner)),
      post: watched(inner.post.bind(inner)),
    };
  }

  private record(peerUrl: string, outcome: PeerOutcome): void {
    this.outcomes.delete(peerUrl); // re-inserted last: the map's order is the age of its entries
    this.outcomes.set(peerUrl, outcome);
    if (this.outcomes.size > MAX_WATCHED_PEERS) this.outcomes.delete(this.outcomes.keys().next().value!);
  }
}
