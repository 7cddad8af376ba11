/**
 * SAE identity for ETSI GS QKD 014 (src/api/saeIdentity.ts): subject normalization, and
 * createSaeIdentifier over real TLS connections (client certificates from scripts/certs.sh, an HTTPS
 * server on 127.0.0.1 that requests but does not require them) and over plain HTTP (X-SAE-ID header).
 */
import { X509Certificate } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import express from 'express';
import { beforeAll, describe, expect, it } from 'vitest';
import { certificateSubject, createSaeIdentifier, normalizeSubject, SAE_ID_HEADER, type SaeIdentifier, type SaeIdentityOptions } from '../../src/api/saeIdentity.js';
import { httpsCall, makeCerts, type CertSet } from '../support/tls.js';
import { loopbackServers } from '../support/servers.js';

// ---------------------------------------------------------------------------------------------------
// helpers

const listen = loopbackServers();

/** GET /sae answers {sae: <identified SAE ID or null>}. */
function saeApp(identify: SaeIdentifier): express.Express {
  const app = express();
  app.get('/sae', (req, res) => {
    res.json({ sae: identify(req) ?? null });
  });
  return app;
}

// ---------------------------------------------------------------------------------------------------

describe('normalizeSubject', () => {
  it('when a subject has "/" in a value, then it stays one attribute ("CN=sae-b/O=QKD dev")', () => {
    expect(normalizeSubject('CN=sae-b/O=QKD dev')).toBe('CN=sae-b/O=QKD dev');
    expect(normalizeSubject('CN=sae-b/O=QKD dev')).not.toBe(normalizeSubject('CN=sae-b,O=QKD dev'));
  });

  it('when a subject has a line break in a value, then it is not split there (no reordering of the parts)', () => {
    // Were the line break a separator, the two attributes would be sorted (CN before O) like the comma form.
    expect(normalizeSubject('O=QKD dev\nCN=sae-b')).toBe('O=QKD dev\\nCN=sae-b'); // one attribute, its line break escaped
    expect(normalizeSubject('O=QKD dev\nCN=sae-b')).not.toBe(normalizeSubject('O=QKD dev, CN=sae-b'));
  });

  it('when attributes are separated by unescaped "," or "+", then they are split and sorted', () => {
    expect(normalizeSubject('O=QKD dev,CN=sae-a')).toBe('CN=sae-a\nO=QKD dev');
    expect(normalizeSubject('O=QKD dev+CN=sae-a')).toBe('CN=sae-a\nO=QKD dev');
  });

  it('when the attribute order or the spaces around "," and "=" differ, then the result is the same', () => {
    const canonical = normalizeSubject('CN=sae-a,O=QKD dev');
    for (const variant of ['O=QKD dev,CN=sae-a', '  CN = sae-a ,   O =  QKD dev  ', 'O=QKD dev , CN=sae-a', 'CN=sae-a + O=QKD dev']) {
      expect(normalizeSubject(variant), variant).toBe(canonical);
    }
  });

  it('when the spaces are inside a value, then they are kept', () => {
    expect(normalizeSubject('O=QKD  dev')).toBe('O=QKD  dev');
    expect(normalizeSubject('O=QKD dev')).not.toBe(normalizeSubject('O=QKDdev'));
  });

  it('when "," or "+" is escaped with a backslash, then it is part of the value', () => {
    expect(normalizeSubject('CN=x, O=QKD\\, dev')).toBe('CN=x\nO=QKD, dev');
    expect(normalizeSubject('CN=a\\+b')).toBe('CN=a+b');
    expect(normalizeSubject('CN=x, O=QKD\\, dev')).not.toBe(normalizeSubject('CN=x, O=QKD, dev'));
  });

  it('when attribute keys differ in case, then they are the same key; values keep their case', () => {
    expect(normalizeSubject('cn=sae-a, o=QKD dev')).toBe(normalizeSubject('CN=sae-a, O=QKD dev'));
    expect(normalizeSubject('CN=SAE-A')).not.toBe(normalizeSubject('CN=sae-a'));
  });

  it('when a value contains "=", then only the first "=" separates key and value', () => {
    expect(normalizeSubject('CN = a=b ')).toBe('CN=a=b');
  });

  it('when there are empty parts, then they are dropped', () => {
    expect(normalizeSubject('CN=a,,O=b,')).toBe(normalizeSubject('CN=a,O=b'));
    expect(normalizeSubject('')).toBe('');
  });
});

