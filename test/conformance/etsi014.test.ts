/**
 * ETSI GS QKD 014 v1.1.1 conformance, organised by clause. Clause numbers used here were checked
 * against independent references: clause 5 holds the API methods (Get status, Get key, Get key with
 * key IDs; their sub-clause numbers differ between references, so they are cited by title), clause 6
 * the data formats: 6.1 Status, 6.2 Key request, 6.3 Key container, 6.4 Key IDs, 6.5 Error.
 *
 * Two KMEs in one process (test/conformance/support.ts): Alice (KME-A) hosts sae-a, Bob (KME-B) hosts
 * sae-b and sae-c, both paired with sae-a. SAEs are named by the development-only X-SAE-ID header; the
 * client-certificate path is covered by test/e2e/etsi014TwoModules.test.ts. Key material is never
 * printed: assertions compare keys, failure messages name only IDs and counts.
 */
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.js';
import { etsi014ErrorSchema, etsi014KeyContainerSchema, etsi014StatusSchema } from '../../src/api/etsi014Schemas.js';
import { ETSI014_MESSAGES } from '../../src/core/Etsi014Service.js';
import { silentLog } from '../support/pair.js';
import { SETTINGS, UUID_RE, buildEtsi014Fixture, isStrictBase64, partsOf, type Etsi014Fixture, type Kme } from './support.js';

let f: Etsi014Fixture;
beforeEach(async () => {
  f = await buildEtsi014Fixture([
    ['sae-a', 'sae-b'],
    ['sae-a', 'sae-c'],
  ]);
});
afterEach(async () => {
  await f.stop();
});

const UNKNOWN_KEY_ID = '00000000-0000-4000-8000-000000000000';

const status = (k: Kme, caller: string | undefined, slave: string) => {
  const r = request(k.url).get(`/api/v1/keys/${slave}/status`);
  return caller === undefined ? r : r.set('x-sae-id', caller);
};
const encKeys = (k: Kme, caller: string | undefined, slave: string, body?: unknown) => {
  let r = request(k.url).post(`/api/v1/keys/${slave}/enc_keys`).set('content-type', 'application/json');
  if (caller !== undefined) r = r.set('x-sae-id', caller);
  return body === undefined ? r.send('') : r.send(typeof body === 'string' ? body : JSON.stringify(body));
};
const encKeysGet = (k: Kme, caller: string, slave: string, query: string) => request(k.url).get(`/api/v1/keys/${slave}/enc_keys${query}`).set('x-sae-id', caller);
const decKeys = (k: Kme, caller: string | undefined, master: string, body: unknown) => {
  let r = request(k.url).post(`/api/v1/keys/${master}/dec_keys`).set('content-type', 'application/json');
  if (caller !== undefined) r = r.set('x-sae-id', caller);
  return r.send(typeof body === 'string' ? body : JSON.stringify(body));
};
const decIds = (k: Kme, caller: string | undefined, master: string, ids: string[]) => decKeys(k, caller, master, { key_IDs: ids.map((key_ID) => ({ key_ID })) });
const decKeysGet = (k: Kme, caller: string, master: string, query: string) => request(k.url).get(`/api/v1/keys/${master}/dec_keys${query}`).set('x-sae-id', caller);

/** A 200 Key container, validated against the exported schema. */
function container(res: request.Response, what: string) {
  expect(res.status, `${what}: HTTP status`).toBe(200);
  expect(res.headers['content-type'], what).toMatch(/^application\/json/);
  return etsi014KeyContainerSchema.parse(res.body);
}
/** A 400/503 Error body, validated against the exported schema. */
function errorBody(res: request.Response, httpStatus: 400 | 503, what: string) {
  expect(res.status, `${what}: HTTP status`).toBe(httpStatus);
  expect(res.headers['content-type'], what).toMatch(/^application\/json/);
  return etsi014ErrorSchema.parse(res.body);
}
/** 401 without a body. */
function unauthorized(res: request.Response, what: string) {
  expect(res.status, `${what}: HTTP status`).toBe(401);
  expect(res.text, `${what}: body`).toBe('');
}
const ids = (c: { keys: Array<{ key_ID: string }> }) => c.keys.map((k) => k.key_ID);
/**
 * The same keys under the same key_IDs, in order. Key IDs are compared visibly; key bytes only as a
 * boolean, so a failure never prints key material.
 */
