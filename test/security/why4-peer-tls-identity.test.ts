/**
 * Issue 14, "Why" 4: with peer mutual TLS configured, an SAE's client certificate (same CA) was accepted
 * as the peer module; `client_cert: request` let a caller with no certificate use the peer routes;
 * `peer_port` without `peer_tls` was a plain-HTTP peer listener; none of this was warned about.
 *
 * Answers: peer_tls.peer_name pins the peer's certificate (CN or DNS name, from the parsed certificate)
 * in both directions and is required with peer_tls.ca; `request` is not a peer_tls option; a plain-HTTP
 * peer listener is warned about at start; and with or without TLS, nothing passes the peer gate
 * without a session under the link credentials.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort, postPy, startModule, tempDir, type RunningModule } from '../support/processes.js';
import { httpsCall, makeCerts, type CertSet } from '../support/tls.js';
import { getKey, until } from './support.js';

let certs: CertSet;
let running: RunningModule[] = [];
beforeAll(() => {
  certs = makeCerts();
});
afterEach(async () => {
  await Promise.all(running.map((m) => m.kill('SIGKILL')));
  running = [];
});

async function tlsModule(name: 'alice' | 'bob', sender: 0 | 1, extra: Record<string, string> = {}) {
  const [port, peerPort] = [await freePort(), await freePort()];
  const m = await startModule({
    name,
    sender,
    port,
    dataDir: tempDir(`why4-${name}`),
    env: {
      QKDM_MODULE_PEER_PORT: String(peerPort),
      QKDM_MODULE_THIS_PUBLIC_IP: `https://127.0.0.1:${peerPort}`,
      QKDM_PEER_TLS_CERT: certs.path(name, 'crt'),
      QKDM_PEER_TLS_KEY: certs.path(name, 'key'),
      QKDM_PEER_TLS_CA: certs.path('ca', 'crt'),
      QKDM_PEER_TLS_PEER_NAME: name === 'alice' ? 'bob' : 'alice',
      ...extra,
    },
  });
  running.push(m);
  return { m, peerPort, peer: `https://127.0.0.1:${peerPort}` };
}

describe('Why 4: peer mutual TLS accepted an SAE certificate; client_cert request; plain-HTTP peer listener', () => {
  it("when an SAE's certificate of the same CA calls the peer listener, then it is refused as not the peer module while the real pair exchanges keys", async () => {
    const alice = await tlsModule('alice', 1);
    const bob = await tlsModule('bob', 0);
    const sae = { ca: certs.pem('ca', 'crt'), cert: certs.pem('sae-a', 'crt'), key: certs.pem('sae-a', 'key') };
    for (const path of ['/peer/hello', '/peer/open', '/peer/round']) {
      const r = await httpsCall(bob.peerPort, 'POST', path, sae, '{}');
      expect(r.status).toBe(403);
      expect(JSON.parse(r.body).code).toBe('PEER_CERTIFICATE');
    }
    const a = await postPy(alice.m.url, '/open_connect', [null, bob.peer, { timeout: 10_000, length: 256 }, null]);
    const [id, status] = a.value as [string, number];
    expect(status).toBe(0);
    expect((await postPy(bob.m.url, '/open_connect', [null, alice.peer, { timeout: 10_000, length: 256 }, id])).value).toEqual([id, 0]);
    const [ka, kb] = await Promise.all([getKey(alice.m, id), getKey(bob.m, id)]);
    expect([ka.status, kb.status]).toEqual([0, 0]);
    expect(kb.key).toBe(ka.key);
  });

  it('when the peer listener is configured with client_cert request, or with a CA but no peer_name, then the module refuses to start and says why', async () => {
    await expect(tlsModule('bob', 0, { QKDM_PEER_TLS_CLIENT_CERT: 'request' })).rejects.toThrow(/peer_tls\.client_cert: expected one of none, require/);
    await expect(tlsModule('bob', 0, { QKDM_PEER_TLS_PEER_NAME: '' })).rejects.toThrow(/peer_tls\.peer_name: required when peer_tls\.ca is set/);
  });

  it('when peer_port is set without peer_tls, then the start says the peer listener is plain HTTP and callers without a session are still refused', async () => {
    const [port, peerPort] = [await freePort(), await freePort()];
    const m = await startModule({ name: 'bob', sender: 0, port, dataDir: tempDir('why4-plain'), env: { QKDM_MODULE_PEER_PORT: String(peerPort), QKDM_MODULE_THIS_PUBLIC_IP: `127.0.0.1:${peerPort}`, QKDM_MODULE_LOG_LEVEL: 'info' } });
    running.push(m);
    await until(() => /peer listener \(module\.peer_port\) is plain HTTP: peer messages are authenticated and encrypted/.test(m.output()), 5000, 'the start-up line');
    const res = await fetch(`http://127.0.0.1:${peerPort}/peer/open`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"keyStreamId":"x"}' });
    expect(res.status).toBe(401);
  });
});
