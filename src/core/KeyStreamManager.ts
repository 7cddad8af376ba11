/**
 * The core: key streams, the rendezvous of the two applications, key indices and delivery.
 * It speaks only to ports (HandleStore, KeyStore, PeerClient) and returns Result values;
 * the api layer turns those into wire answers, the exchange layer produces keys through it.
 *
 * Invariants (see docs/architecture.md):
 * - a key at index i is deliverable at this end only when i < stream.nextIndex (committed);
 * - keys below nextIndex are never overwritten (storeKeys refuses such a round);
 * - a key is handed out at most once: its index is claimed in memory synchronously, then taken
 *   from the store (which erases it) before it is returned;
 * - TTL (QoS, ETSI 004): a key of a stream with a TTL is never delivered once older than the TTL, and
 *   is erased through KeyStore.take (the same path as delivery) by a timer set for the earliest
 *   expiry. Age counts from when this end stored the key; for keys found at start-up, whose store
 *   time is unknown, from the stream's creation (the only proven bound), so a restart never extends
 *   a key's life.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { HandleStore } from '../store/HandleStore.js';
import type { KeyStore } from '../store/KeyStore.js';
import type { ReconciledBlockStore } from '../store/ReconciledBlockStore.js';
import { PeerError, normalizePeerAddress, type PeerClient, type SyncReply, type SyncRequest } from '../exchange/peerProtocol.js';
import { ERROR_CATALOGUE, fail, ok, QkdmError, type Result } from './errors.js';
import { RetainedKeys, type RetainedKey } from './retainedKeys.js';
import { IndexSet } from './indexSet.js';
import { KeyBatches } from './keyBatches.js';
import { KeyedMutex } from './keyedMutex.js';
import { NO_TELEMETRY, type DiscardReason, type ModuleTelemetry } from './telemetry.js';
import { ETSI014_OWNER, LOCAL_OWNER, type KeyStream, type KeyStreamPatch } from './types.js';
import { Wakeup } from './wakeup.js';

/** Defaults of the peer-facing limits (module.max_pending_registrations, ...; see ManagerSettings). */
export const DEFAULT_MAX_PENDING_REGISTRATIONS = 100;
export const DEFAULT_PENDING_REGISTRATION_TTL_MS = 3_600_000;
export const DEFAULT_CLOSED_STREAM_RETENTION_MS = 86_400_000;

export interface ManagerSettings {
  /** 1: this module drives the exchange (source); 0: detector. */
  sender: 0 | 1;
  /** Simulator name; both ends must agree. */
  sim: string;
  /** How the peer reaches this module (module.this_public_IP). */
  publicAddress: string;
  /** Per stream: committed, undelivered keys at most. */
  maxKeyCount: number;
  /** Upper bound for one peer call made on behalf of an application. */
  peerTimeoutMs: number;
  /**
   * Scheme of a peer address given without one (`host:port`, `qkd://app@host:port`): https when the peer
   * channel is configured for TLS, so such a destination is never dialled in clear. Default http.
   */
  peerScheme?: 'http' | 'https';
  /** Streams the peer registered (/sync) that no local application opened yet, at most. */
  maxPendingRegistrations?: number;
  /** Such a stream is dropped after this long. */
  pendingRegistrationTtlMs?: number;
  /** A closed stream (and any key it still holds) is purged this long after its close. */
  closedStreamRetentionMs?: number;
  /** Open streams one identity may own at most. */
  maxStreamsPerOwner?: number;
  /** GET_KEY calls waiting for a key at once: per identity, and in all. */
  maxWaitsPerOwner?: number;
  maxWaits?: number;
  /**
   * How long a key delivered to an application stays re-deliverable to it (lost answers, a crash
   * before the answer left); 0 erases keys at delivery. Default {@link DEFAULT_REDELIVERY_WINDOW_MS}.
   */
  redeliveryWindowMs?: number;
}

export const DEFAULT_REDELIVERY_WINDOW_MS = 60_000;

export const DEFAULT_MAX_STREAMS_PER_OWNER = 100;
export const DEFAULT_MAX_WAITS_PER_OWNER = 64;
export const DEFAULT_MAX_WAITS = 1024;

export interface OpenConnectRequest {
  source: string;
  destination: string;
  keyLengthBits: number;
  timeoutMs: number;
  keyStreamId: string | null;
  /** The peer module's address when `destination` is not one itself (an ETSI 004 URI); default: destination. */
  peerAddress?: string;
  /** QoS TTL in seconds; 0 or absent: none. */
  ttlSeconds?: number;
  /** The calling identity (docs/security.md, "Applications"); default LOCAL_OWNER. */
  owner?: string;
  /**
   * ETSI 004: OPEN_CONNECT repeated by the same application (same source and destination) for a stream
   * it already opened succeeds again, changing nothing. Without it (the seed API) a repeat is STREAM_IN_USE.
   */
  repeatable?: boolean;
}

export interface OpenedStream {
  keyStreamId: string;
  /** The peer's application has opened the stream too (ETSI 004 status 0 rather than 1). */
  peerConnected: boolean;
}

export interface DeliveredKey {
  key: Uint8Array;
  index: number;
  /** When this end stored the key (ms since the epoch); undefined when unknown (stored before a restart). */
  storedAt: number | undefined;
}

/** Why GET_KEY delivered nothing. */
export type NoKeyReason =
  /** It waited the whole timeout for a key that could still come; none became deliverable. */
  | 'timeout'
  /** Nothing deliverable and nothing to wait for: stream closed, index already delivered or erased, or no time to wait. */
  | 'unavailable'
  /** The peer's application has not opened the stream yet (only with `peerNotConnected: 'report'`). */
  | 'peer_not_connected'
  /** The caller's `accept` declined the chosen key; it stays deliverable. */
  | 'declined';

export type KeyDelivery = { kind: 'key'; delivered: DeliveredKey } | { kind: 'none'; reason: NoKeyReason; index: number };

export interface DeliverOptions {
  /** How long to wait for a key; default the stream's QoS timeout. */
  timeoutMs?: number;
  /**
   * Aborted when the caller is gone (the HTTP client disconnected): the call stops waiting and
   * claims no key, so a key is never taken for an answer nobody will read.
   */
  signal?: AbortSignal;
  /** Before the peer's application opened the stream: wait like for any key (default), or answer at once. */
  peerNotConnected?: 'wait' | 'report';
  /**
   * The calling identity: another identity's stream answers exactly as an unknown one. Absent: not
   * checked (internal callers). A key delivered to a caller is kept for the re-delivery window; one
   * delivered to an internal caller (ETSI 014, which keeps its own records) is erased at once.
   */
  caller?: string;
  /**
   * The application's idempotency token: a repeat of the request with the same token, within the
   * re-delivery window, gets the same key (for index -1, whose answer alone names the index).
   */
  token?: string;
  /**
   * Called with the chosen key's index, synchronously, before the key is taken from the store; returning
   * false leaves the key deliverable (e.g. the caller's metadata buffer is too small for it).
   */
  accept?(index: number, storedAt: number | undefined): boolean;
  /**
   * How telemetry counts the key this call takes: handed to an application (default), erased for this
   * reason, or 'caller': the caller reports it once it knows (ETSI 014 enc_keys delivers only when the
   * slave's KME recorded the key IDs).
   */
  countAs?: 'delivered' | DiscardReason | 'caller';
}

