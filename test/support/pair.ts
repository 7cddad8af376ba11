/** Builds Alice (sender) and Bob (receiver) in one process, joined by InMemoryPeer clients. */
import { pino } from 'pino';
import { KeyStreamManager } from '../../src/core/KeyStreamManager.js';
import { ExchangeService } from '../../src/exchange/ExchangeService.js';
import { FakeSimulator } from '../../src/sim/fake/FakeSimulator.js';
import type { Simulator } from '../../src/sim/Simulator.js';
import type { ReconciledBlockStore } from '../../src/store/ReconciledBlockStore.js';
import { InMemoryPeer } from './inMemoryPeer.js';
import { MemoryHandleStore, MemoryKeyStore } from './memoryStores.js';

export interface Side {
  manager: KeyStreamManager;
  reconciled: ReconciledBlockStore | undefined;
  exchange: ExchangeService;
  handles: MemoryHandleStore;
  keys: MemoryKeyStore;
  peer: InMemoryPeer;
  address: string;
}

export interface PairOptions {
  maxKeyCount?: number;
  aliceSender?: 0 | 1;
  bobSender?: 0 | 1;
  simulator?: () => Simulator;
  /** The re-delivery window (KeyStreamManager default when absent). */
  redeliveryWindowMs?: number;
  /** Each side's reconciled-block store (none when absent). */
  reconciled?: () => ReconciledBlockStore;
}

export const silentLog = pino({ level: 'silent' });

export function buildSide(
  sender: 0 | 1,
  address: string,
  opts: PairOptions,
  stores?: { handles: MemoryHandleStore; keys: MemoryKeyStore },
): Side {
  const handles = stores?.handles ?? new MemoryHandleStore();
  const keys = stores?.keys ?? new MemoryKeyStore();
  const peer = new InMemoryPeer();
  const reconciled = opts.reconciled?.();
  const manager = new KeyStreamManager(
    handles,
    keys,
    peer,
    {
      sender,
      sim: 'fake',
      publicAddress: address,
      maxKeyCount: opts.maxKeyCount ?? 20,
      peerTimeoutMs: 1000,
      ...(opts.redeliveryWindowMs === undefined ? {} : { redeliveryWindowMs: opts.redeliveryWindowMs }),
    },
    silentLog,
    undefined,
    reconciled,
  );
  const exchange = new ExchangeService(
    manager,
    opts.simulator?.() ?? new FakeSimulator(),
    peer,
    { sender, peerTimeoutMs: 1000, retryInitialMs: 10, retryMaxMs: 100, roomRecheckMs: 200, statsWindow: 10 },
    silentLog,
  );
  return { manager, exchange, reconciled, handles, keys, peer, address };
}

export async function buildPair(opts: PairOptions = {}): Promise<{ alice: Side; bob: Side; stop(): Promise<void> }> {
  const alice = buildSide(opts.aliceSender ?? 1, 'http://127.0.0.1:5000', opts);
  const bob = buildSide(opts.bobSender ?? 0, 'http://127.0.0.1:5001', opts);
  link(alice, bob);
  await alice.manager.init();
  await bob.manager.init();
  alice.exchange.start();
  bob.exchange.start();
  return {
    alice,
    bob,
    async stop() {
      await alice.exchange.stop();
      await bob.exchange.stop();
      alice.manager.stop();
      bob.manager.stop();
    },
  };
}

export function link(a: Side, b: Side): void {
  a.peer.target = { manager: b.manager, exchange: b.exchange };
  b.peer.target = { manager: a.manager, exchange: a.exchange };
}

export const hex = (k: Uint8Array): string => Buffer.from(k).toString('hex');

/**
 * Opens one stream from both ends as two applications would (Alice registers, Bob joins) and resolves
 * its Key_stream_ID; `owner` is the application identity at both ends (default: the local one).
 */
export async function openBoth(alice: Side, bob: Side, qos: { keyLengthBits: number; timeoutMs: number } = { keyLengthBits: 256, timeoutMs: 2000 }, owner?: string): Promise<string> {
  const who = owner === undefined ? {} : { owner };
  const a = await alice.manager.openConnect({ source: 'app-a', destination: bob.address, ...qos, keyStreamId: null, ...who });
  if (!a.ok) throw a.error;
  const b = await bob.manager.openConnect({ source: 'app-b', destination: alice.address, ...qos, keyStreamId: a.value.keyStreamId, ...who });
  if (!b.ok) throw b.error;
  return a.value.keyStreamId;
}
