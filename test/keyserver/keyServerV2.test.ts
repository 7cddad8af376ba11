/**
 * The key server 2.0 interface (src/api/routes/keyServerV2.ts) on two real module processes, driven
 * exactly as the 2.0 key server drives its modules. The calls followed, paraphrased, are those of
 * ignaziopedone/qkd-keyserver qks_core/api.py at commit 51dd738e01b578d80ba97cd7c86399ffa66c1bf0
 * (file last changed in d880d4dcb0eedf4d7e7f602b9caafa0f6e791e40), and of the module side,
 * ignaziopedone/qkd-module qkdm_src/qkdm_server.py + api.py at 0ee848acc02d82b576d5990145e94385d421dd66.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { toPyLiteral } from '../../src/api/codec/pyLiteral.js';
import { freePort, startModule, tempDir, type RunningModule } from '../support/processes.js';

const ACTIONS = '/api/v1/qkdm/actions';
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

let running: RunningModule[] = [];
afterEach(async () => {
  await Promise.all(running.map((m) => m.kill('SIGKILL')));
  running = [];
});

/** Alice (sender) and Bob (detector), each configured with the other as keyserver.peer_module. */
async function pair(keySize = 128): Promise<{ alice: RunningModule; bob: RunningModule }> {
  const [pa, pb] = [await freePort(), await freePort()];
  // A generous peer deadline: the first peer call opens a session (a post-quantum signed handshake), slow on a loaded host.
  const env = (peerPort: number): Record<string, string> => ({
    QKDM_KEYSERVER_PEER_MODULE: `127.0.0.1:${peerPort}`,
    QKDM_KEYSERVER_KEY_SIZE: String(keySize),
    QKDM_MODULE_PEER_TIMEOUT_MS: '10000',
  });
  const alice = await startModule({ name: 'alice', sender: 1, port: pa, dataDir: tempDir('ks2-alice'), maxKeyCount: 10, env: env(pb) });
  running.push(alice);
  const bob = await startModule({ name: 'bob', sender: 0, port: pb, dataDir: tempDir('ks2-bob'), maxKeyCount: 10, env: env(pa) });
  running.push(bob);
  return { alice, bob };
}

interface Answer {
  status: number;
  body: any;
}

