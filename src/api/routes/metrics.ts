/** GET /metrics: the Prometheus exposition (src/metrics/), behind the operator gate like /streams. */
import { Router, type RequestHandler } from 'express';

export interface MetricsExposition {
  exposition(): Promise<{ contentType: string; text: string }>;
}

export const METRICS_PATH = '/metrics';

export function metricsRouter(metrics: MetricsExposition, operatorOnly: RequestHandler): Router {
  const router = Router();
  router.get(METRICS_PATH, operatorOnly, async (_req, res) => {
    const { contentType, text } = await metrics.exposition();
    res.set('Content-Type', contentType).set('Cache-Control', 'no-store').send(text);
  });
  return router;
}
