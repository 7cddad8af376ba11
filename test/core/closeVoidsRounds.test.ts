/**
 * Issue 13 point 14: "CLOSE (and a peer's close) voids every round in flight atomically at both ends."
 * The applications at both ends close while a round is at each stage (a round message, the sender's
 * durable write, the key confirmation); afterwards neither end's counter moved past what it reported
 * at the close, no key of that round is stored at either end, and nothing is deliverable.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { buildPair, openBoth } from '../support/pair.js';

const QOS = { keyLengthBits: 256, timeoutMs: 2000 };
let stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops) await s();
  stops = [];
});

type Stage = 'round message' | 'sender write' | 'confirmation';

/** Runs a pair until a refill round reaches `stage`, closes both applications right there, then lets the round go on. */
async function closeDuring(stage: Stage) {
  const { alice, bob, stop } = await buildPair({ maxKeyCount: 8 });
  stops.push(stop);
  const id = await openBoth(alice, bob, QOS);
  await expect.poll(() => alice.manager.available(id) === 8 && bob.manager.available(id) === 8, { timeout: 3000 }).toBe(true);
  let closedAt: { alice: number; bob: number } | undefined;
  const closeBoth = async () => {
    if (closedAt) return;
    closedAt = { alice: -1, bob: -1 };
    expect((await bob.manager.close(id)).ok).toBe(true);
    expect((await alice.manager.close(id)).ok).toBe(true);
    closedAt = { alice: alice.manager.stream(id)!.nextIndex, bob: bob.manager.stream(id)!.nextIndex };
  };
  let armed = false;
  // The stage hooks: each closes both ends first, then lets the call go on.
  if (stage === 'round message') {
    const round = alice.peer.round.bind(alice.peer);
    alice.peer.round = async (url, msg) => {
      if (armed) await closeBoth();
      return round(url, msg);
    };
  } else if (stage === 'sender write') {
    const putMany = alice.keys.putMany.bind(alice.keys);
    alice.keys.putMany = async (sid, first, keys) => {
      if (armed && sid === id) await closeBoth();
      return putMany(sid, first, keys);
    };
  } else {
    const confirm = alice.peer.confirm.bind(alice.peer);
    alice.peer.confirm = async (url, msg) => {
      if (armed) await closeBoth();
      return confirm(url, msg);
    };
  }
  armed = true;
  // Free room at both ends: the sender starts a refill round, which meets the close.
  for (let i = 0; i < 4; i++) {
    expect((await alice.manager.getKey(id, -1, 500)).ok).toBe(true);
    expect((await bob.manager.getKey(id, -1, 500)).ok).toBe(true);
  }
  await expect.poll(() => closedAt !== undefined && closedAt.alice >= 0, { timeout: 3000 }).toBe(true);
  await expect.poll(() => alice.exchange.isRunning(id), { timeout: 3000 }).toBe(false);
  await new Promise((r) => setTimeout(r, 200)); // anything still in flight lands now
  return { alice, bob, id, closedAt: closedAt! };
}

describe('CLOSE voids rounds in flight at both ends (issue 13 point 14)', () => {
  for (const stage of ['round message', 'sender write', 'confirmation'] as const) {
    it(`when both applications close during the ${stage} of a round, then no counter moves past the close, no key of the round is stored, and nothing is deliverable`, async () => {
      const { alice, bob, id, closedAt } = await closeDuring(stage);
      expect(alice.manager.stream(id)!.nextIndex).toBe(closedAt.alice);
      expect(bob.manager.stream(id)!.nextIndex).toBe(closedAt.bob);
      expect(alice.manager.stream(id)!.nextIndex).toBe(bob.manager.stream(id)!.nextIndex);
      expect(alice.keys.keys.get(id)?.size ?? 0).toBe(0);
      expect(bob.keys.keys.get(id)?.size ?? 0).toBe(0);
      for (const side of [alice, bob]) {
        const r = await side.manager.getKey(id, -1, 100);
        expect(r.ok && r.value).toBeFalsy();
        expect(side.manager.available(id)).toBe(0);
      }
    });
  }
});
