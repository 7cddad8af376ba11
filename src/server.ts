/**
 * Composition root: builds one QKD module from its configuration. Adapters (stores, peer
 * client, simulator) are chosen here and nowhere else; tests pass their own through `options`.
 */
import type { Logger } from 'pino';
import { Agent } from 'undici';
import { createApp } from './api/app.js';
import { listenOn, type Listener } from './api/listen.js';
import { createSaeIdentifier } from './api/saeIdentity.js';
import { checkKmeIdCertificate, unmarkedCertificateWarning } from './config/kmeIdentity.js';
import { redactedConfig } from './config/load.js';
import type { ModuleConfig } from './config/schema.js';
import { loadTlsMaterial, peerClientConnectOptions, servesHttps } from './config/tls.js';
import { Etsi014Service } from './core/Etsi014Service.js';
import { KeyStreamManager } from './core/KeyStreamManager.js';
import { NO_TELEMETRY, type ModuleTelemetry } from './core/telemetry.js';
import { ExchangeService } from './exchange/ExchangeService.js';
import { HttpPeerClient } from './exchange/HttpPeerClient.js';
import { CredentialsError, loadLinkCredentials, type LinkCredentials } from './exchange/auth/linkCredentials.js';
import { PeerAuthenticator } from './exchange/auth/peerSessions.js';
import { peerGate } from './api/peerAuth.js';
import { normalizePeerAddress, type PeerClient } from './exchange/peerProtocol.js';
import { PEER_PROBE_TIMEOUT_MS, PeerReachability } from './exchange/peerReachability.js';
import { PeerWatch } from './exchange/peerWatch.js';
import { Readiness } from './health/readiness.js';
import { ModuleMetrics } from './metrics/ModuleMetrics.js';
import { createLogger, prettyDestination, prettyLogs } from './log.js';
import { dashboardLinkFromConfig } from './dashboard/link.js';
import { createSimulator } from './sim/index.js';
import { LegacyPeer } from './exchange/legacyPeer.js';
import { legacyDeviceApp, legacyPeerRouter } from './api/routes/legacyPeer.js';
import type { Simulator } from './sim/Simulator.js';
import type { Etsi014KeyIdStore } from './store/Etsi014KeyIdStore.js';
import { openStores, type Stores } from './store/index.js';
import { openSqliteDatabase } from './store/sqlite/SqliteDatabase.js';
import { SqliteEtsi014KeyIdStore } from './store/sqlite/SqliteEtsi014KeyIdStore.js';

export interface ModuleOptions {
  log?: Logger;
  stores?: Stores;
  peerClient?: PeerClient;
  simulator?: Simulator;
  requestLog?: boolean;
  /** ETSI 014 issued-key-ID store (default: SQLite in module.data_dir). */
  etsi014Store?: Etsi014KeyIdStore;
}

export interface QkdModule {
  readonly config: ModuleConfig;
  readonly manager: KeyStreamManager;
  readonly exchange: ExchangeService;
  readonly app: ReturnType<typeof createApp>;
  readonly log: Logger;
  /** Prometheus metrics (undefined with module.metrics: false). */
  readonly metrics: ModuleMetrics | undefined;
  readonly readiness: Readiness;
  /** ETSI GS QKD 014 key delivery (undefined when etsi014.kme_id is unset). */
  readonly etsi014: Etsi014Service | undefined;
  /**
   * Starts listening (module.host / module.port; port 0 picks a free one) and resolves the port. With
   * module.peer_port set, the peer routes get their own listener (see peerPort()).
   */
  listen(): Promise<number>;
  /** Port of the separate peer listener once listening; undefined without module.peer_port. */
  peerPort(): number | undefined;
  /** Stops the exchange, the listener and the stores. Safe to call twice. */
  stop(): Promise<void>;
}