describe('certificateSubject', () => {
  it('when the certificate subject is {CN: sae-b, O: QKD dev}, then it equals the configured "O=QKD dev, CN=sae-b"', () => {
    expect(certificateSubject({ CN: 'sae-b', O: 'QKD dev' })).toBe(normalizeSubject('O=QKD dev, CN=sae-b'));
    expect(certificateSubject({ O: 'QKD dev', CN: 'sae-b' })).toBe(normalizeSubject('CN=sae-b,O=QKD dev'));
  });

  it('when the certificate CN is "sae-b/O=QKD dev", then it does not pass for CN=sae-b,O=QKD dev', () => {
    expect(certificateSubject({ CN: 'sae-b/O=QKD dev' })).not.toBe(normalizeSubject('CN=sae-b,O=QKD dev'));
    expect(certificateSubject({ CN: 'sae-b/O=QKD dev' })).toBe(normalizeSubject('CN=sae-b/O=QKD dev'));
  });

  it('when a subject attribute has several values, then each is one line and matches the "+" form in any order', () => {
    expect(certificateSubject({ OU: ['x', 'y'], CN: 'a' })).toBe(normalizeSubject('OU=y+OU=x, CN=a'));
    expect(certificateSubject({ OU: ['x', 'y'], CN: 'a' })).not.toBe(normalizeSubject('OU=x, CN=a'));
  });

  it('when a certificate value contains a comma, then only the escaped configured form matches', () => {
    expect(certificateSubject({ CN: 'x', O: 'QKD, dev' })).toBe(normalizeSubject('CN=x, O=QKD\\, dev'));
    expect(certificateSubject({ CN: 'x', O: 'QKD, dev' })).not.toBe(normalizeSubject('CN=x, O=QKD, dev'));
  });

  it('when the subject is missing, then it is the empty string', () => {
    expect(certificateSubject(undefined)).toBe('');
    expect(certificateSubject({})).toBe('');
  });

  it('when a subset of the attributes is configured, then it does not match the whole subject', () => {
    expect(certificateSubject({ CN: 'sae-b', O: 'QKD dev' })).not.toBe(normalizeSubject('CN=sae-b'));
  });

  // Node parses such a CN verbatim ({CN: 'sae-b\nO=QKD dev'}); both forms escape line breaks in values,
  // so a CA-signed certificate with it is not the SAE configured as "CN=sae-b, O=QKD dev".
  it('when the certificate CN contains a line break ("sae-b\\nO=QKD dev"), then it does not pass for CN=sae-b,O=QKD dev', () => {
    expect(certificateSubject({ CN: 'sae-b\nO=QKD dev' })).not.toBe(normalizeSubject('CN=sae-b, O=QKD dev'));
  });
});

