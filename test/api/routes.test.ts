/**
 * HTTP layer: every route, both wire formats (Python literal and JSON, array and object shapes),
 * every bad-input path. Alice's app runs over an in-memory peer to Bob (no sockets between them).
 */
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.js';
import { parsePyLiteral, type PyValue } from '../../src/api/codec/pyLiteral.js';
import { buildPair, silentLog, type Side } from '../support/pair.js';

let alice: Side;
let bob: Side;
let stop: () => Promise<void>;
let appA: ReturnType<typeof createApp>;
let appB: ReturnType<typeof createApp>;

beforeEach(async () => {
  const p = await buildPair({ maxKeyCount: 10 });
  ({ alice, bob, stop } = p);
  appA = createApp({ manager: alice.manager, exchange: alice.exchange, log: silentLog, requestLog: false });
  appB = createApp({ manager: bob.manager, exchange: bob.exchange, log: silentLog, requestLog: false });
});
afterEach(async () => stop());

/** Sends a raw body with no Content-Type, as the original clients do. */
function py(app: ReturnType<typeof createApp>, path: string, body: string) {
  return request(app).post(path).set('content-type', '').send(body).buffer(true).parse((res, cb) => {
    let text = '';
    res.on('data', (c: Buffer) => (text += c.toString()));
    res.on('end', () => cb(null, text));
  });
}

function pyValue(text: unknown): PyValue {
  return parsePyLiteral(String(text));
}

async function openPy(): Promise<string> {
  const a = await py(appA, '/open_connect', "[None, '127.0.0.1:5001', {'timeout': 2000, 'length': 128}, None]");
  expect(a.status).toBe(200);
  const [id, status] = pyValue(a.body) as [string, number];
  expect(status).toBe(0);
  const b = await py(appB, '/open_connect', `['app-b', '127.0.0.1:5000', {'timeout': 2000, 'length': 128}, '${id}']`);
  expect(pyValue(b.body)).toEqual([id, 0]);
  return id;
}