function expectSameKeys(actual: { keys: Array<{ key_ID: string; key: string }> }, expected: { keys: Array<{ key_ID: string; key: string }> }, what = 'keys'): void {
  expect(ids(actual), `${what}: key_IDs`).toEqual(ids(expected));
  const same = actual.keys.length === expected.keys.length && actual.keys.every((k, i) => k.key === expected.keys[i]!.key);
  expect(same, `${what}: identical key bytes (not printed)`).toBe(true);
}
const sameKey = (a: { key: string }, b: { key: string }): boolean => a.key === b.key;
/** Stops key production at both ends, so status counts only move by what the SAEs take. */
async function freezeProduction(): Promise<void> {
  await f.alice.side.exchange.stop();
  await f.bob.side.exchange.stop();
}
const storedKeyCount = async (k: Kme, master: string, slave: string): Promise<number> => etsi014StatusSchema.parse((await status(k, master, slave)).body).stored_key_count;

// ----------------------------------------------------------------------------------------------
describe('014 §5 Get status (GET /api/v1/keys/{slave_SAE_ID}/status)', () => {
  it('014 §5 Get status: "Returns Status from a KME to the calling SAE" → 200 Status for the named slave SAE, at either KME', async () => {
    const atAlice = await status(f.alice, 'sae-a', 'sae-b');
    expect(atAlice.status).toBe(200);
    expect(etsi014StatusSchema.parse(atAlice.body)).toMatchObject({ source_KME_ID: 'KME-A', target_KME_ID: 'KME-B', master_SAE_ID: 'sae-a', slave_SAE_ID: 'sae-b' });
    const atBob = await status(f.bob, 'sae-c', 'sae-a');
    expect(atBob.status).toBe(200);
    expect(etsi014StatusSchema.parse(atBob.body)).toMatchObject({ source_KME_ID: 'KME-B', target_KME_ID: 'KME-A', master_SAE_ID: 'sae-c', slave_SAE_ID: 'sae-a' });
  });

  it('014 §5 Get status: response code 400 → a slave_SAE_ID not paired with the caller answers 400 with an Error body', async () => {
    const notPaired = errorBody(await status(f.alice, 'sae-a', 'sae-z'), 400, 'unpaired slave');
    expect(notPaired.message).toMatch(/^slave_SAE_ID: /);
    const badId = errorBody(await status(f.alice, 'sae-a', 'x'.repeat(200)), 400, 'malformed slave ID');
    expect(badId.message).toMatch(/^slave_SAE_ID: /);
  });

  it('014 §5 Get status: response code 401 → a caller that is no known SAE gets 401 without a body', async () => {
    unauthorized(await status(f.alice, undefined, 'sae-b'), 'no identity');
    unauthorized(await status(f.alice, 'not valid!', 'sae-b'), 'malformed identity');
  });

  it('014 §5 Get status: response code 503 → a KME with ETSI 014 not configured answers 503 with an Error body', async () => {
    const plain = createApp({ manager: f.alice.side.manager, exchange: f.alice.side.exchange, log: silentLog, requestLog: false });
    const res = await request(plain).get('/api/v1/keys/sae-b/status').set('x-sae-id', 'sae-a');
    expect(errorBody(res, 503, 'not configured').message).toMatch(/not configured/);
  });
});

