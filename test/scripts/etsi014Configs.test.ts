/**
 * Issue 16: "there is no ready configuration for an ETSI 014 pair". config/etsi014-alice.yaml and
 * config/etsi014-bob.yaml, used exactly as their header says (npm run certs, then npm start -- --config
 * ...), from a fresh directory: the two KMEs start, and an SAE's enc_keys at KME-A and the peer SAE's
 * dec_keys at KME-B give the same key over mutual TLS. The configs' ports are fixed (5443/5444,
 * 7443/7444); the test says so when one is taken.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnModule, stopModuleProcess } from '../../scripts/lib/moduleProcess.js';
import { ROOT, tempDir } from '../support/processes.js';
import { httpsCall, type ClientTls } from '../support/tls.js';

const procs: ChildProcess[] = [];
afterAll(async () => {
  await Promise.all(procs.map((p) => stopModuleProcess(p, 'SIGKILL')));
});

function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer();
    s.once('error', () => res(false));
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });
}

describe('the shipped ETSI 014 pair configuration (config/etsi014-*.yaml)', () => {
  it('when started as its header says, then KME-A and KME-B serve enc_keys and dec_keys of the same key to sae-a and sae-b over mutual TLS', async () => {
    for (const port of [5443, 5444, 7443, 7444]) expect(await portFree(port), `port ${port} (fixed in config/etsi014-*.yaml) is in use`).toBe(true);
    const dir = tempDir('etsi014-configs');
    mkdirSync(join(dir, 'config'));
    for (const name of ['etsi014-alice.yaml', 'etsi014-bob.yaml']) cpSync(join(ROOT, 'config', name), join(dir, 'config', name));
    // What `npm run certs` and `npm install` (its prepare step) write, into this directory.
    execFileSync('bash', [join(ROOT, 'scripts', 'certs.sh'), join(dir, 'certs')], { stdio: 'ignore' });
    execFileSync(process.execPath, [join(ROOT, 'dist', 'scripts', 'keygen.js'), '--pair', join(dir, 'credentials', 'dev')], { stdio: 'ignore' });
    for (const name of ['alice', 'bob']) {
      const { proc } = await spawnModule({ name, cwd: dir, configFile: join(dir, 'config', `etsi014-${name}.yaml`), env: { QKDM_MODULE_LOG_LEVEL: 'warn' } });
      procs.push(proc);
    }
    const pem = (name: string) => readFileSync(join(dir, 'certs', name));
    const sae = (name: string): ClientTls => ({ ca: pem('ca.crt'), cert: pem(`${name}.crt`), key: pem(`${name}.key`) });
    await expect
      .poll(async () => JSON.parse((await httpsCall(5443, 'GET', '/api/v1/keys/sae-b/status', sae('sae-a'))).body).stored_key_count, { timeout: 20_000, interval: 250 })
      .toBeGreaterThan(0);
    const enc = await httpsCall(5443, 'POST', '/api/v1/keys/sae-b/enc_keys', sae('sae-a'), JSON.stringify({ number: 1 }));
    expect(enc.status).toBe(200);
    const issued = JSON.parse(enc.body).keys[0];
    const dec = await httpsCall(5444, 'POST', '/api/v1/keys/sae-a/dec_keys', sae('sae-b'), JSON.stringify({ key_IDs: [{ key_ID: issued.key_ID }] }));
    expect(dec.status).toBe(200);
    expect(JSON.parse(dec.body).keys[0].key === issued.key).toBe(true);
    // Status names the KMEs the certificates carry.
    const status = JSON.parse((await httpsCall(5444, 'GET', '/api/v1/keys/sae-a/status', sae('sae-b'))).body);
    expect(status).toMatchObject({ source_KME_ID: 'KME-B', target_KME_ID: 'KME-A', master_SAE_ID: 'sae-b', slave_SAE_ID: 'sae-a' });
  }, 60_000);
});
