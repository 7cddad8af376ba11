/**
 * qkdm_http_request_duration_seconds{route,method,status}: an Express middleware that times every
 * request to its answer. `route` is the pattern of the route that answered (`/streams/:id`, with the
 * prefix it is mounted under), never the URL: a path the caller chose never becomes a label. A request
 * no route took (404, or refused by a gate in front of the routes) is `unmatched`.
 *
 * Every request passes here, so it allocates nothing per request: one shared 'finish' handler (no
 * closure), the start time on the response under a symbol, and series found through the route object
 * and a number for method and status (no label strings built per request).
 */
import type { RequestHandler, Response } from 'express';
import type { HistogramSeries, LiteHistogram } from './LiteHistogram.js';

export type HttpLabel = 'route' | 'method' | 'status';
export const UNMATCHED_ROUTE = 'unmatched';
/** Methods kept as they are; any other is `other` (Node's parser knows a few dozen). */
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'other'] as const;
const METHOD_INDEX: ReadonlyMap<string, number> = new Map(METHODS.map((m, i) => [m, i]));
const STARTED = Symbol('qkdm.http.started');

type TimedResponse = Response & { [STARTED]?: number };

/** The series of one route label, by method and status (method index × 1000 + status). */
interface RouteSeries {
  label: string;
  byMethodStatus: Map<number, HistogramSeries>;
}

/**
 * @param mountPaths the prefixes routers are mounted under (app.ts); a matched prefix is compared in
 * lower case (Express matches paths case-insensitively), and any other is not used as a label.
 */
export function httpMetrics(histogram: LiteHistogram<HttpLabel>, mountPaths: readonly string[]): RequestHandler {
  const mounts: ReadonlySet<string> = new Set(['', ...mountPaths.map((p) => (p === '/' ? '' : p.toLowerCase()))]);
  /** route object -> (mount prefix as requested -> its series): a route is reached under one or two prefixes. */
  const byRoute = new WeakMap<object, Map<string, RouteSeries>>();
  const labels = new Map<string, RouteSeries>();

  const seriesOfLabel = (label: string): RouteSeries => {
    let s = labels.get(label);
    if (!s) labels.set(label, (s = { label, byMethodStatus: new Map() }));
    return s;
  };
  const unmatched = seriesOfLabel(UNMATCHED_ROUTE);

  const routeSeries = (route: unknown, baseUrl: string): RouteSeries => {
    const path = (route as { path?: unknown } | undefined)?.path;
    if (typeof path !== 'string') return unmatched;
    let perBase = byRoute.get(route as object);
    if (!perBase) byRoute.set(route as object, (perBase = new Map()));
    let s = perBase.get(baseUrl);
    if (!s) {
      const base = baseUrl.toLowerCase();
      s = mounts.has(base) ? seriesOfLabel(`${base}${path}`) : unmatched;
      if (perBase.size < 8) perBase.set(baseUrl, s); // case variants of a prefix: a few kept, the rest looked up again
    }
    return s;
  };

  function onFinish(this: TimedResponse): void {
    const started = this[STARTED];
    const req = this.req;
    if (started === undefined || !req) return;
    const route = routeSeries(req.route, req.baseUrl);
    const method = METHOD_INDEX.get(req.method) ?? METHODS.length - 1;
    const key = method * 1000 + this.statusCode;
    let s = route.byMethodStatus.get(key);
    if (!s) route.byMethodStatus.set(key, (s = histogram.series({ route: route.label, method: METHODS[method]!, status: String(this.statusCode) })));
    s.observe((performance.now() - started) / 1000);
  }

  return (_req, res, next) => {
    (res as TimedResponse)[STARTED] = performance.now();
    res.on('finish', onFinish);
    next();
  };
}