// ----------------------------------------------------------------------------------------------
describe('014 §5 Get key (POST|GET /api/v1/keys/{slave_SAE_ID}/enc_keys)', () => {
  it('014 §5 Get key: "Returns Key container data from the KME to the calling master SAE" (POST with Key request) → 200 with the asked keys', async () => {
    const c = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 3, size: 512 }), 'POST enc_keys');
    expect(c.keys).toHaveLength(3);
    for (const k of c.keys) expect(Buffer.from(k.key, 'base64').length).toBe(64);
  });

  it('014 §5 Get key: GET access method with number and size query parameters → 200 with the asked keys', async () => {
    const c = container(await encKeysGet(f.alice, 'sae-a', 'sae-b', '?number=2&size=128'), 'GET enc_keys');
    expect(c.keys).toHaveLength(2);
    for (const k of c.keys) expect(Buffer.from(k.key, 'base64').length).toBe(16);
    const onlyNumber = container(await encKeysGet(f.alice, 'sae-a', 'sae-b', '?number=1'), 'GET enc_keys ?number');
    expect(Buffer.from(onlyNumber.keys[0]!.key, 'base64').length).toBe(SETTINGS.keySize / 8);
  });

  it('014 §5 Get key: "The slave SAE ... may subsequently request matching keys from a remote KME using key_ID" → the slave KME delivers identical keys', async () => {
    for (const size of [64, 256, 520, 2048]) {
      const enc = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 2, size }), `enc size ${size}`);
      const dec = container(await decIds(f.bob, 'sae-b', 'sae-a', ids(enc)), `dec size ${size}`);
      expectSameKeys(dec, enc, `size ${size}`);
    }
    // The other direction: the SAE at Bob is the master.
    const enc = container(await encKeys(f.bob, 'sae-b', 'sae-a', { number: 1 }), 'enc at Bob');
    const dec = container(await decIds(f.alice, 'sae-a', 'sae-b', ids(enc)), 'dec at Alice');
    expectSameKeys(dec, enc);
  });

  it('014 §5 Get key: delivered keys leave the pool → stored_key_count drops by the stream keys taken, and no key or key_ID is handed out twice', async () => {
    await freezeProduction();
    const before = await storedKeyCount(f.alice, 'sae-a', 'sae-b');
    expect(before).toBe(SETTINGS.maxKeyCount);
    const first = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 2, size: 512 }), 'first');
    const second = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 3 }), 'second');
    expect(await storedKeyCount(f.alice, 'sae-a', 'sae-b')).toBe(before - 2 * partsOf(512) - 3);
    const allIds = [...ids(first), ...ids(second)];
    const allKeys = [...first.keys, ...second.keys].map((k) => k.key);
    expect(new Set(allIds).size).toBe(5);
    expect(new Set(allKeys).size).toBe(5);
    // The other pair's stream (sae-a -> sae-c) is untouched.
    expect(await storedKeyCount(f.alice, 'sae-a', 'sae-c')).toBe(SETTINGS.maxKeyCount);
  });

  it('014 §5 Get key: response code 400 → malformed bodies and parameters outside the Status limits answer 400 with an Error body', async () => {
    const cases: Array<[unknown, RegExp]> = [
      ['{"number": ', /^body: not valid JSON/],
      ['[1, 2]', /^body: must be a Key request object/],
      [{ number: 'two' }, /^number: /],
      [{ number: 0 }, /^number: /],
      [{ number: 1.5 }, /^number: /],
      [{ size: 1.5 }, /^size: /],
      [{ size: -8 }, /^size shall be a multiple of 8$/],
    ];
    for (const [body, message] of cases) {
      expect(errorBody(await encKeys(f.alice, 'sae-a', 'sae-b', body), 400, JSON.stringify(body)).message, JSON.stringify(body)).toMatch(message);
    }
    expect(errorBody(await encKeysGet(f.alice, 'sae-a', 'sae-b', '?number=abc'), 400, 'GET number=abc').message).toMatch(/^number: /);
    expect(errorBody(await encKeys(f.alice, 'sae-a', 'sae-z', { number: 1 }), 400, 'unpaired slave').message).toMatch(/^slave_SAE_ID: /);
  });

  it('014 §5 Get key: 400 when number × size needs more stream keys than the pair holds (max_key_count) → refused before any key is taken', async () => {
    await freezeProduction();
    const res = errorBody(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 16, size: 2048 }), 400, 'number × size');
    expect(res.message).toMatch(/^number × size: .*max_key_count/);
    expect(await storedKeyCount(f.alice, 'sae-a', 'sae-b')).toBe(SETTINGS.maxKeyCount);
  });

  it('014 §5 Get key: response code 401 → a caller that is no known SAE gets 401 without a body and no key is taken', async () => {
    await freezeProduction();
    unauthorized(await encKeys(f.alice, undefined, 'sae-b', { number: 1 }), 'no identity');
    unauthorized(await encKeysGet(f.alice, 'bad id!', 'sae-b', '?number=1'), 'malformed identity');
    expect(await storedKeyCount(f.alice, 'sae-a', 'sae-b')).toBe(SETTINGS.maxKeyCount);
  });

  it('014 §5 Get key: response code 503 → the slave KME unreachable answers 503 with an Error body, no key delivered, and a later request succeeds', async () => {
    f.alice.fault = () => 'drop';
    const down = errorBody(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 2 }), 503, 'peer down');
    expect(down.message).toMatch(/did not confirm the key IDs; no keys were delivered/);
    expect(await f.bob.store.count()).toBe(0);
    f.alice.fault = () => 'none';
    const later = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 1 }), 'after the peer is back');
    expectSameKeys(container(await decIds(f.bob, 'sae-b', 'sae-a', ids(later)), 'dec'), later);
  });

  it('014 §5 Get key: response code 503 → not enough key material within the wait answers 503 with an Error body', async () => {
    await freezeProduction();
    container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 16 }), 'drain 1');
    container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 16 }), 'drain 2');
    const t0 = Date.now();
    const res = errorBody(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 16 }), 503, 'not enough key');
    expect(res.message).toMatch(/not enough key material/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(SETTINGS.waitMs - 20);
  });
});

