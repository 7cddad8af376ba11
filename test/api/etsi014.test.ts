/**
 * ETSI GS QKD 014 over HTTP (supertest): Alice's and Bob's apps in one process, their managers
 * joined by the in-memory peer, the ETSI 014 peer messages routed to the other app over HTTP.
 * SAEs are identified by the X-SAE-ID header here (allow_header_identity, plain HTTP); the client
 * certificate path is tested with real TLS in test/e2e/etsi014TwoModules.test.ts.
 */
import { once } from 'node:events';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Express } from 'express';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.js';
import { etsi014ErrorSchema, etsi014KeyContainerSchema, etsi014StatusSchema } from '../../src/api/etsi014Schemas.js';
import { createSaeIdentifier } from '../../src/api/saeIdentity.js';
import { ETSI014_MESSAGES, Etsi014Service, etsi014KeyStreamId, type Etsi014Pair } from '../../src/core/Etsi014Service.js';
import { KeyStreamManager } from '../../src/core/KeyStreamManager.js';
import { PeerError, type PeerClient } from '../../src/exchange/peerProtocol.js';
import { MemoryEtsi014KeyIdStore } from '../support/memoryEtsi014Store.js';
import { buildPair, silentLog, type PairOptions, type Side } from '../support/pair.js';

interface Kme {
  side: Side;
  service: Etsi014Service;
  store: MemoryEtsi014KeyIdStore;
  app: Express;
}

let alice: Kme;
let bob: Kme;
let stopPair: () => Promise<void>;
/** Set to make the peer channel to that app fail (simulates an unreachable slave KME). */
let peerDown = false;

/** The manager's calls go through the in-memory peer; PeerClient.post goes to the other app over HTTP. */
function routedPeer(side: Side, other: () => Express): PeerClient {
  return {
    sync: (url, req) => side.peer.sync(url, req),
    open: (url, notice) => side.peer.open(url, notice),
    close: (url, notice) => side.peer.close(url, notice),
    start: (url, notice) => side.peer.start(url, notice),
    round: (url, msg) => side.peer.round(url, msg),
    confirm: (url, msg) => side.peer.confirm(url, msg),
    counter: (url, msg) => side.peer.counter(url, msg),
    async post(_url, path, body) {
      if (peerDown) throw new PeerError('unreachable', `${path}: peer down (test)`);
      const res = await request(other()).post(path).set('content-type', 'application/json').send(JSON.stringify(body));
      if (res.status !== 200) throw new PeerError('refused', String(res.body?.message ?? res.status), res.body?.code);
      return res.body as unknown;
    },
  };
}

const SETTINGS = { keySize: 256, maxKeyPerRequest: 16, maxKeySize: 2048, minKeySize: 64, maxKeyCount: 40, waitMs: 400, peerTimeoutMs: 1000, retryInitialMs: 10, retryMaxMs: 100 };

/** Options of one test's pair: the manager's re-delivery window, the key ID TTL. */
interface SetupOptions {
  redeliveryWindowMs?: number;
  keyIdTtlMs?: number;
}
let extra: { keyIdTtlMs?: number } = {};

function kme(side: Side, kmeId: string, pairs: Etsi014Pair[], other: () => Express, configured = true, store = new MemoryEtsi014KeyIdStore()): Kme {
  const service = new Etsi014Service(side.manager, store, routedPeer(side, other), { ...SETTINGS, ...extra, kmeId, sender: side.manager.settings.sender, pairs }, silentLog);
  const app = createApp({
    manager: side.manager,
    exchange: side.exchange,
    log: silentLog,
    requestLog: false,
    ...(configured ? { etsi014: service } : {}),
    identifySae: createSaeIdentifier({ identities: [], allowHeaderIdentity: true }),
  });
  return { side, service, store, app };
}

const ALICE_PAIRS: Etsi014Pair[] = [
  { saeId: 'sae-a', peerSaeId: 'sae-b', peerUrl: 'http://127.0.0.1:5001', peerKmeId: 'KME-B' },
  { saeId: 'sae-a', peerSaeId: 'sae-c', peerUrl: 'http://127.0.0.1:5001', peerKmeId: 'KME-B' },
];
const BOB_PAIRS: Etsi014Pair[] = [
  { saeId: 'sae-b', peerSaeId: 'sae-a', peerUrl: 'http://127.0.0.1:5000', peerKmeId: 'KME-A' },
  { saeId: 'sae-c', peerSaeId: 'sae-a', peerUrl: 'http://127.0.0.1:5000', peerKmeId: 'KME-A' },
];

async function setup(opts: SetupOptions = {}): Promise<void> {
  peerDown = false;
  extra = opts.keyIdTtlMs === undefined ? {} : { keyIdTtlMs: opts.keyIdTtlMs };
  const pairOptions: PairOptions = { maxKeyCount: 40, ...(opts.redeliveryWindowMs === undefined ? {} : { redeliveryWindowMs: opts.redeliveryWindowMs }) };
  const p = await buildPair(pairOptions);
  stopPair = p.stop;
  // sae-a at Alice; sae-b and sae-c at Bob, both paired with sae-a.
  alice = kme(p.alice, 'KME-A', ALICE_PAIRS, () => bob.app);
  bob = kme(p.bob, 'KME-B', BOB_PAIRS, () => alice.app);
  bob.service.start();
  alice.service.start();
  // Both directions of both pairs open; keys flow.
  await expect.poll(async () => (await status(alice, 'sae-a', 'sae-b')).body.stored_key_count, { timeout: 5000 }).toBe(40);
}

