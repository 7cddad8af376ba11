/**
 * The original Python module's calls to this module (docs/peer-protocol.md, "Legacy peer: the original
 * Python module"), mounted only with peer_auth.insecure and peer_auth.legacy_peer (there is no peer gate
 * then: the original cannot authenticate). Answers are the original's: `OK` (200) or `Error`, text.
 *
 *   GET  /sync?key_handle=ID    (nothing else in the query; this module's own /sync always carries more)
 *   POST /start                 body repr(ID), a Python string literal (this module's own /start is JSON)
 *   POST /sendRegister?newKey=true&keyLen=N   body repr(list of bits), on the legacy device listener
 *                               (the peer listener's port + 1, where the original sends its keys)
 *
 * Anything else passes on to the peer routes of this module (routes/peer.ts).
 */
import express, { Router, type Request, type Response } from 'express';
import { parse as parseQueryString } from 'node:querystring';
import { parsePyLiteral } from '../codec/pyLiteral.js';
import { keyStreamIdSchema } from '../seedSchemas.js';
import { LEGACY_ERROR, type LegacyAnswer, type LegacyPeer } from '../../exchange/legacyPeer.js';

const send = (res: Response, answer: LegacyAnswer): void => {
  res.status(answer.status).type('text/html; charset=utf-8').send(answer.text);
};

/** A Python literal body, or undefined when it is none (never throws, never echoes the body). */
function pyBody(req: Request): unknown {
  if (req.is('application/json')) return undefined;
  const text = typeof req.body === 'string' ? req.body : '';
  if (text.trim() === '') return undefined;
  try {
    return parsePyLiteral(text);
  } catch {
    return undefined;
  }
}

export function legacyPeerRouter(legacy: LegacyPeer): Router {
  const router = Router();

  router.get('/sync', (req, res, next) => {
    const keys = Object.keys(req.query as Record<string, unknown>);
    if (keys.length !== 1 || keys[0] !== 'key_handle') {
      next(); // this module's own /sync (it names length, sender, sim and peer)
      return;
    }
    const id = keyStreamIdSchema.safeParse(req.query.key_handle);
    if (!id.success) {
      send(res, { status: 400, text: LEGACY_ERROR });
      return;
    }
    legacy.onSync(id.data).then(
      (answer) => send(res, answer),
      (err: unknown) => next(err),
    );
  });

  router.post('/start', (req, res, next) => {
    const value = pyBody(req);
    if (typeof value !== 'string') {
      next(); // this module's own /start ({Key_stream_ID, available}, JSON)
      return;
    }
    const id = keyStreamIdSchema.safeParse(value);
    if (!id.success) {
      send(res, { status: 400, text: LEGACY_ERROR });
      return;
    }
    send(res, legacy.onStart(id.data));
  });

  return router;
}

/** Largest /sendRegister body: 8192 bits as "0, " is about 24 KiB. */
const MAX_DEVICE_BODY_BYTES = 65_536;

/**
 * The legacy device listener's application: the original sender's fake device hands its key to the
 * receiving module's port + 1 (fakeKE.py, `/sendRegister`). Nothing else is served there.
 */
export function legacyDeviceApp(legacy: LegacyPeer): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', (text: string) => parseQueryString(text, '&', '=', { maxKeys: 16 }));
  app.use(express.text({ type: () => true, limit: MAX_DEVICE_BODY_BYTES }));
  app.post('/sendRegister', (req, res) => {
    send(res, legacy.onSendRegister(req.query.keyLen, pyBody(req)));
  });
  app.use((_req: Request, res: Response) => {
    res.status(404).type('text/plain').send('no route at this path on the legacy device listener');
  });
  app.use((err: Error & { status?: number }, _req: Request, res: Response, _next: express.NextFunction) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.status(typeof err.status === 'number' && err.status >= 400 && err.status < 500 ? err.status : 500).type('text/plain').send(LEGACY_ERROR);
  });
  return app;
}
