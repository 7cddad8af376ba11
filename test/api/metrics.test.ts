/**
 * GET /metrics on a whole module (composition root, embedded stores): behind the operator gate exactly
 * like /streams, in the Prometheus text format, with route patterns (never URLs) as labels; off with
 * module.metrics: false. /health/live and /health/ready need no credentials (orchestrators probe without).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import express, { type Express } from 'express';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { credentialsEnv } from '../../scripts/lib/linkCredentials.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { createModule, type QkdModule } from '../../src/server.js';
import { tempDir, testLinkCredentials } from '../support/processes.js';
import { parseExposition, samples, typesOf } from '../support/prometheus.js';

const modules: QkdModule[] = [];
afterEach(async () => {
  await Promise.all(modules.splice(0).map((m) => m.stop()));
});

async function moduleWith(env: Record<string, string> = {}): Promise<QkdModule> {
  const dataDir = tempDir('metrics-api');
  const file = join(dataDir, 'm.yaml');
  writeFileSync(file, 'module:\n  sim: fake\n');
  const link = credentialsEnv(await testLinkCredentials(), 1);
  const cfg = loadConfig({ file, env: { QKDM_MODULE_HOST: '127.0.0.1', QKDM_MODULE_PORT: '0', QKDM_MODULE_DATA_DIR: dataDir, ...link, ...env } });
  const mod = await createModule(cfg, { log: createLogger('silent'), requestLog: false });
  modules.push(mod);
  return mod;
}

/** The module's app as a caller at `address` sees it (supertest connects over loopback; the gate reads the socket's address). */
function from(address: string, app: Express): Express {
  const outer = express();
  outer.use((req, _res, next) => {
    Object.defineProperty(req.socket, 'remoteAddress', { value: address, configurable: true });
    next();
  });
  outer.use(app);
  return outer;
}

describe('GET /metrics: who may read it', () => {
  it('when no operator token is set, then a caller on this host is served and one from another host gets 403, exactly as /streams', async () => {
    const mod = await moduleWith();
    for (const path of ['/metrics', '/streams']) {
      expect((await request(mod.app).get(path)).status, path).toBe(200);
      const remote = await request(from('10.1.2.3', mod.app)).get(path).set('authorization', 'Bearer anything');
      expect(remote.status, path).toBe(403);
      expect(remote.body, path).toMatchObject({ code: 'UNAUTHORIZED' });
      expect(remote.text, path).not.toContain('qkdm_');
    }
  });

  it('when an operator token is set, then a missing or wrong token gets 401 (also on this host) and the right one is served, exactly as /streams', async () => {
    const token = 'operator-token-for-metrics-1';
    const mod = await moduleWith({ QKDM_MODULE_OPERATOR_TOKEN: token });
    for (const path of ['/metrics', '/streams']) {
      const none = await request(from('10.1.2.3', mod.app)).get(path);
      expect(none.status, path).toBe(401);
      const wrong = await request(mod.app).get(path).set('authorization', 'Bearer not-the-operator-token');
      expect(wrong.status, path).toBe(401);
      expect(wrong.headers['www-authenticate'], path).toBe('Bearer');
      expect(wrong.text, path).not.toContain('not-the-operator-token');
      const right = await request(from('10.1.2.3', mod.app)).get(path).set('authorization', `Bearer ${token}`);
      expect(right.status, path).toBe(200);
    }
  });
});

describe('GET /metrics: what it says', () => {
  it('when scraped, then it is the Prometheus text format: the registry\'s Content-Type, HELP and TYPE for every metric, every other line a sample', async () => {
    const mod = await moduleWith();
    const res = await request(mod.app).get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    const all = parseExposition(res.text); // throws on a malformed line
    expect(all.length).toBeGreaterThan(50);
    const types = typesOf(res.text);
    for (const name of types.keys()) expect(res.text, name).toContain(`# HELP ${name} `);
    expect(types.get('qkdm_peer_up')).toBe('gauge');
    expect(types.get('process_resident_memory_bytes')).toBe('gauge');
    // The embedded stores were timed while the module started (it listed the streams).
    expect(samples(all, 'qkdm_store_operation_duration_seconds_count', { store: 'sqlite', operation: 'list' })[0]!.value).toBeGreaterThanOrEqual(1);
  });

  it('when requests carry IDs and paths of the caller\'s choosing, then the HTTP histogram is labelled by route pattern, unmatched ones as "unmatched", and no URL appears', async () => {
    const mod = await moduleWith();
    const unknownId = '5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
    const chosen = 'zz-caller-chosen-segment-91';
    await request(mod.app).get(`/streams/${unknownId}`);
    await request(mod.app).get(`/streams/${unknownId}/stats`);
    await request(mod.app).get(`/${chosen}?handle=${unknownId}`);
    await request(mod.app).post('/etsi004/v2.1.1/get_key').set('content-type', 'application/json').send({ Key_stream_ID: unknownId, index: 0 });
    await request(mod.app).post('/get_key').set('content-type', 'application/json').send([unknownId, -1]);
    const text = (await request(mod.app).get('/metrics')).text;
    const routes = new Set(samples(parseExposition(text), 'qkdm_http_request_duration_seconds_count').map((s) => s.labels.route));
    expect(routes).toEqual(new Set(['/streams/:id', '/streams/:id/stats', 'unmatched', '/etsi004/v2.1.1/get_key', '/get_key']));
    const all = parseExposition(text);
    expect(samples(all, 'qkdm_http_request_duration_seconds_count', { route: '/streams/:id', method: 'GET', status: '404' })[0]!.value).toBe(1);
    expect(samples(all, 'qkdm_http_request_duration_seconds_count', { route: 'unmatched', method: 'GET', status: '404' })[0]!.value).toBe(1);
    expect(text).not.toContain(unknownId);
    expect(text).not.toContain(chosen);
    expect(text).not.toContain('?');
  });

  it('when module.metrics is false, then there is no /metrics route and no instrumentation, and the health routes still answer', async () => {
    const mod = await moduleWith({ QKDM_MODULE_METRICS: 'false' });
    expect(mod.metrics).toBeUndefined();
    const res = await request(mod.app).get('/metrics');
    expect(res.status).toBe(404);
    expect(res.text).not.toContain('qkdm_');
    expect((await request(mod.app).get('/health/live')).status).toBe(200);
    expect((await request(mod.app).get('/health/ready')).status).toBe(200);
  });
});

describe('health routes', () => {
  it('when an orchestrator probes from another host without a token, then /health/live and /health/ready answer; /health is unchanged', async () => {
    const mod = await moduleWith({ QKDM_MODULE_OPERATOR_TOKEN: 'operator-token-for-metrics-2' });
    const remote = from('10.1.2.3', mod.app);
    const live = await request(remote).get('/health/live');
    expect(live.status).toBe(200);
    expect(live.body).toEqual({ status: 'live' });
    const ready = await request(remote).get('/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body.status).toBe('ready');
    expect(Object.keys(ready.body.checks).sort()).toEqual(['config', 'handle_store', 'key_store', 'peer']);
    for (const check of Object.values(ready.body.checks) as Array<{ ok: boolean; reason: string }>) {
      expect(check.ok).toBe(true);
      expect(check.reason.length).toBeGreaterThan(0);
    }
    const health = await request(remote).get('/health');
    expect(health.body).toEqual({ status: 'ok', sender: 1, sim: 'fake' });
  });
});