async function teardown(): Promise<void> {
  alice.service.stop();
  bob.service.stop();
  await stopPair();
}

/** Replaces the pair of beforeEach by one with other options. */
async function restart(opts: SetupOptions): Promise<void> {
  await teardown();
  await setup(opts);
}

beforeEach(() => setup());
afterEach(() => teardown());

const status = (k: Kme, caller: string, slave: string) => request(k.app).get(`/api/v1/keys/${slave}/status`).set('x-sae-id', caller);
const encKeys = (k: Kme, caller: string, slave: string, body?: unknown) => {
  const r = request(k.app).post(`/api/v1/keys/${slave}/enc_keys`).set('x-sae-id', caller).set('content-type', 'application/json');
  return body === undefined ? r.send('') : r.send(typeof body === 'string' ? body : JSON.stringify(body));
};
const decKeys = (k: Kme, caller: string, master: string, ids: string[]) =>
  request(k.app)
    .post(`/api/v1/keys/${master}/dec_keys`)
    .set('x-sae-id', caller)
    .set('content-type', 'application/json')
    .send(JSON.stringify({ key_IDs: ids.map((key_ID) => ({ key_ID })) }));

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('status', () => {
  it('when the master SAE asks, then Status has the standard fields and this KME limits', async () => {
    const res = await status(alice, 'sae-a', 'sae-b');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(etsi014StatusSchema.parse(res.body)).toEqual({
      source_KME_ID: 'KME-A',
      target_KME_ID: 'KME-B',
      master_SAE_ID: 'sae-a',
      slave_SAE_ID: 'sae-b',
      key_size: 256,
      stored_key_count: 40,
      max_key_count: 40,
      max_key_per_request: 16,
      max_key_size: 2048,
      min_key_size: 64,
      max_SAE_ID_count: 0,
    });
  });

  it('when the slave SAE is not paired with the caller, then 400 names slave_SAE_ID', async () => {
    const res = await status(alice, 'sae-a', 'sae-z');
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/^slave_SAE_ID: /);
  });

  it('when the pair streams exist, then their Key_stream_IDs are the derived ones at both KMEs', () => {
    const id = etsi014KeyStreamId('KME-A', 'sae-a', 'KME-B', 'sae-b', 256);
    expect(alice.service.keyStreamIdFor('sae-a', 'sae-b')).toBe(id);
    expect(bob.service.keyStreamIdFor('sae-a', 'sae-b')).toBe(id);
    expect(bob.service.keyStreamIdFor('sae-b', 'sae-a')).not.toBe(id);
    expect(alice.side.manager.summary(id)).toMatchObject({ localOpen: true, peerOpen: true });
    expect(bob.side.manager.summary(id)).toMatchObject({ localOpen: true, peerOpen: true });
  });
});

