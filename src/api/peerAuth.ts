/**
 * The gate in front of the peer routes (/sync, /start, /peer/*): docs/security.md, "Peer channel".
 *
 * - With link credentials (the default): POST /peer/hello opens a session; every other peer message
 *   must be sealed in a session (src/exchange/auth/peerSessions.ts). The gate opens the request, hands
 *   the routes its JSON as if it had come in clear, and seals the routes' answer. Anything that does
 *   not authenticate is answered 401 before any route (or the BB84 simulator) sees it.
 * - With peer_tls.peer_name: the client certificate must name the peer module (exact CN or DNS SAN
 *   from the parsed certificate), so another certificate of the same CA (an SAE's) is refused.
 * - Insecure mode (peer_auth.insecure): no gate. The module warns at every start.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import type { TLSSocket } from 'node:tls';
import { certificateNameList } from '../config/tls.js';
import { HandshakeError, HELLO_PATH } from '../exchange/auth/handshake.js';
import { checkJsonDepth } from './wire.js';
import { REQUEST_HEADER, SEQ_HEADER, SESSION_HEADER, TAG_HEADER, SEALED_CONTENT_TYPE, type PeerAuthenticator } from '../exchange/auth/peerSessions.js';

/** Paths the gate covers: every peer route. */
export const PEER_PATHS = ['/sync', '/start', '/peer'];

export interface PeerGateOptions {
  auth?: PeerAuthenticator;
  /** peer_tls.peer_name: the name the peer's client certificate must carry (CN or DNS SAN). */
  peerCertName?: string;
  log: Logger;
}

/** Logs at most one warning per kind every 10 s, with how many were suppressed (a flood must not flood the log). */
class ThrottledWarning {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  constructor(private readonly log: Logger) {}
  warn(kind: string, fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    const entry = this.last.get(kind);
    if (entry && now - entry.at < 10_000) {
      entry.suppressed++;
      return;
    }
    this.last.set(kind, { at: now, suppressed: 0 });
    this.log.warn({ ...fields, kind, suppressedSinceLast: entry?.suppressed ?? 0 }, message);
  }
}

const header = (req: Request, name: string): string | undefined => {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
};

/** The names (CN, DNS SANs) of the verified TLS client certificate of this request; none without one. */
export function certificateNames(req: Request): string[] {
  const socket = req.socket as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate !== 'function' || !socket.authorized) return [];
  return certificateNameList(socket.getPeerCertificate());
}

/** Largest hello body read (a hello is about 25 KB: a 1184-byte ML-KEM key and a 17 KB SLH-DSA signature, in base64). */
export const MAX_HELLO_BYTES = 128 * 1024;

/**
 * The gate, and `beforeBody`: the checks that need no body, run before the body is read. A call that
 * cannot authenticate whatever its body (no session headers, an unknown session, a plain body, an
 * oversized hello) is refused there, and its body is discarded unread instead of being buffered.
 */
export type PeerGate = RequestHandler & { beforeBody: RequestHandler };

const hasBody = (req: Request): boolean => req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');

