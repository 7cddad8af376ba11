/**
 * GET /dashboard (the page), GET /dashboard/feed (the JSON the page polls), GET /dashboard/assets/:file (the
 * page's script and styles, and uPlot, copied from node_modules into dist at build time by
 * scripts/dashboardAssets.ts). Mounted behind the operator gate (app.ts).
 *
 * The page polls rather than holding a server-sent-events stream open: each poll is one short, stateless
 * request through the same gate as every operator route, nothing counts or caps long-lived connections, and
 * the sampler's timer runs only while polls keep arriving.
 */
import { join } from 'node:path';
import { Router, type Response } from 'express';
import type { DashboardSampler } from './sampler.js';

export const DASHBOARD_PATH = '/dashboard';
/** Where the page's files are: src/dashboard/public in the source tree, dist/src/dashboard/public once built. */
export const DASHBOARD_ASSET_DIR = join(import.meta.dirname, 'public');
/** The only files served under /dashboard/assets (uPlot's two are vendored at build time). */
export const DASHBOARD_ASSETS = ['dashboard.js', 'dashboard.css', 'uPlot.iife.min.js', 'uPlot.min.css'] as const;

/** The page loads nothing from elsewhere and runs no inline script (the token never meets a third party). */
const PAGE_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Sends one file of DASHBOARD_ASSET_DIR, or says the build did not install it. */
function sendAsset(res: Response, file: string): void {
  res.set({ 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer', 'Cache-Control': 'no-cache' });
  res.sendFile(file, { root: DASHBOARD_ASSET_DIR, dotfiles: 'deny' }, (err) => {
    if (err && !res.headersSent) {
      res.status(404).json({ code: 'NOT_FOUND', message: `dashboard file ${file} is not installed: run npm run build (it copies the page and uPlot into dist)` });
    }
  });
}

export function dashboardRouter(sampler: DashboardSampler): Router {
  const router = Router();

  router.get('/', (_req, res) => {
    res.set({ 'Content-Security-Policy': PAGE_POLICY, 'X-Frame-Options': 'DENY' });
    sendAsset(res, 'index.html');
  });

  router.get('/feed', (_req, res) => {
    res.set({ 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
    res.json(sampler.feed());
  });

  router.get('/assets/:file', (req, res) => {
    const file = (DASHBOARD_ASSETS as readonly string[]).find((name) => name === req.params.file);
    if (!file) {
      res.status(404).json({ code: 'NOT_FOUND', message: `no dashboard asset of that name (there are: ${DASHBOARD_ASSETS.join(', ')})` });
      return;
    }
    sendAsset(res, file);
  });

  return router;
}
