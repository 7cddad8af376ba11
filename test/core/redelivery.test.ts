/**
 * Issue 13 point 13, "delivery that survives a lost answer": a key delivered to an application stays
 * re-deliverable to that application, and to nobody else, for module.redelivery_window_s; it is erased
 * when the window closes, when the application takes a later index, and at CLOSE. Keys are asked for
 * with a caller (the application identity), as the API routes do.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { KeyStreamManager } from '../../src/core/KeyStreamManager.js';
import { buildPair, hex, openBoth, silentLog, type Side } from '../support/pair.js';

const QOS = { keyLengthBits: 256, timeoutMs: 2000 };
const APP = 'app-1';

let stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops) await s();
  stops = [];
});

async function pair(redeliveryWindowMs?: number) {
  const p = await buildPair(redeliveryWindowMs === undefined ? {} : { redeliveryWindowMs });
  stops.push(p.stop);
  return p;
}

async function get(side: Side, id: string, index: number, opts: { caller?: string; token?: string; timeoutMs?: number } = {}) {
  const r = await side.manager.deliverKey(id, index, { caller: APP, timeoutMs: 500, ...opts });
  if (!r.ok) return { error: r.error.code };
  return r.value.kind === 'key' ? { index: r.value.delivered.index, key: hex(r.value.delivered.key) } : { none: r.value.reason };
}

/** Whether this end's key store still holds a key at that index (delivered or not). */
const held = (side: Side, id: string, index: number) => side.keys.keys.get(id)?.has(index) ?? false;

describe('re-delivery window (issue 13 point 13)', () => {
  it('when the application asks for a delivered index again within the window, then it gets the same key, equal to the peer end', async () => {
    const { alice, bob } = await pair();
    const id = await openBoth(alice, bob, QOS, APP);
    const first = await get(alice, id, 0);
    const again = await get(alice, id, 0);
    expect(again).toEqual(first);
    expect(again).toEqual(await get(bob, id, 0));
    // Not back in the pool: the next key is index 1.
    expect((await get(alice, id, -1)).index).toBe(1);
  });

  it('attacker: another application asking for the retained index gets the unknown-stream answer, never the key', async () => {
    const { alice, bob } = await pair();
    const id = await openBoth(alice, bob, QOS, APP);
    await get(alice, id, 0);
    expect(await get(alice, id, 0, { caller: 'intruder' })).toEqual({ error: 'UNKNOWN_STREAM' });
    expect(await get(alice, id, -1, { caller: 'intruder', token: 'guess' })).toEqual({ error: 'UNKNOWN_STREAM' });
  });

  it('when a GET_KEY for the next key (index -1) is repeated with the same idempotency token, then the same key and index come back; another token gets the next key', async () => {
    const { alice, bob } = await pair();
    const id = await openBoth(alice, bob, QOS, APP);
    const first = await get(alice, id, -1, { token: 'req-1' });
    expect(first.index).toBe(0);
    expect(await get(alice, id, -1, { token: 'req-1' })).toEqual(first);
    const second = await get(alice, id, -1, { token: 'req-2' });
    expect(second.index).toBe(1);
    // The application moved on to index 1: index 0 and its token are gone.
    expect(await get(alice, id, -1, { token: 'req-1' })).toMatchObject({ index: 2 });
    expect(held(alice, id, 0)).toBe(false);
    expect(hex(Buffer.from(second.key!, 'hex'))).toBe((await get(bob, id, 1)).key);
  });

  it('when the application takes a later index, then the earlier key is erased from the store and never delivered again', async () => {
    const { alice, bob } = await pair();
    const id = await openBoth(alice, bob, QOS, APP);
    await get(alice, id, 0);
    await get(alice, id, 1);
    await expect.poll(() => held(alice, id, 0)).toBe(false);
    expect(await get(alice, id, 0)).toEqual({ none: 'unavailable' });
    expect(held(alice, id, 1)).toBe(true); // the latest stays for its window
    void bob;
  });

  it('when the window closes, then the key is erased and asking again gives nothing', async () => {
    const { alice, bob } = await pair(150);
    const id = await openBoth(alice, bob, QOS, APP);
    const first = await get(alice, id, 0);
    expect(first.key).toBeDefined();
    expect(held(alice, id, 0)).toBe(true);
    await expect.poll(() => held(alice, id, 0), { timeout: 2000 }).toBe(false);
    expect(await get(alice, id, 0)).toEqual({ none: 'unavailable' });
    void bob;
  });

  it('when the window is 0, then a key is erased at delivery (the behaviour before the window existed)', async () => {
    const { alice, bob } = await pair(0);
    const id = await openBoth(alice, bob, QOS, APP);
    await get(alice, id, 0);
    expect(held(alice, id, 0)).toBe(false);
    expect(await get(alice, id, 0)).toEqual({ none: 'unavailable' });
    void bob;
  });

  it('when the module restarts (a crash after delivery, before the answer left), then the application gets the same key again', async () => {
    const { alice, bob } = await pair();
    const id = await openBoth(alice, bob, QOS, APP);
    const first = await get(alice, id, -1, { token: 't-7' });
    // A new manager over the same stores: what a restarted module finds.
    const restarted = new KeyStreamManager(alice.handles, alice.keys, alice.peer, alice.manager.settings, silentLog);
    await restarted.init();
    stops.push(async () => restarted.stop());
    const side: Side = { ...alice, manager: restarted };
    expect(await get(side, id, first.index!)).toEqual(first);
    expect(await get(side, id, -1, { token: 't-7' })).toEqual(first);
    // Nobody else, and index -1 without the token moves on.
    expect(await get(side, id, first.index!, { caller: 'intruder' })).toEqual({ error: 'UNKNOWN_STREAM' });
    expect((await get(side, id, -1)).index).toBe(first.index! + 1);
    void bob;
  });

  it('when the module restarts after the window closed, then the delivered key is erased at start-up', async () => {
    const { alice, bob } = await pair(100);
    const id = await openBoth(alice, bob, QOS, APP);
    const first = await get(alice, id, 0);
    alice.manager.stop(); // its timers stop: only the restart can erase the key
    await new Promise((r) => setTimeout(r, 150));
    expect(held(alice, id, 0)).toBe(true);
    const restarted = new KeyStreamManager(alice.handles, alice.keys, alice.peer, alice.manager.settings, silentLog);
    await restarted.init();
    stops.push(async () => restarted.stop());
    expect(held(alice, id, 0)).toBe(false);
    expect(await get({ ...alice, manager: restarted }, id, 0)).toEqual({ none: 'unavailable' });
    expect(first.key).toBeDefined();
    void bob;
  });

  it('when the application closes the stream, then its retained key is erased with the rest', async () => {
    const { alice, bob } = await pair();
    const id = await openBoth(alice, bob, QOS, APP);
    await get(alice, id, 0);
    expect(held(alice, id, 0)).toBe(true);
    expect((await alice.manager.close(id, APP)).ok).toBe(true);
    expect(held(alice, id, 0)).toBe(false);
    expect(alice.keys.deliveredMarks.get(id)?.size ?? 0).toBe(0);
    void bob;
  });

  it('when an internal caller (ETSI 014, no application identity) takes a key, then it is erased at once', async () => {
    const { alice, bob } = await pair();
    const id = await openBoth(alice, bob, QOS, APP);
    const r = await alice.manager.getKey(id, 0, 500);
    expect(r.ok && r.value?.index).toBe(0);
    expect(held(alice, id, 0)).toBe(false);
    void bob;
  });
});
