/**
 * The HTTP application. This file reads as the route table; handlers live in routes/.
 *
 *   seed API (root and /api/v1/qkdm/actions/):  POST /open_connect  POST /get_key  POST /close
 *                                               POST|GET /available_keys; GET /api/v1/qkdm/available_keys
 *   peer channel (behind the peer gate):        POST /peer/hello  GET /sync  POST /start  POST /peer/open
 *                                               POST /peer/close  POST /peer/round  POST /peer/confirm
 *                                               POST /peer/counter  POST /peer/ping
 *                                               POST /peer/etsi014/keys  POST /peer/etsi014/ready
 *   legacy peer (peer_auth.legacy_peer only):   GET /sync?key_handle=ID  POST /start repr(ID)  (routes/legacyPeer.ts)
 *   operators:                                  GET /health  GET /streams  GET /streams/:id
 *                                               GET /streams/:id/stats  GET /openapi.json  GET /metrics
 *                                               GET /dashboard  GET /dashboard/feed  GET /dashboard/assets/:file
 *   orchestrators (no credentials):             GET /health/live  GET /health/ready
 *   ETSI GS QKD 014 (/api/v1/keys):             GET /{slave}/status  POST|GET /{slave}/enc_keys
 *                                               POST|GET /{master}/dec_keys
 *   ETSI GS QKD 004 (/etsi004/v2.1.1):          POST /open_connect  POST /get_key  POST /close
 *   key server 2.0 (/api/v1/qkdm/actions/):     POST /attach  POST /open_connect  GET /get_id/:key_stream_ID  POST /check_id  POST /get_key  POST /close (JSON objects without the seed API's fields)
 *
 * `routes` picks what one listener serves: 'app' (applications, SAEs, operators), 'peer' (the peer
 * module) or 'all' (one listener, as without module.peer_port). The seed API and ETSI 004 know their
 * caller (appIdentity.ts: an application's token or certificate, or `local` on a module without
 * configured applications, which then serves loopback callers only); operator routes need
 * module.operator_token or a loopback caller; peers authenticate through the peer gate, SAEs with
 * their client certificate.
 */
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { IncomingMessage } from 'node:http';
import { parse as parseQueryString } from 'node:querystring';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import type { Etsi014Service } from '../core/Etsi014Service.js';
import type { KeyStreamManager } from '../core/KeyStreamManager.js';
import type { ExchangeService } from '../exchange/ExchangeService.js';
import { moduleOnlyLink, type DashboardLink } from '../dashboard/link.js';
import { DASHBOARD_PATH, dashboardRouter } from '../dashboard/router.js';
import { DashboardSampler } from '../dashboard/sampler.js';
import { moduleSource } from '../dashboard/source.js';
import { SEALED_CONTENT_TYPE } from '../exchange/auth/peerSessions.js';
import { applicationGate, operatorGate, type ApplicationEntry } from './appIdentity.js';
import { HELLO_PATH } from '../exchange/auth/handshake.js';
import { MAX_HELLO_BYTES, PEER_PATHS } from './peerAuth.js';
import { ETSI004_PREFIX, etsi004Router } from './routes/etsi004.js';
import { etsi014PeerRouter, etsi014Router } from './routes/etsi014.js';
import { healthRouter, type ReadinessSource } from './routes/health.js';
import { metricsRouter, type MetricsExposition } from './routes/metrics.js';
import { infoRouter } from './routes/info.js';
import { keyServerV2Router, type KeyServerV2Settings } from './routes/keyServerV2.js';
import { openApiRouter } from './routes/openapi.js';
import { peerRouter } from './routes/peer.js';
import { SEED_RENAMED_PREFIX, seedRenamedRouter, seedRouter } from './routes/seed.js';
import type { SaeIdentifier } from './saeIdentity.js';

/** Largest request body accepted on the peer routes and ETSI 014 (a BB84 frame, a list of key IDs). */
export const MAX_BODY_BYTES = 1_048_576;
/** Default of module.max_app_body_bytes: the seed API's and ETSI 004's bodies are a few hundred bytes. */
export const DEFAULT_APP_BODY_BYTES = 65_536;
/** Query parameters parsed at most (node:querystring; brackets are never expanded into objects). */
export const MAX_QUERY_PARAMETERS = 256;

