/**
 * ETSI GS QKD 014 v1.1.1 key delivery over the KeyStreamManager's public API (docs/etsi014.md).
 *
 * - Every configured SAE pair has two key streams, one per direction (master -> slave), with a
 *   Key_stream_ID both modules derive from (master KME, master SAE, slave KME, slave SAE, key size)
 *   by hashing, so they agree without coordination. The sender module (module.sender = 1) registers
 *   them at the peer; the detector joins; both retry with back-off until the stream is open.
 * - enc_keys (at the master's module) takes keys from the master -> slave stream (lowest index first),
 *   gives each delivered key a random UUID key_ID, announces {key_ID, indices} to the slave's module
 *   (POST /peer/etsi014/keys) and answers only once that module stored them durably.
 * - dec_keys (at the slave's module) claims the records of the asked key_IDs (durably, all or none),
 *   then takes exactly those indices from the stream: only the slave SAE named at enc_keys time gets
 *   them (anyone else: 401). An answer that never left (the connection broke first, the module
 *   crashed) leaves the claim standing for the re-delivery window: the same slave SAE repeating the
 *   same dec_keys gets the same keys (the manager retains them for ETSI014_OWNER); an answer that left
 *   removes the records, so the key is not found again. Claimed records go when the window closes.
 * - Issued key IDs no dec_keys claims expire after etsi014.key_id_ttl_s: the records go and their keys
 *   are erased at the slave's module, so lost enc_keys answers never fill the pair's buffer for good.
 * - A key of `size` bits is the concatenation of ceil(size / key_size) stream keys, cut to size / 8
 *   bytes; the unused tail is dropped, never reused.
 *
 * The service returns values (Etsi014Result); the api layer maps them to HTTP 400 / 401 / 503.
 */
import { createHash, randomUUID } from 'node:crypto';
import { ETSI014_OWNER } from './types.js';
import type { Logger } from 'pino';
import type { Etsi014KeyIdStore, IssuedKeyRecord } from '../store/Etsi014KeyIdStore.js';
import {
  ETSI014_PEER_KEYS_PATH,
  ETSI014_PEER_READY_PATH,
  type Etsi014KeysNotice,
  type Etsi014KeysNoticeParsed,
  type Etsi014KeysReply,
} from '../exchange/etsi014Peer.js';
import type { PeerClient } from '../exchange/peerProtocol.js';
import { fail, ok, type Result } from './errors.js';
import { DEFAULT_REDELIVERY_WINDOW_MS, type DeliveredKey, type KeyStreamManager } from './KeyStreamManager.js';
import { NO_TELEMETRY, type ModuleTelemetry } from './telemetry.js';

/** Messages ETSI GS QKD 014 v1.1.1 fixes for 400 answers. */
export const ETSI014_MESSAGES = {
  SIZE_NOT_MULTIPLE_OF_8: 'size shall be a multiple of 8',
  EXTENSION_MANDATORY_UNSUPPORTED: 'not all extension_mandatory parameters are supported',
  EXTENSION_MANDATORY_UNMET: 'not all extension_mandatory request options could be met',
  KEYS_NOT_FOUND: 'one or more keys specified are not found on KME',
} as const;

/** This KME delivers to one slave SAE per request (no key multicast): Status.max_SAE_ID_count. */
export const MAX_SAE_ID_COUNT = 0;

export interface Etsi014Pair {
  /** SAE attached to this module. */
  saeId: string;
  /** SAE attached to the peer module. */
  peerSaeId: string;
  /** Base URL of the peer module's peer channel, e.g. https://127.0.0.1:6001. */
  peerUrl: string;
  peerKmeId: string;
}

export interface Etsi014Settings {
  kmeId: string;
  /** module.sender: the sender registers the pair streams at the peer, the detector joins them. */
  sender: 0 | 1;
  /** Stream key size and default `size`, bits. */
  keySize: number;
  maxKeyPerRequest: number;
  maxKeySize: number;
  minKeySize: number;
  /** Reported as Status.max_key_count (stored_key_count never exceeds it). */
  maxKeyCount: number;
  pairs: readonly Etsi014Pair[];
  /** enc_keys waits this long for missing keys; dec_keys this long for a key the peer committed. */
  waitMs: number;
  /** One peer call gives up after this. */
  peerTimeoutMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
  /**
   * Issued key IDs no dec_keys claimed expire this long after the slave's module recorded them
   * (etsi014.key_id_ttl_s): records removed, stream keys erased. 0 = never. Default {@link DEFAULT_KEY_ID_TTL_MS}.
   */
  keyIdTtlMs?: number;
}

/** etsi014.key_id_ttl_s default (3600 s). */
export const DEFAULT_KEY_ID_TTL_MS = 3_600_000;
/** Longest pause between two expiry sweeps. */
const MAX_SWEEP_MS = 60_000;
/** Indices per stream kept for another erasure attempt (beyond: the orphan watermark frees them). */
const MAX_UNERASED = 100_000;

export interface Etsi014Failure {
  status: 400 | 401 | 503;
  /** Absent for 401 (the standard answers it without a body). */
  message?: string;
  details?: Array<Record<string, unknown>>;
}
export type Etsi014Result<T> = { ok: true; value: T } | { ok: false; error: Etsi014Failure };

