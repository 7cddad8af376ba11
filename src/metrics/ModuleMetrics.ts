/**
 * The module's Prometheus metrics (GET /metrics): one prom-client Registry per module instance (tests
 * run several modules in one process), with prom-client's process and Node metrics and the qkdm_*
 * metrics below. Their names and labels are a contract (docs/metrics.md; dashboards and alert rules use
 * them as they are).
 *
 * Off the hot path: what the core reports (ModuleTelemetry) adds to plain numbers per stream here, and
 * the counters and gauges are filled from them, and from the manager's streams, only when scraped. The
 * two histograms that see every request and every store call are LiteHistograms, outside the registry:
 * they render their own lines, appended to its exposition.
 *
 * Labels are never key material or free text from a caller: `stream` is the ID of a stream that exists
 * here (series of a purged stream disappear with it), `role` is alice (module.sender 1) or bob, and every
 * `reason`, `kind`, `route`, `store` and `operation` comes from a fixed list.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { DISCARD_REASONS, ROUND_FAILURES, type BlockFigures, type BlockReport, type DiscardReason, type ModuleTelemetry } from '../core/telemetry.js';
import { PEER_ERROR_KINDS, type PeerErrorKind } from '../exchange/peerWatch.js';
import { DROP_REASONS } from '../sim/bb84/protocol/messages.js';
import type { Stores } from '../store/index.js';
import { httpMetrics, type HttpLabel } from './httpMetrics.js';
import { LiteHistogram } from './LiteHistogram.js';
import { timeHandleStore, timeKeyStore, type StoreLabel } from './timedStores.js';
import type { RequestHandler } from 'express';

export type Role = 'alice' | 'bob';

/** QBER buckets: fine below the usual 11 % abort threshold, up to 15 %. */
export const QBER_BUCKETS = [0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.11, 0.12, 0.15];
/** Round durations: a fake round takes milliseconds, a BB84 block (realtime pace) seconds. */
export const ROUND_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** HTTP answers: from a fraction of a millisecond up to a GET_KEY that waited for keys. */
export const HTTP_DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Store calls: embedded SQLite in microseconds, MySQL and Vault over the network in milliseconds. */
export const STORE_DURATION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/**
 * The event-loop lag metrics (nodejs_eventloop_lag_*) sample the loop this often (ms). prom-client's
 * default, 10 ms, wakes the process 100 times a second even when idle (about 1 % of a core on the
 * development VM); 100 ms still catches every stall that matters to an operator.
 */
export const EVENT_LOOP_SAMPLE_MS = 100;

/** Block abort reasons kept as labels: the simulators' drop reasons and the exchange's failures; others are `other`. */
const ABORT_REASONS: ReadonlySet<string> = new Set<string>([...DROP_REASONS, ...ROUND_FAILURES]);

/** What this module counted for one stream since it started. */
interface StreamFigures {
  produced: number;
  delivered: number;
  discarded: Map<DiscardReason, number>;
  secretBits: number;
  blocks: number;
  aborted: Map<string, number>;
  /** Of the last block that estimated them (BB84). */
  qber: number | undefined;
  secretBitsPerPulse: number | undefined;
}

/** The streams as the scrape reads them (KeyStreamManager.summaries()). */
export interface StreamSource {
  summaries(): ReadonlyArray<{ keyStreamId: string; available: number; halted: unknown }>;
}

export interface MetricsSources {
  streams: StreamSource;
  /** 1 when the peer module answered recently (PeerReachability; probes when nothing is recent). */
  peerUp: () => Promise<boolean>;
}

export class ModuleMetrics implements ModuleTelemetry {
  readonly registry = new Registry();
  private readonly streams = new Map<string, StreamFigures>();
  private readonly peerErrors: Counter<'kind'>;
  private readonly blockQber: Histogram<'role'>;
  private readonly roundDuration: Histogram<'role'>;
  private readonly http: LiteHistogram<HttpLabel>;
  private readonly storeOps: LiteHistogram<StoreLabel>;
  private sources: MetricsSources | undefined;

