/**
 * Conformance-suite fixtures: an in-process Alice/Bob pair (test/support/pair.ts) with each module's
 * app served on a real loopback port, ETSI GS QKD 014 configured for any number of SAE pairs, SAEs
 * named by the X-SAE-ID header (allow_header_identity, plain HTTP, development only), and the ETSI 014
 * peer notices carried over HTTP to the other app, with switchable faults.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { createApp } from '../../src/api/app.js';
import { createSaeIdentifier } from '../../src/api/saeIdentity.js';
import { Etsi014Service, type Etsi014Pair } from '../../src/core/Etsi014Service.js';
import { PeerError, type PeerClient } from '../../src/exchange/peerProtocol.js';
import { MemoryEtsi014KeyIdStore } from '../support/memoryEtsi014Store.js';
import { buildPair, silentLog, type PairOptions, type Side } from '../support/pair.js';

/** What happens to an ETSI 014 peer notice leaving a KME. */
export type NoticeFault =
  /** delivered normally */
  | 'none'
  /** never reaches the other KME (unreachable), like `peerDown` in test/api/etsi014.test.ts */
  | 'drop'
  /** reaches the other KME and is processed there, but the answer is lost (the sender sees a failure) */
  | 'lose-reply';

export interface Kme {
  name: 'alice' | 'bob';
  kmeId: string;
  side: Side;
  service: Etsi014Service;
  store: MemoryEtsi014KeyIdStore;
  app: Express;
  /** http://127.0.0.1:<port> of this KME's app (SAE routes, peer routes and operator routes). */
  url: string;
  /** Decides the fate of each ETSI 014 peer notice this KME sends (default: always 'none'). */
  fault: (path: string) => NoticeFault;
}

export interface Etsi014Settings {
  keySize: number;
  maxKeyPerRequest: number;
  maxKeySize: number;
  minKeySize: number;
  maxKeyCount: number;
  waitMs: number;
  peerTimeoutMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
}

export const SETTINGS: Etsi014Settings = {
  keySize: 256,
  maxKeyPerRequest: 16,
  maxKeySize: 2048,
  minKeySize: 64,
  maxKeyCount: 40,
  waitMs: 400,
  peerTimeoutMs: 1000,
  retryInitialMs: 10,
  retryMaxMs: 100,
};

export interface Etsi014Fixture {
  alice: Kme;
  bob: Kme;
  /** [SAE at Alice, SAE at Bob] for every configured pair. */
  pairs: Array<[string, string]>;
  stop(): Promise<void>;
}

async function listen(app: Express): Promise<{ server: Server; url: string }> {
  const server = createServer(app);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}` };
}

/** ETSI 014 peer notices go to the other KME over HTTP, subject to `from.fault`; everything else uses the in-memory peer. */
function routedPeer(side: Side, from: () => Kme, to: () => Kme): PeerClient {
  return {
    sync: (url, req) => side.peer.sync(url, req),
    open: (url, notice) => side.peer.open(url, notice),
    close: (url, notice) => side.peer.close(url, notice),
    start: (url, notice) => side.peer.start(url, notice),
    round: (url, msg) => side.peer.round(url, msg),
    confirm: (url, msg) => side.peer.confirm(url, msg),
    counter: (url, msg) => side.peer.counter(url, msg),
    async post(_url, path, body, timeoutMs) {
      const fault = from().fault(path);
      if (fault === 'drop') throw new PeerError('unreachable', `${path}: peer down (test)`);
      let res: Response;
      try {
        res = await fetch(`${to().url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        throw new PeerError('unreachable', `${path}: ${err instanceof Error ? err.message : String(err)}`);
      }
      const text = await res.text();
      if (fault === 'lose-reply') throw new PeerError('unreachable', `${path}: answer lost (test)`);
      const answer = text === '' ? undefined : (JSON.parse(text) as { message?: string; code?: never });
      if (res.status !== 200) throw new PeerError('refused', String(answer?.message ?? res.status), answer?.code);
      return answer;
    },
  };
}

/**
 * Alice (KME-A, module sender) and Bob (KME-B); `pairs` lists [SAE at Alice, SAE at Bob]. Resolves once
 * every pair stream in both directions is open and full (max_key_count keys at both ends).
 */
export async function buildEtsi014Fixture(
  pairs: Array<[string, string]>,
  settings: Etsi014Settings = SETTINGS,
  pairOptions: PairOptions = {},
): Promise<Etsi014Fixture> {
  const p = await buildPair({ maxKeyCount: settings.maxKeyCount, ...pairOptions });
  const servers: Server[] = [];
  const kmes: Partial<Record<'alice' | 'bob', Kme>> = {};
  const make = async (name: 'alice' | 'bob', side: Side, kmeId: string, ownPairs: Etsi014Pair[]): Promise<Kme> => {
    const other = name === 'alice' ? 'bob' : 'alice';
    const store = new MemoryEtsi014KeyIdStore();
    const service = new Etsi014Service(
      side.manager,
      store,
      routedPeer(side, () => kmes[name]!, () => kmes[other]!),
      { ...settings, kmeId, sender: side.manager.settings.sender, pairs: ownPairs },
      silentLog,
    );
    const app = createApp({
      manager: side.manager,
      exchange: side.exchange,
      log: silentLog,
      requestLog: false,
      etsi014: service,
      identifySae: createSaeIdentifier({ identities: [], allowHeaderIdentity: true }),
    });
    const { server, url } = await listen(app);
    servers.push(server);
    return { name, kmeId, side, service, store, app, url, fault: () => 'none' };
  };
  kmes.alice = await make(
    'alice',
    p.alice,
    'KME-A',
    pairs.map(([a, b]) => ({ saeId: a, peerSaeId: b, peerUrl: 'http://127.0.0.1:5001', peerKmeId: 'KME-B' })),
  );
  kmes.bob = await make(
    'bob',
    p.bob,
    'KME-B',
    pairs.map(([a, b]) => ({ saeId: b, peerSaeId: a, peerUrl: 'http://127.0.0.1:5000', peerKmeId: 'KME-A' })),
  );
  const alice = kmes.alice;
  const bob = kmes.bob;
  bob.service.start();
  alice.service.start();
  const fixture: Etsi014Fixture = {
    alice,
    bob,
    pairs,
    async stop() {
      alice.service.stop();
      bob.service.stop();
      await p.stop();
      for (const s of servers) {
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
    },
  };
  // Every stream open at both ends and full.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ids = pairs.flatMap(([a, b]) => [alice.service.keyStreamIdFor(a, b)!, alice.service.keyStreamIdFor(b, a)!]);
    const full = ids.every((id) => alice.side.manager.summary(id)?.available === settings.maxKeyCount && bob.side.manager.summary(id)?.available === settings.maxKeyCount);
    if (full) break;
    if (Date.now() > deadline) {
      await fixture.stop();
      throw new Error('conformance fixture: the ETSI 014 pair streams did not open and fill within 10 s');
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return fixture;
}

/** Stream keys of `key_size` bits that one key of `size` bits uses. */
export const partsOf = (size: number, keySize = SETTINGS.keySize): number => Math.ceil(size / keySize);

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Strict RFC 4648 base64 (standard alphabet, padded): decodes and re-encodes to the same text. */
export function isStrictBase64(text: string): boolean {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) return false;
  return Buffer.from(text, 'base64').toString('base64') === text;
}
