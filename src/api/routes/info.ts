/** Operator routes: health and the state of key streams (never key material). */
import { Router, type RequestHandler } from 'express';
import type { KeyStreamManager } from '../../core/KeyStreamManager.js';
import type { ExchangeService } from '../../exchange/ExchangeService.js';
import { keyStreamIdSchema } from '../seedSchemas.js';

export function infoRouter(manager: KeyStreamManager, exchange: ExchangeService, operatorOnly: RequestHandler): Router {
  const router = Router();

  router.get('/health', (_req, res) => {
    res.json({ status: 'ok', sender: manager.settings.sender, sim: manager.settings.sim });
  });

  // Everything below lists streams, applications and counts: operators only.
  router.use('/streams', operatorOnly);

  router.get('/streams', (_req, res) => {
    res.json({ streams: manager.summaries().map((s) => ({ ...s, exchangeRunning: exchange.isRunning(s.keyStreamId) })) });
  });

  router.get('/streams/:id', (req, res) => {
    const id = keyStreamIdSchema.safeParse(req.params.id);
    if (!id.success) {
      res.status(400).json({ code: 'BAD_REQUEST', message: `Key_stream_ID: ${id.error.issues[0]!.message}` });
      return;
    }
    const summary = manager.summary(id.data);
    if (!summary) {
      res.status(404).json({ code: 'UNKNOWN_STREAM', message: `unknown Key_stream_ID ${id.data}` });
      return;
    }
    res.json({ ...summary, exchangeRunning: exchange.isRunning(id.data) });
  });

  router.get('/streams/:id/stats', (req, res) => {
    const id = keyStreamIdSchema.safeParse(req.params.id);
    if (!id.success) {
      res.status(400).json({ code: 'BAD_REQUEST', message: `Key_stream_ID: ${id.error.issues[0]!.message}` });
      return;
    }
    if (!manager.summary(id.data)) {
      res.status(404).json({ code: 'UNKNOWN_STREAM', message: `unknown Key_stream_ID ${id.data}` });
      return;
    }
    const totals = exchange.streamTotals(id.data);
    res.json({ keyStreamId: id.data, rounds: exchange.roundHistory(id.data), ...(totals ? { totals } : {}) });
  });

  return router;
}
