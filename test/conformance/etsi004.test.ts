/**
 * ETSI GS QKD 004 v2.1.1 conformance (JSON binding, /etsi004/v2.1.1), organised by the standard's
 * functions (OPEN_CONNECT, GET_KEY, CLOSE), its status code table and its metadata table. Sub-clause
 * and table numbers could not be checked against an independent copy of the standard, so tests cite
 * the function or table by title; quotes are the short phrases of ../shared/docs/standards.md.
 *
 * Alice and Bob in one process (test/support/pair.ts), one app each; every answer is validated with
 * the exported zod schemas of src/api/etsi004Schemas.ts. Keys are compared, never printed.
 */
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.js';
import {
  etsi004CloseAnswerSchema,
  etsi004GetKeyAnswerSchema,
  etsi004KeyMetadataSchema,
  etsi004OpenConnectAnswerSchema,
  type Etsi004GetKeyAnswer,
  type Etsi004OpenConnectAnswer,
} from '../../src/api/etsi004Schemas.js';
import { buildPair, silentLog, type PairOptions, type Side } from '../support/pair.js';
import { UUID_RE, isStrictBase64 } from './support.js';

const BASE = '/etsi004/v2.1.1';
const APP_A = 'qkd://app-a@127.0.0.1:5000';
const APP_B = 'qkd://app-b@127.0.0.1:5001';
const UNKNOWN_ID = '6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab';

type App = ReturnType<typeof createApp>;
interface Pair {
  alice: Side;
  bob: Side;
  appA: App;
  appB: App;
}
let stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops) await s();
  stops = [];
});

async function setup(opts: PairOptions = {}): Promise<Pair> {
  const p = await buildPair({ maxKeyCount: 10, ...opts });
  stops.push(p.stop);
  const appA = createApp({ manager: p.alice.manager, exchange: p.alice.exchange, log: silentLog, requestLog: false });
  const appB = createApp({ manager: p.bob.manager, exchange: p.bob.exchange, log: silentLog, requestLog: false });
  return { alice: p.alice, bob: p.bob, appA, appB };
}

const post = (app: App, route: string, body: unknown) => request(app).post(`${BASE}/${route}`).set('content-type', 'application/json').send(JSON.stringify(body));

/** OPEN_CONNECT answered with HTTP 200 and validated. */
async function openConnect(app: App, body: Record<string, unknown>): Promise<Etsi004OpenConnectAnswer> {
  const res = await post(app, 'open_connect', body);
  expect(res.status, `open_connect ${JSON.stringify(body)}`).toBe(200);
  return etsi004OpenConnectAnswerSchema.parse(res.body);
}
async function getKey(app: App, body: Record<string, unknown>): Promise<Etsi004GetKeyAnswer> {
  const res = await post(app, 'get_key', body);
  expect(res.status, `get_key ${JSON.stringify({ ...body })}`).toBe(200);
  return etsi004GetKeyAnswerSchema.parse(res.body);
}
async function close(app: App, id: string) {
  const res = await post(app, 'close', { Key_stream_ID: id });
  expect(res.status).toBe(200);
  return etsi004CloseAnswerSchema.parse(res.body);
}
const qos = (o: Record<string, unknown> = {}) => ({ Key_chunk_size: 32, Timeout: 2000, ...o });
/** A GET_KEY answer for assertions whose failure output is printed: the key itself is masked. */
const view = (a: Etsi004GetKeyAnswer) => ({ ...a, Key_buffer: a.Key_buffer === null ? null : '<key, not printed>' });

/** A opens with a NULL Key_stream_ID (status 1), B joins with it (status 0). */
async function openBoth(p: Pair, q: Record<string, unknown> = {}): Promise<string> {
  const a = await openConnect(p.appA, { source: APP_A, destination: APP_B, QoS: qos(q), Key_stream_ID: null });
  expect(a.status).toBe(1);
  const id = a.Key_stream_ID!;
  const b = await openConnect(p.appB, { source: APP_B, destination: APP_A, QoS: qos(q), Key_stream_ID: id });
  expect(b.status).toBe(0);
  return id;
}

