/**
 * Key-server conformance, first generation: two real module processes driven exactly as the QKD Key
 * Server of ignaziopedone/qkd-keyserver (volumes/source/KeyServer.py) drives its modules, in both
 * generations of the original module's routes:
 *
 *   root     KeyServer.py at 2ced8e3 (2021-02-24; the same module calls since 6fa88e4, 2021-01-24):
 *            POST /open_connect, POST /get_key, POST /available_keys with body repr([handle])
 *   renamed  KeyServer.py at fb90256 ("Renamed API", 2021-04-18):
 *            POST /api/v1/qkdm/actions/open_connect, POST /api/v1/qkdm/actions/get_key,
 *            GET /api/v1/qkdm/available_keys?handle= + repr([handle])
 *
 * No KeyServer.py that talks to the module over HTTP calls close (only the first, in-process version,
 * bafa784, called the module's QKD_CLOSE directly), so close is not driven here (test/api/routes.test.ts
 * covers it). The key server's calls are made with
 * python-requests: `data=repr(...)` sends the literal with no Content-Type, and the URL of the GET is
 * sent as built (quotes and brackets unencoded); the raw client below does the same. The key server
 * reads answers with `eval`; `evalAnswer` is its stand-in (this module's literal parser) and keeps the
 * strictness that matters: `a, b, c = eval(...)` needs exactly three elements, and `bytearray + chunk`
 * needs bytes.
 *
 * Comments quote the key-server lines followed, paraphrased, as "KS <commit>: ...".
 */
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePyLiteral, toPyLiteral, type PyValue } from '../../src/api/codec/pyLiteral.js';
import { freePort, getJson, startModule, tempDir, type RunningModule } from '../support/processes.js';

/** The qos timeout of the key server's example configuration (volumes/alice/config.yaml, global.timeout). */
const KS_TIMEOUT_MS = 300_000;

interface Generation {
  name: 'root' | 'renamed';
  commit: string;
  openConnect: string;
  getKey: string;
  /** available_keys for a handle, as the key server asks it. */
  availableKeys(module: RunningModule, handle: string | null): Promise<RawAnswer>;
}

const GENERATIONS: Generation[] = [
  {
    name: 'root',
    commit: '2ced8e3',
    openConnect: '/open_connect',
    getKey: '/get_key',
    // KS 2ced8e3 (status, enc_keys, reserveKeys): POST <module>/available_keys with the body repr([handle]).
    availableKeys: (m, handle) => raw(m, 'POST', '/available_keys', toPyLiteral([handle])),
  },
  {
    name: 'renamed',
    commit: 'fb90256',
    openConnect: '/api/v1/qkdm/actions/open_connect',
    getKey: '/api/v1/qkdm/actions/get_key',
    // KS fb90256 (status, enc_keys, reserveKeys): GET <module>/api/v1/qkdm/available_keys?handle= followed by repr([handle]), unencoded.
    availableKeys: (m, handle) => raw(m, 'GET', `/api/v1/qkdm/available_keys?handle=${toPyLiteral([handle])}`),
  },
];

interface RawAnswer {
  status: number;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

/** One HTTP call as python-requests makes it: the path as given, a str body with no Content-Type. */
function raw(m: RunningModule, method: 'GET' | 'POST', path: string, body?: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const bytes = body === undefined ? undefined : Buffer.from(body, 'utf8');
    const req = httpRequest(
      { host: '127.0.0.1', port: m.spec.port, method, path, headers: bytes ? { 'content-length': String(bytes.length) } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(bytes);
  });
}

/** The key server's `eval(x.content)`, by this module's literal parser (what eval would make of it). */
function evalAnswer(text: string): PyValue {
  return parsePyLiteral(text);
}

/** `a, b, c = eval(x.content)`: Python raises ValueError unless the answer has exactly three elements. */
function unpack3(value: PyValue): [PyValue, PyValue, PyValue] {
  if (!Array.isArray(value) || value.length !== 3) throw new Error(`ValueError: expected 3 values to unpack, got ${JSON.stringify(value)}`);
  return value as [PyValue, PyValue, PyValue];
}

/** `bytearray + chunk`: Python raises TypeError unless the chunk is bytes. */
function concat(key: Uint8Array, chunk: PyValue): Uint8Array {
  if (!(chunk instanceof Uint8Array)) throw new Error(`TypeError: can't concat ${chunk === null ? 'NoneType' : typeof chunk} to bytearray`);
  return Buffer.concat([key, chunk]);
}

type EncResult = { ok: true; keys: Array<{ keyId: string; key: string }> } | { ok: false; httpStatus: number; reason: string };
type ReserveResult = { ok: true; keys: Map<string, string> } | { ok: false; httpStatus: number; reason: string };

/** One key server as KeyServer.py is toward its QKD module (only the calls it makes to the module). */
class KeyServerV1 {
  constructor(
    readonly gen: Generation,
    readonly module: RunningModule,
  ) {}

