/**
 * Compatibility with an original Python module (ignaziopedone/qkd-module, QKDModule.py and fakeKE.py,
 * master branch up to 6b7d3eb) as the peer of a link: docs/peer-protocol.md, "Legacy peer: the original
 * Python module". INSECURE by construction: the original cannot authenticate itself, so this exists only
 * with `peer_auth.insecure: true` and `peer_auth.legacy_peer` set (src/config/schema.ts), and is warned
 * about at every start.
 *
 * What the original speaks (plain HTTP, no authentication, no key confirmation):
 *   GET  <module>/sync?key_handle=ID        both openers: "I have this ID" (the second opener's call completes the rendezvous)
 *   POST <module+1>/sendRegister?newKey=true&keyLen=N   body repr(list of N bits): the sender's fake device hands over one key
 *   POST <module>/start                      body repr(ID): sender -> receiver "take the key"; receiver -> sender "taken, send the next"
 * `<module+1>` is the module's address with the port plus one (where the original runs its fake device).
 *
 * This file is a thin adapter over the existing core calls:
 * - `LegacyPeer.client(inner)`: a PeerClient that speaks the original's calls toward the legacy peer's
 *   address and passes every other address to `inner`. The sender loop of ExchangeService runs unchanged:
 *   a round is one key (the original's device holds one key at a time), and its key confirmation is
 *   answered here once the legacy receiver acknowledged the key with its /start. The original has no
 *   confirmation of its own: nothing proves that both ends hold the same key.
 * - `onSync`, `onStart`, `onSendRegister`: what the routes (src/api/routes/legacyPeer.ts) do with the
 *   original's calls to this module.
 * Keys never appear in logs or error messages.
 */
import type { Logger } from 'pino';
import type { KeyStreamManager } from '../core/KeyStreamManager.js';
import { KeyedMutex } from '../core/keyedMutex.js';
import { MAX_KEY_LENGTH_BITS } from '../core/types.js';
import { confirmationTag } from './keyConfirmation.js';
import {
  normalizePeerAddress,
  PeerError,
  type ConfirmMessage,
  type ConfirmReply,
  type CounterMessage,
  type CounterReply,
  type PeerClient,
  type RoundMessage,
  type RoundReply,
  type StartNotice,
  type StreamNotice,
  type SyncReply,
  type SyncRequest,
} from './peerProtocol.js';

/** The original's answer texts (Flask: `return "OK", 200`, `return "Error", 400`). */
export const LEGACY_OK = 'OK';
export const LEGACY_ERROR = 'Error';

export interface LegacyAnswer {
  status: number;
  text: string;
}

export interface LegacyPeerSettings {
  /** peer_auth.legacy_peer: the original module's web server, host:port. */
  address: string;
  /** This module's module.sender (the original must have the other role). */
  sender: 0 | 1;
  /** This module's simulator (always `fake`: the configuration refuses anything else). */
  sim: string;
  /** Streams the legacy peer may register before an application here opens them (module.max_pending_registrations). */
  maxPendingRegistrations: number;
  /** ... and how long such a registration is kept (module.pending_registration_ttl_s). */
  pendingRegistrationTtlMs: number;
}

/** The original's `repr(Key_stream_ID)`: a Python string literal (stream IDs are [A-Za-z0-9-]). */
export const pyStr = (s: string): string => `'${s}'`;

/** Key bytes as the original's list of bits: bit 0 is the most significant bit of octet 0 (its convertToBytes, inverted). */
export function keyToBits(key: Uint8Array): number[] {
  const bits: number[] = [];
  for (const byte of key) for (let i = 7; i >= 0; i--) bits.push((byte >> i) & 1);
  return bits;
}

/** The original's convertToBytes: a list of bits (multiple of 8) to key bytes. */
export function bitsToKey(bits: readonly number[]): Uint8Array {
  const key = new Uint8Array(bits.length / 8);
  for (let i = 0; i < bits.length; i++) if (bits[i] === 1) key[i >> 3]! |= 0x80 >> (i & 7);
  return key;
}

/** What the legacy sender's device handed over (one key at a time, as the original's simulator table). */
interface Slot {
  key: Uint8Array;
  at: number;
}

/** Sender role: a key sent to the legacy receiver, waiting for its /start. */
interface SentKey {
  roundId: string;
  firstIndex: number;
  keyLengthBits: number;
  keys: Uint8Array[];
  acknowledged: Promise<void>;
  acknowledge: () => void;
}

