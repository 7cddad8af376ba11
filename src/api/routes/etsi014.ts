/**
 * ETSI GS QKD 014 v1.1.1 routes (mounted at /api/v1/keys) and the binding's peer routes.
 *
 *   GET      /{slave_SAE_ID}/status       Status          (caller: the master SAE)
 *   POST|GET /{slave_SAE_ID}/enc_keys     Key container   (caller: the master SAE)
 *   POST|GET /{master_SAE_ID}/dec_keys    Key container   (caller: the slave SAE)
 *
 * Each handler identifies the caller (client certificate), validates with the zod schemas of
 * ../etsi014Schemas.ts, calls Etsi014Service once and encodes. 400 and 503 carry an Error body
 * {message, details?}; 401 has none. Bodies are JSON whatever the Content-Type says.
 */
import { Router, type Request, type Response } from 'express';
import type { z } from 'zod';
import type { Etsi014Failure, Etsi014Result, Etsi014Service, IssuedKey } from '../../core/Etsi014Service.js';
import type { QkdmError } from '../../core/errors.js';
import { ETSI014_PEER_KEYS_PATH, ETSI014_PEER_READY_PATH, etsi014KeysNoticeSchema, etsi014ReadyNoticeSchema } from '../../exchange/etsi014Peer.js';
import {
  etsi014DecKeysQuerySchema,
  etsi014EncKeysQuerySchema,
  etsi014KeyIdsSchema,
  etsi014KeyRequestSchema,
  etsi014SaeIdSchema,
  type Etsi014KeyContainer,
  type Etsi014KeyRequest,
} from '../etsi014Schemas.js';
import type { SaeIdentifier } from '../saeIdentity.js';
import { checkJsonDepth, describeIssue } from '../wire.js';

class Etsi014BadRequest extends Error {}

function sendFailure(res: Response, f: Etsi014Failure): void {
  if (f.status === 401) {
    res.status(401).end();
    return;
  }
  res.status(f.status).json({ message: f.message ?? 'error', ...(f.details ? { details: f.details } : {}) });
}

function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new Etsi014BadRequest(describeIssue(parsed.error.issues[0]!, what));
  }
  return parsed.data;
}

/** The body as JSON; an empty body is `undefined`. */
function jsonBody(req: Request): unknown {
  const raw = typeof req.body === 'string' ? req.body : '';
  if (raw.trim() === '') return undefined;
  try {
    checkJsonDepth(raw);
  } catch (err) {
    throw new Etsi014BadRequest((err as Error).message);
  }
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw new Etsi014BadRequest('body: not valid JSON');
  }
}

const encodeKeys = (keys: readonly IssuedKey[]): Etsi014KeyContainer => ({
  keys: keys.map((k) => {
    const key = Buffer.from(k.key).toString('base64');
    k.key.fill(0);
    return { key_ID: k.keyId, key };
  }),
});

/**
 * Resolves true once the whole answer was handed to the connection ('finish'), false when the
 * connection closed before (the client gave up, the connection broke): such an answer never arrived.
 */
function answerLeft(res: Response): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    if (res.writableFinished) return resolve(true);
    if (res.destroyed || res.socket === null || res.socket.destroyed) return resolve(false);
    res.once('finish', () => resolve(true));
    res.once('close', () => resolve(res.writableFinished));
  });
}