describe('enc_keys at the master KME, dec_keys at the slave KME', () => {
  it('when keys are requested by POST and fetched by POST, then both SAEs get the same bytes under UUID key_IDs', async () => {
    const enc = await encKeys(alice, 'sae-a', 'sae-b', { number: 3, size: 256 });
    expect(enc.status).toBe(200);
    const container = etsi014KeyContainerSchema.parse(enc.body);
    expect(container.keys).toHaveLength(3);
    for (const k of container.keys) {
      expect(k.key_ID).toMatch(UUID);
      expect(Buffer.from(k.key, 'base64')).toHaveLength(32);
    }
    const dec = await decKeys(bob, 'sae-b', 'sae-a', container.keys.map((k) => k.key_ID));
    expect(dec.status).toBe(200);
    expect(dec.body).toEqual(container);
    expect(await bob.store.count()).toBe(0);
  });

  it('when the simple GET forms are used, then they deliver the same keys', async () => {
    const enc = await request(alice.app).get('/api/v1/keys/sae-b/enc_keys?number=2&size=128').set('x-sae-id', 'sae-a');
    expect(enc.status).toBe(200);
    expect(enc.body.keys.map((k: { key: string }) => Buffer.from(k.key, 'base64').length)).toEqual([16, 16]);
    const [first, second] = enc.body.keys as Array<{ key_ID: string; key: string }>;
    const one = await request(bob.app).get(`/api/v1/keys/sae-a/dec_keys?key_ID=${first!.key_ID}`).set('x-sae-id', 'sae-b');
    expect(one.status).toBe(200);
    expect(one.body.keys).toEqual([first]);
    const other = await request(bob.app).get(`/api/v1/keys/sae-a/dec_keys?key_ID=${second!.key_ID.toUpperCase()}`).set('x-sae-id', 'sae-b');
    expect(other.body.keys[0].key).toBe(second!.key);
  });

  it('when no body is sent, then one key of key_size bits is delivered', async () => {
    const enc = await encKeys(alice, 'sae-a', 'sae-b');
    expect(enc.status).toBe(200);
    expect(enc.body.keys).toHaveLength(1);
    expect(Buffer.from(enc.body.keys[0].key, 'base64')).toHaveLength(32);
  });

  it('when size differs from key_size, then stream keys are concatenated or cut, identically at both ends', async () => {
    for (const size of [64, 520, 2048]) {
      const enc = await encKeys(alice, 'sae-a', 'sae-b', { number: 2, size });
      expect(enc.status, `size ${size}`).toBe(200);
      for (const k of enc.body.keys) expect(Buffer.from(k.key, 'base64')).toHaveLength(size / 8);
      const dec = await decKeys(bob, 'sae-b', 'sae-a', enc.body.keys.map((k: { key_ID: string }) => k.key_ID));
      expect(dec.body).toEqual(enc.body);
    }
  });

  it('when the SAE at Bob is the master, then the other stream delivers to the SAE at Alice', async () => {
    await expect.poll(async () => (await status(bob, 'sae-b', 'sae-a')).body.stored_key_count, { timeout: 5000 }).toBeGreaterThan(0);
    const enc = await encKeys(bob, 'sae-b', 'sae-a', { number: 1 });
    expect(enc.status).toBe(200);
    const dec = await decKeys(alice, 'sae-a', 'sae-b', [enc.body.keys[0].key_ID]);
    expect(dec.body).toEqual(enc.body);
  });

  it('when many keys are taken, then no key and no key_ID is ever delivered twice', async () => {
    const seenIds = new Set<string>();
    const seenKeys = new Set<string>();
    for (let round = 0; round < 6; round++) {
      const batch = await Promise.all([1, 2, 3].map(() => encKeys(alice, 'sae-a', 'sae-b', { number: 4 })));
      for (const enc of batch) {
        expect(enc.status).toBe(200);
        const ids = enc.body.keys.map((k: { key_ID: string }) => k.key_ID);
        const dec = await decKeys(bob, 'sae-b', 'sae-a', ids);
        expect(dec.body).toEqual(enc.body);
        for (const k of enc.body.keys) {
          expect(seenIds.has(k.key_ID)).toBe(false);
          expect(seenKeys.has(k.key)).toBe(false);
          seenIds.add(k.key_ID);
          seenKeys.add(k.key);
        }
        const again = await decKeys(bob, 'sae-b', 'sae-a', ids);
        expect(again.status).toBe(400);
        expect(again.body).toEqual({ message: ETSI014_MESSAGES.KEYS_NOT_FOUND });
      }
    }
    expect(seenIds.size).toBe(72);
  });

  it('when two dec_keys race for the same key_ID, then exactly one gets the key', async () => {
    const enc = await encKeys(alice, 'sae-a', 'sae-b', { number: 2 });
    const ids = enc.body.keys.map((k: { key_ID: string }) => k.key_ID);
    const [x, y] = await Promise.all([decKeys(bob, 'sae-b', 'sae-a', ids), decKeys(bob, 'sae-b', 'sae-a', ids)]);
    expect([x.status, y.status].sort()).toEqual([200, 400]);
  });
});

describe('authorization (401, no body)', () => {
  it('when no SAE identity is presented, then every route answers 401 without a body', async () => {
    for (const req of [
      request(alice.app).get('/api/v1/keys/sae-b/status'),
      request(alice.app).post('/api/v1/keys/sae-b/enc_keys').send('{}'),
      request(bob.app).post('/api/v1/keys/sae-a/dec_keys').send('{}'),
      request(bob.app).get('/api/v1/keys/sae-a/dec_keys?key_ID=00000000-0000-4000-8000-000000000000').set('x-sae-id', 'not valid!'),
    ]) {
      const res = await req;
      expect(res.status).toBe(401);
      expect(res.text).toBe('');
    }
  });

  it('when another SAE than the slave named at enc_keys asks dec_keys, then 401 and the key stays for the slave', async () => {
    const enc = await encKeys(alice, 'sae-a', 'sae-b', { number: 1 });
    const ids = [enc.body.keys[0].key_ID];
    const wrong = await decKeys(bob, 'sae-c', 'sae-a', ids);
    expect(wrong.status).toBe(401);
    expect(wrong.text).toBe('');
    const right = await decKeys(bob, 'sae-b', 'sae-a', ids);
    expect(right.body).toEqual(enc.body);
  });

  it('when the slave names a master it is not paired with, then 401 and the key stays', async () => {
    const enc = await encKeys(alice, 'sae-a', 'sae-b', { number: 1 });
    const res = await decKeys(bob, 'sae-b', 'sae-c', [enc.body.keys[0].key_ID]);
    expect(res.status).toBe(401);
    expect(res.text).toBe('');
    expect((await decKeys(bob, 'sae-b', 'sae-a', [enc.body.keys[0].key_ID])).body).toEqual(enc.body);
  });
});