/** Retry delay for a TTL erasure the key store refused. */
export const TTL_ERASE_RETRY_MS = 1_000;
/** Longest delay a Node timer takes (larger values fire at once); longer TTLs re-arm the timer. */
const MAX_TIMER_MS = 2_147_483_647;

/** Per-stream state in memory; the persistent part is `stream`, mirrored in the HandleStore. */
interface StreamState {
  stream: KeyStream;
  keys: IndexSet;
  /** Notified when keys become deliverable or the stream closes. */
  arrived: Wakeup;
  /** Committed undelivered keys at the peer, as last reported. */
  peerAvailable: number | undefined;
  /** When this end stored its keys, per round (key age, TTL). */
  batches: KeyBatches;
  /** TTL erasure timer and when it fires. */
  ttlTimer: NodeJS.Timeout | undefined;
  ttlTimerAt: number;
  /** Expired indices whose erasure failed: never delivered, erased again after TTL_ERASE_RETRY_MS. */
  eraseRetry: number[];
  /** When the stream was closed here (or, for streams closed before a restart, when the module started). */
  closedAt: number | undefined;
  /** Why the exchange of this stream is halted (key confirmation failed, peer out of step); undefined when running. */
  halted: { reason: string; since: string } | undefined;
  /** Keys delivered to the application and still re-deliverable (the re-delivery window). */
  retained: RetainedKeys;
}

export interface StreamSummary {
  keyStreamId: string;
  source: string;
  destination: string;
  peer: string;
  length: number;
  timeout: number;
  /** QoS TTL in seconds (0: none). */
  ttl: number;
  localOpen: boolean;
  peerOpen: boolean;
  closed: boolean;
  nextIndex: number;
  available: number;
  /** Why the exchange is halted (no new keys until both ends agree again), or null. */
  halted: { reason: string; since: string } | null;
}

type ManagerEvents = {
  /** Both applications opened the stream and it is not closed: the exchange may run. */
  ready: [keyStreamId: string];
  closed: [keyStreamId: string];
  /** A key was delivered or erased (TTL) here: there is room for more. */
  taken: [keyStreamId: string];
  /** The stream and its keys were removed (closed past retention, or a registration never opened here). */
  purged: [keyStreamId: string];
};

export class KeyStreamManager extends EventEmitter<ManagerEvents> {
  private readonly states = new Map<string, StreamState>();
  private readonly mutex = new KeyedMutex();
  /**
   * Streams this module is registering at the peer right now (its /sync is in flight, under the
   * stream's lock). A /sync from the peer for the same ID means both applications opened it at the
   * same moment: it is answered at once ("joined") instead of waiting for the lock, which the other
   * module's own registration would otherwise hold against us until both calls time out.
   */
  private readonly registering = new Map<string, { peerUrl: string; keyLengthBits: number; peerJoined: boolean }>();
  private stopped = false;
  /** GET_KEY calls waiting for a key, per identity and in all (bounded: DEFAULT_MAX_WAITS...). */
  private readonly waitsByOwner = new Map<string, number>();
  private waitsTotal = 0;
  private housekeepingTimer: NodeJS.Timeout | undefined;
  private housekeepingAt = Number.POSITIVE_INFINITY;

  constructor(
    private readonly handles: HandleStore,
    private readonly keyStore: KeyStore,
    private readonly peer: PeerClient,
    readonly settings: ManagerSettings,
    private readonly log: Logger,
    private readonly telemetry: ModuleTelemetry = NO_TELEMETRY,
    /** Reconciled BB84 blocks waiting for privacy amplification (issue 11): erased with their stream. */
    private readonly reconciled?: ReconciledBlockStore,
  ) {
    super();
  }

  /**
   * Loads every stream and the indices of its stored keys (after a restart, keys stay deliverable).
   * Keys of a TTL stream count as stored when the stream was created (their store time was not kept):
   * those of streams older than their TTL are erased before init resolves, the others on time.
   */
  async init(): Promise<void> {
    for (const stream of await this.handles.list()) {
      const indices = await this.keyStore.indices(stream.keyStreamId);
      const state = this.newState(stream, indices);
      await this.restoreRetained(state);
      if (stream.closed) state.closedAt = Date.now(); // the close time was not kept: retention counts from now
      if (indices.length > 0) state.batches.record(indices[0]!, indices[indices.length - 1]! - indices[0]! + 1, undefined, stream.createdAt);
      this.states.set(stream.keyStreamId, state);
      if (stream.ttlSeconds > 0) await this.eraseExpired(state);
    }
    this.log.info({ streams: this.states.size }, 'key streams loaded');
    await this.eraseStrayBlocks();
    this.scheduleHousekeeping();
  }

  /** Accumulated blocks of streams that are gone or closed (a crash between a close and its erasure) are erased. */
  private async eraseStrayBlocks(): Promise<void> {
    if (!this.reconciled?.streams) return;
    for (const keyStreamId of await this.reconciled.streams()) {
      const state = this.states.get(keyStreamId);
      if (!state || state.stream.closed) await this.discardAccumulated(keyStreamId);
    }
  }

  /**
   * Erases the stream's reconciled blocks (bits not yet amplified): at a close (either end's: the exchange
   * stops for good) and at purge. A failure is logged; the purge tries again.
   */
  private async discardAccumulated(keyStreamId: string): Promise<void> {
    if (!this.reconciled) return;
    try {
      await this.reconciled.deleteStream(keyStreamId);
    } catch (err) {
      this.log.error({ keyStreamId, err: (err as Error).message }, 'could not erase the accumulated BB84 blocks of a closed stream (store down?); the purge tries again');
    }
  }

  /** Stops the TTL timers (the module is shutting down). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.housekeepingTimer);
    for (const state of this.states.values()) {
      clearTimeout(state.ttlTimer);
      state.ttlTimer = undefined;
      state.retained.stop();
      state.arrived.notify(); // waiting GET_KEY calls answer now instead of holding the process
    }
  }

  /** Streams where both applications are connected and the exchange should run. */
  readyStreams(): string[] {
    return [...this.states.values()].filter((s) => isReady(s.stream)).map((s) => s.stream.keyStreamId);
  }

  // ---------------------------------------------------------------- application calls

  /** OPEN_CONNECT: a null ID allocates one and registers it at the peer; a given ID joins (or registers) it. */
  async openConnect(req: OpenConnectRequest): Promise<Result<OpenedStream>> {
    const peerUrl = normalizePeerAddress(req.peerAddress ?? req.destination, this.settings.peerScheme);
    if (!peerUrl) return fail('BAD_REQUEST', 'destination must be the peer module as host:port or an http(s) URL');
    const keyStreamId = req.keyStreamId ?? randomUUID();
    const owner = req.owner ?? LOCAL_OWNER;
    return this.mutex.run(keyStreamId, async () => {
      const existing = this.states.get(keyStreamId);
      if (existing?.stream.localOpen) return this.joinStream(existing, req);
      const cap = this.settings.maxStreamsPerOwner ?? DEFAULT_MAX_STREAMS_PER_OWNER;
      if (owner !== ETSI014_OWNER && this.openStreamsOf(owner) >= cap) {
        return fail('LIMIT_REACHED', `this application has ${cap} open streams (module.max_streams_per_application): close some first`);
      }
      if (existing) return this.joinStream(existing, req);
      return this.registerStream(keyStreamId, peerUrl, req);
    });
  }

