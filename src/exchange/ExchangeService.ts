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
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { fail, ok, type Result } from '../core/errors.js';
import { KeyedMutex } from '../core/keyedMutex.js';
import type { KeyStreamManager } from '../core/KeyStreamManager.js';
import { sleep, Wakeup } from '../core/wakeup.js';
import { RoundProtocolError, type ReceiverRound, type RoundStats, type Simulator } from '../sim/Simulator.js';
import { PeerError, type CommitMessage, type CommitReply, type PeerClient, type RoundMessage, type RoundReply } from './peerProtocol.js';

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

  constructor(
    private readonly manager: KeyStreamManager,
    private readonly simulator: Simulator,
    private readonly peer: PeerClient,
    private readonly settings: ExchangeSettings,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.manager.on('ready', this.onReady);
    this.manager.on('closed', this.onClosed);
    this.manager.on('taken', this.onTaken);
    for (const id of this.manager.readyStreams()) this.onReady(id);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.manager.off('ready', this.onReady);
    this.manager.off('closed', this.onClosed);
    this.manager.off('taken', this.onTaken);
    const loops = [...this.loops.values()];
    for (const loop of loops) loop.abort.abort();
    await Promise.all(loops.map((l) => l.done));
    this.loops.clear();
  }

  /** Recent rounds of a stream (never key material). */
  roundHistory(keyStreamId: string): RoundRecord[] {
    return this.stats.get(keyStreamId) ?? [];
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
      const committed = await this.manager.commit(msg.keyStreamId, msg.committedUpTo);
      if (!committed.ok) return committed;
      if (msg.firstIndex < stream.nextIndex) {
        return fail('STALE_ROUND', `round at index ${msg.firstIndex} is below the committed index ${stream.nextIndex}`);
      }
      const newest = this.newestRoundSeq.get(msg.keyStreamId) ?? 0;
      if (msg.roundSeq < newest) {
        return fail('BAD_REQUEST', `message of an abandoned round (sequence ${msg.roundSeq} < ${newest}) refused`);
      }
      this.newestRoundSeq.set(msg.keyStreamId, msg.roundSeq);
      let session = this.sessions.get(msg.keyStreamId);
      if (!session || session.roundId !== msg.roundId) {
        session?.round.abandon?.(); // the sender gave that round up
        session = {
          roundId: msg.roundId,
          firstIndex: msg.firstIndex,
          round: this.simulator.openReceiverRound({
            keyStreamId: msg.keyStreamId,
            firstIndex: msg.firstIndex,
            keyLengthBits: msg.keyLengthBits,
            maxKeys: msg.maxKeys,
          }),
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
        if (err instanceof RoundProtocolError) return fail('BAD_REQUEST', err.message);
        throw err;
      }
      let stored: number | undefined;
      if (step.result) {
        this.sessions.delete(msg.keyStreamId);
        if (step.result.keys.length > msg.maxKeys) return fail('BAD_REQUEST', `round produced ${step.result.keys.length} keys, more than maxKeys ${msg.maxKeys}`);
        const put = await this.manager.storeKeys(msg.keyStreamId, msg.firstIndex, step.result.keys);
        if (!put.ok) return put;
        stored = step.result.keys.length;
        this.record(msg.keyStreamId, msg.firstIndex, stored, step.result.stats);
      }
      return ok({ reply: step.reply, ...(stored !== undefined ? { stored } : {}), available: this.manager.available(msg.keyStreamId) });
    });
  }

  /** POST /peer/commit at the receiving module. */
  async handleCommit(msg: CommitMessage): Promise<Result<CommitReply>> {
    // Under the round lock: a commit never interleaves with the storing of a round.
    return this.receiverMutex.run(msg.keyStreamId, async () => {
      const stream = this.manager.stream(msg.keyStreamId);
      if (!stream) return fail('UNKNOWN_STREAM', `unknown Key_stream_ID ${msg.keyStreamId}`);
      const committed = await this.manager.commit(msg.keyStreamId, msg.committedUpTo);
      if (!committed.ok) return committed;
      return ok({ nextIndex: stream.nextIndex, available: committed.value });
    });
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
    const loop = this.loops.get(keyStreamId);
    if (loop) loop.abort.abort();
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
          // Also repairs a commit notice lost before a crash or a network failure.
          await this.commitAtPeer(keyStreamId);
          peerCountKnown = true;
        }
        const room = this.manager.room(keyStreamId);
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
        if (err instanceof PeerError && err.kind === 'refused' && err.peerCode === 'STALE_ROUND') {
          this.log.error({ keyStreamId, err: err.message }, 'peer is ahead of this module (state lost here?): exchange halted for this stream');
          break;
        }
        peerCountKnown = false;
        this.log.warn({ keyStreamId, retryInMs: backoff, err: (err as Error).message }, 'exchange round failed; retrying');
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, this.settings.retryMaxMs);
      }
    }
    this.log.info({ keyStreamId }, 'exchange stopped');
    if (!this.stopped && this.manager.stream(keyStreamId)?.closed) void this.repairCommitAfterClose(keyStreamId);
  }

  /**
   * After a close, tell the receiver the final commit counter once more (bounded retries): a commit
   * notice lost just before the close would otherwise leave the receiver's last keys undeliverable.
   */
  private async repairCommitAfterClose(keyStreamId: string): Promise<void> {
    let backoff = this.settings.retryInitialMs;
    for (let attempt = 0; attempt < 5 && !this.stopped; attempt++) {
      try {
        await this.commitAtPeer(keyStreamId);
        return;
      } catch (err) {
        if (err instanceof PeerError && err.kind === 'refused') return; // it answered: nothing more to repair
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

  private async runOneRound(keyStreamId: string, room: number, signal: AbortSignal): Promise<void> {
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
        const reply = await this.peer.round(
          stream.peerUrl,
          { ...params, roundId, roundSeq, committedUpTo: stream.nextIndex, step, payload },
          this.settings.peerTimeoutMs,
        );
        this.manager.setPeerAvailable(keyStreamId, reply.available);
        if (reply.stored !== undefined) receiverStored = reply.stored;
        return reply.reply;
      },
    });
    const count = result.keys.length;
    if (count > 0) {
      if (receiverStored !== count) {
        throw new PeerError('protocol', `receiver stored ${receiverStored ?? 'no'} keys, sender has ${count}: round not committed`);
      }
      const put = await this.manager.storeKeys(keyStreamId, firstIndex, result.keys);
      if (!put.ok) throw put.error;
      const committed = await this.manager.commit(keyStreamId, firstIndex + count);
      if (!committed.ok) throw committed.error;
      await this.commitAtPeer(keyStreamId);
    }
    this.record(keyStreamId, firstIndex, count, result.stats);
  }

  private async commitAtPeer(keyStreamId: string): Promise<void> {
    const stream = this.manager.stream(keyStreamId)!;
    const reply = await this.peer.commit(stream.peerUrl, { keyStreamId, committedUpTo: stream.nextIndex }, this.settings.peerTimeoutMs);
    this.manager.setPeerAvailable(keyStreamId, reply.available);
    if (reply.nextIndex > stream.nextIndex) {
      throw new PeerError('refused', `peer committed up to ${reply.nextIndex}, beyond this module's ${stream.nextIndex}`, 'STALE_ROUND');
    }
  }

  private record(keyStreamId: string, firstIndex: number, keys: number, stats?: RoundStats): void {
    let list = this.stats.get(keyStreamId);
    if (!list) this.stats.set(keyStreamId, (list = []));
    list.push({ firstIndex, keys, at: new Date().toISOString(), ...(stats ? { stats } : {}) });
    if (list.length > this.settings.statsWindow) list.splice(0, list.length - this.settings.statsWindow);
  }
}

