/**
 * Is the peer module reachable? Readiness (/health/ready) and the qkdm_peer_up metric ask this.
 *
 * The answer comes from the last call to the peer (PeerWatch) when it ended within PEER_EVIDENCE_MS:
 * the exchange's own traffic decides while it flows. Otherwise one light probe (POST /peer/ping, sealed
 * in the authenticated session like every peer message) is sent, and its outcome, recorded by the watch
 * like any call, answers every question for the next PEER_EVIDENCE_MS. Concurrent questions share one
 * probe: however often readiness is asked, a peer gets at most one probe per PEER_EVIDENCE_MS.
 */
import type { PeerClient } from './peerProtocol.js';
import type { PeerErrorKind, PeerWatch } from './peerWatch.js';

/** A call to the peer this recent (ms) tells whether it is reachable; older evidence is refreshed by a probe. */
export const PEER_EVIDENCE_MS = 5_000;
/** The probe's path at the peer (src/api/routes/peer.ts). */
export const PEER_PING_PATH = '/peer/ping';
/** Deadline of one probe, ms (at most module.peer_timeout_ms). */
export const PEER_PROBE_TIMEOUT_MS = 2_000;
/** Peers checked at most per question (a module normally has one). */
export const MAX_CHECKED_PEERS = 8;

export interface PeerReachabilityOptions {
  /** Deadline of a probe (default PEER_PROBE_TIMEOUT_MS). */
  probeTimeoutMs?: number;
  /** Peers that are never probed, only judged by their traffic (the original Python module has no ping). */
  noProbe?: (peerUrl: string) => boolean;
  now?: () => number;
}

export interface PeersStatus {
  /** Peers checked. */
  total: number;
  /** Peers that answered recently. */
  reachable: number;
  /** Why those that did not, did not (no addresses: they may be read without credentials). */
  failures: PeerErrorKind[];
}

export class PeerReachability {
  private readonly probes = new Map<string, Promise<void>>();
  private readonly now: () => number;

  constructor(
    private readonly watch: PeerWatch,
    /** The watched client (PeerWatch.wrap), so a probe's outcome is recorded like any call's. */
    private readonly peer: PeerClient,
    private readonly options: PeerReachabilityOptions = {},
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Whether each of these peers answered recently (probing those with no recent call). */
  async check(peerUrls: readonly string[]): Promise<PeersStatus> {
    const peers = [...new Set(peerUrls)].sort().slice(0, MAX_CHECKED_PEERS);
    const answers = await Promise.all(peers.map((p) => this.checkOne(p)));
    const failures = answers.filter((a): a is PeerErrorKind => a !== true);
    return { total: peers.length, reachable: peers.length - failures.length, failures };
  }

  /** true, or why the peer did not answer. */
  private async checkOne(peerUrl: string): Promise<true | PeerErrorKind> {
    if (!this.recent(peerUrl) && !this.options.noProbe?.(peerUrl)) await this.probe(peerUrl);
    const last = this.watch.lastOutcome(peerUrl);
    if (!last) return 'unreachable'; // a peer that is never probed and was never called
    return last.answered ? true : (last.kind ?? 'unreachable');
  }

  private recent(peerUrl: string): boolean {
    const last = this.watch.lastOutcome(peerUrl);
    return last !== undefined && this.now() - last.at <= PEER_EVIDENCE_MS;
  }

  private probe(peerUrl: string): Promise<void> {
    let running = this.probes.get(peerUrl);
    if (!running) {
      const timeoutMs = this.options.probeTimeoutMs ?? PEER_PROBE_TIMEOUT_MS;
      running = this.peer
        .post(peerUrl, PEER_PING_PATH, {}, timeoutMs)
        .then(
          () => undefined,
          () => undefined, // recorded by the watch
        )
        .finally(() => this.probes.delete(peerUrl));
      this.probes.set(peerUrl, running);
    }
    return running;
  }
}
