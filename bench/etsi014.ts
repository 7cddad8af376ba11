/**
 * bench/etsi014: ETSI GS QKD 014 round trips per second over mutual TLS, two real module processes.
 *
 *   npm run build && node dist/bench/etsi014.js [--seconds 10] [--concurrency 16] [--number 1] [--size 256]
 *                                               [--max-key-count 5000] [--cpu-prof DIR]
 *
 * Starts alice (KME-A, sender) and bob (KME-B) with dev certificates made by scripts/certs.sh in a
 * temp dir: HTTPS main listeners requiring client certificates, peer listeners with mutual TLS,
 * fake simulator. Each of `concurrency` clients loops: POST enc_keys at alice as sae-a, then POST
 * dec_keys at bob as sae-b with the returned key IDs, and checks both answers carry the same keys.
 * One round trip = one enc_keys + one dec_keys. Prints one JSON object, then a readable line; progress on stderr.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { percentile, round } from './lib/load.js';
import { credentialsEnv, writeLinkCredentials } from '../scripts/lib/linkCredentials.js';
import { freePort, spawnModule } from '../scripts/lib/moduleProcess.js';
import { Progress } from '../scripts/lib/progress.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '16' },
    number: { type: 'string', default: '1' },
    size: { type: 'string', default: '256' },
    'max-key-count': { type: 'string', default: '1000' },
    /** Write V8 CPU profiles of both module processes into this directory. */
    'cpu-prof': { type: 'string' },
  },
});
const durationMs = Number(values.seconds) * 1000;
const concurrency = Number(values.concurrency);
const number = Number(values.number);
const size = Number(values.size);
const maxKeyCount = Number(values['max-key-count']);

const ROOT = resolve(import.meta.dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'qkdm-bench-etsi014-'));
const certDir = join(work, 'certs');
execFileSync('bash', [join(ROOT, 'scripts', 'certs.sh'), certDir], { stdio: 'ignore' });
const cert = (name: string, ext: 'crt' | 'key'): string => join(certDir, `${name}.${ext}`);
const pem = (name: string, ext: 'crt' | 'key'): Buffer => readFileSync(cert(name, ext));

async function startModule(name: 'alice' | 'bob', env: Record<string, string>): Promise<ChildProcess> {
  const dataDir = join(work, name);
  const file = join(work, `${name}.yaml`);
  writeFileSync(file, 'module:\n  sim: fake\n');
  const profile = values['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', values['cpu-prof'], '--cpu-prof-name', `${name}.cpuprofile`] : [];
  const { proc } = await spawnModule({
    name,
    configFile: file,
    nodeArgs: profile,
    env: { QKDM_MODULE_HOST: '127.0.0.1', QKDM_MODULE_DATA_DIR: dataDir, QKDM_MODULE_LOG_LEVEL: 'warn', ...env },
  });
  return proc;
}

const link = await writeLinkCredentials(join(work, 'link'));
const ports = { alice: await freePort(), alicePeer: await freePort(), bob: await freePort(), bobPeer: await freePort() };
const moduleEnv = (name: 'alice' | 'bob', peerPort: number, otherPeerPort: number, kme: string, otherKme: string, sae: string, otherSae: string, sender: 0 | 1) => ({
  QKDM_MODULE_PORT: String(name === 'alice' ? ports.alice : ports.bob),
  QKDM_MODULE_PEER_PORT: String(peerPort),
  QKDM_MODULE_THIS_PUBLIC_IP: `https://127.0.0.1:${peerPort}`,
  QKDM_MODULE_SENDER: String(sender),
  QKDM_MODULE_MAX_KEY_COUNT: String(maxKeyCount),
  QKDM_TLS_CERT: cert(name, 'crt'),
  QKDM_TLS_KEY: cert(name, 'key'),
  QKDM_TLS_CA: cert('ca', 'crt'),
  QKDM_TLS_CLIENT_CERT: 'require',
  QKDM_PEER_TLS_CERT: cert(name, 'crt'),
  QKDM_PEER_TLS_KEY: cert(name, 'key'),
  QKDM_PEER_TLS_CA: cert('ca', 'crt'),
  QKDM_PEER_TLS_PEER_NAME: name === 'alice' ? 'bob' : 'alice',
  ...credentialsEnv(link, sender),
  QKDM_ETSI014_KME_ID: kme,
  QKDM_ETSI014_KEY_SIZE: '256',
  QKDM_ETSI014_SAES: JSON.stringify([{ sae_id: sae, peer_sae_id: otherSae, peer_module: `127.0.0.1:${otherPeerPort}`, peer_kme_id: otherKme }]),
  QKDM_ETSI014_IDENTITIES: JSON.stringify([{ sae_id: sae, cert_subject: `CN=${sae},O=QKD dev` }]),
});
const bob = await startModule('bob', moduleEnv('bob', ports.bobPeer, ports.alicePeer, 'KME-B', 'KME-A', 'sae-b', 'sae-a', 0));
const alice = await startModule('alice', moduleEnv('alice', ports.alicePeer, ports.bobPeer, 'KME-A', 'KME-B', 'sae-a', 'sae-b', 1));

