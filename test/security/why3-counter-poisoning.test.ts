/**
 * Issue 14, "Why" 3: /peer/commit with committedUpTo 10^12 moved Alice's next index to 10^12 (every later
 * round refused, also after a restart); a roundSeq of 2^53-1 with an invalid step poisoned Bob's round
 * guard the same way; a third party's /peer/close closed any stream.
 *
 * Answers: none of these reaches the exchange without a session; and even an authenticated peer cannot
 * move a counter except through a confirmed round (/peer/counter only reads; a sender answers
 * ROLE_CLASH to receiver messages; a round sequence a day ahead of the clock is refused, not remembered).
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startModule } from '../support/processes.js';
import { buildPair, hex } from '../support/pair.js';
import { attackerPost, getKey, openStream, startPair, streamState, takeBoth, until, type Pair } from './support.js';

let pairs: Pair[] = [];
let stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(pairs.flatMap((p) => [p.alice.kill('SIGKILL'), p.bob.kill('SIGKILL')]));
  pairs = [];
  for (const s of stops) await s();
  stops = [];
});

describe('Why 3: counters and the round guard moved by a third party; /peer/close by anyone', () => {
  it('when the attacker commits up to 10^12 at Alice, then it is refused, the counter stays, and keys still flow after a restart', async () => {
    const pair = await startPair({ maxKeyCount: 5 });
    pairs.push(pair);
    const id = await openStream(pair);
    await until(async () => (await streamState(pair.alice, id)).nextIndex === 5);
    for (const path of ['/peer/commit', '/peer/counter', '/peer/confirm']) {
      const r = await attackerPost(pair.alice, path, { keyStreamId: id, committedUpTo: 1e12, roundId: 'r', firstIndex: 5, count: 1e5 });
      expect(r.status).toBe(401);
    }
    expect((await streamState(pair.alice, id)).nextIndex).toBe(5);
    await pair.alice.kill('SIGTERM');
    pair.alice = await startModule(pair.alice.spec);
    expect((await streamState(pair.alice, id)).nextIndex).toBe(5);
    const delivered = await takeBoth(pair, id, 12);
    delivered.forEach(([a, b], i) => {
      expect([a.status, b.status, a.index, b.index]).toEqual([0, 0, i, i]);
      expect(b.key).toBe(a.key);
    });
  });

  it('when the attacker sends a round with roundSeq 2^53-1 and an invalid step, then it is refused and later rounds are accepted', async () => {
    const pair = await startPair({ maxKeyCount: 4 });
    pairs.push(pair);
    const id = await openStream(pair);
    const r = await attackerPost(pair.bob, '/peer/round', {
      keyStreamId: id, roundId: randomUUID(), roundSeq: Number.MAX_SAFE_INTEGER, firstIndex: 0, keyLengthBits: 256, maxKeys: 1, step: 'nonsense', payload: null,
    });
    expect(r.status).toBe(401);
    const delivered = await takeBoth(pair, id, 10); // needs several rounds after the attack (4 keys per round at most)
    delivered.forEach(([a, b], i) => {
      expect([a.status, b.status, a.index, b.index]).toEqual([0, 0, i, i]);
      expect(b.key).toBe(a.key);
    });
  });

  it("when a third party sends /peer/close for a stream to either module, then it is refused and the stream stays open at both", async () => {
    const pair = await startPair();
    pairs.push(pair);
    const id = await openStream(pair);
    for (const m of [pair.alice, pair.bob]) expect((await attackerPost(m, '/peer/close', { keyStreamId: id })).status).toBe(401);
    for (const m of [pair.alice, pair.bob]) expect((await streamState(m, id)).closed).toBe(false);
    const [a, b] = await Promise.all([getKey(pair.alice, id), getKey(pair.bob, id)]);
    expect([a.status, b.status]).toEqual([0, 0]);
    expect(b.key).toBe(a.key);
  });

  it('when an authenticated peer itself sends a round sequence a day ahead or asks a sender for its counter, then the guard refuses without remembering it', async () => {
    const p = await buildPair({ maxKeyCount: 4 });
    stops.push(p.stop);
    const { alice, bob } = p;
    const a = await alice.manager.openConnect({ source: 'a', destination: bob.address, keyLengthBits: 128, timeoutMs: 2000, keyStreamId: null });
    if (!a.ok) throw a.error;
    const id = a.value.keyStreamId;
    alice.peer.failCalls.add('round'); // keep Alice's own rounds out of the way
    const b = await bob.manager.openConnect({ source: 'b', destination: alice.address, keyLengthBits: 128, timeoutMs: 2000, keyStreamId: id });
    if (!b.ok) throw b.error;
    const key = Buffer.alloc(16, 9).toString('base64');
    const base = { keyStreamId: id, firstIndex: 0, keyLengthBits: 128, maxKeys: 1, step: 'keys', payload: { keys: [key] } };
    const ahead = await bob.exchange.handleRound({ ...base, roundId: 'r-ahead', roundSeq: (Date.now() + 2 * 86_400_000) * 1000 });
    expect(ahead.ok ? 'ok' : ahead.error.message).toMatch(/more than a day ahead/);
    const skipping = await bob.exchange.handleRound({ ...base, roundId: 'r-skip', roundSeq: Date.now() * 1000, firstIndex: 1_000_000 });
    expect(skipping.ok ? 'ok' : skipping.error.message).toMatch(/skips indices/);
    const greedy = await bob.exchange.handleRound({ ...base, roundId: 'r-greedy', roundSeq: Date.now() * 1000, maxKeys: 1000 });
    expect(greedy.ok ? 'ok' : greedy.error.message).toMatch(/room for 4/);
    const atSender = alice.exchange.handleCounter({ keyStreamId: id });
    expect(atSender.ok ? 'ok' : atSender.error.code).toBe('ROLE_CLASH');
    const confirmAtSender = await alice.exchange.handleConfirm({ keyStreamId: id, roundId: 'r', firstIndex: 0, count: 1, seed: key.padEnd(44, 'A').slice(0, 43) + '=', tag: key.padEnd(44, 'A').slice(0, 43) + '=' });
    expect(confirmAtSender.ok ? 'ok' : confirmAtSender.error.code).toBe('ROLE_CLASH');
    // The refused sequence number was not remembered: Alice's rounds go through.
    alice.peer.failCalls.delete('round');
    const ka = await alice.manager.getKey(id, -1, 3000);
    const kb = await bob.manager.getKey(id, -1, 3000);
    expect(ka.ok && kb.ok && ka.value && kb.value && hex(ka.value.key) === hex(kb.value.key)).toBe(true);
  });
});
