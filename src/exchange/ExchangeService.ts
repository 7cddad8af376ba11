/**
 * Runs the key exchange of every ready stream.
 *
 * Sender side (module.sender = 1): one loop per stream. Each iteration runs one simulator round
 * toward the peer, then commits it:
 *   1. round: the receiver stores the round's keys at firstIndex.. (not yet deliverable);
 *   2. the sender stores its keys at the same indices and advances its commit counter (durable);
 *   3. the sender tells the receiver to commit (every round message also carries the counter,
 *      so a lost commit is repaired by the next message).
 * A crash anywhere leaves at most an uncommitted round, which the next round overwrites at the
 * same indices: no index is skipped or reused, and a key is deliverable at one end only when the
 * other end holds it durably too.
 *
 * Receiver side: feeds round messages to the simulator's ReceiverRound, stores the keys, commits
 * on the sender's word, and tells the sender (POST /start) when its application took keys.
 *
 * Waiting is event-driven (Wakeup) with timers for back-off; nothing polls in a loop.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { fail, ok, QkdmError, type Result } from '../core/errors.js';
import { KeyedMutex } from '../core/keyedMutex.js';
import type { KeyStreamManager } from '../core/KeyStreamManager.js';
import { NO_TELEMETRY, type BlockFigures, type ModuleTelemetry, type RoundFailure } from '../core/telemetry.js';
import { sleep, Wakeup } from '../core/wakeup.js';
import { StoreError } from '../store/errors.js';
import { RoundProtocolError, type ReceiverRound, type RoundStats, type Simulator } from '../sim/Simulator.js';
import { confirmationTag, tagMatches } from './keyConfirmation.js';
import {
  PeerError,
  type ConfirmMessage,
  type ConfirmReply,
  type CounterMessage,
  type CounterReply,
  type PeerClient,
  type RoundMessage,
  type RoundReply,
} from './peerProtocol.js';

/** A round sequence number further ahead of this module's clock than this is refused. */
export const MAX_ROUND_SEQ_AHEAD_MS = 86_400_000;

/** The two ends' counters disagree in a way no round can repair: the stream halts. */
class OutOfStep extends Error {
  override readonly name = 'OutOfStep';
}

/** Key confirmation failed: the round was discarded at both ends; the loop backs off and tries again. */
class ConfirmationFailed extends Error {
  override readonly name = 'ConfirmationFailed';
}

export interface ExchangeSettings {
  sender: 0 | 1;
  peerTimeoutMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
  /** While paused at max_key_count, re-ask the peer's count after this long (a lost /start must not stall a stream). */
  roomRecheckMs: number;
  /** Round statistics kept per stream. */
  statsWindow: number;
}

interface SenderLoop {
  abort: AbortController;
  wake: Wakeup;
  done: Promise<void>;
}

interface ReceiverSession {
  roundId: string;
  firstIndex: number;
  round: ReceiverRound;
  /** performance.now() at the round's first message (round duration telemetry). */
  startedAt: number;
}

/** Receiver: a finished round whose keys are stored but wait for the sender's confirmation. */
interface PendingRound {
  roundId: string;
  firstIndex: number;
  /** Copies of the round's keys (zeroed when confirmed or dropped). */
  keys: Uint8Array[];
  stats: RoundStats | undefined;
  startedAt: number;
}

export interface RoundRecord {
  firstIndex: number;
  keys: number;
  at: string;
  stats?: RoundStats;
}

export class ExchangeService {
  private readonly loops = new Map<string, SenderLoop>();
  private readonly sessions = new Map<string, ReceiverSession>();
  private readonly receiverMutex = new KeyedMutex();
  private readonly noticeInFlight = new Map<string, boolean>();
  private readonly stats = new Map<string, RoundRecord[]>();
  private stopped = false;
  /** Sender: sequence number of the last round started (see RoundMessage.roundSeq). */
  private lastRoundSeq = 0;
  /** Receiver: newest round sequence seen per stream. */
  private readonly newestRoundSeq = new Map<string, number>();
  /** Receiver: the finished round of each stream that waits for confirmation. */
  private readonly pending = new Map<string, PendingRound>();
  /** Sender: the receiver's module.max_key_count, per stream, as last reported. */
  private readonly peerMaxKeyCount = new Map<string, number>();