  /**
   * KS fb90256 / 2ced8e3, exchanger thread (KeyServerExchanger.run): qos is the global timeout and, as
   * length, the peer's MAX_KEY_SIZE from the exchangedKeys table; it POSTs repr([None, <peer module
   * address>, qos, None]) to open_connect. A status other than 200 makes it move on to the next peer
   * (it retries on a later pass); otherwise it evaluates the body and keeps element 0 as the handle and
   * element 1 as the status (not checked), then sends the handle to the peer key server.
   */
  async openFirst(peerModuleAddress: string, maxKeySize: number): Promise<{ stored: boolean; handle: PyValue; answer: RawAnswer }> {
    const qos = { timeout: KS_TIMEOUT_MS, length: maxKeySize };
    const answer = await raw(this.module, 'POST', this.gen.openConnect, toPyLiteral([null, peerModuleAddress, qos, null]));
    if (answer.status !== 200) return { stored: false, handle: null, answer };
    const response = evalAnswer(answer.text) as PyValue[];
    return { stored: true, handle: response[0]!, answer };
  }

  /**
   * KS fb90256 / 2ced8e3, second request of POST /api/v1/keys/ (the peer key server's handle arrives):
   * qos is the global timeout and length 128, hard-coded ("TODO: better management"), whatever the
   * first end asked; it POSTs repr([None, <first module address>, qos, handle]) to open_connect and
   * answers "OK" without looking at the module's answer.
   */
  async openSecond(peerModuleAddress: string, handle: PyValue): Promise<RawAnswer> {
    const qos = { timeout: KS_TIMEOUT_MS, length: 128 };
    return raw(this.module, 'POST', this.gen.openConnect, toPyLiteral([null, peerModuleAddress, qos, handle]));
  }

  /** KS (status, enc_keys, reserveKeys): a status other than 200 counts as 0 keys; else int(eval(body)[0]). */
  async availableKeys(handle: string | null): Promise<number> {
    const x = await this.gen.availableKeys(this.module, handle);
    if (x.status !== 200) return 0;
    return Number((evalAnswer(x.text) as PyValue[])[0]);
  }

  /** One GET_KEY chunk as the key server asks it: repr([handle, -1, None]). */
  getKeyChunk(handle: PyValue): Promise<RawAnswer> {
    return raw(this.module, 'POST', this.gen.getKey, toPyLiteral([handle, -1, null]));
  }

  /**
   * KS fb90256 / 2ced8e3, POST /api/v1/keys/<slave>/enc_keys: the key length in bytes is size / 8;
   * keys come from the module in chunks of 128 bits, so each key needs ceil(bytes / 16) GET_KEY calls;
   * if number * chunks exceeds available_keys it answers 400. For each key it asks the chunks with
   * index -1; any status other than 200 ends the request with 400 "no key is available"; otherwise it
   * unpacks chunk, index, status from the evaluated body, appends the chunk, remembers the first
   * chunk's index, cuts the key to its length and names it <KID>-<index>.
   */
  async encKeys(handle: PyValue, kid: string, number: number, sizeBits: number): Promise<EncResult> {
    const keysLen = Math.trunc(sizeBits / 8);
    const requiredKeys = Math.ceil(keysLen / 16);
    const availKeys = await this.availableKeys(handle as string);
    if (number * requiredKeys > availKeys) return { ok: false, httpStatus: 400, reason: 'Requested more keys than available' };
    const keys: Array<{ keyId: string; key: string }> = [];
    for (let j = 0; j < number; j++) {
      let index: PyValue = 0;
      let key: Uint8Array = new Uint8Array(0);
      for (let i = 0; i < requiredKeys; i++) {
        const x = await this.getKeyChunk(handle);
        if (x.status !== 200) return { ok: false, httpStatus: 400, reason: 'no key is available' };
        const [chunk, midIndex] = unpack3(evalAnswer(x.text));
        key = concat(key, chunk);
        if (i === 0) index = midIndex;
      }
      key = key.subarray(0, keysLen);
      keys.push({ keyId: `${kid}-${String(index)}`, key: Buffer.from(key).toString('base64') });
    }
    return { ok: true, keys };
  }