describe('errors with the standard messages (400)', () => {
  const bad = async (body: unknown, message: string | RegExp) => {
    const res = await encKeys(alice, 'sae-a', 'sae-b', body);
    expect(res.status).toBe(400);
    etsi014ErrorSchema.parse(res.body);
    if (typeof message === 'string') expect(res.body.message).toBe(message);
    else expect(res.body.message).toMatch(message);
    return res;
  };

  it('when a request needs more stream keys than the pair can hold (number × size over max_key_count), then 400 says why, no key is taken, and a plain request still succeeds (issue 13, point 1)', async () => {
    const before = (await status(alice, 'sae-a', 'sae-b')).body.stored_key_count as number;
    await bad({ number: 16, size: 2048 }, /^number × size: 16 key\(s\) of 2048 bits need 128 stream keys of 256 bits, and this pair holds at most 40 \(max_key_count\)/);
    expect((await status(alice, 'sae-a', 'sae-b')).body.stored_key_count).toBeGreaterThanOrEqual(before);
    const plain = await encKeys(alice, 'sae-a', 'sae-b', { number: 1 });
    expect(plain.status).toBe(200);
  });

  it('when size is not a multiple of 8, then "size shall be a multiple of 8"', async () => {
    await bad({ size: 100 }, ETSI014_MESSAGES.SIZE_NOT_MULTIPLE_OF_8);
    const viaGet = await request(alice.app).get('/api/v1/keys/sae-b/enc_keys?size=12').set('x-sae-id', 'sae-a');
    expect(viaGet.status).toBe(400);
    expect(viaGet.body).toEqual({ message: 'size shall be a multiple of 8' });
  });

  it('when extension_mandatory is not empty, then "not all extension_mandatory parameters are supported" with details', async () => {
    const res = await bad({ extension_mandatory: [{ abc_route_type: 'direct' }] }, ETSI014_MESSAGES.EXTENSION_MANDATORY_UNSUPPORTED);
    expect(res.body.details).toEqual([{ extension_mandatory: 'abc_route_type', reason: 'not supported' }]);
  });

  it('when extension_optional is present, then it is ignored as the standard allows', async () => {
    expect((await encKeys(alice, 'sae-a', 'sae-b', { extension_optional: [{ abc_priority: 1 }] })).status).toBe(200);
  });

  it('when additional_slave_SAE_IDs is not empty, then 400 (max_SAE_ID_count is 0)', async () => {
    await bad({ additional_slave_SAE_IDs: ['sae-c'] }, /^additional_slave_SAE_IDs: .*max_SAE_ID_count is 0/);
    expect((await encKeys(alice, 'sae-a', 'sae-b', { additional_slave_SAE_IDs: [] })).status).toBe(200);
  });

  it('when a key_ID is unknown, then "one or more keys specified are not found on KME" and nothing is taken', async () => {
    const enc = await encKeys(alice, 'sae-a', 'sae-b', { number: 1 });
    const res = await decKeys(bob, 'sae-b', 'sae-a', [enc.body.keys[0].key_ID, '00000000-0000-4000-8000-000000000000']);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ message: 'one or more keys specified are not found on KME' });
    expect((await decKeys(bob, 'sae-b', 'sae-a', [enc.body.keys[0].key_ID])).body).toEqual(enc.body);
  });

  it('when the request is malformed or outside the limits, then 400 names the field', async () => {
    await bad({ number: 17 }, /^number: must be an integer between 1 and 16/);
    await bad({ number: 0 }, /^number: /);
    await bad({ number: 'two' }, /^number: must be an integer number of keys/);
    await bad({ size: 32 }, /^size: must be between 64 and 2048 bits/);
    await bad({ size: 4096 }, /^size: must be between 64 and 2048 bits/);
    await bad({ size: 1.5 }, /^size: /);
    await bad('{"number": ', /^body: not valid JSON/);
    await bad('[1, 2]', /^body: must be a Key request object/);
    await bad({ additional_slave_SAE_IDs: 'sae-c' }, /^additional_slave_SAE_IDs: must be a list/);
    const badPath = await request(alice.app).get(`/api/v1/keys/${'x'.repeat(200)}/status`).set('x-sae-id', 'sae-a');
    expect(badPath.status).toBe(400);
    expect(badPath.body.message).toMatch(/^slave_SAE_ID: /);
    const decBad = [
      [{ key_IDs: [{ key_ID: 'not-a-uuid' }] }, /^key_IDs\.0\.key_ID: must be a UUID/],
      [{ key_IDs: [] }, /^key_IDs: must name at least one key_ID/],
      [{}, /^key_IDs: /],
    ] as const;
    for (const [body, message] of decBad) {
      const res = await request(bob.app).post('/api/v1/keys/sae-a/dec_keys').set('x-sae-id', 'sae-b').send(JSON.stringify(body));
      expect(res.status).toBe(400);
      expect(res.body.message).toMatch(message);
    }
    const empty = await request(bob.app).post('/api/v1/keys/sae-a/dec_keys').set('x-sae-id', 'sae-b').send('');
    expect(empty.status).toBe(400);
    const dup = await decKeys(bob, 'sae-b', 'sae-a', ['00000000-0000-4000-8000-000000000000', '00000000-0000-4000-8000-000000000000']);
    // ETSI GS QKD 014 v1.1.1, Get key with key IDs: a key listed twice cannot be delivered twice: the standard's not-found answer.
    expect(dup.status).toBe(400);
    expect(dup.body.message).toBe('one or more keys specified are not found on KME');
    const noQuery = await request(bob.app).get('/api/v1/keys/sae-a/dec_keys').set('x-sae-id', 'sae-b');
    expect(noQuery.status).toBe(400);
    expect(noQuery.body.message).toMatch(/^key_ID: /);
  });
});

