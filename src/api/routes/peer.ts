/**
 * Routes the peer module calls (see docs/peer-protocol.md). JSON in, JSON out; errors are
 * `{code, message}` with the catalogue's HTTP status. GET /sync and POST /start keep the
 * original's names; POST /start also accepts the original's body, `repr(Key_stream_ID)`.
 */
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { MAX_KEY_LENGTH_BITS, MAX_TIMEOUT_MS } from '../../core/types.js';
import { QkdmError, type Result } from '../../core/errors.js';
import type { KeyStreamManager } from '../../core/KeyStreamManager.js';
import type { ExchangeService } from '../../exchange/ExchangeService.js';
import { PEER_PING_PATH } from '../../exchange/peerReachability.js';
import { confirmMessageSchema, counterMessageSchema, roundMessageSchema, streamNoticeSchema, syncRequestSchema } from '../../exchange/peerProtocol.js';
import { BadRequest, decodeBody, describeIssue } from '../wire.js';
import { keyStreamIdSchema } from '../seedSchemas.js';

export const syncQuerySchema = z.object({
  key_handle: keyStreamIdSchema,
  source: z.string().max(255).default(''),
  destination: z.string().max(255).default(''),
  length: z.coerce.number({ error: 'must be a number of bits' }).int().positive().multipleOf(8).max(MAX_KEY_LENGTH_BITS),
  timeout: z.coerce.number({ error: 'must be a number of ms' }).int().min(0).max(MAX_TIMEOUT_MS).default(0),
  sender: z.coerce.number().pipe(z.union([z.literal(0), z.literal(1)], { error: 'must be 0 or 1' })),
  sim: z.string().max(32),
  peer: z.string().min(1).max(255),
});

export const startBodySchema = z.object({ Key_stream_ID: keyStreamIdSchema, available: z.number().int().min(0).optional() });

function validate<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new BadRequest(describeIssue(parsed.error.issues[0]!));
  }
  return parsed.data;
}

function sendResult<T>(res: Response, result: Result<T>): void {
  if (result.ok) {
    res.status(200).json(result.value ?? { status: 0 });
    return;
  }
  sendError(res, result.error);
}

function sendError(res: Response, err: unknown): void {
  if (err instanceof BadRequest) {
    res.status(400).json({ code: 'BAD_REQUEST', message: err.message });
    return;
  }
  if (err instanceof QkdmError) {
    const http = err.definition.httpStatus === 200 ? 502 : err.definition.httpStatus;
    res.status(http).json({ code: err.code, message: err.message });
    return;
  }
  throw err;
}

function jsonHandler(work: (req: Request, res: Response) => Promise<void>) {
  return async (req: Request, res: Response): Promise<void> => {
    try {
      await work(req, res);
    } catch (err) {
      sendError(res, err);
    }
  };
}

function jsonBody(req: Request): unknown {
  const { ctx, value } = decodeBody(req);
  if (ctx.format !== 'json') throw new BadRequest('peer messages must be JSON (Content-Type: application/json)');
  return value;
}

export function peerRouter(manager: KeyStreamManager, exchange: ExchangeService): Router {
  const router = Router();

  router.get(
    '/sync',
    jsonHandler(async (req, res) => {
      const q = validate(syncQuerySchema, req.query);
      const request = validate(syncRequestSchema, {
        keyStreamId: q.key_handle,
        source: q.source,
        destination: q.destination,
        keyLengthBits: q.length,
        timeoutMs: q.timeout,
        sender: q.sender,
        sim: q.sim,
        peerAddress: q.peer,
      });
      sendResult(res, await manager.onPeerSync(request));
    }),
  );

  router.post(
    '/start',
    jsonHandler(async (req, res) => {
      const { ctx, value } = decodeBody(req);
      // Original form: the body is repr(Key_stream_ID), a bare string.
      const body = ctx.format === 'python' && typeof value === 'string' ? { Key_stream_ID: value } : value;
      const notice = validate(startBodySchema, body);
      sendResult(res, manager.onPeerStart(notice.Key_stream_ID, notice.available));
    }),
  );

  router.post(
    '/peer/open',
    jsonHandler(async (req, res) => {
      const notice = validate(streamNoticeSchema, jsonBody(req));
      sendResult(res, await manager.onPeerOpened(notice.keyStreamId));
    }),
  );

  router.post(
    '/peer/close',
    jsonHandler(async (req, res) => {
      const notice = validate(streamNoticeSchema, jsonBody(req));
      sendResult(res, await manager.onPeerClosed(notice.keyStreamId));
    }),
  );

  router.post(
    '/peer/round',
    jsonHandler(async (req, res) => {
      const msg = validate(roundMessageSchema, jsonBody(req));
      sendResult(res, await exchange.handleRound(msg));
    }),
  );

  router.post(
    '/peer/confirm',
    jsonHandler(async (req, res) => {
      const msg = validate(confirmMessageSchema, jsonBody(req));
      sendResult(res, await exchange.handleConfirm(msg));
    }),
  );

  // The readiness probe of the peer (src/exchange/peerReachability.ts): authenticated like every peer message; changes nothing.
  router.post(PEER_PING_PATH, (_req, res) => {
    res.status(200).json({ alive: true });
  });

  router.post(
    '/peer/counter',
    jsonHandler(async (req, res) => {
      const msg = validate(counterMessageSchema, jsonBody(req));
      sendResult(res, exchange.handleCounter(msg));
    }),
  );

  return router;
}