  /**
   * KS fb90256 / 2ced8e3, POST /api/v1/kids/<master> (the peer key server reserves the same keys):
   * chunks per key ceil(length / 16); 400 "Not enough keys" when kids * chunks exceed available_keys;
   * for each key ID it asks the chunks with index -1 (the index in the key ID is parsed but not sent);
   * any status other than 200 is 400 "key unavailable"; else it unpacks, appends and cuts the key.
   */
  async reserveKeys(handle: PyValue, klen: number, kids: string[]): Promise<ReserveResult> {
    const requiredKeys = Math.ceil(klen / 16);
    const availKeys = await this.availableKeys(handle as string);
    if (kids.length * requiredKeys > availKeys) return { ok: false, httpStatus: 400, reason: 'Not enough keys' };
    const keys = new Map<string, string>();
    for (const kid of kids) {
      let key: Uint8Array = new Uint8Array(0);
      for (let j = 0; j < requiredKeys; j++) {
        const x = await this.getKeyChunk(handle);
        if (x.status !== 200) return { ok: false, httpStatus: 400, reason: 'key unavailable' };
        const [chunk] = unpack3(evalAnswer(x.text));
        key = concat(key, chunk);
      }
      keys.set(kid, Buffer.from(key.subarray(0, klen)).toString('base64'));
    }
    return { ok: true, keys };
  }
}

let alice: RunningModule;
let bob: RunningModule;

beforeAll(async () => {
  // One listener per module, as the original: the address registered with the key server (this_public_IP)
  // is both where the key server calls the module and the destination the peer module dials.
  const [pa, pb] = [await freePort(), await freePort()];
  alice = await startModule({ name: 'alice', sender: 1, port: pa, dataDir: tempDir('ks1-alice'), maxKeyCount: 20 });
  bob = await startModule({ name: 'bob', sender: 0, port: pb, dataDir: tempDir('ks1-bob'), maxKeyCount: 20 });
});
afterAll(async () => {
  await Promise.all([alice?.kill('SIGKILL'), bob?.kill('SIGKILL')]);
});

/** Waits (bounded) until both key servers see at least `n` keys: an SAE retries enc_keys until then. */
async function untilAvailable(ksA: KeyServerV1, ksB: KeyServerV1, handle: string, n: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  while ((await ksA.availableKeys(handle)) < n || (await ksB.availableKeys(handle)) < n) {
    if (Date.now() > deadline) throw new Error(`fewer than ${n} keys at one end after 15 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.each(GENERATIONS)('KeyServer.py $name routes (qkd-keyserver $commit)', (gen) => {
  it('when the two key servers open the pair (first with None, second with the handle and length 128), then both module calls answer 200 [handle, 0] and the stream is open at both ends', async () => {
    const ksA = new KeyServerV1(gen, alice);
    const ksB = new KeyServerV1(gen, bob);
    // MAX_KEY_SIZE of the key server's example data (db_init.sql, exchangedKeys): 128.
    const first = await ksA.openFirst(bob.address, 128);
    expect(first.answer.status).toBe(200);
    expect(first.stored).toBe(true);
    const handle = first.handle as string;
    expect(evalAnswer(first.answer.text)).toEqual([handle, 0]);
    const second = await ksB.openSecond(alice.address, handle);
    expect(second.status).toBe(200);
    expect(evalAnswer(second.text)).toEqual([handle, 0]);
    expect((await getJson(bob.url, `/streams/${handle}`)).body).toMatchObject({ length: 128, localOpen: true, peerOpen: true });
    await untilAvailable(ksA, ksB, handle, 1);
  });

  it('when an SAE asks enc_keys and the peer key server reserves the key IDs, then both key servers hold identical keys built from 16-byte chunks', async () => {
    const ksA = new KeyServerV1(gen, alice);
    const ksB = new KeyServerV1(gen, bob);
    const handle = (await ksA.openFirst(bob.address, 128)).handle as string;
    expect((await ksB.openSecond(alice.address, handle)).status).toBe(200);
    // 3 keys of 256 bits: 32 bytes each, 2 chunks of 16 bytes per key, 6 GET_KEY calls at each end.
    await untilAvailable(ksA, ksB, handle, 6);
    const enc = await ksA.encKeys(handle, 'kid-1', 3, 256);
    if (!enc.ok) throw new Error(`enc_keys failed: ${enc.reason}`);
    expect(enc.keys.map((k) => k.keyId)).toEqual(['kid-1-0', 'kid-1-2', 'kid-1-4']);
    const reserved = await ksB.reserveKeys(handle, 32, enc.keys.map((k) => k.keyId));
    if (!reserved.ok) throw new Error(`reserve failed: ${reserved.reason}`);
    for (const { keyId, key } of enc.keys) {
      expect(Buffer.from(key, 'base64')).toHaveLength(32);
      expect(reserved.keys.get(keyId), keyId).toBe(key);
    }
    expect(new Set(enc.keys.map((k) => k.key)).size).toBe(3);
  });

  it('when the first end asks the table default MAX_KEY_SIZE (1024) and the second joins with 128, then the join takes 1024 (as the original overwrote it) and the keys still match', async () => {
    const ksA = new KeyServerV1(gen, alice);
    const ksB = new KeyServerV1(gen, bob);
    const handle = (await ksA.openFirst(bob.address, 1024)).handle as string;
    const second = await ksB.openSecond(alice.address, handle);
    expect(second.status).toBe(200);
    expect(evalAnswer(second.text)).toEqual([handle, 0]);
    expect((await getJson(bob.url, `/streams/${handle}`)).body).toMatchObject({ length: 1024, localOpen: true });
    await untilAvailable(ksA, ksB, handle, 2);
    const enc = await ksA.encKeys(handle, 'kid-2', 2, 256);
    if (!enc.ok) throw new Error(`enc_keys failed: ${enc.reason}`);
    const reserved = await ksB.reserveKeys(handle, 32, enc.keys.map((k) => k.keyId));
    if (!reserved.ok) throw new Error(`reserve failed: ${reserved.reason}`);
    for (const { keyId, key } of enc.keys) expect(reserved.keys.get(keyId), keyId).toBe(key);
  });

  it('when the peer module is down at open, then open_connect answers HTTP 400 [None, 2] and the key server stores no handle (it moves on and retries)', async () => {
    const ksA = new KeyServerV1(gen, alice);
    const nobody = `127.0.0.1:${await freePort()}`;
    const first = await ksA.openFirst(nobody, 128);
    expect(first.answer.status).toBe(400);
    expect(first.stored).toBe(false);
    expect(evalAnswer(first.answer.text)).toEqual([null, 2]);
    expect(first.answer.headers['x-qkdm-error']).toBe('PEER_UNREACHABLE');
    expect(first.answer.headers['x-qkdm-message']).not.toContain(nobody);
  });

  it('when no key is available at get_key, then the module answers HTTP 400 [None, -1, 1] at once (not after the 300 s qos timeout) and enc_keys fails cleanly', async () => {
    const ksA = new KeyServerV1(gen, alice);
    // The second key server never opens: the stream exists at Alice, with no key ever.
    const first = await ksA.openFirst(bob.address, 128);
    const handle = first.handle as string;
    expect(await ksA.availableKeys(handle)).toBe(0);
    const t0 = Date.now();
    const x = await ksA.getKeyChunk(handle);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(x.status).toBe(400);
    expect(evalAnswer(x.text)).toEqual([null, -1, 1]);
    expect(x.headers['x-qkdm-message']).toMatch(/no key available/);
    // enc_keys itself stops at its available_keys check; a reservation racing ahead of the exchange
    // (the check passed, the key is not there) stops at the first chunk with "key unavailable".
    expect(await ksA.encKeys(handle, 'kid-3', 1, 128)).toEqual({ ok: false, httpStatus: 400, reason: 'Requested more keys than available' });
  });

  it('when the handle is unknown (or None, stored by a failed open), then get_key answers HTTP 400 of the original arity and available_keys a non-200 the key server counts as 0', async () => {
    const ksA = new KeyServerV1(gen, alice);
    const unknown = '6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab';
    const g = await ksA.getKeyChunk(unknown);
    expect(g.status).toBe(400);
    expect(evalAnswer(g.text)).toEqual([null, -1, 2]);
    expect(g.headers['x-qkdm-error']).toBe('UNKNOWN_STREAM');
    expect(g.headers['x-qkdm-message']).not.toContain(unknown);
    const a = await gen.availableKeys(alice, unknown);
    expect(a.status).toBe(400);
    expect(evalAnswer(a.text)).toEqual([0]);
    expect(await ksA.availableKeys(unknown)).toBe(0);
    const none = await ksA.getKeyChunk(null);
    expect(none.status).toBe(400);
    expect(evalAnswer(none.text)).toEqual([null, -1, 1]);
    expect(none.headers['x-qkdm-error']).toBe('BAD_REQUEST');
    // repr([None]) names no stream: the count over the caller's streams, as the original's single-stream count.
    const all = await gen.availableKeys(alice, null);
    expect(all.status).toBe(200);
    expect(evalAnswer(all.text)).toEqual([expect.any(Number)]);
  });
});