  constructor(
    private readonly manager: KeyStreamManager,
    private readonly simulator: Simulator,
    private readonly peer: PeerClient,
    private readonly settings: ExchangeSettings,
    private readonly log: Logger,
    private readonly telemetry: ModuleTelemetry = NO_TELEMETRY,
  ) {}

  start(): void {
    this.manager.on('ready', this.onReady);
    this.manager.on('closed', this.onClosed);
    this.manager.on('taken', this.onTaken);
    this.manager.on('purged', this.onPurged);
    for (const id of this.manager.readyStreams()) this.onReady(id);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.manager.off('ready', this.onReady);
    this.manager.off('closed', this.onClosed);
    this.manager.off('taken', this.onTaken);
    this.manager.off('purged', this.onPurged);
    const loops = [...this.loops.values()];
    for (const loop of loops) loop.abort.abort();
    await Promise.all(loops.map((l) => l.done));
    this.loops.clear();
  }

  /** Recent rounds of a stream (never key material). */
  roundHistory(keyStreamId: string): RoundRecord[] {
    return this.stats.get(keyStreamId) ?? [];
  }

  /** The simulator's totals for the stream since this module started, when it keeps any (never key material). */
  streamTotals(keyStreamId: string): RoundStats | undefined {
    return this.simulator.streamStats?.(keyStreamId);
  }

  /**
   * Secret bits per second the link is expected to deliver for this key size, from the simulator
   * (Infinity: unlimited for QoS purposes; undefined: unknown).
   */
  linkCapability(keyLengthBits: number): number | undefined {
    return this.simulator.expectedSecretBitsPerSecond?.(keyLengthBits);
  }

  isRunning(keyStreamId: string): boolean {
    return this.loops.has(keyStreamId);
  }

  // ------------------------------------------------------------------ receiver side