describe('server errors (503)', () => {
  it('when the slave KME cannot be reached, then 503 with an Error body, and the taken indices are dropped there later', async () => {
    const id = alice.service.keyStreamIdFor('sae-a', 'sae-b')!;
    peerDown = true;
    const res = await encKeys(alice, 'sae-a', 'sae-b', { number: 2 });
    expect(res.status).toBe(503);
    expect(res.body.message).toMatch(/did not confirm the key IDs; no keys were delivered/);
    peerDown = false;
    const lost = (await status(alice, 'sae-a', 'sae-b')).body.stored_key_count;
    expect(lost).toBeLessThan(40);
    // The next successful enc_keys carries the discarded indices: Bob erases those two keys as well.
    const ok = await encKeys(alice, 'sae-a', 'sae-b', { number: 1 });
    expect(ok.status).toBe(200);
    await expect.poll(() => bob.side.manager.available(id) - alice.side.manager.available(id), { timeout: 2000 }).toBe(1);
  });

  it('issue 13 point 1: when a failed enc_keys took every key, then both KMEs drop them at once and a plain request succeeds without any other request first', async () => {
    const id = alice.service.keyStreamIdFor('sae-a', 'sae-b')!;
    peerDown = true;
    // 16 keys of 512 bits take 32 of the 40 stream keys; a second failing request takes what is left and waits.
    expect((await encKeys(alice, 'sae-a', 'sae-b', { number: 16, size: 512 })).status).toBe(503);
    expect((await encKeys(alice, 'sae-a', 'sae-b', { number: 4, size: 512 })).status).toBe(503);
    expect(bob.side.manager.available(id)).toBe(40); // the slave KME still holds all of them: orphans
    peerDown = false;
    // No SAE request in between: the master's module tells the slave's by itself; the pair refills.
    await expect.poll(() => bob.side.manager.available(id) === alice.side.manager.available(id) && alice.side.manager.available(id) > 0, { timeout: 5000 }).toBe(true);
    const ok = await encKeys(alice, 'sae-a', 'sae-b', {});
    expect(ok.status).toBe(200);
    const dec = await decKeys(bob, 'sae-b', 'sae-a', [ok.body.keys[0].key_ID]);
    expect(dec.status).toBe(200);
    expect(dec.body.keys[0].key).toBe(ok.body.keys[0].key);
    await expect.poll(async () => (await status(bob, 'sae-b', 'sae-a')).status, { timeout: 1000 }).toBe(200);
    await expect.poll(() => bob.side.manager.available(id) - alice.side.manager.available(id), { timeout: 3000 }).toBe(0);
  });

  it('issue 13 point 1: when the discards of a failed request are lost (the master restarts), then the orphan watermark still frees the slave KME', async () => {
    const id = alice.service.keyStreamIdFor('sae-a', 'sae-b')!;
    const stream = etsi014KeyStreamId('KME-A', 'sae-a', 'KME-B', 'sae-b', 256);
    expect(id).toBe(stream);
    // The master took 5 keys and then forgot them (what a crash before its notice leaves): nothing tells Bob.
    for (let i = 0; i < 5; i++) expect((await alice.side.manager.getKey(id, -1, 0)).ok).toBe(true);
    expect(bob.side.manager.available(id) - alice.side.manager.available(id)).toBeGreaterThanOrEqual(5);
    // A notice for other keys carries the watermark (the lowest index Alice still holds): Bob drops the 5.
    const ok = await encKeys(alice, 'sae-a', 'sae-b', { number: 1 });
    expect(ok.status).toBe(200);
    await expect.poll(() => bob.side.manager.available(id) - alice.side.manager.available(id), { timeout: 3000 }).toBe(1);
    // A recorded key is never an orphan: the slave SAE still gets it.
    const dec = await decKeys(bob, 'sae-b', 'sae-a', [ok.body.keys[0].key_ID]);
    expect(dec.status).toBe(200);
    expect(dec.body.keys[0].key).toBe(ok.body.keys[0].key);
  });

  it('attacker: a forged watermark cannot erase recorded keys, and the slave KME keeps them for dec_keys', async () => {
    const id = alice.service.keyStreamIdFor('sae-a', 'sae-b')!;
    const enc = await encKeys(alice, 'sae-a', 'sae-b', { number: 3 });
    expect(enc.status).toBe(200);
    // Even with a watermark far above everything (a peer out of step), recorded indices stay.
    const res = await request(bob.app)
      .post('/peer/etsi014/keys')
      .set('content-type', 'application/json')
      .send(JSON.stringify({ keyStreamId: id, master_SAE_ID: 'sae-a', slave_SAE_ID: 'sae-b', master_KME_ID: 'KME-A', size: 256, keys: [], orphans_below: 1_000_000 }));
    expect(res.status).toBe(200);
    const dec = await decKeys(bob, 'sae-b', 'sae-a', enc.body.keys.map((k: { key_ID: string }) => k.key_ID));
    expect(dec.status).toBe(200);
    expect(dec.body.keys.map((k: { key: string }) => k.key)).toEqual(enc.body.keys.map((k: { key: string }) => k.key));
  });

  it('when the key ID store fails, then dec_keys answers 503, never 500', async () => {
    const enc = await encKeys(alice, 'sae-a', 'sae-b', { number: 1 });
    bob.store.failing = true;
    const res = await decKeys(bob, 'sae-b', 'sae-a', [enc.body.keys[0].key_ID]);
    expect(res.status).toBe(503);
    expect(res.body.message).toBe('the key ID store is unavailable');
    bob.store.failing = false;
  });

  it('when ETSI 014 is not configured, then its routes answer 503', async () => {
    const plain = kme(alice.side, 'KME-A', [], () => bob.app, false);
    const res = await request(plain.app).get('/api/v1/keys/sae-b/status').set('x-sae-id', 'sae-a');
    expect(res.status).toBe(503);
    expect(res.body.message).toMatch(/not configured/);
  });
});

