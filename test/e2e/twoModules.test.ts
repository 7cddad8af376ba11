/**
 * Two real module processes on loopback, embedded stores, fake exchange, legacy Python-literal
 * wire format (as the original's key server sends it).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { PyValue } from '../../src/api/codec/pyLiteral.js';
import { freePort, getJson, hexOf, postPy, startModule, tempDir, WAIT, type RunningModule } from '../support/processes.js';

let running: RunningModule[] = [];
afterEach(async () => {
  await Promise.all(running.map((m) => m.kill('SIGKILL')));
  running = [];
});

async function pairOfModules(maxKeyCount = 20) {
  const [pa, pb] = [await freePort(), await freePort()];
  const alice = await startModule({ name: 'alice', sender: 1, port: pa, dataDir: tempDir('alice'), maxKeyCount });
  const bob = await startModule({ name: 'bob', sender: 0, port: pb, dataDir: tempDir('bob'), maxKeyCount });
  running.push(alice, bob);
  return { alice, bob };
}

async function openStream(alice: RunningModule, bob: RunningModule, length = 256): Promise<string> {
  const a = await postPy(alice.url, '/open_connect', [null, bob.address, { timeout: 5000, length }, null]);
  expect(a.status).toBe(200);
  const [id, status] = a.value as [string, number];
  expect(status).toBe(0);
  const b = await postPy(bob.url, '/api/v1/qkdm/actions/open_connect', [null, alice.address, { timeout: 5000, length }, id]);
  expect(b.value).toEqual([id, 0]);
  return id;
}

async function getKey(m: RunningModule, id: string, index = -1): Promise<{ key: string | null; index: number; status: number }> {
  const r = await postPy(m.url, '/get_key', [id, index, {}], WAIT());
  const [key, idx, status] = r.value as [PyValue, number, number];
  return { key: key === null ? null : hexOf(key), index: idx, status };
}

describe('two modules over loopback', () => {
  it('when three streams run at once, then both ends return identical keys at identical indices', async () => {
    const { alice, bob } = await pairOfModules();
    const ids = await Promise.all([openStream(alice, bob, 128), openStream(alice, bob, 256), openStream(alice, bob, 512)]);
    expect(new Set(ids).size).toBe(3);
    await Promise.all(
      ids.map(async (id, s) => {
        for (let i = 0; i < 40; i++) {
          const [a, b] = await Promise.all([getKey(alice, id), getKey(bob, id)]);
          expect(a.status).toBe(0);
          expect(b.status).toBe(0);
          expect(a.index).toBe(i);
          expect(b.index).toBe(i);
          expect(a.key).toBe(b.key);
          expect(a.key!.length).toBe([128, 256, 512][s]! / 4);
        }
      }),
    );
  });

  it('when a stream is closed at one end, then both ends stop; the closing end discards its unused keys, the other keeps them until its application closes too', async () => {
    const { alice, bob } = await pairOfModules(5);
    const id = await openStream(alice, bob);
    await expect.poll(async () => (await getJson(bob.url, `/streams/${id}`)).body.available, { timeout: 5000 }).toBe(5);
    for (let i = 0; i < 2; i++) expect((await getKey(alice, id)).key).toBe((await getKey(bob, id)).key);
    const closed = await postPy(bob.url, '/close', [id]);
    expect(closed.value).toBe(0);
    const aState = (await getJson(alice.url, `/streams/${id}`)).body;
    expect(aState.closed).toBe(true);
    expect(aState.exchangeRunning).toBe(false);
    // ETSI GS QKD 004 CLOSE: Bob's application is done, its unused keys are gone; Alice's application has not closed.
    expect((await getJson(bob.url, `/streams/${id}`)).body.available).toBe(0);
    expect((await getKey(bob, id)).status).toBe(1);
    // Alice's keys stay deliverable, in order, until none is left (rounds may have refilled a few).
    const aliceLeft = (await getJson(alice.url, `/streams/${id}`)).body.available as number;
    expect(aliceLeft).toBeGreaterThanOrEqual(3);
    for (let i = 2; i < 2 + aliceLeft; i++) expect((await getKey(alice, id)).index).toBe(i);
    expect((await getKey(alice, id)).status).toBe(1);
    expect((await postPy(alice.url, '/close', [id])).value).toBe(0);
    const unknown = await postPy(alice.url, '/close', ['00000000-0000-4000-8000-000000000000']);
    // The original's failure answer: HTTP 400 and the bare status.
    expect(unknown.status).toBe(400);
    expect(unknown.value).toBe(2);
  });

  it('when max_key_count keys wait undelivered, then the exchange holds there and resumes as keys are taken', async () => {
    const { alice, bob } = await pairOfModules(4);
    const id = await openStream(alice, bob);
    await expect.poll(async () => (await getJson(alice.url, `/streams/${id}`)).body.nextIndex, { timeout: 5000 }).toBe(4);
    await new Promise((r) => setTimeout(r, 300));
    expect((await getJson(alice.url, `/streams/${id}`)).body.nextIndex).toBe(4);
    expect((await postPy(bob.url, '/available_keys', [id])).value).toEqual([4]);
    await getKey(alice, id);
    await getKey(bob, id);
    await expect.poll(async () => (await getJson(alice.url, `/streams/${id}`)).body.nextIndex, { timeout: 5000 }).toBe(5);
    expect((await postPy(alice.url, '/available_keys', undefined)).value).toEqual([4]);
  });

  for (const victim of ['alice', 'bob'] as const) {
    it(`when ${victim} is SIGKILLed and restarted mid-stream, then no index is reused or lost and both ends agree`, async () => {
      const { alice, bob } = await pairOfModules(8);
      const ids = [await openStream(alice, bob), await openStream(alice, bob)];
      const got: Record<string, { a: Map<number, string>; b: Map<number, string> }> = {};
      for (const id of ids) got[id] = { a: new Map(), b: new Map() };
      const fetchSome = async (n: number): Promise<void> => {
        for (const id of ids) {
          for (let i = 0; i < n; i++) {
            const a = await getKey(alice, id);
            const b = await getKey(bob, id);
            expect(a.status).toBe(0);
            expect(b.status).toBe(0);
            expect(got[id]!.a.has(a.index)).toBe(false);
            expect(got[id]!.b.has(b.index)).toBe(false);
            got[id]!.a.set(a.index, a.key!);
            got[id]!.b.set(b.index, b.key!);
          }
        }
      };
      await fetchSome(10);
      // Kill while the exchange is refilling (keys were just taken).
      const target = victim === 'alice' ? alice : bob;
      await target.kill('SIGKILL');
      const restarted = await startModule(target.spec);
      running.push(restarted);
      if (victim === 'alice') Object.assign(alice, { proc: restarted.proc, kill: restarted.kill });
      else Object.assign(bob, { proc: restarted.proc, kill: restarted.kill });
      await fetchSome(25);
      for (const id of ids) {
        const { a, b } = got[id]!;
        expect([...a.keys()].sort((x, y) => x - y)).toEqual(Array.from({ length: 35 }, (_, i) => i));
        expect([...b.keys()].sort((x, y) => x - y)).toEqual(Array.from({ length: 35 }, (_, i) => i));
        for (const [i, key] of a) expect(b.get(i)).toBe(key);
      }
    });
  }
});
