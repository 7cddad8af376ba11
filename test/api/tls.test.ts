/**
 * TLS on every listener, mutual TLS on the peer channel, bearer token on the application routes.
 * Real HTTPS servers on 127.0.0.1 (port 0) with certificates from scripts/certs.sh; the last test
 * runs two real module processes (dist/src/main.js) exchanging keys over mutual TLS.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent } from 'undici';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { loadTlsMaterial, peerClientConnectOptions } from '../../src/config/tls.js';
import { HttpPeerClient } from '../../src/exchange/HttpPeerClient.js';
import { PeerError } from '../../src/exchange/peerProtocol.js';
import { createLogger } from '../../src/log.js';
import { createModule, type QkdModule } from '../../src/server.js';
import type { PyValue } from '../../src/api/codec/pyLiteral.js';
import { credentialsEnv } from '../../scripts/lib/linkCredentials.js';
import { loadLinkCredentials } from '../../src/exchange/auth/linkCredentials.js';
import { PeerAuthenticator } from '../../src/exchange/auth/peerSessions.js';
import { freePort, hexOf, postPy, startModule, tempDir, testLinkCredentials, WAIT, type RunningModule } from '../support/processes.js';
import { httpsCall, makeCerts, type CertSet } from '../support/tls.js';

let certs: CertSet;
const modules: QkdModule[] = [];
let processes: RunningModule[] = [];
const agents: Agent[] = [];
const authenticators: PeerAuthenticator[] = [];

beforeAll(() => {
  certs = makeCerts();
});
afterEach(async () => {
  await Promise.all(modules.splice(0).map((m) => m.stop()));
  await Promise.all(processes.map((p) => p.kill('SIGKILL')));
  processes = [];
  await Promise.all(agents.splice(0).map((a) => a.close()));
  await Promise.all(authenticators.splice(0).map((a) => a.close()));
});

/** A module in this process, configured through QKDM_* variables like a real deployment. */
async function moduleWith(env: Record<string, string>): Promise<{ mod: QkdModule; port: number; peerPort: number | undefined }> {
  const dataDir = tempDir('tls');
  const file = join(dataDir, 'm.yaml');
  writeFileSync(file, 'module:\n  sim: fake\n');
  const link = credentialsEnv(await testLinkCredentials(), env.QKDM_MODULE_SENDER === '0' ? 0 : 1);
  const cfg = loadConfig({ file, env: { QKDM_MODULE_HOST: '127.0.0.1', QKDM_MODULE_PORT: '0', QKDM_MODULE_DATA_DIR: dataDir, ...link, ...env } });
  const mod = await createModule(cfg, { log: createLogger('silent'), requestLog: false });
  modules.push(mod);
  const port = await mod.listen();
  return { mod, port, peerPort: mod.peerPort() };
}

const serverEnv = (name: string, clientCert: 'none' | 'request' | 'require' = 'require') => ({
  QKDM_TLS_CERT: certs.path(name, 'crt'),
  QKDM_TLS_KEY_FILE: certs.path(name, 'key'), // PEM text through the loader's _FILE form
  QKDM_TLS_CA: certs.path('ca', 'crt'),
  QKDM_TLS_CLIENT_CERT: clientCert,
});
const clientOf = (name: string, ca = 'ca') => ({ ca: certs.pem(ca, 'crt'), cert: certs.pem(name, 'crt'), key: certs.pem(name, 'key') });

/**
 * A peer client as the composition root builds it, from a peer_tls-shaped set of files, with the link
 * credentials of the detector end (the modules of these tests are senders) and the peer's name pinned.
 */
async function peerClient(name: string | undefined, ca: string, peerName = 'bob'): Promise<HttpPeerClient> {
  const env: Record<string, string> = { QKDM_PEER_TLS_CA: certs.path(ca, 'crt'), QKDM_PEER_TLS_PEER_NAME: peerName };
  if (name) Object.assign(env, { QKDM_PEER_TLS_CERT: certs.path(name, 'crt'), QKDM_PEER_TLS_KEY: certs.path(name, 'key') });
  const cfg = loadConfig({ env });
  const material = loadTlsMaterial(cfg, 'peer_tls');
  const agent = new Agent({ connect: peerClientConnectOptions(material, cfg.peer_tls.peer_name)! });
  agents.push(agent);
  const auth = new PeerAuthenticator(loadLinkCredentials((await testLinkCredentials()).detector, 0));
  authenticators.push(auth);
  return new HttpPeerClient({ fetchInit: () => ({ dispatcher: agent }), auth });
}

