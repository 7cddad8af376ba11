/**
 * The seed API, compatible with the original module's clients: open_connect, get_key, close,
 * available_keys. Each handler decodes, validates, calls the KeyStreamManager once and encodes.
 * Statuses are the original's (0 SUCCESSFUL, 1 INSUFFICIENT_KEY_AVAILABLE,
 * 2 NO_QKD_CONNECTION_AVAILABLE, 3 HANDLE_IN_USE). A failed call answers the route's usual shape
 * followed by a message naming the problem.
 */
import { Router, type Request, type Response } from 'express';
import { QkdmError, SeedStatus, type SeedStatusCode } from '../../core/errors.js';
import type { KeyStreamManager } from '../../core/KeyStreamManager.js';
import { callerOf } from '../appIdentity.js';
import { clientGone } from '../clientGone.js';
import { BadRequest, decodeBody, idempotencyToken, parseFields, sendAnswer, type WireContext } from '../wire.js';
import {
  availableKeysNames,
  availableKeysSchema,
  closeNames,
  closeSchema,
  getKeyNames,
  getKeySchema,
  keyStreamIdSchema,
  openConnectNames,
  openConnectSchema,
} from '../seedSchemas.js';

/** How each route answers a failure: its usual shape with the failure status and a message. */
interface FailureShape {
  status: SeedStatusCode;
  array(status: number, message: string, req: unknown): unknown[];
  object(status: number, message: string, req: unknown): Record<string, unknown>;
}

const OPEN_CONNECT_FAILURE: FailureShape = {
  status: SeedStatus.NO_QKD_CONNECTION_AVAILABLE,
  array: (status, message) => [null, status, message],
  object: (status, message) => ({ Key_stream_ID: null, status, message }),
};
const GET_KEY_FAILURE: FailureShape = {
  status: SeedStatus.INSUFFICIENT_KEY_AVAILABLE,
  array: (status, message, index) => [null, typeof index === 'number' ? index : -1, status, message],
  object: (status, message, index) => ({ key: null, index: typeof index === 'number' ? index : -1, status, message }),
};
const CLOSE_FAILURE: FailureShape = {
  status: SeedStatus.NO_QKD_CONNECTION_AVAILABLE,
  array: (status, message) => [status, message],
  object: (status, message) => ({ status, message }),
};
const AVAILABLE_FAILURE: FailureShape = {
  status: SeedStatus.NO_QKD_CONNECTION_AVAILABLE,
  array: (_status, message) => [0, message],
  object: (status, message) => ({ available_keys: 0, status, message }),
};

function sendFailure(res: Response, ctx: WireContext, shape: FailureShape, err: unknown, reqInfo?: unknown): void {
  let httpStatus: number;
  let status: number = shape.status;
  let message: string;
  if (err instanceof BadRequest) {
    httpStatus = 400;
    message = err.message;
  } else if (err instanceof QkdmError) {
    httpStatus = err.definition.httpStatus;
    // A caller over a limit gets its connection closed too: refused calls must not pile up sockets.
    if (err.code === 'LIMIT_REACHED') res.set('Connection', 'close');
    status = err.definition.seedStatus ?? shape.status;
    message = err.message;
  } else {
    throw err;
  }
  sendAnswer(res, ctx, httpStatus, shape.array(status, message, reqInfo) as never, shape.object(status, message, reqInfo) as never);
}

/** Runs a handler; any BadRequest or QkdmError becomes the route's failure answer. */
function handle(shape: FailureShape, work: (req: Request, res: Response, ctx: WireContext, setInfo: (info: unknown) => void) => Promise<void>) {
  return async (req: Request, res: Response): Promise<void> => {
    // Until the body is decoded its shape is unknown: JSON failures then answer with a named-field object.
    const json = Boolean(req.is('application/json'));
    let ctx: WireContext = { format: json ? 'json' : 'python', shape: json ? 'object' : 'array' };
    let info: unknown;
    try {
      const decoded = decodeBody(req);
      ctx = decoded.ctx;
      (req as Request & { decoded?: unknown }).decoded = decoded.value;
      await work(req, res, ctx, (i) => (info = i));
    } catch (err) {
      sendFailure(res, ctx, shape, err, info);
    }
  };
}

