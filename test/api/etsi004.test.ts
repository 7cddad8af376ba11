/**
 * ETSI GS QKD 004 JSON binding over the in-memory pair: every status 0-8 from a real scenario, both
 * bindings on one stream, TTL erasure and malformed bodies.
 */
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.js';
import { parsePyLiteral } from '../../src/api/codec/pyLiteral.js';
import { FakeSimulator } from '../../src/sim/fake/FakeSimulator.js';
import { buildPair, silentLog, type PairOptions, type Side } from '../support/pair.js';

const BASE = '/etsi004/v2.1.1';
const APP_A = 'qkd://app-a@127.0.0.1:5000';
const APP_B = 'qkd://app-b@127.0.0.1:5001';
const UNKNOWN_ID = '6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab';

type App = ReturnType<typeof createApp>;
let stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops) await s();
  stops = [];
});

async function setup(opts: PairOptions = {}): Promise<{ alice: Side; bob: Side; appA: App; appB: App }> {
  const p = await buildPair({ maxKeyCount: 10, ...opts });
  stops.push(p.stop);
  const appA = createApp({ manager: p.alice.manager, exchange: p.alice.exchange, log: silentLog, requestLog: false });
  const appB = createApp({ manager: p.bob.manager, exchange: p.bob.exchange, log: silentLog, requestLog: false });
  return { alice: p.alice, bob: p.bob, appA, appB };
}

const post = (app: App, route: string, body: unknown) => request(app).post(`${BASE}/${route}`).send(body as object);

function qos(overrides: Record<string, unknown> = {}) {
  return { Key_chunk_size: 32, Timeout: 2000, ...overrides };
}

/** A opens (status 1), B joins (status 0); resolves the Key_stream_ID. */
async function openBoth(appA: App, appB: App, q: Record<string, unknown> = {}): Promise<string> {
  const a = await post(appA, 'open_connect', { source: APP_A, destination: APP_B, QoS: qos(q), Key_stream_ID: null });
  expect(a.status).toBe(200);
  expect(a.body.status).toBe(1);
  const id = a.body.Key_stream_ID as string;
  const b = await post(appB, 'open_connect', { source: APP_B, destination: APP_A, QoS: qos(q), Key_stream_ID: id });
  expect(b.body).toMatchObject({ Key_stream_ID: id, status: 0 });
  return id;
}

