/**
 * The HTTP application. This file reads as the route table; handlers live in routes/.
 *
 *   seed API (root and /api/v1/qkdm/actions/):  POST /open_connect  POST /get_key  POST /close
 *                                               POST|GET /available_keys
 *   peer channel (behind the peer gate):        POST /peer/hello  GET /sync  POST /start  POST /peer/open
 *                                               POST /peer/close  POST /peer/round  POST /peer/confirm
 *                                               POST /peer/counter
 *                                               POST /peer/etsi014/keys  POST /peer/etsi014/ready
 *   operators:                                  GET /health  GET /streams  GET /streams/:id
 *                                               GET /streams/:id/stats  GET /openapi.json
 *   ETSI GS QKD 014 (/api/v1/keys):             GET /{slave}/status  POST|GET /{slave}/enc_keys
 *                                               POST|GET /{master}/dec_keys
 *   ETSI GS QKD 004 (/etsi004/v2.1.1):          POST /open_connect  POST /get_key  POST /close
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
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import type { Etsi014Service } from '../core/Etsi014Service.js';
import type { KeyStreamManager } from '../core/KeyStreamManager.js';
import type { ExchangeService } from '../exchange/ExchangeService.js';
import { SEALED_CONTENT_TYPE } from '../exchange/auth/peerSessions.js';
import { applicationGate, operatorGate, type ApplicationEntry } from './appIdentity.js';
import { PEER_PATHS } from './peerAuth.js';
import { ETSI004_PREFIX, etsi004Router } from './routes/etsi004.js';
import { etsi014PeerRouter, etsi014Router } from './routes/etsi014.js';
import { infoRouter } from './routes/info.js';
import { openApiRouter } from './routes/openapi.js';
import { peerRouter } from './routes/peer.js';
import { seedRouter } from './routes/seed.js';
import type { SaeIdentifier } from './saeIdentity.js';

/** Largest request body accepted (a Python literal or JSON document). */
export const MAX_BODY_BYTES = 1_048_576;

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
  peerGate?: RequestHandler;
}

export function createApp({ manager, exchange, log, requestLog = true, routes = 'all', applications = [], operatorToken, etsi014, identifySae, peerGate }: AppDeps): express.Express {
  const identities = { applications, operatorToken };
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  if (requestLog) {
    // Bodies are never logged: requests and answers may carry keys.
    app.use(
      pinoHttp({
        logger: log,
        autoLogging: { ignore: (req) => req.url === '/health' },
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
  app.use(express.raw({ type: sealed, limit: MAX_BODY_BYTES }));
  app.use(express.text({ type: (req) => !sealed(req), limit: MAX_BODY_BYTES }));

  if (routes !== 'app') {
    // Nothing reaches a peer route (or the simulator behind it) before the gate authenticated it.
    if (peerGate) app.use(PEER_PATHS, peerGate);
    app.use('/', peerRouter(manager, exchange));
    if (etsi014) app.use('/', etsi014PeerRouter(etsi014));
  }
  if (routes !== 'peer') {
    app.use('/', infoRouter(manager, exchange, operatorGate(identities)));
    app.use('/', openApiRouter());
    app.use('/api/v1/keys', etsi014Router(etsi014, identifySae ?? (() => undefined)));
    // Application routes: every route mounted below this line knows its caller (appIdentity.ts), and
    // every stream it touches is bound to that caller.
    app.use(applicationGate(identities));
    const seed = seedRouter(manager);
    app.use('/', seed);
    app.use('/api/v1/qkdm/actions', seed);
    app.use(ETSI004_PREFIX, etsi004Router(manager, exchange));
  }

  app.use((req: Request, res: Response) => {
    res.status(404).json({ code: 'NOT_FOUND', message: `no route ${req.method} ${req.path}` });
  });
  // Body-parser errors (too large, bad charset) are the client's; anything else is ours.
  app.use((err: Error & { status?: number; type?: string }, req: Request, res: Response, _next: NextFunction) => {
    if (typeof err.status === 'number' && err.status >= 400 && err.status < 500) {
      res.status(err.status).json({ code: 'BAD_REQUEST', message: err.type === 'entity.too.large' ? `body larger than ${MAX_BODY_BYTES} bytes` : err.message });
      return;
    }
    log.error({ err: { name: err.name, message: err.message }, url: req.path }, 'unhandled error');
    const storeDown = err.name === 'StoreError';
    res.status(storeDown ? 503 : 500).json({ code: storeDown ? 'STORE_UNAVAILABLE' : 'INTERNAL', message: storeDown ? 'a store is unavailable' : 'internal error' });
  });
  return app;
}