  /** POST /peer/round at the receiving module. */
  async handleRound(msg: RoundMessage): Promise<Result<RoundReply>> {
    if (this.settings.sender === 1) return fail('ROLE_CLASH', 'this module is a sender (module.sender = 1) and does not accept rounds');
    return this.receiverMutex.run(msg.keyStreamId, async () => {
      const stream = this.manager.stream(msg.keyStreamId);
      if (!stream) return fail('UNKNOWN_STREAM', `unknown Key_stream_ID ${msg.keyStreamId}`);
      if (stream.closed) return fail('STREAM_CLOSED', `Key_stream_ID ${msg.keyStreamId} is closed`);
      if (msg.keyLengthBits !== stream.keyLengthBits) return fail('BAD_REQUEST', `round key length ${msg.keyLengthBits} differs from the stream's ${stream.keyLengthBits}`);
      if (msg.firstIndex < stream.nextIndex) {
        return fail('STALE_ROUND', `round at index ${msg.firstIndex} is below the committed index ${stream.nextIndex}`);
      }
      if (msg.firstIndex > stream.nextIndex) {
        return fail('BAD_REQUEST', `round at index ${msg.firstIndex} skips indices: this module's next key is ${stream.nextIndex}`);
      }
      const room = this.manager.settings.maxKeyCount - this.manager.available(msg.keyStreamId);
      if (msg.maxKeys > room) {
        return fail('BAD_REQUEST', `round asks for up to ${msg.maxKeys} keys; this module has room for ${room} (module.max_key_count ${this.manager.settings.maxKeyCount})`);
      }
      // Sequence numbers are microseconds since the epoch (or the last + 1): one far in the future would
      // make every later round look abandoned, so it is refused rather than remembered.
      if (msg.roundSeq > (Date.now() + MAX_ROUND_SEQ_AHEAD_MS) * 1000) {
        return fail('BAD_REQUEST', `round sequence ${msg.roundSeq} is more than a day ahead of this module's clock`);
      }
      const newest = this.newestRoundSeq.get(msg.keyStreamId) ?? 0;
      if (msg.roundSeq < newest) {
        return fail('BAD_REQUEST', `message of an abandoned round (sequence ${msg.roundSeq} < ${newest}) refused`);
      }
      let session = this.sessions.get(msg.keyStreamId);
      if (!session || session.roundId !== msg.roundId) {
        if (session) {
          session.round.abandon?.(); // the sender gave that round up
          this.reportAborted(msg.keyStreamId, 'abandoned', undefined, session.startedAt);
        }
        const replaced = this.pending.get(msg.keyStreamId);
        if (replaced) this.reportAborted(msg.keyStreamId, 'abandoned', replaced.stats, replaced.startedAt);
        this.dropPending(msg.keyStreamId);
        session = {
          roundId: msg.roundId,
          firstIndex: msg.firstIndex,
          round: this.simulator.openReceiverRound({
            keyStreamId: msg.keyStreamId,
            firstIndex: msg.firstIndex,
            keyLengthBits: msg.keyLengthBits,
            maxKeys: msg.maxKeys,
          }),
          startedAt: performance.now(),
        };
        this.sessions.set(msg.keyStreamId, session);
      } else if (session.firstIndex !== msg.firstIndex) {
        return fail('BAD_REQUEST', 'round message changes firstIndex within a round');
      }
      let step;
      try {
        step = await session.round.handle(msg.step, msg.payload);
      } catch (err) {
        this.sessions.delete(msg.keyStreamId);
        this.reportAborted(msg.keyStreamId, roundFailure(err), undefined, session.startedAt);
        if (err instanceof RoundProtocolError) return fail('BAD_REQUEST', err.message);
        throw err;
      }
      this.newestRoundSeq.set(msg.keyStreamId, msg.roundSeq);
      let stored: number | undefined;
      if (step.result) {
        this.sessions.delete(msg.keyStreamId);
        const keys = step.result.keys;
        if (keys.length > msg.maxKeys) {
          this.reportAborted(msg.keyStreamId, 'protocol-error', step.result.stats, session.startedAt);
          return fail('BAD_REQUEST', `round produced ${keys.length} keys, more than maxKeys ${msg.maxKeys}`);
        }
        // Stored durably but not deliverable: the keys become deliverable only when POST /peer/confirm
        // shows the sender holds the same keys.
        const put = await this.manager.storeKeys(msg.keyStreamId, msg.firstIndex, keys);
        if (!put.ok) {
          this.reportAborted(msg.keyStreamId, roundFailure(put.error), step.result.stats, session.startedAt);
          return put;
        }
        stored = keys.length;
        if (stored > 0) {
          this.pending.set(msg.keyStreamId, { roundId: msg.roundId, firstIndex: msg.firstIndex, keys: keys.map((k) => Uint8Array.from(k)), stats: step.result.stats, startedAt: session.startedAt });
        } else {
          this.reportKeyless(msg.keyStreamId, step.result.stats, session.startedAt);
        }
      }
      return ok({ reply: step.reply, ...(stored !== undefined ? { stored } : {}), available: this.manager.available(msg.keyStreamId) });
    });
  }

  /**
   * POST /peer/confirm at the receiving module: commits the round's keys when the sender's tag matches
   * them, and proves with its own tag that it holds them. A mismatch discards the round and halts the stream.
   */
  async handleConfirm(msg: ConfirmMessage): Promise<Result<ConfirmReply>> {
    if (this.settings.sender === 1) return fail('ROLE_CLASH', 'this module is a sender (module.sender = 1): only the receiver confirms rounds');
    return this.receiverMutex.run(msg.keyStreamId, async () => {
      const stream = this.manager.stream(msg.keyStreamId);
      if (!stream) return fail('UNKNOWN_STREAM', `unknown Key_stream_ID ${msg.keyStreamId}`);
      if (stream.closed) {
        // A round finished as the stream closed: neither end commits it.
        this.dropPending(msg.keyStreamId);
        return fail('STREAM_CLOSED', `Key_stream_ID ${msg.keyStreamId} is closed`);
      }
      const round = this.pending.get(msg.keyStreamId);
      if (!round || round.roundId !== msg.roundId || round.firstIndex !== msg.firstIndex || round.keys.length !== msg.count || msg.firstIndex !== stream.nextIndex) {
        return fail('BAD_REQUEST', `no finished round ${msg.roundId} of ${msg.count} keys at index ${msg.firstIndex} waits for confirmation here`);
      }
      const seed = Buffer.from(msg.seed, 'base64');
      const context = { keyStreamId: msg.keyStreamId, roundId: msg.roundId, firstIndex: msg.firstIndex, keyLengthBits: stream.keyLengthBits };
      const expected = confirmationTag(seed, 'sender', context, round.keys);
      if (!tagMatches(expected, msg.tag)) {
        this.reportAborted(msg.keyStreamId, 'confirmation-failed', round.stats, round.startedAt);
        this.dropPending(msg.keyStreamId);
        const discarded = await this.manager.discardUncommitted(msg.keyStreamId, 'halted-round');
        const range = `${msg.firstIndex}..${msg.firstIndex + msg.count - 1}`;
        this.manager.halt(msg.keyStreamId, `key confirmation failed: the two ends hold different keys for indices ${range}; the round was discarded at both ends`);
        if (!discarded.ok) return discarded;
        return ok({ match: false, nextIndex: stream.nextIndex, available: this.manager.available(msg.keyStreamId) });
      }
      const committed = await this.manager.commit(msg.keyStreamId, msg.firstIndex + msg.count);
      if (!committed.ok) {
        this.reportAborted(msg.keyStreamId, roundFailure(committed.error), round.stats, round.startedAt);
        return committed;
      }
      const tag = confirmationTag(seed, 'receiver', context, round.keys).toString('base64');
      this.record(msg.keyStreamId, msg.firstIndex, msg.count, round.stats);
      this.telemetry.blockCommitted({
        keyStreamId: msg.keyStreamId,
        keys: msg.count,
        keyLengthBits: stream.keyLengthBits,
        durationMs: performance.now() - round.startedAt,
        ...blockFigures(round.stats),
      });
      this.dropPending(msg.keyStreamId);
      this.manager.resume(msg.keyStreamId);
      return ok({ match: true, tag, nextIndex: stream.nextIndex, available: committed.value });
    });
  }