  /**
   * CLOSE by the local application: the exchange stops at both ends, and this end's unused keys are
   * discarded (the application said it is done with them; ETSI GS QKD 004 CLOSE). The peer's close
   * notice stops the exchange only: the peer application may still take its keys until it closes too.
   */
  async close(keyStreamId: string, caller?: string): Promise<Result<void>> {
    const state = this.owned(keyStreamId, caller);
    if (!state) return fail('UNKNOWN_STREAM', `unknown Key_stream_ID ${keyStreamId}`);
    const wasClosed = state.stream.closed;
    await this.mutex.run(keyStreamId, async () => {
      await this.markClosed(state);
      await this.discardAll(state);
    });
    if (!wasClosed) {
      try {
        await this.peer.close(state.stream.peerUrl, { keyStreamId }, this.settings.peerTimeoutMs);
      } catch (err) {
        // The peer learns it anyway: its next round for this stream is refused as closed.
        this.log.warn({ keyStreamId, err: describePeerError(err) }, 'peer not told of close');
      }
    }
    return ok(undefined);
  }

  /**
   * GET_KEY: index -1 = the lowest committed key not yet delivered here; otherwise that index.
   * Waits up to the stream's timeout for the key to be committed; resolves null when none came.
   */
  async getKey(keyStreamId: string, index: number, timeoutMs?: number, signal?: AbortSignal, caller?: string): Promise<Result<DeliveredKey | null>> {
    const result = await this.deliverKey(keyStreamId, index, {
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      ...(signal ? { signal } : {}),
      ...(caller === undefined ? {} : { caller }),
    });
    if (!result.ok) return result;
    return ok(result.value.kind === 'key' ? result.value.delivered : null);
  }

  /** GET_KEY telling why no key came (the ETSI 004 binding maps the reasons to its statuses). */
  async deliverKey(keyStreamId: string, index: number, options: DeliverOptions = {}): Promise<Result<KeyDelivery>> {
    const state = this.owned(keyStreamId, options.caller);
    if (!state) return fail('UNKNOWN_STREAM', `unknown Key_stream_ID ${keyStreamId}`);
    if (!state.stream.localOpen) return fail('STREAM_NOT_OPEN', `Key_stream_ID ${keyStreamId} was not opened by an application on this module`);
    const none = (reason: NoKeyReason, at = index): Result<KeyDelivery> => ok({ kind: 'none', reason, index: at });
    const retain = options.caller !== undefined && this.redeliveryWindowMs() > 0;
    if (retain) {
      // A repeat of a delivery whose answer was lost: the same key again (only ever to the owner).
      const again = (options.token !== undefined ? state.retained.findToken(options.token) : undefined) ?? (index >= 0 ? state.retained.find(index) : undefined);
      if (again && (index === -1 || index === again.index)) return this.redeliver(state, again.index, options);
    }
    const deadline = Date.now() + (options.timeoutMs ?? state.stream.timeoutMs);
    let waited = false;
    for (;;) {
      if (options.signal?.aborted) return none('unavailable');
      const { nextIndex } = state.stream;
      const candidate = index === -1 ? state.keys.lowestBelow(nextIndex) : index < nextIndex && state.keys.has(index) ? index : undefined;
      if (candidate !== undefined) {
        state.keys.delete(candidate); // claimed: no concurrent call can pick it
        if (this.expired(state, candidate)) {
          await this.erase(state, [candidate]); // its timer is due: never deliver it
          continue;
        }
        const storedAt = state.batches.find(candidate)?.storedAt;
        if (options.accept && !options.accept(candidate, storedAt)) {
          state.keys.add(candidate);
          return none('declined', candidate);
        }
        let key: Uint8Array | undefined;
        const deliveredAt = Date.now();
        try {
          key = retain ? await this.keyStore.deliver(keyStreamId, candidate, deliveredAt, options.token) : await this.keyStore.take(keyStreamId, candidate);
        } catch (err) {
          state.keys.add(candidate); // not delivered: give the claim back
          this.log.error({ keyStreamId, index: candidate, err: (err as Error).message }, 'key store take failed');
          return fail('STORE_UNAVAILABLE', 'key store unavailable');
        }
        if (!key) {
          this.log.error({ keyStreamId, index: candidate }, 'key index known but absent from the key store');
          continue;
        }
        // "The application took a later index" ends earlier windows (ETSI 004, seed API). ETSI 014 takes
        // indices in key-ID order, not index order: its claimed records end its windows instead.
        if (retain) state.retained.add({ index: candidate, deliveredAt, token: options.token }, state.stream.owner !== ETSI014_OWNER);
        const countAs = options.countAs ?? 'delivered';
        if (countAs === 'delivered') this.telemetry.keysDelivered(keyStreamId, 1);
        else if (countAs !== 'caller') this.telemetry.keysDiscarded(keyStreamId, countAs, 1);
        this.emit('taken', keyStreamId);
        return ok({ kind: 'key', delivered: { key, index: candidate, storedAt } });
      }
      // Nothing deliverable now: wait only if the key can still come.
      if (state.stream.closed || this.stopped) return none('unavailable');
      if (index !== -1 && index < nextIndex) return none('unavailable'); // delivered or erased already, or never stored
      if (!state.stream.peerOpen && options.peerNotConnected === 'report') return none('peer_not_connected');
      const left = deadline - Date.now();
      if (left <= 0) return none(waited ? 'timeout' : 'unavailable');
      const owner = options.caller ?? state.stream.owner;
      if (!this.startWaiting(owner)) {
        return fail('LIMIT_REACHED', 'too many GET_KEY calls are waiting for keys (module.max_waiting_get_key_per_application / module.max_waiting_get_key): retry later');
      }
      waited = true;
      try {
        await state.arrived.wait(left, options.signal);
      } finally {
        this.stopWaiting(owner);
      }
    }
  }

  /** Hands a kept key out again (its first answer was lost); the caller's accept() still applies. */
  private async redeliver(state: StreamState, index: number, options: DeliverOptions): Promise<Result<KeyDelivery>> {
    const keyStreamId = state.stream.keyStreamId;
    const storedAt = state.batches.find(index)?.storedAt;
    if (options.accept && !options.accept(index, storedAt)) return ok({ kind: 'none', reason: 'declined', index });
    let key: Uint8Array | undefined;
    try {
      key = await this.keyStore.redeliver(keyStreamId, index);
    } catch (err) {
      this.log.error({ keyStreamId, index, err: (err as Error).message }, 'key store read failed (re-delivery)');
      return fail('STORE_UNAVAILABLE', 'key store unavailable');
    }
    if (!key) return ok({ kind: 'none', reason: 'unavailable', index });
    this.log.info({ keyStreamId, index }, 'key re-delivered within the re-delivery window (the first answer was lost)');
    return ok({ kind: 'key', delivered: { key, index, storedAt } });
  }

