/**
 * Issue 15, "Why" 6 and 7: Vault over plain http was the default, also to a remote host, with no
 * warning; with HTTP_PROXY set the Vault token and keys went through the proxy; on a 307 to another
 * host the token and key were re-sent. A delivered key stayed in the SQLite WAL after a SIGKILL, also
 * after the restart; ETSI 004 error messages echoed part of a malformed body; the HTTPS listener
 * accepted CBC-SHA1 suites.
 *
 * Answers: https by default and required off loopback (plain http only with vault.allow_plain_http);
 * Vault requests never use an environment proxy and never follow redirects; the WAL is checkpointed
 * and truncated when the module starts; messages never repeat request content; TLS listeners speak
 * TLS 1.3 and TLS 1.2 AEAD suites only.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect } from 'node:tls';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { start as startFakeVault, type FakeVault } from '../store/fakeVault.js';
import { freePort, startModule, tempDir, type RunningModule } from '../support/processes.js';
import { makeCerts, type CertSet } from '../support/tls.js';
import { app004, appPy, openStream, startPair, takeBoth, type Pair } from './support.js';

let certs: CertSet;
let pairs: Pair[] = [];
let running: RunningModule[] = [];
let servers: Server[] = [];
let vaults: FakeVault[] = [];
beforeAll(() => {
  certs = makeCerts();
});
afterEach(async () => {
  await Promise.all([...pairs.flatMap((p) => [p.alice, p.bob]), ...running].map((m) => m.kill('SIGKILL')));
  pairs = [];
  running = [];
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  servers = [];
  await Promise.all(vaults.map((v) => v.stop()));
  vaults = [];
});

/** An HTTP server that records every request (method, URL, and whether it carried a Vault token). */
async function recorder(handler?: (req: IncomingMessage, res: import('node:http').ServerResponse) => void): Promise<{ url: string; port: number; seen: Array<{ method: string; url: string; token: boolean }> }> {
  const seen: Array<{ method: string; url: string; token: boolean }> = [];
  const port = await freePort();
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', token: req.headers['x-vault-token'] !== undefined });
    if (handler) handler(req, res);
    else res.writeHead(502).end();
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  servers.push(server);
  return { url: `http://127.0.0.1:${port}`, port, seen };
}

const vaultEnv = (port: number, token: string) => ({ QKDM_VAULT_HOST: '127.0.0.1', QKDM_VAULT_PORT: String(port), QKDM_VAULT_SCHEME: 'http', QKDM_VAULT_TOKEN: token });

describe('Why 6: Vault over plain http by default, through environment proxies, following redirects', () => {
  it('when vault is plain http to another host, then the module refuses to start unless allow_plain_http says so', async () => {
    const err = await startModule({ name: 'bob', sender: 0, port: await freePort(), dataDir: tempDir('v-http'), env: { QKDM_VAULT_HOST: 'vault.example', QKDM_VAULT_SCHEME: 'http', QKDM_VAULT_TOKEN: 't' } }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/vault\.scheme: http sends the Vault token and the keys in clear to vault\.example/);
  });

  it('when HTTP_PROXY and HTTPS_PROXY are set, then Vault requests still go straight to Vault and the proxy sees nothing', async () => {
    const vault = await startFakeVault();
    vaults.push(vault);
    const proxy = await recorder();
    const proxyEnv = { HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url, http_proxy: proxy.url, https_proxy: proxy.url };
    // Bob keeps its keys in Vault (Alice in its embedded store); both have the proxy variables.
    const pair = await startPair({ env: proxyEnv, bobEnv: vaultEnv(Number(new URL(vault.url).port), vault.token) });
    pairs.push(pair);
    const id = await openStream(pair);
    const [[a, b]] = await takeBoth(pair, id, 1);
    expect(b!.key).toBe(a!.key);
    expect(vault.requests.length).toBeGreaterThan(0);
    expect(proxy.seen).toEqual([]);
  });

  it('when Vault answers 307 to another host, then the module does not follow it: the token and keys never reach that host', async () => {
    const elsewhere = await recorder((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    const redirecting = await recorder((req, res) => res.writeHead(307, { location: `${elsewhere.url}${req.url}` }).end());
    // The module probes Vault at start-up: the redirect is not followed, and the module refuses to start
    // with one line naming vault and what it got.
    const started = startPair({ bobEnv: vaultEnv(redirecting.port, 'vault-token-that-must-stay-home') });
    const failure = await started.then(
      (pair) => {
        pairs.push(pair);
        return '';
      },
      (err: Error) => err.message,
    );
    expect(failure).toMatch(/qkd-module: start-up failed: vault \(http:\/\/127\.0\.0\.1:\d+\): the key store cannot be reached \(vault: HTTP 307 on list\)/);
    expect(failure).not.toContain('vault-token-that-must-stay-home');
    expect(redirecting.seen.length).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 500));
    expect(elsewhere.seen).toEqual([]);
    expect(redirecting.seen.every((r) => r.token)).toBe(true); // it did talk to "Vault", with the token, there only
  });
});

