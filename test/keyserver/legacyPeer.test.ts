/**
 * Issue 16 point 3: an original Python module (ignaziopedone/qkd-module, QKDModule.py + fakeKE.py at
 * 6b7d3eb) as the peer of this module, behind peer_auth.insecure + peer_auth.legacy_peer only.
 * The original is a test double (test/support/originalModule.ts) that replays the requests the
 * original's source sends, in its order and shapes; this module is a real process.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parsePyLiteral } from '../../src/api/codec/pyLiteral.js';
import { convertToBytes, freePortPair, OriginalModule } from '../support/originalModule.js';
import { freePort, hexOf, postPy, startModule, tempDir, WAIT, type RunningModule } from '../support/processes.js';
import { until } from '../security/support.js';

let running: RunningModule[] = [];
let doubles: OriginalModule[] = [];
afterEach(async () => {
  await Promise.all(running.map((m) => m.kill('SIGKILL')));
  await Promise.all(doubles.map((d) => d.stop()));
  running = [];
  doubles = [];
});

const QOS = { timeout: 5000, length: 256 };
const LEGACY_WARNING = /INSECURE: peer_auth\.legacy_peer is set: the peer at 127\.0\.0\.1:\d+ is an original Python module/;

async function original(sender: 0 | 1, maxKeyCount = 20): Promise<OriginalModule> {
  const d = new OriginalModule(sender, maxKeyCount);
  await d.start(await freePortPair());
  doubles.push(d);
  return d;
}

async function legacyModule(name: string, sender: 0 | 1, peer: OriginalModule, maxKeyCount = 20): Promise<RunningModule> {
  const m = await startModule({
    name,
    sender,
    port: await freePortPair(), // a receiver also listens on port + 1 (the original sends its keys there)
    dataDir: tempDir(`legacy-${name}`),
    credentials: 'insecure',
    maxKeyCount,
    env: { QKDM_PEER_AUTH_LEGACY_PEER: peer.address },
  });
  running.push(m);
  return m;
}

const sortedKeys = (q: Record<string, string>): string[] => Object.keys(q).sort();

describe('legacy peer: an original Python module at the other end (peer_auth.insecure + peer_auth.legacy_peer)', () => {
  it('when the original is the sender and opens first, then its /sync, /sendRegister and /start are answered as the original would, and the application here gets the keys it holds', async () => {
    const orig = await original(1);
    const bob = await legacyModule('bob', 0, orig, 3);
    await until(() => LEGACY_WARNING.test(bob.output()), 5000, 'the legacy warning');

    // The original's OPEN_CONNECT(None): GET http://<bob>/sync?key_handle=<uuid4> -> must be 200.
    const [id, status] = await orig.openConnect(bob.address, QOS, null);
    expect(status).toBe(0);
    // The application at bob joins with the ID and names the original as destination: bob completes
    // the rendezvous with the original's own call, GET /sync?key_handle=ID (nothing else in the query).
    const opened = await postPy(bob.url, '/open_connect', [null, orig.address, { timeout: 5000, length: 256 }, id]);
    expect(opened.value).toEqual([id, 0]);
    const syncs = orig.requests.filter((r) => r.path === '/sync');
    expect(syncs).toHaveLength(1);
    expect(syncs[0]).toMatchObject({ server: 'module', method: 'GET', query: { key_handle: id } });
    expect(sortedKeys(syncs[0]!.query)).toEqual(['key_handle']);
    expect(orig.synchronized).toBe(true);

    // The original's sender loop: /sendRegister to bob's port + 1, /start to bob, then it waits for
    // bob's /start. Bob acknowledges while it has room (max_key_count 3): three keys, then the original waits.
    orig.runExchange();
    // 1.6-2.1 s on a quiet machine; one CI run under full load (the whole suite on 2 cores) took over 10 s.
    await until(() => orig.produced.size === 3, 20_000, 'three keys at the original');
    await new Promise((r) => setTimeout(r, 500));
    expect(orig.produced.size).toBe(3); // back-pressure: no fourth key before bob's application takes one
    const acks = orig.requests.filter((r) => r.path === '/start');
    expect(acks.length).toBeGreaterThanOrEqual(2);
    for (const a of acks) expect(parsePyLiteral(a.body)).toBe(id); // repr(Key_stream_ID), as the original sends it

    // Keys delivered here are the original's keys, index for index (the original numbers them 0, 1, ...).
    for (let i = 0; i < 6; i++) {
      const got = await postPy(bob.url, '/get_key', [id, -1, {}], WAIT(10));
      expect(got.status).toBe(200);
      const [key, index, st] = got.value as [Uint8Array, number, number];
      expect(st).toBe(0);
      expect(index).toBe(i);
      await until(() => orig.produced.has(i), 5000, `key ${i} at the original`);
      expect(hexOf(key)).toBe(orig.produced.get(i)!.toString('hex'));
    }
    // What the original's own application gets for the same indices.
    expect(orig.getKey()![0]).toBe(0);
  });

  it('when this module is the sender and its application opens first, then the original receives the calls its source expects and holds the keys the application here gets', async () => {
    const orig = await original(0);
    const alice = await legacyModule('alice', 1, orig);

    const opened = await postPy(alice.url, '/open_connect', [null, orig.address, { timeout: 5000, length: 256 }, null]);
    expect(opened.status).toBe(200);
    const [id, status] = opened.value as [string, number];
    expect(status).toBe(0);
    // What the original's OPEN_CONNECT sends as first opener: GET /sync?key_handle=ID, nothing else.
    const sync = orig.requests.find((r) => r.path === '/sync')!;
    expect(sync).toMatchObject({ method: 'GET', query: { key_handle: id } });
    expect(sortedKeys(sync.query)).toEqual(['key_handle']);
    expect(orig.synchronized).toBe(false);

    // The original's application joins: its OPEN_CONNECT(ID) sends GET http://<alice>/sync?key_handle=ID -> 200.
    expect(await orig.openConnect(alice.address, QOS, id)).toEqual([id, 0]);
    orig.runExchange();

    for (let i = 0; i < 5; i++) {
      const got = await postPy(alice.url, '/get_key', [id, -1, {}], WAIT(10));
      const [key, index, st] = got.value as [Uint8Array, number, number];
      expect([index, st]).toEqual([i, 0]);
      await until(() => orig.produced.has(i), 5000, `key ${i} at the original`);
      expect(hexOf(key)).toBe(orig.produced.get(i)!.toString('hex'));
    }
    // Shapes, as fakeKE.exchangeKey and QKDExchange.run send them: one key per /sendRegister on the
    // original's port + 1, query newKey=true&keyLen=<bits>, body repr(list of bits); then /start, body repr(ID).
    const registers = orig.requests.filter((r) => r.path === '/sendRegister');
    expect(registers.length).toBeGreaterThanOrEqual(5);
    for (const r of registers) {
      expect(r).toMatchObject({ server: 'device', method: 'POST', query: { newKey: 'true', keyLen: '256' } });
      expect(r.body).toMatch(/^\[[01](, [01]){255}\]$/);
    }
    expect(convertToBytes(parsePyLiteral(registers[0]!.body) as number[]).equals(orig.produced.get(0)!)).toBe(true);
    const starts = orig.requests.filter((r) => r.path === '/start');
    expect(starts.length).toBeGreaterThanOrEqual(5);
    for (const s of starts) expect(s.body).toBe(`'${id}'`);
  });

  it('when it starts, then it warns at every start that the peer channel is unauthenticated and the peer is a legacy module', async () => {
    const orig = await original(1);
    const first = await legacyModule('bob', 0, orig);
    await until(() => LEGACY_WARNING.test(first.output()), 5000, 'the legacy warning');
    expect(first.output()).toMatch(/INSECURE: peer_auth\.insecure is set/);
    await first.kill('SIGTERM');
    const second = await startModule({ ...first.spec });
    running.push(second);
    await until(() => LEGACY_WARNING.test(second.output()), 5000, 'the legacy warning at the second start');
  });
});

describe('legacy peer: refused unless explicitly insecure', () => {
  it('when peer_auth.legacy_peer is set without peer_auth.insecure, then the module does not start, with one line naming both settings', async () => {
    const err = await startModule({ name: 'bob', sender: 0, port: await freePort(), dataDir: tempDir('legacy-secure'), env: { QKDM_PEER_AUTH_LEGACY_PEER: '127.0.0.1:5000' } }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    const printed = (err as Error).message.split('\n').slice(1).join('\n').trim();
    expect(printed.split('\n')).toHaveLength(1);
    expect(printed).toMatch(/^config: peer_auth\.legacy_peer: needs peer_auth\.insecure: true/);
  });

  it('when the module runs the default (authenticated) configuration, then the original\'s /sync and /start get the authentication refusal', async () => {
    const m = await startModule({ name: 'bob', sender: 0, port: await freePort(), dataDir: tempDir('legacy-default') });
    running.push(m);
    const id = '123e4567-e89b-42d3-a456-426614174000';
    const sync = await fetch(`${m.url}/sync?key_handle=${id}`);
    expect(sync.status).toBe(401);
    expect(((await sync.json()) as { code: string }).code).toBe('PEER_AUTH_REQUIRED');
    const start = await fetch(`${m.url}/start`, { method: 'POST', body: `'${id}'` });
    expect(start.status).toBe(401);
    expect(((await start.json()) as { code: string }).code).toBe('PEER_AUTH_REQUIRED');
  });

  it('when the module is insecure but has no legacy_peer, then the original\'s /sync is still refused (400) and there is no legacy device port', async () => {
    const port = await freePortPair();
    const m = await startModule({ name: 'bob', sender: 0, port, dataDir: tempDir('legacy-insecure-only'), credentials: 'insecure' });
    running.push(m);
    const sync = await fetch(`${m.url}/sync?key_handle=123e4567-e89b-42d3-a456-426614174000`);
    expect(sync.status).toBe(400);
    await expect(fetch(`http://127.0.0.1:${port + 1}/sendRegister?newKey=true&keyLen=8`, { method: 'POST', body: '[0, 0, 0, 0, 0, 0, 0, 0]' })).rejects.toThrow();
  });
});

describe('legacy peer: what the mode exposes (documented: it is explicitly insecure)', () => {
  it('when an attacker who saw the stream ID posts a key to the legacy device port and /start, then the application here receives the attacker\'s key', async () => {
    const orig = await original(1);
    const bob = await legacyModule('bob', 0, orig);
    const [id] = await orig.openConnect(bob.address, QOS, null);
    await postPy(bob.url, '/open_connect', [null, orig.address, { timeout: 5000, length: 256 }, id]);
    // The original's exchange is not running; the attacker is anyone who reaches bob (no authentication).
    const chosen = Array.from({ length: 256 }, (_, i) => (i % 3 === 0 ? 1 : 0));
    const port = Number(bob.address.split(':')[1]);
    const injected = await fetch(`http://127.0.0.1:${port + 1}/sendRegister?newKey=true&keyLen=256`, { method: 'POST', body: `[${chosen.join(', ')}]` });
    expect(injected.status).toBe(200);
    expect((await fetch(`${bob.url}/start`, { method: 'POST', body: `'${id}'` })).status).toBe(200);
    const got = await postPy(bob.url, '/get_key', [id, -1, {}], WAIT(5));
    const [key, index] = got.value as [Uint8Array, number];
    expect(index).toBe(0);
    expect(hexOf(key)).toBe(convertToBytes(chosen).toString('hex'));
    // ... and bob acknowledged the forged key to the real original, which now numbers its keys one behind.
    await until(() => orig.requests.some((r) => r.path === '/start'), 5000, 'the acknowledgement at the original');
  });
});