export class LegacyPeer {
  /** The legacy peer's web server and its fake device (port + 1), as base URLs. */
  readonly peerUrl: string;
  readonly deviceUrl: string;
  private manager: KeyStreamManager | undefined;
  /** IDs the legacy peer registered (its application opened first) that no application here opened yet. */
  private readonly registered = new Map<string, number>();
  /** Sender role: the key in flight per stream. */
  private readonly sent = new Map<string, SentKey>();
  /** Receiver role: the key the legacy sender's device handed over, until its /start. */
  private slot: Slot | undefined;
  /** Receiver role: streams whose acknowledgement waits for room under module.max_key_count. */
  private readonly ackWhenRoom = new Set<string>();
  private readonly receiving = new KeyedMutex();
  private stopped = false;

  constructor(
    readonly settings: LegacyPeerSettings,
    private readonly log: Logger,
  ) {
    const url = normalizePeerAddress(settings.address, 'http');
    if (!url) throw new Error('config: peer_auth.legacy_peer: expected host:port of the original module');
    this.peerUrl = url;
    const u = new URL(url);
    u.port = String(Number(u.port || '80') + 1);
    this.deviceUrl = `${u.protocol}//${u.host}`;
  }

  /** The warning printed at every start. */
  static warning(address: string): string {
    return (
      `INSECURE: peer_auth.legacy_peer is set: the peer at ${address} is an original Python module (legacy peer protocol), on an ` +
      'unauthenticated plain-HTTP peer channel with no key confirmation. Anyone who can reach this module\'s peer routes (or its ' +
      'legacy device port, peer port + 1) can register streams and inject keys, and anyone on the network path reads every key, ' +
      'which the fake device sends in clear. Development and migration only.'
    );
  }

  attach(manager: KeyStreamManager): void {
    this.manager = manager;
    manager.on('taken', this.onTaken);
    manager.on('closed', this.onClosed);
  }

  stop(): void {
    this.stopped = true;
    this.manager?.off('taken', this.onTaken);
    this.manager?.off('closed', this.onClosed);
    this.slot?.key.fill(0);
    this.slot = undefined;
    for (const s of this.sent.values()) for (const k of s.keys) k.fill(0);
    this.sent.clear();
  }

  /** A PeerClient that speaks the original's calls toward the legacy peer and passes other peers to `inner`. */
  client(inner: PeerClient): PeerClient {
    const legacy = (url: string): boolean => url === this.peerUrl;
    return {
      sync: (url, req, t) => (legacy(url) ? this.sync(req, t) : inner.sync(url, req, t)),
      open: (url, n, t) => (legacy(url) ? this.open(n, t) : inner.open(url, n, t)),
      close: (url, n, t) => (legacy(url) ? Promise.resolve() : inner.close(url, n, t)), // the original tells its peer nothing at CLOSE
      start: (url, n, t) => (legacy(url) ? this.start(n) : inner.start(url, n, t)),
      round: (url, m, t) => (legacy(url) ? this.round(m, t) : inner.round(url, m, t)),
      confirm: (url, m, t) => (legacy(url) ? this.confirm(m, t) : inner.confirm(url, m, t)),
      counter: (url, m, t) => (legacy(url) ? this.counter(m) : inner.counter(url, m, t)),
      post: (url, path, body, t) =>
        legacy(url) ? Promise.reject(new PeerError('refused', 'the legacy peer (original module) has no such message')) : inner.post(url, path, body, t),
    };
  }

  // ------------------------------------------------------------------ calls to the legacy peer

