/**
 * Who is calling the application API (seed API, ETSI 004) and the operator routes
 * (docs/security.md, "Applications").
 *
 * - With no application credentials configured, the application API serves this host only: a caller
 *   from another address is refused (403), and every local caller is the one identity `local` (the
 *   legacy key server sends no credentials and keeps working on the module's host).
 * - With `applications` configured (and/or the legacy `module.api_token`, which is the application
 *   `default`), every caller must present one: `Authorization: Bearer <token>` or a verified TLS client
 *   certificate whose CN or DNS subject alternative name is an application's `cert_name`. The caller's
 *   application ID is what streams are bound to.
 * - Operator routes (/streams, stats, /dashboard) need `module.operator_token` when it is set, and are
 *   for loopback callers only otherwise. The token comes as `Authorization: Bearer <token>` or, for a
 *   browser (which cannot send a Bearer header when it navigates), as the password of HTTP Basic with
 *   any user name; never in a query string.
 *
 * Tokens are compared in constant time (hashed to 32 bytes first) and never logged or echoed.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { certificateNameList } from '../config/tls.js';
import { LOCAL_OWNER } from '../core/types.js';

export interface ApplicationEntry {
  id: string;
  token?: string | undefined;
  cert_name?: string | undefined;
}

export interface AppIdentityOptions {
  applications: readonly ApplicationEntry[];
  operatorToken?: string | undefined;
}

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** True for a connection from this host (127.0.0.0/8, ::1, IPv4-mapped loopback). */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  if (a === '::1') return true;
  return isIP(a) === 4 && a.startsWith('127.');
}

function bearer(req: Request): string | undefined {
  const header = req.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer +(\S+) *$/i.exec(header) : null;
  return match ? match[1] : undefined;
}

/** The password of `Authorization: Basic base64(user:password)` (the user name is ignored), or undefined. */
function basicPassword(req: Request): string | undefined {
  const header = req.headers.authorization;
  const match = typeof header === 'string' ? /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header) : null;
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon >= 0 ? decoded.slice(colon + 1) : undefined;
}

/** The realm a browser shows when it asks for the operator token (any user name, the token as password). */
export const OPERATOR_BASIC_REALM = 'qkd-module operator';

export interface OperatorGateOptions {
  /**
   * Answer 401 with a Basic challenge (pages a browser opens: it then asks for credentials) instead of
   * a Bearer one (API clients). Both credential forms are accepted either way.
   */
  browser?: boolean;
}

/** The calling identity, set by applicationGate. */
export function callerOf(res: Response): string {
  const caller = (res.locals as { caller?: unknown }).caller;
  if (typeof caller !== 'string') throw new Error('applicationGate did not run for this route');
  return caller;
}

export function applicationGate({ applications }: AppIdentityOptions): RequestHandler {
  const byToken = applications.filter((a) => a.token).map((a) => ({ id: a.id, hash: digest(a.token!) }));
  const byCert = new Map(applications.filter((a) => a.cert_name).map((a) => [a.cert_name!, a.id]));
  const identified = applications.length > 0;
  return (req: Request, res: Response, next: NextFunction) => {
    if (!identified) {
      if (!isLoopbackAddress(req.socket.remoteAddress)) {
        res.status(403).json({ code: 'UNAUTHORIZED', message: 'the application API serves this host only: configure applications (tokens or certificates) to serve others' });
        return;
      }
      res.locals.caller = LOCAL_OWNER;
      next();
      return;
    }
    const token = bearer(req);
    if (token !== undefined) {
      const h = digest(token);
      let found: string | undefined;
      for (const a of byToken) if (timingSafeEqual(a.hash, h)) found = a.id; // no early exit: constant time over the list
      if (found !== undefined) {
        res.locals.caller = found;
        next();
        return;
      }
      res.set('WWW-Authenticate', 'Bearer error="invalid_token"');
      res.status(401).json({ code: 'UNAUTHORIZED', message: 'the bearer token is not valid' });
      return;
    }
    const socket = req.socket as Partial<TLSSocket>;
    if (socket.encrypted && socket.authorized && typeof socket.getPeerCertificate === 'function') {
      for (const name of certificateNameList(socket.getPeerCertificate())) {
        const id = byCert.get(name);
        if (id !== undefined) {
          res.locals.caller = id;
          next();
          return;
        }
      }
    }
    res.set('WWW-Authenticate', 'Bearer');
    res.status(401).json({ code: 'UNAUTHORIZED', message: 'an application credential is required: Authorization: Bearer <token>, or a client certificate of a configured application' });
  };
}

export function operatorGate({ operatorToken }: AppIdentityOptions, { browser = false }: OperatorGateOptions = {}): RequestHandler {
  const expected = operatorToken ? digest(operatorToken) : undefined;
  return (req: Request, res: Response, next: NextFunction) => {
    if (expected === undefined) {
      if (isLoopbackAddress(req.socket.remoteAddress)) {
        next();
        return;
      }
      res.status(403).json({ code: 'UNAUTHORIZED', message: 'operator routes serve this host only unless module.operator_token is set' });
      return;
    }
    const token = bearer(req) ?? basicPassword(req);
    if (token !== undefined && timingSafeEqual(digest(token), expected)) {
      next();
      return;
    }
    res.set('WWW-Authenticate', browser ? `Basic realm="${OPERATOR_BASIC_REALM}"` : 'Bearer');
    res.status(401).json({ code: 'UNAUTHORIZED', message: 'operator routes need Authorization: Bearer <module.operator_token>, or HTTP Basic with module.operator_token as the password' });
  };
}