// ----------------------------------------------------------------------------------------------
describe('014 §5 Get key with key IDs (POST|GET /api/v1/keys/{master_SAE_ID}/dec_keys)', () => {
  it('014 §5 Get key with key IDs: "Returns Key container from the KME to the calling slave SAE" (POST Key IDs) → the keys matching those delivered to the master SAE', async () => {
    const enc = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 4 }), 'enc');
    const dec = container(await decIds(f.bob, 'sae-b', 'sae-a', ids(enc)), 'dec');
    expectSameKeys(dec, enc);
  });

  it('014 §5 Get key with key IDs: GET access method with a key_ID query parameter → that key', async () => {
    const enc = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 2 }), 'enc');
    const [first, second] = enc.keys;
    expectSameKeys(container(await decKeysGet(f.bob, 'sae-b', 'sae-a', `?key_ID=${first!.key_ID}`), 'GET dec first'), { keys: [first!] });
    // UUIDs compare case-insensitively.
    const upper = container(await decKeysGet(f.bob, 'sae-b', 'sae-a', `?key_ID=${second!.key_ID.toUpperCase()}`), 'GET dec upper case');
    expect(sameKey(upper.keys[0]!, second!), 'same key (not printed)').toBe(true);
  });

  it('014 §5 Get key with key IDs: "The KME shall reject the request with a 401 HTTP status code if the SAE ID of the requester was not an SAE ID supplied to the \'Get key\' method" → 401, and the key stays for the named slave', async () => {
    const enc = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 1 }), 'enc for sae-b');
    // sae-c is paired with the same master, but was not the slave named at Get key.
    unauthorized(await decIds(f.bob, 'sae-c', 'sae-a', ids(enc)), 'sae-c asks for sae-b\'s key');
    unauthorized(await decKeysGet(f.bob, 'sae-c', 'sae-a', `?key_ID=${ids(enc)[0]}`), 'sae-c asks by GET');
    // The master SAE itself, at its own KME, is not the slave either.
    unauthorized(await decIds(f.alice, 'sae-a', 'sae-a', ids(enc)), 'the master asks');
    // The named slave, naming a master it is not paired with.
    unauthorized(await decIds(f.bob, 'sae-b', 'sae-c', ids(enc)), 'wrong master named');
    expectSameKeys(container(await decIds(f.bob, 'sae-b', 'sae-a', ids(enc)), 'the named slave'), enc);
  });

  it('014 §5 Get key with key IDs: response code 401 → a caller that is no known SAE gets 401 without a body', async () => {
    unauthorized(await decIds(f.bob, undefined, 'sae-a', [UNKNOWN_KEY_ID]), 'no identity');
    unauthorized(await decKeysGet(f.bob, 'not valid!', 'sae-a', `?key_ID=${UNKNOWN_KEY_ID}`), 'malformed identity');
  });

  it('014 §5 Get key with key IDs: 400 "one or more keys specified are not found on KME" → an unknown key_ID fails the whole request and nothing is taken', async () => {
    const enc = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 1 }), 'enc');
    const res = await decIds(f.bob, 'sae-b', 'sae-a', [ids(enc)[0]!, UNKNOWN_KEY_ID]);
    expect(errorBody(res, 400, 'unknown key_ID')).toEqual({ message: ETSI014_MESSAGES.KEYS_NOT_FOUND });
    expectSameKeys(container(await decIds(f.bob, 'sae-b', 'sae-a', ids(enc)), 'the known key afterwards'), enc);
  });

  it('014 §5 Get key with key IDs: 400 "one or more keys specified are not found on KME" → a key already delivered is not found again', async () => {
    const enc = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 2 }), 'enc');
    container(await decIds(f.bob, 'sae-b', 'sae-a', ids(enc)), 'first dec');
    expect(errorBody(await decIds(f.bob, 'sae-b', 'sae-a', ids(enc)), 400, 'second dec')).toEqual({ message: ETSI014_MESSAGES.KEYS_NOT_FOUND });
    expect(errorBody(await decKeysGet(f.bob, 'sae-b', 'sae-a', `?key_ID=${ids(enc)[0]}`), 400, 'GET second dec').message).toBe(ETSI014_MESSAGES.KEYS_NOT_FOUND);
  });

  it('014 §5 Get key with key IDs: 400 "one or more keys specified are not found on KME" → a key_ID listed twice in one request (a key cannot be delivered twice)', async () => {
    const enc = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 1 }), 'enc');
    const twice = [ids(enc)[0]!, ids(enc)[0]!];
    expect(errorBody(await decIds(f.bob, 'sae-b', 'sae-a', twice), 400, 'listed twice')).toEqual({ message: ETSI014_MESSAGES.KEYS_NOT_FOUND });
    expectSameKeys(container(await decIds(f.bob, 'sae-b', 'sae-a', ids(enc)), 'listed once afterwards'), enc);
  });

  it('014 §5 Get key with key IDs: two concurrent requests for the same key_ID → exactly one gets the key, the other 400 not found', async () => {
    const enc = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 2 }), 'enc');
    const [x, y] = await Promise.all([decIds(f.bob, 'sae-b', 'sae-a', ids(enc)), decIds(f.bob, 'sae-b', 'sae-a', ids(enc))]);
    expect([x.status, y.status].sort()).toEqual([200, 400]);
    const winner = x.status === 200 ? x : y;
    expectSameKeys(etsi014KeyContainerSchema.parse(winner.body), enc);
  });

  it('014 §5 Get key with key IDs: response code 503 → the key ID store failing answers 503 with an Error body, and the key stays', async () => {
    const enc = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 1 }), 'enc');
    f.bob.store.failing = true;
    expect(errorBody(await decIds(f.bob, 'sae-b', 'sae-a', ids(enc)), 503, 'store down').message).toBe('the key ID store is unavailable');
    f.bob.store.failing = false;
    expectSameKeys(container(await decIds(f.bob, 'sae-b', 'sae-a', ids(enc)), 'store back'), enc);
  });
});

