import { afterEach, describe, expect, it } from 'vitest';
import { buildPair, buildSide, hex, link, openBoth, type Side } from '../support/pair.js';

const QOS = { keyLengthBits: 256, timeoutMs: 2000 };

let stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops) await s();
  stops = [];
});

async function pair(opts: Parameters<typeof buildPair>[0] = {}) {
  const p = await buildPair(opts);
  stops.push(p.stop);
  return p;
}

async function take(side: Side, id: string, index = -1, timeoutMs?: number) {
  const r = await side.manager.getKey(id, index, timeoutMs);
  if (!r.ok) throw r.error;
  return r.value;
}

describe('KeyStreamManager with the fake exchange', () => {
  it('when both applications open a stream, then both ends deliver identical keys at identical indices', async () => {
    const { alice, bob } = await pair();
    const id = await openBoth(alice, bob, QOS);
    for (let i = 0; i < 50; i++) {
      const a = await take(alice, id);
      const b = await take(bob, id);
      expect(a).not.toBeNull();
      expect(b).not.toBeNull();
      expect(a!.index).toBe(i);
      expect(b!.index).toBe(i);
      expect(hex(a!.key)).toBe(hex(b!.key));
      expect(a!.key.length).toBe(32);
    }
  });

  it('when a key was delivered, then asking for its index again gives nothing (at most once per side)', async () => {
    const { alice, bob } = await pair();
    const id = await openBoth(alice, bob, QOS);
    const first = await take(alice, id, 3);
    expect(first?.index).toBe(3);
    expect(await take(alice, id, 3, 50)).toBeNull();
    // The lowest undelivered is now 0, and 3 is skipped later.
    const seen = [];
    for (let i = 0; i < 5; i++) seen.push((await take(alice, id))!.index);
    expect(seen).toEqual([0, 1, 2, 4, 5]);
    // Bob still has index 3, identical to Alice's.
    expect(hex((await take(bob, id, 3))!.key)).toBe(hex(first!.key));
  });

  it('issue 16: when an application re-opens a stream it closed, then the answer says closed, not in use', async () => {
    const { alice, bob } = await pair();
    const id = await openBoth(alice, bob, QOS);
    expect((await alice.manager.close(id)).ok).toBe(true);
    const again = await alice.manager.openConnect({ source: 'app-a', destination: bob.address, ...QOS, keyStreamId: id });
    expect(again.ok).toBe(false);
    if (!again.ok) expect(again.error.code).toBe('STREAM_CLOSED');
  });

  it('issue 16: when the peer closed a stream, then its keys still count in the available_keys total while they can be drained', async () => {
    const { alice, bob } = await pair({ maxKeyCount: 5 });
    const id = await openBoth(alice, bob, QOS);
    await new Promise((r) => setTimeout(r, 150));
    expect((await bob.manager.close(id)).ok).toBe(true);
    await expect.poll(() => alice.manager.stream(id)!.closed).toBe(true);
    const held = alice.manager.available(id);
    expect(held).toBeGreaterThan(0);
    expect(alice.manager.availableKeys()).toEqual({ ok: true, value: held });
    expect(await take(alice, id)).not.toBeNull(); // drainable
    expect(bob.manager.availableKeys()).toEqual({ ok: true, value: 0 }); // the closing end erased its own
  });

  it('when max_key_count keys wait undelivered, then the exchange pauses and resumes as keys are taken', async () => {
    const { alice, bob } = await pair({ maxKeyCount: 5 });
    const id = await openBoth(alice, bob, QOS);
    await new Promise((r) => setTimeout(r, 150));
    expect(alice.manager.available(id)).toBe(5);
    expect(bob.manager.available(id)).toBe(5);
    expect(alice.keys.keys.get(id)!.size).toBeLessThanOrEqual(5);
    await take(alice, id);
    await take(bob, id);
    await new Promise((r) => setTimeout(r, 100));
    expect(alice.manager.available(id)).toBe(5);
    expect(alice.manager.stream(id)!.nextIndex).toBe(6);
  });

  it('when both modules are configured as sender, then OPEN_CONNECT fails with a role clash naming module.sender', async () => {
    const { alice, bob } = await pair({ bobSender: 1 });
    const r = await alice.manager.openConnect({ source: 'a', destination: bob.address, ...QOS, keyStreamId: null });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe('ROLE_CLASH');
      expect(r.error.message).toContain('module.sender');
    }
    expect(alice.manager.summaries()).toHaveLength(0);
  });

  it('when the peer is unreachable, then OPEN_CONNECT fails with PEER_UNREACHABLE and registers nothing', async () => {
    const { alice, bob } = await pair();
    alice.peer.down = true;
    const r = await alice.manager.openConnect({ source: 'a', destination: bob.address, ...QOS, keyStreamId: null });
    expect(r.ok ? 'ok' : r.error.code).toBe('PEER_UNREACHABLE');
    expect(alice.manager.summaries()).toHaveLength(0);
    expect(bob.manager.summaries()).toHaveLength(0);
  });

  it('when a stream is closed, then the exchange stops at both ends, the closing end discards its unused keys and the other keeps them', async () => {
    const { alice, bob } = await pair({ maxKeyCount: 4 });
    const id = await openBoth(alice, bob, QOS);
    await new Promise((r) => setTimeout(r, 100));
    expect(hex((await take(alice, id))!.key)).toBe(hex((await take(bob, id))!.key));
    const closed = await bob.manager.close(id);
    expect(closed.ok).toBe(true);
    expect(alice.manager.stream(id)!.closed).toBe(true);
    await expect.poll(() => alice.exchange.isRunning(id), { timeout: 1000 }).toBe(false);
    expect(bob.manager.available(id)).toBe(0);
    expect(bob.keys.keys.get(id)?.size ?? 0).toBe(0); // erased from the store, not only hidden
    expect(await take(bob, id, -1, 0)).toBeNull();
    for (let i = 1; i < 4; i++) expect((await take(alice, id))!.index).toBe(i);
    // Nothing more will come: no waiting on a closed stream.
    const t0 = Date.now();
    expect(await take(alice, id, -1, 5000)).toBeNull();
    expect(Date.now() - t0).toBeLessThan(500);
    expect((await alice.manager.close(id)).ok).toBe(true);
  });

  it('when no key is available, then GET_KEY waits up to the timeout and returns nothing', async () => {
    const { alice, bob } = await pair({ maxKeyCount: 1 });
    const id = await openBoth(alice, bob, QOS);
    await take(alice, id);
    bob.peer.down = true; // Bob cannot tell Alice; Alice has room anyway but Bob's count blocks
    alice.peer.down = true; // no more rounds
    await take(alice, id, -1, 50).then(() => undefined);
    const t0 = Date.now();
    expect(await take(alice, id, -1, 120)).toBeNull();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
  });

  it('when the peer is down mid-stream, then the exchange retries with back-off and recovers', async () => {
    const { alice, bob } = await pair({ maxKeyCount: 3 });
    const id = await openBoth(alice, bob, QOS);
    await new Promise((r) => setTimeout(r, 80));
    alice.peer.down = true;
    bob.peer.down = true;
    for (let i = 0; i < 3; i++) await take(alice, id);
    const callsBefore = alice.peer.calls.length;
    await new Promise((r) => setTimeout(r, 300));
    // Back-off: far fewer attempts than a busy loop would make (10 ms doubling to 100 ms).
    expect(alice.peer.calls.length - callsBefore).toBeLessThan(12);
    alice.peer.down = false;
    bob.peer.down = false;
    // Bob's three keys still wait (max_key_count counts the fuller end): take them to make room.
    for (let i = 0; i < 3; i++) await take(bob, id);
    const a = await take(alice, id, -1, 3000);
    expect(a?.index).toBe(3);
    expect(hex((await take(bob, id, 3, 3000))!.key)).toBe(hex(a!.key));
  });

  it('when both applications open the same chosen ID, in either order, then they join one stream', async () => {
    const { alice, bob } = await pair();
    const id = '6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab';
    const b = await bob.manager.openConnect({ source: 'b', destination: alice.address, ...QOS, keyStreamId: id });
    expect(b.ok).toBe(true);
    const a = await alice.manager.openConnect({ source: 'a', destination: bob.address, ...QOS, keyStreamId: id });
    expect(a.ok).toBe(true);
    expect(hex((await take(alice, id))!.key)).toBe(hex((await take(bob, id))!.key));
  });

  it('when a stream is already open here, then OPEN_CONNECT again gives STREAM_IN_USE; a different length is refused', async () => {
    const { alice, bob } = await pair();
    const a = await alice.manager.openConnect({ source: 'a', destination: bob.address, ...QOS, keyStreamId: null });
    if (!a.ok) throw a.error;
    const again = await alice.manager.openConnect({ source: 'a', destination: bob.address, ...QOS, keyStreamId: a.value.keyStreamId });
    expect(again.ok ? 'ok' : again.error.code).toBe('STREAM_IN_USE');
    const wrongLength = await bob.manager.openConnect({ source: 'b', destination: alice.address, keyLengthBits: 128, timeoutMs: 100, keyStreamId: a.value.keyStreamId });
    expect(wrongLength.ok ? 'ok' : wrongLength.error.code).toBe('BAD_REQUEST');
  });

  it('when many GET_KEY calls race, then each key goes to exactly one of them', async () => {
    const { alice, bob } = await pair({ maxKeyCount: 30 });
    const id = await openBoth(alice, bob, QOS);
    await new Promise((r) => setTimeout(r, 100));
    const got = await Promise.all(Array.from({ length: 30 }, () => take(alice, id, -1, 2000)));
    const indices = got.map((g) => g!.index);
    expect(new Set(indices).size).toBe(30);
  });

  it('when the key store fails on take, then GET_KEY reports STORE_UNAVAILABLE and the key stays deliverable', async () => {
    const { alice, bob } = await pair({ maxKeyCount: 2 });
    const id = await openBoth(alice, bob, QOS);
    await new Promise((r) => setTimeout(r, 80));
    alice.keys.failTakes = true;
    const r = await alice.manager.getKey(id, -1);
    expect(r.ok ? 'ok' : r.error.code).toBe('STORE_UNAVAILABLE');
    alice.keys.failTakes = false;
    expect((await take(alice, id))!.index).toBe(0);
  });

  it('when both modules restart on their stores, then stored keys are still delivered and no index is reused', async () => {
    const opts = { maxKeyCount: 6 };
    const { alice, bob, stop } = await pair(opts);
    const id = await openBoth(alice, bob, QOS);
    await new Promise((r) => setTimeout(r, 80));
    const a0 = await take(alice, id);
    await stop();
    stops = [];
    const alice2 = buildSide(1, alice.address, opts, { handles: alice.handles, keys: alice.keys });
    const bob2 = buildSide(0, bob.address, opts, { handles: bob.handles, keys: bob.keys });
    link(alice2, bob2);
    await alice2.manager.init();
    await bob2.manager.init();
    alice2.exchange.start();
    bob2.exchange.start();
    stops.push(async () => {
      await alice2.exchange.stop();
      await bob2.exchange.stop();
    });
    expect(hex((await take(bob2, id))!.key)).toBe(hex(a0!.key));
    const seenA = new Set<number>([a0!.index]);
    for (let i = 0; i < 20; i++) {
      const a = await take(alice2, id, -1, 2000);
      const b = await take(bob2, id, -1, 2000);
      expect(a!.index).toBe(b!.index);
      expect(hex(a!.key)).toBe(hex(b!.key));
      expect(seenA.has(a!.index)).toBe(false);
      seenA.add(a!.index);
    }
    expect([...seenA].sort((x, y) => x - y)).toEqual(Array.from({ length: 21 }, (_, i) => i));
  });

  it('when the stream is unknown or not opened here, then GET_KEY and CLOSE say so', async () => {
    const { alice, bob } = await pair();
    const unknown = await alice.manager.getKey('00000000-0000-4000-8000-000000000000', -1);
    expect(unknown.ok ? 'ok' : unknown.error.code).toBe('UNKNOWN_STREAM');
    const a = await alice.manager.openConnect({ source: 'a', destination: bob.address, ...QOS, keyStreamId: null });
    if (!a.ok) throw a.error;
    const notOpen = await bob.manager.getKey(a.value.keyStreamId, -1);
    expect(notOpen.ok ? 'ok' : notOpen.error.code).toBe('STREAM_NOT_OPEN');
    const close = await alice.manager.close('00000000-0000-4000-8000-000000000000');
    expect(close.ok ? 'ok' : close.error.code).toBe('UNKNOWN_STREAM');
  });
});
