/**
 * Build step (npm run build, after tsc): copies the dashboard's page (src/dashboard/public) and uPlot, vendored
 * from node_modules (an exact-pinned dependency), into dist/src/dashboard/public, where GET /dashboard serves
 * them. No CDN, no bundler: the files are copied as they are.
 *
 *   node dist/scripts/dashboardAssets.js
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** dist/scripts -> the package root. */
const ROOT = resolve(import.meta.dirname, '..', '..');
const PAGE = join(ROOT, 'src', 'dashboard', 'public');
const UPLOT = join(ROOT, 'node_modules', 'uplot');
const TARGET = join(ROOT, 'dist', 'src', 'dashboard', 'public');
/** uPlot's files the page loads, and its licence (MIT: the notice travels with the copy). */
const VENDORED: readonly [from: string, to: string][] = [
  [join(UPLOT, 'dist', 'uPlot.iife.min.js'), 'uPlot.iife.min.js'],
  [join(UPLOT, 'dist', 'uPlot.min.css'), 'uPlot.min.css'],
  [join(UPLOT, 'LICENSE'), 'uPlot.LICENSE.txt'],
];

function main(): void {
  if (!existsSync(PAGE)) throw new Error(`dashboardAssets: ${PAGE} not found (run from the package's dist/scripts)`);
  mkdirSync(TARGET, { recursive: true });
  const copied: string[] = [];
  for (const name of readdirSync(PAGE)) {
    copyFileSync(join(PAGE, name), join(TARGET, name));
    copied.push(name);
  }
  for (const [from, to] of VENDORED) {
    if (!existsSync(from)) throw new Error(`dashboardAssets: ${from} is missing: run npm install (uplot is a dependency)`);
    copyFileSync(from, join(TARGET, to));
    copied.push(to);
  }
  console.log(`dashboardAssets: copied ${copied.join(', ')} into ${TARGET}`);
}

main();