const done = <T>(value: T): Etsi014Result<T> => ({ ok: true, value });
const badRequest = (message: string, details?: Array<Record<string, unknown>>): Etsi014Result<never> => ({
  ok: false,
  error: { status: 400, message, ...(details ? { details } : {}) },
});
const unauthorized = (): Etsi014Result<never> => ({ ok: false, error: { status: 401 } });
const unavailable = (message: string): Etsi014Result<never> => ({ ok: false, error: { status: 503, message } });

export interface KeyRequest {
  number?: number;
  size?: number;
  additional_slave_SAE_IDs?: readonly string[];
  extension_mandatory?: ReadonlyArray<Record<string, unknown>>;
  extension_optional?: ReadonlyArray<Record<string, unknown>>;
}

export interface IssuedKey {
  keyId: string;
  key: Uint8Array;
}

export interface Etsi014Status {
  source_KME_ID: string;
  target_KME_ID: string;
  master_SAE_ID: string;
  slave_SAE_ID: string;
  key_size: number;
  stored_key_count: number;
  max_key_count: number;
  max_key_per_request: number;
  max_key_size: number;
  min_key_size: number;
  max_SAE_ID_count: number;
}

/** One direction of one SAE pair. */
interface PairStream {
  keyStreamId: string;
  pair: Etsi014Pair;
  masterSaeId: string;
  slaveSaeId: string;
  attempt: number;
  timer: NodeJS.Timeout | undefined;
  opening: Promise<boolean> | undefined;
  closedLogged: boolean;
  /** Master side: indices taken for an enc_keys whose notice is not answered yet (they bound the orphan watermark). */
  inFlight: Set<number>;
  /** Slave side: indices of a dec_keys between claiming its records and taking its keys (never orphans). */
  claiming: Set<number>;
  /** Master side: the reconcile notice (discards + orphan watermark) and its retry. */
  reconcile: { running: boolean; again: boolean; attempt: number; timer: NodeJS.Timeout | undefined };
}

/**
 * The Key_stream_ID of the master -> slave stream: a UUID (version nibble 8, RFC 9562 "custom") made
 * from SHA-256 over the four IDs and the key size, so both modules derive the same one.
 */
