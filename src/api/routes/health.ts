/**
 * Liveness and readiness for orchestrators (Kubernetes probes, load balancers): no credentials, as
 * GET /health, and answers that name no host, stream or credential (src/health/readiness.ts).
 *
 *   GET /health/live   200 {"status":"live"} while the process serves HTTP (no dependency is asked)
 *   GET /health/ready  200 when the stores answer, the peer module answers and the configuration is
 *                      loaded; 503 otherwise; both list every check with ok and a short reason
 */
import { Router } from 'express';
import type { ReadinessReport } from '../../health/readiness.js';

export interface ReadinessSource {
  report(): Promise<ReadinessReport>;
}

export function healthRouter(readiness: ReadinessSource | undefined): Router {
  const router = Router();

  router.get('/health/live', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'live' });
  });

  if (readiness) {
    router.get('/health/ready', async (_req, res) => {
      const report = await readiness.report();
      res.set('Cache-Control', 'no-store').status(report.status === 'ready' ? 200 : 503).json(report);
    });
  }

  return router;
}