  private redeliveryWindowMs(): number {
    return this.settings.redeliveryWindowMs ?? DEFAULT_REDELIVERY_WINDOW_MS;
  }

  private newState(stream: KeyStream, indices: Iterable<number>): StreamState {
    const keyStreamId = stream.keyStreamId;
    const retained = new RetainedKeys(
      this.redeliveryWindowMs(),
      (erase) => this.keyStore.erase(keyStreamId, erase),
      (err, count) => this.log.error({ keyStreamId, count, err: (err as Error).message }, 'could not erase delivered keys after their re-delivery window (key store down?); retrying'),
    );
    return newState(stream, indices, retained);
  }

  /**
   * After a restart: delivered keys still inside their window stay re-deliverable; the rest (expired,
   * superseded by a later delivery, or of a closed stream) are erased now.
   */
  private async restoreRetained(state: StreamState): Promise<void> {
    const keyStreamId = state.stream.keyStreamId;
    const delivered = await this.keyStore.delivered(keyStreamId);
    if (delivered.length === 0) return;
    const now = Date.now();
    const windowMs = this.redeliveryWindowMs();
    // Superseded: a higher index was delivered at the same time or later (the application moved on).
    const superseded = (d: RetainedKey): boolean =>
      state.stream.owner !== ETSI014_OWNER && delivered.some((o) => o.index > d.index && o.deliveredAt >= d.deliveredAt);
    const keep = delivered.filter((d) => !state.stream.closed && now - d.deliveredAt < windowMs && !superseded(d));
    const erase = delivered.filter((d) => !keep.includes(d)).map((d) => d.index);
    if (erase.length > 0) await this.keyStore.erase(keyStreamId, erase);
    for (const d of keep) state.retained.add(d, false);
  }

  private startWaiting(owner: string): boolean {
    const mine = this.waitsByOwner.get(owner) ?? 0;
    if (mine >= (this.settings.maxWaitsPerOwner ?? DEFAULT_MAX_WAITS_PER_OWNER) || this.waitsTotal >= (this.settings.maxWaits ?? DEFAULT_MAX_WAITS)) return false;
    this.waitsByOwner.set(owner, mine + 1);
    this.waitsTotal++;
    return true;
  }

  private stopWaiting(owner: string): void {
    const mine = (this.waitsByOwner.get(owner) ?? 1) - 1;
    if (mine <= 0) this.waitsByOwner.delete(owner);
    else this.waitsByOwner.set(owner, mine);
    this.waitsTotal--;
  }

  /** The stream when `caller` may use it (its owner, or no caller given); undefined otherwise. */
  private owned(keyStreamId: string, caller: string | undefined): StreamState | undefined {
    const state = this.states.get(keyStreamId);
    if (!state) return undefined;
    if (caller !== undefined && (!state.stream.localOpen || state.stream.owner !== caller)) return undefined;
    return state;
  }

  private openStreamsOf(owner: string): number {
    let n = 0;
    for (const s of this.states.values()) if (s.stream.owner === owner && s.stream.localOpen && !s.stream.closed) n++;
    return n;
  }

  /**
   * Committed, undelivered keys of one stream, or the total over the caller's streams: those the peer
   * closed still count while their keys can be drained (a local CLOSE erased its own, so adds nothing).
   */
  availableKeys(keyStreamId?: string, caller?: string): Result<number> {
    if (keyStreamId !== undefined) {
      const state = this.owned(keyStreamId, caller);
      if (!state) return fail('UNKNOWN_STREAM', `unknown Key_stream_ID ${keyStreamId}`);
      return ok(countAvailable(state));
    }
    let total = 0;
    for (const state of this.states.values()) {
      if (state.stream.localOpen && (caller === undefined || state.stream.owner === caller)) total += countAvailable(state);
    }
    return ok(total);
  }

  /**
   * The lowest committed index this end still holds, or the commit counter when it holds none: every
   * index below it was delivered, erased or never stored here (the ETSI 014 orphan watermark).
   */
  lowestHeldIndex(keyStreamId: string): number | undefined {
    const state = this.states.get(keyStreamId);
    if (!state) return undefined;
    return state.keys.lowestBelow(state.stream.nextIndex) ?? state.stream.nextIndex;
  }

  /** Committed indices this end still holds below `limit`, ascending (internal callers only). */
  heldIndicesBelow(keyStreamId: string, limit: number): number[] {
    const state = this.states.get(keyStreamId);
    if (!state) return [];
    return state.keys.between(0, Math.min(limit, state.stream.nextIndex));
  }

  summaries(): StreamSummary[] {
    return [...this.states.values()].map((s) => summarize(s));
  }

  summary(keyStreamId: string): StreamSummary | undefined {
    const state = this.states.get(keyStreamId);
    return state ? summarize(state) : undefined;
  }

  // ---------------------------------------------------------------- peer calls

  /** GET /sync: the peer's application opened a stream toward us. */
  async onPeerSync(req: SyncRequest): Promise<Result<SyncReply>> {
    if (req.sender === this.settings.sender) {
      return fail('ROLE_CLASH', `both modules have module.sender = ${req.sender}; one link end must be 1 (source) and the other 0 (detector)`);
    }
    if (req.sim !== this.settings.sim) {
      return fail('ROLE_CLASH', `simulator mismatch: peer runs '${req.sim}', this module runs '${this.settings.sim}'`);
    }
    const peerUrl = normalizePeerAddress(req.peerAddress, this.settings.peerScheme);
    if (!peerUrl) return fail('BAD_REQUEST', 'peerAddress must be host:port or an http(s) URL');
    const registering = this.registering.get(req.keyStreamId);
    if (registering && !this.states.has(req.keyStreamId)) {
      if (registering.peerUrl !== peerUrl || registering.keyLengthBits !== req.keyLengthBits) {
        return fail('STREAM_IN_USE', `Key_stream_ID ${req.keyStreamId} is being opened here toward another peer or with another length`);
      }
      registering.peerJoined = true;
      return ok({ status: 0 as const, joined: true });
    }
    return this.mutex.run(req.keyStreamId, async () => {
      const state = this.states.get(req.keyStreamId);
      if (!state) {
        const cap = this.settings.maxPendingRegistrations ?? DEFAULT_MAX_PENDING_REGISTRATIONS;
        if (this.waitingForLocalOpen() >= cap) {
          this.log.warn({ cap }, 'peer registration refused: too many streams registered by the peer and not opened here');
          return fail('REGISTRATION_LIMIT', `the peer has ${cap} streams registered here that no application opened yet (module.max_pending_registrations); they expire after module.pending_registration_ttl_s`);
        }
        await this.createStream({
          keyStreamId: req.keyStreamId,
          source: req.source,
          destination: req.destination,
          peerUrl,
          keyLengthBits: req.keyLengthBits,
          timeoutMs: req.timeoutMs,
          localOpen: false,
          peerOpen: true,
          closed: false,
          nextIndex: 0,
          createdAt: Date.now(),
          ttlSeconds: 0,
          owner: '',
        });
        this.scheduleHousekeeping();
        return ok({ status: 0 as const, joined: false });
      }
      const s = state.stream;
      if (s.closed) return fail('STREAM_CLOSED', `Key_stream_ID ${s.keyStreamId} is closed`);
      if (s.keyLengthBits !== req.keyLengthBits) {
        return fail('STREAM_IN_USE', `Key_stream_ID ${s.keyStreamId} exists here with length ${s.keyLengthBits} bits, not ${req.keyLengthBits}`);
      }
      if (s.peerOpen) {
        // A retried sync (its reply was lost) is harmless; another peer claiming the ID is not.
        if (s.peerUrl === peerUrl) return ok({ status: 0 as const, joined: s.localOpen });
        return fail('STREAM_IN_USE', `Key_stream_ID ${s.keyStreamId} is bound to another peer`);
      }
      // Our application opened this ID first and waited for the peer's: both are now connected —
      // but only with the peer our application named. A stream is never rebound to another address.
      if (s.peerUrl !== peerUrl) {
        return fail('STREAM_IN_USE', `Key_stream_ID ${s.keyStreamId} waits for peer ${s.peerUrl}, not ${peerUrl} (destination must match the peer's this_public_IP)`);
      }
      await this.patch(state, { peerOpen: true });
      if (isReady(s)) this.emit('ready', s.keyStreamId);
      return ok({ status: 0 as const, joined: true });
    });
  }

