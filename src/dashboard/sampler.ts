/**
 * The dashboard's memory: per open stream, a bounded time series of what the read APIs say (deliverable keys,
 * commit counter) sampled on a timer, and the rounds the exchange recorded (BB84: one per block, with QBER and
 * secret bits). Nothing here is called by the core: the sampler reads `DashboardSource` (GET /streams and GET
 * /streams/:id/stats in function form), and its timer runs only while the feed is being asked for.
 *
 * Bounds: MAX_SAMPLED_STREAMS streams, each with at most MAX_SAMPLES_PER_STREAM samples, MAX_ROUNDS_PER_STREAM
 * rounds and MAX_HALTS_PER_STREAM halts, none older than WINDOW_MS; a closed or purged stream's history is dropped.
 */
import type { StreamSummary } from '../core/KeyStreamManager.js';
import type { RoundRecord } from '../exchange/ExchangeService.js';
import type { Block, DashboardFeed, StreamEvent, StreamFeed } from './feedSchema.js';
import type { DashboardLink } from './link.js';
import { RingBuffer } from './ringBuffer.js';

/** One sample per stream this often while the feed is watched. */
export const SAMPLE_INTERVAL_MS = 2_000;
/** How far back the charts reach. */
export const WINDOW_MS = 10 * 60_000;
export const MAX_SAMPLES_PER_STREAM = WINDOW_MS / SAMPLE_INTERVAL_MS;
/** Rounds kept per stream: with MAX_SAMPLED_STREAMS, a feed stays near 1 MB at most (a round is about 250 bytes of JSON). */
export const MAX_ROUNDS_PER_STREAM = 300;
export const MAX_HALTS_PER_STREAM = 50;
/** Open streams sampled at most (the feed counts the others in streamsNotShown). */
export const MAX_SAMPLED_STREAMS = 16;
/** The timer stops when nobody asked for the feed for this long (the history is kept, with a gap). */
export const IDLE_STOP_MS = 5 * 60_000;
/** The summary's key rates are means over this much of the series. */
export const RATE_AVERAGE_MS = 60_000;
/** Two samples further apart than this many intervals have a gap between them (the timer was stopped): no rate. */
const GAP_INTERVALS = 2.5;
/** Longest reason text passed on (reasons are short codes or one sentence). */
const MAX_REASON_CHARS = 300;

export type StreamReading = StreamSummary & { exchangeRunning: boolean };

/** What the sampler reads: the operator routes' data, as functions. */
export interface DashboardSource {
  readonly role: 'sender' | 'receiver';
  readonly simulator: string;
  /** module.max_key_count. */
  readonly capacity: number;
  streams(): StreamReading[];
  rounds(keyStreamId: string): readonly RoundRecord[];
}

interface Sample {
  t: number;
  available: number;
  produced: number;
  taken: number;
}

class StreamHistory {
  readonly samples = new RingBuffer<Sample>(MAX_SAMPLES_PER_STREAM);
  readonly rounds = new RingBuffer<Block>(MAX_ROUNDS_PER_STREAM);
  readonly halts = new RingBuffer<StreamEvent>(MAX_HALTS_PER_STREAM);
  /** The newest round taken from the source: (at, firstIndex, keys), and its time. */
  lastRoundKey: string | undefined;
  lastRoundAt = Number.NEGATIVE_INFINITY;
  lastHaltSince: string | undefined;
}

const roundKey = (r: RoundRecord): string => `${r.at}/${r.firstIndex}/${r.keys}`;

