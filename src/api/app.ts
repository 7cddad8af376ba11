/**
 * The HTTP application. This file reads as the route table; handlers live in routes/.
 *
 *   seed API (root and /api/v1/qkdm/actions/):  POST /open_connect  POST /get_key  POST /close
 *                                               POST|GET /available_keys
 *   peer channel:                               GET /sync  POST /start  POST /peer/open
 *                                               POST /peer/close  POST /peer/round  POST /peer/commit
 *   operators:                                  GET /health  GET /streams  GET /streams/:id
 *                                               GET /streams/:id/stats
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import type { KeyStreamManager } from '../core/KeyStreamManager.js';
import type { ExchangeService } from '../exchange/ExchangeService.js';
import { infoRouter } from './routes/info.js';
import { peerRouter } from './routes/peer.js';
import { seedRouter } from './routes/seed.js';

/** Largest request body accepted (a Python literal or JSON document). */
export const MAX_BODY_BYTES = 1_048_576;

export interface AppDeps {
  manager: KeyStreamManager;
  exchange: ExchangeService;
  log: Logger;
  /** Log every request (default true). */
  requestLog?: boolean;
}

export function createApp({ manager, exchange, log, requestLog = true }: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  if (requestLog) {
    // Bodies are never logged: requests and answers may carry keys.
    app.use(pinoHttp({ logger: log, autoLogging: { ignore: (req) => req.url === '/health' } }));
  }
  // Every body is read as text and decoded by the route (Python literal or JSON): no parser guesses.
  app.use(express.text({ type: () => true, limit: MAX_BODY_BYTES }));

  const seed = seedRouter(manager);
  app.use('/', seed);
  app.use('/api/v1/qkdm/actions', seed);
  app.use('/', peerRouter(manager, exchange));
  app.use('/', infoRouter(manager, exchange));

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
