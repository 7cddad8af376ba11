/**
 * TLS material from the configuration (`tls`, `peer_tls`; docs/tls.md): each of cert, key and ca is
 * PEM text (what QKDM_TLS_CERT_FILE=... gives) or a file path read here, once, at start-up.
 *
 * Errors name the field and the path, never the PEM text (a key must not reach a log line).
 */
import { readFileSync } from 'node:fs';
import type { PeerCertificate, SecureContextOptions } from 'node:tls';
import type { ModuleConfig } from './schema.js';

export type ClientCertPolicy = ModuleConfig['tls']['client_cert'];

/** Loaded material of one `tls`-shaped section; `cert`/`key` absent = plain HTTP for a listener. */
export interface TlsMaterial {
  cert?: Buffer;
  key?: Buffer;
  ca?: Buffer;
  clientCert: ClientCertPolicy;
}

export class TlsConfigError extends Error {
  override readonly name = 'TlsConfigError';
}

const PEM = /-----BEGIN [A-Z0-9 ]+-----/;

/** PEM text as-is, or the contents of the file the value names. */
function pem(section: string, field: string, value: string | undefined): Buffer | undefined {
  if (value === undefined) return undefined;
  if (PEM.test(value)) return Buffer.from(value.replace(/\\n/g, '\n'));
  let data: Buffer;
  try {
    data = readFileSync(value);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TlsConfigError(`config: ${section}.${field}: cannot read ${value}: ${code === 'ENOENT' ? 'no such file' : (code ?? 'read error')}`);
  }
  if (!PEM.test(data.toString('latin1'))) throw new TlsConfigError(`config: ${section}.${field}: ${value} holds no PEM block`);
  return data;
}

/** PEM text as-is, or the contents of the file `value` names; errors name `field`, never PEM text. */
export function readPemOrPath(field: string, value: string): Buffer {
  const dot = field.indexOf('.');
  return pem(field.slice(0, dot), field.slice(dot + 1), value)!;
}

export function loadTlsMaterial(cfg: ModuleConfig, section: 'tls' | 'peer_tls'): TlsMaterial {
  const t = cfg[section];
  const material: TlsMaterial = { clientCert: t.client_cert };
  const cert = pem(section, 'cert', t.cert);
  const key = pem(section, 'key', t.key);
  const ca = pem(section, 'ca', t.ca);
  if (cert) material.cert = cert;
  if (key) material.key = key;
  if (ca) material.ca = ca;
  return material;
}

/**
 * TLS 1.3, and TLS 1.2 with forward-secret AEAD suites only (no CBC, no SHA-1 MACs, no static RSA):
 * what every listener and client of the module accepts.
 */
export const TLS12_AEAD_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');
export const TLS13_CIPHERSUITES = 'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256';
export const TLS_CLIENT_HYGIENE = { minVersion: 'TLSv1.2' as const, ciphers: `${TLS13_CIPHERSUITES}:${TLS12_AEAD_CIPHERS}` };

/** True when a listener with this material serves HTTPS. */
export function servesHttps(m: TlsMaterial): boolean {
  return m.cert !== undefined && m.key !== undefined;
}

/**
 * Options for `https.createServer`: `request` asks for a client certificate and lets the request through
 * without one (routes see `socket.authorized`); `require` ends the handshake without a valid one.
 */
export function httpsServerOptions(m: TlsMaterial): SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean; minVersion: 'TLSv1.2' } {
  if (!servesHttps(m)) throw new Error('httpsServerOptions: no certificate');
  return {
    cert: m.cert,
    key: m.key,
    ...(m.ca ? { ca: m.ca } : {}),
    requestCert: m.clientCert !== 'none',
    rejectUnauthorized: m.clientCert === 'require',
    ...TLS_CLIENT_HYGIENE,
    honorCipherOrder: true,
  };
}

/** The CN and DNS subject alternative names of a parsed certificate. */
export function certificateNameList(cert: PeerCertificate | undefined): string[] {
  if (!cert || Object.keys(cert).length === 0) return [];
  const names: string[] = [];
  const cn = cert.subject?.CN as string | string[] | undefined;
  if (typeof cn === 'string') names.push(cn);
  else if (Array.isArray(cn)) names.push(...cn);
  for (const entry of (cert.subjectaltname ?? '').split(', ')) if (entry.startsWith('DNS:')) names.push(entry.slice(4));
  return names;
}

/**
 * `connect` options for the peer client (undici Agent): this module's certificate, the CA the peer's must
 * chain to, and the name it must carry (peer_tls.peer_name, checked instead of the host name: the peer is
 * pinned, whatever address it is reached at).
 */
export function peerClientConnectOptions(
  m: TlsMaterial,
  peerName?: string,
): { ca?: Buffer; cert?: Buffer; key?: Buffer; minVersion: 'TLSv1.2'; ciphers: string; checkServerIdentity?: (host: string, cert: PeerCertificate) => Error | undefined } | undefined {
  if (!m.ca && !servesHttps(m)) return undefined;
  return {
    ...(m.ca ? { ca: m.ca } : {}),
    ...(servesHttps(m) ? { cert: m.cert, key: m.key } : {}),
    ...TLS_CLIENT_HYGIENE,
    ...(peerName !== undefined
      ? {
          checkServerIdentity: (_host: string, cert: PeerCertificate) =>
            certificateNameList(cert).includes(peerName) ? undefined : new Error(`the peer's certificate does not name ${peerName} (peer_tls.peer_name)`),
        }
      : {}),
  };
}