export class DashboardSampler {
  private readonly histories = new Map<string, StreamHistory>();
  private timer: NodeJS.Timeout | undefined;
  private lastRequestAt = 0;
  private lastSampleAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly source: DashboardSource,
    private readonly link: DashboardLink,
    private readonly clock: () => number = Date.now,
  ) {}

  /** The feed as of now. Starts the sampling timer if it is not running. */
  feed(): DashboardFeed {
    const now = this.clock();
    this.lastRequestAt = now;
    if (!this.timer) {
      // Sampling resumes now, unless a sample was taken a moment ago (two samples at one instant make no rate).
      if (now - this.lastSampleAt >= SAMPLE_INTERVAL_MS / 2) this.sample();
      this.timer = setInterval(() => this.tick(), SAMPLE_INTERVAL_MS);
      this.timer.unref(); // never keeps the process alive
    }
    const { shown, notShown, closed } = this.select(this.source.streams());
    const streams = shown.map((reading) => {
      const history = this.history(reading.keyStreamId);
      this.ingest(history, reading, now);
      return this.streamFeed(reading, history);
    });
    return {
      generatedAt: now,
      role: this.source.role,
      simulator: this.source.simulator,
      sampleIntervalMs: SAMPLE_INTERVAL_MS,
      windowMs: WINDOW_MS,
      capacity: this.source.capacity,
      link: this.link.parameters,
      plannedCurve: this.link.plannedCurve,
      streams,
      streamsNotShown: notShown,
      closedStreams: closed,
    };
  }

  /** Takes one sample of every shown stream and forgets streams that closed or went away. */
  sample(): void {
    const now = this.clock();
    this.lastSampleAt = now;
    const { shown } = this.select(this.source.streams());
    const live = new Set<string>();
    for (const reading of shown) {
      live.add(reading.keyStreamId);
      const history = this.history(reading.keyStreamId);
      history.samples.push({ t: now, available: reading.available, produced: reading.nextIndex, taken: Math.max(0, reading.nextIndex - reading.available) });
      this.ingest(history, reading, now);
    }
    for (const id of this.histories.keys()) if (!live.has(id)) this.histories.delete(id);
  }

  /** Stops the timer (the next feed request starts it again). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Whether the sampling timer runs. */
  get sampling(): boolean {
    return this.timer !== undefined;
  }

  /** Streams whose history is kept (for tests and the memory bound). */
  sampledStreams(): string[] {
    return [...this.histories.keys()];
  }

  private tick(): void {
    if (this.clock() - this.lastRequestAt > IDLE_STOP_MS) {
      this.stop();
      return;
    }
    this.sample();
  }

  private history(keyStreamId: string): StreamHistory {
    let h = this.histories.get(keyStreamId);
    if (!h) this.histories.set(keyStreamId, (h = new StreamHistory()));
    return h;
  }

  /** Open streams to show: those already sampled first (a chart does not vanish when another opens), then by ID. */
  private select(readings: StreamReading[]): { shown: StreamReading[]; notShown: number; closed: number } {
    const open = readings.filter((r) => !r.closed);
    open.sort((a, b) => Number(this.histories.has(b.keyStreamId)) - Number(this.histories.has(a.keyStreamId)) || a.keyStreamId.localeCompare(b.keyStreamId));
    const shown = open.slice(0, MAX_SAMPLED_STREAMS);
    return { shown, notShown: open.length - shown.length, closed: readings.length - open.length };
  }

  /** Takes the rounds recorded since the last look, and a new halt; drops what left the window. */
  private ingest(history: StreamHistory, reading: StreamReading, now: number): void {
    const rounds = this.source.rounds(reading.keyStreamId);
    const seen = history.lastRoundKey === undefined ? -1 : findLastIndex(rounds, (r) => roundKey(r) === history.lastRoundKey);
    // Rounds are recorded in time order; when the last one seen has left the source's window, take the newer ones.
    const fresh = seen >= 0 ? rounds.slice(seen + 1) : rounds.filter((r) => Date.parse(r.at) > history.lastRoundAt);
    for (const r of fresh) history.rounds.push(blockOf(r));
    const newest = rounds[rounds.length - 1];
    if (newest) {
      history.lastRoundKey = roundKey(newest);
      history.lastRoundAt = Math.max(history.lastRoundAt, Date.parse(newest.at));
    }
    if (reading.halted && reading.halted.since !== history.lastHaltSince) {
      history.lastHaltSince = reading.halted.since;
      history.halts.push({ at: Date.parse(reading.halted.since) || now, kind: 'halt', reason: reading.halted.reason.slice(0, MAX_REASON_CHARS) });
    }
    const cutoff = now - WINDOW_MS;
    history.samples.dropWhile((s) => s.t < cutoff);
    history.rounds.dropWhile((b) => b.at < cutoff);
    history.halts.dropWhile((e) => e.at < cutoff);
  }

  private streamFeed(reading: StreamReading, history: StreamHistory): StreamFeed {
    const samples = history.samples.toArray();
    const rounds = history.rounds.toArray();
    const events: StreamEvent[] = [
      ...rounds.filter((b) => b.aborted).map((b): StreamEvent => ({ at: b.at, kind: 'abort', reason: b.reason ?? 'unknown' })),
      ...history.halts.toArray(),
    ].sort((a, b) => a.at - b.at);
    const withPulses = rounds.filter((b) => b.pulses !== null && b.pulses > 0 && b.secretBits !== null);
    const pulses = withPulses.reduce((sum, b) => sum + b.pulses!, 0);
    const secret = withPulses.reduce((sum, b) => sum + (b.secretBits ?? 0), 0);
    return {
      keyStreamId: reading.keyStreamId,
      source: reading.source,
      destination: reading.destination,
      keyLengthBits: reading.length,
      localOpen: reading.localOpen,
      peerOpen: reading.peerOpen,
      exchangeRunning: reading.exchangeRunning,
      halted: reading.halted,
      capacity: this.source.capacity,
      available: reading.available,
      produced: reading.nextIndex,
      taken: Math.max(0, reading.nextIndex - reading.available),
      producedKeysPerSecond: meanRate(samples, (s) => s.produced),
      deliveredKeysPerSecond: meanRate(samples, (s) => s.taken),
      blocks: rounds.length,
      aborts: rounds.filter((b) => b.aborted).length,
      lastBlock: rounds[rounds.length - 1] ?? null,
      measuredSecretBitsPerPulse: pulses > 0 && withPulses.some((b) => b.secretBits !== null) ? secret / pulses : null,
      series: {
        t: samples.map((s) => s.t),
        available: samples.map((s) => s.available),
        producedKeysPerSecond: samples.map((s, i) => rate(samples[i - 1], s, (x) => x.produced)),
        deliveredKeysPerSecond: samples.map((s, i) => rate(samples[i - 1], s, (x) => x.taken)),
      },
      rounds,
      events,
    };
  }
}

