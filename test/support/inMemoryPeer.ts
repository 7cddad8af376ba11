/**
 * A PeerClient that calls the other module's core directly (no HTTP), so Alice and Bob can run in
 * one test process. `down` simulates an unreachable peer.
 */
import type { Result } from '../../src/core/errors.js';
import type { KeyStreamManager } from '../../src/core/KeyStreamManager.js';
import type { ExchangeService } from '../../src/exchange/ExchangeService.js';
import {
  PeerError,
  type ConfirmMessage,
  type ConfirmReply,
  type CounterMessage,
  type CounterReply,
  type PeerClient,
  type RoundMessage,
  type RoundReply,
  type StartNotice,
  type StreamNotice,
  type SyncReply,
  type SyncRequest,
} from '../../src/exchange/peerProtocol.js';

export class InMemoryPeer implements PeerClient {
  target?: { manager: KeyStreamManager; exchange: ExchangeService };
  down = false;
  /** Calls (by name: 'commit', 'round', ...) that fail as unreachable while listed. */
  failCalls = new Set<string>();
  /** Calls (by name) that succeed this many more times, then fail as unreachable. */
  failAfter = new Map<string, number>();
  /** Calls (by name) whose next N answers are lost: the peer ran them, the caller sees a transport failure. */
  loseAnswers = new Map<string, number>();
  calls: string[] = [];

  private async via<T>(name: string, work: () => Promise<Result<T>> | Result<T>): Promise<T> {
    this.calls.push(name);
    const left = this.failAfter.get(name);
    if (left !== undefined) {
      if (left <= 0) throw new PeerError('unreachable', `${name}: peer down`);
      this.failAfter.set(name, left - 1);
    }
    if (this.down || !this.target || this.failCalls.has(name)) throw new PeerError('unreachable', `${name}: peer down`);
    const result = await work();
    const lose = this.loseAnswers.get(name) ?? 0;
    if (lose > 0) {
      this.loseAnswers.set(name, lose - 1);
      throw new PeerError('unreachable', `${name}: answer lost`);
    }
    if (!result.ok) throw new PeerError('refused', result.error.message, result.error.code);
    return result.value;
  }

  sync(_url: string, req: SyncRequest): Promise<SyncReply> {
    return this.via('sync', () => this.target!.manager.onPeerSync(req));
  }
  async open(_url: string, n: StreamNotice): Promise<void> {
    await this.via('open', () => this.target!.manager.onPeerOpened(n.keyStreamId));
  }
  async close(_url: string, n: StreamNotice): Promise<void> {
    await this.via('close', () => this.target!.manager.onPeerClosed(n.keyStreamId));
  }
  async start(_url: string, n: StartNotice): Promise<void> {
    await this.via('start', () => this.target!.manager.onPeerStart(n.keyStreamId, n.available));
  }
  round(_url: string, msg: RoundMessage): Promise<RoundReply> {
    // Round-trip through JSON, as on the wire, so payloads must be serialisable.
    const wire = JSON.parse(JSON.stringify(msg)) as RoundMessage;
    return this.via('round', () => this.target!.exchange.handleRound(wire));
  }
  post(): Promise<unknown> {
    return Promise.reject(new PeerError('protocol', 'InMemoryPeer does not route extension messages'));
  }
  confirm(_url: string, msg: ConfirmMessage): Promise<ConfirmReply> {
    return this.via('confirm', () => this.target!.exchange.handleConfirm(msg));
  }
  counter(_url: string, msg: CounterMessage): Promise<CounterReply> {
    return this.via('counter', async () => this.target!.exchange.handleCounter(msg));
  }
}
