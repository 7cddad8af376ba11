/**
 * ETSI GS QKD 014 between two real module processes: SAEs call their KME over HTTPS with client
 * certificates (mutual TLS), the modules talk over a separate peer listener with mutual TLS.
 *
 *   sae-a --mTLS--> alice (KME-A) <==peer mTLS==> bob (KME-B) <--mTLS-- sae-b
 *
 * Identities: at alice, sae-a by certificate subject; at bob, sae-b by SHA-256 fingerprint and
 * "sae-c" by the subject of the alice module certificate (a second SAE at bob, to show that only the
 * slave named at enc_keys time may fetch a key).
 */
import { X509Certificate } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startModule, tempDir, type RunningModule } from '../support/processes.js';
import { httpsCall, makeCerts, pairModuleTlsEnv, type CertSet } from '../support/tls.js';

let certs: CertSet;
let running: RunningModule[] = [];

beforeAll(() => {
  certs = makeCerts();
});
afterEach(async () => {
  await Promise.all(running.map((m) => m.kill('SIGKILL')));
  running = [];
});

interface Kme {
  proc: RunningModule;
  port: number;
  restart(): Promise<void>;
}

async function pair(): Promise<{ alice: Kme; bob: Kme }> {
  const ports = { alice: await freePort(), alicePeer: await freePort(), bob: await freePort(), bobPeer: await freePort() };
  const fingerprint = new X509Certificate(certs.pem('sae-b', 'crt')).fingerprint256;
  const common = (name: 'alice' | 'bob') => ({
    ...pairModuleTlsEnv(certs, name, name === 'alice' ? ports.alicePeer : ports.bobPeer),
    QKDM_ETSI014_KEY_SIZE: '256',
    QKDM_ETSI014_MAX_KEY_PER_REQUEST: '8',
  });
  const pairTo = (sae: string, peerSae: string, peerPort: number, peerKme: string) => ({ sae_id: sae, peer_sae_id: peerSae, peer_module: `127.0.0.1:${peerPort}`, peer_kme_id: peerKme });
  const specs = {
    alice: {
      name: 'alice',
      sender: 1 as const,
      port: ports.alice,
      dataDir: tempDir('etsi-alice'),
      maxKeyCount: 30,
      env: {
        ...common('alice'),
        QKDM_ETSI014_KME_ID: 'KME-A',
        QKDM_ETSI014_SAES: JSON.stringify([pairTo('sae-a', 'sae-b', ports.bobPeer, 'KME-B'), pairTo('sae-a', 'sae-c', ports.bobPeer, 'KME-B')]),
        QKDM_ETSI014_IDENTITIES: JSON.stringify([{ sae_id: 'sae-a', cert_subject: 'O=QKD dev, CN=sae-a' }]),
      },
    },
    bob: {
      name: 'bob',
      sender: 0 as const,
      port: ports.bob,
      dataDir: tempDir('etsi-bob'),
      maxKeyCount: 30,
      env: {
        ...common('bob'),
        QKDM_ETSI014_KME_ID: 'KME-B',
        QKDM_ETSI014_SAES: JSON.stringify([pairTo('sae-b', 'sae-a', ports.alicePeer, 'KME-A'), pairTo('sae-c', 'sae-a', ports.alicePeer, 'KME-A')]),
        QKDM_ETSI014_IDENTITIES: JSON.stringify([
          { sae_id: 'sae-b', cert_sha256: fingerprint },
          { sae_id: 'sae-c', cert_subject: 'CN=alice,O=QKD dev' },
        ]),
      },
    },
  };
  const kme = async (which: 'alice' | 'bob'): Promise<Kme> => {
    const k: Kme = {
      proc: await startModule(specs[which]),
      port: specs[which].port,
      async restart() {
        await k.proc.kill('SIGKILL');
        k.proc = await startModule(specs[which]);
        running.push(k.proc);
      },
    };
    running.push(k.proc);
    return k;
  };
  const bob = await kme('bob');
  const alice = await kme('alice');
  return { alice, bob };
}

const tlsOf = (name: string) => ({ ca: certs.pem('ca', 'crt'), cert: certs.pem(name, 'crt'), key: certs.pem(name, 'key') });

async function call(k: Kme, as: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: any; text: string }> {
  const res = await httpsCall(k.port, method, `/api/v1/keys${path}`, tlsOf(as), body === undefined ? undefined : JSON.stringify(body));
  return { status: res.status, text: res.body, body: res.body ? JSON.parse(res.body) : undefined };
}

const waitForKeys = (alice: Kme) =>
  expect.poll(async () => (await call(alice, 'sae-a', 'GET', '/sae-b/status')).body.stored_key_count, { timeout: 15_000, interval: 100 }).toBeGreaterThanOrEqual(8);