// ----------------------------------------------------------------------------------------------
describe('014 §6 Data format (JSON)', () => {
  it('014 §6 Data format: every answer with a body is JSON (application/json, UTF-8)', async () => {
    const answers = [
      await status(f.alice, 'sae-a', 'sae-b'),
      await encKeys(f.alice, 'sae-a', 'sae-b', { number: 1 }),
      await encKeys(f.alice, 'sae-a', 'sae-b', { size: 12 }),
      await decIds(f.bob, 'sae-b', 'sae-a', [UNKNOWN_KEY_ID]),
    ];
    for (const res of answers) {
      expect(res.headers['content-type']).toMatch(/^application\/json; charset=utf-8$/i);
      expect(() => JSON.parse(res.text)).not.toThrow();
    }
  });
});

describe('014 §6.1 Status data format', () => {
  it('014 §6.1 Status: every field of the Status data format, with this KME\'s values', async () => {
    const s = etsi014StatusSchema.parse((await status(f.alice, 'sae-a', 'sae-b')).body);
    expect(s).toEqual({
      source_KME_ID: 'KME-A',
      target_KME_ID: 'KME-B',
      master_SAE_ID: 'sae-a',
      slave_SAE_ID: 'sae-b',
      key_size: SETTINGS.keySize,
      stored_key_count: SETTINGS.maxKeyCount,
      max_key_count: SETTINGS.maxKeyCount,
      max_key_per_request: SETTINGS.maxKeyPerRequest,
      max_key_size: SETTINGS.maxKeySize,
      min_key_size: SETTINGS.minKeySize,
      max_SAE_ID_count: 0,
    });
  });

  it('014 §6.1 Status key_size: "Default size of key the KME can deliver to the SAE (in bit)" → a request without size gets keys of key_size bits', async () => {
    const s = etsi014StatusSchema.parse((await status(f.alice, 'sae-a', 'sae-b')).body);
    const c = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 2 }), 'no size');
    for (const k of c.keys) expect(Buffer.from(k.key, 'base64').length * 8).toBe(s.key_size);
  });

  it('014 §6.1 Status stored_key_count: "Number of stored keys KME can deliver to the SAE" → it counts exactly the keys a request can take now', async () => {
    await freezeProduction();
    expect(await storedKeyCount(f.alice, 'sae-a', 'sae-b')).toBe(40);
    container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 16 }), 'take 16');
    container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 16 }), 'take 16 more');
    const left = await storedKeyCount(f.alice, 'sae-a', 'sae-b');
    expect(left).toBe(8);
    // Exactly `left` keys of key_size can be taken now, and then none.
    container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: left }), `take ${left}`);
    expect(await storedKeyCount(f.alice, 'sae-a', 'sae-b')).toBe(0);
    errorBody(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 1 }), 503, 'none left');
  });

  it('014 §6.1 Status max_key_count: "Maximum number of stored_key_count" → stored_key_count never exceeds it while keys are produced', async () => {
    const seen: number[] = [];
    for (let i = 0; i < 10; i++) {
      const s = etsi014StatusSchema.parse((await status(f.alice, 'sae-a', 'sae-b')).body);
      seen.push(s.stored_key_count);
      expect(s.stored_key_count).toBeLessThanOrEqual(s.max_key_count);
      // The slave SAE fetches its copies: keys it never fetches would hold room at the slave KME.
      const enc = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 4 }), `enc ${i}`);
      container(await decIds(f.bob, 'sae-b', 'sae-a', ids(enc)), `dec ${i}`);
    }
    // Production refills the pair (in batches, once a quarter of max_key_count is free), never beyond it.
    const low = SETTINGS.maxKeyCount - SETTINGS.maxKeyCount / 4;
    await expect.poll(() => storedKeyCount(f.alice, 'sae-a', 'sae-b'), { timeout: 5000 }).toBeGreaterThanOrEqual(low);
    for (let i = 0; i < 5; i++) seen.push(await storedKeyCount(f.alice, 'sae-a', 'sae-b'));
    expect(Math.max(...seen)).toBeLessThanOrEqual(SETTINGS.maxKeyCount);
  });

  it('014 §6.1 Status max_key_per_request: "Maximum number of keys per request" → number = max_key_per_request succeeds, one more is 400', async () => {
    const s = etsi014StatusSchema.parse((await status(f.alice, 'sae-a', 'sae-b')).body);
    expect(container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: s.max_key_per_request }), 'at the limit').keys).toHaveLength(s.max_key_per_request);
    const over = errorBody(await encKeys(f.alice, 'sae-a', 'sae-b', { number: s.max_key_per_request + 1 }), 400, 'over the limit');
    expect(over.message).toMatch(/^number: must be an integer between 1 and 16 \(max_key_per_request\)/);
  });

  it('014 §6.1 Status max_key_size: "Maximum size of key the KME can deliver to the SAE (in bit)" → size = max_key_size succeeds, larger is 400', async () => {
    const s = etsi014StatusSchema.parse((await status(f.alice, 'sae-a', 'sae-b')).body);
    const c = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 1, size: s.max_key_size }), 'at max_key_size');
    expect(Buffer.from(c.keys[0]!.key, 'base64').length * 8).toBe(s.max_key_size);
    expectSameKeys(container(await decIds(f.bob, 'sae-b', 'sae-a', ids(c)), 'dec at max_key_size'), c);
    for (const size of [s.max_key_size + 8, 4 * s.max_key_size]) {
      expect(errorBody(await encKeys(f.alice, 'sae-a', 'sae-b', { size }), 400, `size ${size}`).message).toMatch(/^size: must be between 64 and 2048 bits/);
    }
  });

  it('014 §6.1 Status min_key_size: "Minimum size of key the KME can deliver to the SAE (in bit)" → size = min_key_size succeeds, smaller is 400', async () => {
    const s = etsi014StatusSchema.parse((await status(f.alice, 'sae-a', 'sae-b')).body);
    const c = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 2, size: s.min_key_size }), 'at min_key_size');
    for (const k of c.keys) expect(Buffer.from(k.key, 'base64').length * 8).toBe(s.min_key_size);
    expectSameKeys(container(await decIds(f.bob, 'sae-b', 'sae-a', ids(c)), 'dec at min_key_size'), c);
    expect(errorBody(await encKeys(f.alice, 'sae-a', 'sae-b', { size: s.min_key_size - 8 }), 400, 'below min').message).toMatch(/^size: must be between 64 and 2048 bits/);
  });

  it('014 §6.1 Status max_SAE_ID_count: "\'0\' when the KME does not support key multicast" → 0, and additional slave SAEs are refused', async () => {
    const s = etsi014StatusSchema.parse((await status(f.alice, 'sae-a', 'sae-b')).body);
    expect(s.max_SAE_ID_count).toBe(0);
    const res = errorBody(await encKeys(f.alice, 'sae-a', 'sae-b', { additional_slave_SAE_IDs: ['sae-c'] }), 400, 'multicast');
    expect(res.message).toMatch(/^additional_slave_SAE_IDs: .*max_SAE_ID_count is 0/);
  });
});