/** A call as the 2.0 key server makes it: aiohttp `json=` (application/json) or a bare GET. */
async function call(m: RunningModule, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Answer> {
  const res = await fetch(`${m.url}${ACTIONS}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  return { status: res.status, body: await res.json() };
}

/** attach at both modules: in the key server's tests/global_test.http the admin posts {qks_src_IP, qks_src_port, qks_src_ID, qks_dest_ID} to each module's /attach. */
async function attachBoth(alice: RunningModule, bob: RunningModule): Promise<void> {
  const a = await call(alice, 'POST', '/attach', { qks_src_IP: '127.0.0.1', qks_src_port: 4001, qks_src_ID: 'qks1', qks_dest_ID: 'qks2' });
  expect(a).toEqual({ status: 200, body: { status: 0, message: expect.any(String) } });
  const b = await call(bob, 'POST', '/attach', { qks_src_IP: '127.0.0.1', qks_src_port: 4002, qks_src_ID: 'qks2', qks_dest_ID: 'qks1' });
  expect(b).toEqual({ status: 200, body: { status: 0, message: expect.any(String) } });
}

/**
 * startQKDMStream (api.py): qks1 posts {source: its own ID, destination: the peer key server's ID} to its
 * module's open_connect and reads `status` and `key_stream_ID` (failure when status != 0 or HTTP != 200);
 * then createStream at qks2 posts {key_stream_ID, source: qks1 (source_qks_ID), destination: qks2} to its module.
 */
async function openStream(alice: RunningModule, bob: RunningModule): Promise<string> {
  const a = await call(alice, 'POST', '/open_connect', { source: 'qks1', destination: 'qks2' });
  expect(a.status).toBe(200);
  expect(a.body).toEqual({ status: 0, key_stream_ID: expect.stringMatching(/^[0-9a-f-]{36}$/) });
  const id = a.body.key_stream_ID as string;
  const b = await call(bob, 'POST', '/open_connect', { key_stream_ID: id, source: 'qks1', destination: 'qks2' });
  expect(b).toEqual({ status: 200, body: { status: 0, key_stream_ID: id } });
  return id;
}

describe('key server 2.0 interface, two real modules', () => {
  it('when driven as the 2.0 key server does (attach, open_connect at both ends, get_id, check_id, get_key by index lists, close), then both ends return identical keys', async () => {
    const { alice, bob } = await pair(128);
    await attachBoth(alice, bob);
    const id = await openStream(alice, bob);

    // getStatus: GET get_id/<id> without count; `available_indexes` is read as stored_key_count.
    await expect.poll(async () => (await call(alice, 'GET', `/get_id/${id}`)).body.available_indexes, { timeout: 10_000 }).toBeGreaterThanOrEqual(4);
    // getKey: GET get_id/<id>?count=-1 (status 0 and HTTP 200 required); the kids are `available_indexes`,
    // cut into chunks of ceil(key_size / standard_key_size) per key: here 256-bit keys from 128-bit chunks.
    const ids = await call(alice, 'GET', `/get_id/${id}?count=-1`);
    expect(ids.status).toBe(200);
    expect(ids.body.status).toBe(0);
    const kids = (ids.body.available_indexes as number[]).slice(0, 2);
    expect(kids).toHaveLength(2);
    expect((await call(alice, 'GET', `/get_id/${id}?count=1`)).body.available_indexes).toEqual(kids.slice(0, 1));

    // reserveKeys at the peer key server: POST check_id {key_stream_ID, indexes} to its module; anything but
    // status 0 / HTTP 200 fails the reservation. (The detector commits a round just after the sender, so a
    // key server that asks at once may be refused and retry, as here.)
    await expect.poll(async () => (await call(bob, 'POST', '/check_id', { key_stream_ID: id, indexes: kids })).body.status, { timeout: 5000 }).toBe(0);
    expect(await call(bob, 'POST', '/check_id', { key_stream_ID: id, indexes: kids })).toEqual({ status: 200, body: { status: 0, message: expect.any(String) } });

    // requireSingleKey at both key servers: POST get_key {key_stream_ID, indexes}; `keys` are base64 chunks
    // concatenated into the key (failure when status != 0 or HTTP != 200).
    const a = await call(alice, 'POST', '/get_key', { key_stream_ID: id, indexes: kids });
    const b = await call(bob, 'POST', '/get_key', { key_stream_ID: id, indexes: kids });
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(a.body).toEqual({ status: 0, indexes: kids, keys: [expect.any(String), expect.any(String)] });
    expect(b.body).toEqual(a.body);
    for (const k of a.body.keys as string[]) expect(Buffer.from(k, 'base64')).toHaveLength(16);
    expect(a.body.keys[0]).not.toBe(a.body.keys[1]);

    // Taken keys are listed no more, and check_id refuses them (status 10, HTTP 503).
    const after = await call(alice, 'GET', `/get_id/${id}?count=-1`);
    for (const k of kids) expect(after.body.available_indexes).not.toContain(k);
    expect(await call(alice, 'POST', '/check_id', { key_stream_ID: id, indexes: kids })).toEqual({ status: 503, body: { status: 10, message: expect.any(String) } });

    // deleteQKDMStreams / closeStream: POST close {key_stream_ID} at both modules; status 0 and HTTP 200.
    expect(await call(bob, 'POST', '/close', { key_stream_ID: id })).toEqual({ status: 200, body: { status: 0, message: expect.any(String) } });
    expect(await call(alice, 'POST', '/close', { key_stream_ID: id })).toEqual({ status: 200, body: { status: 0, message: expect.any(String) } });
    // Closed here: this end's unused keys were erased, so nothing is listed and nothing can be taken.
    expect((await call(alice, 'GET', `/get_id/${id}`)).body.available_indexes).toBe(0);
    expect(await call(alice, 'POST', '/get_key', { key_stream_ID: id, indexes: [kids[1]! + 1] })).toEqual({ status: 503, body: { status: 2, message: expect.any(String) } });
  });

  it('when a call names an unknown stream or keys that are not there, then it answers 503 {status, message}, and a failed get_key takes no key', async () => {
    const { alice, bob } = await pair(256);
    await attachBoth(alice, bob);
    // qkdm_server.py: KSID not found is status 9 for get_id, get_key and close; check_id answers 10 for it.
    for (const [method, path, body] of [
      ['GET', `/get_id/${UNKNOWN_ID}?count=-1`, undefined],
      ['POST', '/get_key', { key_stream_ID: UNKNOWN_ID, indexes: [0] }],
      ['POST', '/close', { key_stream_ID: UNKNOWN_ID }],
    ] as const) {
      expect(await call(alice, method, path, body), path).toEqual({ status: 503, body: { status: 9, message: expect.any(String) } });
    }
    expect(await call(alice, 'POST', '/check_id', { key_stream_ID: UNKNOWN_ID, indexes: [0] })).toEqual({ status: 503, body: { status: 10, message: expect.any(String) } });

    const id = await openStream(alice, bob);
    await expect.poll(async () => (await call(alice, 'GET', `/get_id/${id}`)).body.available_indexes, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
    const [held] = (await call(alice, 'GET', `/get_id/${id}?count=1`)).body.available_indexes as number[];
    // GET_KEY: not every index available -> status 2 (insufficient key), and nothing is taken.
    const none = await call(alice, 'POST', '/get_key', { key_stream_ID: id, indexes: [held, 1_000_000] });
    expect(none).toEqual({ status: 503, body: { status: 2, message: expect.any(String) } });
    expect(JSON.stringify(none.body)).not.toMatch(/[A-Za-z0-9+/]{20,}={0,2}/); // no key material in a failure
    expect((await call(alice, 'POST', '/check_id', { key_stream_ID: id, indexes: [held] })).body.status).toBe(0);
    const one = await call(alice, 'POST', '/get_key', { key_stream_ID: id, indexes: [held] });
    expect(one.body).toEqual({ status: 0, indexes: [held], keys: [expect.any(String)] });
    expect(Buffer.from(one.body.keys[0], 'base64')).toHaveLength(32);
    // Asked again within module.redelivery_window_s (a lost answer): the same key, never another one.
    expect((await call(alice, 'POST', '/get_key', { key_stream_ID: id, indexes: [held] })).body).toEqual(one.body);
    expect((await call(alice, 'POST', '/get_key', { key_stream_ID: id, indexes: [held, held] })).status).toBe(400);

    // Malformed: HTTP 400 {message} naming the field (the original's 400 carries only a message).
    const bad = await call(alice, 'POST', '/get_key', { key_stream_ID: id, indexes: 'all' });
    expect(bad.status).toBe(400);
    expect(Object.keys(bad.body)).toEqual(['message']);
    expect(bad.body.message).toContain('indexes');
    expect((await call(alice, 'GET', `/get_id/${id}?count=some`)).status).toBe(400);
  });

  it('when the peer module is down, attach names other key servers or open_connect names key servers it is not attached to, then open_connect and attach fail with 503 {status, message}', async () => {
    const { alice, bob } = await pair();
    await attachBoth(alice, bob);
    // attach again with the same key servers: status 0; with others: 12 (already attached).
    expect((await call(alice, 'POST', '/attach', { qks_src_IP: '127.0.0.1', qks_src_port: 4001, qks_src_ID: 'qks1', qks_dest_ID: 'qks2' })).body.status).toBe(0);
    expect(await call(alice, 'POST', '/attach', { qks_src_IP: '127.0.0.1', qks_src_port: 4009, qks_src_ID: 'qks9', qks_dest_ID: 'qks2' })).toEqual({
      status: 503,
      body: { status: 12, message: expect.any(String) },
    });
    expect(await call(alice, 'POST', '/open_connect', { source: 'qks1', destination: 'qks3' })).toEqual({ status: 503, body: { status: 4, message: expect.any(String) } });

    // The first generation keeps its routes on the same paths: a Python literal is the seed API's.
    const seed = await fetch(`${alice.url}${ACTIONS}/close`, { method: 'POST', body: toPyLiteral([UNKNOWN_ID]) });
    expect(seed.status).not.toBe(503);
    expect(await seed.text()).not.toContain('"status"');

    await bob.kill('SIGKILL');
    running = running.filter((m) => m !== bob);
    // startQKDMStream: any status but 0 (or HTTP != 200) is "QKDM unable to open the stream".
    const down = await call(alice, 'POST', '/open_connect', { source: 'qks1', destination: 'qks2' });
    expect(down).toEqual({ status: 503, body: { status: 4, message: expect.any(String) } });
  });
});
