/**
 * Issue 15, "Why" 1 and 2: any caller who knew or listed a Key_stream_ID took its keys (an attacker's
 * GET_KEY at Bob returned the victim's key); a third party could join a stream the peer registered
 * before the legitimate application; /streams, stats and available_keys told anyone about every stream.
 *
 * Answers: applications are identified (bearer tokens here); a stream belongs to the identity that
 * opened it at each end, and another identity's GET_KEY, CLOSE and available_keys answer exactly as
 * for an unknown stream; a stream opened for a named application (qkd://app-b@host) can be joined by
 * that application only; operator routes need the operator token.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, startModule, tempDir, WAIT, type RunningModule } from '../support/processes.js';
import { app004, appPy, hexOfValue, type Pair } from './support.js';

const TOKENS = { appA: 'token-of-app-a-0123456789', appB: 'token-of-app-b-0123456789', mallory: 'token-of-mallory-0123456', operator: 'token-of-the-operator-012345' };

let pairs: Pair[] = [];
afterEach(async () => {
  await Promise.all(pairs.flatMap((p) => [p.alice.kill('SIGKILL'), p.bob.kill('SIGKILL')]));
  pairs = [];
});

async function identifiedPair(): Promise<Pair> {
  const start = async (name: 'alice' | 'bob', sender: 0 | 1, apps: Array<{ id: string; token: string }>): Promise<RunningModule> =>
    startModule({ name, sender, port: await freePort(), dataDir: tempDir(`apps-${name}`), env: { QKDM_APPLICATIONS: JSON.stringify(apps), QKDM_MODULE_OPERATOR_TOKEN: TOKENS.operator } });
  const alice = await start('alice', 1, [{ id: 'app-a', token: TOKENS.appA }]);
  const bob = await start('bob', 0, [{ id: 'app-b', token: TOKENS.appB }, { id: 'mallory', token: TOKENS.mallory }]);
  const pair = { alice, bob };
  pairs.push(pair);
  return pair;
}

async function openSeed({ alice, bob }: Pair): Promise<string> {
  const a = await appPy(alice, '/open_connect', [null, bob.address, { timeout: 3000, length: 256 }, null], TOKENS.appA);
  const [id, status] = a.value as [string, number];
  expect(status).toBe(0);
  expect((await appPy(bob, '/open_connect', [null, alice.address, { timeout: 3000, length: 256 }, id], TOKENS.appB)).value).toEqual([id, 0]);
  return id;
}

/** An answer with the stream ID replaced, to compare two answers about different IDs. */
const withoutId = (v: unknown, id: string): string => JSON.stringify(v).split(id).join('<id>');

describe('Why 1: any caller who knows a Key_stream_ID takes its keys; a third party joins first', () => {
  it("when another application asks for a stream's key, closes it or counts it, then it gets exactly the answer for an unknown stream and the owner keeps its keys", async () => {
    const pair = await identifiedPair();
    const id = await openSeed(pair);
    const unknown = randomUUID();
    for (const [path, body] of [
      ['/get_key', (x: string) => [x, 0, {}]],
      ['/get_key', (x: string) => [x, -1, {}]],
      ['/available_keys', (x: string) => [x]],
      ['/close', (x: string) => [x]],
    ] as const) {
      const stolen = await appPy(pair.bob, path, body(id), TOKENS.mallory);
      const none = await appPy(pair.bob, path, body(unknown), TOKENS.mallory);
      expect(stolen.status).toBe(none.status);
      expect(withoutId(stolen.value, id)).toBe(withoutId(none.value, unknown));
    }
    // The stream is not closed, and its keys are the owners'.
    for (let i = 0; i < 3; i++) {
      const [a, b] = await Promise.all([appPy(pair.alice, '/get_key', [id, -1, {}], TOKENS.appA, WAIT()), appPy(pair.bob, '/get_key', [id, -1, {}], TOKENS.appB, WAIT())]);
      const [ka, ia, sa] = a.value as [Uint8Array, number, number];
      const [kb, ib, sb] = b.value as [Uint8Array, number, number];
      expect([sa, sb, ia, ib]).toEqual([0, 0, i, i]);
      expect(hexOfValue(kb)).toBe(hexOfValue(ka));
    }
    // Without any credential: refused before anything is looked up.
    expect((await appPy(pair.bob, '/get_key', [id, -1, {}])).status).toBe(401);
  });

  it('when a stream is opened for a named application and a third party tries to join it first, then it is refused and the named application joins', async () => {
    const pair = await identifiedPair();
    const qos = { Key_chunk_size: 32, Timeout: 3000 };
    const opened = await app004(pair.alice, 'open_connect', { source: 'qkd://app-a@alice', destination: `qkd://app-b@${pair.bob.address}`, QoS: qos }, TOKENS.appA);
    const id = opened.body.Key_stream_ID as string;
    expect(opened.body.status).toBe(1); // peer application not connected yet
    const mallory = await app004(pair.bob, 'open_connect', { source: 'qkd://mallory@bob', destination: `qkd://app-a@${pair.alice.address}`, QoS: qos, Key_stream_ID: id }, TOKENS.mallory);
    expect(mallory.body.status).toBe(5);
    expect(mallory.body.message).toMatch(/opened for another application/);
    const joined = await app004(pair.bob, 'open_connect', { source: 'qkd://app-b@bob', destination: `qkd://app-a@${pair.alice.address}`, QoS: qos, Key_stream_ID: id }, TOKENS.appB);
    expect(joined.body.status).toBe(0);
    const [ka, kb] = await Promise.all([app004(pair.alice, 'get_key', { Key_stream_ID: id }, TOKENS.appA), app004(pair.bob, 'get_key', { Key_stream_ID: id }, TOKENS.appB)]);
    expect([ka.body.status, kb.body.status]).toEqual([0, 0]);
    expect(kb.body.Key_buffer).toBe(ka.body.Key_buffer);
    const stolen = await app004(pair.bob, 'get_key', { Key_stream_ID: id }, TOKENS.mallory);
    expect(stolen.body).toMatchObject({ status: 4, Key_buffer: null });
  });
});

describe('Why 2: /streams, stats, /sync and available_keys answer anyone', () => {
  it('when an application (not the operator) lists streams or stats, then 401; the operator token is needed; available_keys counts only the caller\'s streams', async () => {
    const pair = await identifiedPair();
    const id = await openSeed(pair);
    for (const path of ['/streams', `/streams/${id}`, `/streams/${id}/stats`]) {
      for (const token of [undefined, TOKENS.appB, TOKENS.mallory]) {
        const res = await fetch(`${pair.bob.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
        expect(res.status, `${path} ${token ?? 'none'}`).toBe(401);
        expect(await res.text()).not.toContain(id);
      }
      expect((await fetch(`${pair.bob.url}${path}`, { headers: { authorization: `Bearer ${TOKENS.operator}` } })).status).toBe(200);
    }
    await expect
      .poll(async () => ((await appPy(pair.bob, '/available_keys', undefined, TOKENS.appB)).value as number[])[0], { timeout: 5000 })
      .toBeGreaterThan(0);
    expect((await appPy(pair.bob, '/available_keys', undefined, TOKENS.mallory)).value).toEqual([0]);
    const sync = await fetch(`${pair.bob.url}/sync?key_handle=${randomUUID()}&length=256&sender=1&sim=fake&peer=${pair.alice.address}`, { headers: { authorization: `Bearer ${TOKENS.appB}` } });
    expect(sync.status).toBe(401);
  });
});