const notice = { keyStreamId: '00000000-0000-4000-8000-000000000000' };

describe('main listener over TLS', () => {
  it('when mutual TLS is required, then a client without a certificate is refused and one with a CA-signed certificate is served', async () => {
    const { port } = await moduleWith(serverEnv('alice', 'require'));
    await expect(httpsCall(port, 'GET', '/health', { ca: certs.pem('ca', 'crt') })).rejects.toThrow();
    const ok = await httpsCall(port, 'GET', '/health', clientOf('sae-a'));
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).status).toBe('ok');
  });

  it('when a client presents a certificate from another CA, then the server refuses it', async () => {
    const { port } = await moduleWith(serverEnv('alice', 'require'));
    await expect(httpsCall(port, 'GET', '/health', { ...clientOf('other'), ca: certs.pem('ca', 'crt') })).rejects.toThrow();
  });

  it('when client certificates are only requested, then a client without one is served', async () => {
    const { port } = await moduleWith(serverEnv('alice', 'request'));
    expect((await httpsCall(port, 'GET', '/health', { ca: certs.pem('ca', 'crt') })).status).toBe(200);
  });

  it('when the client trusts only the dev CA and the server shows another CA, then the client refuses the server', async () => {
    const { port } = await moduleWith(serverEnv('other', 'none'));
    await expect(httpsCall(port, 'GET', '/health', { ca: certs.pem('ca', 'crt') })).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
  });

  it('when a certificate file is missing, then start-up fails naming the field and the path, never PEM text', async () => {
    const missing = join(certs.dir, 'nope.key');
    await expect(moduleWith({ QKDM_TLS_CERT: certs.path('alice', 'crt'), QKDM_TLS_KEY: missing })).rejects.toThrow(`config: tls.key: cannot read ${missing}: no such file`);
  });
});