  /** POST /peer/counter at the receiving module: its commit counter and room; nothing moves. */
  handleCounter(msg: CounterMessage): Result<CounterReply> {
    if (this.settings.sender === 1) return fail('ROLE_CLASH', 'this module is a sender (module.sender = 1) and has no receiver counter to report');
    const stream = this.manager.stream(msg.keyStreamId);
    if (!stream) return fail('UNKNOWN_STREAM', `unknown Key_stream_ID ${msg.keyStreamId}`);
    return ok({ nextIndex: stream.nextIndex, available: this.manager.available(msg.keyStreamId), maxKeyCount: this.manager.settings.maxKeyCount });
  }

  private dropPending(keyStreamId: string): void {
    const round = this.pending.get(keyStreamId);
    if (!round) return;
    for (const k of round.keys) k.fill(0);
    this.pending.delete(keyStreamId);
  }

  // ------------------------------------------------------------------ events

  private readonly onReady = (keyStreamId: string): void => {
    if (this.settings.sender !== 1 || this.stopped || this.loops.has(keyStreamId)) return;
    const loop: SenderLoop = { abort: new AbortController(), wake: new Wakeup(), done: Promise.resolve() };
    this.loops.set(keyStreamId, loop);
    loop.done = this.runSender(keyStreamId, loop)
      .catch((err: unknown) => this.log.error({ keyStreamId, err: (err as Error).message }, 'exchange loop failed'))
      .finally(() => {
        if (this.loops.get(keyStreamId) === loop) this.loops.delete(keyStreamId);
      });
  };

  private readonly onClosed = (keyStreamId: string): void => {
    this.sessions.get(keyStreamId)?.round.abandon?.();
    this.sessions.delete(keyStreamId);
    this.dropPending(keyStreamId);
    const loop = this.loops.get(keyStreamId);
    if (loop) loop.abort.abort();
  };

  private readonly onPurged = (keyStreamId: string): void => {
    this.onClosed(keyStreamId);
    this.stats.delete(keyStreamId);
    this.newestRoundSeq.delete(keyStreamId);
    this.peerMaxKeyCount.delete(keyStreamId);
  };

  private readonly onTaken = (keyStreamId: string): void => {
    if (this.settings.sender === 1) {
      this.loops.get(keyStreamId)?.wake.notify();
      return;
    }
    void this.sendStartNotice(keyStreamId);
  };

