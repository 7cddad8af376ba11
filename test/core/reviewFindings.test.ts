/**
 * Regression tests for the findings of the security review of the core and the exchange:
 * each one reproduces the failing scenario and checks it no longer fails.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { buildPair, hex, type Side } from '../support/pair.js';

const QOS = { keyLengthBits: 128, timeoutMs: 2000 };
let stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops) await s();
  stops = [];
});
async function pair(maxKeyCount = 5) {
  const p = await buildPair({ maxKeyCount });
  stops.push(p.stop);
  return p;
}
async function openBoth(alice: Side, bob: Side): Promise<string> {
  const a = await alice.manager.openConnect({ source: 'a', destination: bob.address, ...QOS, keyStreamId: null });
  if (!a.ok) throw a.error;
  const b = await bob.manager.openConnect({ source: 'b', destination: alice.address, ...QOS, keyStreamId: a.value.keyStreamId });
  if (!b.ok) throw b.error;
  return a.value.keyStreamId;
}
const until = async (cond: () => boolean, ms = 3000): Promise<void> => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('review findings', () => {
  it('when the answer to a confirmed round is lost and the receiver then closes, then the sender rolls forward and both ends agree', async () => {
    const { alice, bob } = await pair(5);
    alice.peer.loseAnswers.set('confirm', 1); // Bob commits the round; Alice never hears so
    const id = await openBoth(alice, bob);
    await until(() => bob.manager.stream(id)!.nextIndex === 5);
    const atBob: string[] = [];
    for (let i = 0; i < 5; i++) {
      const b = await bob.manager.getKey(id, -1, 0);
      if (!b.ok || !b.value) throw new Error('no key at bob');
      atBob.push(hex(b.value.key));
    }
    await bob.manager.close(id);
    await until(() => alice.manager.stream(id)!.closed && alice.manager.stream(id)!.nextIndex === 5);
    for (let i = 0; i < 5; i++) {
      const a = await alice.manager.getKey(id, -1, 0);
      expect(a.ok && a.value && hex(a.value.key)).toBe(atBob[i]);
    }
  });

  it('when the answer to a confirmed round is lost and the receiver\'s close arrives, then the sender reads the counter after the close and commits too', async () => {
    const { alice, bob } = await pair(5);
    alice.peer.failAfter.set('counter', 1); // after the loop's first one, the counter cannot be read before the close
    alice.peer.loseAnswers.set('confirm', 1);
    const id = await openBoth(alice, bob);
    await until(() => bob.manager.stream(id)!.nextIndex === 5);
    expect(alice.manager.stream(id)!.nextIndex).toBe(0);
    alice.peer.failAfter.delete('counter');
    // The close reaches Alice from the peer (her application has not closed, so her keys stay).
    await alice.manager.onPeerClosed(id);
    await until(() => alice.manager.stream(id)!.nextIndex === 5);
    const a = await alice.manager.getKey(id, 4, 0);
    const b = await bob.manager.getKey(id, 4, 0);
    expect(a.ok && b.ok && a.value && b.value && hex(a.value.key) === hex(b.value.key)).toBe(true);
  });

  it('when a waiting GET_KEY is abandoned by its client, then it claims no key', async () => {
    const { alice, bob } = await pair(5);
    alice.peer.failCalls.add('round'); // no keys yet
    const id = await openBoth(alice, bob);
    const gone = new AbortController();
    const waiting = bob.manager.getKey(id, -1, 5000, gone.signal);
    gone.abort();
    const r = await waiting;
    expect(r.ok && r.value).toBeNull();
    alice.peer.failCalls.delete('round');
    const next = await bob.manager.getKey(id, -1, 3000);
    expect(next.ok && next.value?.index).toBe(0);
  });

  it('when a /sync names another peer for a stream waiting for its peer, then it is refused and the stream keeps its peer', async () => {
    const { alice, bob } = await pair();
    const id = '6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab';
    const a = await alice.manager.openConnect({ source: 'a', destination: bob.address, ...QOS, keyStreamId: null });
    if (!a.ok) throw a.error;
    const waitingId = (await bob.manager.openConnect({ source: 'b', destination: alice.address, ...QOS, keyStreamId: id })).ok ? id : '';
    expect(waitingId).toBe(id);
    // Bob registered `id` at Alice, which waits for its own application; an attacker claims it.
    const hijack = await alice.manager.onPeerSync({
      keyStreamId: id, source: 'x', destination: 'x', keyLengthBits: 128, timeoutMs: 0, sender: 0, sim: 'fake', peerAddress: 'evil.example:6666',
    });
    expect(hijack.ok ? 'ok' : hijack.error.code).toBe('STREAM_IN_USE');
    expect(alice.manager.stream(id)!.peerUrl).toBe(bob.address);
  });

  it('when a confirmation names no finished round, or the counter is asked, then the receiver counter stays', async () => {
    const { alice, bob } = await pair(5);
    const id = await openBoth(alice, bob);
    await until(() => bob.manager.stream(id)!.nextIndex === 5);
    const seed = Buffer.alloc(32, 1).toString('base64');
    const r = await bob.exchange.handleConfirm({ keyStreamId: id, roundId: 'r-none', firstIndex: 5, count: 1_000, seed, tag: seed });
    expect(r.ok ? 'ok' : r.error.code).toBe('BAD_REQUEST');
    const c = bob.exchange.handleCounter({ keyStreamId: id });
    expect(c.ok && c.value.nextIndex).toBe(5);
    expect(bob.manager.stream(id)!.nextIndex).toBe(5);
    const atSender = alice.exchange.handleCounter({ keyStreamId: id });
    expect(atSender.ok ? 'ok' : atSender.error.code).toBe('ROLE_CLASH');
  });

  it('when a late message of an abandoned round arrives, then the receiver refuses it', async () => {
    const { alice, bob } = await pair(5);
    const id = await openBoth(alice, bob);
    await until(() => bob.manager.stream(id)!.nextIndex === 5);
    alice.peer.failCalls.add('round'); // Alice's own next round stays out of this
    await bob.manager.getKey(id, -1, 0); // room for one more key at Bob
    const base = { keyStreamId: id, firstIndex: 5, keyLengthBits: 128, maxKeys: 1, step: 'keys' };
    const key = Buffer.alloc(16, 7).toString('base64');
    const newer = await bob.exchange.handleRound({ ...base, roundId: 'r-new', roundSeq: Date.now() * 1000 + 10_000_000, payload: { keys: [key] } });
    expect(newer.ok).toBe(true);
    const late = await bob.exchange.handleRound({ ...base, roundId: 'r-old', roundSeq: 1, payload: { keys: [key] } });
    expect(late.ok ? 'ok' : late.error.code).toBe('BAD_REQUEST');
  });

  it('when both applications open the same chosen ID at the same moment, then both succeed at once and share keys', async () => {
    const { alice, bob } = await pair(5);
    const id = '0b6a7c1e-2d3f-4a5b-8c6d-7e8f9a0b1c2d';
    const t0 = Date.now();
    const [a, b] = await Promise.all([
      alice.manager.openConnect({ source: 'a', destination: bob.address, ...QOS, keyStreamId: id }),
      bob.manager.openConnect({ source: 'b', destination: alice.address, ...QOS, keyStreamId: id }),
    ]);
    expect(a.ok && b.ok).toBe(true);
    expect(Date.now() - t0).toBeLessThan(500); // no wait for a peer timeout (1 s here)
    const ka = await alice.manager.getKey(id, -1, 2000);
    const kb = await bob.manager.getKey(id, -1, 2000);
    expect(ka.ok && kb.ok && ka.value && kb.value && hex(ka.value.key) === hex(kb.value.key)).toBe(true);
  });
});