  /** POST /peer/open: the peer's application joined a stream we registered there. */
  async onPeerOpened(keyStreamId: string): Promise<Result<void>> {
    return this.mutex.run(keyStreamId, async () => {
      const state = this.states.get(keyStreamId);
      if (!state) return fail('UNKNOWN_STREAM', `unknown Key_stream_ID ${keyStreamId}`);
      if (state.stream.closed) return fail('STREAM_CLOSED', `Key_stream_ID ${keyStreamId} is closed`);
      if (!state.stream.peerOpen) {
        await this.patch(state, { peerOpen: true });
        if (isReady(state.stream)) this.emit('ready', keyStreamId);
      }
      return ok(undefined);
    });
  }

  /**
   * POST /peer/close: the peer closed the stream. Counters never move on a close: the receiver's moved
   * when the last round was confirmed, and the sender re-reads it after the close (ExchangeService).
   */
  async onPeerClosed(keyStreamId: string): Promise<Result<void>> {
    const state = this.states.get(keyStreamId);
    if (!state) return fail('UNKNOWN_STREAM', `unknown Key_stream_ID ${keyStreamId}`);
    await this.mutex.run(keyStreamId, () => this.markClosed(state));
    return ok(undefined);
  }

  /** POST /start: the peer delivered keys; it now holds `available` committed keys (unknown in the original's form). */
  onPeerStart(keyStreamId: string, available: number | undefined): Result<void> {
    const state = this.states.get(keyStreamId);
    if (!state) return fail('UNKNOWN_STREAM', `unknown Key_stream_ID ${keyStreamId}`);
    if (available !== undefined) state.peerAvailable = available;
    this.emit('taken', keyStreamId);
    return ok(undefined);
  }

  // ---------------------------------------------------------------- exchange calls

  stream(keyStreamId: string): Readonly<KeyStream> | undefined {
    return this.states.get(keyStreamId)?.stream;
  }

  available(keyStreamId: string): number {
    const state = this.states.get(keyStreamId);
    return state ? countAvailable(state) : 0;
  }

  peerAvailable(keyStreamId: string): number | undefined {
    return this.states.get(keyStreamId)?.peerAvailable;
  }

  setPeerAvailable(keyStreamId: string, available: number): void {
    const state = this.states.get(keyStreamId);
    if (state) state.peerAvailable = available;
  }

  /** Room for new keys: max_key_count minus what waits at the fuller end. */
  room(keyStreamId: string): number {
    const state = this.states.get(keyStreamId);
    if (!state) return 0;
    const waiting = Math.max(countAvailable(state), state.peerAvailable ?? 0);
    return Math.max(0, this.settings.maxKeyCount - waiting);
  }

  /** True when an application at either end would find no key now. */
  starving(keyStreamId: string): boolean {
    const state = this.states.get(keyStreamId);
    if (!state) return false;
    return countAvailable(state) === 0 || state.peerAvailable === 0;
  }

  /**
   * Stores a round's keys, not yet deliverable, at firstIndex... A round always produces the next keys
   * (firstIndex = the commit counter), and any key left above the counter by an earlier, unconfirmed
   * round is erased first, so a stream never holds more than max_key_count keys whatever a peer sends.
   */
  async storeKeys(keyStreamId: string, firstIndex: number, keys: readonly Uint8Array[]): Promise<Result<void>> {
    const state = this.states.get(keyStreamId);
    if (!state) return fail('UNKNOWN_STREAM', `unknown Key_stream_ID ${keyStreamId}`);
    // CLOSE voids every round in flight (issue 13 point 14): a round that finishes after the close
    // stores nothing, so nothing above the counter reported at the close can ever be delivered.
    if (state.stream.closed) return fail('STREAM_CLOSED', `Key_stream_ID ${keyStreamId} is closed`);
    if (firstIndex < state.stream.nextIndex) {
      return fail('STALE_ROUND', `round at index ${firstIndex} is below the committed index ${state.stream.nextIndex} of ${keyStreamId}`);
    }
    if (firstIndex > state.stream.nextIndex) {
      return fail('BAD_REQUEST', `round at index ${firstIndex} skips indices: the next key of ${keyStreamId} is ${state.stream.nextIndex}`);
    }
    const bytes = state.stream.keyLengthBits / 8;
    if (keys.some((k) => k.length !== bytes)) return fail('BAD_REQUEST', `every key of ${keyStreamId} must be ${bytes} bytes`);
    if (countAvailable(state) + keys.length > this.settings.maxKeyCount) {
      return fail('BAD_REQUEST', `${keys.length} more keys would exceed module.max_key_count (${this.settings.maxKeyCount}) for ${keyStreamId}`);
    }
    const discarded = await this.discardUncommitted(keyStreamId);
    if (!discarded.ok) return discarded;
    if (keys.length === 0) return ok(undefined);
    const storedAt = Date.now();
    try {
      await this.keyStore.putMany(keyStreamId, firstIndex, keys);
    } catch (err) {
      this.log.error({ keyStreamId, firstIndex, err: (err as Error).message }, 'key store put failed');
      return fail('STORE_UNAVAILABLE', 'key store unavailable');
    }
    if (state.stream.closed) {
      // Closed while the keys were being written: they never join the stream.
      this.telemetry.keysDiscarded(keyStreamId, 'superseded', keys.length);
      await this.keyStore.erase(keyStreamId, keys.map((_, i) => firstIndex + i)).catch((err: unknown) => {
        this.log.error({ keyStreamId, err: (err as Error).message }, 'could not erase the keys of a round voided by CLOSE (key store down?); they are never delivered');
      });
      return fail('STREAM_CLOSED', `Key_stream_ID ${keyStreamId} is closed`);
    }
    keys.forEach((_, i) => state.keys.add(firstIndex + i));
    state.batches.record(firstIndex, keys.length, storedAt);
    state.batches.forgetBelow(state.keys.lowestBelow(Number.POSITIVE_INFINITY));
    this.scheduleErasure(state);
    return ok(undefined);
  }