describe('peer messages', () => {
  it('when a notice names a pair or stream not configured here, then the slave KME refuses it', async () => {
    const id = etsi014KeyStreamId('KME-A', 'sae-a', 'KME-B', 'sae-b', 256);
    const send = (body: unknown) => request(bob.app).post('/peer/etsi014/keys').set('content-type', 'application/json').send(JSON.stringify(body));
    const base = { keyStreamId: id, master_SAE_ID: 'sae-a', slave_SAE_ID: 'sae-b', master_KME_ID: 'KME-A', size: 256, keys: [] };
    expect((await send(base)).status).toBe(200);
    expect((await send({ ...base, master_KME_ID: 'KME-X' })).status).toBe(400);
    expect((await send({ ...base, slave_SAE_ID: 'sae-c' })).status).toBe(400);
    expect((await send({ ...base, keys: [{ key_ID: '00000000-0000-4000-8000-000000000001', indices: [1, 2] }] })).body.message).toMatch(/must name 1 stream indices/);
    expect((await send({ ...base, size: 'big' })).status).toBe(400);
    const k = { key_ID: '00000000-0000-4000-8000-000000000002', indices: [100_000] };
    expect((await send({ ...base, keys: [k] })).status).toBe(200);
    const again = await send({ ...base, keys: [{ ...k, key_ID: '00000000-0000-4000-8000-000000000003' }] });
    expect(again.status).toBe(400);
    expect(again.body.message).toMatch(/recorded already/);
  });
});

// ----------------------------------------------------------------------------------------------
/**
 * A dec_keys at Bob whose answer never reaches the slave SAE: the connection breaks while Bob works
 * on it (after the claim), and Bob then finishes and answers into a closed connection.
 */
async function decKeysAnswerLost(ids: string[]): Promise<void> {
  const server = createServer(bob.app);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const sockets: Socket[] = [];
  server.on('connection', (sock: Socket) => sockets.push(sock));
  const store = bob.store;
  const claim = store.claim.bind(store);
  let claimed!: () => void;
  const atClaim = new Promise<void>((r) => (claimed = r));
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  store.claim = async (...args) => {
    const r = await claim(...args);
    claimed();
    await gate;
    return r;
  };
  const service = bob.service;
  const decKeysOf = service.decKeys.bind(service);
  let first: Promise<unknown> | undefined;
  service.decKeys = (...args) => (first = decKeysOf(...args));
  try {
    const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/api/v1/keys/sae-a/dec_keys', headers: { 'x-sae-id': 'sae-b', 'content-type': 'application/json' } });
    req.on('error', () => undefined);
    req.end(JSON.stringify({ key_IDs: ids.map((key_ID) => ({ key_ID })) }));
    await atClaim;
    // The slave SAE's connection breaks; Bob sees it close before it answers.
    const closed = Promise.all(sockets.map((sock) => (sock.destroyed ? Promise.resolve() : once(sock, 'close'))));
    req.destroy();
    await closed;
    release();
    await first;
  } finally {
    store.claim = claim;
    service.decKeys = decKeysOf;
    server.close();
  }
}

const keyIdsOf = (body: { keys: Array<{ key_ID: string }> }): string[] => body.keys.map((k) => k.key_ID);