describe('ETSI 004 OPEN_CONNECT', () => {
  it('when the first application opens a new stream, then status 1 until the peer application opens the same Key_stream_ID, then 0', async () => {
    const { appA, appB } = await setup();
    const a = await post(appA, 'open_connect', { source: APP_A, destination: APP_B, QoS: qos({ TTL: 0 }), Key_stream_ID: null });
    expect(a.status).toBe(200);
    expect(a.body).toEqual({
      Key_stream_ID: expect.stringMatching(/^[0-9a-f-]{36}$/),
      QoS: { Key_chunk_size: 32, Max_bps: 0, Min_bps: 0, Jitter: 0, Priority: 0, Timeout: 2000, TTL: 0, Metadata_mimetype: 'application/json' },
      status: 1,
      message: expect.stringMatching(/peer application/),
    });
    const id = a.body.Key_stream_ID as string;
    // A repeat by the same application is idempotent.
    const again = await post(appA, 'open_connect', { source: APP_A, destination: APP_B, QoS: qos(), Key_stream_ID: id });
    expect(again.body).toMatchObject({ Key_stream_ID: id, status: 1 });
    const b = await post(appB, 'open_connect', { source: APP_B, destination: '127.0.0.1:5000', QoS: qos(), Key_stream_ID: id });
    expect(b.body).toMatchObject({ Key_stream_ID: id, status: 0 });
    expect(b.body.message).toBeUndefined();
    const repeat = await post(appA, 'open_connect', { source: APP_A, destination: APP_B, QoS: qos(), Key_stream_ID: id });
    expect(repeat.body).toMatchObject({ Key_stream_ID: id, status: 0 });
  });

  it('when the peer module is unreachable, then status 4 with HTTP 200 and nothing is registered', async () => {
    const { alice, appA } = await setup();
    alice.peer.down = true;
    const res = await post(appA, 'open_connect', { source: APP_A, destination: APP_B, QoS: qos() });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ Key_stream_ID: null, status: 4, message: expect.stringMatching(/no QKD connection to a peer module at/) });
    expect(alice.manager.summaries()).toHaveLength(0);
  });

  it('when a Key_stream_ID is already bound to other endpoints, then status 5', async () => {
    const { appA, appB } = await setup();
    const id = await openBoth(appA, appB);
    const intruder = await post(appA, 'open_connect', { source: 'qkd://intruder@127.0.0.1:5000', destination: APP_B, QoS: qos(), Key_stream_ID: id });
    expect(intruder.status).toBe(200);
    expect(intruder.body).toMatchObject({ Key_stream_ID: id, status: 5, message: expect.stringMatching(/other endpoints/) });
    // A closed stream's ID is spent, even for its own application.
    expect((await post(appA, 'close', { Key_stream_ID: id })).body).toEqual({ status: 0 });
    const reopened = await post(appA, 'open_connect', { source: APP_A, destination: APP_B, QoS: qos(), Key_stream_ID: id });
    expect(reopened.body).toMatchObject({ status: 5, message: expect.stringMatching(/closed/) });
  });

  it('when the QoS cannot be met, then status 7 with a counter-proposal and nothing is registered', async () => {
    const { alice, appA } = await setup();
    const cases: Array<[Record<string, unknown>, Record<string, unknown>, RegExp]> = [
      [{ Key_chunk_size: 0 }, { Key_chunk_size: 1 }, /Key_chunk_size/],
      [{ Key_chunk_size: 2048 }, { Key_chunk_size: 1024 }, /Key_chunk_size/],
      [{ Timeout: 700_000 }, { Timeout: 600_000 }, /Timeout/],
      [{ Metadata_mimetype: 'text/xml' }, { Metadata_mimetype: 'application/json' }, /Metadata_mimetype/],
      [{ Min_bps: 5000, Max_bps: 1000 }, { Min_bps: 5000, Max_bps: 5000 }, /Max_bps/],
    ];
    for (const [asked, counter, message] of cases) {
      const res = await post(appA, 'open_connect', { source: APP_A, destination: APP_B, QoS: qos(asked) });
      expect(res.status, JSON.stringify(asked)).toBe(200);
      expect(res.body.status, JSON.stringify(asked)).toBe(7);
      expect(res.body.QoS, JSON.stringify(asked)).toMatchObject(counter);
      expect(res.body.message, JSON.stringify(asked)).toMatch(message);
    }
    expect(alice.manager.summaries()).toHaveLength(0);
    const ok = await post(appA, 'open_connect', { source: APP_A, destination: APP_B, QoS: qos({ Metadata_mimetype: 'Application/JSON; charset=utf-8' }) });
    expect(ok.body.status).toBe(1);
  });

  it('when Min_bps is above what the link produces, then status 7 proposes the link rate', async () => {
    class TenKbitLink extends FakeSimulator {
      override expectedSecretBitsPerSecond(): number {
        return 10_000.7;
      }
    }
    const { alice, appA } = await setup({ simulator: () => new TenKbitLink() });
    const res = await post(appA, 'open_connect', { source: APP_A, destination: APP_B, QoS: qos({ Min_bps: 20_000 }) });
    expect(res.body).toMatchObject({ status: 7, QoS: { Min_bps: 10_000 }, message: expect.stringMatching(/Min_bps/) });
    expect(alice.manager.summaries()).toHaveLength(0);
    const fits = await post(appA, 'open_connect', { source: APP_A, destination: APP_B, QoS: qos({ Min_bps: 10_000 }) });
    expect(fits.body.status).toBe(1);
  });

  it('6.1 NOTE: when the peer application joins with another Key_chunk_size, then success with the stream\'s QoS filled in; the opener repeating with another TTL gets 7', async () => {
    const { appA, appB } = await setup();
    const a = await post(appA, 'open_connect', { source: APP_A, destination: APP_B, QoS: qos({ TTL: 60 }) });
    const id = a.body.Key_stream_ID as string;
    const b = await post(appB, 'open_connect', { source: APP_B, destination: APP_A, QoS: qos({ Key_chunk_size: 16 }), Key_stream_ID: id });
    expect(b.body).toMatchObject({ Key_stream_ID: id, status: 0, QoS: { Key_chunk_size: 32 } });
    const repeat = await post(appA, 'open_connect', { source: APP_A, destination: APP_B, QoS: qos({ TTL: 5 }), Key_stream_ID: id });
    expect(repeat.body).toMatchObject({ status: 7, QoS: { TTL: 60 }, message: expect.stringMatching(/TTL/) });
  });
});