describe('ETSI 014 between two module processes over mutual TLS', () => {
  it('when sae-a gets keys at alice and sae-b fetches them at bob, then both hold the same keys, once', async () => {
    const { alice, bob } = await pair();
    await waitForKeys(alice);
    const status = await call(alice, 'sae-a', 'GET', '/sae-b/status');
    expect(status.body).toMatchObject({ source_KME_ID: 'KME-A', target_KME_ID: 'KME-B', master_SAE_ID: 'sae-a', slave_SAE_ID: 'sae-b', key_size: 256, max_key_count: 30, max_SAE_ID_count: 0 });

    const enc = await call(alice, 'sae-a', 'POST', '/sae-b/enc_keys', { number: 4, size: 512 });
    expect(enc.status).toBe(200);
    expect(enc.body.keys).toHaveLength(4);
    const ids = enc.body.keys.map((k: { key_ID: string }) => k.key_ID);
    const dec = await call(bob, 'sae-b', 'POST', '/sae-a/dec_keys', { key_IDs: ids.map((key_ID: string) => ({ key_ID })) });
    expect(dec.status).toBe(200);
    expect(dec.body).toEqual(enc.body);
    for (const k of dec.body.keys) expect(Buffer.from(k.key, 'base64')).toHaveLength(64);

    const again = await call(bob, 'sae-b', 'GET', `/sae-a/dec_keys?key_ID=${ids[0]}`);
    expect(again.status).toBe(400);
    expect(again.body).toEqual({ message: 'one or more keys specified are not found on KME' });
  });

  it('when the wrong SAE certificate is used, then 401; when a key ID is unknown, then 400', async () => {
    const { alice, bob } = await pair();
    await waitForKeys(alice);
    const enc = await call(alice, 'sae-a', 'GET', '/sae-b/enc_keys?number=1');
    expect(enc.status).toBe(200);
    const id = enc.body.keys[0].key_ID as string;
    // sae-a's certificate names no SAE at bob; alice's module certificate is bob's "sae-c", not the slave.
    for (const as of ['sae-a', 'alice']) {
      const res = await call(bob, as, 'GET', `/sae-a/dec_keys?key_ID=${id}`);
      expect(res.status, as).toBe(401);
      expect(res.text).toBe('');
    }
    // sae-b's certificate is a valid client certificate at alice but maps to no SAE there.
    expect((await call(alice, 'sae-b', 'GET', '/sae-a/status')).status).toBe(401);
    // A certificate from another CA does not get past the TLS handshake.
    await expect(httpsCall(bob.port, 'GET', '/api/v1/keys/sae-a/status', { ...tlsOf('other'), ca: certs.pem('ca', 'crt') })).rejects.toThrow();
    const unknown = await call(bob, 'sae-b', 'GET', '/sae-a/dec_keys?key_ID=7d1f5a2e-3c4b-4d6e-8f70-1a2b3c4d5e6f');
    expect(unknown.status).toBe(400);
    expect(unknown.body.message).toBe('one or more keys specified are not found on KME');
    // The real slave still gets its key.
    const dec = await call(bob, 'sae-b', 'GET', `/sae-a/dec_keys?key_ID=${id}`);
    expect(dec.body).toEqual(enc.body);
  });

  it('when the slave KME restarts between enc_keys and dec_keys, then the issued key IDs survive', async () => {
    const { alice, bob } = await pair();
    await waitForKeys(alice);
    const enc = await call(alice, 'sae-a', 'POST', '/sae-b/enc_keys', { number: 3 });
    expect(enc.status).toBe(200);
    await bob.restart();
    const dec = await call(bob, 'sae-b', 'POST', '/sae-a/dec_keys', { key_IDs: enc.body.keys.map((k: { key_ID: string }) => ({ key_ID: k.key_ID })) });
    expect(dec.status).toBe(200);
    expect(dec.body).toEqual(enc.body);
    // The pair streams run on after the restart.
    const more = await call(alice, 'sae-a', 'POST', '/sae-b/enc_keys', { number: 2 });
    expect(more.status).toBe(200);
    const dec2 = await call(bob, 'sae-b', 'POST', '/sae-a/dec_keys', { key_IDs: more.body.keys.map((k: { key_ID: string }) => ({ key_ID: k.key_ID })) });
    expect(dec2.body).toEqual(more.body);
  });

  it('when bob\'s SAE is the master, then keys flow the other way on the other stream', async () => {
    const { alice, bob } = await pair();
    await expect.poll(async () => (await call(bob, 'sae-b', 'GET', '/sae-a/status')).body.stored_key_count, { timeout: 15_000, interval: 100 }).toBeGreaterThan(0);
    const enc = await call(bob, 'sae-b', 'POST', '/sae-a/enc_keys', {});
    expect(enc.status).toBe(200);
    const dec = await call(alice, 'sae-a', 'POST', '/sae-b/dec_keys', { key_IDs: [{ key_ID: enc.body.keys[0].key_ID }] });
    expect(dec.body).toEqual(enc.body);
  });
});