  /** Receiver: tells the sender its application took keys. One notice in flight per stream; the latest count wins. */
  private async sendStartNotice(keyStreamId: string): Promise<void> {
    if (this.noticeInFlight.has(keyStreamId)) {
      this.noticeInFlight.set(keyStreamId, true); // send again once the current one is done
      return;
    }
    this.noticeInFlight.set(keyStreamId, false);
    try {
      for (;;) {
        const stream = this.manager.stream(keyStreamId);
        if (!stream || stream.closed) return;
        try {
          await this.peer.start(stream.peerUrl, { keyStreamId, available: this.manager.available(keyStreamId) }, this.settings.peerTimeoutMs);
        } catch (err) {
          // The sender re-asks after roomRecheckMs anyway; no retry storm here.
          this.log.debug({ keyStreamId, err: (err as Error).message }, 'start notice not delivered');
        }
        if (!this.noticeInFlight.get(keyStreamId)) return;
        this.noticeInFlight.set(keyStreamId, false);
      }
    } finally {
      this.noticeInFlight.delete(keyStreamId);
    }
  }

  // ------------------------------------------------------------------ sender side

  private async runSender(keyStreamId: string, loop: SenderLoop): Promise<void> {
    const { signal } = loop.abort;
    let backoff = this.settings.retryInitialMs;
    let peerCountKnown = false;
    this.log.info({ keyStreamId, sim: this.simulator.name }, 'exchange started');
    while (!signal.aborted) {
      const stream = this.manager.stream(keyStreamId);
      if (!stream || stream.closed) break;
      try {
        if (!peerCountKnown) {
          // After a start, an error or a restart: learn the receiver's counter (and catch up with a
          // round it confirmed whose answer never arrived here).
          await this.syncCounter(keyStreamId);
          peerCountKnown = true;
        }
        const room = this.senderRoom(keyStreamId);
        if (room <= 0 || (room < this.refillBatch() && !this.manager.starving(keyStreamId))) {
          const woken = await loop.wake.wait(this.settings.roomRecheckMs, signal);
          if (!woken) peerCountKnown = false;
          continue;
        }
        await this.runOneRound(keyStreamId, room, signal);
        backoff = this.settings.retryInitialMs;
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof PeerError && err.kind === 'refused' && (err.peerCode === 'STREAM_CLOSED' || err.peerCode === 'UNKNOWN_STREAM')) {
          this.log.warn({ keyStreamId, err: err.message }, 'peer no longer has the stream open: closing it here');
          const closed = await this.manager.onPeerClosed(keyStreamId).catch((e: unknown) => ({ ok: false, e }));
          if (!closed.ok) this.log.error({ keyStreamId }, 'could not record the close (handle store down?); exchange stopped');
          break;
        }
        if (err instanceof OutOfStep) {
          this.manager.halt(keyStreamId, err.message);
          break;
        }
        peerCountKnown = false;
        if (!(err instanceof ConfirmationFailed)) {
          this.log.warn({ keyStreamId, retryInMs: backoff, err: (err as Error).message }, 'exchange round failed; retrying');
        }
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, this.settings.retryMaxMs);
      }
    }
    this.log.info({ keyStreamId }, 'exchange stopped');
    if (!this.stopped && this.manager.stream(keyStreamId)?.closed) void this.settleAfterClose(keyStreamId);
  }

  /**
   * After a close, read the receiver's counter once more (bounded retries): if it confirmed a last round
   * whose answer was lost, this end commits that round too, so both ends end with the same keys.
   */
  private async settleAfterClose(keyStreamId: string): Promise<void> {
    let backoff = this.settings.retryInitialMs;
    for (let attempt = 0; attempt < 5 && !this.stopped; attempt++) {
      try {
        await this.syncCounter(keyStreamId);
        return;
      } catch (err) {
        // Keys discarded by a local CLOSE cannot be rolled forward, and need not be: nothing to settle.
        if (err instanceof OutOfStep) return;
        if (err instanceof PeerError && err.kind === 'refused') return; // it answered: nothing more to settle
        await sleep(backoff);
        backoff = Math.min(backoff * 2, this.settings.retryMaxMs);
      }
    }
  }

  /**
   * Rounds are batched: a stream that still has keys at both ends is refilled only when a quarter of
   * max_key_count is free, so steady consumption costs one round (and one durable write per end) per
   * batch rather than per key. A stream with no key left at either end is refilled at once.
   */
  private refillBatch(): number {
    return Math.max(1, Math.floor(this.manager.settings.maxKeyCount / 4));
  }

  /** Room for a round: this end's room, and never more than the receiver's own max_key_count allows. */
  private senderRoom(keyStreamId: string): number {
    const room = this.manager.room(keyStreamId);
    const peerMax = this.peerMaxKeyCount.get(keyStreamId);
    if (peerMax === undefined) return room;
    return Math.min(room, peerMax - (this.manager.peerAvailable(keyStreamId) ?? 0));
  }

  /** One round, reported to telemetry: committed, dropped by the simulator, or failed (unless the stream is stopping). */
  private async runOneRound(keyStreamId: string, room: number, signal: AbortSignal): Promise<void> {
    const startedAt = performance.now();
    try {
      await this.runRound(keyStreamId, room, signal, startedAt);
    } catch (err) {
      if (!signal.aborted && !this.manager.stream(keyStreamId)?.closed) this.reportAborted(keyStreamId, roundFailure(err), undefined, startedAt);
      throw err;
    }
  }

  private async runRound(keyStreamId: string, room: number, signal: AbortSignal, startedAt: number): Promise<void> {
    const stream = this.manager.stream(keyStreamId)!;
    const firstIndex = stream.nextIndex;
    const roundId = randomUUID();
    this.lastRoundSeq = Math.max(Date.now() * 1000, this.lastRoundSeq + 1);
    const roundSeq = this.lastRoundSeq;
    const params = { keyStreamId, firstIndex, keyLengthBits: stream.keyLengthBits, maxKeys: room };
    let receiverStored: number | undefined;
    const result = await this.simulator.runSenderRound(params, {
      request: async (step, payload) => {
        if (signal.aborted) throw new PeerError('unreachable', 'exchange stopping');
        const reply = await this.peer.round(stream.peerUrl, { ...params, roundId, roundSeq, step, payload }, this.settings.peerTimeoutMs);
        this.manager.setPeerAvailable(keyStreamId, reply.available);
        if (reply.stored !== undefined) receiverStored = reply.stored;
        return reply.reply;
      },
    });
    const keys = result.keys;
    const count = keys.length;
    try {
      if (count > 0) {
        if (receiverStored !== count) {
          throw new PeerError('protocol', `receiver stored ${receiverStored ?? 'no'} keys, sender has ${count}: round not committed`);
        }
        // Durable before the confirmation goes out: if the receiver commits and the answer is lost,
        // this end still holds the same keys and rolls forward (syncCounter).
        const put = await this.manager.storeKeys(keyStreamId, firstIndex, keys);
        if (!put.ok) throw put.error;
        await this.confirmRound(keyStreamId, roundId, firstIndex, stream.keyLengthBits, keys);
      }
    } finally {
      for (const k of keys) k.fill(0);
    }
    if (count > 0) this.manager.resume(keyStreamId);
    this.record(keyStreamId, firstIndex, count, result.stats);
    if (count > 0) {
      this.telemetry.blockCommitted({ keyStreamId, keys: count, keyLengthBits: stream.keyLengthBits, durationMs: performance.now() - startedAt, ...blockFigures(result.stats) });
    } else {
      this.reportKeyless(keyStreamId, result.stats, startedAt);
    }
  }

  /** Key confirmation of a finished round (see keyConfirmation.ts); commits here when both ends agree. */
  private async confirmRound(keyStreamId: string, roundId: string, firstIndex: number, keyLengthBits: number, keys: Uint8Array[]): Promise<void> {
    const stream = this.manager.stream(keyStreamId)!;
    const seed = randomBytes(32);
    const context = { keyStreamId, roundId, firstIndex, keyLengthBits };
    const tag = confirmationTag(seed, 'sender', context, keys).toString('base64');
    const reply = await this.peer.confirm(stream.peerUrl, { keyStreamId, roundId, firstIndex, count: keys.length, seed: seed.toString('base64'), tag }, this.settings.peerTimeoutMs);
    this.manager.setPeerAvailable(keyStreamId, reply.available);
    const range = `${firstIndex}..${firstIndex + keys.length - 1}`;
    if (!reply.match || !tagMatches(confirmationTag(seed, 'receiver', context, keys), reply.tag)) {
      await this.manager.discardUncommitted(keyStreamId, 'halted-round');
      const reason = reply.match
        ? `key confirmation failed: the receiver's proof for indices ${range} does not match this module's keys; the round was discarded`
        : `key confirmation failed: the two ends hold different keys for indices ${range}; the round was discarded at both ends`;
      this.manager.halt(keyStreamId, reason);
      throw new ConfirmationFailed(reason);
    }
    const committed = await this.manager.commit(keyStreamId, firstIndex + keys.length);
    if (!committed.ok) throw committed.error;
  }

  /** Reads the receiver's counter and room; catches up with a round it confirmed (see rollForward). */
  private async syncCounter(keyStreamId: string): Promise<void> {
    const stream = this.manager.stream(keyStreamId)!;
    const reply = await this.peer.counter(stream.peerUrl, { keyStreamId }, this.settings.peerTimeoutMs);
    this.manager.setPeerAvailable(keyStreamId, reply.available);
    this.peerMaxKeyCount.set(keyStreamId, reply.maxKeyCount);
    if (reply.nextIndex > stream.nextIndex) {
      const rolled = await this.manager.rollForward(keyStreamId, reply.nextIndex);
      if (!rolled.ok) throw rolled.error;
      if (!rolled.value) {
        throw new OutOfStep(`the peer committed up to index ${reply.nextIndex}, beyond this module's ${stream.nextIndex}, and this module does not hold those keys (state lost here?): exchange halted`);
      }
      this.log.warn({ keyStreamId, nextIndex: reply.nextIndex }, 'the receiver had confirmed the last round: committed here too');
    } else if (reply.nextIndex < stream.nextIndex) {
      throw new OutOfStep(`the peer's commit counter ${reply.nextIndex} is behind this module's ${stream.nextIndex} (state lost at the peer?): exchange halted`);
    }
  }

  /** A round that ended without keys: an abort, or (BB84) an EC block kept for a later privacy amplification. */
  private reportKeyless(keyStreamId: string, stats: RoundStats | undefined, startedAt: number): void {
    if (stats?.accumulated === true && typeof stats.reason !== 'string') {
      this.telemetry.blockAccumulated(keyStreamId, blockFigures(stats), performance.now() - startedAt);
    } else {
      this.reportAborted(keyStreamId, dropReason(stats), stats, startedAt);
    }
  }

  private reportAborted(keyStreamId: string, reason: string, stats: RoundStats | undefined, startedAt: number | undefined): void {
    this.telemetry.blockAborted(keyStreamId, reason, blockFigures(stats), startedAt === undefined ? undefined : performance.now() - startedAt);
  }

  private record(keyStreamId: string, firstIndex: number, keys: number, stats?: RoundStats): void {
    let list = this.stats.get(keyStreamId);
    if (!list) this.stats.set(keyStreamId, (list = []));
    list.push({ firstIndex, keys, at: new Date().toISOString(), ...(stats ? { stats } : {}) });
    if (list.length > this.settings.statsWindow) list.splice(0, list.length - this.settings.statsWindow);
  }
}