// ----------------------------------------------------------------------------------------------
describe('004 OPEN_CONNECT', () => {
  it('004 OPEN_CONNECT Key_stream_ID: "NULL asks the key manager to allocate one" → a fresh UUID for each call', async () => {
    const p = await setup();
    const first = await openConnect(p.appA, { source: APP_A, destination: APP_B, QoS: qos(), Key_stream_ID: null });
    const absent = await openConnect(p.appA, { source: APP_A, destination: APP_B, QoS: qos() });
    for (const a of [first, absent]) {
      expect(a.Key_stream_ID).toMatch(UUID_RE);
      expect(a.status).toBe(1);
    }
    expect(first.Key_stream_ID).not.toBe(absent.Key_stream_ID);
  });

  it('004 OPEN_CONNECT: "the peer application then opens with the same ID" → status 0 with that Key_stream_ID, and the opener then reports 0 too', async () => {
    const p = await setup();
    const a = await openConnect(p.appA, { source: APP_A, destination: APP_B, QoS: qos(), Key_stream_ID: null });
    const id = a.Key_stream_ID!;
    const b = await openConnect(p.appB, { source: APP_B, destination: APP_A, QoS: qos(), Key_stream_ID: id });
    expect(b).toMatchObject({ Key_stream_ID: id, status: 0 });
    expect(b.message).toBeUndefined();
    expect((await openConnect(p.appA, { source: APP_A, destination: APP_B, QoS: qos(), Key_stream_ID: id })).status).toBe(0);
  });

  it('004 OPEN_CONNECT QoS: fields the application leaves null or out are filled by the KM → the answer carries the QoS the stream uses', async () => {
    const p = await setup();
    const a = await openConnect(p.appA, {
      source: APP_A,
      destination: APP_B,
      QoS: { Key_chunk_size: null, Max_bps: null, Min_bps: null, Jitter: null, Priority: null, Timeout: null, TTL: null, Metadata_mimetype: null },
    });
    expect(a).toMatchObject({ status: 1, QoS: { Key_chunk_size: 32, Max_bps: 0, Min_bps: 0, Jitter: 0, Priority: 0, Timeout: 5000, TTL: 0, Metadata_mimetype: 'application/json' } });
    const noQos = await openConnect(p.appA, { source: APP_A, destination: APP_B });
    expect(noQos.QoS).toEqual(a.QoS);
  });

  it('004 OPEN_CONNECT QoS: the peer application may join without QoS → it joins with the stream\'s QoS and gets keys of its Key_chunk_size', async () => {
    const p = await setup();
    const a = await openConnect(p.appA, { source: APP_A, destination: APP_B, QoS: qos({ Key_chunk_size: 64, Timeout: 1500 }) });
    const b = await openConnect(p.appB, { source: APP_B, destination: APP_A, Key_stream_ID: a.Key_stream_ID });
    expect(b).toMatchObject({ status: 0, QoS: { Key_chunk_size: 64, Timeout: 1500 } });
    const ka = await getKey(p.appA, { Key_stream_ID: a.Key_stream_ID });
    const kb = await getKey(p.appB, { Key_stream_ID: a.Key_stream_ID, index: ka.index });
    expect(Buffer.from(ka.Key_buffer!, 'base64').length).toBe(64);
    expect(kb.Key_buffer === ka.Key_buffer).toBe(true);
  });

  it('004 OPEN_CONNECT QoS Key_chunk_size: "Key_chunk_size (bytes)" → every key of the stream has Key_chunk_size bytes', async () => {
    const p = await setup();
    for (const size of [1, 16, 128]) {
      const id = await openBoth(p, { Key_chunk_size: size });
      const k = await getKey(p.appA, { Key_stream_ID: id });
      expect(k.status).toBe(0);
      expect(Buffer.from(k.Key_buffer!, 'base64').length, `Key_chunk_size ${size}`).toBe(size);
    }
  });

  it('004 OPEN_CONNECT source/destination: "URI strings" → qkd:// URIs, host:port and http URLs are accepted; a destination naming no peer module is 400', async () => {
    const p = await setup();
    for (const destination of [APP_B, '127.0.0.1:5001', 'http://127.0.0.1:5001']) {
      expect((await openConnect(p.appA, { source: APP_A, destination, QoS: qos() })).status, destination).toBe(1);
    }
    for (const destination of ['ftp://h:1', 'qkd://app@host', '']) {
      const res = await post(p.appA, 'open_connect', { source: APP_A, destination, QoS: qos() });
      expect(res.status, destination).toBe(400);
      expect(res.body).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(/^destination: /) });
    }
  });
});