describe('ETSI GS QKD 004 v2.1.1 conformance: QoS the KM fills', () => {
  it('6.1 NOTE: when QoS fields are null, then the KM fills them and the answer carries the values it uses', async () => {
    const { appA } = await setup();
    const res = await post(appA, 'open_connect', {
      source: APP_A, destination: APP_B,
      QoS: { Key_chunk_size: null, Max_bps: null, Min_bps: null, Jitter: null, Priority: null, Timeout: null, TTL: null, Metadata_mimetype: null },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 1, QoS: { Key_chunk_size: 32, Max_bps: 0, Min_bps: 0, Jitter: 0, Priority: 0, Timeout: 5000, TTL: 0, Metadata_mimetype: 'application/json' } });
  });

  it('6.2.2: when the peer application joins a registered Key_stream_ID without QoS, or with {}, then it joins with the stream\'s QoS', async () => {
    for (const joinQos of [undefined, {}]) {
      const { appA, appB } = await setup();
      const a = await post(appA, 'open_connect', { source: APP_A, destination: APP_B, QoS: qos({ Key_chunk_size: 64, Timeout: 1500 }) });
      const id = a.body.Key_stream_ID as string;
      const b = await post(appB, 'open_connect', { source: APP_B, destination: APP_A, ...(joinQos ? { QoS: joinQos } : {}), Key_stream_ID: id });
      expect(b.body, JSON.stringify(joinQos)).toMatchObject({ Key_stream_ID: id, status: 0, QoS: { Key_chunk_size: 64, Timeout: 1500 } });
      const [ka, kb] = [await post(appA, 'get_key', { Key_stream_ID: id }), await post(appB, 'get_key', { Key_stream_ID: id })];
      expect(Buffer.from(ka.body.Key_buffer as string, 'base64')).toHaveLength(64);
      expect(kb.body.Key_buffer).toBe(ka.body.Key_buffer);
    }
  });

  it('OPEN_CONNECT QoS Metadata_mimetype: when it is empty, then OPEN_CONNECT succeeds and GET_KEY reports no metadata even when a buffer is offered', async () => {
    const { appA, appB } = await setup();
    const a = await post(appA, 'open_connect', { source: APP_A, destination: APP_B, QoS: qos({ Metadata_mimetype: '' }) });
    expect(a.body).toMatchObject({ status: 1, QoS: { Metadata_mimetype: '' } });
    const id = a.body.Key_stream_ID as string;
    await post(appB, 'open_connect', { source: APP_B, destination: APP_A, QoS: qos(), Key_stream_ID: id });
    const k = await post(appA, 'get_key', { Key_stream_ID: id, Metadata: { Metadata_size: 1024 } });
    expect(k.body).toMatchObject({ status: 0, Metadata: { Metadata_size: 0, Metadata_buffer: null } });
    const other = await post(appA, 'open_connect', { source: APP_A, destination: APP_B, QoS: qos({ Metadata_mimetype: 'text/plain' }) });
    expect(other.body).toMatchObject({ status: 7, QoS: { Metadata_mimetype: 'application/json' } });
  });
});