export async function createModule(cfg: ModuleConfig, options: ModuleOptions = {}): Promise<QkdModule> {
  const log = options.log ?? createLogger(cfg.module.log_level, prettyLogs(cfg.module.log_format) ? prettyDestination() : undefined);
  log.info({ config: redactedConfig(cfg) }, 'starting QKD module');
  const publicAddress = normalizePeerAddress(cfg.module.this_public_IP);
  if (!publicAddress) throw new Error(`config: module.this_public_IP: expected host:port or an http(s) URL`);

  // The peer channel's credentials come first: a module that would run unauthenticated by accident
  // must not start (and must not open its stores) at all.
  const credentials = peerCredentials(cfg, log);
  // INSECURE (only with peer_auth.insecure, see the schema): the peer is an original Python module.
  const legacy = cfg.peer_auth.legacy_peer !== undefined ? createLegacyPeer(cfg, log) : undefined;
  // TLS material is read once here, before any store is opened; a bad path fails start-up naming the field.
  const mainTls = loadTlsMaterial(cfg, 'tls');
  const peerTls = loadTlsMaterial(cfg, 'peer_tls');
  // ETSI 014: the KME ID the main listener's certificate carries must be etsi014.kme_id (docs/etsi014.md, "Identity").
  const kmeIdCheck = checkKmeIdCertificate(cfg.etsi014.kme_id, mainTls.cert);
  if (kmeIdCheck.result === 'unmarked') log.warn(unmarkedCertificateWarning(kmeIdCheck.kmeId));
  // module.metrics: false builds none of it (no /metrics route, no timing, reports go nowhere).
  const metrics = cfg.module.metrics ? new ModuleMetrics(cfg.module.sender === 1 ? 'alice' : 'bob') : undefined;
  const telemetry: ModuleTelemetry = metrics ?? NO_TELEMETRY;
  const stores = options.stores ?? (await openStores(cfg, log));
  const coreStores = metrics ? metrics.timeStores(stores) : stores;
  const simulator = options.simulator ?? (await createSimulator(cfg, { log, ...(credentials ? { linkKeys: credentials } : {}), blocks: stores.reconciled }));
  // Peer channel client: presents peer_tls.cert and accepts only peers whose certificate chains to peer_tls.ca.
  const peerConnect = peerClientConnectOptions(peerTls, cfg.peer_tls.peer_name);
  const peerAgent = peerConnect ? new Agent({ connect: peerConnect }) : undefined;
  const peerAuth = credentials ? new PeerAuthenticator(credentials) : undefined;
  const modernPeer =
    options.peerClient ??
    new HttpPeerClient({ ...(peerAgent ? { fetchInit: () => ({ dispatcher: peerAgent }) } : {}), ...(peerAuth ? { auth: peerAuth } : {}) });
  // Every peer call's outcome is remembered (readiness, qkdm_peer_up) and failures counted by kind.
  const peerWatch = new PeerWatch(metrics ? (kind) => metrics.peerCallFailed(kind) : undefined);
  const peer = peerWatch.wrap(legacy ? legacy.client(modernPeer) : modernPeer);
  const manager = new KeyStreamManager(
    coreStores.handles,
    coreStores.keys,
    peer,
    {
      sender: cfg.module.sender,
      sim: simulator.name,
      publicAddress,
      maxKeyCount: cfg.module.max_key_count,
      peerTimeoutMs: cfg.module.peer_timeout_ms,
      peerScheme: peerConnect ? 'https' : 'http',
      maxPendingRegistrations: cfg.module.max_pending_registrations,
      pendingRegistrationTtlMs: cfg.module.pending_registration_ttl_s * 1000,
      closedStreamRetentionMs: cfg.module.closed_stream_retention_s * 1000,
      redeliveryWindowMs: cfg.module.redelivery_window_s * 1000,
      maxStreamsPerOwner: cfg.module.max_streams_per_application,
      maxWaitsPerOwner: cfg.module.max_waiting_get_key_per_application,
      maxWaits: cfg.module.max_waiting_get_key,
    },
    log,
    telemetry,
    stores.reconciled,
  );
  await manager.init();
  legacy?.attach(manager);
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
    telemetry,
  );
  // ETSI 014: issued key IDs live in SQLite under module.data_dir whatever the handle/key stores are.
  const etsiStore = cfg.etsi014.kme_id ? (options.etsi014Store ?? new SqliteEtsi014KeyIdStore(openSqliteDatabase(cfg.module.data_dir))) : undefined;
  const etsi014 = etsiStore ? createEtsi014(cfg, manager, etsiStore, peer, log, peerConnect !== undefined, telemetry) : undefined;
  const reachability = new PeerReachability(peerWatch, peer, {
    probeTimeoutMs: Math.min(PEER_PROBE_TIMEOUT_MS, cfg.module.peer_timeout_ms),
    ...(legacy ? { noProbe: (url: string) => url === legacy.peerUrl } : {}), // the original module has no /peer/ping
  });
  const peersInUse = knownPeers(cfg, manager, peerConnect ? 'https' : 'http');
  const readiness = new Readiness({ handles: stores.handles, keys: stores.keys, peers: peersInUse, reachability });
  metrics?.watch({
    streams: manager,
    peerUp: async () => {
      const peers = peersInUse();
      return peers.length > 0 && (await reachability.check(peers)).failures.length === 0;
    },
  });
  if (cfg.etsi014.allow_header_identity && !servesHttps(mainTls)) {
    log.warn('etsi014.allow_header_identity is on: any client can claim any SAE with an X-SAE-ID header (development only)');
  } else if (etsi014 && (!servesHttps(mainTls) || mainTls.clientCert === 'none')) {
    log.warn('etsi014 is configured but the main listener asks for no client certificate (tls.cert, tls.client_cert): every SAE call will answer 401');
  }
  const separatePeer = cfg.module.peer_port !== undefined;
  if (separatePeer && !servesHttps(peerTls)) {
    if (peerAuth) log.info('the peer listener (module.peer_port) is plain HTTP: peer messages are authenticated and encrypted with the link credentials (set peer_tls for TLS underneath as well)');
    else log.warn('the peer listener (module.peer_port) is plain HTTP and the peer channel is unauthenticated (peer_auth.insecure)');
  }
  const peerGateHandler = peerGate({ ...(peerAuth ? { auth: peerAuth } : {}), ...(cfg.peer_tls.peer_name && peerTls.clientCert === 'require' ? { peerCertName: cfg.peer_tls.peer_name } : {}), log });
  const appDeps = {
    manager,
    exchange,
    log,
    requestLog: options.requestLog ?? true,
    // module.api_token (the single token of earlier versions) is the application `default`.
    applications: [...cfg.applications, ...(cfg.module.api_token ? [{ id: 'default', token: cfg.module.api_token }] : [])],
    ...(cfg.module.operator_token ? { operatorToken: cfg.module.operator_token } : {}),
    ...(etsi014 ? { etsi014 } : {}),
    identifySae: createSaeIdentifier({ identities: cfg.etsi014.identities, allowHeaderIdentity: cfg.etsi014.allow_header_identity }),
    peerGate: peerGateHandler,
    maxAppBodyBytes: cfg.module.max_app_body_bytes,
    keyServer: cfg.keyserver,
    ...(legacy ? { legacyPeerRoutes: legacyPeerRouter(legacy) } : {}),
    dashboardLink: dashboardLinkFromConfig(cfg),
    ...(metrics ? { metrics } : {}),
    readiness,
  };
  const app = createApp({ ...appDeps, routes: separatePeer ? 'app' : 'all' });
  const peerApp = separatePeer ? createApp({ ...appDeps, routes: 'peer' }) : undefined;

  let server: Listener | undefined;
  let peerServer: Listener | undefined;
  let legacyDevice: Listener | undefined;
  let stopping: Promise<void> | undefined;

  return {
    config: cfg,
    manager,
    exchange,
    app,
    log,
    metrics,
    readiness,
    etsi014,
    async listen() {
      server = await listenOn(app, cfg.module.port, cfg.module.host, mainTls).catch((err: unknown) => {
        throw listenError(err, 'module.port', cfg.module.host, cfg.module.port);
      });
      if (peerApp) {
        peerServer = await listenOn(peerApp, cfg.module.peer_port ?? 0, cfg.module.peer_host, peerTls).catch(async (err: unknown) => {
          await server?.close();
          throw listenError(err, 'module.peer_port', cfg.module.peer_host, cfg.module.peer_port ?? 0);
        });
      }
      const port = server.port;
      if (legacy && cfg.module.sender === 0) {
        // The original sender hands its keys to the receiving module's port + 1 (its fake device's port).
        const devicePort = (peerServer?.port ?? port) + 1;
        const deviceHost = peerServer ? cfg.module.peer_host : cfg.module.host;
        legacyDevice = await listenOn(legacyDeviceApp(legacy), devicePort, deviceHost, peerTls).catch(async (err: unknown) => {
          await Promise.all([server?.close(), peerServer?.close()]);
          throw listenError(err, 'peer_auth.legacy_peer (legacy device listener, peer port + 1)', deviceHost, devicePort);
        });
        log.warn({ host: deviceHost, port: devicePort }, 'INSECURE: legacy device listener (POST /sendRegister, unauthenticated) for the original module\'s keys');
      }
      exchange.start();
      etsi014?.start();
      log.info(
        { host: cfg.module.host, port, peerAuth: peerAuth ? `link ${credentials!.linkId}, this module ${credentials!.name} (${credentials!.fingerprint}), peer ${credentials!.peerName} (${credentials!.peerFingerprint})` : legacy ? `INSECURE, legacy peer ${legacy.peerUrl}` : 'INSECURE', https: server.https, clientCert: server.https ? mainTls.clientCert : undefined, peerPort: peerServer?.port, peerHttps: peerServer?.https, sender: cfg.module.sender, sim: simulator.name, stores: stores.description },
        'QKD module listening',
      );
      return port;
    },
    peerPort: () => peerServer?.port,
    stop() {
      stopping ??= (async () => {
        etsi014?.stop();
        await exchange.stop();
        legacy?.stop();
        manager.stop(); // TTL timers
        await Promise.all([server?.close(), peerServer?.close(), legacyDevice?.close()]);
        await peerAgent?.close().catch(() => undefined);
        await simulator.close?.();
        await peerAuth?.close();
        await etsiStore?.close();
        await stores.close();
        log.info('QKD module stopped');
      })();
      return stopping;
    },
  };
}