// ----------------------------------------------------------------------------------------------
describe('004 GET_KEY', () => {
  it('004 GET_KEY: "Both ends get the same key for the same (Key_stream_ID, index)" → identical keys at Alice and Bob, index by index', async () => {
    const p = await setup();
    const id = await openBoth(p);
    const fromA: Etsi004GetKeyAnswer[] = [];
    for (let i = 0; i < 5; i++) fromA.push(await getKey(p.appA, { Key_stream_ID: id, index: -1 }));
    for (const a of fromA) {
      expect(a.status).toBe(0);
      expect(isStrictBase64(a.Key_buffer!)).toBe(true);
      const b = await getKey(p.appB, { Key_stream_ID: id, index: a.index });
      expect(b.status).toBe(0);
      expect(b.index).toBe(a.index);
      expect(b.Key_buffer === a.Key_buffer, `index ${a.index}`).toBe(true);
    }
    expect(new Set(fromA.map((a) => a.Key_buffer)).size).toBe(5);
  });

  it('004 GET_KEY index: -1 or absent → the lowest key not yet delivered at this end, in increasing order', async () => {
    const p = await setup();
    const id = await openBoth(p);
    const x = await getKey(p.appA, { Key_stream_ID: id, index: -1 });
    const y = await getKey(p.appA, { Key_stream_ID: id });
    const z = await getKey(p.appA, { Key_stream_ID: id, index: -1 });
    expect([x.index, y.index, z.index]).toEqual([0, 1, 2]);
    // Asking a later index first leaves the lower ones for -1.
    const later = await getKey(p.appB, { Key_stream_ID: id, index: 2 });
    expect(later.Key_buffer === z.Key_buffer).toBe(true);
    const lowest = await getKey(p.appB, { Key_stream_ID: id });
    expect(lowest.index).toBe(0);
    expect(lowest.Key_buffer === x.Key_buffer).toBe(true);
  });

  it('004 GET_KEY Timeout: "the call is abandoned after it" → a key that does not come within the stream Timeout ends the call after about Timeout ms', async () => {
    const p = await setup();
    const id = await openBoth(p, { Timeout: 400 });
    const t0 = Date.now();
    const res = await getKey(p.appA, { Key_stream_ID: id, index: 1_000_000 });
    const took = Date.now() - t0;
    expect(res.status).toBe(6);
    expect(took).toBeGreaterThanOrEqual(380);
    expect(took).toBeLessThan(400 + 2000);
  });

  it('004 GET_KEY: a store failure is HTTP 503 {code, message} and delivers nothing → the same key is delivered once the store is back', async () => {
    const p = await setup();
    const id = await openBoth(p);
    p.alice.keys.failTakes = true;
    const down = await post(p.appA, 'get_key', { Key_stream_ID: id, index: 0 });
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({ code: 'STORE_UNAVAILABLE', message: expect.any(String) });
    p.alice.keys.failTakes = false;
    const a = await getKey(p.appA, { Key_stream_ID: id, index: 0 });
    const b = await getKey(p.appB, { Key_stream_ID: id, index: 0 });
    expect(a.status).toBe(0);
    expect(a.Key_buffer === b.Key_buffer).toBe(true);
  });

  it('004 GET_KEY and CLOSE: a malformed request is HTTP 400 naming the field, and nothing runs', async () => {
    const p = await setup();
    const cases: Array<[string, unknown, RegExp]> = [
      ['get_key', { Key_stream_ID: 'nope' }, /^Key_stream_ID: must be a UUID/],
      ['get_key', { Key_stream_ID: UNKNOWN_ID, index: -2 }, /^index: must be -1 or a key index/],
      ['get_key', { Key_stream_ID: UNKNOWN_ID, Metadata: { Metadata_size: -1 } }, /^Metadata\.Metadata_size: /],
      ['get_key', { Key_stream_ID: UNKNOWN_ID, ttl: 1 }, /unknown field/],
      ['close', {}, /^Key_stream_ID: /],
      ['open_connect', { source: APP_A, destination: APP_B, QoS: qos({ TTL: 2 ** 32 }) }, /^QoS\.TTL: must be at most 4294967295/],
    ];
    for (const [route, body, message] of cases) {
      const res = await post(p.appA, route, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body, JSON.stringify(body)).toEqual({ code: 'BAD_REQUEST', message: expect.stringMatching(message) });
    }
    expect(p.alice.manager.summaries()).toHaveLength(0);
  });
});