describe('seed API, Python-literal wire format', () => {
  it('when a legacy client opens and fetches, then answers are Python literals with bytes keys', async () => {
    const id = await openPy();
    // A Python-literal get_key answers at once (as the original); Prefer: wait lets it wait for the first round.
    const ka = await py(appA, '/get_key', `['${id}', -1, {}]`).set('prefer', 'wait=5');
    const kb = await py(appB, '/api/v1/qkdm/actions/get_key', `['${id}', -1, {}]`).set('prefer', 'wait=5');
    expect(ka.headers['content-type']).toMatch(/text\/plain/);
    expect(String(ka.body)).toMatch(/^\[b'(\\x[0-9a-f]{2}){16}', 0, 0\]$/);
    expect(ka.body).toBe(kb.body);
    const [key] = pyValue(ka.body) as [Uint8Array];
    expect(key.length).toBe(16);
  });

  it('when close and available_keys are called the original way, then they answer 0 and [count]', async () => {
    const id = await openPy();
    await expect.poll(async () => pyValue((await py(appA, '/available_keys', '')).body), { timeout: 2000 }).toEqual([10]);
    expect(pyValue((await py(appA, '/available_keys', `['${id}']`)).body)).toEqual([10]);
    expect(pyValue((await py(appA, '/available_keys', '[None]')).body)).toEqual([10]);
    expect(pyValue((await request(appA).get(`/available_keys?handle=${id}`)).text)).toEqual([10]);
    // The renamed API's call, exactly as the key server builds it: '?handle=' + repr([handle]).
    for (const handle of [`['${id}']`, `["${id.toUpperCase()}"]`, encodeURIComponent(`['${id}']`), '[None]']) {
      const renamed = await request(appA).get(`/api/v1/qkdm/available_keys?handle=${handle}`);
      expect(renamed.status, handle).toBe(200);
      expect(pyValue(renamed.text), handle).toEqual([10]);
    }
    expect(pyValue((await py(appA, '/close', `['${id}']`)).body)).toBe(0);
    expect(pyValue((await py(appA, '/close', `'${id}'`)).body)).toBe(0);
  });

  it("when the body is hostile or malformed, then 400 with the original's answer (no message element) and the reason in X-QKDM-Message, never 500", async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['/open_connect', "__import__('os').system('id')", /Python literal/],
      ['/open_connect', '[None, ', /Python literal/],
      ['/open_connect', "[None, '127.0.0.1:5001', {'timeout': 10, 'length': 100}, None]", /qos\.length: must be a multiple of 8/],
      ['/open_connect', "[None, '127.0.0.1:5001', {'timeout': 10, 'length': -8}, None]", /qos\.length: must be positive/],
      ['/open_connect', "[None, '127.0.0.1:5001', {'timeout': 'soon', 'length': 128}, None]", /qos\.timeout/],
      ['/open_connect', "[None, '127.0.0.1:5001', {'timeout': 10}, None]", /qos\.length/],
      ['/open_connect', "[None, '127.0.0.1:5001', {'timeout': 10, 'length': 128}, 'not-a-uuid']", /Key_stream_ID: must be a UUID/],
      ['/open_connect', "[None, 'ftp://x:1', {'timeout': 10, 'length': 128}, None]", /destination/],
      ['/open_connect', '[1, 2]', /expected a list of 3 to 4 items/],
      ['/open_connect', "{'a': 1}", /destination/],
    ];
    for (const [path, body, message] of cases) {
      const res = await py(appA, path, body);
      expect(res.status, body).toBe(400);
      expect(pyValue(res.body), body).toEqual([null, 2]);
      expect(res.headers['x-qkdm-message'], body).toMatch(message);
    }
    const getKeyCases: Array<[string, RegExp]> = [
      ["['x', -1, {}]", /Key_stream_ID: must be a UUID/],
      ["['6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab', -2, {}]", /index: must be -1 or a key index/],
      ["['6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab', 1.5, {}]", /index: must be an integer/],
      ["['6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab']", /expected a list of 2 to 3 items/],
      ['None', /expected a list/],
    ];
    for (const [body, message] of getKeyCases) {
      const res = await py(appA, '/get_key', body);
      expect(res.status, body).toBe(400);
      expect(pyValue(res.body), body).toEqual([null, -1, 1]);
      expect(res.headers['x-qkdm-message'], body).toMatch(message);
    }
    const closeBad = await py(appA, '/close', '[42]');
    expect(closeBad.status).toBe(400);
    expect(pyValue(closeBad.body)).toBe(2);
    expect(closeBad.headers['x-qkdm-message']).toMatch(/Key_stream_ID/);
    for (const path of ['/available_keys?handle=nope', "/api/v1/qkdm/available_keys?handle=['nope']", '/api/v1/qkdm/available_keys?handle=[1]']) {
      const availBad = await request(appA).get(path);
      expect(availBad.status, path).toBe(400);
      expect(pyValue(availBad.text), path).toEqual([0]);
      expect(availBad.headers['x-qkdm-message'], path).toMatch(/handle: must be a UUID/);
      expect(availBad.headers['x-qkdm-message'], path).not.toContain('nope');
    }
  });

  it('when the stream is unknown, then get_key, close and available_keys answer 400 with the original arity, and the header says so without the ID', async () => {
    const unknown = '6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab';
    const g = await py(appA, '/get_key', `['${unknown}', 3, {}]`);
    expect(g.status).toBe(400);
    expect(pyValue(g.body)).toEqual([null, -1, 2]);
    expect(g.headers['x-qkdm-message']).toMatch(/no key stream with this Key_stream_ID/);
    expect(g.headers['x-qkdm-message']).not.toContain(unknown);
    const c = await py(appA, '/close', `['${unknown}']`);
    expect(c.status).toBe(400);
    expect(pyValue(c.body)).toBe(2);
    const a = await py(appA, '/available_keys', `['${unknown}']`);
    expect(a.status).toBe(400);
    expect(pyValue(a.body)).toEqual([0]);
    const renamed = await request(appA).get(`/api/v1/qkdm/available_keys?handle=['${unknown}']`);
    expect(renamed.status).toBe(400);
    expect(pyValue(renamed.text)).toEqual([0]);
    // JSON keeps this module's contract: the catalogue's HTTP status and a message.
    const j = await request(appA).post('/get_key').send({ Key_stream_ID: unknown, index: -1 });
    expect(j.status).toBe(404);
    expect(j.body).toEqual({ key: null, index: -1, status: 2, message: expect.stringMatching(/unknown Key_stream_ID/) });
  });

  it('when the stream is already open, then open_connect answers HANDLE_IN_USE (3)', async () => {
    const id = await openPy();
    const again = await py(appA, '/open_connect', `[None, '127.0.0.1:5001', {'timeout': 100, 'length': 128}, '${id}']`);
    expect(again.status).toBe(400);
    expect(pyValue(again.body)).toEqual([id, 3]);
    const json = await request(appA).post('/open_connect').send([null, '127.0.0.1:5001', { timeout: 100, length: 128 }, id]);
    expect(json.status).toBe(409);
    expect(json.body).toEqual([null, 3, expect.any(String)]);
  });

  it('when the peer is down, then open_connect answers HTTP 400 [None, 2] to a Python literal (as the original), HTTP 200 with status 2 to JSON', async () => {
    alice.peer.down = true;
    const res = await py(appA, '/open_connect', "[None, '127.0.0.1:5001', {'timeout': 100, 'length': 128}, None]");
    expect(res.status).toBe(400);
    expect(pyValue(res.body)).toEqual([null, 2]);
    expect(res.headers['x-qkdm-message']).toMatch(/peer module/);
    expect(res.headers['x-qkdm-message']).not.toContain('127.0.0.1');
    const json = await request(appA).post('/open_connect').send([null, '127.0.0.1:5001', { timeout: 100, length: 128 }, null]);
    expect(json.status).toBe(200);
    expect(json.body).toEqual([null, 2, expect.stringMatching(/no QKD connection to a peer module at/)]);
  });

  it('when the joining end asks another length, then it takes the stream\'s length (as the original overwrote it) and both ends get the same keys', async () => {
    const a = await py(appA, '/api/v1/qkdm/actions/open_connect', "[None, '127.0.0.1:5001', {'timeout': 2000, 'length': 256}, None]");
    const [id] = pyValue(a.body) as [string];
    const b = await py(appB, '/api/v1/qkdm/actions/open_connect', `[None, '127.0.0.1:5000', {'timeout': 300000, 'length': 128}, '${id}']`);
    expect(b.status).toBe(200);
    expect(pyValue(b.body)).toEqual([id, 0]);
    const wait = { prefer: 'wait=2' };
    const ka = await py(appA, '/api/v1/qkdm/actions/get_key', `['${id}', -1, None]`).set(wait);
    const kb = await py(appB, '/api/v1/qkdm/actions/get_key', `['${id}', -1, None]`).set(wait);
    expect(ka.status).toBe(200);
    const [keyA, indexA] = pyValue(ka.body) as [Uint8Array, number];
    expect(keyA.length).toBe(32);
    expect(pyValue(kb.body)).toEqual([keyA, indexA, 0]);
  });

  it('when no key is available, then a Python-literal get_key answers HTTP 400 [None, index, 1] at once (as the original); JSON waits the stream timeout and answers 200 status 1', async () => {
    const id = await openPy();
    const t0 = Date.now();
    const res = await py(appA, '/get_key', `['${id}', 999999, {}]`);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(res.status).toBe(400);
    expect(pyValue(res.body)).toEqual([null, 999999, 1]);
    expect(res.headers['x-qkdm-message']).toMatch(/no key available/);
    const waited = await py(appA, '/get_key', `['${id}', 999999, {}]`).set('prefer', 'wait=1');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(waited.status).toBe(400);
    const json = await request(appA).post('/get_key').send([id, 999999, {}]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2800);
    expect(json.status).toBe(200);
    expect(json.body).toEqual([null, 999999, 1]);
  }, 10_000);
});