describe('createSaeIdentifier over TLS', () => {
  let certs: CertSet;
  beforeAll(() => {
    certs = makeCerts();
  });

  async function serveHttps(options: SaeIdentityOptions): Promise<number> {
    const server = createHttpsServer(
      { cert: certs.pem('alice', 'crt'), key: certs.pem('alice', 'key'), ca: certs.pem('ca', 'crt'), requestCert: true, rejectUnauthorized: false },
      saeApp(createSaeIdentifier(options)),
    );
    return listen(server);
  }
  const client = (name: string) => ({ ca: certs.pem('ca', 'crt'), cert: certs.pem(name, 'crt'), key: certs.pem(name, 'key') });
  const saeOf = async (port: number, tls: Parameters<typeof httpsCall>[3], headers: Record<string, string> = {}): Promise<unknown> => {
    const res = await httpsCall(port, 'GET', '/sae', tls, undefined, headers);
    expect(res.status).toBe(200);
    return (JSON.parse(res.body) as { sae: unknown }).sae;
  };
  const fingerprint = (name: string) => new X509Certificate(certs.pem(name, 'crt')).fingerprint256;

  it('when sae-a presents its certificate and cert_name is "sae-a", then it is identified; sae-b is not', async () => {
    const port = await serveHttps({ identities: [{ sae_id: 'SAE_A', cert_name: 'sae-a' }], allowHeaderIdentity: false });
    expect(await saeOf(port, client('sae-a'))).toBe('SAE_A');
    expect(await saeOf(port, client('sae-b'))).toBeNull();
  });

  it('when two SAEs are configured by cert_name, then each certificate maps to its own SAE', async () => {
    const port = await serveHttps({
      identities: [
        { sae_id: 'SAE_A', cert_name: 'sae-a' },
        { sae_id: 'SAE_B', cert_name: 'sae-b' },
      ],
      allowHeaderIdentity: false,
    });
    expect(await saeOf(port, client('sae-a'))).toBe('SAE_A');
    expect(await saeOf(port, client('sae-b'))).toBe('SAE_B');
  });

  it('when the identity is configured by cert_subject (any order and spacing), then sae-a is identified', async () => {
    for (const subject of ['CN=sae-a, O=QKD dev', 'O=QKD dev,CN=sae-a', ' o = QKD dev + cn = sae-a ']) {
      const port = await serveHttps({ identities: [{ sae_id: 'SAE_A', cert_subject: subject }], allowHeaderIdentity: false });
      expect(await saeOf(port, client('sae-a')), subject).toBe('SAE_A');
      expect(await saeOf(port, client('sae-b')), subject).toBeNull();
    }
  });

  it('when cert_subject names only part of the subject or uses "/" as a separator, then sae-a is not identified', async () => {
    const port = await serveHttps({
      identities: [
        { sae_id: 'PART', cert_subject: 'CN=sae-a' },
        { sae_id: 'SLASH', cert_subject: '/O=QKD dev/CN=sae-a' },
      ],
      allowHeaderIdentity: false,
    });
    expect(await saeOf(port, client('sae-a'))).toBeNull();
  });

  it('when the identity is configured by the SHA-256 fingerprint, then sae-a is identified (colon or bare hex, any case)', async () => {
    const fp = fingerprint('sae-a');
    expect(fp).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    for (const configured of [fp, fp.replace(/:/g, '').toLowerCase()]) {
      const port = await serveHttps({ identities: [{ sae_id: 'SAE_A', cert_sha256: configured }], allowHeaderIdentity: false });
      expect(await saeOf(port, client('sae-a')), configured).toBe('SAE_A');
      expect(await saeOf(port, client('sae-b')), configured).toBeNull();
    }
  });

  it('when the certificate is not verified by the CA (other), then it is not identified by name, subject or fingerprint', async () => {
    const port = await serveHttps({
      identities: [
        { sae_id: 'BY_NAME', cert_name: 'other' },
        { sae_id: 'BY_SUBJECT', cert_subject: 'CN=other, O=Elsewhere' },
        { sae_id: 'BY_FP', cert_sha256: fingerprint('other') },
      ],
      allowHeaderIdentity: true,
    });
    expect(await saeOf(port, client('other'))).toBeNull();
    expect(await saeOf(port, client('other'), { [SAE_ID_HEADER]: 'BY_NAME' })).toBeNull();
  });

  it('when the X-SAE-ID header is sent over TLS, then it is ignored even with allowHeaderIdentity', async () => {
    const port = await serveHttps({ identities: [{ sae_id: 'SAE_A', cert_name: 'sae-a' }], allowHeaderIdentity: true });
    expect(await saeOf(port, { ca: certs.pem('ca', 'crt') }, { 'X-SAE-ID': 'SAE_B' })).toBeNull();
    expect(await saeOf(port, client('sae-a'), { 'X-SAE-ID': 'SAE_B' })).toBe('SAE_A');
    expect(await saeOf(port, client('sae-b'), { 'X-SAE-ID': 'SAE_A' })).toBeNull();
  });

  it('when no client certificate is presented, then there is no identity', async () => {
    const port = await serveHttps({ identities: [{ sae_id: 'SAE_A', cert_name: 'sae-a' }], allowHeaderIdentity: false });
    expect(await saeOf(port, { ca: certs.pem('ca', 'crt') })).toBeNull();
  });

  it('when cert_name matches a DNS subject alternative name, then the certificate is identified', async () => {
    // alice.crt carries DNS:localhost; sae-a.crt has no SAN.
    const port = await serveHttps({ identities: [{ sae_id: 'LOCALHOST', cert_name: 'localhost' }], allowHeaderIdentity: false });
    expect(await saeOf(port, client('alice'))).toBe('LOCALHOST');
    expect(await saeOf(port, client('sae-a'))).toBeNull();
  });

  it('when a certificate matches entries by fingerprint and by name, then the fingerprint entry wins', async () => {
    const port = await serveHttps({
      identities: [
        { sae_id: 'BY_NAME', cert_name: 'sae-a' },
        { sae_id: 'BY_FP', cert_sha256: fingerprint('sae-a') },
      ],
      allowHeaderIdentity: false,
    });
    expect(await saeOf(port, client('sae-a'))).toBe('BY_FP');
  });
});

describe('createSaeIdentifier over plain HTTP', () => {
  async function serveHttp(options: SaeIdentityOptions): Promise<string> {
    const port = await listen(createHttpServer(saeApp(createSaeIdentifier(options))));
    return `http://127.0.0.1:${port}/sae`;
  }
  const saeOf = async (url: string, headers: Record<string, string> = {}): Promise<unknown> => {
    const res = await fetch(url, { headers });
    expect(res.status).toBe(200);
    return ((await res.json()) as { sae: unknown }).sae;
  };

  it('when allowHeaderIdentity is off, then the X-SAE-ID header is not honoured', async () => {
    const url = await serveHttp({ identities: [{ sae_id: 'SAE_A', cert_name: 'sae-a' }], allowHeaderIdentity: false });
    expect(await saeOf(url, { 'X-SAE-ID': 'SAE_A' })).toBeNull();
    expect(await saeOf(url)).toBeNull();
  });

  it('when allowHeaderIdentity is on, then the X-SAE-ID header is the identity, configured or not', async () => {
    const url = await serveHttp({ identities: [], allowHeaderIdentity: true });
    expect(await saeOf(url, { 'X-SAE-ID': 'SAE_1' })).toBe('SAE_1');
    expect(await saeOf(url, { 'x-sae-id': 'a.b_c~d:e-f' })).toBe('a.b_c~d:e-f');
    expect(await saeOf(url)).toBeNull();
  });

  it('when the header value has characters outside the allowed set or is longer than 128, then it is refused', async () => {
    const url = await serveHttp({ identities: [], allowHeaderIdentity: true });
    expect(await saeOf(url, { 'X-SAE-ID': 'x'.repeat(128) })).toBe('x'.repeat(128));
    for (const value of ['x'.repeat(129), 'SAE 1', 'SAE/1', 'SAE,1', 'é']) {
      expect(await saeOf(url, { 'X-SAE-ID': value }), value).toBeNull();
    }
  });
});