// ----------------------------------------------------------------------------------------------
describe('004 CLOSE', () => {
  it('004 CLOSE: after CLOSE at both ends no key is handed out at either end, and the unused keys are erased', async () => {
    const p = await setup();
    const id = await openBoth(p);
    await expect.poll(() => p.bob.manager.available(id), { timeout: 3000 }).toBeGreaterThan(0);
    expect(await close(p.appA, id)).toEqual({ status: 0 });
    expect(await close(p.appB, id)).toEqual({ status: 0 });
    for (const app of [p.appA, p.appB]) {
      const k = await getKey(app, { Key_stream_ID: id });
      expect(k.Key_buffer).toBeNull();
      expect(k.status).not.toBe(0);
    }
    expect(p.alice.keys.keys.get(id)?.size ?? 0).toBe(0);
    expect(p.bob.keys.keys.get(id)?.size ?? 0).toBe(0);
  });

  it('004 CLOSE: closing one end stops the exchange; the other application still gets the keys its end holds, then status 2', async () => {
    const p = await setup({ maxKeyCount: 3 });
    const id = await openBoth(p);
    await expect.poll(() => p.alice.manager.available(id)).toBe(3);
    expect(await close(p.appB, id)).toEqual({ status: 0 });
    for (let i = 0; i < 3; i++) expect((await getKey(p.appA, { Key_stream_ID: id })).status).toBe(0);
    expect((await getKey(p.appA, { Key_stream_ID: id })).status).toBe(2);
  });

  it('004 CLOSE: closing a closed stream again answers 0', async () => {
    const p = await setup();
    const id = await openBoth(p);
    expect(await close(p.appA, id)).toEqual({ status: 0 });
    expect(await close(p.appA, id)).toEqual({ status: 0 });
  });
});

