/**
 * The KME ID in the main listener's certificate (src/config/kmeIdentity.ts; issue 13 point 4).
 *
 * ETSI GS QKD 014 has the SAE confirm the KME ID from the KME's certificate (the issue cites its section 5.1;
 * this project could not check the clause text, so the clause number is not asserted here). The module's
 * certificates carry it as a subjectAltName URI urn:etsi:qkd:kme:<KME_ID>; etsi014.kme_id must agree.
 */
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { TlsConfigError } from '../../src/config/tls.js';
import {
  KME_ID_URI_PREFIX,
  checkKmeIdCertificate,
  kmeIdsInCertificate,
  kmeIdsInSubjectAltName,
  subjectAltNameEntries,
  unmarkedCertificateWarning,
} from '../../src/config/kmeIdentity.js';
import { makeCerts, type CertSet } from '../support/tls.js';

const CLAUSE = 'ETSI GS QKD 014, "the SAE confirms the KME ID from the KME\'s certificate"';

let certs: CertSet;
let custom: CertSet;
beforeAll(() => {
  certs = makeCerts();
  custom = makeCerts({ kmeIds: { alice: 'kme:site-1.a_b~c', bob: '' } });
});

describe('subjectAltName parsing', () => {
  it('when Node prints the SAN as "TYPE:value, ...", then every entry comes back with its type', () => {
    expect(subjectAltNameEntries('IP Address:127.0.0.1, DNS:localhost, URI:urn:etsi:qkd:kme:KME-A')).toEqual([
      { type: 'IP Address', value: '127.0.0.1' },
      { type: 'DNS', value: 'localhost' },
      { type: 'URI', value: 'urn:etsi:qkd:kme:KME-A' },
    ]);
    expect(subjectAltNameEntries(undefined)).toEqual([]);
    expect(subjectAltNameEntries('')).toEqual([]);
  });

  it('when a value is printed as a JSON string (it holds a comma), then it is unquoted and not split', () => {
    expect(subjectAltNameEntries('URI:"urn:etsi:qkd:kme:A, B", DNS:x')).toEqual([
      { type: 'URI', value: 'urn:etsi:qkd:kme:A, B' },
      { type: 'DNS', value: 'x' },
    ]);
  });

  it('when URIs carry the KME prefix (any case), then their IDs are the KME IDs; other URIs, DNS names and empty IDs are not', () => {
    expect(kmeIdsInSubjectAltName('DNS:urn:etsi:qkd:kme:NOT, URI:https://kme.example, URI:URN:ETSI:QKD:KME:KME-A, URI:urn:etsi:qkd:kme:, URI:urn:etsi:qkd:kme:KME-A')).toEqual(['KME-A']);
    expect(kmeIdsInSubjectAltName('URI:urn:etsi:qkd:kme:KME-A, URI:urn:etsi:qkd:kme:KME-C')).toEqual(['KME-A', 'KME-C']);
    expect(kmeIdsInSubjectAltName('IP Address:127.0.0.1, DNS:localhost')).toEqual([]);
  });
});

