/**
 * The core: key streams, the rendezvous of the two applications, key indices and delivery.
 * It speaks only to ports (HandleStore, KeyStore, PeerClient) and returns Result values;
 * the api layer turns those into wire answers, the exchange layer produces keys through it.
 *
 * Invariants (see docs/architecture.md):
 * - a key at index i is deliverable at this end only when i < stream.nextIndex (committed);
 * - keys below nextIndex are never overwritten (storeKeys refuses such a round);
 * - a key is handed out at most once: its index is claimed in memory synchronously, then taken
 *   from the store (which erases it) before it is returned.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { HandleStore } from '../store/HandleStore.js';
import type { KeyStore } from '../store/KeyStore.js';
import { PeerError, normalizePeerAddress, type PeerClient, type SyncReply, type SyncRequest } from '../exchange/peerProtocol.js';
import { fail, ok, QkdmError, type Result } from './errors.js';
import { IndexSet } from './indexSet.js';
import { KeyedMutex } from './keyedMutex.js';
import type { KeyStream, KeyStreamPatch } from './types.js';
import { Wakeup } from './wakeup.js';

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
}

export interface OpenConnectRequest {
  source: string;
  destination: string;
  keyLengthBits: number;
  timeoutMs: number;
  keyStreamId: string | null;
}

export interface DeliveredKey {
  key: Uint8Array;
  index: number;
}

/** Per-stream state in memory; the persistent part is `stream`, mirrored in the HandleStore. */
interface StreamState {
  stream: KeyStream;
  keys: IndexSet;
  /** Notified when keys become deliverable or the stream closes. */
  arrived: Wakeup;
  /** Committed undelivered keys at the peer, as last reported. */
  peerAvailable: number | undefined;
}

export interface StreamSummary {
  keyStreamId: string;
  source: string;
  destination: string;
  peer: string;
  length: number;
  timeout: number;
  localOpen: boolean;
  peerOpen: boolean;
  closed: boolean;
  nextIndex: number;
  available: number;
}

type ManagerEvents = {
  /** Both applications opened the stream and it is not closed: the exchange may run. */
  ready: [keyStreamId: string];
  closed: [keyStreamId: string];
  /** A key was delivered here: there is room for more. */
  taken: [keyStreamId: string];
};

export class KeyStreamManager extends EventEmitter<ManagerEvents> {
  private readonly states = new Map<string, StreamState>();
  private readonly mutex = new KeyedMutex();

  constructor(
    private readonly handles: HandleStore,
    private readonly keyStore: KeyStore,
    private readonly peer: PeerClient,
    readonly settings: ManagerSettings,
    private readonly log: Logger,
  ) {
    super();
  }

  /** Loads every stream and the indices of its stored keys (after a restart, keys stay deliverable). */
  async init(): Promise<void> {
    for (const stream of await this.handles.list()) {
      const indices = await this.keyStore.indices(stream.keyStreamId);
      this.states.set(stream.keyStreamId, { stream, keys: new IndexSet(indices), arrived: new Wakeup(), peerAvailable: undefined });
    }
    this.log.info({ streams: this.states.size }, 'key streams loaded');
  }

  /** Streams where both applications are connected and the exchange should run. */
  readyStreams(): string[] {
    return [...this.states.values()].filter((s) => isReady(s.stream)).map((s) => s.stream.keyStreamId);
  }

  // ---------------------------------------------------------------- application calls

  /** OPEN_CONNECT: a null ID allocates one and registers it at the peer; a given ID joins (or registers) it. */
  async openConnect(req: OpenConnectRequest): Promise<Result<{ keyStreamId: string }>> {
    const peerUrl = normalizePeerAddress(req.destination);
    if (!peerUrl) return fail('BAD_REQUEST', 'destination must be the peer module as host:port or an http(s) URL');
    const keyStreamId = req.keyStreamId ?? randomUUID();
    return this.mutex.run(keyStreamId, async () => {
      const existing = this.states.get(keyStreamId);
      if (existing) return this.joinStream(existing, req);
      return this.registerStream(keyStreamId, peerUrl, req);
    });
  }