export function peerGate({ auth, peerCertName, log }: PeerGateOptions): PeerGate {
  const warnings = new ThrottledWarning(log);
  const refuse = (res: Response, status: number, code: string, message: string): void => {
    res.status(status).json({ code, message });
  };
  /** Refuses (403) a caller whose certificate does not name the peer module, when peer_tls.peer_name is set. */
  const notThePeer = (req: Request, res: Response, path: string): boolean => {
    if (peerCertName === undefined || certificateNames(req).includes(peerCertName)) return false;
    warnings.warn('peer-certificate', { path }, 'peer route called with a certificate that does not name the peer module: refused');
    refuse(res, 403, 'PEER_CERTIFICATE', `the peer routes need the peer module's certificate (peer_tls.peer_name)`);
    return true;
  };
  const beforeBody = (req: Request, res: Response, next: NextFunction): void => {
    const path = req.originalUrl.split('?')[0]!;
    if (notThePeer(req, res, path)) return;
    if (!auth) {
      next();
      return;
    }
    if (path === HELLO_PATH && req.method === 'POST') {
      const length = Number(req.headers['content-length']);
      if (Number.isFinite(length) && length > MAX_HELLO_BYTES) {
        warnings.warn('handshake', { reason: 'oversized hello' }, 'peer handshake refused');
        refuse(res, 413, 'PEER_HANDSHAKE_REFUSED', `hello larger than ${MAX_HELLO_BYTES} bytes`);
        return;
      }
      next();
      return;
    }
    const sealedBody = (req.headers['content-type'] ?? '').toLowerCase().startsWith(SEALED_CONTENT_TYPE);
    const precheck = hasBody(req) && !sealedBody
      ? ({ ok: false, code: 'PEER_AUTH_REQUIRED', message: 'peer messages must be sealed in an authenticated session (POST /peer/hello first)' } as const)
      : auth.checkSession(header(req, SESSION_HEADER), header(req, SEQ_HEADER), header(req, TAG_HEADER));
    if (!precheck.ok) {
      warnings.warn(precheck.code, { path }, 'unauthenticated peer message refused');
      refuse(res, 401, precheck.code, precheck.message);
      return;
    }
    next();
  };
  const gate = (req: Request, res: Response, next: NextFunction): void => {
    // Mounted on several paths: req.path is relative to the mount point, originalUrl is what was sent.
    const path = req.originalUrl.split('?')[0]!;
    if (notThePeer(req, res, path)) return;
    if (!auth) {
      next();
      return;
    }
    if (path === HELLO_PATH && req.method === 'POST') {
      let body: unknown;
      try {
        const text = typeof req.body === 'string' ? req.body : '';
        checkJsonDepth(text, 4); // a hello is one flat object
        body = JSON.parse(text);
      } catch {
        refuse(res, 400, 'BAD_REQUEST', 'hello must be a JSON object');
        return;
      }
      auth.acceptHello(body).then(
        (reply) => {
          log.info({ peer: auth.credentials.peerName }, 'peer session opened');
          res.json(reply);
        },
        (err: unknown) => {
          if (!(err instanceof HandshakeError)) {
            next(err);
            return;
          }
          warnings.warn('handshake', { reason: err.message }, 'peer handshake refused');
          refuse(res, err.httpStatus, 'PEER_HANDSHAKE_REFUSED', err.message);
        },
      );
      return;
    }
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (!Buffer.isBuffer(req.body) && typeof req.body === 'string' && req.body.length > 0) {
      warnings.warn('unsealed', { path }, 'unauthenticated peer message refused');
      refuse(res, 401, 'PEER_AUTH_REQUIRED', 'peer messages must be sealed in an authenticated session (POST /peer/hello first)');
      return;
    }
    const opened = auth.openRequest(header(req, SESSION_HEADER), header(req, SEQ_HEADER), header(req, TAG_HEADER), req.method, req.originalUrl, body, header(req, REQUEST_HEADER));
    if (!opened.ok) {
      warnings.warn(opened.code, { path }, opened.code === 'PEER_DUPLICATE' ? 'a peer call received twice was refused' : 'unauthenticated peer message refused');
      refuse(res, opened.code === 'PEER_DUPLICATE' ? 409 : 401, opened.code, opened.message);
      return;
    }
    req.body = opened.plaintext.toString('utf8');
    opened.plaintext.fill(0);
    req.headers['content-type'] = 'application/json';
    res.json = (value: unknown): Response => {
      const plain = Buffer.from(JSON.stringify(value) ?? 'null', 'utf8');
      const sealed = opened.sealAnswer(res.statusCode, plain);
      plain.fill(0);
      res.setHeader(TAG_HEADER, sealed.tag.toString('base64url'));
      res.setHeader('content-type', SEALED_CONTENT_TYPE);
      return res.send(sealed.ciphertext);
    };
    next();
  };
  return Object.assign(gate, { beforeBody });
}