describe(`${CLAUSE}: the KME ID in generated certificates`, () => {
  it('when scripts/certs.sh makes the module certificates, then alice carries KME-A and bob KME-B as a SAN URI, next to the DNS/IP names and the CN peer pinning uses', () => {
    expect(kmeIdsInCertificate(certs.pem('alice', 'crt'))).toEqual(['KME-A']);
    expect(kmeIdsInCertificate(certs.pem('bob', 'crt'))).toEqual(['KME-B']);
    const alice = new X509Certificate(certs.pem('alice', 'crt'));
    expect(alice.subjectAltName).toBe(`IP Address:127.0.0.1, DNS:localhost, URI:${KME_ID_URI_PREFIX}KME-A`);
    expect(alice.subject).toContain('CN=alice');
  });

  it('when the KME IDs are overridden (CERT_KME_ID_ALICE, CERT_KME_ID_BOB=""), then the certificate carries the given ID, or none', () => {
    expect(kmeIdsInCertificate(custom.pem('alice', 'crt'))).toEqual(['kme:site-1.a_b~c']);
    expect(kmeIdsInCertificate(custom.pem('bob', 'crt'))).toEqual([]);
  });

  it('when the certificate is an SAE certificate or from the unrelated CA, then it carries no KME ID', () => {
    expect(kmeIdsInCertificate(certs.pem('sae-a', 'crt'))).toEqual([]);
    expect(kmeIdsInCertificate(certs.pem('other', 'crt'))).toEqual([]);
  });

  it('when tls.cert is a chain (leaf first), then only the leaf is read', () => {
    const chain = Buffer.concat([certs.pem('bob', 'crt'), certs.pem('ca', 'crt')]);
    expect(kmeIdsInCertificate(chain)).toEqual(['KME-B']);
  });

  it('when tls.cert holds no certificate or a broken one, then the error names tls.cert and shows no PEM text', () => {
    const key = certs.pem('alice', 'key');
    const noCert = (() => { try { kmeIdsInCertificate(key); } catch (e) { return e as Error; } return undefined; })();
    expect(noCert).toBeInstanceOf(TlsConfigError);
    expect(noCert!.message).toBe('config: tls.cert: holds no PEM CERTIFICATE block');
    const broken = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
    expect(() => kmeIdsInCertificate(broken)).toThrow(/^config: tls\.cert: the first certificate cannot be parsed/);
    expect(() => kmeIdsInCertificate(broken)).not.toThrow(/BEGIN|AAAA/);
  });
});

describe(`${CLAUSE}: etsi014.kme_id against the main listener's certificate`, () => {
  const failure = (kmeId: string, cert: Buffer): Error => {
    try {
      checkKmeIdCertificate(kmeId, cert);
    } catch (err) {
      return err as Error;
    }
    throw new Error('expected a TlsConfigError');
  };

  it('when the certificate carries the configured KME ID, then the check passes', () => {
    expect(checkKmeIdCertificate('KME-A', certs.pem('alice', 'crt'))).toEqual({ result: 'match', kmeId: 'KME-A' });
  });

  it('when the certificate carries another KME ID, then start-up fails with one line naming both IDs and the settings to fix', () => {
    const err = failure('KME-B', certs.pem('alice', 'crt'));
    expect(err).toBeInstanceOf(TlsConfigError);
    expect(err.message.split('\n')).toHaveLength(1);
    expect(err.message).toBe(
      "config: etsi014.kme_id is KME-B, but the main listener's certificate (tls.cert) carries KME ID KME-A "
        + '(subjectAltName URI urn:etsi:qkd:kme:KME-A), so SAEs would see another KME: set etsi014.kme_id to KME-A, '
        + 'or set tls.cert to a certificate issued for KME-B',
    );
    expect(err.message).not.toMatch(/BEGIN|PRIVATE/);
  });

  it('when the KME IDs differ only in case, then they differ (IDs are compared exactly)', () => {
    expect(failure('kme-a', certs.pem('alice', 'crt')).message).toContain('etsi014.kme_id is kme-a');
  });

  it('when the certificate carries no KME ID, then the module may start, with a warning that SAEs cannot confirm it', () => {
    expect(checkKmeIdCertificate('KME-A', certs.pem('other', 'crt'))).toEqual({ result: 'unmarked', kmeId: 'KME-A' });
    const warning = unmarkedCertificateWarning('KME-A');
    expect(warning).toContain('etsi014.kme_id is KME-A');
    expect(warning).toContain('SAEs cannot confirm the KME ID from the certificate');
    expect(warning).toContain('tls.cert');
  });

  it('when ETSI 014 is off (no kme_id) or the main listener is plain HTTP (no tls.cert), then nothing is checked', () => {
    expect(checkKmeIdCertificate(undefined, certs.pem('alice', 'crt'))).toEqual({ result: 'skipped' });
    expect(checkKmeIdCertificate('KME-B', undefined)).toEqual({ result: 'skipped' });
  });
});