describe('014 §6.2 Key request data format', () => {
  it('014 §6.2 Key request number: "Number of keys requested, default value is 1" → {} and an empty body give one key', async () => {
    expect(container(await encKeys(f.alice, 'sae-a', 'sae-b', {}), '{}').keys).toHaveLength(1);
    expect(container(await encKeys(f.alice, 'sae-a', 'sae-b'), 'no body').keys).toHaveLength(1);
    expect(container(await encKeysGet(f.alice, 'sae-a', 'sae-b', ''), 'GET without query').keys).toHaveLength(1);
  });

  it('014 §6.2 Key request size: "default value is defined as key_size in Status data format" → size omitted gives key_size bits', async () => {
    const c = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 3 }), 'size omitted');
    for (const k of c.keys) expect(Buffer.from(k.key, 'base64').length).toBe(SETTINGS.keySize / 8);
  });

  it('014 §6.2 Key request size: 400 "size shall be a multiple of 8" (POST and GET), and no key is taken', async () => {
    await freezeProduction();
    for (const size of [100, 65, 2047]) {
      expect(errorBody(await encKeys(f.alice, 'sae-a', 'sae-b', { size }), 400, `size ${size}`)).toEqual({ message: 'size shall be a multiple of 8' });
    }
    expect(errorBody(await encKeysGet(f.alice, 'sae-a', 'sae-b', '?number=1&size=12'), 400, 'GET size 12')).toEqual({ message: 'size shall be a multiple of 8' });
    expect(await storedKeyCount(f.alice, 'sae-a', 'sae-b')).toBe(SETTINGS.maxKeyCount);
  });

  it('014 §6.2 Key request additional_slave_SAE_IDs: "The maximum number of IDs is defined as max_SAE_ID_count" → any ID is 400 here (0), an empty list is accepted', async () => {
    errorBody(await encKeys(f.alice, 'sae-a', 'sae-b', { additional_slave_SAE_IDs: ['sae-c'] }), 400, 'one additional slave');
    errorBody(await encKeys(f.alice, 'sae-a', 'sae-b', { additional_slave_SAE_IDs: 'sae-c' }), 400, 'not a list');
    expect(container(await encKeys(f.alice, 'sae-a', 'sae-b', { additional_slave_SAE_IDs: [] }), 'empty list').keys).toHaveLength(1);
  });

  it('014 §6.2 Key request extension_mandatory: "KME shall handle or return an error" → 400 "not all extension_mandatory parameters are supported" with details naming each', async () => {
    const res = errorBody(await encKeys(f.alice, 'sae-a', 'sae-b', { extension_mandatory: [{ abc_route_type: 'direct' }, { abc_transfer_method: 'qkd' }] }), 400, 'extension_mandatory');
    expect(res).toEqual({
      message: 'not all extension_mandatory parameters are supported',
      details: [
        { extension_mandatory: 'abc_route_type', reason: 'not supported' },
        { extension_mandatory: 'abc_transfer_method', reason: 'not supported' },
      ],
    });
    expect(container(await encKeys(f.alice, 'sae-a', 'sae-b', { extension_mandatory: [] }), 'empty list').keys).toHaveLength(1);
  });

  it('014 §6.2 Key request extension_optional: "KME may ignore" → accepted and ignored', async () => {
    const c = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 2, extension_optional: [{ abc_priority: 1 }] }), 'extension_optional');
    expect(c.keys).toHaveLength(2);
    expect(c.key_container_extension).toBeUndefined();
  });
});