describe('seed API, JSON wire format', () => {
  it('when JSON arrays are sent, then JSON arrays come back with base64 keys', async () => {
    const a = await request(appA).post('/open_connect').send([null, '127.0.0.1:5001', { timeout: 2000, length: 256 }, null]);
    expect(a.status).toBe(200);
    const [id, status] = a.body as [string, number];
    expect(status).toBe(0);
    const b = await request(appB).post('/open_connect').send(['b', '127.0.0.1:5000', { timeout: 2000, length: 256 }, id]);
    expect(b.body).toEqual([id, 0]);
    const ka = await request(appA).post('/get_key').send([id, -1, {}]);
    const kb = await request(appB).post('/get_key').send([id, -1]);
    expect(ka.body[2]).toBe(0);
    expect(Buffer.from(ka.body[0], 'base64').length).toBe(32);
    expect(ka.body).toEqual(kb.body);
  });

  it('when JSON objects are sent, then objects with named fields come back', async () => {
    const a = await request(appA).post('/open_connect').send({ source: 'a', destination: 'http://127.0.0.1:5001', qos: { timeout: 2000, length: 128 }, Key_stream_ID: null });
    expect(a.body).toEqual({ Key_stream_ID: expect.any(String), status: 0 });
    const id = a.body.Key_stream_ID as string;
    await request(appB).post('/open_connect').send({ source: 'b', destination: '127.0.0.1:5000', qos: { timeout: 2000, length: 128 }, Key_stream_ID: id });
    const k = await request(appA).post('/get_key').send({ Key_stream_ID: id, index: -1 });
    expect(k.body).toEqual({ key: expect.any(String), index: 0, status: 0 });
    const n = await request(appA).post('/available_keys').send({ Key_stream_ID: id });
    expect(n.body).toEqual({ available_keys: expect.any(Number) });
    const c = await request(appA).post('/close').send({ Key_stream_ID: id });
    expect(c.body).toEqual({ status: 0 });
  });

  it('when JSON is malformed or mistyped, then 400 with the failure status and a message', async () => {
    const bad = await request(appA).post('/open_connect').set('content-type', 'application/json').send('{"source": ');
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ Key_stream_ID: null, status: 2, message: expect.stringMatching(/not valid JSON/) });
    const typed = await request(appA).post('/get_key').send({ Key_stream_ID: 'x', index: 0 });
    expect(typed.status).toBe(400);
    expect(typed.body).toMatchObject({ key: null, status: 1, message: expect.stringMatching(/Key_stream_ID/) });
    const big = await request(appA).post('/get_key').set('content-type', 'application/json').send(`"${'a'.repeat(1_100_000)}"`);
    expect(big.status).toBe(413);
  });
});