describe('ETSI GS QKD 004 v2.1.1 conformance: CLOSE', () => {
  it('CLOSE: when both applications closed the stream, then GET_KEY hands out no key at either end and the unused keys are erased', async () => {
    const { alice, bob, appA, appB } = await setup();
    const id = await openBoth(appA, appB);
    await expect.poll(() => bob.manager.available(id), { timeout: 3000 }).toBeGreaterThan(0);
    expect((await post(appA, 'close', { Key_stream_ID: id })).body).toEqual({ status: 0 });
    expect((await post(appB, 'close', { Key_stream_ID: id })).body).toEqual({ status: 0 });
    for (const app of [appA, appB]) {
      const k = await post(app, 'get_key', { Key_stream_ID: id });
      expect(k.body.Key_buffer).toBeNull();
      expect(k.body.status).not.toBe(0);
    }
    expect(alice.keys.keys.get(id)?.size ?? 0).toBe(0);
    expect(bob.keys.keys.get(id)?.size ?? 0).toBe(0);
  });
});

describe('ETSI 004 GET_KEY and CLOSE', () => {
  it('when GET_KEY is called before the peer application connected, then status 3 at once', async () => {
    const { appA } = await setup();
    const a = await post(appA, 'open_connect', { source: APP_A, destination: APP_B, QoS: qos() });
    const t0 = Date.now();
    const res = await post(appA, 'get_key', { Key_stream_ID: a.body.Key_stream_ID, index: -1 });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 3, Key_buffer: null, index: -1 });
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('when both applications connected, then status 0 with the same key at both ends and metadata when asked', async () => {
    const { appA, appB } = await setup();
    const id = await openBoth(appA, appB);
    const ka = await post(appA, 'get_key', { Key_stream_ID: id, Metadata: { Metadata_size: 1024 } });
    const kb = await post(appB, 'get_key', { Key_stream_ID: id, index: 0 });
    expect(ka.body).toMatchObject({ status: 0, index: 0 });
    expect(Buffer.from(ka.body.Key_buffer, 'base64')).toHaveLength(32);
    expect(kb.body).toEqual({ status: 0, Key_buffer: ka.body.Key_buffer, index: 0, Metadata: { Metadata_size: 0, Metadata_buffer: null } });
    const meta = JSON.parse(ka.body.Metadata.Metadata_buffer as string);
    // Table 3's names (age in ms, hops), and this module's extras.
    expect(meta).toEqual({ age: expect.any(Number), hops: 1, age_ms: meta.age, qber: null, secret_fraction: null });
    expect(meta.age_ms).toBeGreaterThanOrEqual(0);
    expect(ka.body.Metadata.Metadata_size).toBe(Buffer.byteLength(ka.body.Metadata.Metadata_buffer));
  });

  it('when Metadata_size is too small, then status 8 gives the size needed and the key stays deliverable', async () => {
    const { appA, appB } = await setup();
    const id = await openBoth(appA, appB);
    const small = await post(appA, 'get_key', { Key_stream_ID: id, index: -1, Metadata: { Metadata_size: 10 } });
    expect(small.status).toBe(200);
    expect(small.body).toMatchObject({ status: 8, Key_buffer: null, index: 0, Metadata: { Metadata_buffer: null } });
    const needed = small.body.Metadata.Metadata_size as number;
    expect(needed).toBeGreaterThan(10);
    const enough = await post(appA, 'get_key', { Key_stream_ID: id, index: -1, Metadata: { Metadata_size: needed + 8 } });
    expect(enough.body).toMatchObject({ status: 0, index: 0 });
    // GET_KEY: Metadata_size 0 asks for no metadata: the key, with none.
    const zero = await post(appA, 'get_key', { Key_stream_ID: id, Metadata: { Metadata_size: 0 } });
    expect(zero.body).toMatchObject({ status: 0, index: 1, Metadata: { Metadata_size: 0, Metadata_buffer: null } });
  });

  it('when the asked key was delivered and the application took a later one since, then status 2 at once', async () => {
    const { appA, appB } = await setup();
    const id = await openBoth(appA, appB);
    const first = await post(appA, 'get_key', { Key_stream_ID: id, index: 0 });
    expect(first.body.status).toBe(0);
    // Within the re-delivery window the same index is the same key (a lost answer asked again)...
    const repeat = await post(appA, 'get_key', { Key_stream_ID: id, index: 0 });
    expect(repeat.body).toMatchObject({ status: 0, index: 0, Key_buffer: first.body.Key_buffer });
    // ...until the application takes a later index: then the key is gone.
    expect((await post(appA, 'get_key', { Key_stream_ID: id, index: 1 })).body.status).toBe(0);
    const t0 = Date.now();
    const again = await post(appA, 'get_key', { Key_stream_ID: id, index: 0 });
    expect(again.body).toMatchObject({ status: 2, Key_buffer: null, index: 0, message: expect.any(String) });
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('issue 13 point 13: when a GET_KEY is repeated with the same Idempotency-Key (its answer was lost), then the same key and index come back', async () => {
    const { appA, appB } = await setup();
    const id = await openBoth(appA, appB);
    const ask = (token: string) => request(appA).post(`${BASE}/get_key`).set('idempotency-key', token).send({ Key_stream_ID: id, index: -1 });
    const first = await ask('c0ffee-1');
    expect(first.body).toMatchObject({ status: 0, index: 0 });
    const repeat = await ask('c0ffee-1');
    expect(repeat.body).toMatchObject({ status: 0, index: 0, Key_buffer: first.body.Key_buffer });
    expect((await ask('c0ffee-2')).body).toMatchObject({ status: 0, index: 1 });
    const peer = await post(appB, 'get_key', { Key_stream_ID: id, index: 0 });
    expect(peer.body.Key_buffer).toBe(first.body.Key_buffer);
  });

  it('when the Idempotency-Key header is malformed, then 400 names the header and no key is taken', async () => {
    const { appA, appB } = await setup();
    const id = await openBoth(appA, appB);
    for (const bad of ['x'.repeat(129), 'has space']) {
      const res = await request(appA).post(`${BASE}/get_key`).set('idempotency-key', bad).send({ Key_stream_ID: id, index: -1 });
      expect(res.status).toBe(400);
      expect(res.body.message).toMatch(/^Idempotency-Key: must be 1 to 128 visible ASCII characters/);
      expect(JSON.stringify(res.body)).not.toContain(bad);
    }
    expect((await post(appA, 'get_key', { Key_stream_ID: id, index: -1 })).body).toMatchObject({ status: 0, index: 0 });
  });

  it('when no key comes within the stream Timeout, then status 6 after waiting that long', async () => {
    const { appA, appB } = await setup();
    const id = await openBoth(appA, appB, { Timeout: 300 });
    const t0 = Date.now();
    const res = await post(appA, 'get_key', { Key_stream_ID: id, index: 999_999 });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 6, Key_buffer: null, index: 999_999 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(280);
  });

  it('when the stream is unknown, then GET_KEY and CLOSE answer status 4 with HTTP 200', async () => {
    const { appA } = await setup();
    const g = await post(appA, 'get_key', { Key_stream_ID: UNKNOWN_ID });
    expect(g.status).toBe(200);
    expect(g.body).toMatchObject({ status: 4, message: expect.stringMatching(/unknown Key_stream_ID/) });
    const c = await post(appA, 'close', { Key_stream_ID: UNKNOWN_ID });
    expect(c.status).toBe(200);
    expect(c.body).toMatchObject({ status: 4 });
  });

  it('when a stream is closed, then its stored keys are still delivered and afterwards status 2 comes at once', async () => {
    const { appA, appB, alice } = await setup({ maxKeyCount: 3 });
    const id = await openBoth(appA, appB);
    await expect.poll(() => alice.manager.available(id)).toBe(3);
    expect((await post(appB, 'close', { Key_stream_ID: id })).body).toEqual({ status: 0 });
    for (let i = 0; i < 3; i++) expect((await post(appA, 'get_key', { Key_stream_ID: id })).body.status).toBe(0);
    expect((await post(appA, 'get_key', { Key_stream_ID: id })).body.status).toBe(2);
  });
});

describe('ETSI 004 and the seed API on one stream', () => {
  const py = (app: App, path: string, body: string) =>
    request(app)
      .post(path)
      .set('content-type', '')
      .send(body)
      .buffer(true)
      .parse((res, cb) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => cb(null, text));
      });

  it('when a stream is opened via ETSI 004 at one end and via the seed API at the other, then either binding reads it', async () => {
    const { appA, appB } = await setup();
    const a = await post(appA, 'open_connect', { source: APP_A, destination: APP_B, QoS: qos({ Key_chunk_size: 16 }) });
    const id = a.body.Key_stream_ID as string;
    const b = await py(appB, '/open_connect', `['app-b', '127.0.0.1:5000', {'timeout': 2000, 'length': 128}, '${id}']`);
    expect(parsePyLiteral(String(b.body))).toEqual([id, 0]);
    // Alice reads through the seed API, Bob through ETSI 004, and the other way round.
    const seedA = parsePyLiteral(String((await py(appA, '/get_key', `['${id}', -1, {}]`).set('prefer', 'wait=5')).body)) as [Uint8Array, number, number];
    const etsiB = await post(appB, 'get_key', { Key_stream_ID: id, index: seedA[1] });
    expect(seedA[2]).toBe(0);
    expect(etsiB.body.status).toBe(0);
    expect(etsiB.body.Key_buffer).toBe(Buffer.from(seedA[0]).toString('base64'));
    const etsiA = await post(appA, 'get_key', { Key_stream_ID: id });
    const seedB = await request(appB).post('/get_key').send({ Key_stream_ID: id, index: etsiA.body.index });
    expect(seedB.body).toEqual({ key: etsiA.body.Key_buffer, index: etsiA.body.index, status: 0 });
    // The seed routes keep their own status numbers on a stream ETSI 004 opened.
    const seedRepeat = await py(appA, '/open_connect', `['x', '127.0.0.1:5001', {'timeout': 100, 'length': 128}, '${id}']`);
    expect(seedRepeat.status).toBe(400);
    expect(parsePyLiteral(String(seedRepeat.body))).toEqual([id, 3]);
  });

  it('when a stream is opened via the seed API first, then the peer joins via ETSI 004 and reads the same keys', async () => {
    const { appA, appB } = await setup();
    const a = await request(appA).post('/open_connect').send({ source: 'legacy', destination: '127.0.0.1:5001', qos: { timeout: 2000, length: 256 }, Key_stream_ID: null });
    const id = a.body.Key_stream_ID as string;
    const b = await post(appB, 'open_connect', { source: APP_B, destination: APP_A, QoS: qos(), Key_stream_ID: id });
    expect(b.body).toMatchObject({ Key_stream_ID: id, status: 0, QoS: { Key_chunk_size: 32 } });
    const seedA = await request(appA).post('/get_key').send({ Key_stream_ID: id, index: -1 });
    const etsiB = await post(appB, 'get_key', { Key_stream_ID: id, index: seedA.body.index });
    expect(etsiB.body).toMatchObject({ status: 0, Key_buffer: seedA.body.key, index: seedA.body.index });
  });
});