/** The figures telemetry keeps of a block, from the simulator's round statistics (never key material). */
function blockFigures(stats: RoundStats | undefined): BlockFigures {
  const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  // BB84: a round that amplified a PA block reports its secret bits over the PA block's pulses (paPulses).
  return { qber: num(stats?.qberZ) ?? num(stats?.qberEstimate), secretBits: num(stats?.secretBits), pulses: num(stats?.paPulses) ?? num(stats?.pulses) };
}

/** Why a round without keys produced none: the simulator's reason (BB84's drop reasons), or `no-keys`. */
function dropReason(stats: RoundStats | undefined): string {
  return typeof stats?.reason === 'string' ? stats.reason : 'no-keys';
}

/** A failed round's reason for telemetry (one of ROUND_FAILURES). */
function roundFailure(err: unknown): RoundFailure {
  if (err instanceof ConfirmationFailed) return 'confirmation-failed';
  if (err instanceof OutOfStep) return 'out-of-step';
  if (err instanceof PeerError) return err.kind === 'refused' ? 'peer-refused' : err.kind === 'protocol' ? 'protocol-error' : 'peer-unreachable';
  if (err instanceof RoundProtocolError) return 'protocol-error';
  if (err instanceof StoreError) return 'store-error';
  if (err instanceof QkdmError) return err.code === 'STORE_UNAVAILABLE' ? 'store-error' : 'protocol-error';
  return 'error';
}