describe('peer and operator routes', () => {
  it('when /sync is called with bad parameters, then 400 names the parameter', async () => {
    const r = await request(appB).get('/sync?key_handle=nope&length=128&sender=1&sim=fake&peer=127.0.0.1:5000');
    expect(r.status).toBe(400);
    expect(r.body.message).toMatch(/key_handle/);
    const clash = await request(appB).get('/sync?key_handle=6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab&length=128&sender=0&sim=fake&peer=127.0.0.1:5000');
    expect(clash.status).toBe(409);
    expect(clash.body).toMatchObject({ code: 'ROLE_CLASH', message: expect.stringMatching(/module\.sender/) });
  });

  it('when peer messages are not JSON or malformed, then 400', async () => {
    expect((await request(appB).post('/peer/round').set('content-type', '').send("{'a': 1}")).status).toBe(400);
    expect((await request(appB).post('/peer/counter').send({ keyStreamId: 'x y' })).status).toBe(400);
    expect((await request(appB).post('/peer/open').send({})).status).toBe(400);
    expect((await request(appB).post('/start').send({ Key_stream_ID: 'nope' })).status).toBe(400);
  });

  it('when the original /start body repr(ID) arrives, then it is accepted for a known stream', async () => {
    const id = await openPy();
    const r = await py(appA, '/start', `'${id}'`);
    expect(r.status).toBe(200);
  });

  it('when operators ask, then /health and /streams describe streams without key material', async () => {
    const id = await openPy();
    expect((await request(appA).get('/health')).body).toMatchObject({ status: 'ok', sender: 1, sim: 'fake' });
    const list = await request(appA).get('/streams');
    expect(list.body.streams[0]).toMatchObject({ keyStreamId: id, length: 128, localOpen: true, peerOpen: true });
    const one = await request(appA).get(`/streams/${id}`);
    expect(one.body.keyStreamId).toBe(id);
    expect(JSON.stringify(one.body)).not.toMatch(/key":/);
    expect((await request(appA).get('/streams/nope')).status).toBe(400);
    expect((await request(appA).get('/streams/6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab')).status).toBe(404);
    expect((await request(appA).get(`/streams/${id}/stats`)).body.rounds).toBeInstanceOf(Array);
    expect((await request(appA).get('/nowhere')).status).toBe(404);
  });
});