describe('ETSI 004 TTL', () => {
  it('when keys are older than the TTL, then they are erased at both ends through the key store and never delivered', async () => {
    const { alice, bob, appA, appB } = await setup({ maxKeyCount: 4 });
    const id = await openBoth(appA, appB, { TTL: 1, Key_chunk_size: 16 });
    await expect.poll(() => alice.manager.available(id)).toBe(4);
    await expect.poll(() => bob.manager.available(id)).toBe(4);
    expect(alice.keys.keys.get(id)?.has(0)).toBe(true);
    const takes = { alice: 0, bob: 0 };
    const countTakes = (side: Side, who: 'alice' | 'bob') => {
      const take = side.keys.take.bind(side.keys);
      side.keys.take = async (s, i) => {
        takes[who]++;
        return take(s, i);
      };
    };
    countTakes(alice, 'alice');
    countTakes(bob, 'bob');
    await expect.poll(() => alice.keys.keys.get(id)?.has(0), { timeout: 3000 }).toBe(false);
    await expect.poll(() => bob.keys.keys.get(id)?.has(0), { timeout: 3000 }).toBe(false);
    expect(takes.alice).toBeGreaterThanOrEqual(4);
    expect(takes.bob).toBeGreaterThanOrEqual(4);
    const gone = await post(appA, 'get_key', { Key_stream_ID: id, index: 0 });
    expect(gone.body.status).toBe(2);
    // Erasure made room: the exchange refilled the stream with fresh keys.
    const fresh = await post(appA, 'get_key', { Key_stream_ID: id, Metadata: { Metadata_size: 200 } });
    expect(fresh.body.status).toBe(0);
    expect(fresh.body.index).toBeGreaterThanOrEqual(4);
    expect(JSON.parse(fresh.body.Metadata.Metadata_buffer).age_ms).toBeLessThan(1000);
  });
});