export function etsi014KeyStreamId(masterKmeId: string, masterSaeId: string, slaveKmeId: string, slaveSaeId: string, keySizeBits: number): string {
  const h = createHash('sha256').update(JSON.stringify(['qkdm/etsi014/v1', masterKmeId, masterSaeId, slaveKmeId, slaveSaeId, keySizeBits])).digest();
  h[6] = (h[6]! & 0x0f) | 0x80;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

export class Etsi014Service {
  private readonly streams = new Map<string, PairStream>();
  /** Per stream: indices taken at this module for an enc_keys that then failed; the next notice tells the peer to drop them. */
  private readonly pendingDiscards = new Map<string, number[]>();
  /**
   * Key IDs of a dec_keys between its claim and the fate of its answer (and, when the answer left, until
   * their records are removed): another dec_keys naming one of them is answered "not found".
   */
  private readonly busy = new Set<string>();
  /** Key IDs whose answer left but whose records could not be removed yet (store down): retried by the sweep. */
  private readonly unsettled = new Set<string>();
  /** Per stream: indices of expired records still to erase (not committed here yet, or the erasure failed). */
  private readonly unerased = new Map<string, Set<number>>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping = false;
  private stopped = true;

  constructor(
    private readonly manager: KeyStreamManager,
    private readonly store: Etsi014KeyIdStore,
    private readonly peer: PeerClient,
    readonly settings: Etsi014Settings,
    private readonly log: Logger,
    private readonly telemetry: ModuleTelemetry = NO_TELEMETRY,
  ) {
    for (const pair of settings.pairs) {
      for (const localIsMaster of [true, false]) {
        const [masterSaeId, slaveSaeId] = localIsMaster ? [pair.saeId, pair.peerSaeId] : [pair.peerSaeId, pair.saeId];
        const [masterKme, slaveKme] = localIsMaster ? [settings.kmeId, pair.peerKmeId] : [pair.peerKmeId, settings.kmeId];
        const keyStreamId = etsi014KeyStreamId(masterKme, masterSaeId, slaveKme, slaveSaeId, settings.keySize);
        this.streams.set(keyStreamId, {
          keyStreamId,
          pair,
          masterSaeId,
          slaveSaeId,
          attempt: 0,
          timer: undefined,
          opening: undefined,
          closedLogged: false,
          inFlight: new Set(),
          claiming: new Set(),
          reconcile: { running: false, again: false, attempt: 0, timer: undefined },
        });
      }
    }
  }

  /** Opens (or re-joins after a restart) every pair stream, retrying with back-off until each is open. */
  start(): void {
    this.stopped = false;
    for (const ps of this.streams.values()) void this.ensure(ps);
    // Records a crash or a long stop left behind (expired, or claimed with their window closed) go now.
    void this.sweep();
    if (!this.sweepTimer) {
      this.sweepTimer = setInterval(() => void this.sweep(), this.sweepPeriodMs());
      this.sweepTimer.unref();
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    for (const ps of this.streams.values()) {
      if (ps.timer) clearTimeout(ps.timer);
      ps.timer = undefined;
      if (ps.reconcile.timer) clearTimeout(ps.reconcile.timer);
      ps.reconcile.timer = undefined;
    }
  }

  /** The Key_stream_ID used for keys from `masterSaeId` to `slaveSaeId` (undefined for an unknown pair). */
  keyStreamIdFor(masterSaeId: string, slaveSaeId: string): string | undefined {
    for (const ps of this.streams.values()) if (ps.masterSaeId === masterSaeId && ps.slaveSaeId === slaveSaeId) return ps.keyStreamId;
    return undefined;
  }

  // ---------------------------------------------------------------- SAE calls

  /** Get status: called by the master SAE for a slave SAE. */
  status(masterSaeId: string, slaveSaeId: string): Etsi014Result<Etsi014Status> {
    const ps = this.streamOf(masterSaeId, slaveSaeId, this.settings.kmeId);
    if (!ps) return badRequest(`slave_SAE_ID: ${slaveSaeId} is not an SAE paired with ${masterSaeId} on this KME`);
    const s = this.manager.summary(ps.keyStreamId);
    if (!this.isOpen(ps)) void this.ensure(ps);
    const stored = s && !s.closed ? Math.min(s.available, this.settings.maxKeyCount) : 0;
    return done({
      source_KME_ID: this.settings.kmeId,
      target_KME_ID: ps.pair.peerKmeId,
      master_SAE_ID: masterSaeId,
      slave_SAE_ID: slaveSaeId,
      key_size: this.settings.keySize,
      stored_key_count: stored,
      max_key_count: this.settings.maxKeyCount,
      max_key_per_request: this.settings.maxKeyPerRequest,
      max_key_size: this.servableMaxKeySize(),
      min_key_size: this.settings.minKeySize,
      max_SAE_ID_count: MAX_SAE_ID_COUNT,
    });
  }

  /** Get key: called by the master SAE; the keys leave the pool here and their IDs reach the slave's module first. */
  async encKeys(masterSaeId: string, slaveSaeId: string, req: KeyRequest): Promise<Etsi014Result<IssuedKey[]>> {
    const ps = this.streamOf(masterSaeId, slaveSaeId, this.settings.kmeId);
    if (!ps) return badRequest(`slave_SAE_ID: ${slaveSaeId} is not an SAE paired with ${masterSaeId} on this KME`);
    if (req.additional_slave_SAE_IDs && req.additional_slave_SAE_IDs.length > 0) {
      return badRequest(`additional_slave_SAE_IDs: not supported by this KME (max_SAE_ID_count is ${MAX_SAE_ID_COUNT})`);
    }
    if (req.extension_mandatory && req.extension_mandatory.length > 0) {
      const names = req.extension_mandatory.flatMap((e) => Object.keys(e));
      return badRequest(ETSI014_MESSAGES.EXTENSION_MANDATORY_UNSUPPORTED, names.map((name) => ({ extension_mandatory: name, reason: 'not supported' })));
    }
    const { keySize, maxKeyPerRequest, minKeySize, maxKeyCount } = this.settings;
    const maxKeySize = this.servableMaxKeySize();
    const number = req.number ?? 1;
    if (!Number.isSafeInteger(number) || number < 1 || number > maxKeyPerRequest) {
      return badRequest(`number: must be an integer between 1 and ${maxKeyPerRequest} (max_key_per_request)`);
    }
    const size = req.size ?? keySize;
    if (!Number.isSafeInteger(size) || size <= 0 || size % 8 !== 0) return badRequest(ETSI014_MESSAGES.SIZE_NOT_MULTIPLE_OF_8);
    if (size < minKeySize || size > maxKeySize) {
      return badRequest(`size: must be between ${minKeySize} and ${maxKeySize} bits (min_key_size, max_key_size)`);
    }
    // A request the pair can never hold at once is refused before any key is taken (it would otherwise
    // wait for keys that cannot come, and take keys from the pool for nothing).
    const needed = number * Math.ceil(size / keySize);
    if (needed > maxKeyCount) {
      return badRequest(
        `number × size: ${number} key(s) of ${size} bits need ${needed} stream keys of ${keySize} bits, and this pair holds at most ${maxKeyCount} (max_key_count): ask for fewer or smaller keys`,
      );
    }
    if (!this.isOpen(ps)) {
      void this.ensure(ps);
      return unavailable(`the key stream to ${ps.pair.peerKmeId} is not established yet; try again later`);
    }

    const parts = Math.ceil(size / keySize);
    const taken = await this.takeKeys(ps, number * parts);
    if (!taken) return unavailable(`not enough key material for ${number} key(s) of ${size} bits; try again later`);

    const issued: IssuedKey[] = [];
    const announced: Etsi014KeysNotice['keys'] = [];
    for (let i = 0; i < number; i++) {
      const group = taken.slice(i * parts, (i + 1) * parts);
      const keyId = randomUUID();
      issued.push({ keyId, key: assemble(group.map((k) => k.key), size) });
      announced.push({ key_ID: keyId, indices: group.map((k) => k.index) });
    }
    const mine = taken.map((k) => k.index);
    const discard = this.pendingDiscards.get(ps.keyStreamId) ?? [];
    this.pendingDiscards.delete(ps.keyStreamId);
    const notice: Etsi014KeysNotice = {
      keyStreamId: ps.keyStreamId,
      master_SAE_ID: masterSaeId,
      slave_SAE_ID: slaveSaeId,
      master_KME_ID: this.settings.kmeId,
      size,
      keys: announced,
      discard,
      orphans_below: this.orphanWatermark(ps, mine),
    };
    try {
      await this.peer.post(ps.pair.peerUrl, ETSI014_PEER_KEYS_PATH, notice, this.settings.peerTimeoutMs);
    } catch (err) {
      // Never delivered: the slave's module must drop these indices. Told at once (and again until it
      // answers), not only with the next successful request, which may never come if the slave is full.
      this.addDiscards(ps.keyStreamId, [...discard, ...mine]);
      for (const i of mine) ps.inFlight.delete(i);
      for (const k of issued) k.key.fill(0);
      this.telemetry.keysDiscarded(ps.keyStreamId, 'etsi014-orphan', mine.length);
      this.log.warn({ keyStreamId: ps.keyStreamId, count: number, err: describe(err) }, 'etsi014: slave KME did not store the key IDs; nothing delivered');
      this.scheduleReconcile(ps, true);
      return unavailable(`the slave SAE's KME (${ps.pair.peerKmeId}) did not confirm the key IDs; no keys were delivered`);
    }
    for (const i of mine) ps.inFlight.delete(i);
    this.telemetry.keysDelivered(ps.keyStreamId, mine.length);
    this.log.debug({ keyStreamId: ps.keyStreamId, count: number, size }, 'etsi014: keys delivered to master SAE');
    return done(issued);
  }

  /**
   * The largest key this pair can serve, as Status advertises it: max_key_size, but never more than
   * max_key_count stream keys (a key is assembled from stream keys held at once).
   */
  private servableMaxKeySize(): number {
    const { keySize, maxKeySize, maxKeyCount } = this.settings;
    return Math.min(maxKeySize, keySize * maxKeyCount);
  }

  /**
   * Get key with key IDs: called by the slave SAE with the master SAE's ID.
   *
   * `answered` (the api layer's) resolves true once the answer was handed to the connection completely
   * and false when the connection closed before: true removes the claimed records (the key is not
   * found again), false leaves them claimed, so the same slave SAE repeating the same request within
   * the re-delivery window gets the same keys. Without it (an internal caller) the claim stands for
   * the window.
   */
  async decKeys(slaveSaeId: string, masterSaeId: string, keyIds: readonly string[], answered?: Promise<boolean>): Promise<Etsi014Result<IssuedKey[]>> {
    // A caller not paired with that master can never be the slave of its keys.
    const ps = this.streamOf(masterSaeId, slaveSaeId, undefined);
    if (!ps || ps.pair.saeId !== slaveSaeId) return unauthorized();
    const ids = keyIds.map((id) => id.toLowerCase());
    if (ids.length === 0) return badRequest('key_IDs: at least one key_ID is required');
    if (ids.length > this.settings.maxKeyPerRequest) return badRequest(`key_IDs: at most ${this.settings.maxKeyPerRequest} per request (max_key_per_request)`);
    // A key_ID listed twice names a key that cannot be delivered twice: the standard's "not found" answer
    // (ETSI GS QKD 014 v1.1.1, Get key with key IDs), whether the key exists or not.
    if (new Set(ids).size !== ids.length) return badRequest(ETSI014_MESSAGES.KEYS_NOT_FOUND);

    let records: IssuedKeyRecord[];
    try {
      records = await this.store.get(ids);
    } catch (err) {
      this.log.error({ err: describe(err) }, 'etsi014: key ID store read failed');
      return unavailable('the key ID store is unavailable');
    }
    // Only the slave SAE named at enc_keys time (with its master) may fetch a key, claimed or not.
    if (records.some((r) => r.slaveSaeId !== slaveSaeId || r.masterSaeId !== masterSaeId)) return unauthorized();
    if (records.length !== ids.length) return badRequest(ETSI014_MESSAGES.KEYS_NOT_FOUND);
    const now = Date.now();
    const windowMs = this.windowMs();
    // Expired or with its re-delivery window closed: gone, whether or not the sweep removed it yet.
    if (records.some((r) => !this.live(r, now, windowMs))) return badRequest(ETSI014_MESSAGES.KEYS_NOT_FOUND);
    // Another dec_keys holds one of them (in progress, or its answer left): at most one at a time.
    if (ids.some((id) => this.busy.has(id))) return badRequest(ETSI014_MESSAGES.KEYS_NOT_FOUND);
    for (const id of ids) this.busy.add(id); // synchronously after the check: no other call passes it now

    let claimed: IssuedKeyRecord[] | undefined;
    try {
      claimed = await this.store.claim(ids, now, windowMs);
    } catch (err) {
      this.release(ids);
      this.log.error({ err: describe(err) }, 'etsi014: key ID store claim failed');
      return unavailable('the key ID store is unavailable');
    }
    if (!claimed) {
      this.release(ids);
      return badRequest(ETSI014_MESSAGES.KEYS_NOT_FOUND); // expired or removed since it was read
    }
    const repeat = claimed.some((r) => r.claimedAt !== now);
    const byId = new Map(claimed.map((r) => [r.keyId, r]));
    // Claimed records are recorded, so never orphans; this also keeps the expiry sweep off them meanwhile.
    const claiming = claimed.flatMap((r) => r.indices);
    for (const i of claiming) ps.claiming.add(i);
    let taken: { result: Etsi014Result<IssuedKey[]>; gone: boolean };
    try {
      taken = await this.takeClaimed(ps, ids, byId, repeat);
    } catch (err) {
      this.release(ids);
      throw err;
    } finally {
      for (const i of claiming) ps.claiming.delete(i);
    }
    if (taken.result.ok) {
      if (repeat) this.log.info({ keyStreamId: ps.keyStreamId, count: ids.length }, 'etsi014: keys re-delivered within the re-delivery window (the first answer was lost)');
      if (windowMs === 0) this.settle(ids); // no window: delivered means gone
      else if (answered) answered.then((sent) => (sent ? this.settle(ids) : this.release(ids)), () => this.release(ids));
      else this.release(ids);
    } else if (taken.gone) {
      this.settle(ids); // their keys are gone: the records can never serve again
    } else {
      this.release(ids); // not committed here in time: a repeat within the window may try again
    }
    return taken.result;
  }

  /**
   * Takes the claimed records' indices from the stream, as ETSI014_OWNER so the manager retains them
   * for the re-delivery window (a repeat reads the same indices again). The manager never ends the
   * window of an ETSI 014 key because a higher index was delivered (the ETSI 004 rule): dec_keys takes
   * indices in key-ID order, and the claimed records' own window governs them.
   */
  private async takeClaimed(
    ps: PairStream,
    ids: readonly string[],
    byId: ReadonlyMap<string, IssuedKeyRecord>,
    repeat: boolean,
  ): Promise<{ result: Etsi014Result<IssuedKey[]>; gone: boolean }> {
    const wanted = [...new Set([...byId.values()].flatMap((r) => r.indices))].sort((a, b) => b - a);
    const got = new Map<number, Uint8Array>();
    const deadline = Date.now() + this.settings.waitMs;
    let gone = false;
    let failed = false;
    for (const idx of wanted) {
      const r = await this.manager.deliverKey(ps.keyStreamId, idx, { timeoutMs: Math.max(0, deadline - Date.now()), caller: ETSI014_OWNER });
      if (r.ok && r.value.kind === 'key') {
        got.set(idx, r.value.delivered.key);
        continue;
      }
      failed = true;
      // Committed here and not deliverable: delivered without retention, or erased. Else it may still come.
      const committed = idx < (this.manager.stream(ps.keyStreamId)?.nextIndex ?? 0);
      if (r.ok && committed) gone = true;
      else if (!r.ok && r.error.code !== 'STORE_UNAVAILABLE' && r.error.code !== 'LIMIT_REACHED') gone = true;
      break;
    }
    if (failed) {
      for (const k of got.values()) k.fill(0);
      if (gone && repeat) {
        this.log.warn({ keyStreamId: ps.keyStreamId, requested: ids.length }, 'etsi014: a repeated dec_keys found its retained keys erased already; not found');
        return { result: badRequest(ETSI014_MESSAGES.KEYS_NOT_FOUND), gone };
      }
      if (gone) {
        this.log.error({ keyStreamId: ps.keyStreamId, requested: ids.length }, 'etsi014: recorded key IDs whose keys are gone from the stream');
        return { result: unavailable('the key material of one or more key IDs is no longer available on this KME'), gone };
      }
      return { result: unavailable('the key material of one or more key IDs is not available on this KME yet; try again later'), gone };
    }
    const out = ids.map((keyId) => {
      const r = byId.get(keyId)!;
      return { keyId, key: assemble(r.indices.map((i) => got.get(i)!), r.sizeBits) }; // zeroes the parts
    });
    return { result: done(out), gone: false };
  }

  /** A record dec_keys may still claim at `now`: waiting and not expired, or claimed within the re-delivery window. */
  private live(r: IssuedKeyRecord, now: number, windowMs: number): boolean {
    if (r.claimedAt !== undefined) return now - r.claimedAt < windowMs;
    const ttlMs = this.ttlMs();
    return ttlMs === 0 || now - r.createdAt < ttlMs;
  }

  private release(ids: readonly string[]): void {
    for (const id of ids) this.busy.delete(id);
  }

  /** The answer left: remove the records (still busy until they are gone, so no repeat gets the keys). */
  private settle(ids: readonly string[]): void {
    this.store.remove(ids).then(
      () => this.release(ids),
      (err: unknown) => {
        for (const id of ids) this.unsettled.add(id);
        this.log.error({ count: ids.length, err: describe(err) }, 'etsi014: removing delivered key IDs failed; retrying');
      },
    );
  }

  private windowMs(): number {
    return this.manager.settings.redeliveryWindowMs ?? DEFAULT_REDELIVERY_WINDOW_MS;
  }

  private ttlMs(): number {
    return this.settings.keyIdTtlMs ?? DEFAULT_KEY_ID_TTL_MS;
  }

  private sweepPeriodMs(): number {
    const windowMs = this.windowMs();
    const ttlMs = this.ttlMs();
    const shortest = Math.min(windowMs > 0 ? windowMs : MAX_SWEEP_MS, ttlMs > 0 ? ttlMs : MAX_SWEEP_MS, MAX_SWEEP_MS);
    return Math.max(20, Math.round(shortest / 4));
  }

  /**
   * Slave side, on a timer and at start-up: removes the records of key IDs nobody claimed within
   * key_id_ttl_s and erases their stream keys (they would otherwise fill the pair's buffer for good),
   * and removes claimed records whose re-delivery window closed, erasing any of their keys not taken
   * (a crash between claim and take; keys taken are erased by the manager when its window closes).
   */
  async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      if (this.unsettled.size > 0) {
        const ids = [...this.unsettled];
        await this.store.remove(ids);
        for (const id of ids) this.unsettled.delete(id);
        this.release(ids);
      }
      const now = Date.now();
      const ttlMs = this.ttlMs();
      const expired = await this.store.expire(ttlMs > 0 ? now - ttlMs : undefined, now - this.windowMs());
      const waiting = expired.filter((r) => r.claimedAt === undefined).length;
      if (waiting > 0) this.log.warn({ count: waiting, ttlSeconds: ttlMs / 1000 }, 'etsi014: issued key IDs expired unfetched (etsi014.key_id_ttl_s); their keys are erased');
      for (const r of expired) {
        let set = this.unerased.get(r.keyStreamId);
        if (!set) this.unerased.set(r.keyStreamId, (set = new Set()));
        for (const i of r.indices) if (set.size < MAX_UNERASED) set.add(i);
      }
    } catch (err) {
      this.log.warn({ err: describe(err) }, 'etsi014: key ID expiry sweep failed (key ID store); retrying');
    } finally {
      this.sweeping = false;
    }
    await this.eraseUnerased();
  }

  /** Erases the keys of expired records at this module; keeps what cannot be erased yet for the next sweep. */
  private async eraseUnerased(): Promise<void> {
    for (const [keyStreamId, set] of this.unerased) {
      const ps = this.streams.get(keyStreamId);
      const nextIndex = this.manager.stream(keyStreamId)?.nextIndex;
      if (nextIndex === undefined) {
        this.unerased.delete(keyStreamId); // no such stream here: it holds no key
        continue;
      }
      const indices = [...set].filter((i) => !ps?.claiming.has(i));
      const results = await Promise.all(indices.map((i) => this.manager.deliverKey(keyStreamId, i, { timeoutMs: 0, countAs: 'etsi014-expired' })));
      indices.forEach((idx, n) => {
        const r = results[n]!;
        if (r.ok && r.value.kind === 'key') r.value.delivered.key.fill(0);
        // Not committed here yet (the sender's commit lags), or the stream or store is not ready: next sweep.
        const again = r.ok ? r.value.kind === 'none' && idx >= (this.manager.stream(keyStreamId)?.nextIndex ?? 0) : r.error.code === 'STREAM_NOT_OPEN' || r.error.code === 'STORE_UNAVAILABLE';
        if (!again) set.delete(idx);
      });
      if (set.size === 0) this.unerased.delete(keyStreamId);
    }
  }

  // ---------------------------------------------------------------- peer calls

  /** POST /peer/etsi014/keys at the slave's module: record the issued key IDs durably. */
  async onPeerKeys(notice: Etsi014KeysNoticeParsed): Promise<Result<Etsi014KeysReply>> {
    const ps = this.streams.get(notice.keyStreamId);
    if (!ps || ps.masterSaeId !== notice.master_SAE_ID || ps.slaveSaeId !== notice.slave_SAE_ID || ps.pair.peerKmeId !== notice.master_KME_ID || ps.pair.saeId !== notice.slave_SAE_ID) {
      return fail('BAD_REQUEST', `no ETSI 014 stream ${notice.master_KME_ID}/${notice.master_SAE_ID} -> ${this.settings.kmeId}/${notice.slave_SAE_ID} is configured here`);
    }
    if (!this.manager.summary(ps.keyStreamId)) return fail('UNKNOWN_STREAM', `unknown Key_stream_ID ${ps.keyStreamId}`);
    const parts = Math.ceil(notice.size / this.settings.keySize);
    if (notice.size > this.settings.maxKeySize || notice.keys.some((k) => k.indices.length !== parts)) {
      return fail('BAD_REQUEST', `every key of ${notice.size} bits must name ${parts} stream indices`);
    }
    if (notice.discard.length > 0) this.dropIndices(ps.keyStreamId, notice.discard);
    const now = Date.now();
    const records: IssuedKeyRecord[] = notice.keys.map((k) => ({
      keyId: k.key_ID,
      keyStreamId: ps.keyStreamId,
      indices: k.indices,
      sizeBits: notice.size,
      masterSaeId: notice.master_SAE_ID,
      slaveSaeId: notice.slave_SAE_ID,
      createdAt: now,
    }));
    let stored: boolean;
    try {
      stored = await this.store.putMany(records);
    } catch (err) {
      this.log.error({ err: describe(err) }, 'etsi014: key ID store write failed');
      return fail('STORE_UNAVAILABLE', 'key ID store unavailable');
    }
    if (!stored) return fail('BAD_REQUEST', 'a key_ID or a stream index in this notice is recorded already');
    if (notice.orphans_below !== undefined) {
      try {
        await this.dropOrphans(ps, notice.orphans_below);
      } catch (err) {
        this.log.error({ err: describe(err) }, 'etsi014: key ID store read failed');
        return fail('STORE_UNAVAILABLE', 'key ID store unavailable');
      }
    }
    return ok({ stored: records.length });
  }

  /** POST /peer/etsi014/ready at the detector: the sender registered a pair stream; join it now. */
  onPeerReady(keyStreamId: string): Result<void> {
    const ps = this.streams.get(keyStreamId);
    if (!ps) return fail('UNKNOWN_STREAM', `no ETSI 014 stream ${keyStreamId} is configured here`);
    ps.attempt = 0;
    void this.ensure(ps);
    return ok(undefined);
  }

  // ---------------------------------------------------------------- internals

  /** The stream for master -> slave where this module is on the side given by `masterKme` (undefined: either side). */
  private streamOf(masterSaeId: string, slaveSaeId: string, masterKme: string | undefined): PairStream | undefined {
    for (const ps of this.streams.values()) {
      if (ps.masterSaeId !== masterSaeId || ps.slaveSaeId !== slaveSaeId) continue;
      const localIsMaster = ps.pair.saeId === masterSaeId;
      if (masterKme === undefined || localIsMaster === (masterKme === this.settings.kmeId)) return ps;
    }
    return undefined;
  }

  private isOpen(ps: PairStream): boolean {
    const s = this.manager.summary(ps.keyStreamId);
    return s !== undefined && s.localOpen && s.peerOpen && !s.closed;
  }

  /** Takes `needed` keys (lowest indices first), waiting up to waitMs for missing ones; all or none. */
  private async takeKeys(ps: PairStream, needed: number): Promise<DeliveredKey[] | undefined> {
    const { keyStreamId } = ps;
    const taken: DeliveredKey[] = [];
    const took = (k: DeliveredKey): void => {
      ps.inFlight.add(k.index); // from the moment it left the pool until the notice is answered
      taken.push(k);
    };
    const available = this.manager.availableKeys(keyStreamId);
    const now = available.ok ? Math.min(available.value, needed) : 0;
    // Counted by enc_keys: delivered once the slave's KME recorded the key IDs, else orphans.
    const take = async (timeoutMs: number): Promise<DeliveredKey | undefined> => {
      const r = await this.manager.deliverKey(keyStreamId, -1, { timeoutMs, countAs: 'caller' });
      return r.ok && r.value.kind === 'key' ? r.value.delivered : undefined;
    };
    // Started in one turn: each call claims its index synchronously, and the store commits them together.
    const first = await Promise.all(Array.from({ length: now }, () => take(0)));
    for (const k of first) if (k) took(k);
    const deadline = Date.now() + this.settings.waitMs;
    while (taken.length < needed) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      const k = await take(left);
      if (!k) break;
      took(k);
    }
    if (taken.length < needed) {
      this.telemetry.keysDiscarded(keyStreamId, 'etsi014-orphan', taken.length);
      this.addDiscards(keyStreamId, taken.map((k) => k.index));
      for (const k of taken) {
        ps.inFlight.delete(k.index);
        k.key.fill(0);
      }
      if (taken.length > 0) this.scheduleReconcile(ps, true);
      return undefined;
    }
    return taken;
  }

  private addDiscards(keyStreamId: string, indices: readonly number[]): void {
    if (indices.length === 0) return;
    const list = this.pendingDiscards.get(keyStreamId) ?? [];
    list.push(...indices);
    // Bounded: beyond this the slave's module keeps a few orphan keys (they only count toward max_key_count).
    this.pendingDiscards.set(keyStreamId, list.slice(-100_000));
  }

  /**
   * Master side: every index below the returned one that the slave's module holds unrecorded is an
   * orphan. Below the lowest key this end still holds (or its commit counter), every index was
   * delivered, erased or taken; the indices of enc_keys calls still in flight (other than `own`,
   * recorded by the same notice) bound it further, since their notices may still arrive.
   */
  private orphanWatermark(ps: PairStream, own: readonly number[] = []): number {
    let below = this.manager.lowestHeldIndex(ps.keyStreamId) ?? 0;
    const mine = new Set(own);
    for (const i of ps.inFlight) if (i < below && !mine.has(i)) below = i;
    return below;
  }

  /** Slave side: erases the keys held below `below` that no key ID records and no dec_keys is taking. */
  private async dropOrphans(ps: PairStream, below: number): Promise<void> {
    const candidates = this.manager.heldIndicesBelow(ps.keyStreamId, below).filter((i) => !ps.claiming.has(i));
    if (candidates.length === 0) return;
    const recorded = await this.store.recorded(ps.keyStreamId, candidates);
    const orphans = candidates.filter((i) => !recorded.has(i) && !ps.claiming.has(i));
    if (orphans.length === 0) return;
    this.log.info({ keyStreamId: ps.keyStreamId, count: orphans.length }, 'etsi014: erasing keys the master KME took but never delivered');
    this.dropIndices(ps.keyStreamId, orphans);
  }

  /**
   * Master side: tells the slave's module, in a notice without keys, what to drop (the pending
   * discards and the orphan watermark), retrying with back-off until it answers. Runs after a failed
   * enc_keys and whenever the pair stream opens (so a restart of either end cleans up too).
   */
  private scheduleReconcile(ps: PairStream, soon: boolean): void {
    const r = ps.reconcile;
    if (ps.pair.saeId !== ps.masterSaeId || this.stopped) return; // only the master's module knows what it took
    if (r.running) {
      r.again = true;
      return;
    }
    if (r.timer) {
      if (!soon) return;
      clearTimeout(r.timer);
    }
    const delay = soon && r.attempt === 0 ? 0 : Math.min(this.settings.retryMaxMs, this.settings.retryInitialMs * 2 ** Math.min(r.attempt, 20));
    r.timer = setTimeout(() => {
      r.timer = undefined;
      void this.reconcile(ps);
    }, Math.round(delay * (0.5 + Math.random() / 2)));
    r.timer.unref();
  }

  private async reconcile(ps: PairStream): Promise<void> {
    const r = ps.reconcile;
    if (this.stopped || this.manager.summary(ps.keyStreamId)?.closed) return;
    if (!this.isOpen(ps)) {
      r.attempt++; // not open at both ends yet (a restart): try again later
      this.scheduleReconcile(ps, false);
      return;
    }
    r.running = true;
    r.again = false;
    const discard = this.pendingDiscards.get(ps.keyStreamId) ?? [];
    this.pendingDiscards.delete(ps.keyStreamId);
    const notice: Etsi014KeysNotice = {
      keyStreamId: ps.keyStreamId,
      master_SAE_ID: ps.masterSaeId,
      slave_SAE_ID: ps.slaveSaeId,
      master_KME_ID: this.settings.kmeId,
      size: this.settings.keySize,
      keys: [],
      discard,
      orphans_below: this.orphanWatermark(ps),
    };
    let sent = false;
    try {
      await this.peer.post(ps.pair.peerUrl, ETSI014_PEER_KEYS_PATH, notice, this.settings.peerTimeoutMs);
      sent = true;
      r.attempt = 0;
    } catch (err) {
      this.addDiscards(ps.keyStreamId, discard);
      r.attempt++;
      this.log.debug({ keyStreamId: ps.keyStreamId, err: describe(err) }, 'etsi014: reconcile notice not answered; retrying');
    } finally {
      r.running = false;
    }
    if (!sent || r.again) this.scheduleReconcile(ps, sent);
  }

  /** At the slave's module: forget records using these indices and take (erase) their keys. */
  private dropIndices(keyStreamId: string, indices: readonly number[]): void {
    this.store.discard(keyStreamId, indices).then(
      () => {
        for (const idx of indices) {
          void this.manager.deliverKey(keyStreamId, idx, { timeoutMs: this.settings.waitMs, countAs: 'etsi014-orphan' }).then((r) => {
            if (r.ok && r.value.kind === 'key') r.value.delivered.key.fill(0);
          });
        }
      },
      (err: unknown) => this.log.warn({ keyStreamId, err: describe(err) }, 'etsi014: discarding undelivered indices failed'),
    );
  }

  /** Opens the stream (coalescing concurrent calls); on failure retries with back-off. Resolves true when open. */
  private ensure(ps: PairStream): Promise<boolean> {
    if (this.stopped) return Promise.resolve(this.isOpen(ps));
    ps.opening ??= this.tryOpen(ps)
      .catch((err: unknown) => {
        this.log.warn({ keyStreamId: ps.keyStreamId, err: describe(err) }, 'etsi014: opening the pair stream failed');
        return false;
      })
      .then((opened) => {
        ps.opening = undefined;
        if (opened) {
          ps.attempt = 0;
          if (ps.timer) clearTimeout(ps.timer);
          ps.timer = undefined;
          this.scheduleReconcile(ps, true);
        } else {
          this.retryLater(ps);
        }
        return opened;
      });
    return ps.opening;
  }

  private retryLater(ps: PairStream): void {
    if (this.stopped || ps.timer || this.manager.summary(ps.keyStreamId)?.closed) return;
    const base = Math.min(this.settings.retryMaxMs, this.settings.retryInitialMs * 2 ** Math.min(ps.attempt, 20));
    ps.attempt++;
    const delay = Math.max(1, Math.round(base * (0.5 + Math.random() / 2))); // jitter: two modules never retry in lock-step
    ps.timer = setTimeout(() => {
      ps.timer = undefined;
      void this.ensure(ps);
    }, delay);
    ps.timer.unref();
  }

  private async tryOpen(ps: PairStream): Promise<boolean> {
    const s = this.manager.summary(ps.keyStreamId);
    if (s?.closed) {
      if (!ps.closedLogged) this.log.error({ keyStreamId: ps.keyStreamId }, 'etsi014: the pair stream was closed; ETSI 014 keys for this pair are unavailable');
      ps.closedLogged = true;
      return false;
    }
    if (s?.localOpen) return true;
    // The detector only joins a stream the sender registered: two registrations at once would wait on each other.
    if (!s && this.settings.sender === 0) return false;
    const result = await this.manager.openConnect({
      source: `etsi014:${ps.masterSaeId}`,
      destination: ps.pair.peerUrl,
      keyLengthBits: this.settings.keySize,
      timeoutMs: this.settings.peerTimeoutMs,
      keyStreamId: ps.keyStreamId,
      // Owned by the ETSI 014 binding: no seed or ETSI 004 caller can reach a pair's stream.
      owner: ETSI014_OWNER,
    });
    if (!result.ok) {
      if (this.manager.summary(ps.keyStreamId)?.localOpen) return true;
      this.log.warn({ keyStreamId: ps.keyStreamId, code: result.error.code, reason: result.error.message }, 'etsi014: pair stream not open yet');
      return false;
    }
    this.log.info({ keyStreamId: ps.keyStreamId, master: ps.masterSaeId, slave: ps.slaveSaeId }, 'etsi014: pair stream open');
    if (!s) {
      // Registered at the detector: tell it to join now rather than at its next retry.
      this.peer.post(ps.pair.peerUrl, ETSI014_PEER_READY_PATH, { keyStreamId: ps.keyStreamId }, this.settings.peerTimeoutMs).catch((err: unknown) => {
        this.log.debug({ keyStreamId: ps.keyStreamId, err: describe(err) }, 'etsi014: ready notice not delivered (the peer retries by itself)');
      });
    }
    return true;
  }
}

/** Concatenates stream keys and cuts the result to sizeBits / 8 bytes; the parts are zeroed. */
function assemble(parts: readonly Uint8Array[], sizeBits: number): Uint8Array {
  const out = new Uint8Array(sizeBits / 8);
  let at = 0;
  for (const p of parts) {
    if (at < out.length) out.set(p.subarray(0, Math.min(p.length, out.length - at)), at);
    at += p.length;
    p.fill(0);
  }
  return out;
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
