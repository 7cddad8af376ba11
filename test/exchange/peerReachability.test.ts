/**
 * PeerWatch and PeerReachability: the exchange's own traffic decides whether the peer is reachable; a
 * probe goes out only when nothing was heard for PEER_EVIDENCE_MS, at most one per peer at a time, and
 * its outcome answers every question for the next PEER_EVIDENCE_MS (readiness cannot be turned into
 * peer traffic). Failed calls are reported by kind, never with the error.
 */
import { describe, expect, it } from 'vitest';
import { PEER_EVIDENCE_MS, PEER_PING_PATH, PeerReachability } from '../../src/exchange/peerReachability.js';
import { PeerError, type PeerClient } from '../../src/exchange/peerProtocol.js';
import { MAX_WATCHED_PEERS, peerErrorKind, PeerWatch, type PeerErrorKind } from '../../src/exchange/peerWatch.js';

const PEER = 'http://127.0.0.1:7001';

/** A peer client whose answers the test sets; it counts the calls per path. */
class ScriptedPeer {
  calls: string[] = [];
  failure: Error | undefined;
  /** Resolves the pending probe (probes wait until released, so the test can overlap questions). */
  private release: (() => void) | undefined;
  hold = false;

  client(): PeerClient {
    const answer = async (what: string): Promise<never> => {
      this.calls.push(what);
      if (this.hold) await new Promise<void>((r) => (this.release = r));
      if (this.failure) throw this.failure;
      return { alive: true } as never;
    };
    return {
      sync: () => answer('/sync'),
      open: () => answer('/peer/open'),
      close: () => answer('/peer/close'),
      start: () => answer('/start'),
      round: () => answer('/peer/round'),
      confirm: () => answer('/peer/confirm'),
      counter: () => answer('/peer/counter'),
      post: (_url, path) => answer(path),
    };
  }

  releaseProbe(): void {
    this.release?.();
  }
}

function setup() {
  let now = 1_000_000;
  const errors: PeerErrorKind[] = [];
  const watch = new PeerWatch((k) => errors.push(k), () => now);
  const scripted = new ScriptedPeer();
  const peer = watch.wrap(scripted.client());
  const reach = new PeerReachability(watch, peer, { now: () => now, probeTimeoutMs: 100 });
  return { watch, scripted, peer, reach, errors, advance: (ms: number) => (now += ms) };
}

describe('PeerReachability', () => {
  it('when the exchange talked to the peer recently, then the peer is reachable and no probe is sent', async () => {
    const { scripted, peer, reach } = setup();
    await peer.counter(PEER, { keyStreamId: 'x' }, 100);
    expect(await reach.check([PEER])).toEqual({ total: 1, reachable: 1, failures: [] });
    expect(scripted.calls).toEqual(['/peer/counter']);
  });

  it('when nothing was heard for longer than PEER_EVIDENCE_MS, then one probe goes out, and its answer serves the next questions', async () => {
    const { scripted, peer, reach, advance } = setup();
    await peer.counter(PEER, { keyStreamId: 'x' }, 100);
    advance(PEER_EVIDENCE_MS + 1);
    expect((await reach.check([PEER])).reachable).toBe(1);
    expect(scripted.calls).toEqual(['/peer/counter', PEER_PING_PATH]);
    for (let i = 0; i < 10; i++) await reach.check([PEER]);
    advance(PEER_EVIDENCE_MS - 1);
    await reach.check([PEER]);
    expect(scripted.calls.filter((c) => c === PEER_PING_PATH)).toHaveLength(1);
  });

  it('when many questions arrive while a probe is under way, then they share it: one probe in all', async () => {
    const { scripted, reach } = setup();
    scripted.hold = true;
    const answers = Array.from({ length: 50 }, () => reach.check([PEER]));
    await new Promise((r) => setTimeout(r, 10));
    scripted.releaseProbe();
    const all = await Promise.all(answers);
    expect(all.every((a) => a.reachable === 1)).toBe(true);
    expect(scripted.calls).toEqual([PEER_PING_PATH]);
  });

  it('when the probe times out, then the peer is not reachable, the reason is the kind (no address), and the failure is counted', async () => {
    const { scripted, reach, errors } = setup();
    scripted.failure = new PeerError('unreachable', `${PEER_PING_PATH}: no answer within 100 ms`, undefined, 'timeout');
    const status = await reach.check([PEER]);
    expect(status).toEqual({ total: 1, reachable: 0, failures: ['timeout'] });
    expect(errors).toEqual(['timeout']);
  });

  it('when the peer refuses a call, then it counts as an answer (it is there and authenticated us) and as an http-status error', async () => {
    const { scripted, peer, reach, errors } = setup();
    scripted.failure = new PeerError('refused', 'closed', 'STREAM_CLOSED');
    await expect(peer.round(PEER, {} as never, 100)).rejects.toThrow('closed');
    expect((await reach.check([PEER])).reachable).toBe(1);
    expect(errors).toEqual(['http-status']);
  });

  it('when the last call failed recently, then the peer is not reachable without a probe; once the exchange gets through again, it is', async () => {
    const { scripted, peer, reach } = setup();
    scripted.failure = new PeerError('unreachable', 'ECONNREFUSED');
    await expect(peer.round(PEER, {} as never, 100)).rejects.toThrow();
    expect(await reach.check([PEER])).toMatchObject({ reachable: 0, failures: ['unreachable'] });
    scripted.failure = undefined;
    await peer.round(PEER, {} as never, 100);
    expect((await reach.check([PEER])).reachable).toBe(1);
    expect(scripted.calls.filter((c) => c === PEER_PING_PATH)).toHaveLength(0);
  });

  it('when a peer must not be probed (the original Python module), then only its traffic counts', async () => {
    const { watch, scripted, peer } = setup();
    const reach = new PeerReachability(watch, peer, { noProbe: (u) => u === PEER });
    expect(await reach.check([PEER])).toMatchObject({ reachable: 0 });
    expect(scripted.calls).toEqual([]);
  });
});

describe('PeerWatch', () => {
  it('when errors of each kind happen, then they map to the fixed kinds', () => {
    expect(peerErrorKind(new PeerError('unreachable', 'x'))).toBe('unreachable');
    expect(peerErrorKind(new PeerError('unreachable', 'x', undefined, 'timeout'))).toBe('timeout');
    expect(peerErrorKind(new PeerError('unreachable', 'x', undefined, 'unauthenticated'))).toBe('unauthenticated');
    expect(peerErrorKind(new PeerError('refused', 'x', 'STALE_ROUND'))).toBe('http-status');
    expect(peerErrorKind(new PeerError('protocol', 'x'))).toBe('protocol');
    expect(peerErrorKind(new TypeError('fetch failed'))).toBe('unreachable');
  });

  it('when more peers than MAX_WATCHED_PEERS are called, then the oldest is forgotten first', async () => {
    const { watch, peer } = setup();
    for (let i = 0; i <= MAX_WATCHED_PEERS; i++) await peer.start(`http://127.0.0.1:${10_000 + i}`, { keyStreamId: 'x', available: 0 }, 100);
    expect(watch.lastOutcome('http://127.0.0.1:10000')).toBeUndefined();
    expect(watch.lastOutcome(`http://127.0.0.1:${10_000 + MAX_WATCHED_PEERS}`)).toMatchObject({ answered: true });
  });
});
