/**
 * The dashboard's sampler (src/dashboard/sampler.ts) over a scripted source and clock: bounded memory, rates from
 * the commit counter, rounds taken once, aborts and halts as events, closed streams dropped, the idle timer, and
 * nothing but numbers and reasons passed on from the round statistics.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { RoundRecord } from '../../src/exchange/ExchangeService.js';
import { dashboardFeedSchema } from '../../src/dashboard/feedSchema.js';
import { moduleOnlyLink } from '../../src/dashboard/link.js';
import {
  DashboardSampler,
  IDLE_STOP_MS,
  MAX_ROUNDS_PER_STREAM,
  MAX_SAMPLED_STREAMS,
  MAX_SAMPLES_PER_STREAM,
  SAMPLE_INTERVAL_MS,
  WINDOW_MS,
  type DashboardSource,
  type StreamReading,
} from '../../src/dashboard/sampler.js';

const T0 = Date.parse('2026-03-01T12:00:00.000Z');

function reading(keyStreamId: string, over: Partial<StreamReading> = {}): StreamReading {
  return {
    keyStreamId,
    source: 'app-a',
    destination: '127.0.0.1:7001',
    peer: 'http://127.0.0.1:7001',
    length: 256,
    timeout: 1000,
    ttl: 0,
    localOpen: true,
    peerOpen: true,
    closed: false,
    nextIndex: 0,
    available: 0,
    halted: null,
    exchangeRunning: true,
    ...over,
  };
}

/** A source whose streams and rounds the test sets, and a clock it moves. */
function scripted() {
  const state = { now: T0, streams: [] as StreamReading[], rounds: new Map<string, RoundRecord[]>() };
  const source: DashboardSource = {
    role: 'sender',
    simulator: 'bb84',
    capacity: 20,
    streams: () => state.streams.map((s) => ({ ...s })),
    rounds: (id) => state.rounds.get(id) ?? [],
  };
  const sampler = new DashboardSampler(source, moduleOnlyLink('bb84', 20), () => state.now);
  return { state, sampler };
}

const ID = '6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab';
const block = (at: number, firstIndex: number, keys: number, stats: RoundRecord['stats']): RoundRecord => ({ at: new Date(at).toISOString(), firstIndex, keys, stats });

let samplers: DashboardSampler[] = [];
afterEach(() => {
  for (const s of samplers) s.stop();
  samplers = [];
  vi.useRealTimers();
});

