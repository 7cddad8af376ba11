/**
 * Who is calling: the SAE ID of an ETSI GS QKD 014 request (docs/etsi014.md, "Identity").
 *
 * - Over TLS: the client certificate the listener verified against tls.ca (socket.authorized), mapped
 *   through etsi014.identities by SHA-256 fingerprint or by subject (attribute order and spaces around
 *   `,` and `=` do not matter). A certificate that is unverified or maps to no SAE: no identity (401).
 * - Over plain HTTP, and only with etsi014.allow_header_identity: the `X-SAE-ID` header. Development
 *   only: anyone who can reach the port can claim any SAE. Over TLS the header is ignored.
 */
import { certificateNameList } from '../config/tls.js';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Request } from 'express';

export interface SaeIdentityEntry {
  sae_id: string;
  cert_subject?: string;
  cert_sha256?: string;
  cert_name?: string;
}

export interface SaeIdentityOptions {
  identities: readonly SaeIdentityEntry[];
  allowHeaderIdentity: boolean;
}

export type SaeIdentifier = (req: Request) => string | undefined;

export const SAE_ID_HEADER = 'x-sae-id';
const HEADER_VALUE = /^[A-Za-z0-9._~:-]{1,128}$/;

const normFingerprint = (fp: string): string => fp.replace(/:/g, '').toUpperCase();

/**
 * A configured subject ("CN=sae-a, O=QKD dev") as sorted `KEY=value` lines. Only `,` and `+` separate
 * attributes (RFC 4514; a backslash escapes them); `/` and line breaks are characters of a value, so a
 * certificate whose CN is "sae-b/O=QKD dev" can never pass for CN=sae-b.
 */
export function normalizeSubject(subject: string): string {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < subject.length; i++) {
    const c = subject[i]!;
    if (c === '\\' && i + 1 < subject.length) {
      current += subject[++i];
    } else if (c === ',' || c === '+') {
      parts.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  parts.push(current);
  return parts
    .map((p) => p.trim())
    .filter((p) => p.length > 0)
    .map((p) => {
      const eq = p.indexOf('=');
      return eq < 0 ? p : `${p.slice(0, eq).trim().toUpperCase()}=${p.slice(eq + 1).trim()}`;
    })
    .map(escapeLine)
    .sort()
    .join('\n');
}

/** Backslashes and line breaks inside an attribute are escaped, so a value can never fake the separator. */
function escapeLine(line: string): string {
  return line.replace(/\\/g, '\\\\').replace(/\r/g, '\\r').replace(/\n/g, '\\n');
}

/** The subject of a parsed certificate (Node's field object) in the same form: one line per attribute value. */
export function certificateSubject(subject: Record<string, string | string[]> | undefined): string {
  if (!subject) return '';
  const lines: string[] = [];
  for (const [key, value] of Object.entries(subject)) {
    for (const v of Array.isArray(value) ? value : [value]) lines.push(escapeLine(`${key.toUpperCase()}=${v}`));
  }
  return lines.sort().join('\n');
}

const isTls = (socket: Socket): socket is TLSSocket => (socket as TLSSocket).encrypted === true;

export function createSaeIdentifier(options: SaeIdentityOptions): SaeIdentifier {
  const byFingerprint = new Map<string, string>();
  const bySubject = new Map<string, string>();
  const byName = new Map<string, string>();
  for (const e of options.identities) {
    if (e.cert_sha256) byFingerprint.set(normFingerprint(e.cert_sha256), e.sae_id);
    if (e.cert_subject) bySubject.set(normalizeSubject(e.cert_subject), e.sae_id);
    if (e.cert_name) byName.set(e.cert_name, e.sae_id);
  }
  /** One lookup per TLS connection (keep-alive requests reuse it). */
  const cache = new WeakMap<TLSSocket, string | null>();

  const fromCertificate = (socket: TLSSocket): string | undefined => {
    if (!socket.authorized) return undefined; // no certificate, or one tls.ca does not vouch for
    const cached = cache.get(socket);
    if (cached !== undefined) return cached ?? undefined;
    let found: string | undefined;
    const peer = socket.getPeerCertificate();
    if (peer && peer.raw) {
      // Parsed fields only: the fingerprint, the subject's attributes, the CN and DNS names.
      found = byFingerprint.get(normFingerprint(peer.fingerprint256 ?? ''));
      if (found === undefined && bySubject.size > 0) found = bySubject.get(certificateSubject(peer.subject as unknown as Record<string, string | string[]>));
      if (found === undefined && byName.size > 0) {
        for (const name of certificateNameList(peer)) {
          found = byName.get(name);
          if (found !== undefined) break;
        }
      }
    }
    cache.set(socket, found ?? null);
    return found;
  };

  return (req: Request): string | undefined => {
    const socket = req.socket;
    if (isTls(socket)) return fromCertificate(socket);
    if (!options.allowHeaderIdentity) return undefined;
    const header = req.headers[SAE_ID_HEADER];
    return typeof header === 'string' && HEADER_VALUE.test(header) ? header : undefined;
  };
}