const agents = {
  alice: new Agent({ keepAlive: true, maxSockets: concurrency, ca: pem('ca', 'crt'), cert: pem('sae-a', 'crt'), key: pem('sae-a', 'key') }),
  bob: new Agent({ keepAlive: true, maxSockets: concurrency, ca: pem('ca', 'crt'), cert: pem('sae-b', 'crt'), key: pem('sae-b', 'key') }),
};

function call(to: 'alice' | 'bob', method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((res, rej) => {
    const req = request(
      { host: '127.0.0.1', port: to === 'alice' ? ports.alice : ports.bob, method, path, agent: agents[to], headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {} },
      (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          res({ status: r.statusCode ?? 0, body: text ? JSON.parse(text) : undefined });
        });
      },
    );
    req.on('error', rej);
    req.end(data);
  });
}

// Warm-up: the pair streams are open and the pool is filling.
const fillDeadline = Date.now() + 30_000;
// The exchange refills in batches of a quarter of max_key_count: a pool of 3/4 is as full as it gets.
const fillTarget = Math.max(1, Math.floor(maxKeyCount * 0.7));
const filling = new Progress({ label: 'filling the key pool', total: fillTarget, unit: 'keys' });
let stored = 0;
while (Date.now() < fillDeadline) {
  const s = await call('alice', 'GET', '/api/v1/keys/sae-b/status');
  stored = s.body?.stored_key_count ?? 0;
  filling.update(stored);
  if (stored >= fillTarget) break;
  await new Promise((r) => setTimeout(r, 200));
}
filling.finish();

const latencies: number[] = [];
let roundTrips = 0;
let failures = 0;
let mismatches = 0;
const failureSamples: string[] = [];
const t0 = performance.now();
const deadline = t0 + durationMs;
const progress = new Progress({ label: `enc_keys+dec_keys, ${concurrency} clients`, total: durationMs / 1000, unit: 's' });
async function client(): Promise<void> {
  while (performance.now() < deadline) {
    const start = performance.now();
    try {
      const enc = await call('alice', 'POST', '/api/v1/keys/sae-b/enc_keys', { number, size });
      if (enc.status !== 200) throw new Error(`enc_keys ${enc.status} ${enc.body?.message ?? ''}`);
      const ids = enc.body.keys.map((k: { key_ID: string }) => ({ key_ID: k.key_ID }));
      const dec = await call('bob', 'POST', '/api/v1/keys/sae-a/dec_keys', { key_IDs: ids });
      if (dec.status !== 200) throw new Error(`dec_keys ${dec.status} ${dec.body?.message ?? ''}`);
      if (JSON.stringify(dec.body) !== JSON.stringify(enc.body)) mismatches++;
      roundTrips++;
      latencies.push(performance.now() - start);
    } catch (err) {
      failures++;
      if (failureSamples.length < 3) failureSamples.push((err as Error).message);
    }
    progress.update((performance.now() - t0) / 1000, `${roundTrips} round trips${failures ? `, ${failures} failures` : ''}`);
  }
}
await Promise.all(Array.from({ length: concurrency }, client));
const elapsedMs = performance.now() - t0;
progress.finish();

for (const a of Object.values(agents)) a.destroy();
for (const p of [alice, bob]) p.kill('SIGTERM');
await Promise.all([alice, bob].map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.once('exit', r)))));
rmSync(work, { recursive: true, force: true });

const sorted = latencies.sort((a, b) => a - b);
const perSecond = (roundTrips / elapsedMs) * 1000;
const result = {
  bench: 'etsi014',
  transport: 'https, mutual TLS (SAE->KME and KME<->KME), keep-alive',
  concurrency,
  seconds: round(elapsedMs / 1000, 1),
  number,
  sizeBits: size,
  node: process.version,
  storedAtStart: stored,
  roundTrips,
  roundTripsPerSecond: round(perSecond, 1),
  keysPerSecond: round(perSecond * number, 1),
  p50Ms: round(percentile(sorted, 50)),
  p99Ms: round(percentile(sorted, 99)),
  failures,
  mismatches,
  failureSamples,
};
console.log(JSON.stringify(result));
console.log(
  `etsi014 enc_keys+dec_keys over mTLS, ${concurrency} clients: ${round(perSecond, 0)} round trips/s (${round(perSecond * number, 0)} keys/s of ${size} bits)  p50 ${result.p50Ms} ms  p99 ${result.p99Ms} ms  failures ${failures}  mismatches ${mismatches}`,
);