/** The statuses a refused request may get from the body parsers, each with a message naming the problem (never the input). */
function clientErrorMessage(err: Error & { status?: number; type?: string; limit?: number }): { status: number; code: string; message: string } {
  switch (err.type) {
    case 'entity.too.large':
      return { status: 413, code: 'BAD_REQUEST', message: `body larger than ${err.limit ?? MAX_BODY_BYTES} bytes` };
    case 'encoding.unsupported':
      return { status: 415, code: 'BAD_REQUEST', message: 'unsupported Content-Encoding (identity, gzip, deflate or br)' };
    case 'charset.unsupported':
      return { status: 415, code: 'BAD_REQUEST', message: 'unsupported charset in Content-Type (use utf-8)' };
    case 'request.aborted':
      return { status: 400, code: 'BAD_REQUEST', message: 'the request was aborted before its body was complete' };
    case 'request.size.invalid':
      return { status: 400, code: 'BAD_REQUEST', message: 'the body is not as long as Content-Length says' };
    default:
      break;
  }
  // The router's "Failed to decode param" (a path segment that is not valid percent-encoding) quotes the segment.
  if (err instanceof URIError) return { status: 400, code: 'BAD_REQUEST', message: 'the path is not valid percent-encoding' };
  return { status: err.status ?? 400, code: 'BAD_REQUEST', message: 'malformed request' };
}

export interface AppDeps {
  manager: KeyStreamManager;
  exchange: ExchangeService;
  log: Logger;
  /** Log every request (default true). */
  requestLog?: boolean;
  /** Which routes this listener serves (default 'all'). */
  routes?: 'all' | 'app' | 'peer';
  /** Application identities (config `applications`, plus module.api_token as `default`); none: loopback callers only. */
  applications?: readonly ApplicationEntry[];
  /** module.operator_token: required by the operator routes when set (else: loopback callers only). */
  operatorToken?: string;
  /** ETSI GS QKD 014 (absent: its routes answer 503). */
  etsi014?: Etsi014Service;
  /** The calling SAE's ID (client certificate); absent: no caller is identified (401). */
  identifySae?: SaeIdentifier;
  /** Authenticates every peer message (src/api/peerAuth.ts); absent only in tests of single routes. */
  peerGate?: RequestHandler & { beforeBody?: RequestHandler };
  /** module.max_app_body_bytes: largest body of the seed and ETSI 004 routes (default DEFAULT_APP_BODY_BYTES). */
  maxAppBodyBytes?: number;
  /** Config `keyserver`: the key server 2.0 interface (routes/keyServerV2.ts). */
  keyServer?: KeyServerV2Settings;
  /** peer_auth.legacy_peer (INSECURE): the original Python module's /sync and /start, before this module's own (routes/legacyPeer.ts). */
  legacyPeerRoutes?: RequestHandler;
  /** module.metrics: GET /metrics and the timing of every request (src/metrics/); absent: neither. */
  metrics?: MetricsExposition & { httpMiddleware(mountPaths: readonly string[]): RequestHandler };
  /** GET /health/ready (src/health/readiness.ts); absent: the route is not served. */
  readiness?: ReadinessSource;
  /** The link the dashboard describes (src/dashboard/link.ts); absent: the simulator's name and the capacity only. */
  dashboardLink?: DashboardLink;
}

/** Prefixes routers are mounted under below (the HTTP metrics' route labels are these plus a route's pattern). */
const MOUNT_PATHS = ['/api/v1/keys', '/api/v1/qkdm/actions', SEED_RENAMED_PREFIX, ETSI004_PREFIX];