describe('peer channel over mutual TLS', () => {
  const peerEnv = () => ({
    QKDM_MODULE_PEER_PORT: '0',
    QKDM_PEER_TLS_CERT: certs.path('bob', 'crt'),
    QKDM_PEER_TLS_KEY: certs.path('bob', 'key'),
    QKDM_PEER_TLS_CA: certs.path('ca', 'crt'),
    QKDM_PEER_TLS_PEER_NAME: 'alice',
  });

  it('when module.peer_port is set, then peer routes are served only there (mTLS) and app routes only on the main port', async () => {
    const { port, peerPort } = await moduleWith(peerEnv());
    expect(peerPort).toBeGreaterThan(0);
    const client = clientOf('alice');
    // Reached the peer gate over mutual TLS: refused because it is not sealed in a session.
    const peerAnswer = await httpsCall(peerPort!, 'POST', '/peer/open', client, JSON.stringify(notice));
    expect(peerAnswer.status).toBe(401);
    expect(JSON.parse(peerAnswer.body).code).toBe('PEER_AUTH_REQUIRED');
    expect((await httpsCall(peerPort!, 'GET', '/health', client)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    const onMain = await fetch(`http://127.0.0.1:${port}/peer/open`, { method: 'POST', body: JSON.stringify(notice), headers: { 'content-type': 'application/json' } });
    expect(onMain.status).toBe(404);
    expect(((await onMain.json()) as { code: string }).code).toBe('NOT_FOUND');
  });

  it('when the peer client presents the right certificate, then its call is answered', async () => {
    const { peerPort } = await moduleWith(peerEnv());
    const err = await (await peerClient('alice', 'ca')).open(`https://127.0.0.1:${peerPort}`, notice, 10_000).catch((e: unknown) => e);
    // Reached the peer over mutual TLS and an authenticated session: refused for the unknown stream.
    expect(err).toBeInstanceOf(PeerError);
    expect((err as PeerError).kind).toBe('refused');
    expect((err as PeerError).peerCode).toBe('UNKNOWN_STREAM');
  });

  it('when the peer client presents no certificate or one from another CA, then the peer listener refuses it', async () => {
    const { peerPort } = await moduleWith(peerEnv());
    for (const client of [await peerClient(undefined, 'ca'), await peerClient('other', 'ca')]) {
      const err = await client.open(`https://127.0.0.1:${peerPort}`, notice, 2000).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PeerError);
      expect((err as PeerError).kind).toBe('unreachable');
    }
  });

  it('when the peer shows a certificate from another CA, then the peer client refuses it', async () => {
    const { peerPort } = await moduleWith({ ...peerEnv(), QKDM_PEER_TLS_CERT: certs.path('other', 'crt'), QKDM_PEER_TLS_KEY: certs.path('other', 'key'), QKDM_PEER_TLS_CLIENT_CERT: 'none' });
    const err = await (await peerClient('alice', 'ca')).open(`https://127.0.0.1:${peerPort}`, notice, 2000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerError);
    expect((err as PeerError).kind).toBe('unreachable');
    expect((err as PeerError).message).toMatch(/SELF_SIGNED|CERT|UNABLE/);
  });

  it('when another certificate of the same CA (an SAE) calls the peer listener, then it is refused as not the peer module', async () => {
    const { peerPort } = await moduleWith(peerEnv());
    const answer = await httpsCall(peerPort!, 'POST', '/peer/open', clientOf('sae-a'), JSON.stringify(notice));
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.body).code).toBe('PEER_CERTIFICATE');
  });

  it('when the peer listener shows a certificate of the CA that does not name the configured peer, then the peer client refuses it', async () => {
    const { peerPort } = await moduleWith(peerEnv());
    const err = await (await peerClient('alice', 'ca', 'carol')).open(`https://127.0.0.1:${peerPort}`, notice, 2000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerError);
    expect((err as PeerError).kind).toBe('unreachable');
    expect((err as PeerError).message).toMatch(/does not name carol/);
  });
});