/**
 * The peer modules this module works with now: those of its streams that are not closed, the ETSI 014
 * pairs' and the key server's configured peer. Readiness and qkdm_peer_up check these.
 */
function knownPeers(cfg: ModuleConfig, manager: KeyStreamManager, scheme: 'http' | 'https'): () => string[] {
  const configured = [
    ...(cfg.etsi014.kme_id ? cfg.etsi014.saes.map((p) => p.peer_module) : []),
    ...(cfg.keyserver.peer_module ? [cfg.keyserver.peer_module] : []),
  ]
    .map((address) => normalizePeerAddress(address, scheme))
    .filter((url): url is string => url !== undefined);
  return () => [...new Set([...manager.summaries().filter((s) => !s.closed).map((s) => s.peer), ...configured])];
}

function createEtsi014(cfg: ModuleConfig, manager: KeyStreamManager, store: Etsi014KeyIdStore, peer: PeerClient, log: Logger, peerTls: boolean, telemetry: ModuleTelemetry): Etsi014Service {
  const e = cfg.etsi014;
  const pairs = e.saes.map((p, i) => {
    // host:port means https when the peer channel is configured for TLS.
    const peerUrl = normalizePeerAddress(p.peer_module, peerTls ? 'https' : 'http');
    if (!peerUrl) throw new Error(`config: etsi014.saes.${i}.peer_module: expected host:port or an http(s) URL`);
    return { saeId: p.sae_id, peerSaeId: p.peer_sae_id, peerUrl, peerKmeId: p.peer_kme_id };
  });
  return new Etsi014Service(
    manager,
    store,
    peer,
    {
      kmeId: e.kme_id!,
      sender: cfg.module.sender,
      keySize: e.key_size,
      maxKeyPerRequest: e.max_key_per_request,
      maxKeySize: e.max_key_size,
      minKeySize: e.min_key_size,
      maxKeyCount: e.max_key_count ?? cfg.module.max_key_count,
      pairs,
      waitMs: cfg.module.peer_timeout_ms,
      peerTimeoutMs: cfg.module.peer_timeout_ms,
      retryInitialMs: cfg.module.retry_initial_ms,
      retryMaxMs: cfg.module.retry_max_ms,
      keyIdTtlMs: e.key_id_ttl_s * 1000,
    },
    log,
    telemetry,
  );
}