export function createApp({ manager, exchange, log, requestLog = true, routes = 'all', applications = [], operatorToken, etsi014, identifySae, peerGate, maxAppBodyBytes = DEFAULT_APP_BODY_BYTES, keyServer, legacyPeerRoutes, metrics, readiness, dashboardLink }: AppDeps): express.Express {
  const identities = { applications, operatorToken };
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Flat parameters only (`a[b][c]=x` is the parameter "a[b][c]", never nested objects), and a bounded number.
  app.set('query parser', (text: string) => parseQueryString(text, '&', '=', { maxKeys: MAX_QUERY_PARAMETERS }));
  if (metrics) app.use(metrics.httpMiddleware(MOUNT_PATHS));
  if (requestLog) {
    // Bodies are never logged: requests and answers may carry keys.
    app.use(
      pinoHttp({
        logger: log,
        // Health probes and the dashboard's poll (every 2 s while a page is open) would drown the log.
        autoLogging: { ignore: (req) => req.url === '/health' || req.url === '/health/live' || req.url === '/health/ready' || req.url === `${DASHBOARD_PATH}/feed` },
        // Only method, path (no query string) and status: headers carry tokens and certificates'
        // identities, query strings may carry handles, and bodies carry keys.
        serializers: {
          req: (req: { id?: unknown; method?: string; url?: string }) => ({ id: req.id, method: req.method, path: (req.url ?? '').split('?')[0] }),
          res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
        },
      }),
    );
  }
  // Sealed peer messages are bytes (opened by the peer gate); every other body is read as text and
  // decoded by the route (Python literal or JSON): no parser guesses.
  const sealed = (req: IncomingMessage): boolean => (req.headers['content-type'] ?? '').toLowerCase().startsWith(SEALED_CONTENT_TYPE);
  const bodyParsers = (limit: number): RequestHandler[] => [express.raw({ type: sealed, limit }), express.text({ type: (req) => !sealed(req), limit })];
  // A peer call that cannot authenticate whatever its body is refused before the body is read.
  if (routes !== 'app' && peerGate?.beforeBody) app.use(PEER_PATHS, peerGate.beforeBody);
  // Peer messages (BB84 frames) and ETSI 014 (lists of key IDs) may be up to MAX_BODY_BYTES; every
  // other route's body is at most module.max_app_body_bytes.
  const largeBodyPaths = [...(routes !== 'app' ? PEER_PATHS : []), ...(routes !== 'peer' ? ['/api/v1/keys'] : [])];
  if (routes !== 'app') app.use(HELLO_PATH, bodyParsers(MAX_HELLO_BYTES)); // a hello is one small JSON object
  app.use(largeBodyPaths, bodyParsers(MAX_BODY_BYTES));
  app.use(bodyParsers(maxAppBodyBytes)); // skipped when a parser above has read the body

  if (routes !== 'app') {
    // Nothing reaches a peer route (or the simulator behind it) before the gate authenticated it.
    if (peerGate) app.use(PEER_PATHS, peerGate);
    if (legacyPeerRoutes) app.use('/', legacyPeerRoutes);
    app.use('/', peerRouter(manager, exchange));
    if (etsi014) app.use('/', etsi014PeerRouter(etsi014));
  }
  if (routes !== 'peer') {
    app.use('/', infoRouter(manager, exchange, operatorGate(identities)));
    app.use('/', healthRouter(readiness));
    if (metrics) app.use('/', metricsRouter(metrics, operatorGate(identities)));
    app.use('/', openApiRouter());
    // A browser opens the dashboard: the gate challenges with HTTP Basic (the operator token as the password).
    const dashboard = new DashboardSampler(moduleSource(manager, exchange), dashboardLink ?? moduleOnlyLink(manager.settings.sim, manager.settings.maxKeyCount));
    app.use(DASHBOARD_PATH, operatorGate(identities, { browser: true }), dashboardRouter(dashboard));
    app.use('/api/v1/keys', etsi014Router(etsi014, identifySae ?? (() => undefined)));
    // Application routes: every route mounted below this line knows its caller (appIdentity.ts), and
    // every stream it touches is bound to that caller.
    app.use(applicationGate(identities));
    const seed = seedRouter(manager);
    app.use('/api/v1/qkdm/actions', keyServerV2Router(manager, keyServer, log)); // before the seed router: passes on what is not 2.0-shaped
    app.use('/', seed);
    app.use('/api/v1/qkdm/actions', seed);
    app.use(SEED_RENAMED_PREFIX, seedRenamedRouter(manager)); // the key server's GET /api/v1/qkdm/available_keys
    app.use(ETSI004_PREFIX, etsi004Router(manager, exchange));
  }

  app.use((req: Request, res: Response) => {
    // The path is not repeated (it is the caller's input); the method is one Node's parser knows.
    res.status(404).json({ code: 'NOT_FOUND', message: `no route for ${req.method} at this path${routes === 'peer' ? ' on the peer listener' : ' (GET /openapi.json lists the routes)'}` });
  });
  // Body-parser and router errors (too large, bad charset, bad percent-encoding) are the client's,
  // answered with a fixed message; anything else is ours.
  app.use((err: Error & { status?: number; type?: string; limit?: number }, req: Request, res: Response, _next: NextFunction) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if ((typeof err.status === 'number' && err.status >= 400 && err.status < 500) || err instanceof URIError) {
      const answer = clientErrorMessage(err);
      res.status(answer.status).json({ code: answer.code, message: answer.message });
      return;
    }
    log.error({ err: { name: err.name, message: err.message }, url: req.path }, 'unhandled error');
    const storeDown = err.name === 'StoreError';
    res.status(storeDown ? 503 : 500).json({ code: storeDown ? 'STORE_UNAVAILABLE' : 'INTERNAL', message: storeDown ? 'a store is unavailable' : 'internal error' });
  });
  return app;
}