  private async call(base: string, pathAndQuery: string, method: 'GET' | 'POST', body: string | undefined, timeoutMs: number): Promise<number> {
    let res: Response;
    try {
      res = await fetch(`${base}${pathAndQuery}`, { method, ...(body !== undefined ? { body } : {}), redirect: 'error', signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      throw new PeerError('unreachable', `legacy peer not reached (${(err as Error).name})`);
    }
    await res.body?.cancel().catch(() => undefined); // the original's answers carry nothing but the status
    return res.status;
  }

  /** The original's rendezvous call, `GET /sync?key_handle=ID`, sent by the first and by the second opener alike. */
  private async legacySync(keyStreamId: string, timeoutMs: number): Promise<void> {
    const status = await this.call(this.peerUrl, `/sync?key_handle=${encodeURIComponent(keyStreamId)}`, 'GET', undefined, timeoutMs);
    if (status !== 200) throw new PeerError('refused', `legacy peer answered /sync with HTTP ${status}`);
  }

  private async sync(req: SyncRequest, timeoutMs: number): Promise<SyncReply> {
    this.pruneRegistrations();
    const peerOpenedFirst = this.registered.has(req.keyStreamId);
    await this.legacySync(req.keyStreamId, timeoutMs);
    this.registered.delete(req.keyStreamId);
    // The legacy application opened the ID first: this /sync completed the rendezvous at both ends.
    return { status: 0, joined: peerOpenedFirst };
  }

  private async open(notice: StreamNotice, timeoutMs: number): Promise<void> {
    await this.legacySync(notice.keyStreamId, timeoutMs);
  }

  /** The receiver's "keys were taken" notice has no counterpart: the original's /start is tied to a key (see onStart). */
  private start(_notice: StartNotice): Promise<void> {
    return Promise.resolve();
  }

  /**
   * The original keeps no commit counter: it numbers keys as they arrive. The sender's loop sees this
   * module's own counter (nothing to roll forward), nothing waiting at the peer, and room for one key per
   * round: the original's fake device holds one key at a time.
   */
  private counter(msg: CounterMessage): Promise<CounterReply> {
    return Promise.resolve({ nextIndex: this.manager?.stream(msg.keyStreamId)?.nextIndex ?? 0, available: 0, maxKeyCount: 1 });
  }

  /**
   * Sender role, one round = one key, in the original sender's order: the key to the legacy device
   * (`/sendRegister`, its bits as a Python list), then `/start` to the legacy module, whose receiver loop
   * takes the key and answers with its own `/start` (awaited in confirm()).
   */
  private async round(msg: RoundMessage, timeoutMs: number): Promise<RoundReply> {
    if (msg.step !== 'keys') throw new PeerError('protocol', `the legacy peer only runs the fake exchange (step '${msg.step}')`);
    const list = (msg.payload as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(list) || list.length !== 1 || typeof list[0] !== 'string') {
      throw new PeerError('protocol', 'a round toward the legacy peer carries exactly one key');
    }
    const key = new Uint8Array(Buffer.from(list[0], 'base64'));
    const bits = keyToBits(key);
    const previous = this.sent.get(msg.keyStreamId);
    if (previous) for (const k of previous.keys) k.fill(0);
    this.sent.delete(msg.keyStreamId);
    let status = await this.call(this.deviceUrl, `/sendRegister?newKey=true&keyLen=${msg.keyLengthBits}`, 'POST', `[${bits.join(', ')}]`, timeoutMs);
    bits.fill(0);
    if (status !== 200) {
      key.fill(0);
      // 400: the device still holds an earlier key (the original's "previous key exchange is not completed yet").
      throw new PeerError('refused', `legacy device refused the key (HTTP ${status})`);
    }
    let acknowledge!: () => void;
    const acknowledged = new Promise<void>((res) => (acknowledge = res));
    this.sent.set(msg.keyStreamId, { roundId: msg.roundId, firstIndex: msg.firstIndex, keyLengthBits: msg.keyLengthBits, keys: [key], acknowledged, acknowledge });
    status = await this.call(this.peerUrl, '/start', 'POST', pyStr(msg.keyStreamId), timeoutMs);
    if (status !== 200) throw new PeerError('refused', `legacy peer answered /start with HTTP ${status}`);
    return { reply: { received: 1 }, stored: 1, available: 0 };
  }

  /**
   * Sender role: the legacy receiver's /start for the key sent in round() stands in for a key
   * confirmation, which the original does not have. The tag is computed here over the key sent, so the
   * sender loop commits the key only once the legacy peer acknowledged it.
   */
  private async confirm(msg: ConfirmMessage, timeoutMs: number): Promise<ConfirmReply> {
    const sent = this.sent.get(msg.keyStreamId);
    if (!sent || sent.roundId !== msg.roundId || sent.firstIndex !== msg.firstIndex || sent.keys.length !== msg.count) {
      throw new PeerError('protocol', 'no key sent to the legacy peer matches this confirmation');
    }
    let timer: NodeJS.Timeout | undefined;
    const ok = await Promise.race([sent.acknowledged.then(() => true), new Promise<boolean>((res) => (timer = setTimeout(() => res(false), timeoutMs)))]);
    clearTimeout(timer);
    try {
      if (!ok) throw new PeerError('unreachable', `the legacy peer did not acknowledge the key within ${timeoutMs} ms (its /start)`);
      const seed = Buffer.from(msg.seed, 'base64');
      const context = { keyStreamId: msg.keyStreamId, roundId: msg.roundId, firstIndex: msg.firstIndex, keyLengthBits: sent.keyLengthBits };
      const tag = confirmationTag(seed, 'receiver', context, sent.keys).toString('base64');
      return { match: true, tag, nextIndex: msg.firstIndex + msg.count, available: 0 };
    } finally {
      for (const k of sent.keys) k.fill(0);
      if (this.sent.get(msg.keyStreamId) === sent) this.sent.delete(msg.keyStreamId);
    }
  }

  // ------------------------------------------------------------------ calls from the legacy peer

  private pruneRegistrations(): void {
    const oldest = Date.now() - this.settings.pendingRegistrationTtlMs;
    for (const [id, at] of this.registered) if (at <= oldest) this.registered.delete(id);
  }

  /** `GET /sync?key_handle=ID` from the legacy peer. */
  async onSync(keyStreamId: string): Promise<LegacyAnswer> {
    const manager = this.requireManager();
    const stream = manager.stream(keyStreamId);
    if (stream) {
      // An application here opened the ID (or the legacy peer's first /sync was already followed by ours):
      // the legacy application opened it too. The original's /sync says nothing else; the rest is ours.
      const result = await manager.onPeerSync({
        keyStreamId,
        source: '',
        destination: '',
        keyLengthBits: stream.keyLengthBits,
        timeoutMs: 0,
        sender: this.settings.sender === 1 ? 0 : 1,
        sim: this.settings.sim,
        peerAddress: this.peerUrl,
      });
      if (result.ok) return { status: 200, text: LEGACY_OK };
      this.log.warn({ keyStreamId, code: result.error.code }, 'legacy peer: /sync refused');
      return { status: result.error.definition.httpStatus === 200 ? 409 : result.error.definition.httpStatus, text: LEGACY_ERROR };
    }
    // The legacy application opened first. Its /sync carries no key length: the stream is created when an
    // application here opens the ID (with its qos.length), whose OPEN_CONNECT answers the legacy /sync.
    this.pruneRegistrations();
    if (!this.registered.has(keyStreamId) && this.registered.size >= this.settings.maxPendingRegistrations) {
      this.log.warn({ cap: this.settings.maxPendingRegistrations }, 'legacy peer: registration refused (module.max_pending_registrations)');
      return { status: 503, text: LEGACY_ERROR };
    }
    this.registered.set(keyStreamId, Date.now());
    this.log.info({ keyStreamId }, 'legacy peer registered a stream; waiting for an application here to open it');
    return { status: 200, text: LEGACY_OK };
  }

  /** `POST /start` with body repr(ID) from the legacy peer. */
  onStart(keyStreamId: string): LegacyAnswer {
    const manager = this.requireManager();
    if (this.settings.sender === 1) {
      // The legacy receiver took the key sent in round(): "send the next one".
      const sent = this.sent.get(keyStreamId);
      if (sent) sent.acknowledge();
      else this.log.warn({ keyStreamId }, 'legacy peer acknowledged a key this module is not waiting for (late, after a timeout?): the two ends may number keys differently from here');
      const r = manager.onPeerStart(keyStreamId, undefined);
      return r.ok ? { status: 200, text: LEGACY_OK } : { status: 404, text: LEGACY_ERROR };
    }
    // Receiver role: the legacy sender's device handed over a key (/sendRegister); take it now.
    const slot = this.slot;
    this.slot = undefined;
    const stream = manager.stream(keyStreamId);
    if (!stream || !stream.localOpen || !stream.peerOpen || stream.closed) {
      slot?.key.fill(0);
      this.log.warn({ keyStreamId, known: stream !== undefined }, 'legacy peer: /start for a stream that is not open at both ends here: ignored');
      return { status: stream ? 409 : 404, text: LEGACY_ERROR };
    }
    if (!slot) {
      // The original sends /start even when its key did not reach the device; it does not wait for an answer then.
      this.log.warn({ keyStreamId }, 'legacy peer: /start without a key on the legacy device port: ignored');
      return { status: 200, text: LEGACY_OK };
    }
    if (slot.key.length * 8 !== stream.keyLengthBits) {
      slot.key.fill(0);
      manager.halt(keyStreamId, `legacy peer sent a key of ${slot.key.length * 8} bits; the stream's keys are ${stream.keyLengthBits} bits: not stored, not acknowledged`);
      return { status: 200, text: LEGACY_OK };
    }
    void this.receiving.run(keyStreamId, () => this.storeReceived(keyStreamId, slot.key)).catch((err: unknown) => {
      this.log.error({ keyStreamId, err: (err as Error).message }, 'legacy peer: storing a received key failed');
    });
    return { status: 200, text: LEGACY_OK };
  }

  /** `POST /sendRegister?newKey=true&keyLen=N` on the legacy device port, body repr(list of N bits). */
  onSendRegister(keyLenText: unknown, bits: unknown): LegacyAnswer {
    const keyLen = typeof keyLenText === 'string' && /^\d{1,5}$/.test(keyLenText) ? Number(keyLenText) : NaN;
    const valid =
      Number.isInteger(keyLen) && keyLen > 0 && keyLen % 8 === 0 && keyLen <= MAX_KEY_LENGTH_BITS &&
      Array.isArray(bits) && bits.length === keyLen && bits.every((b) => b === 0 || b === 1);
    if (!valid) return { status: 400, text: LEGACY_ERROR };
    if (this.slot) return { status: 400, text: LEGACY_ERROR }; // the original: previous key exchange not completed yet
    this.slot = { key: bitsToKey(bits as number[]), at: Date.now() };
    return { status: 200, text: LEGACY_OK };
  }

  /** Receiver role: the key is the stream's next one; no confirmation exists, so it is committed at once. */
  private async storeReceived(keyStreamId: string, key: Uint8Array): Promise<void> {
    const manager = this.requireManager();
    try {
      const stream = manager.stream(keyStreamId);
      if (!stream || stream.closed) return;
      const first = stream.nextIndex;
      const put = await manager.storeKeys(keyStreamId, first, [key]);
      const committed = put.ok ? await manager.commit(keyStreamId, first + 1) : put;
      if (!committed.ok) {
        // Not acknowledged: the legacy sender waits instead of numbering a key this end does not hold.
        manager.halt(keyStreamId, `legacy peer: a received key was not stored (${committed.error.code}); not acknowledged`);
        return;
      }
    } finally {
      key.fill(0);
    }
    this.ackWhenRoom.add(keyStreamId);
    this.acknowledgeIfRoom(keyStreamId);
  }

  /**
   * Receiver role: the original's "taken, send the next" (/start to the legacy sender), sent only while
   * there is room for one more key under module.max_key_count, so the next key always fits.
   */
  private acknowledgeIfRoom(keyStreamId: string): void {
    const manager = this.manager;
    if (!manager || this.stopped || !this.ackWhenRoom.has(keyStreamId)) return;
    const stream = manager.stream(keyStreamId);
    if (!stream || stream.closed) {
      this.ackWhenRoom.delete(keyStreamId);
      return;
    }
    if (manager.available(keyStreamId) >= manager.settings.maxKeyCount) return; // sent when a key is taken
    this.ackWhenRoom.delete(keyStreamId);
    void this.acknowledge(keyStreamId);
  }

  private async acknowledge(keyStreamId: string): Promise<void> {
    const timeout = this.manager?.settings.peerTimeoutMs ?? 5000;
    for (let attempt = 0; attempt < 3 && !this.stopped; attempt++) {
      try {
        const status = await this.call(this.peerUrl, '/start', 'POST', pyStr(keyStreamId), timeout);
        if (status === 200) return;
      } catch {
        // retried below
      }
      await new Promise((res) => setTimeout(res, 200 * (attempt + 1)));
    }
    this.log.warn({ keyStreamId }, 'legacy peer: could not acknowledge a key (its /start); the legacy sender waits');
  }

  private readonly onTaken = (keyStreamId: string): void => {
    if (this.settings.sender === 0) this.acknowledgeIfRoom(keyStreamId);
  };

  private readonly onClosed = (keyStreamId: string): void => {
    this.ackWhenRoom.delete(keyStreamId);
    const sent = this.sent.get(keyStreamId);
    if (sent) for (const k of sent.keys) k.fill(0);
    this.sent.delete(keyStreamId);
  };

  private requireManager(): KeyStreamManager {
    if (!this.manager) throw new Error('legacy peer: not attached to the key stream manager');
    return this.manager;
  }
}