describe('Why 7: keys left in the WAL after a crash; messages echoing the body; CBC-SHA1 suites', () => {
  it('when a module is SIGKILLed after delivering keys and restarts, then no delivered key is left in any file of its store (the one the re-delivery window keeps goes when the window closes)', async () => {
    const pair = await startPair({ maxKeyCount: 10, env: { QKDM_MODULE_REDELIVERY_WINDOW_S: '2' } });
    pairs.push(pair);
    const id = await openStream(pair);
    const delivered = (await takeBoth(pair, id, 10)).map(([a]) => a.key!);
    await pair.bob.kill('SIGKILL');
    pair.bob = await startModule(pair.bob.spec);
    const dir = pair.bob.spec.dataDir;
    const filesHolding = (keys: readonly string[]): string[] => {
      const found: string[] = [];
      for (const f of readdirSync(dir).filter((name) => !name.endsWith('.yaml'))) {
        const bytes = readFileSync(join(dir, f));
        keys.forEach((key, i) => {
          if (bytes.includes(Buffer.from(key, 'hex'))) found.push(`${f} holds delivered key ${i}`);
        });
      }
      return found;
    };
    const files = readdirSync(dir).filter((f) => !f.endsWith('.yaml'));
    expect(files.some((f) => f.endsWith('-wal'))).toBe(true);
    // Every key the application moved past is gone at once; the WAL was checkpointed away at start.
    expect(filesHolding(delivered.slice(0, -1))).toEqual([]);
    expect(readFileSync(join(dir, files.find((f) => f.endsWith('-wal'))!)).length).toBe(0);
    // The last one stays re-deliverable for module.redelivery_window_s (2 s here), then no copy remains.
    await expect.poll(() => filesHolding(delivered), { timeout: 10_000, interval: 250 }).toEqual([]);
  });

  it('when bodies are malformed in any API, then the error names the problem and never repeats what was sent', async () => {
    const pair = await startPair();
    pairs.push(pair);
    const MARK = 'Zq7SecretMarker9';
    const answers: string[] = [];
    const raw = async (path: string, body: string, type?: string) => {
      const res = await fetch(`${pair.alice.url}${path}`, { method: 'POST', body, headers: type ? { 'content-type': type } : {} });
      expect(res.status, `${path} ${body}`).toBe(400);
      answers.push(await res.text());
    };
    await raw('/open_connect', `[None, ${MARK}, {}, None]`);
    await raw('/open_connect', `[None, '127.0.0.1:1', {'timeout': 1, 'length': 256, '${MARK}': 1}, b'\\q${MARK}']`);
    await raw('/get_key', `{"Key_stream_ID": ${MARK}}`, 'application/json');
    await raw('/get_key', `{"${MARK}": 1, "Key_stream_ID": "x"}`, 'application/json');
    await raw('/etsi004/v2.1.1/open_connect', `{"source": "a", ${MARK}}`, 'application/json');
    const extra = await app004(pair.alice, 'open_connect', { source: 'a', destination: 'qkd://b@127.0.0.1:1', QoS: { Key_chunk_size: 32, Timeout: 1, [MARK]: 1 } });
    answers.push(JSON.stringify(extra.body));
    for (const a of answers) expect(a).not.toContain(MARK);
    expect(answers.join('\n')).toMatch(/unknown field/);
  });

  it('when a client offers only CBC-SHA1 suites (or TLS 1.1), then the HTTPS listener refuses the handshake; TLS 1.3 and TLS 1.2 AEAD are served', async () => {
    const port = await freePort();
    const m = await startModule({ name: 'alice', sender: 1, port, dataDir: tempDir('tls-suites'), env: { QKDM_TLS_CERT: certs.path('alice', 'crt'), QKDM_TLS_KEY: certs.path('alice', 'key') } });
    running.push(m);
    const handshake = (opts: Record<string, unknown>): Promise<string> =>
      new Promise((resolve) => {
        const socket = connect({ host: '127.0.0.1', port, ca: certs.pem('ca', 'crt'), servername: 'localhost', ...opts }, () => {
          resolve(`${socket.getProtocol()} ${socket.getCipher().name}`);
          socket.end();
        });
        socket.on('error', (e: NodeJS.ErrnoException) => resolve(`refused: ${e.code ?? e.message}`));
      });
    for (const cipher of ['AES128-SHA', 'ECDHE-RSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA', 'AES256-SHA256']) {
      expect(await handshake({ ciphers: cipher, maxVersion: 'TLSv1.2' }), cipher).toMatch(/^refused/);
    }
    expect(await handshake({ maxVersion: 'TLSv1.1', minVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' })).toMatch(/^refused/);
    expect(await handshake({})).toMatch(/^TLSv1\.3 /);
    expect(await handshake({ maxVersion: 'TLSv1.2' })).toMatch(/^TLSv1\.2 ECDHE-(ECDSA|RSA)-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)$/);
  });
});
