/**
 * Readiness (GET /health/ready): can this module serve keys now? Four checks, each ok or not with a
 * short reason: the configuration (validated at start-up, or the module would not run), the handle
 * store and the key store (one cheap real query each, with a deadline), and the peer module (recent
 * traffic, else a probe: peerReachability.ts).
 *
 * The route needs no credentials (orchestrators probe without tokens, as /health), so the reasons name
 * no host, address, stream or credential, and the answer is cached for READINESS_CACHE_MS: however often
 * it is asked, the stores see at most one probe query each per interval and the peer at most one probe
 * per PEER_EVIDENCE_MS.
 */
import type { PeerReachability } from '../exchange/peerReachability.js';
import type { HandleStore } from '../store/HandleStore.js';
import type { KeyStore } from '../store/KeyStore.js';
import { StoreError } from '../store/errors.js';

/** A store that has not answered its probe query within this long (ms) is not ready. */
export const STORE_PROBE_TIMEOUT_MS = 2_000;
/** One readiness answer serves every request for this long (ms). */
export const READINESS_CACHE_MS = 1_000;
/** The stream the probe queries ask for (it does not exist; the query's answer is what counts). */
export const STORE_PROBE_STREAM_ID = 'readiness-probe';

export interface ReadinessCheck {
  ok: boolean;
  reason: string;
}

export const READINESS_CHECKS = ['config', 'handle_store', 'key_store', 'peer'] as const;
export type ReadinessCheckName = (typeof READINESS_CHECKS)[number];

export interface ReadinessReport {
  status: 'ready' | 'not_ready';
  checks: Record<ReadinessCheckName, ReadinessCheck>;
}

export interface ReadinessDeps {
  handles: HandleStore;
  keys: KeyStore;
  /** The peer modules this module works with now (open streams, configured ETSI 014 and key server peers). */
  peers: () => readonly string[];
  reachability: PeerReachability;
  storeProbeTimeoutMs?: number;
  now?: () => number;
}

export class Readiness {
  /** The last evaluation; `at` is when it finished (undefined while it runs). */
  private cached: { at: number | undefined; report: Promise<ReadinessReport> } | undefined;
  private readonly now: () => number;

  constructor(private readonly deps: ReadinessDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** The current answer: one evaluation at a time, and its result reused for READINESS_CACHE_MS after it finished. */
  report(): Promise<ReadinessReport> {
    const c = this.cached;
    if (c && (c.at === undefined || this.now() - c.at <= READINESS_CACHE_MS)) return c.report;
    const entry: { at: number | undefined; report: Promise<ReadinessReport> } = { at: undefined, report: this.evaluate() };
    const finished = (): void => void (entry.at = this.now());
    entry.report.then(finished, finished);
    this.cached = entry;
    return entry.report;
  }

  private async evaluate(): Promise<ReadinessReport> {
    const [handleStore, keyStore, peer] = await Promise.all([
      this.probeStore(() => this.deps.handles.get(STORE_PROBE_STREAM_ID)),
      this.probeStore(() => this.deps.keys.indices(STORE_PROBE_STREAM_ID)),
      this.checkPeers(),
    ]);
    const checks: Record<ReadinessCheckName, ReadinessCheck> = {
      config: { ok: true, reason: 'loaded and validated at start-up' }, // a configuration that does not validate stops the start-up
      handle_store: handleStore,
      key_store: keyStore,
      peer,
    };
    const ready = Object.values(checks).every((c) => c.ok);
    return { status: ready ? 'ready' : 'not_ready', checks };
  }

  private async probeStore(query: () => Promise<unknown>): Promise<ReadinessCheck> {
    const limit = this.deps.storeProbeTimeoutMs ?? STORE_PROBE_TIMEOUT_MS;
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), limit);
      timer.unref();
    });
    try {
      const answer = await Promise.race([query().then(() => 'answered' as const), deadline]);
      if (answer === 'timeout') return { ok: false, reason: `no answer within ${limit} ms` };
      return { ok: true, reason: `answered in ${Math.round(performance.now() - started)} ms` };
    } catch (err) {
      // The kind only: adapter messages may name hosts, and this answer is served without credentials.
      const why = err instanceof StoreError ? err.kind : err instanceof Error ? err.name : 'error';
      return { ok: false, reason: `query failed (${why})` };
    } finally {
      clearTimeout(timer);
    }
  }

  private async checkPeers(): Promise<ReadinessCheck> {
    const peers = this.deps.peers();
    if (peers.length === 0) return { ok: true, reason: 'no peer module known yet (no open stream, no configured peer)' };
    const status = await this.deps.reachability.check(peers);
    const modules = (n: number): string => `${n} peer module${n === 1 ? '' : 's'}`;
    if (status.failures.length === 0) return { ok: true, reason: `${modules(status.reachable)} reachable` };
    const kinds = [...new Set(status.failures)].join(', ');
    return { ok: false, reason: `${modules(status.failures.length)} of ${status.total} not reachable (${kinds})` };
  }
}
