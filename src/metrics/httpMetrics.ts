/**
 * qkdm_http_request_duration_seconds{route,method,status}: an Express middleware that times every
 * request to its answer. `route` is the pattern of the route that answered (`/streams/:id`, with the
 * prefix it is mounted under), never the URL: a path the caller chose never becomes a label. A request
 * no route took (404, or refused by a gate in front of the routes) is `unmatched`.
 */
import type { Request, RequestHandler } from 'express';
import type { HistogramSeries, LiteHistogram } from './LiteHistogram.js';

export type HttpLabel = 'route' | 'method' | 'status';
export const UNMATCHED_ROUTE = 'unmatched';
/** Methods kept as they are; any other is `other` (Node's parser knows a few dozen). */
const METHODS: ReadonlySet<string> = new Set(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS']);

/**
 * @param mountPaths the prefixes routers are mounted under (app.ts); a matched prefix is compared in
 * lower case (Express matches paths case-insensitively), and any other is not used as a label.
 */
export function httpMetrics(histogram: LiteHistogram<HttpLabel>, mountPaths: readonly string[]): RequestHandler {
  const mounts: ReadonlySet<string> = new Set(['', ...mountPaths.map((p) => (p === '/' ? '' : p.toLowerCase()))]);
  const series = new Map<string, HistogramSeries>();

  const routeOf = (req: Request): string => {
    const path = (req.route as { path?: unknown } | undefined)?.path;
    if (typeof path !== 'string') return UNMATCHED_ROUTE;
    const base = req.baseUrl.toLowerCase();
    return mounts.has(base) ? `${base}${path}` : UNMATCHED_ROUTE;
  };

  return (req, res, next) => {
    const started = performance.now();
    res.once('finish', () => {
      const route = routeOf(req);
      const method = METHODS.has(req.method) ? req.method : 'other';
      const status = String(res.statusCode);
      const key = `${route} ${method} ${status}`;
      let s = series.get(key);
      if (!s) series.set(key, (s = histogram.series({ route, method, status })));
      s.observe((performance.now() - started) / 1000);
    });
    next();
  };
}