describe('014 §6.3 Key container data format', () => {
  it('014 §6.3 Key container keys: "The number of keys is specified by the \'number\' parameter" → exactly number keys, in enc_keys and dec_keys', async () => {
    for (const number of [1, 5, 16]) {
      const enc = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number }), `number ${number}`);
      expect(enc.keys).toHaveLength(number);
      expect(container(await decIds(f.bob, 'sae-b', 'sae-a', ids(enc)), `dec number ${number}`).keys).toHaveLength(number);
    }
  });

  it('014 §6.3 Key container key_ID: "ID of the key: UUID format" → every key_ID is a UUID, unique', async () => {
    const enc = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 16 }), 'enc');
    for (const id of ids(enc)) expect(id).toMatch(UUID_RE);
    expect(new Set(ids(enc)).size).toBe(16);
  });

  it('014 §6.3 Key container key: "Key data encoded by base64" → strict RFC 4648 base64 of size / 8 bytes, equal at both KMEs', async () => {
    for (const size of [64, 264, 1024]) {
      const enc = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 2, size }), `size ${size}`);
      for (const k of enc.keys) {
        expect(isStrictBase64(k.key), `key ${k.key_ID} is base64`).toBe(true);
        expect(Buffer.from(k.key, 'base64').length).toBe(size / 8);
      }
      const dec = container(await decIds(f.bob, 'sae-b', 'sae-a', ids(enc)), `dec size ${size}`);
      expect(dec.keys.every((k, i) => k.key === enc.keys[i]!.key && k.key_ID === enc.keys[i]!.key_ID), 'same keys under the same key_IDs').toBe(true);
    }
  });
});

