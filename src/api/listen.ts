/**
 * One listener: HTTP, or HTTPS with the section's certificate and client-certificate policy
 * (docs/tls.md). The composition root starts one for module.port and, when module.peer_port is
 * set, one for the peer routes.
 */
import { createServer as createHttpServer, maxHeaderSize, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { httpsServerOptions, servesHttps, type TlsMaterial } from '../config/tls.js';

export interface Listener {
  server: Server;
  port: number;
  https: boolean;
  close(): Promise<void>;
}

/**
 * How long a connection refused by Node's HTTP parser (a header section over the limit, a malformed
 * request line, bad chunked framing, a request that took too long) keeps reading and discarding what
 * the client still sends after the answer, before it is closed.
 */
export const CLIENT_ERROR_LINGER_MS = 2000;

const HANDLED = Symbol('qkdm.clientErrorHandled');

/** Status, code and message for an error of Node's HTTP parser: what is wrong, never the input. */
export function clientErrorAnswer(code: string | undefined, maxHeaderBytes: number): { status: number; reason: string; code: string; message: string } {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, reason: 'Request Header Fields Too Large', code: 'HEADERS_TOO_LARGE', message: `the request line and headers are larger than ${maxHeaderBytes} bytes` };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return { status: 413, reason: 'Payload Too Large', code: 'BAD_REQUEST', message: 'chunk extensions too large' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'ERR_HTTP_HEADERS_TIMEOUT':
      return { status: 408, reason: 'Request Timeout', code: 'REQUEST_TIMEOUT', message: 'the request was not received in time' };
    case 'HPE_INVALID_METHOD':
      return { status: 400, reason: 'Bad Request', code: 'BAD_REQUEST', message: 'unknown HTTP method' };
    case 'HPE_INVALID_URL':
      return { status: 400, reason: 'Bad Request', code: 'BAD_REQUEST', message: 'malformed request target' };
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_LF_EXPECTED':
    case 'HPE_CR_EXPECTED':
      return { status: 400, reason: 'Bad Request', code: 'BAD_REQUEST', message: 'malformed header section' };
    case 'HPE_INVALID_CHUNK_SIZE':
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_TRANSFER_ENCODING':
      return { status: 400, reason: 'Bad Request', code: 'BAD_REQUEST', message: 'malformed body framing (Content-Length or chunked encoding)' };
    default:
      return { status: 400, reason: 'Bad Request', code: 'BAD_REQUEST', message: `malformed HTTP request${code && /^HPE_[A-Z_]{1,40}$/.test(code) ? ` (${code})` : ''}` };
  }
}

/**
 * Answers a request Node's HTTP parser refused, instead of Node's default (a bare status line and an
 * immediate close, which resets the connection when the client is still sending, so the client often
 * sees "connection reset" and never the answer): a JSON error naming the problem, `Connection: close`,
 * then a graceful close that keeps reading (and discarding) for CLIENT_ERROR_LINGER_MS.
 */
export function answerClientError(err: Error & { code?: string }, socket: Duplex, maxHeaderBytes: number): void {
  const s = socket as Socket & { [HANDLED]?: boolean; _httpMessage?: { headersSent?: boolean } | null };
  if (s[HANDLED]) return; // the parser reports every later chunk too
  s[HANDLED] = true;
  if (err.code === 'ECONNRESET' || !s.writable) {
    s.destroy(); // the client is gone
    return;
  }
  s.on('error', () => undefined);
  if (s._httpMessage?.headersSent) {
    // This request was already answered (e.g. the peer gate refused it before its malformed body
    // came): a second status line would not belong to any request. Close after that answer, gracefully.
    s.end();
  } else {
    const a = clientErrorAnswer(err.code, maxHeaderBytes);
    const body = JSON.stringify({ code: a.code, message: a.message });
    s.end(`HTTP/1.1 ${a.status} ${a.reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  s.resume();
  setTimeout(() => s.destroy(), CLIENT_ERROR_LINGER_MS).unref();
}

export async function listenOn(handler: RequestListener, port: number, host: string, tls: TlsMaterial): Promise<Listener> {
  const https = servesHttps(tls);
  const server: Server = https ? createHttpsServer(httpsServerOptions(tls), handler) : createHttpServer(handler);
  server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => answerClientError(err, socket, maxHeaderSize));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.keepAliveTimeout = 65_000;
  let closing: Promise<void> | undefined;
  return {
    server,
    port: (server.address() as AddressInfo).port,
    https,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