function findLastIndex<T>(list: readonly T[], test: (item: T) => boolean): number {
  for (let i = list.length - 1; i >= 0; i--) if (test(list[i]!)) return i;
  return -1;
}

/** Per second between two consecutive samples; null for the first sample and across a gap. */
function rate(previous: Sample | undefined, current: Sample, value: (s: Sample) => number): number | null {
  if (!previous) return null;
  const dt = current.t - previous.t;
  if (!(dt > 0) || dt > GAP_INTERVALS * SAMPLE_INTERVAL_MS) return null;
  return Math.max(0, value(current) - value(previous)) / (dt / 1000);
}

/** Per second over the last RATE_AVERAGE_MS of samples; null with fewer than two. */
function meanRate(samples: readonly Sample[], value: (s: Sample) => number): number | null {
  const last = samples[samples.length - 1];
  if (!last) return null;
  const first = samples.find((s) => s.t >= last.t - RATE_AVERAGE_MS)!;
  if (first === last) return null;
  return Math.max(0, value(last) - value(first)) / ((last.t - first.t) / 1000);
}

/** A round as the dashboard shows it: the numbers of its statistics only (never anything else they might carry). */
function blockOf(r: RoundRecord): Block {
  const s = r.stats ?? {};
  const num = (name: string): number | null => {
    const v = s[name];
    return typeof v === 'number' && Number.isFinite(v) ? v : null;
  };
  // BB84 (issue 11): a round that amplified a PA block reports the PA block's pulses and sifted bits; a round that
  // only accumulated its EC block has no secret length yet (null), so it does not dilute the measured rate.
  const amplified = num('paPulses') !== null;
  const pulses = num('paPulses') ?? num('pulses');
  const siftedBits = num('paSiftedBits') ?? num('siftedBits');
  const secretBits = s.accumulated === true && !amplified ? null : num('secretBits');
  const at = Date.parse(r.at);
  return {
    at: Number.isFinite(at) ? at : 0,
    firstIndex: r.firstIndex,
    keys: r.keys,
    pulses,
    siftedBits,
    qber: num('qberZ') ?? num('qberEstimate'),
    qberUpper: num('qberUpper'),
    secretBits,
    secretFraction: secretBits !== null && siftedBits ? secretBits / siftedBits : null,
    secretBitsPerPulse: secretBits !== null && pulses ? secretBits / pulses : null,
    aborted: s.aborted === true,
    reason: typeof s.reason === 'string' ? s.reason.slice(0, MAX_REASON_CHARS) : null,
  };
}