describe('DashboardSampler', () => {
  it('when the counter moves between samples, then the series holds keys per second produced and taken, and the summary the one-minute mean', () => {
    const { state, sampler } = scripted();
    samplers.push(sampler);
    state.streams = [reading(ID, { nextIndex: 10, available: 10 })];
    sampler.feed(); // first sample at T0
    for (let i = 1; i <= 5; i++) {
      state.now = T0 + i * SAMPLE_INTERVAL_MS;
      // 4 keys committed and 2 taken per 2-s interval
      state.streams = [reading(ID, { nextIndex: 10 + 4 * i, available: 10 + 2 * i })];
      sampler.sample();
    }
    const feed = dashboardFeedSchema.parse(sampler.feed());
    const s = feed.streams[0]!;
    expect(s.series.t).toEqual([0, 1, 2, 3, 4, 5].map((i) => T0 + i * SAMPLE_INTERVAL_MS));
    expect(s.series.available).toEqual([10, 12, 14, 16, 18, 20]);
    expect(s.series.producedKeysPerSecond).toEqual([null, 2, 2, 2, 2, 2]);
    expect(s.series.deliveredKeysPerSecond).toEqual([null, 1, 1, 1, 1, 1]);
    expect(s.producedKeysPerSecond).toBe(2);
    expect(s.deliveredKeysPerSecond).toBe(1);
    expect({ produced: s.produced, available: s.available, taken: s.taken, capacity: s.capacity }).toEqual({ produced: 30, available: 20, taken: 10, capacity: 20 });
  });

  it('when the sampler was idle between two samples, then no rate is drawn across the gap', () => {
    const { state, sampler } = scripted();
    samplers.push(sampler);
    state.streams = [reading(ID, { nextIndex: 0 })];
    sampler.sample();
    state.now += 10 * SAMPLE_INTERVAL_MS;
    state.streams = [reading(ID, { nextIndex: 50 })];
    sampler.sample();
    state.now += SAMPLE_INTERVAL_MS;
    state.streams = [reading(ID, { nextIndex: 54 })];
    sampler.sample();
    expect(sampler.feed().streams[0]!.series.producedKeysPerSecond).toEqual([null, null, 2]);
  });

  it('when sampled far longer than the window, then a stream keeps at most MAX_SAMPLES_PER_STREAM samples, none older than the window', () => {
    const { state, sampler } = scripted();
    samplers.push(sampler);
    state.streams = [reading(ID)];
    for (let i = 0; i < 3 * MAX_SAMPLES_PER_STREAM; i++) {
      state.now = T0 + i * SAMPLE_INTERVAL_MS;
      state.streams = [reading(ID, { nextIndex: i, available: i % 20 })];
      sampler.sample();
    }
    const s = sampler.feed().streams[0]!;
    expect(s.series.t.length).toBeLessThanOrEqual(MAX_SAMPLES_PER_STREAM);
    expect(s.series.t.length).toBeGreaterThan(MAX_SAMPLES_PER_STREAM - 3);
    expect(Math.min(...s.series.t)).toBeGreaterThanOrEqual(state.now - WINDOW_MS);
    expect(s.series.t[s.series.t.length - 1]).toBe(state.now);
  });

  it('when rounds are recorded, then each appears once across feeds, aborted ones become events with their reason, and BB84 figures are derived', () => {
    const { state, sampler } = scripted();
    samplers.push(sampler);
    state.streams = [reading(ID)];
    const good = (at: number, first: number) => block(at, first, 70, { pulses: 2_000_000, siftedBits: 39_000, qberEstimate: 0.02, qberUpper: 0.03, secretBits: 18_000, aborted: false, reason: null, keys: 70 });
    state.rounds.set(ID, [good(T0 - 3000, 0), good(T0 - 2000, 70)]);
    expect(sampler.feed().streams[0]!.blocks).toBe(2);
    state.rounds.set(ID, [
      good(T0 - 3000, 0),
      good(T0 - 2000, 70),
      block(T0 - 1000, 140, 0, { pulses: 2_000_000, siftedBits: 39_000, qberEstimate: 0.2, qberUpper: 0.22, secretBits: 0, aborted: true, reason: 'qber-too-high', keys: 0 }),
    ]);
    const s = sampler.feed().streams[0]!;
    expect(s.blocks).toBe(3);
    expect(s.aborts).toBe(1);
    expect(s.rounds.map((b) => b.firstIndex)).toEqual([0, 70, 140]);
    expect(s.events).toEqual([{ at: T0 - 1000, kind: 'abort', reason: 'qber-too-high' }]);
    expect(s.lastBlock).toMatchObject({ aborted: true, reason: 'qber-too-high', qber: 0.2, secretFraction: 0 });
    expect(s.rounds[0]).toMatchObject({ qber: 0.02, qberUpper: 0.03, secretFraction: 18_000 / 39_000, secretBitsPerPulse: 18_000 / 2_000_000 });
    expect(s.measuredSecretBitsPerPulse).toBeCloseTo(36_000 / 6_000_000, 12);
  });

  it("when the source's round list dropped the round last seen (its own window moved), then only newer rounds are added", () => {
    const { state, sampler } = scripted();
    samplers.push(sampler);
    state.streams = [reading(ID)];
    state.rounds.set(ID, [block(T0 - 5000, 0, 5, { keys: 5 }), block(T0 - 4000, 5, 5, { keys: 5 })]);
    sampler.feed();
    state.rounds.set(ID, [block(T0 - 3000, 10, 5, { keys: 5 }), block(T0 - 2000, 15, 5, { keys: 5 })]);
    expect(sampler.feed().streams[0]!.rounds.map((b) => b.firstIndex)).toEqual([0, 5, 10, 15]);
  });

  it('when a stream has more rounds than the cap, then at most MAX_ROUNDS_PER_STREAM are kept, the newest', () => {
    const { state, sampler } = scripted();
    samplers.push(sampler);
    state.streams = [reading(ID)];
    for (let batch = 0; batch < 3; batch++) {
      const rounds: RoundRecord[] = [];
      for (let i = 0; i < MAX_ROUNDS_PER_STREAM; i++) {
        const n = batch * MAX_ROUNDS_PER_STREAM + i;
        rounds.push(block(T0 - 60_000 + n * 10, n, 1, { keys: 1 }));
      }
      state.rounds.set(ID, rounds);
      sampler.sample();
    }
    const rounds = sampler.feed().streams[0]!.rounds;
    expect(rounds.length).toBe(MAX_ROUNDS_PER_STREAM);
    expect(rounds[rounds.length - 1]!.firstIndex).toBe(3 * MAX_ROUNDS_PER_STREAM - 1);
  });

  it('when the exchange halts, then one halt event carries the reason, however often it is sampled', () => {
    const { state, sampler } = scripted();
    samplers.push(sampler);
    const halted = { reason: 'key confirmation failed: the two ends hold different keys for indices 0..4', since: new Date(T0 - 500).toISOString() };
    state.streams = [reading(ID, { halted })];
    sampler.sample();
    sampler.sample();
    const s = sampler.feed().streams[0]!;
    expect(s.events).toEqual([{ at: T0 - 500, kind: 'halt', reason: halted.reason }]);
    expect(s.halted).toEqual(halted);
  });

  it('when a stream closes or disappears, then its history is dropped and the feed counts closed streams only', () => {
    const { state, sampler } = scripted();
    samplers.push(sampler);
    const other = '00000000-0000-4000-8000-000000000001';
    state.streams = [reading(ID), reading(other)];
    sampler.sample();
    expect(sampler.sampledStreams().sort()).toEqual([other, ID].sort());
    state.streams = [reading(ID, { closed: true })];
    sampler.sample();
    expect(sampler.sampledStreams()).toEqual([]);
    const feed = sampler.feed();
    expect(feed.streams).toEqual([]);
    expect(feed.closedStreams).toBe(1);
  });

  it('when more streams are open than MAX_SAMPLED_STREAMS, then that many are sampled, the rest counted, and sampled ones stay', () => {
    const { state, sampler } = scripted();
    samplers.push(sampler);
    const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
    state.streams = Array.from({ length: MAX_SAMPLED_STREAMS + 5 }, (_, n) => reading(id(n + 100)));
    sampler.sample();
    const first = new Set(sampler.sampledStreams());
    expect(first.size).toBe(MAX_SAMPLED_STREAMS);
    // A stream whose ID sorts first opens later: the streams already drawn keep their place.
    state.streams = [reading(id(1)), ...state.streams];
    const feed = sampler.feed();
    expect(feed.streams.length).toBe(MAX_SAMPLED_STREAMS);
    expect(new Set(feed.streams.map((s) => s.keyStreamId))).toEqual(first);
    expect(feed.streamsNotShown).toBe(6);
  });

  it('when round statistics carry fields other than the known numbers and reason, then none of them reaches the feed', () => {
    const { state, sampler } = scripted();
    samplers.push(sampler);
    state.streams = [reading(ID)];
    const secret = 'c0ffee00c0ffee00c0ffee00c0ffee00';
    state.rounds.set(ID, [block(T0 - 100, 0, 1, { keys: 1, pulses: 'not a number', keyHex: secret, note: secret, qberEstimate: Number.NaN } as unknown as RoundRecord['stats'])]);
    const text = JSON.stringify(sampler.feed());
    expect(text).not.toContain(secret);
    expect(text).not.toContain('keyHex');
    const b = sampler.feed().streams[0]!.rounds[0]!;
    expect(b).toMatchObject({ pulses: null, qber: null, secretBits: null, aborted: false, reason: null });
  });

  it('when the feed is asked for, then a timer samples every interval, and it stops after IDLE_STOP_MS without a request', () => {
    vi.useFakeTimers({ now: T0 });
    let reads = 0;
    const source: DashboardSource = {
      role: 'receiver',
      simulator: 'fake',
      capacity: 20,
      streams: () => {
        reads++;
        return [reading(ID)];
      },
      rounds: () => [],
    };
    const sampler = new DashboardSampler(source, moduleOnlyLink('fake', 20));
    samplers.push(sampler);
    sampler.sample();
    vi.advanceTimersByTime(5 * SAMPLE_INTERVAL_MS);
    expect(reads).toBe(1); // no timer before the first request
    expect(sampler.sampling).toBe(false);
    expect(sampler.feed().streams[0]!.series.t.length).toBe(2); // the request resumes sampling at once
    expect(sampler.sampling).toBe(true);
    vi.advanceTimersByTime(5 * SAMPLE_INTERVAL_MS);
    expect(sampler.feed().streams[0]!.series.t.length).toBe(7);
    vi.advanceTimersByTime(IDLE_STOP_MS + 2 * SAMPLE_INTERVAL_MS);
    expect(sampler.sampling).toBe(false);
    const idle = reads;
    vi.advanceTimersByTime(20 * SAMPLE_INTERVAL_MS);
    expect(reads).toBe(idle);
    const feed = sampler.feed();
    expect(sampler.sampling).toBe(true);
    // The idle stretch is a gap: no rate is drawn across it.
    expect(feed.streams[0]!.series.producedKeysPerSecond.at(-1)).toBeNull();
  });

  it('when the feed is asked for right after a sample, then it does not add a second sample at the same instant', () => {
    const { state, sampler } = scripted();
    samplers.push(sampler);
    state.streams = [reading(ID)];
    sampler.sample();
    expect(sampler.feed().streams[0]!.series.t).toEqual([T0]);
  });
});
