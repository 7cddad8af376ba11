/** Runs the load worker and summarises: requests/s and latency percentiles. */
import { Worker } from 'node:worker_threads';
import type { LoadResult, LoadSpec } from './loadWorker.js';

export interface LoadSummary {
  requests: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  samples: string[];
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function runLoad(spec: LoadSpec): Promise<LoadSummary> {
  const worker = new Worker(new URL('./loadWorker.js', import.meta.url), { workerData: spec });
  const result = await new Promise<LoadResult>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  const sorted = result.latenciesMs.sort((a, b) => a - b);
  return {
    requests: sorted.length,
    perSecond: (sorted.length / result.elapsedMs) * 1000,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    non2xx: result.non2xx,
    errors: result.errors,
    samples: result.bodyStatusSamples,
  };
}

export const round = (x: number, digits = 2): number => Number(x.toFixed(digits));
