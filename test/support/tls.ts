/** Test certificates (made by scripts/certs.sh into a temp dir) and a small HTTPS client. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { ROOT, tempDir } from './processes.js';

export interface CertSet {
  dir: string;
  path(name: string, ext: 'crt' | 'key'): string;
  pem(name: string, ext: 'crt' | 'key'): Buffer;
}

/**
 * KME IDs for the module certificates (scripts/certs.sh CERT_KME_ID_ALICE / CERT_KME_ID_BOB); unset: the
 * script's defaults, alice KME-A and bob KME-B; '': no KME ID in that certificate.
 */
export interface CertOptions {
  kmeIds?: { alice?: string; bob?: string };
}

/** Runs the same script as `npm run certs`, into a fresh temp dir. */
export function makeCerts(opts: CertOptions = {}): CertSet {
  const dir = tempDir('certs');
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.CERT_KME_ID_ALICE;
  delete env.CERT_KME_ID_BOB;
  if (opts.kmeIds?.alice !== undefined) env.CERT_KME_ID_ALICE = opts.kmeIds.alice;
  if (opts.kmeIds?.bob !== undefined) env.CERT_KME_ID_BOB = opts.kmeIds.bob;
  execFileSync('bash', [join(ROOT, 'scripts', 'certs.sh'), dir], { stdio: 'ignore', env });
  return {
    dir,
    path: (name, ext) => join(dir, `${name}.${ext}`),
    pem: (name, ext) => readFileSync(join(dir, `${name}.${ext}`)),
  };
}

export interface HttpsAnswer {
  status: number;
  body: string;
}

export interface ClientTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** One HTTPS request to 127.0.0.1 (no connection reuse); rejects with the TLS / socket error. */
export function httpsCall(port: number, method: string, path: string, tls: ClientTls, body?: string, headers: Record<string, string> = {}): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, method, path, agent: false, ...tls, headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * QKDM_* settings of a module of the dev pair (alice or bob) with TLS on both listeners: the main one
 * requires client certificates of the dev CA (SAEs), the peer listener on `peerPort` is mutual TLS
 * pinned to the other module's name.
 */
export function pairModuleTlsEnv(certs: CertSet, name: 'alice' | 'bob', peerPort: number): Record<string, string> {
  return {
    QKDM_MODULE_PEER_PORT: String(peerPort),
    QKDM_MODULE_THIS_PUBLIC_IP: `https://127.0.0.1:${peerPort}`,
    QKDM_TLS_CERT: certs.path(name, 'crt'),
    QKDM_TLS_KEY: certs.path(name, 'key'),
    QKDM_TLS_CA: certs.path('ca', 'crt'),
    QKDM_TLS_CLIENT_CERT: 'require',
    QKDM_PEER_TLS_CERT: certs.path(name, 'crt'),
    QKDM_PEER_TLS_KEY: certs.path(name, 'key'),
    QKDM_PEER_TLS_CA: certs.path('ca', 'crt'),
    QKDM_PEER_TLS_PEER_NAME: name === 'alice' ? 'bob' : 'alice',
  };
}