// ----------------------------------------------------------------------------------------------
describe('004 status codes', () => {
  it('004 status 0 "successful" → OPEN_CONNECT, GET_KEY and CLOSE that succeed answer 0 without a message', async () => {
    const p = await setup();
    const id = await openBoth(p);
    const k = await getKey(p.appA, { Key_stream_ID: id });
    expect(k.status).toBe(0);
    expect(k.message).toBeUndefined();
    expect(Buffer.from(k.Key_buffer!, 'base64').length).toBe(32);
    expect(await close(p.appA, id)).toEqual({ status: 0 });
  });

  it('004 status 1 "successful connection, but peer not connected" → OPEN_CONNECT before the peer application opened the Key_stream_ID', async () => {
    const p = await setup();
    const a = await openConnect(p.appA, { source: APP_A, destination: APP_B, QoS: qos() });
    expect(a.status).toBe(1);
    expect(a.message).toMatch(/peer application/);
    // Repeated by the same application while the peer has not joined: still 1.
    expect((await openConnect(p.appA, { source: APP_A, destination: APP_B, QoS: qos(), Key_stream_ID: a.Key_stream_ID })).status).toBe(1);
  });

  it('004 status 2 "GET_KEY failed: insufficient key available" → no key can come any more (the stream is closed and this end holds none), answered at once', async () => {
    const p = await setup({ maxKeyCount: 2 });
    const id = await openBoth(p);
    await expect.poll(() => p.alice.manager.available(id)).toBe(2);
    expect(await close(p.appB, id)).toEqual({ status: 0 });
    for (let i = 0; i < 2; i++) expect((await getKey(p.appA, { Key_stream_ID: id })).status).toBe(0);
    const t0 = Date.now();
    const none = await getKey(p.appA, { Key_stream_ID: id });
    expect(view(none)).toMatchObject({ status: 2, Key_buffer: null });
    expect(none.message).toEqual(expect.any(String));
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('004 status 3 "GET_KEY failed: peer application is not yet connected" → GET_KEY before the peer application opened, answered at once', async () => {
    const p = await setup();
    const a = await openConnect(p.appA, { source: APP_A, destination: APP_B, QoS: qos() });
    const t0 = Date.now();
    const k = await getKey(p.appA, { Key_stream_ID: a.Key_stream_ID, index: -1 });
    expect(view(k)).toMatchObject({ status: 3, Key_buffer: null });
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('004 status 4 "no QKD connection available" → OPEN_CONNECT to an unreachable peer module registers nothing; GET_KEY/CLOSE on an unknown Key_stream_ID', async () => {
    const p = await setup();
    p.alice.peer.down = true;
    const a = await openConnect(p.appA, { source: APP_A, destination: APP_B, QoS: qos() });
    expect(a).toMatchObject({ Key_stream_ID: null, status: 4 });
    expect(p.alice.manager.summaries()).toHaveLength(0);
    p.alice.peer.down = false;
    expect((await getKey(p.appA, { Key_stream_ID: UNKNOWN_ID })).status).toBe(4);
    expect((await close(p.appA, UNKNOWN_ID)).status).toBe(4);
  });

  it('004 status 5 "OPEN_CONNECT failed: Key_stream_ID already in use" → another application (other endpoints) opening an ID open here', async () => {
    const p = await setup();
    const id = await openBoth(p);
    const intruder = await openConnect(p.appA, { source: 'qkd://intruder@127.0.0.1:5000', destination: APP_B, QoS: qos(), Key_stream_ID: id });
    expect(intruder).toMatchObject({ Key_stream_ID: id, status: 5 });
    // The stream still serves its own applications.
    const k = await getKey(p.appA, { Key_stream_ID: id });
    expect(k.status).toBe(0);
  });

  it('004 status 6 "call failed: TIMEOUT exceeded" → GET_KEY for a key that may still come waits the stream Timeout, then 6', async () => {
    const p = await setup();
    const id = await openBoth(p, { Timeout: 300 });
    const t0 = Date.now();
    const k = await getKey(p.appA, { Key_stream_ID: id, index: 999_999 });
    expect(view(k)).toMatchObject({ status: 6, Key_buffer: null, index: 999_999 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(280);
  });

  it('004 status 7 "QoS could not be met; a counter-proposal is returned" → the answer\'s QoS is one the module accepts, and nothing is registered', async () => {
    const p = await setup();
    const cases: Array<[Record<string, unknown>, Record<string, unknown>]> = [
      [{ Key_chunk_size: 0 }, { Key_chunk_size: 1 }],
      [{ Key_chunk_size: 4096 }, { Key_chunk_size: 1024 }],
      [{ Timeout: 700_000 }, { Timeout: 600_000 }],
      [{ Metadata_mimetype: 'text/xml' }, { Metadata_mimetype: 'application/json' }],
      [{ Min_bps: 5000, Max_bps: 1000 }, { Max_bps: 5000 }],
    ];
    for (const [asked, counter] of cases) {
      const res = await openConnect(p.appA, { source: APP_A, destination: APP_B, QoS: qos(asked) });
      expect(res.status, JSON.stringify(asked)).toBe(7);
      expect(res.QoS, JSON.stringify(asked)).toMatchObject(counter);
      // The counter-proposal, sent back as is, is accepted.
      const accepted = await openConnect(p.appA, { source: APP_A, destination: APP_B, QoS: res.QoS });
      expect(accepted.status, `counter-proposal for ${JSON.stringify(asked)}`).toBe(1);
    }
    expect(p.alice.manager.summaries()).toHaveLength(cases.length);
  });

  it('004 status 8 "metadata buffer too small; the needed size is returned" → Metadata_size is the size needed, and the key stays deliverable', async () => {
    const p = await setup();
    const id = await openBoth(p);
    const small = await getKey(p.appA, { Key_stream_ID: id, Metadata: { Metadata_size: 10 } });
    expect(view(small)).toMatchObject({ status: 8, Key_buffer: null, index: 0, Metadata: { Metadata_buffer: null } });
    const needed = small.Metadata.Metadata_size;
    expect(needed).toBeGreaterThan(10);
    const enough = await getKey(p.appA, { Key_stream_ID: id, Metadata: { Metadata_size: needed + 16 } });
    expect(view(enough)).toMatchObject({ status: 0, index: 0 });
    expect(enough.Metadata.Metadata_size).toBeLessThanOrEqual(needed + 16);
  });
});

// ----------------------------------------------------------------------------------------------
describe('004 metadata', () => {
  it('004 metadata: "{Metadata_size, Metadata_buffer} filled by GET_KEY when asked" → Metadata_size is the byte length of the buffer, of the stream\'s Metadata_mimetype (application/json)', async () => {
    const p = await setup();
    const id = await openBoth(p);
    const k = await getKey(p.appA, { Key_stream_ID: id, Metadata: { Metadata_size: 1024 } });
    expect(k.status).toBe(0);
    expect(k.Metadata.Metadata_buffer).not.toBeNull();
    expect(k.Metadata.Metadata_size).toBe(Buffer.byteLength(k.Metadata.Metadata_buffer!, 'utf8'));
    expect(() => JSON.parse(k.Metadata.Metadata_buffer!)).not.toThrow();
  });

  it('004 metadata table: "age" and "hops" → age in ms since the key was stored (at most the time since OPEN_CONNECT), hops 1 for a key of this link', async () => {
    const p = await setup();
    const t0 = Date.now();
    const id = await openBoth(p);
    await new Promise((r) => setTimeout(r, 150));
    const k = await getKey(p.appA, { Key_stream_ID: id, Metadata: { Metadata_size: 1024 } });
    const meta = etsi004KeyMetadataSchema.parse(JSON.parse(k.Metadata.Metadata_buffer!));
    expect(meta.hops).toBe(1);
    expect(meta.age).not.toBeNull();
    expect(meta.age!).toBeGreaterThanOrEqual(100);
    expect(meta.age!).toBeLessThanOrEqual(Date.now() - t0);
  });

  it('004 metadata: not asked (Metadata absent or Metadata_size 0), or an empty Metadata_mimetype → the key with no metadata', async () => {
    const p = await setup();
    const id = await openBoth(p);
    for (const body of [{ Key_stream_ID: id }, { Key_stream_ID: id, Metadata: { Metadata_size: 0 } }]) {
      const k = await getKey(p.appA, body);
      expect(view(k)).toMatchObject({ status: 0, Metadata: { Metadata_size: 0, Metadata_buffer: null } });
    }
    const a = await openConnect(p.appA, { source: APP_A, destination: APP_B, QoS: qos({ Metadata_mimetype: '' }) });
    await openConnect(p.appB, { source: APP_B, destination: APP_A, QoS: qos(), Key_stream_ID: a.Key_stream_ID });
    const none = await getKey(p.appA, { Key_stream_ID: a.Key_stream_ID, Metadata: { Metadata_size: 1024 } });
    expect(view(none)).toMatchObject({ status: 0, Metadata: { Metadata_size: 0, Metadata_buffer: null } });
  });
});

// ----------------------------------------------------------------------------------------------
describe('004 QoS TTL', () => {
  it('004 QoS TTL: "keys of the stream are erased after it" → a key older than TTL is never delivered (status 2), and fresh keys follow', async () => {
    const p = await setup({ maxKeyCount: 4 });
    const id = await openBoth(p, { TTL: 1, Key_chunk_size: 16 });
    await expect.poll(() => p.alice.manager.available(id)).toBe(4);
    await expect.poll(() => p.alice.keys.keys.get(id)?.has(0), { timeout: 3000 }).toBe(false);
    await expect.poll(() => p.bob.keys.keys.get(id)?.has(0), { timeout: 3000 }).toBe(false);
    for (const app of [p.appA, p.appB]) expect((await getKey(app, { Key_stream_ID: id, index: 0 })).status).toBe(2);
    const fresh = await getKey(p.appA, { Key_stream_ID: id });
    expect(fresh.status).toBe(0);
    expect(fresh.index).toBeGreaterThanOrEqual(4);
    const other = await getKey(p.appB, { Key_stream_ID: id, index: fresh.index });
    expect(other.Key_buffer === fresh.Key_buffer).toBe(true);
  });
});