/**
 * This module's link credentials, or undefined in the explicit insecure mode. No credentials and no
 * insecure option: a start-up error naming both ways out.
 */
function peerCredentials(cfg: ModuleConfig, log: Logger): LinkCredentials | undefined {
  const { credentials, insecure } = cfg.peer_auth;
  if (credentials !== undefined && insecure) {
    throw new Error('config: peer_auth.insecure: true together with peer_auth.credentials; remove one (insecure turns authentication off)');
  }
  if (credentials === undefined) {
    if (!insecure) {
      throw new Error(
        'config: peer_auth.credentials: not set, so the peer channel would be unauthenticated. Run `npm run keygen -- --pair DIR` and set '
          + 'peer_auth.credentials to this module\'s file in DIR (or QKDM_PEER_AUTH_CREDENTIALS_FILE); to run without authentication '
          + 'anyway (INSECURE, development only) set peer_auth.insecure: true',
      );
    }
    warnInsecure(log);
    return undefined;
  }
  try {
    return loadLinkCredentials(credentials, cfg.module.sender);
  } catch (err) {
    if (err instanceof CredentialsError) throw new Error(`config: ${err.message}`);
    throw err;
  }
}

/** peer_auth.legacy_peer: the adapter for an original Python module as the peer, warned about at every start. */
function createLegacyPeer(cfg: ModuleConfig, log: Logger): LegacyPeer {
  const address = cfg.peer_auth.legacy_peer!;
  log.warn(LegacyPeer.warning(address));
  return new LegacyPeer(
    {
      address,
      sender: cfg.module.sender,
      sim: cfg.module.sim,
      maxPendingRegistrations: cfg.module.max_pending_registrations,
      pendingRegistrationTtlMs: cfg.module.pending_registration_ttl_s * 1000,
    },
    log,
  );
}

function warnInsecure(log: Logger): void {
  log.warn(
    'INSECURE: peer_auth.insecure is set: the peer channel is not authenticated. Anyone who can reach the peer routes can '
      + 'inject keys, register and close streams, and read the keys the fake simulator sends. Development only.',
  );
}

/** A listener that could not start, as one line naming the setting and the fix. */
function listenError(err: unknown, field: string, host: string, port: number): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') return new Error(`${field}: ${host}:${port} is already in use (another module running?): stop it, or choose another port (${field}, or --port for module.port)`);
  if (code === 'EACCES') return new Error(`${field}: ${host}:${port} needs privileges this process does not have: choose a port above 1023`);
  if (code === 'EADDRNOTAVAIL') return new Error(`${field === 'module.port' ? 'module.host' : 'module.peer_host'}: ${host} is not an address of this machine`);
  return err as Error;
}
