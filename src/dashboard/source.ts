/** The dashboard's view of a running module: the same data as GET /streams and GET /streams/:id/stats. */
import type { KeyStreamManager } from '../core/KeyStreamManager.js';
import type { ExchangeService } from '../exchange/ExchangeService.js';
import type { DashboardSource } from './sampler.js';

export function moduleSource(manager: KeyStreamManager, exchange: ExchangeService): DashboardSource {
  return {
    role: manager.settings.sender === 1 ? 'sender' : 'receiver',
    simulator: manager.settings.sim,
    capacity: manager.settings.maxKeyCount,
    streams: () => manager.summaries().map((s) => ({ ...s, exchangeRunning: exchange.isRunning(s.keyStreamId) })),
    rounds: (keyStreamId) => exchange.roundHistory(keyStreamId),
  };
}