describe('ETSI 004 malformed bodies', () => {
  it('when a body is malformed, then 400 names the field and nothing runs', async () => {
    const { alice, appA } = await setup();
    const open = (body: unknown) => post(appA, 'open_connect', body);
    const cases: Array<[string, unknown, RegExp]> = [
      ['open_connect', '{"source": ', /not valid JSON/],
      ['open_connect', [APP_A, APP_B, qos(), null], /^body: expected a JSON object with fields source, destination, QoS, Key_stream_ID/],
      ['open_connect', { destination: APP_B, QoS: qos() }, /^source: /],
      ['open_connect', { source: APP_A, destination: 'ftp://h:1', QoS: qos() }, /^destination: must be the peer module/],
      ['open_connect', { source: APP_A, destination: 'qkd://app@host', QoS: qos() }, /^destination: /],
      ['open_connect', { source: APP_A, destination: APP_B, QoS: qos({ Key_chunk_size: -1 }) }, /^QoS\.Key_chunk_size: must not be negative/],
      ['open_connect', { source: APP_A, destination: APP_B, QoS: qos({ Key_chunk_size: 1.5 }) }, /^QoS\.Key_chunk_size: must be an integer/],
      ['open_connect', { source: APP_A, destination: APP_B, QoS: qos({ Key_chunk_size: '32' }) }, /^QoS\.Key_chunk_size: must be a number of bytes/],
      ['open_connect', { source: APP_A, destination: APP_B, QoS: qos({ TTL: 2 ** 32 }) }, /^QoS\.TTL: must be at most 4294967295/],
      ['open_connect', { source: APP_A, destination: APP_B, QoS: qos({ ttl: 5 }) }, /^QoS: 1 unknown field \(names not repeated\)$/],
      ['open_connect', { source: APP_A, destination: APP_B, QoS: qos(), Key_stream_ID: 'nope' }, /^Key_stream_ID: must be a UUID/],
      ['get_key', { Key_stream_ID: 'nope' }, /^Key_stream_ID: must be a UUID/],
      ['get_key', { Key_stream_ID: UNKNOWN_ID, index: -2 }, /^index: must be -1 or a key index/],
      ['get_key', { Key_stream_ID: UNKNOWN_ID, Metadata: { Metadata_size: 'big' } }, /^Metadata\.Metadata_size: /],
      ['get_key', { Key_stream_ID: UNKNOWN_ID, Metadata: 5 }, /^Metadata: expected a JSON object/],
      ['get_key', '', /^body: expected a JSON object/],
      ['close', {}, /^Key_stream_ID: /],
    ];
    for (const [route, body, message] of cases) {
      const res =
        typeof body === 'string'
          ? await request(appA).post(`${BASE}/${route}`).set('content-type', 'application/json').send(body)
          : await post(appA, route, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.code, JSON.stringify(body)).toBe('BAD_REQUEST');
      expect(res.body.message, JSON.stringify(body)).toMatch(message);
    }
    expect(alice.manager.summaries()).toHaveLength(0);
    expect((await open({ source: APP_A, destination: APP_B, QoS: qos() })).status).toBe(200);
  });
});