describe('014 §6.4 Key IDs data format', () => {
  it('014 §6.4 Key IDs key_IDs: array of {key_ID} → all named keys, in the order asked', async () => {
    const enc = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 3 }), 'enc');
    const reversed = [...ids(enc)].reverse();
    const dec = container(await decIds(f.bob, 'sae-b', 'sae-a', reversed), 'dec reversed');
    expect(ids(dec)).toEqual(reversed);
    expectSameKeys(dec, { keys: [...enc.keys].reverse() });
  });

  it('014 §6.4 Key IDs key_ID_extension / key_IDs_extension: "(Option) for future use" → accepted and ignored', async () => {
    const enc = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 1 }), 'enc');
    const body = { key_IDs: [{ key_ID: ids(enc)[0], key_ID_extension: { abc: 1 } }], key_IDs_extension: { abc: 2 } };
    expectSameKeys(container(await decKeys(f.bob, 'sae-b', 'sae-a', body), 'with extensions'), enc);
  });

  it('014 §6.4 Key IDs: a body that is not a Key IDs object → 400 with an Error body', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ key_IDs: [{ key_ID: 'not-a-uuid' }] }, /^key_IDs\.0\.key_ID: must be a UUID/],
      [{ key_IDs: [] }, /^key_IDs: must name at least one key_ID/],
      [{}, /^key_IDs: /],
      [{ key_IDs: ['00000000-0000-4000-8000-000000000000'] }, /^key_IDs\.0: /],
      ['{"key_IDs": ', /^body: not valid JSON/],
      ['', /^body: /],
    ];
    for (const [body, message] of cases) {
      expect(errorBody(await decKeys(f.bob, 'sae-b', 'sae-a', body), 400, JSON.stringify(body)).message, JSON.stringify(body)).toMatch(message);
    }
    expect(errorBody(await decKeysGet(f.bob, 'sae-b', 'sae-a', ''), 400, 'GET without key_ID').message).toMatch(/^key_ID: /);
    expect(errorBody(await decKeysGet(f.bob, 'sae-b', 'sae-a', '?key_ID=nope'), 400, 'GET malformed key_ID').message).toMatch(/^key_ID: /);
  });

  it('014 §6.4 Key IDs: more key_IDs than max_key_per_request → 400, nothing taken', async () => {
    const a = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 16 }), 'enc 16');
    const b = container(await encKeys(f.alice, 'sae-a', 'sae-b', { number: 1 }), 'enc 1');
    const all = [...ids(a), ...ids(b)];
    expect(errorBody(await decIds(f.bob, 'sae-b', 'sae-a', all), 400, '17 key_IDs').message).toMatch(/^key_IDs: at most 16 per request \(max_key_per_request\)/);
    expectSameKeys(container(await decIds(f.bob, 'sae-b', 'sae-a', ids(a)), 'the first 16'), a);
    expectSameKeys(container(await decIds(f.bob, 'sae-b', 'sae-a', ids(b)), 'the 17th'), b);
  });
});

describe('014 §6.5 Error data format', () => {
  it('014 §6.5 Error message: every 400 answer is {message} with a string message (and nothing else but details)', async () => {
    const answers = [
      await encKeys(f.alice, 'sae-a', 'sae-b', { size: 100 }),
      await encKeys(f.alice, 'sae-a', 'sae-b', { number: 99 }),
      await encKeys(f.alice, 'sae-a', 'sae-b', { additional_slave_SAE_IDs: ['sae-c'] }),
      await decIds(f.bob, 'sae-b', 'sae-a', [UNKNOWN_KEY_ID]),
      await status(f.alice, 'sae-a', 'sae-z'),
    ];
    for (const [i, res] of answers.entries()) {
      const body = errorBody(res, 400, `answer ${i}`);
      expect(body.message.length).toBeGreaterThan(0);
      expect(Object.keys(res.body).every((k) => k === 'message' || k === 'details')).toBe(true);
    }
  });

  it('014 §6.5 Error details: "Array to supply additional detailed error information" → an array of name/value objects when present', async () => {
    const res = errorBody(await encKeys(f.alice, 'sae-a', 'sae-b', { extension_mandatory: [{ abc_x: true }] }), 400, 'extension_mandatory');
    expect(Array.isArray(res.details)).toBe(true);
    for (const d of res.details!) expect(typeof d).toBe('object');
  });

  it('014 §6.5 Error: 503 answers carry the Error data format; 401 answers carry no body', async () => {
    f.alice.fault = () => 'drop';
    const down = await encKeys(f.alice, 'sae-a', 'sae-b', {});
    expect(errorBody(down, 503, 'peer down').message.length).toBeGreaterThan(0);
    expect(Object.keys(down.body).every((k) => k === 'message' || k === 'details')).toBe(true);
    f.alice.fault = () => 'none';
    unauthorized(await encKeys(f.alice, undefined, 'sae-b', {}), 'no identity');
  });
});