  /**
   * Makes every stored key below `upTo` deliverable (moves the commit counter forward durably).
   * The receiving module only commits indices it holds a key for (uncommitted, from a round): a
   * confused or hostile peer cannot move its counter past what was exchanged.
   */
  async commit(keyStreamId: string, upTo: number): Promise<Result<number>> {
    const state = this.states.get(keyStreamId);
    if (!state) return fail('UNKNOWN_STREAM', `unknown Key_stream_ID ${keyStreamId}`);
    if (upTo > state.stream.nextIndex && this.settings.sender === 0) {
      const highest = state.keys.highest();
      if (highest === undefined || upTo > highest + 1) {
        return fail('BAD_REQUEST', `commit up to ${upTo} of ${keyStreamId} covers indices this module never received (it holds keys up to ${highest ?? 'none'})`);
      }
    }
    if (upTo > state.stream.nextIndex) {
      let next: number | undefined;
      try {
        next = await this.handles.advanceIndex(keyStreamId, upTo);
      } catch (err) {
        this.log.error({ keyStreamId, err: (err as Error).message }, 'handle store advanceIndex failed');
        return fail('STORE_UNAVAILABLE', 'handle store unavailable');
      }
      if (next !== undefined && next > state.stream.nextIndex) {
        this.telemetry.keysCommitted(keyStreamId, next - state.stream.nextIndex);
        state.stream.nextIndex = next;
      }
      state.arrived.notify();
    }
    return ok(countAvailable(state));
  }

  /**
   * Erases every key stored at or above the commit counter (an unconfirmed round's): such keys are never
   * delivered, and must not pile up. Resolves how many were erased.
   */
  async discardUncommitted(keyStreamId: string, reason: DiscardReason = 'superseded'): Promise<Result<number>> {
    const state = this.states.get(keyStreamId);
    if (!state) return fail('UNKNOWN_STREAM', `unknown Key_stream_ID ${keyStreamId}`);
    const above = [...state.keys.between(state.stream.nextIndex, Number.MAX_SAFE_INTEGER)];
    if (above.length === 0) return ok(0);
    for (const i of above) state.keys.delete(i);
    const results = await Promise.allSettled(above.map((i) => this.keyStore.take(keyStreamId, i)));
    const failed: number[] = [];
    results.forEach((r, n) => (r.status === 'fulfilled' ? r.value?.fill(0) : failed.push(above[n]!)));
    if (above.length > failed.length) this.telemetry.keysDiscarded(keyStreamId, reason, above.length - failed.length);
    if (failed.length > 0) {
      for (const i of failed) state.keys.add(i); // still stored: try again next time
      this.log.error({ keyStreamId, failed: failed.length }, 'could not erase unconfirmed keys (key store down?)');
      return fail('STORE_UNAVAILABLE', 'key store unavailable');
    }
    return ok(above.length);
  }

  /**
   * Sender: the receiver confirmed a round and committed it, but this end did not learn so before an
   * error or a restart. When this end still holds every key of [nextIndex, upTo) (stored before the
   * confirmation was sent, never overwritten since), it commits them too. False when it does not.
   */
  async rollForward(keyStreamId: string, upTo: number): Promise<Result<boolean>> {
    const state = this.states.get(keyStreamId);
    if (!state) return fail('UNKNOWN_STREAM', `unknown Key_stream_ID ${keyStreamId}`);
    if (this.settings.sender !== 1) return fail('ROLE_CLASH', 'only the sending module rolls its counter forward');
    for (let i = state.stream.nextIndex; i < upTo; i++) if (!state.keys.has(i)) return ok(false);
    const committed = await this.commit(keyStreamId, upTo);
    if (!committed.ok) return committed;
    return ok(true);
  }

  /** Halts the exchange of a stream with a reason shown in /streams/{id} (no new keys until it resumes). */
  halt(keyStreamId: string, reason: string): void {
    const state = this.states.get(keyStreamId);
    if (!state) return;
    state.halted = { reason, since: new Date().toISOString() };
    this.log.error({ keyStreamId, reason }, 'key stream halted');
  }

  /** Both ends agreed again (a round was confirmed): the stream runs normally. */
  resume(keyStreamId: string): void {
    const state = this.states.get(keyStreamId);
    if (!state?.halted) return;
    this.log.warn({ keyStreamId, haltedSince: state.halted.since }, 'key stream resumed: both ends confirmed a round again');
    state.halted = undefined;
  }

  isHalted(keyStreamId: string): boolean {
    return this.states.get(keyStreamId)?.halted !== undefined;
  }

  // ---------------------------------------------------------------- housekeeping

  /** When a stream is due to be purged, or undefined when it is not (open, or opened here). */
  private purgeDue(state: StreamState): number | undefined {
    const s = state.stream;
    if (s.closed) return (state.closedAt ?? Date.now()) + (this.settings.closedStreamRetentionMs ?? DEFAULT_CLOSED_STREAM_RETENTION_MS);
    if (!s.localOpen) return s.createdAt + (this.settings.pendingRegistrationTtlMs ?? DEFAULT_PENDING_REGISTRATION_TTL_MS);
    return undefined;
  }

