/**
 * Composition root: builds one QKD module from its configuration. Adapters (stores, peer
 * client, simulator) are chosen here and nowhere else; tests pass their own through `options`.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createApp } from './api/app.js';
import { redactedConfig } from './config/load.js';
import type { ModuleConfig } from './config/schema.js';
import { KeyStreamManager } from './core/KeyStreamManager.js';
import { ExchangeService } from './exchange/ExchangeService.js';
import { HttpPeerClient } from './exchange/HttpPeerClient.js';
import { normalizePeerAddress, type PeerClient } from './exchange/peerProtocol.js';
import { createLogger } from './log.js';
import { createSimulator } from './sim/index.js';
import type { Simulator } from './sim/Simulator.js';
import { openStores, type Stores } from './store/index.js';

export interface ModuleOptions {
  log?: Logger;
  stores?: Stores;
  peerClient?: PeerClient;
  simulator?: Simulator;
  requestLog?: boolean;
}

export interface QkdModule {
  readonly config: ModuleConfig;
  readonly manager: KeyStreamManager;
  readonly exchange: ExchangeService;
  readonly app: ReturnType<typeof createApp>;
  readonly log: Logger;
  /** Starts listening (module.host / module.port; port 0 picks a free one) and resolves the port. */
  listen(): Promise<number>;
  /** Stops the exchange, the listener and the stores. Safe to call twice. */
  stop(): Promise<void>;
}

export async function createModule(cfg: ModuleConfig, options: ModuleOptions = {}): Promise<QkdModule> {
  const log = options.log ?? createLogger(cfg.module.log_level);
  log.info({ config: redactedConfig(cfg) }, 'starting QKD module');
  const publicAddress = normalizePeerAddress(cfg.module.this_public_IP);
  if (!publicAddress) throw new Error(`config: module.this_public_IP: expected host:port or an http(s) URL`);

  const stores = options.stores ?? (await openStores(cfg, log));
  const simulator = options.simulator ?? (await createSimulator(cfg));
  const peer = options.peerClient ?? new HttpPeerClient();
  const manager = new KeyStreamManager(
    stores.handles,
    stores.keys,
    peer,
    {
      sender: cfg.module.sender,
      sim: simulator.name,
      publicAddress,
      maxKeyCount: cfg.module.max_key_count,
      peerTimeoutMs: cfg.module.peer_timeout_ms,
    },
    log,
  );
  await manager.init();
  const exchange = new ExchangeService(
    manager,
    simulator,
    peer,
    {
      sender: cfg.module.sender,
      peerTimeoutMs: cfg.module.peer_timeout_ms,
      retryInitialMs: cfg.module.retry_initial_ms,
      retryMaxMs: cfg.module.retry_max_ms,
      roomRecheckMs: cfg.module.room_recheck_ms,
      statsWindow: 100,
    },
    log,
  );
  const app = createApp({ manager, exchange, log, requestLog: options.requestLog ?? true });

  let server: Server | undefined;
  let stopping: Promise<void> | undefined;

  return {
    config: cfg,
    manager,
    exchange,
    app,
    log,
    async listen() {
      server = await new Promise<Server>((resolve, reject) => {
        const s = app.listen(cfg.module.port, cfg.module.host, (err?: Error) => (err ? reject(err) : resolve(s)));
        s.once('error', reject);
      });
      server.keepAliveTimeout = 65_000;
      const port = (server.address() as AddressInfo).port;
      exchange.start();
      log.info({ host: cfg.module.host, port, sender: cfg.module.sender, sim: simulator.name, stores: stores.description }, 'QKD module listening');
      return port;
    },
    stop() {
      stopping ??= (async () => {
        await exchange.stop();
        if (server) {
          const s = server;
          await new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
          });
        }
        await simulator.close?.();
        await stores.close();
        log.info('QKD module stopped');
      })();
      return stopping;
    },
  };
}