export function etsi014Router(service: Etsi014Service | undefined, identify: SaeIdentifier): Router {
  const router = Router();

  /** Identity first (401), then the path's SAE ID (400), then the handler; bad input is 400, never 500. */
  const route = (pathParam: 'slave_SAE_ID' | 'master_SAE_ID', work: (req: Request, res: Response, caller: string, other: string) => Promise<void> | void) => {
    return async (req: Request, res: Response): Promise<void> => {
      if (!service) {
        res.status(503).json({ message: 'ETSI GS QKD 014 is not configured on this KME (etsi014.kme_id)' });
        return;
      }
      const caller = identify(req);
      if (caller === undefined) {
        res.status(401).end();
        return;
      }
      try {
        const other = parse(etsi014SaeIdSchema, req.params[pathParam], pathParam);
        await work(req, res, caller, other);
      } catch (err) {
        if (err instanceof Etsi014BadRequest) {
          res.status(400).json({ message: err.message });
          return;
        }
        throw err;
      }
    };
  };

  const answer = <T>(res: Response, result: Etsi014Result<T>, body: (value: T) => unknown): void => {
    if (!result.ok) {
      sendFailure(res, result.error);
      return;
    }
    res.status(200).json(body(result.value));
  };

  router.get(
    '/:slave_SAE_ID/status',
    route('slave_SAE_ID', (_req, res, master, slave) => answer(res, service!.status(master, slave), (s) => s)),
  );

  const encKeys = (request: (req: Request) => Etsi014KeyRequest) =>
    route('slave_SAE_ID', async (req, res, master, slave) => {
      answer(res, await service!.encKeys(master, slave, request(req)), encodeKeys);
    });
  router.post('/:slave_SAE_ID/enc_keys', encKeys((req) => parse(etsi014KeyRequestSchema, jsonBody(req) ?? {}, 'body')));
  router.get('/:slave_SAE_ID/enc_keys', encKeys((req) => parse(etsi014EncKeysQuerySchema, req.query, 'query')));

  // The answer's fate decides whether the slave SAE may fetch the same keys again (a lost answer, docs/etsi014.md "Flows").
  const decKeys = (keyIds: (req: Request) => string[]) =>
    route('master_SAE_ID', async (req, res, slave, master) => {
      const ids = keyIds(req);
      answer(res, await service!.decKeys(slave, master, ids, answerLeft(res)), encodeKeys);
    });
  router.post(
    '/:master_SAE_ID/dec_keys',
    decKeys((req) => {
      const body = jsonBody(req);
      if (body === undefined) throw new Etsi014BadRequest('body: a Key IDs object {key_IDs: [{key_ID}]} is required');
      return parse(etsi014KeyIdsSchema, body, 'body').key_IDs.map((k) => k.key_ID);
    }),
  );
  router.get(
    '/:master_SAE_ID/dec_keys',
    decKeys((req) => {
      const q = parse(etsi014DecKeysQuerySchema, req.query, 'key_ID');
      return Array.isArray(q.key_ID) ? q.key_ID : [q.key_ID];
    }),
  );

  return router;
}

/** Peer routes of the binding (peer listener; mutual TLS when configured). JSON, `{code, message}` errors. */
export function etsi014PeerRouter(service: Etsi014Service): Router {
  const router = Router();
  const peerRoute = <S extends z.ZodType>(schema: S, work: (msg: z.infer<S>) => Promise<unknown> | unknown) => {
    return async (req: Request, res: Response): Promise<void> => {
      let msg: z.infer<S>;
      try {
        msg = parse(schema, jsonBody(req), 'body');
      } catch (err) {
        if (!(err instanceof Etsi014BadRequest)) throw err;
        res.status(400).json({ code: 'BAD_REQUEST', message: err.message });
        return;
      }
      const result = (await work(msg)) as { ok: true; value: unknown } | { ok: false; error: QkdmError };
      if (result.ok) {
        res.status(200).json(result.value ?? { status: 0 });
        return;
      }
      const http = result.error.definition.httpStatus === 200 ? 502 : result.error.definition.httpStatus;
      res.status(http).json({ code: result.error.code, message: result.error.message });
    };
  };
  router.post(ETSI014_PEER_KEYS_PATH, peerRoute(etsi014KeysNoticeSchema, (msg) => service.onPeerKeys(msg)));
  router.post(ETSI014_PEER_READY_PATH, peerRoute(etsi014ReadyNoticeSchema, (msg) => service.onPeerReady(msg.keyStreamId)));
  return router;
}
