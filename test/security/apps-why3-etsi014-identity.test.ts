/**
 * Issue 15, "Why" 3: the seed API and ETSI 004 handed out keys of an ETSI 014 SAE pair's stream to a
 * caller with no certificate (its Key_stream_ID is derivable offline); a certificate whose subject is
 * `CN=sae-b/O=QKD dev` was accepted as `sae-b` (the subject was parsed as a string).
 *
 * Answers: the pair streams belong to the ETSI 014 binding, so any other API answers as for an unknown
 * stream; SAE identities match parsed certificate fields (the subject's attributes, split only where
 * RFC 4514 splits them; the fingerprint; the exact CN or DNS name).
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { etsi014KeyStreamId } from '../../src/core/Etsi014Service.js';
import { toPyLiteral } from '../../src/api/codec/pyLiteral.js';
import { freePort, startModule, tempDir, type RunningModule } from '../support/processes.js';
import { httpsCall, makeCerts, pairModuleTlsEnv, type CertSet } from '../support/tls.js';

let certs: CertSet;
let running: RunningModule[] = [];
beforeAll(() => {
  certs = makeCerts();
  // A certificate of the same CA whose CN is the single value "sae-b/O=QKD dev".
  const dir = certs.dir;
  execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'evil.key'), '-subj', '/CN=sae-b\\/O=QKD dev', '-out', join(dir, 'evil.csr')], { stdio: 'ignore' });
  writeFileSync(join(dir, 'evil.ext'), 'extendedKeyUsage=clientAuth\n');
  execFileSync('openssl', ['x509', '-req', '-in', join(dir, 'evil.csr'), '-CA', certs.path('ca', 'crt'), '-CAkey', certs.path('ca', 'key'), '-CAcreateserial', '-days', '2', '-extfile', join(dir, 'evil.ext'), '-out', join(dir, 'evil.crt')], { stdio: 'ignore' });
});
afterEach(async () => {
  await Promise.all(running.map((m) => m.kill('SIGKILL')));
  running = [];
});

const tlsOf = (name: string) => ({ ca: certs.pem('ca', 'crt'), cert: certs.pem(name, 'crt'), key: certs.pem(name, 'key') });

async function kmePair(): Promise<{ alice: RunningModule; bob: RunningModule }> {
  const ports = { alice: await freePort(), alicePeer: await freePort(), bob: await freePort(), bobPeer: await freePort() };
  const common = (name: 'alice' | 'bob') => ({
    ...pairModuleTlsEnv(certs, name, name === 'alice' ? ports.alicePeer : ports.bobPeer),
    QKDM_ETSI014_KEY_SIZE: '256',
  });
  const bob = await startModule({
    name: 'bob', sender: 0, port: ports.bob, dataDir: tempDir('why3-bob'),
    env: {
      ...common('bob'),
      QKDM_ETSI014_KME_ID: 'KME-B',
      QKDM_ETSI014_SAES: JSON.stringify([{ sae_id: 'sae-b', peer_sae_id: 'sae-a', peer_module: `127.0.0.1:${ports.alicePeer}`, peer_kme_id: 'KME-A' }]),
      QKDM_ETSI014_IDENTITIES: JSON.stringify([{ sae_id: 'sae-b', cert_subject: 'CN=sae-b,O=QKD dev' }]),
    },
  });
  running.push(bob);
  const alice = await startModule({
    name: 'alice', sender: 1, port: ports.alice, dataDir: tempDir('why3-alice'),
    env: {
      ...common('alice'),
      QKDM_ETSI014_KME_ID: 'KME-A',
      QKDM_ETSI014_SAES: JSON.stringify([{ sae_id: 'sae-a', peer_sae_id: 'sae-b', peer_module: `127.0.0.1:${ports.bobPeer}`, peer_kme_id: 'KME-B' }]),
      QKDM_ETSI014_IDENTITIES: JSON.stringify([{ sae_id: 'sae-a', cert_name: 'sae-a' }]),
    },
  });
  running.push(alice);
  return { alice, bob };
}

describe('Why 3: ETSI 014 pair streams through other APIs; a subject string taken for an SAE', () => {
  it('when the seed API or ETSI 004 asks for keys of the (derivable) pair stream, then it is an unknown stream, and the SAE pair still works', async () => {
    const { alice, bob } = await kmePair();
    const call = (k: RunningModule, as: string, method: 'GET' | 'POST', path: string, body?: string, headers?: Record<string, string>) =>
      httpsCall(k.spec.port, method, path, tlsOf(as), body, headers);
    await expect.poll(async () => JSON.parse((await call(alice, 'sae-a', 'GET', '/api/v1/keys/sae-b/status')).body).stored_key_count, { timeout: 15_000 }).toBeGreaterThan(0);
    const pairStream = etsi014KeyStreamId('KME-A', 'sae-a', 'KME-B', 'sae-b', 256);
    for (const k of [alice, bob]) {
      const seed = await call(k, 'sae-a', 'POST', '/get_key', toPyLiteral([pairStream, -1, {}]), { 'content-type': 'text/plain' });
      // The seed API's answer for an unknown stream (Python literal: the original's 400 [None, -1, status]).
      expect(seed.status).toBe(400);
      expect(seed.body).toBe('[None, -1, 2]');
      const v004 = await call(k, 'sae-a', 'POST', '/etsi004/v2.1.1/get_key', JSON.stringify({ Key_stream_ID: pairStream }), { 'content-type': 'application/json' });
      expect(JSON.parse(v004.body)).toMatchObject({ status: 4, Key_buffer: null });
    }
    const enc = await call(alice, 'sae-a', 'POST', '/api/v1/keys/sae-b/enc_keys', JSON.stringify({ number: 1 }), { 'content-type': 'application/json' });
    expect(enc.status).toBe(200);
    const keyId = JSON.parse(enc.body).keys[0].key_ID as string;

    // The look-alike certificate is not sae-b; the real one is.
    const evil = await httpsCall(bob.spec.port, 'GET', `/api/v1/keys/sae-a/dec_keys?key_ID=${keyId}`, tlsOf('evil'));
    expect(evil.status).toBe(401);
    const real = await call(bob, 'sae-b', 'GET', `/api/v1/keys/sae-a/dec_keys?key_ID=${keyId}`);
    expect(real.status).toBe(200);
    expect(JSON.parse(real.body)).toEqual(JSON.parse(enc.body));
  }, 40_000);
});
