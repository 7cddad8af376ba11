/**
 * Optional bearer-token authentication of the application routes (module.api_token; docs/tls.md).
 * The token is compared in constant time (both sides hashed to 32 bytes first, so neither the
 * content nor the length leaks through timing) and never logged or echoed.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** Middleware answering 401 unless `Authorization: Bearer <token>` matches; a no-op when token is unset. */
export function bearerToken(token: string | undefined): RequestHandler {
  if (token === undefined || token === '') return (_req, _res, next) => next();
  const expected = digest(token);
  return (req: Request, res: Response, next: NextFunction) => {
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer +(\S+) *$/i.exec(header) : null;
    if (match && timingSafeEqual(digest(match[1]!), expected)) {
      next();
      return;
    }
    res.set('WWW-Authenticate', match ? 'Bearer error="invalid_token"' : 'Bearer');
    res.status(401).json({ code: 'UNAUTHORIZED', message: match ? 'the bearer token is not valid' : 'an Authorization: Bearer <module.api_token> header is required' });
  };
}
