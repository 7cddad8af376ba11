/**
 * What the core and the exchange report to whoever watches the module (Prometheus metrics, see
 * src/metrics/). A port like the stores: the core calls it and knows no metrics library; the default
 * reports nowhere. Reports carry counts, reasons from fixed lists and figures of the link, never key
 * material, and are made synchronously and cheaply (the metrics adapter only adds to numbers in memory).
 */

/**
 * Why keys were erased without being delivered. The first five are committed keys (counted as produced
 * before); `halted-round` and `superseded` are keys of a round that never committed.
 */
export const DISCARD_REASONS = [
  /** Older than the stream's QoS TTL. */
  'ttl',
  /** The local application closed the stream: its unused keys are erased. */
  'close',
  /** A closed stream (or a registration no application opened) was purged with keys left. */
  'purged',
  /** ETSI 014: taken by the master KME but never handed to an SAE, or never recorded under a key ID at the slave's KME. */
  'etsi014-orphan',
  /** ETSI 014: an issued key ID no slave SAE fetched within etsi014.key_id_ttl_s. */
  'etsi014-expired',
  /** Key confirmation failed: the round's keys were erased at both ends and the stream halted. */
  'halted-round',
  /** A round that never committed: a newer round replaced it, or the stream closed (or its TTL passed) first. */
  'superseded',
] as const;
export type DiscardReason = (typeof DISCARD_REASONS)[number];

/**
 * Why a key-exchange round ended without committing keys, when the simulator did not say (its own drop
 * reasons, e.g. `qber-too-high`, come from its round statistics).
 */
export const ROUND_FAILURES = [
  /** The peer module did not answer (transport error, timeout, failed authentication). */
  'peer-unreachable',
  /** The peer module answered with an error (closed stream, stale round, role clash, ...). */
  'peer-refused',
  /** A malformed or unexpected message of the round. */
  'protocol-error',
  /** Key confirmation showed the two ends hold different keys. */
  'confirmation-failed',
  /** The two ends' commit counters disagree in a way no round repairs. */
  'out-of-step',
  /** A store refused to keep the round's keys or to move the commit counter. */
  'store-error',
  /** Receiver: the sender gave the round up (a newer round replaced it before it finished or was confirmed). */
  'abandoned',
  /** A round produced no keys without naming a reason. */
  'no-keys',
  /** Anything else (a bug): see the log. */
  'error',
] as const;
export type RoundFailure = (typeof ROUND_FAILURES)[number];

/** Figures of one finished block (BB84 fills them; the fake device leaves them undefined). */
export interface BlockFigures {
  /** Estimated QBER of the block's sample. */
  qber?: number | undefined;
  /** Secret bits the finite-key bound allowed (before they were cut into whole keys). */
  secretBits?: number | undefined;
  /** Pulses Alice sent for the block (BB84: for the whole PA block when the round amplified). */
  pulses?: number | undefined;
}

export interface BlockReport extends BlockFigures {
  keyStreamId: string;
  /** Keys committed from the block. */
  keys: number;
  keyLengthBits: number;
  /** From the round's first message to its commit (or its end), ms. */
  durationMs: number;
}

export interface ModuleTelemetry {
  /** Keys became deliverable at this end (the commit counter moved forward by `count`). */
  keysCommitted(keyStreamId: string, count: number): void;
  /** Keys handed to an application (any API). */
  keysDelivered(keyStreamId: string, count: number): void;
  /** Keys erased without being delivered. */
  keysDiscarded(keyStreamId: string, reason: DiscardReason, count: number): void;
  /** A round committed keys. */
  blockCommitted(report: BlockReport): void;
  /** A round ended without committing keys: a simulator drop reason, or one of ROUND_FAILURES. */
  blockAborted(keyStreamId: string, reason: string, figures: BlockFigures, durationMs: number | undefined): void;
  /**
   * A round ended without keys on purpose, not as an abort: BB84 stored its corrected EC block for a later
   * privacy amplification (issue 11). Its QBER counts; it is neither a committed block nor an aborted one.
   */
  blockAccumulated(keyStreamId: string, figures: BlockFigures, durationMs: number | undefined): void;
  /** The stream and everything known of it were removed here (purged): forget it. */
  streamPurged(keyStreamId: string): void;
}

const nothing = (): void => undefined;

/** Reports nowhere (module.metrics: false, and tests that do not watch). */
export const NO_TELEMETRY: ModuleTelemetry = {
  keysCommitted: nothing,
  keysDelivered: nothing,
  keysDiscarded: nothing,
  blockCommitted: nothing,
  blockAborted: nothing,
  blockAccumulated: nothing,
  streamPurged: nothing,
};