  /** Arms one timer for the earliest purge (nothing polls). */
  private scheduleHousekeeping(): void {
    if (this.stopped) return;
    let due = Number.POSITIVE_INFINITY;
    for (const state of this.states.values()) due = Math.min(due, this.purgeDue(state) ?? Number.POSITIVE_INFINITY);
    if (due === Number.POSITIVE_INFINITY || (this.housekeepingTimer && this.housekeepingAt <= due)) return;
    clearTimeout(this.housekeepingTimer);
    const delay = Math.min(Math.max(0, due - Date.now()), MAX_TIMER_MS);
    this.housekeepingAt = Date.now() + delay;
    this.housekeepingTimer = setTimeout(() => {
      this.housekeepingTimer = undefined;
      this.housekeepingAt = Number.POSITIVE_INFINITY;
      this.purgeDueStreams().catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'purging streams failed'));
    }, delay);
    this.housekeepingTimer.unref();
  }

  private async purgeDueStreams(): Promise<void> {
    const now = Date.now();
    for (const state of [...this.states.values()]) {
      const due = this.purgeDue(state);
      if (due === undefined || due > now) continue;
      const keyStreamId = state.stream.keyStreamId;
      await this.mutex.run(keyStreamId, async () => {
        if (this.states.get(keyStreamId) !== state || (this.purgeDue(state) ?? Infinity) > Date.now()) return;
        try {
          await this.keyStore.deleteStream(keyStreamId);
          await this.reconciled?.deleteStream(keyStreamId);
          await this.handles.delete(keyStreamId);
        } catch (err) {
          this.log.error({ keyStreamId, err: (err as Error).message }, 'could not purge a stream (store down?); retrying later');
          return;
        }
        clearTimeout(state.ttlTimer);
        state.retained.clear();
        this.states.delete(keyStreamId);
        this.reportDiscarded(state, state.keys.between(0, Number.MAX_SAFE_INTEGER), 'purged');
        this.telemetry.streamPurged(keyStreamId);
        state.arrived.notify();
        this.log.info({ keyStreamId, closed: state.stream.closed, keysErased: state.keys.countBelow(Number.MAX_SAFE_INTEGER) }, state.stream.closed ? 'closed stream purged' : 'registration never opened here: dropped');
        this.emit('purged', keyStreamId);
      });
    }
    this.scheduleHousekeeping();
  }

  // ---------------------------------------------------------------- internals

  /** Telemetry of keys erased undelivered: committed ones for `reason`, those of a round never committed as superseded. */
  private reportDiscarded(state: StreamState, indices: readonly number[], reason: DiscardReason): void {
    if (indices.length === 0) return;
    const { keyStreamId, nextIndex } = state.stream;
    let committed = 0;
    for (const i of indices) if (i < nextIndex) committed++;
    if (committed > 0) this.telemetry.keysDiscarded(keyStreamId, reason, committed);
    if (indices.length > committed) this.telemetry.keysDiscarded(keyStreamId, 'superseded', indices.length - committed);
  }

  private waitingForLocalOpen(): number {
    let n = 0;
    for (const s of this.states.values()) if (!s.stream.localOpen && !s.stream.closed) n++;
    return n;
  }

  private async registerStream(keyStreamId: string, peerUrl: string, req: OpenConnectRequest): Promise<Result<OpenedStream>> {
    const registering = { peerUrl, keyLengthBits: req.keyLengthBits, peerJoined: false };
    this.registering.set(keyStreamId, registering);
    try {
      return await this.registerStreamAtPeer(keyStreamId, peerUrl, req, registering);
    } finally {
      this.registering.delete(keyStreamId);
    }
  }

  private async registerStreamAtPeer(
    keyStreamId: string,
    peerUrl: string,
    req: OpenConnectRequest,
    registering: { peerJoined: boolean },
  ): Promise<Result<OpenedStream>> {
    let reply: SyncReply;
    try {
      reply = await this.peer.sync(
        peerUrl,
        {
          keyStreamId,
          source: req.source,
          destination: req.destination,
          keyLengthBits: req.keyLengthBits,
          timeoutMs: req.timeoutMs,
          sender: this.settings.sender,
          sim: this.settings.sim,
          peerAddress: this.settings.publicAddress,
        },
        peerCallTimeout(req.timeoutMs, this.settings.peerTimeoutMs),
      );
    } catch (err) {
      return peerFailure(err, peerUrl, this.log);
    }
    const stream: KeyStream = {
      keyStreamId,
      source: req.source,
      destination: req.destination,
      peerUrl,
      keyLengthBits: req.keyLengthBits,
      timeoutMs: req.timeoutMs,
      localOpen: true,
      peerOpen: reply.joined || registering.peerJoined,
      closed: false,
      nextIndex: 0,
      createdAt: Date.now(),
      ttlSeconds: req.ttlSeconds ?? 0,
      owner: req.owner ?? LOCAL_OWNER,
    };
    await this.createStream(stream);
    this.log.info({ keyStreamId, peer: peerUrl, joined: reply.joined }, 'key stream registered at peer');
    if (isReady(stream)) this.emit('ready', keyStreamId);
    return ok({ keyStreamId, peerConnected: stream.peerOpen });
  }

  private async joinStream(state: StreamState, req: OpenConnectRequest): Promise<Result<OpenedStream>> {
    const s = state.stream;
    const owner = req.owner ?? LOCAL_OWNER;
    if (s.localOpen && s.owner !== owner) return fail('STREAM_IN_USE', `Key_stream_ID ${s.keyStreamId} is already open on this module`);
    if (!s.localOpen) {
      // Who may join a stream the peer registered: the application the opener named in its destination
      // (qkd://<application>@host:port), when it named one and callers are identified; else any caller.
      const named = namedApplication(s.destination);
      if (named !== undefined && owner !== LOCAL_OWNER && owner !== named) {
        return fail('STREAM_IN_USE', `Key_stream_ID ${s.keyStreamId} was opened for another application`);
      }
    }
    if (s.localOpen && req.repeatable) {
      const sameApplication = s.source === req.source && s.destination === req.destination && s.keyLengthBits === req.keyLengthBits;
      if (!sameApplication) return fail('STREAM_IN_USE', `Key_stream_ID ${s.keyStreamId} is bound to other endpoints or another key size on this module`);
      if (s.closed) return fail('STREAM_CLOSED', `Key_stream_ID ${s.keyStreamId} is closed`);
      return ok({ keyStreamId: s.keyStreamId, peerConnected: s.peerOpen });
    }
    // Closed first: re-opening a closed stream is "closed", not "in use" (issue 16).
    if (s.closed) return fail('STREAM_CLOSED', `Key_stream_ID ${s.keyStreamId} is closed`);
    if (s.localOpen) return fail('STREAM_IN_USE', `Key_stream_ID ${s.keyStreamId} is already open on this module`);
    if (s.keyLengthBits !== req.keyLengthBits) {
      return fail('BAD_REQUEST', `qos.length ${req.keyLengthBits} differs from the ${s.keyLengthBits} bits the peer opened this stream with`);
    }
    try {
      await this.peer.open(s.peerUrl, { keyStreamId: s.keyStreamId }, peerCallTimeout(req.timeoutMs, this.settings.peerTimeoutMs));
    } catch (err) {
      return peerFailure(err, s.peerUrl, this.log);
    }
    await this.patch(state, { localOpen: true, source: req.source, destination: req.destination, timeoutMs: req.timeoutMs, ttlSeconds: req.ttlSeconds ?? 0, owner });
    this.log.info({ keyStreamId: s.keyStreamId, peer: s.peerUrl }, 'key stream joined');
    if (isReady(s)) this.emit('ready', s.keyStreamId);
    return ok({ keyStreamId: s.keyStreamId, peerConnected: s.peerOpen });
  }

  private async createStream(stream: KeyStream): Promise<void> {
    const created = await this.handles.create(stream);
    if (!created) throw new QkdmError('STREAM_IN_USE', `Key_stream_ID ${stream.keyStreamId} already exists in the handle store`);
    this.states.set(stream.keyStreamId, this.newState(stream, []));
  }

  private async patch(state: StreamState, patch: KeyStreamPatch): Promise<void> {
    await this.handles.update(state.stream.keyStreamId, patch);
    Object.assign(state.stream, patch);
  }

  // ---------------------------------------------------------------- TTL

  private expired(state: StreamState, index: number): boolean {
    const ttlMs = state.stream.ttlSeconds * 1000;
    if (ttlMs <= 0) return false;
    const batch = state.batches.find(index);
    return batch === undefined || batch.bornAfter + ttlMs <= Date.now();
  }

  /** Erases every key of the stream older than its TTL (and retries failed erasures), then re-arms the timer. */
  private async eraseExpired(state: StreamState): Promise<void> {
    const ttlMs = state.stream.ttlSeconds * 1000;
    if (ttlMs <= 0) return;
    const indices = state.eraseRetry;
    state.eraseRetry = [];
    for (const batch of state.batches.removeBornBy(Date.now() - ttlMs)) {
      for (const i of state.keys.between(batch.firstIndex, batch.firstIndex + batch.count)) {
        state.keys.delete(i); // claimed: never delivered from now on
        indices.push(i);
      }
    }
    if (indices.length > 0) await this.erase(state, indices);
    this.scheduleErasure(state);
  }

  /** Takes (and so erases) claimed keys from the store, discarding the bytes; failures are retried. */
  private async erase(state: StreamState, indices: number[]): Promise<void> {
    const keyStreamId = state.stream.keyStreamId;
    const results = await Promise.allSettled(indices.map((i) => this.keyStore.take(keyStreamId, i)));
    const erased: number[] = [];
    results.forEach((r, n) => {
      if (r.status === 'fulfilled') {
        r.value?.fill(0);
        erased.push(indices[n]!);
      } else {
        state.eraseRetry.push(indices[n]!);
      }
    });
    this.reportDiscarded(state, erased, 'ttl');
    if (erased.length > 0) {
      this.log.info({ keyStreamId, erased: erased.length, ttlSeconds: state.stream.ttlSeconds }, 'keys erased: TTL reached');
      this.emit('taken', keyStreamId);
    }
    if (state.eraseRetry.length > 0) {
      this.log.warn({ keyStreamId, failed: state.eraseRetry.length, retryInMs: TTL_ERASE_RETRY_MS }, 'TTL erasure failed in the key store; retrying');
      this.scheduleErasure(state);
    }
  }

  /** Arms the stream's timer for its earliest expiry (one timer per TTL stream; nothing polls). */
  private scheduleErasure(state: StreamState): void {
    const ttlMs = state.stream.ttlSeconds * 1000;
    if (this.stopped || ttlMs <= 0) return;
    const born = state.batches.earliestBorn();
    let due = born === undefined ? Number.POSITIVE_INFINITY : born + ttlMs;
    if (state.eraseRetry.length > 0) due = Math.min(due, Date.now() + TTL_ERASE_RETRY_MS);
    if (due === Number.POSITIVE_INFINITY) return;
    if (state.ttlTimer && state.ttlTimerAt <= due) return; // that run re-arms the timer for this expiry
    clearTimeout(state.ttlTimer);
    const delay = Math.min(Math.max(0, due - Date.now()), MAX_TIMER_MS);
    state.ttlTimerAt = Date.now() + delay;
    state.ttlTimer = setTimeout(() => {
      state.ttlTimer = undefined;
      this.eraseExpired(state).catch((err: unknown) =>
        this.log.error({ keyStreamId: state.stream.keyStreamId, err: (err as Error).message }, 'TTL erasure failed'),
      );
    }, delay);
    state.ttlTimer.unref();
  }

  /** Erases every key of the stream here; they are never delivered from now on, even if the store fails. */
  private async discardAll(state: StreamState): Promise<void> {
    const keyStreamId = state.stream.keyStreamId;
    const count = state.keys.countBelow(Number.MAX_SAFE_INTEGER);
    if (count === 0 && state.retained.size === 0) return;
    this.reportDiscarded(state, state.keys.between(0, Number.MAX_SAFE_INTEGER), 'close');
    state.keys = new IndexSet([]);
    state.retained.clear(); // CLOSE ends the re-delivery window too
    state.arrived.notify();
    try {
      await this.keyStore.deleteStream(keyStreamId);
      this.log.info({ keyStreamId, discarded: count }, 'unused keys discarded at CLOSE');
    } catch (err) {
      // Not deliverable any more; the purge after closed_stream_retention_s erases them again.
      this.log.error({ keyStreamId, err: (err as Error).message }, 'could not erase the unused keys at CLOSE (key store down?); they will not be delivered');
    }
  }

  private async markClosed(state: StreamState): Promise<void> {
    if (state.stream.closed) return;
    await this.patch(state, { closed: true });
    state.closedAt = Date.now();
    this.scheduleHousekeeping();
    state.arrived.notify(); // waiting GET_KEY calls return now
    this.log.info({ keyStreamId: state.stream.keyStreamId }, 'key stream closed');
    this.emit('closed', state.stream.keyStreamId);
    await this.discardAccumulated(state.stream.keyStreamId);
  }
}

