/**
 * A simulated pair of QKD devices. The exchange layer runs one *round* at a time per stream: the
 * sending module (config `module.sender: 1`) calls runSenderRound, which talks to the receiving
 * module through `channel`; the receiving module feeds each message to the ReceiverRound it opened
 * for that round. A round yields keys (possibly none) that both ends store at the same indices
 * firstIndex, firstIndex+1, ...
 *
 * Implementations: `fake` (CSPRNG keys sent over the peer channel) and `bb84` (simulated BB84 with
 * post-processing over an authenticated classical channel).
 */

/** What both ends know about a round before it starts. */
export interface RoundParams {
  keyStreamId: string;
  /** Index of the first key this round produces; also identifies the round within the stream. */
  firstIndex: number;
  /** Key size in bits (multiple of 8). */
  keyLengthBits: number;
  /** Upper bound on keys the round should produce (room left under max_key_count). At least 1. */
  maxKeys: number;
}

/** Statistics a round reports (served by the stats route; never contains key material). */
export type RoundStats = Record<string, number | string | boolean | null>;

export interface RoundResult {
  /** Keys for this end, each keyLengthBits/8 bytes, stored at firstIndex + i. */
  keys: Uint8Array[];
  stats?: RoundStats;
}

/** The sender's view of the peer during a round: one request, one reply. */
export interface RoundChannel {
  /** Sends a simulator message of this round to the peer and resolves its reply. Rejects on transport failure. */
  request(step: string, payload: unknown): Promise<unknown>;
}

export interface ReceiverStepResult {
  reply: unknown;
  /** Present on the step that completes the round: the receiver's keys. */
  result?: RoundResult;
}

/** Receiver-side state of one round. */
export interface ReceiverRound {
  handle(step: string, payload: unknown): Promise<ReceiverStepResult>;
  /**
   * The exchange drops this round unfinished (a newer round of the stream replaced it, or the stream closed):
   * release what it holds (the BB84 round zeroes its key arrays). Not called after a result or an error.
   */
  abandon?(): void;
}

export interface Simulator {
  readonly name: string;
  runSenderRound(params: RoundParams, channel: RoundChannel): Promise<RoundResult>;
  openReceiverRound(params: RoundParams): ReceiverRound;
  /**
   * Secret key the link is expected to produce for a stream of this key size, in bits per second
   * (whole keys only), as the ETSI 004 binding checks a QoS Min_bps against it. Infinity: not a
   * limit worth stating (the fake device); undefined or absent: unknown (Min_bps is not checked).
   */
  expectedSecretBitsPerSecond?(keyLengthBits: number): number | undefined;
  /**
   * The stream's totals since this module started (rounds, blocks, bits, keys; never key material), served with the
   * round history by the stats route. Absent: the simulator keeps none.
   */
  streamStats?(keyStreamId: string): RoundStats | undefined;
  /** Releases worker threads and timers. */
  close?(): Promise<void>;
}

/** A malformed or unexpected simulator message from the peer: the round is abandoned, no key stored. */
export class RoundProtocolError extends Error {
  override readonly name = 'RoundProtocolError';
}
