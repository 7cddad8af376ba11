/**
 * src/metrics: what the core reports becomes the qkdm_* series (names and labels are a contract with the
 * dashboards and alert rules), series end with their stream, the cheap histogram prints what prom-client's
 * would, stores and HTTP requests are timed under fixed labels.
 */
import express from 'express';
import request from 'supertest';
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { DISCARD_REASONS } from '../../src/core/telemetry.js';
import { HTTP_DURATION_BUCKETS, ModuleMetrics, type MetricsSources } from '../../src/metrics/ModuleMetrics.js';
import { LiteHistogram } from '../../src/metrics/LiteHistogram.js';
import { httpMetrics, UNMATCHED_ROUTE, type HttpLabel } from '../../src/metrics/httpMetrics.js';
import { HANDLE_STORE_OPERATIONS, KEY_STORE_OPERATIONS, timeHandleStore, timeKeyStore, type StoreLabel } from '../../src/metrics/timedStores.js';
import { MemoryHandleStore, MemoryKeyStore } from '../support/memoryStores.js';
import { canonical, parseExposition, samples, typesOf, valueOf } from '../support/prometheus.js';

const A = '6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab';
const B = '0b4f8a2c-1d3e-4f5a-9b6c-7d8e9f0a1b2c';

/** The streams the scrape sees, as the manager would list them. */
function sources(streams: Array<{ keyStreamId: string; available: number; halted?: object | null }>, peerUp = true): MetricsSources {
  return {
    streams: { summaries: () => streams.map((s) => ({ keyStreamId: s.keyStreamId, available: s.available, halted: s.halted ?? null })) },
    peerUp: async () => peerUp,
  };
}

async function scrape(m: ModuleMetrics) {
  const { text, contentType } = await m.exposition();
  return { text, contentType, all: parseExposition(text) };
}