  /** CLOSE: stops the exchange at both ends; stored keys stay retrievable. Closing twice is fine. */
  async close(keyStreamId: string): Promise<Result<void>> {
    const state = this.states.get(keyStreamId);
    if (!state) return fail('UNKNOWN_STREAM', `unknown Key_stream_ID ${keyStreamId}`);
    const wasClosed = state.stream.closed;
    await this.mutex.run(keyStreamId, () => this.markClosed(state));
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
  async getKey(keyStreamId: string, index: number, timeoutMs?: number): Promise<Result<DeliveredKey | null>> {
    const state = this.states.get(keyStreamId);
    if (!state) return fail('UNKNOWN_STREAM', `unknown Key_stream_ID ${keyStreamId}`);
    if (!state.stream.localOpen) return fail('STREAM_NOT_OPEN', `Key_stream_ID ${keyStreamId} was not opened by an application on this module`);
    const deadline = Date.now() + (timeoutMs ?? state.stream.timeoutMs);
    for (;;) {
      const { nextIndex } = state.stream;
      const candidate = index === -1 ? state.keys.lowestBelow(nextIndex) : index < nextIndex && state.keys.has(index) ? index : undefined;
      if (candidate !== undefined) {
        state.keys.delete(candidate); // claimed: no concurrent call can pick it
        let key: Uint8Array | undefined;
        try {
          key = await this.keyStore.take(keyStreamId, candidate);
        } catch (err) {
          state.keys.add(candidate); // not delivered: give the claim back
          this.log.error({ keyStreamId, index: candidate, err: (err as Error).message }, 'key store take failed');
          return fail('STORE_UNAVAILABLE', 'key store unavailable');
        }
        if (!key) {
          this.log.error({ keyStreamId, index: candidate }, 'key index known but absent from the key store');
          continue;
        }
        this.emit('taken', keyStreamId);
        return ok({ key, index: candidate });
      }
      // Nothing deliverable now: wait only if the key can still come.
      if (state.stream.closed) return ok(null);
      if (index !== -1 && index < nextIndex) return ok(null); // delivered already, or never stored
      const left = deadline - Date.now();
      if (left <= 0) return ok(null);
      await state.arrived.wait(left);
    }
  }

  /** Committed, undelivered keys of one stream, or the total over open streams. */
  availableKeys(keyStreamId?: string): Result<number> {
    if (keyStreamId !== undefined) {
      const state = this.states.get(keyStreamId);
      if (!state) return fail('UNKNOWN_STREAM', `unknown Key_stream_ID ${keyStreamId}`);
      return ok(countAvailable(state));
    }
    let total = 0;
    for (const state of this.states.values()) if (!state.stream.closed && state.stream.localOpen) total += countAvailable(state);
    return ok(total);
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
    const peerUrl = normalizePeerAddress(req.peerAddress);
    if (!peerUrl) return fail('BAD_REQUEST', 'peerAddress must be host:port or an http(s) URL');
    return this.mutex.run(req.keyStreamId, async () => {
      const state = this.states.get(req.keyStreamId);
      if (!state) {
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
        });
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
      // Our application opened this ID first and waited for the peer's: both are now connected.
      await this.patch(state, { peerOpen: true, peerUrl });
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

  /** POST /peer/close: the peer closed the stream. */
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

  /** Stores a round's keys, not yet deliverable, at firstIndex.... Refuses to touch committed indices. */
  async storeKeys(keyStreamId: string, firstIndex: number, keys: readonly Uint8Array[]): Promise<Result<void>> {
    const state = this.states.get(keyStreamId);
    if (!state) return fail('UNKNOWN_STREAM', `unknown Key_stream_ID ${keyStreamId}`);
    if (firstIndex < state.stream.nextIndex) {
      return fail('STALE_ROUND', `round at index ${firstIndex} is below the committed index ${state.stream.nextIndex} of ${keyStreamId}`);
    }
    const bytes = state.stream.keyLengthBits / 8;
    if (keys.some((k) => k.length !== bytes)) return fail('BAD_REQUEST', `every key of ${keyStreamId} must be ${bytes} bytes`);
    if (keys.length === 0) return ok(undefined);
    try {
      await this.keyStore.putMany(keyStreamId, firstIndex, keys);
    } catch (err) {
      this.log.error({ keyStreamId, firstIndex, err: (err as Error).message }, 'key store put failed');
      return fail('STORE_UNAVAILABLE', 'key store unavailable');
    }
    keys.forEach((_, i) => state.keys.add(firstIndex + i));
    return ok(undefined);
  }

  /** Makes every stored key below `upTo` deliverable (moves the commit counter forward durably). */
  async commit(keyStreamId: string, upTo: number): Promise<Result<number>> {
    const state = this.states.get(keyStreamId);
    if (!state) return fail('UNKNOWN_STREAM', `unknown Key_stream_ID ${keyStreamId}`);
    if (upTo > state.stream.nextIndex) {
      let next: number | undefined;
      try {
        next = await this.handles.advanceIndex(keyStreamId, upTo);
      } catch (err) {
        this.log.error({ keyStreamId, err: (err as Error).message }, 'handle store advanceIndex failed');
        return fail('STORE_UNAVAILABLE', 'handle store unavailable');
      }
      if (next !== undefined && next > state.stream.nextIndex) state.stream.nextIndex = next;
      state.arrived.notify();
    }
    return ok(countAvailable(state));
  }

  // ---------------------------------------------------------------- internals

  private async registerStream(keyStreamId: string, peerUrl: string, req: OpenConnectRequest): Promise<Result<{ keyStreamId: string }>> {
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
      return peerFailure(err, peerUrl);
    }
    const stream: KeyStream = {
      keyStreamId,
      source: req.source,
      destination: req.destination,
      peerUrl,
      keyLengthBits: req.keyLengthBits,
      timeoutMs: req.timeoutMs,
      localOpen: true,
      peerOpen: reply.joined,
      closed: false,
      nextIndex: 0,
      createdAt: Date.now(),
    };
    await this.createStream(stream);
    this.log.info({ keyStreamId, peer: peerUrl, joined: reply.joined }, 'key stream registered at peer');
    if (isReady(stream)) this.emit('ready', keyStreamId);
    return ok({ keyStreamId });
  }

  private async joinStream(state: StreamState, req: OpenConnectRequest): Promise<Result<{ keyStreamId: string }>> {
    const s = state.stream;
    if (s.localOpen) return fail('STREAM_IN_USE', `Key_stream_ID ${s.keyStreamId} is already open on this module`);
    if (s.closed) return fail('STREAM_CLOSED', `Key_stream_ID ${s.keyStreamId} is closed`);
    if (s.keyLengthBits !== req.keyLengthBits) {
      return fail('BAD_REQUEST', `qos.length ${req.keyLengthBits} differs from the ${s.keyLengthBits} bits the peer opened this stream with`);
    }
    try {
      await this.peer.open(s.peerUrl, { keyStreamId: s.keyStreamId }, peerCallTimeout(req.timeoutMs, this.settings.peerTimeoutMs));
    } catch (err) {
      return peerFailure(err, s.peerUrl);
    }
    await this.patch(state, { localOpen: true, source: req.source, timeoutMs: req.timeoutMs });
    this.log.info({ keyStreamId: s.keyStreamId, peer: s.peerUrl }, 'key stream joined');
    if (isReady(s)) this.emit('ready', s.keyStreamId);
    return ok({ keyStreamId: s.keyStreamId });
  }

  private async createStream(stream: KeyStream): Promise<void> {
    const created = await this.handles.create(stream);
    if (!created) throw new QkdmError('STREAM_IN_USE', `Key_stream_ID ${stream.keyStreamId} already exists in the handle store`);
    this.states.set(stream.keyStreamId, { stream, keys: new IndexSet(), arrived: new Wakeup(), peerAvailable: undefined });
  }

  private async patch(state: StreamState, patch: KeyStreamPatch): Promise<void> {
    await this.handles.update(state.stream.keyStreamId, patch);
    Object.assign(state.stream, patch);
  }

  private async markClosed(state: StreamState): Promise<void> {
    if (state.stream.closed) return;
    await this.patch(state, { closed: true });
    state.arrived.notify(); // waiting GET_KEY calls return now
    this.log.info({ keyStreamId: state.stream.keyStreamId }, 'key stream closed');
    this.emit('closed', state.stream.keyStreamId);
  }
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
    localOpen: st.localOpen,
    peerOpen: st.peerOpen,
    closed: st.closed,
    nextIndex: st.nextIndex,
    available: countAvailable(s),
  };
}

/** A peer call on behalf of an application gives up after the application's timeout (bounded). */
function peerCallTimeout(appTimeoutMs: number, peerTimeoutMs: number): number {
  return appTimeoutMs > 0 ? Math.min(appTimeoutMs, peerTimeoutMs) : peerTimeoutMs;
}

function peerFailure<T>(err: unknown, peerUrl: string): Result<T> {
  if (err instanceof PeerError) {
    if (err.kind === 'refused' && err.peerCode === 'ROLE_CLASH') return fail('ROLE_CLASH', `peer ${peerUrl} refused: ${err.message}`);
    if (err.kind === 'refused' && err.peerCode === 'STREAM_IN_USE') return fail('STREAM_IN_USE', `peer ${peerUrl} refused: ${err.message}`);
    if (err.kind === 'refused') return fail('PEER_REFUSED', `peer ${peerUrl} refused: ${err.message}`);
    return fail('PEER_UNREACHABLE', `peer ${peerUrl} unreachable: ${err.message}`);
  }
  throw err;
}

export function describePeerError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