describe('issue 13 "delivery that survives a lost answer ... and no other caller ever can": dec_keys', () => {
  it('issue 13 "delivery that survives a lost answer": when the dec_keys connection breaks before the answer, then the same slave SAE repeating it within the window gets the same keys as enc_keys, and once that answer arrived, not found', async () => {
    const enc = await encKeys(alice, 'sae-a', 'sae-b', { number: 2, size: 512 });
    expect(enc.status).toBe(200);
    const ids = keyIdsOf(enc.body);
    await decKeysAnswerLost(ids);
    // Claimed, not gone: the slave SAE never got the keys.
    expect([...bob.store.records.values()].filter((r) => ids.includes(r.keyId)).every((r) => r.claimedAt !== undefined)).toBe(true);
    const again = await decKeys(bob, 'sae-b', 'sae-a', ids);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(enc.body);
    // This answer arrived: the key is delivered, a further repeat is the standard's not-found.
    const third = await decKeys(bob, 'sae-b', 'sae-a', ids);
    expect(third.status).toBe(400);
    expect(third.body).toEqual({ message: ETSI014_MESSAGES.KEYS_NOT_FOUND });
    expect(ids.some((id) => bob.store.records.has(id))).toBe(false);
    // The GET form repeats the same way.
    const enc2 = await encKeys(alice, 'sae-a', 'sae-b', { number: 1 });
    await decKeysAnswerLost(keyIdsOf(enc2.body));
    const viaGet = await request(bob.app).get(`/api/v1/keys/sae-a/dec_keys?key_ID=${enc2.body.keys[0].key_ID}`).set('x-sae-id', 'sae-b');
    expect(viaGet.body).toEqual(enc2.body);
  });

  it('issue 13 "delivery that survives a lost answer": when the slave SAE fetches newer key IDs (higher stream indices) after a lost answer, then the repeat of the lost one still gets its keys', async () => {
    const older = await encKeys(alice, 'sae-a', 'sae-b', { number: 1 });
    const newer = await encKeys(alice, 'sae-a', 'sae-b', { number: 2 });
    await decKeysAnswerLost(keyIdsOf(older.body));
    const fetched = await decKeys(bob, 'sae-b', 'sae-a', keyIdsOf(newer.body));
    expect(fetched.body).toEqual(newer.body);
    const again = await decKeys(bob, 'sae-b', 'sae-a', keyIdsOf(older.body));
    expect(again.status).toBe(200);
    expect(again.body).toEqual(older.body);
  });

  it('issue 13 "and no other caller ever can": attacker: other SAEs repeating the dec_keys of a lost answer get 401 without a body and never the key; the slave SAE still gets it', async () => {
    const enc = await encKeys(alice, 'sae-a', 'sae-b', { number: 2 });
    const ids = keyIdsOf(enc.body);
    await decKeysAnswerLost(ids);
    const attempts = [
      decKeys(bob, 'sae-c', 'sae-a', ids), // another SAE paired with the same master
      decKeys(bob, 'sae-b', 'sae-c', ids), // the slave naming another master
      decKeys(bob, 'sae-z', 'sae-a', ids), // an SAE paired with nobody
      request(bob.app).get(`/api/v1/keys/sae-a/dec_keys?key_ID=${ids[0]}`).set('x-sae-id', 'sae-c'),
      request(bob.app).post('/api/v1/keys/sae-a/dec_keys').set('content-type', 'application/json').send(JSON.stringify({ key_IDs: [{ key_ID: ids[0] }] })), // no identity
    ];
    for (const res of await Promise.all(attempts)) {
      expect(res.status).toBe(401);
      expect(res.text).toBe('');
    }
    // A key_ID listed twice stays the standard's not-found answer, also for a claimed key.
    expect((await decKeys(bob, 'sae-b', 'sae-a', [ids[0]!, ids[0]!])).body).toEqual({ message: ETSI014_MESSAGES.KEYS_NOT_FOUND });
    const right = await decKeys(bob, 'sae-b', 'sae-a', ids);
    expect(right.body).toEqual(enc.body);
  });

  it('issue 13 "delivery that survives a lost answer": attacker: a repeat racing the first dec_keys while it is still in progress gets 400 not found, never a second copy', async () => {
    const enc = await encKeys(alice, 'sae-a', 'sae-b', { number: 1 });
    const ids = keyIdsOf(enc.body);
    const store = bob.store;
    const claim = store.claim.bind(store);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    store.claim = async (...args) => {
      const r = await claim(...args);
      await gate;
      return r;
    };
    const first = decKeys(bob, 'sae-b', 'sae-a', ids).then((r) => r);
    await expect.poll(() => bob.store.records.get(ids[0]!)?.claimedAt !== undefined).toBe(true);
    const racing = await decKeys(bob, 'sae-b', 'sae-a', ids);
    store.claim = claim;
    release();
    expect(racing.status).toBe(400);
    expect(racing.body).toEqual({ message: ETSI014_MESSAGES.KEYS_NOT_FOUND });
    expect((await first).body).toEqual(enc.body);
  });

  it('issue 13 "delivery that survives a lost answer": when the re-delivery window closed, then the repeat is 400 not found, the records are gone and the keys are erased from the slave KME\'s key store', async () => {
    await restart({ redeliveryWindowMs: 300 });
    const id = bob.service.keyStreamIdFor('sae-a', 'sae-b')!;
    const enc = await encKeys(alice, 'sae-a', 'sae-b', { number: 2 });
    const ids = keyIdsOf(enc.body);
    const indices = ids.flatMap((k) => bob.store.records.get(k)!.indices);
    await decKeysAnswerLost(ids);
    expect(indices.every((i) => bob.side.keys.keys.get(id)?.has(i))).toBe(true); // retained for the window
    await new Promise((r) => setTimeout(r, 350));
    const late = await decKeys(bob, 'sae-b', 'sae-a', ids);
    expect(late.status).toBe(400);
    expect(late.body).toEqual({ message: ETSI014_MESSAGES.KEYS_NOT_FOUND });
    await expect.poll(() => ids.some((k) => bob.store.records.has(k)), { timeout: 2000 }).toBe(false);
    await expect.poll(() => indices.some((i) => bob.side.keys.keys.get(id)?.has(i)), { timeout: 2000 }).toBe(false);
    // Nobody else gets it either (records gone: the standard's not-found).
    expect((await decKeys(bob, 'sae-c', 'sae-a', ids)).status).toBe(400);
  });

  /** Bob's module restarted: a new manager and a new Etsi014Service over the same stores (what a crash leaves). */
  async function crashBob(): Promise<Kme> {
    bob.service.stop();
    await bob.side.exchange.stop();
    bob.side.manager.stop();
    const manager = new KeyStreamManager(bob.side.handles, bob.side.keys, bob.side.peer, bob.side.manager.settings, silentLog);
    await manager.init();
    const restarted = kme({ ...bob.side, manager }, 'KME-B', BOB_PAIRS, () => alice.app, true, bob.store);
    restarted.service.start();
    const stopRestarted = stopPair;
    stopPair = async () => {
      restarted.service.stop();
      manager.stop();
      await stopRestarted();
    };
    return restarted;
  }

  it('issue 13 "delivery that survives a lost answer": when the slave KME crashes after claiming the key IDs and before taking the keys, then after its restart the slave SAE repeating the dec_keys gets the same keys', async () => {
    const enc = await encKeys(alice, 'sae-a', 'sae-b', { number: 2, size: 512 });
    const ids = keyIdsOf(enc.body);
    const store = bob.store;
    const claim = store.claim.bind(store);
    let claimed!: () => void;
    const atClaim = new Promise<void>((r) => (claimed = r));
    store.claim = async (...args) => {
      const r = await claim(...args);
      claimed();
      return new Promise<never>(() => undefined); // the module dies here: no key taken, no answer
    };
    void decKeys(bob, 'sae-b', 'sae-a', ids).then(() => undefined, () => undefined);
    await atClaim;
    store.claim = claim;
    const restarted = await crashBob();
    expect((await decKeys(restarted, 'sae-c', 'sae-a', ids)).status).toBe(401);
    const again = await decKeys(restarted, 'sae-b', 'sae-a', ids);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(enc.body);
  });

  it('issue 13 "delivery that survives a lost answer": when the slave KME crashes after taking the keys and before answering, then after its restart the slave SAE repeating the dec_keys gets the same keys, and nobody else does', async () => {
    const enc = await encKeys(alice, 'sae-a', 'sae-b', { number: 3, size: 768 });
    const ids = keyIdsOf(enc.body);
    // Taken (and retained by the manager); the answer's fate never comes: the module dies before it leaves.
    const taken = await bob.service.decKeys('sae-b', 'sae-a', ids, new Promise<boolean>(() => undefined));
    expect(taken.ok).toBe(true);
    const restarted = await crashBob();
    expect((await decKeys(restarted, 'sae-c', 'sae-a', ids)).status).toBe(401);
    const again = await decKeys(restarted, 'sae-b', 'sae-a', ids);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(enc.body);
    expect((await decKeys(restarted, 'sae-b', 'sae-a', ids)).status).toBe(400);
  });
});