function newState(stream: KeyStream, indices: Iterable<number>, retained: RetainedKeys): StreamState {
  return {
    retained,
    stream,
    keys: new IndexSet(indices),
    arrived: new Wakeup(),
    peerAvailable: undefined,
    batches: new KeyBatches(),
    ttlTimer: undefined,
    ttlTimerAt: 0,
    eraseRetry: [],
    closedAt: undefined,
    halted: undefined,
  };
}

/** The application an ETSI 004 destination `qkd://<application>@host:port` names, if any. */
function namedApplication(destination: string): string | undefined {
  const m = /^qkd:\/\/([^@/?#]+)@/i.exec(destination.trim());
  return m ? decodeURIComponent(m[1]!) : undefined;
}

function isReady(s: KeyStream): boolean {
  return s.localOpen && s.peerOpen && !s.closed;
}

function countAvailable(state: StreamState): number {
  return state.keys.countBelow(state.stream.nextIndex);
}

function summarize(s: StreamState): StreamSummary {
  const st = s.stream;
  return {
    keyStreamId: st.keyStreamId,
    source: st.source,
    destination: st.destination,
    peer: st.peerUrl,
    length: st.keyLengthBits,
    timeout: st.timeoutMs,
    ttl: st.ttlSeconds,
    localOpen: st.localOpen,
    peerOpen: st.peerOpen,
    closed: st.closed,
    nextIndex: st.nextIndex,
    available: countAvailable(s),
    halted: s.halted ?? null,
  };
}

/** A peer call on behalf of an application gives up after the application's timeout (bounded). */
function peerCallTimeout(appTimeoutMs: number, peerTimeoutMs: number): number {
  return appTimeoutMs > 0 ? Math.min(appTimeoutMs, peerTimeoutMs) : peerTimeoutMs;
}

/**
 * An application's view of a failed call to the peer module. Refusals from the peer (an answer in the
 * module's own error vocabulary) keep their reason; everything else - no answer, a TLS or handshake
 * failure, something that is not a module of this link - is one and the same answer, so OPEN_CONNECT
 * cannot be used to tell a closed port from a database from another service. The detail goes to the log.
 */
function peerFailure<T>(err: unknown, peerUrl: string, log: Logger): Result<T> {
  if (err instanceof PeerError) {
    if (err.kind === 'refused' && err.peerCode === 'ROLE_CLASH') return fail('ROLE_CLASH', `peer ${peerUrl} refused: ${err.message}`);
    if (err.kind === 'refused' && err.peerCode === 'STREAM_IN_USE') return fail('STREAM_IN_USE', `peer ${peerUrl} refused: ${err.message}`);
    if (err.kind === 'refused' && err.peerCode !== undefined && err.peerCode in ERROR_CATALOGUE) return fail('PEER_REFUSED', `peer ${peerUrl} refused: ${err.message}`);
    log.warn({ peer: peerUrl, kind: err.kind, err: err.message }, 'peer module not reached');
    return fail('PEER_UNREACHABLE', `no QKD connection to a peer module at ${peerUrl}`);
  }
  throw err;
}

export function describePeerError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
