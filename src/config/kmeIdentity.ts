/**
 * The KME ID in the main listener's certificate (ETSI GS QKD 014; docs/etsi014.md "Identity", docs/tls.md).
 *
 * An SAE learns which KME it talks to from the KME's TLS certificate. This module's certificates carry
 * their KME ID as a subjectAltName URI `urn:etsi:qkd:kme:<KME_ID>` (scripts/certs.sh makes them so). At
 * start-up, `checkKmeIdCertificate` compares it with `etsi014.kme_id`:
 *
 * - the certificate names other KME IDs only: a configuration error (one line naming both IDs and the
 *   setting to fix) - an SAE checking the certificate would refuse this KME, or worse, trust the wrong ID;
 * - the certificate names no KME ID: `unmarked` (the module starts and warns: SAEs cannot confirm the ID);
 * - it names the configured ID: `match`. No ETSI 014 (kme_id unset) or no certificate: `skipped`.
 *
 * Only the leaf (the first certificate of tls.cert) is read; nothing of the key, never PEM text in errors.
 */
import { X509Certificate } from 'node:crypto';
import { TlsConfigError } from './tls.js';

/** The URI prefix of a KME ID in a certificate's subjectAltName (this module's convention; see docs/tls.md). */
export const KME_ID_URI_PREFIX = 'urn:etsi:qkd:kme:';

const FIRST_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;

/**
 * The entries of a subjectAltName string as Node prints it (`DNS:a, IP Address:1.2.3.4, URI:urn:x`), where a
 * value holding a comma, quote or other special character is a JSON string (`URI:"urn:a,b"`).
 */
export function subjectAltNameEntries(san: string | undefined): { type: string; value: string }[] {
  const out: { type: string; value: string }[] = [];
  if (!san) return out;
  let i = 0;
  while (i < san.length) {
    const colon = san.indexOf(':', i);
    if (colon < 0) break;
    const type = san.slice(i, colon).trim();
    let j = colon + 1;
    let value: string;
    if (san[j] === '"') {
      // A JSON string: find its closing quote (skipping escaped characters).
      let k = j + 1;
      while (k < san.length && san[k] !== '"') k += san[k] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(san.slice(j, k + 1)) as string;
      } catch {
        value = san.slice(j + 1, k);
      }
      j = k + 1;
    } else {
      const end = san.indexOf(', ', j);
      j = end < 0 ? san.length : end;
      value = san.slice(colon + 1, j);
    }
    out.push({ type, value });
    const next = san.indexOf(', ', j);
    if (next < 0) break;
    i = next + 2;
  }
  return out;
}

/** The KME IDs a subjectAltName string carries as `URI:urn:etsi:qkd:kme:<KME_ID>` (prefix case-insensitive). */
export function kmeIdsInSubjectAltName(san: string | undefined): string[] {
  const ids: string[] = [];
  for (const { type, value } of subjectAltNameEntries(san)) {
    if (type !== 'URI') continue;
    if (value.slice(0, KME_ID_URI_PREFIX.length).toLowerCase() !== KME_ID_URI_PREFIX) continue;
    const id = value.slice(KME_ID_URI_PREFIX.length);
    if (id !== '' && !ids.includes(id)) ids.push(id);
  }
  return ids;
}

/** The KME IDs the leaf certificate of `pem` (a certificate or a chain, leaf first) carries. */
export function kmeIdsInCertificate(pem: Buffer | string, field = 'tls.cert'): string[] {
  const text = typeof pem === 'string' ? pem : pem.toString('latin1');
  const leaf = FIRST_CERTIFICATE.exec(text)?.[0];
  if (!leaf) throw new TlsConfigError(`config: ${field}: holds no PEM CERTIFICATE block`);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(leaf);
  } catch {
    throw new TlsConfigError(`config: ${field}: the first certificate cannot be parsed (expected a PEM X.509 certificate)`);
  }
  return kmeIdsInSubjectAltName(cert.subjectAltName);
}

export type KmeIdCertificateCheck =
  | { result: 'skipped' }
  | { result: 'match'; kmeId: string }
  | { result: 'unmarked'; kmeId: string };

/**
 * Compares etsi014.kme_id with the KME IDs of the main listener's certificate (tls.cert); throws a
 * TlsConfigError (one line naming both IDs and etsi014.kme_id / tls.cert) when the certificate contradicts it.
 */
export function checkKmeIdCertificate(kmeId: string | undefined, cert: Buffer | undefined): KmeIdCertificateCheck {
  if (kmeId === undefined || cert === undefined) return { result: 'skipped' };
  const ids = kmeIdsInCertificate(cert);
  if (ids.length === 0) return { result: 'unmarked', kmeId };
  if (ids.includes(kmeId)) return { result: 'match', kmeId };
  const named = ids.length === 1 ? `KME ID ${ids[0]}` : `KME IDs ${ids.join(', ')}`;
  throw new TlsConfigError(
    `config: etsi014.kme_id is ${kmeId}, but the main listener's certificate (tls.cert) carries ${named} `
      + `(subjectAltName URI ${KME_ID_URI_PREFIX}${ids[0]}), so SAEs would see another KME: set etsi014.kme_id to ${ids[0]}, `
      + `or set tls.cert to a certificate issued for ${kmeId}`,
  );
}

/** The start-up warning for a certificate without a KME ID (no key material, no PEM text). */
export function unmarkedCertificateWarning(kmeId: string): string {
  return (
    `etsi014.kme_id is ${kmeId}, but the main listener's certificate (tls.cert) carries no KME ID `
    + `(no subjectAltName URI ${KME_ID_URI_PREFIX}<KME_ID>): SAEs cannot confirm the KME ID from the certificate `
    + '(scripts/certs.sh makes certificates that carry it; docs/tls.md)'
  );
}