describe('ModuleMetrics', () => {
  it('when keys are committed, delivered and discarded on a stream, then the per-stream counters and the buffer gauge say so with stream and role labels', async () => {
    const m = new ModuleMetrics('alice');
    m.watch(sources([{ keyStreamId: A, available: 7 }]));
    m.keysCommitted(A, 12);
    m.keysDelivered(A, 1);
    m.keysDelivered(A, 3);
    m.keysDiscarded(A, 'ttl', 1);
    m.keysDiscarded(A, 'close', 0); // nothing erased: no series
    const { all, contentType } = await scrape(m);
    expect(contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(valueOf(all, 'qkdm_keys_produced_total', { stream: A, role: 'alice' })).toBe(12);
    expect(valueOf(all, 'qkdm_keys_delivered_total', { stream: A, role: 'alice' })).toBe(4);
    expect(valueOf(all, 'qkdm_keys_discarded_total', { stream: A, role: 'alice', reason: 'ttl' })).toBe(1);
    expect(samples(all, 'qkdm_keys_discarded_total', { reason: 'close' })).toEqual([]);
    expect(valueOf(all, 'qkdm_keys_buffered', { stream: A, role: 'alice' })).toBe(7);
    expect(valueOf(all, 'qkdm_stream_halted', { stream: A })).toBe(0);
  });

  it('when BB84 blocks commit and abort, then blocks, aborts by reason, secret bits, QBER and secret bits per pulse follow the last block', async () => {
    const m = new ModuleMetrics('bob');
    m.watch(sources([{ keyStreamId: A, available: 0 }]));
    m.blockCommitted({ keyStreamId: A, keys: 3, keyLengthBits: 256, durationMs: 1500, qber: 0.031, secretBits: 1000, pulses: 1_000_000 });
    m.blockAborted(A, 'qber-too-high', { qber: 0.14, secretBits: 0, pulses: 2_000_000 }, 800);
    m.blockAborted(A, 'peer-unreachable', {}, 40);
    m.blockAborted(A, 'made-up reason from somewhere', {}, undefined);
    const { all } = await scrape(m);
    const labels = { stream: A, role: 'bob' };
    expect(valueOf(all, 'qkdm_blocks_total', labels)).toBe(1);
    expect(valueOf(all, 'qkdm_secret_bits_total', labels)).toBe(1000);
    expect(valueOf(all, 'qkdm_blocks_aborted_total', { ...labels, reason: 'qber-too-high' })).toBe(1);
    expect(valueOf(all, 'qkdm_blocks_aborted_total', { ...labels, reason: 'peer-unreachable' })).toBe(1);
    expect(valueOf(all, 'qkdm_blocks_aborted_total', { ...labels, reason: 'other' })).toBe(1); // never free text as a label
    expect(valueOf(all, 'qkdm_qber', labels)).toBe(0.14);
    expect(valueOf(all, 'qkdm_secret_bits_per_pulse', labels)).toBe(0);
    expect(valueOf(all, 'qkdm_block_qber_count', { role: 'bob' })).toBe(2);
    expect(valueOf(all, 'qkdm_block_qber_bucket', { role: 'bob', le: '0.04' })).toBe(1);
    expect(valueOf(all, 'qkdm_block_qber_bucket', { role: 'bob', le: '0.15' })).toBe(2);
    expect(valueOf(all, 'qkdm_round_duration_seconds_count', { role: 'bob' })).toBe(3);
    expect(valueOf(all, 'qkdm_round_duration_seconds_sum', { role: 'bob' })).toBeCloseTo(2.34, 6);
  });

  it('when the fake device commits a block, then secret bits are its key bits and no QBER series exists', async () => {
    const m = new ModuleMetrics('alice');
    m.watch(sources([{ keyStreamId: A, available: 5 }]));
    m.blockCommitted({ keyStreamId: A, keys: 5, keyLengthBits: 256, durationMs: 3 });
    const { all } = await scrape(m);
    expect(valueOf(all, 'qkdm_secret_bits_total', { stream: A })).toBe(1280);
    expect(samples(all, 'qkdm_qber')).toEqual([]);
    expect(samples(all, 'qkdm_secret_bits_per_pulse')).toEqual([]);
  });

  it('when a stream is purged or no longer listed, then none of its series remain; another stream keeps its own', async () => {
    const streams = [
      { keyStreamId: A, available: 2, halted: { reason: 'key confirmation failed', since: 'now' } },
      { keyStreamId: B, available: 1 },
    ];
    const m = new ModuleMetrics('alice');
    m.watch(sources(streams));
    for (const id of [A, B]) {
      m.keysCommitted(id, 3);
      m.keysDiscarded(id, 'halted-round', 2);
      m.blockAborted(id, 'confirmation-failed', { qber: 0.02 }, 5);
    }
    let { all, text } = await scrape(m);
    expect(valueOf(all, 'qkdm_stream_halted', { stream: A })).toBe(1);
    expect(text).toContain(A);
    m.streamPurged(A);
    streams.shift(); // the manager no longer lists it
    ({ all, text } = await scrape(m));
    expect(text).not.toContain(A);
    expect(valueOf(all, 'qkdm_keys_produced_total', { stream: B })).toBe(3);
    // Gone from the list without a purge report (e.g. a report raced the purge): dropped at the next scrape.
    m.keysDelivered(A, 1);
    ({ text } = await scrape(m));
    expect(text).not.toContain(A);
  });

  it('when a stream exists but nothing happened on it yet, then its counters are zero series (rate() needs them)', async () => {
    const m = new ModuleMetrics('alice');
    m.watch(sources([{ keyStreamId: A, available: 0 }]));
    const { all } = await scrape(m);
    for (const name of ['qkdm_keys_produced_total', 'qkdm_keys_delivered_total', 'qkdm_secret_bits_total', 'qkdm_blocks_total']) {
      expect(valueOf(all, name, { stream: A, role: 'alice' }), name).toBe(0);
    }
  });

  it('when peer calls fail, then errors are counted by kind (every kind a series from the start) and qkdm_peer_up follows the peer check', async () => {
    const up = new ModuleMetrics('alice');
    up.watch(sources([], true));
    up.peerCallFailed('timeout');
    up.peerCallFailed('timeout');
    let { all } = await scrape(up);
    expect(valueOf(all, 'qkdm_peer_request_errors_total', { kind: 'timeout' })).toBe(2);
    for (const kind of ['unreachable', 'http-status', 'unauthenticated', 'protocol']) expect(valueOf(all, 'qkdm_peer_request_errors_total', { kind }), kind).toBe(0);
    expect(valueOf(all, 'qkdm_peer_up')).toBe(1);
    const down = new ModuleMetrics('alice');
    down.watch(sources([], false));
    ({ all } = await scrape(down));
    expect(valueOf(all, 'qkdm_peer_up')).toBe(0);
  });

  it('when scraped, then every contract name is there with its type, next to the process and Node defaults', async () => {
    const m = new ModuleMetrics('alice');
    m.watch(sources([]));
    const { text } = await scrape(m);
    const types = typesOf(text);
    const contract: Record<string, string> = {
      qkdm_keys_produced_total: 'counter',
      qkdm_keys_delivered_total: 'counter',
      qkdm_keys_discarded_total: 'counter',
      qkdm_keys_buffered: 'gauge',
      qkdm_secret_bits_total: 'counter',
      qkdm_blocks_total: 'counter',
      qkdm_blocks_aborted_total: 'counter',
      qkdm_qber: 'gauge',
      qkdm_block_qber: 'histogram',
      qkdm_secret_bits_per_pulse: 'gauge',
      qkdm_round_duration_seconds: 'histogram',
      qkdm_peer_request_errors_total: 'counter',
      qkdm_peer_up: 'gauge',
      qkdm_stream_halted: 'gauge',
      qkdm_http_request_duration_seconds: 'histogram',
      qkdm_store_operation_duration_seconds: 'histogram',
    };
    for (const [name, type] of Object.entries(contract)) expect(types.get(name), name).toBe(type);
    expect(types.get('process_cpu_seconds_total')).toBe('counter');
    expect(types.get('nodejs_heap_size_total_bytes')).toBe('gauge');
    expect(text).toContain(`reason (${DISCARD_REASONS.join(', ')})`);
  });

  it('when two modules run in one process, then each has its own registry', async () => {
    const a = new ModuleMetrics('alice');
    const b = new ModuleMetrics('bob');
    a.watch(sources([{ keyStreamId: A, available: 1 }]));
    b.watch(sources([{ keyStreamId: A, available: 9 }]));
    expect(valueOf((await scrape(a)).all, 'qkdm_keys_buffered', { stream: A })).toBe(1);
    expect(valueOf((await scrape(b)).all, 'qkdm_keys_buffered', { stream: A, role: 'bob' })).toBe(9);
  });
});

describe('LiteHistogram', () => {
  it("when it sees the same observations as prom-client's Histogram, then it prints the same samples, HELP and TYPE", async () => {
    const buckets = [0.001, 0.01, 0.1, 1];
    const reference = new Registry();
    const h = new LiteHistogram<'route'>('x_seconds', 'x', ['route'], buckets);
    const ref = new Histogram({ name: 'x_seconds', help: 'x', labelNames: ['route'], buckets, registers: [reference] });
    const values = [0, 0.0005, 0.001, 0.002, 0.05, 0.1, 0.5, 1, 3, 250];
    for (const v of values) {
      h.series({ route: '/a' }).observe(v);
      ref.observe({ route: '/a' }, v);
    }
    h.series({ route: '/b' }).observe(0.02);
    ref.observe({ route: '/b' }, 0.02);
    h.series({ route: 'a "quoted" \\ route' }).observe(0.5);
    ref.observe({ route: 'a "quoted" \\ route' }, 0.5);
    const sorted = (text: string) => parseExposition(text).map(canonical).sort();
    const text = h.render();
    expect(sorted(text)).toEqual(sorted(await reference.metrics()));
    expect(typesOf(text).get('x_seconds')).toBe('histogram');
    expect(text).toContain('# HELP x_seconds x');
  });
});

describe('timed stores', () => {
  it('when the core calls the decorated stores, then each call is timed under its store and operation, and answers and errors pass through unchanged', async () => {
    const h = new LiteHistogram<StoreLabel>('s_seconds', 's', ['store', 'operation'], [0.001, 1]);
    const keys = new MemoryKeyStore();
    const timedKeys = timeKeyStore(keys, 'memory', h);
    const timedHandles = timeHandleStore(new MemoryHandleStore(), 'sqlite', h);
    const key = new Uint8Array([1, 2, 3, 4]);
    await timedKeys.putMany(A, 0, [key]);
    expect(await timedKeys.take(A, 0)).toEqual(key);
    expect(await timedKeys.take(A, 0)).toBeUndefined();
    expect(await timedHandles.get(A)).toBeUndefined();
    keys.failTakes = true;
    await expect(timedKeys.take(A, 1)).rejects.toThrow();
    const all = parseExposition(h.render());
    expect(valueOf(all, 's_seconds_count', { store: 'memory', operation: 'put_many' })).toBe(1);
    expect(valueOf(all, 's_seconds_count', { store: 'memory', operation: 'take' })).toBe(3); // the failed one too
    expect(valueOf(all, 's_seconds_count', { store: 'sqlite', operation: 'get' })).toBe(1);
    const operations = new Set(samples(all, 's_seconds_count').map((s) => s.labels.operation));
    expect(operations).toEqual(new Set([...KEY_STORE_OPERATIONS, ...HANDLE_STORE_OPERATIONS]));
  });
});

describe('HTTP timing', () => {
  function app() {
    const h = new LiteHistogram<HttpLabel>('h_seconds', 'h', ['route', 'method', 'status'], HTTP_DURATION_BUCKETS);
    const a = express();
    a.use(httpMetrics(h, ['/api/v1/keys']));
    const keys = express.Router();
    keys.get('/:slave_SAE_ID/status', (_req, res) => void res.json({ ok: true }));
    a.use('/api/v1/keys', keys);
    a.get('/streams/:id', (req, res) => void res.status(req.params.id === 'x' ? 404 : 200).json({}));
    a.get('/gated', (_req, res) => void res.status(401).json({}));
    a.use((_req, res) => void res.status(404).json({ code: 'NOT_FOUND' }));
    return { a, render: () => h.render() };
  }

  it('when requests reach routes, then the label is the route pattern with its mount prefix, never the path, and unmatched requests are "unmatched"', async () => {
    const { a, render } = app();
    const secretish = 'q83vAbCdEfGh1234';
    await request(a).get(`/streams/${secretish}`);
    await request(a).get('/streams/x');
    await request(a).get('/API/V1/KEYS/sae-b/status'); // Express matches case-insensitively: the label is the mount as written
    await request(a).get(`/no/such/${secretish}`);
    await request(a).delete('/streams/x');
    const text = render();
    const all = parseExposition(text);
    expect(valueOf(all, 'h_seconds_count', { route: '/streams/:id', method: 'GET', status: '200' })).toBe(1);
    expect(valueOf(all, 'h_seconds_count', { route: '/streams/:id', method: 'GET', status: '404' })).toBe(1);
    expect(valueOf(all, 'h_seconds_count', { route: '/api/v1/keys/:slave_SAE_ID/status', method: 'GET', status: '200' })).toBe(1);
    expect(valueOf(all, 'h_seconds_count', { route: UNMATCHED_ROUTE, method: 'GET', status: '404' })).toBe(1);
    expect(valueOf(all, 'h_seconds_count', { route: UNMATCHED_ROUTE, method: 'DELETE', status: '404' })).toBe(1);
    expect(text).not.toContain(secretish);
    expect(text).not.toContain('sae-b');
    expect(text).not.toMatch(/KEYS/);
  });
});