  constructor(private readonly role: Role) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });

    const perStream = (name: string, help: string, value: (f: StreamFigures) => number): void => {
      const counter: Counter<'stream' | 'role'> = new Counter({
        name,
        help,
        labelNames: ['stream', 'role'],
        registers,
        collect: () => {
          counter.reset();
          for (const [stream, f] of this.live()) counter.inc({ stream, role }, value(f));
        },
      });
    };
    perStream('qkdm_keys_produced_total', 'Keys committed at this end after key confirmation (deliverable from then on)', (f) => f.produced);
    perStream('qkdm_keys_delivered_total', 'Keys handed to applications (seed API, ETSI 004, ETSI 014, key server)', (f) => f.delivered);
    perStream('qkdm_secret_bits_total', 'Secret bits of committed blocks (BB84: the finite-key length; fake: the key bits)', (f) => f.secretBits);
    perStream('qkdm_blocks_total', 'Key-exchange rounds (blocks) that committed keys', (f) => f.blocks);

    const byReason = (name: string, help: string, value: (f: StreamFigures) => Map<string, number>): void => {
      const counter: Counter<'stream' | 'role' | 'reason'> = new Counter({
        name,
        help,
        labelNames: ['stream', 'role', 'reason'],
        registers,
        collect: () => {
          counter.reset();
          for (const [stream, f] of this.live()) for (const [reason, n] of value(f)) counter.inc({ stream, role, reason }, n);
        },
      });
    };
    byReason('qkdm_keys_discarded_total', `Keys erased without delivery, by reason (${DISCARD_REASONS.join(', ')})`, (f) => f.discarded);
    byReason('qkdm_blocks_aborted_total', 'Key-exchange rounds (blocks) that ended without committing keys, by reason', (f) => f.aborted);

    const buffered: Gauge<'stream' | 'role'> = new Gauge({
      name: 'qkdm_keys_buffered',
      help: 'Keys stored and deliverable now (committed, not delivered)',
      labelNames: ['stream', 'role'],
      registers,
      collect: () => {
        buffered.reset();
        for (const s of this.sources?.streams.summaries() ?? []) buffered.set({ stream: s.keyStreamId, role }, s.available);
      },
    });
    const halted: Gauge<'stream'> = new Gauge({
      name: 'qkdm_stream_halted',
      help: '1 while the exchange of the stream is halted (key confirmation failed, counters out of step), else 0',
      labelNames: ['stream'],
      registers,
      collect: () => {
        halted.reset();
        for (const s of this.sources?.streams.summaries() ?? []) halted.set({ stream: s.keyStreamId }, s.halted ? 1 : 0);
      },
    });
    const lastBlock = (name: string, help: string, value: (f: StreamFigures) => number | undefined): void => {
      const gauge: Gauge<'stream' | 'role'> = new Gauge({
        name,
        help,
        labelNames: ['stream', 'role'],
        registers,
        collect: () => {
          gauge.reset();
          for (const [stream, f] of this.live()) {
            const v = value(f);
            if (v !== undefined) gauge.set({ stream, role }, v);
          }
        },
      });
    };
    lastBlock('qkdm_qber', 'QBER estimated in the last block (BB84; absent for the fake device)', (f) => f.qber);
    lastBlock('qkdm_secret_bits_per_pulse', 'Secret bits per pulse sent in the last block (BB84)', (f) => f.secretBitsPerPulse);

    this.blockQber = new Histogram({ name: 'qkdm_block_qber', help: 'QBER estimated per block (BB84)', labelNames: ['role'], buckets: QBER_BUCKETS, registers });
    this.roundDuration = new Histogram({
      name: 'qkdm_round_duration_seconds',
      help: 'Duration of a key-exchange round, from its first message to its commit or its end',
      labelNames: ['role'],
      buckets: ROUND_DURATION_BUCKETS,
      registers,
    });
    this.peerErrors = new Counter({ name: 'qkdm_peer_request_errors_total', help: `Failed calls to the peer module, by kind (${PEER_ERROR_KINDS.join(', ')})`, labelNames: ['kind'], registers });
    for (const kind of PEER_ERROR_KINDS) this.peerErrors.inc({ kind }, 0); // every kind is a series from the start (rate() needs one)
    const peerUp: Gauge = new Gauge({
      name: 'qkdm_peer_up',
      help: '1 when the peer module answered a call recently (the exchange\'s traffic, else a probe), else 0 (also while no peer is known)',
      registers,
      collect: async () => {
        peerUp.set((await this.sources?.peerUp()) ? 1 : 0);
      },
    });
    this.http = new LiteHistogram('qkdm_http_request_duration_seconds', 'HTTP requests by route pattern (unmatched: no route), method and status', ['route', 'method', 'status'], HTTP_DURATION_BUCKETS);
    this.storeOps = new LiteHistogram('qkdm_store_operation_duration_seconds', 'Store calls by store (sqlite, mysql, vault, memory) and operation', ['store', 'operation'], STORE_DURATION_BUCKETS);
  }

  /** Where the scrape reads the streams and the peer (set once the manager exists). */
  watch(sources: MetricsSources): void {
    this.sources = sources;
  }

  /** The stores, timed (the composition root passes these to the core). */
  timeStores(stores: Stores): Pick<Stores, 'handles' | 'keys'> {
    return {
      handles: timeHandleStore(stores.handles, stores.kinds?.handles ?? 'memory', this.storeOps),
      keys: timeKeyStore(stores.keys, stores.kinds?.keys ?? 'memory', this.storeOps),
    };
  }

  /** The HTTP timing middleware (first in the app, so it sees every request). */
  httpMiddleware(mountPaths: readonly string[]): RequestHandler {
    return httpMetrics(this.http, mountPaths);
  }

  /** The exposition text (the registry's metrics, then the hot-path histograms) and its Content-Type. */
  async exposition(): Promise<{ contentType: string; text: string }> {
    const text = `${await this.registry.metrics()}\n${this.http.render()}\n\n${this.storeOps.render()}\n`;
    return { contentType: this.registry.contentType, text };
  }

  /** A peer call failed (PeerWatch). */
  peerCallFailed(kind: PeerErrorKind): void {
    this.peerErrors.inc({ kind });
  }

  // ------------------------------------------------------------------ ModuleTelemetry

  keysCommitted(keyStreamId: string, count: number): void {
    this.figures(keyStreamId).produced += count;
  }

  keysDelivered(keyStreamId: string, count: number): void {
    this.figures(keyStreamId).delivered += count;
  }

  keysDiscarded(keyStreamId: string, reason: DiscardReason, count: number): void {
    if (count <= 0) return;
    const f = this.figures(keyStreamId);
    f.discarded.set(reason, (f.discarded.get(reason) ?? 0) + count);
  }

  blockCommitted(report: BlockReport): void {
    const f = this.figures(report.keyStreamId);
    f.blocks++;
    f.secretBits += report.secretBits ?? report.keys * report.keyLengthBits;
    this.lastBlock(f, report);
    this.roundDuration.observe({ role: this.role }, report.durationMs / 1000);
  }

  blockAborted(keyStreamId: string, reason: string, figures: BlockFigures, durationMs: number | undefined): void {
    const f = this.figures(keyStreamId);
    const label = ABORT_REASONS.has(reason) ? reason : 'other';
    f.aborted.set(label, (f.aborted.get(label) ?? 0) + 1);
    this.lastBlock(f, figures);
    if (durationMs !== undefined) this.roundDuration.observe({ role: this.role }, durationMs / 1000);
  }

  blockAccumulated(keyStreamId: string, figures: BlockFigures, durationMs: number | undefined): void {
    // Only the QBER: the secret bits of the PA block are reported when it is amplified (blockCommitted).
    this.lastBlock(this.figures(keyStreamId), { qber: figures.qber });
    if (durationMs !== undefined) this.roundDuration.observe({ role: this.role }, durationMs / 1000);
  }

  streamPurged(keyStreamId: string): void {
    this.streams.delete(keyStreamId);
  }

  // ------------------------------------------------------------------ internals

  private lastBlock(f: StreamFigures, figures: BlockFigures): void {
    if (figures.qber !== undefined) {
      f.qber = figures.qber;
      this.blockQber.observe({ role: this.role }, figures.qber);
    }
    if (figures.secretBits !== undefined && figures.pulses !== undefined && figures.pulses > 0) f.secretBitsPerPulse = figures.secretBits / figures.pulses;
  }

  private figures(keyStreamId: string): StreamFigures {
    let f = this.streams.get(keyStreamId);
    if (!f) {
      f = { produced: 0, delivered: 0, discarded: new Map(), secretBits: 0, blocks: 0, aborted: new Map(), qber: undefined, secretBitsPerPulse: undefined };
      this.streams.set(keyStreamId, f);
    }
    return f;
  }

  /**
   * The streams that exist here now, with their figures (zeros for a stream nothing happened on yet).
   * Figures of a stream that no longer exists are dropped: its series end with it.
   */
  private live(): Array<[string, StreamFigures]> {
    const summaries = this.sources?.streams.summaries() ?? [];
    const exists = new Set(summaries.map((s) => s.keyStreamId));
    for (const id of this.streams.keys()) if (!exists.has(id)) this.streams.delete(id);
    return summaries.map((s) => [s.keyStreamId, this.figures(s.keyStreamId)]);
  }
}