describe('issue 13 "no sequence of requests may leave a pair unable to serve": issued key IDs expire (etsi014.key_id_ttl_s)', () => {
  it('issue 13 "no sequence of requests may leave a pair unable to serve": when lost enc_keys answers left key IDs filling max_key_count at the slave KME, then they expire, their keys are erased there, and a plain enc_keys {"number":1} succeeds', async () => {
    await restart({ keyIdTtlMs: 1500 });
    const id = alice.service.keyStreamIdFor('sae-a', 'sae-b')!;
    // Every stream key of the pair goes to key IDs whose answers the master SAE never got: nobody will fetch them.
    const lost = [await encKeys(alice, 'sae-a', 'sae-b', { number: 16, size: 512 }), await encKeys(alice, 'sae-a', 'sae-b', { number: 8 })];
    for (const res of lost) expect(res.status).toBe(200);
    const lostIds = lost.flatMap((res) => keyIdsOf(res.body));
    expect(await bob.store.count()).toBe(24);
    expect(bob.side.manager.available(id)).toBe(40); // the slave KME's buffer is full of them
    // Wedged until they expire: the master holds nothing and the pair produces nothing.
    expect((await encKeys(alice, 'sae-a', 'sae-b', { number: 1 })).status).toBe(503);
    await expect.poll(() => bob.store.count(), { timeout: 5000 }).toBe(0);
    // No other request needed: the slave KME erased their keys, the pair refills, a plain request succeeds.
    await expect.poll(() => alice.side.manager.available(id), { timeout: 5000 }).toBeGreaterThan(0);
    const enc = await encKeys(alice, 'sae-a', 'sae-b', { number: 1 });
    expect(enc.status).toBe(200);
    expect((await decKeys(bob, 'sae-b', 'sae-a', keyIdsOf(enc.body))).body).toEqual(enc.body);
    // The expired key IDs are gone for good: not found, even for their slave SAE.
    const expired = await decKeys(bob, 'sae-b', 'sae-a', lostIds.slice(0, 1));
    expect(expired.status).toBe(400);
    expect(expired.body).toEqual({ message: ETSI014_MESSAGES.KEYS_NOT_FOUND });
    // The pair settles: both ends hold the same keys again (none of the expired ones leaked at Bob).
    await expect.poll(() => bob.side.manager.available(id) - alice.side.manager.available(id), { timeout: 3000 }).toBe(0);
  });

  it('issue 13 "no sequence of requests may leave a pair unable to serve": an expired key ID is not found even before the sweep removed it, and a key ID fetched in time is unaffected', async () => {
    await restart({ keyIdTtlMs: 300 });
    bob.service.stop(); // no sweep: dec_keys itself must refuse the expired record
    const stale = await encKeys(alice, 'sae-a', 'sae-b', { number: 1 });
    await new Promise((r) => setTimeout(r, 350));
    const fresh = await encKeys(alice, 'sae-a', 'sae-b', { number: 1 });
    expect((await decKeys(bob, 'sae-b', 'sae-a', keyIdsOf(stale.body))).body).toEqual({ message: ETSI014_MESSAGES.KEYS_NOT_FOUND });
    expect((await decKeys(bob, 'sae-b', 'sae-a', keyIdsOf(fresh.body))).body).toEqual(fresh.body);
    // The sweep at start-up removes it and erases its key.
    const id = bob.service.keyStreamIdFor('sae-a', 'sae-b')!;
    const [idx] = bob.store.records.get(stale.body.keys[0].key_ID)!.indices;
    bob.service.start();
    await expect.poll(() => bob.store.records.has(stale.body.keys[0].key_ID) || bob.side.keys.keys.get(id)?.has(idx!), { timeout: 2000 }).toBe(false);
  });
});
