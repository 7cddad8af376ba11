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

/** Runs the same script as `npm run certs`, into a fresh temp dir. */
export function makeCerts(): CertSet {
  const dir = tempDir('certs');
  execFileSync('bash', [join(ROOT, 'scripts', 'certs.sh'), dir], { stdio: 'ignore' });
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