describe('bearer token (module.api_token)', () => {
  const TOKEN = 'tok-3b9f0c1e-a6d2-4f55-9e7a';

  it('when a token is set, then the seed API needs it (missing or wrong: 401), while health and peer routes do not', async () => {
    const { port } = await moduleWith({ QKDM_MODULE_API_TOKEN: TOKEN });
    const url = `http://127.0.0.1:${port}`;
    const call = (headers: Record<string, string>) => fetch(`${url}/available_keys`, { method: 'POST', body: '', headers });
    const missing = await call({});
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
    const missingBody = await missing.text();
    expect(missingBody).not.toContain(TOKEN);
    const wrong = await call({ authorization: `Bearer ${TOKEN}x` });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).not.toContain(TOKEN);
    expect((await call({ authorization: 'Basic abc' })).status).toBe(401);
    const right = await call({ authorization: `Bearer ${TOKEN}` });
    expect(right.status).toBe(200);
    expect(await right.text()).toBe('[0]');
    expect((await fetch(`${url}/api/v1/qkdm/actions/available_keys`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect((await fetch(`${url}/health`)).status).toBe(200);
    const peer = await fetch(`${url}/peer/open`, { method: 'POST', body: JSON.stringify(notice), headers: { 'content-type': 'application/json' } });
    expect(peer.status).toBe(401); // the peer gate's answer (a session is needed), not the bearer token's
    expect(((await peer.json()) as { code: string }).code).toBe('PEER_AUTH_REQUIRED');
  });

  it('when no token is set, then the seed API is open as before', async () => {
    const { port } = await moduleWith({});
    expect((await fetch(`http://127.0.0.1:${port}/available_keys`, { method: 'POST', body: '' })).status).toBe(200);
  });
});

describe('two module processes over mutual TLS', () => {
  async function start(name: 'alice' | 'bob', sender: 0 | 1, certName: string, ca = 'ca') {
    const [port, peerPort] = [await freePort(), await freePort()];
    const m = await startModule({
      name,
      sender,
      port,
      dataDir: tempDir(name),
      env: {
        QKDM_MODULE_PEER_PORT: String(peerPort),
        QKDM_MODULE_THIS_PUBLIC_IP: `https://127.0.0.1:${peerPort}`,
        QKDM_PEER_TLS_CERT: certs.path(certName, 'crt'),
        QKDM_PEER_TLS_KEY_FILE: certs.path(certName, 'key'),
        QKDM_PEER_TLS_CA: certs.path(ca, 'crt'),
        QKDM_PEER_TLS_PEER_NAME: name === 'alice' ? 'bob' : 'alice',
      },
    });
    processes.push(m);
    return { m, peer: `https://127.0.0.1:${peerPort}` };
  }

  it('when both modules hold certificates of the same CA, then they open a stream and deliver identical keys', async () => {
    const alice = await start('alice', 1, 'alice');
    const bob = await start('bob', 0, 'bob');
    const a = await postPy(alice.m.url, '/open_connect', [null, bob.peer, { timeout: 5000, length: 256 }, null]);
    const [id, status] = a.value as [string, number];
    expect(status).toBe(0);
    expect((await postPy(bob.m.url, '/open_connect', [null, alice.peer, { timeout: 5000, length: 256 }, id])).value).toEqual([id, 0]);
    for (let i = 0; i < 5; i++) {
      const [ka, kb] = await Promise.all([postPy(alice.m.url, '/get_key', [id, -1, {}], WAIT()), postPy(bob.m.url, '/get_key', [id, -1, {}], WAIT())]);
      const [keyA, idxA, stA] = ka.value as [PyValue, number, number];
      const [keyB, idxB, stB] = kb.value as [PyValue, number, number];
      expect([stA, stB, idxA, idxB]).toEqual([0, 0, i, i]);
      expect(hexOf(keyA)).toBe(hexOf(keyB));
    }
  });

  it('ETSI 004 6.1: when the destination is qkd://<application>@host:port and the peer channel is TLS, then it is dialled over https and keys flow', async () => {
    const alice = await start('alice', 1, 'alice');
    const bob = await start('bob', 0, 'bob');
    const hostPort = (url: string) => url.replace(/^https:\/\//, '');
    const post004 = async (m: RunningModule, route: string, body: unknown) =>
      (await fetch(`${m.url}/etsi004/v2.1.1/${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json() as Promise<any>;
    const qos = { Key_chunk_size: 32, Timeout: 20_000 }; // generous: the first key waits for the signed handshake and a round on a loaded host
    const a = await post004(alice.m, 'open_connect', { source: 'qkd://app-a@alice', destination: `qkd://app-b@${hostPort(bob.peer)}`, QoS: qos });
    expect(a.status).toBe(1);
    const b = await post004(bob.m, 'open_connect', { source: 'qkd://app-b@bob', destination: `qkd://app-a@${hostPort(alice.peer)}`, QoS: qos, Key_stream_ID: a.Key_stream_ID });
    expect(b.status).toBe(0);
    const [ka, kb] = await Promise.all([post004(alice.m, 'get_key', { Key_stream_ID: a.Key_stream_ID }), post004(bob.m, 'get_key', { Key_stream_ID: a.Key_stream_ID })]);
    expect([ka.status, kb.status]).toEqual([0, 0]);
    expect(kb.Key_buffer).toBe(ka.Key_buffer);
  });

  it('when the peer holds a certificate from another CA, then no stream can be opened with it', async () => {
    const alice = await start('alice', 1, 'alice');
    const mallory = await start('bob', 0, 'other', 'other-ca');
    const a = await postPy(alice.m.url, '/open_connect', [null, mallory.peer, { timeout: 3000, length: 256 }, null]);
    // The original's failure answer: HTTP 400 [None, 2], the reason in a header.
    expect(a.status).toBe(400);
    expect(a.value).toEqual([null, 2]);
    expect(a.headers.get('x-qkdm-error')).toMatch(/^PEER_(UNREACHABLE|REFUSED)$/);
    const m = await postPy(mallory.m.url, '/open_connect', [null, alice.peer, { timeout: 3000, length: 256 }, null]);
    expect((m.value as PyValue[])[1]).toBe(2);
  });
});
