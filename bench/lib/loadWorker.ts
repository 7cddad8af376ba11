/**
 * Load generator run in a worker thread (its own event loop and core): `concurrency` clients each
 * send requests back to back over keep-alive connections for `durationMs`, recording latencies.
 */
import { Agent, request } from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';

export interface LoadSpec {
  url: string;
  method: 'GET' | 'POST';
  body: string;
  headers?: Record<string, string>;
  concurrency: number;
  durationMs: number;
  /** Stop after this many requests in total (0 = unlimited). */
  maxRequests: number;
}

export interface LoadResult {
  requests: number;
  non2xx: number;
  errors: number;
  elapsedMs: number;
  latenciesMs: number[];
  bodyStatusSamples: string[];
}

async function run(spec: LoadSpec): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: spec.concurrency });
  const target = new URL(spec.url);
  const latencies: number[] = [];
  const samples: string[] = [];
  let requests = 0;
  let non2xx = 0;
  let errors = 0;
  const t0 = performance.now();
  const deadline = t0 + spec.durationMs;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const start = performance.now();
      const req = request(
        { agent, host: target.hostname, port: target.port, path: target.pathname + target.search, method: spec.method, headers: { 'content-length': Buffer.byteLength(spec.body), ...spec.headers } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            latencies.push(performance.now() - start);
            if ((res.statusCode ?? 0) >= 300) non2xx++;
            if (samples.length < 3) samples.push(`${res.statusCode} ${Buffer.concat(chunks).toString().slice(-12)}`);
            resolve();
          });
        },
      );
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end(spec.body);
    });
  const client = async (): Promise<void> => {
    while (performance.now() < deadline && (spec.maxRequests === 0 || requests < spec.maxRequests)) {
      requests++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, client));
  agent.destroy();
  return { requests, non2xx, errors, elapsedMs: performance.now() - t0, latenciesMs: latencies, bodyStatusSamples: samples };
}

if (parentPort) {
  run(workerData as LoadSpec).then((r) => parentPort!.postMessage(r));
}