const decodedOf = (req: Request): unknown => (req as Request & { decoded?: unknown }).decoded;

export function seedRouter(manager: KeyStreamManager): Router {
  const router = Router();

  router.post(
    '/open_connect',
    handle(OPEN_CONNECT_FAILURE, async (req, res, ctx) => {
      const body = parseFields(decodedOf(req), openConnectNames, 3, openConnectSchema);
      const result = await manager.openConnect({
        source: body.source ?? '',
        destination: body.destination,
        keyLengthBits: body.qos.length,
        timeoutMs: body.qos.timeout,
        keyStreamId: body.Key_stream_ID ?? null,
        owner: callerOf(res),
      });
      if (!result.ok) throw result.error;
      const id = result.value.keyStreamId;
      sendAnswer(res, ctx, 200, [id, SeedStatus.SUCCESSFUL], { Key_stream_ID: id, status: SeedStatus.SUCCESSFUL });
    }),
  );

  router.post(
    '/get_key',
    handle(GET_KEY_FAILURE, async (req, res, ctx, setInfo) => {
      const raw = decodedOf(req);
      if (Array.isArray(raw)) setInfo(raw[1]);
      const body = parseFields(raw, getKeyNames, 2, getKeySchema);
      setInfo(body.index);
      const token = idempotencyToken(req);
      const delivery = await manager.deliverKey(body.Key_stream_ID, body.index, {
        signal: clientGone(res),
        caller: callerOf(res),
        ...(token === undefined ? {} : { token }),
      });
      if (!delivery.ok) throw delivery.error;
      const result = { value: delivery.value.kind === 'key' ? delivery.value.delivered : null };
      if (!result.value) {
        const status = SeedStatus.INSUFFICIENT_KEY_AVAILABLE;
        sendAnswer(res, ctx, 200, [null, body.index, status], { key: null, index: body.index, status });
        return;
      }
      const { key, index } = result.value;
      sendAnswer(res, ctx, 200, [key, index, SeedStatus.SUCCESSFUL], { key, index, status: SeedStatus.SUCCESSFUL });
    }),
  );

  router.post(
    '/close',
    handle(CLOSE_FAILURE, async (req, res, ctx) => {
      const raw = decodedOf(req);
      // The original clients send [Key_stream_ID]; a bare string is accepted too.
      const body = typeof raw === 'string' ? { Key_stream_ID: parseId(raw) } : parseFields(raw, closeNames, 1, closeSchema);
      const result = await manager.close(body.Key_stream_ID, callerOf(res));
      if (!result.ok) throw result.error;
      sendAnswer(res, ctx, 200, SeedStatus.SUCCESSFUL, { status: SeedStatus.SUCCESSFUL });
    }),
  );

  const availableKeys = handle(AVAILABLE_FAILURE, async (req, res, ctx) => {
    const raw = decodedOf(req);
    const fromQuery = typeof req.query.handle === 'string' ? req.query.handle : undefined;
    let id: string | undefined;
    if (fromQuery !== undefined) id = parseId(fromQuery, 'handle');
    else if (typeof raw === 'string') id = parseId(raw);
    else if (raw !== undefined) id = parseFields(raw, availableKeysNames, 0, availableKeysSchema).Key_stream_ID;
    const result = manager.availableKeys(id, callerOf(res));
    if (!result.ok) throw result.error;
    sendAnswer(res, ctx, 200, [result.value], { available_keys: result.value });
  });
  router.post('/available_keys', availableKeys);
  router.get('/available_keys', availableKeys);

  return router;
}

function parseId(text: string, field = 'Key_stream_ID'): string {
  const parsed = keyStreamIdSchema.safeParse(text);
  if (!parsed.success) throw new BadRequest(`${field}: ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}
