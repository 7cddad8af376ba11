/**
 * The seed API, compatible with the original module's clients (the QKD Key Server of
 * ignaziopedone/qkd-keyserver and final applications): open_connect, get_key, close, available_keys,
 * in both generations of the original's routes:
 *
 *   root (until the "Renamed API" commit):   POST /open_connect  POST /get_key  POST /close  POST /available_keys
 *   renamed (from it):                       POST /api/v1/qkdm/actions/open_connect  .../get_key  .../close
 *                                            GET  /api/v1/qkdm/available_keys?handle=<repr([Key_stream_ID])>
 *
 * (plus GET /available_keys and POST|GET /api/v1/qkdm/actions/available_keys, this module's own).
 * Each handler decodes, validates, calls the KeyStreamManager once and encodes: every generation is
 * the same codec over the same core calls. Statuses are the original's (0 SUCCESSFUL,
 * 1 INSUFFICIENT_KEY_AVAILABLE, 2 NO_QKD_CONNECTION_AVAILABLE, 3 HANDLE_IN_USE).
 *
 * Two wire contracts (docs/api.md, "Seed API"):
 *  - a **Python-literal** request gets the original's contract: a failure is HTTP 400 (429 and 503
 *    stay: retry later / store down) with an answer of exactly the original's arity (`[ID, status]`,
 *    `[None, index, status]`, `status`, `[count]`), the reason only in the X-QKDM-Message header; and
 *    get_key answers at once, as the original did, unless the caller asks to wait (`Prefer: wait=N`);
 *  - a **JSON** request keeps this module's contract: failures carry a `message`, the HTTP status is
 *    the error catalogue's, and get_key waits up to the stream's timeout.
 * In both, the joining OPEN_CONNECT takes the stream's key length whatever it asked (the original
 * overwrote the length; the key server joins with 128 whatever the opener asked).
 */
import { Router, type Request, type Response } from 'express';
import { QkdmError, SeedStatus, type SeedStatusCode } from '../../core/errors.js';
import type { KeyStreamManager } from '../../core/KeyStreamManager.js';
import { MAX_TIMEOUT_MS } from '../../core/types.js';
import { normalizePeerAddress } from '../../exchange/peerProtocol.js';
import { callerOf } from '../appIdentity.js';
import { clientGone } from '../clientGone.js';
import type { PyValue } from '../codec/pyLiteral.js';
import { BadRequest, decodeBody, describeIssue, idempotencyToken, parseFields, sendAnswer, type WireContext } from '../wire.js';
import {
  availableKeysNames,
  availableKeysQuerySchema,
  availableKeysSchema,
  closeNames,
  closeSchema,
  getKeyNames,
  getKeySchema,
  keyStreamIdSchema,
  openConnectNames,
  openConnectSchema,
} from '../seedSchemas.js';

/** Where the renamed generation's GET available_keys is mounted (the actions are under `${prefix}/actions`). */
export const SEED_RENAMED_PREFIX = '/api/v1/qkdm';

/**
 * The human-readable reason of a failed seed call. Never request content or key material: a bad
 * request's message names the field and the problem, any other failure is the error catalogue's
 * fixed description (core messages may quote IDs and addresses).
 */
export const SEED_MESSAGE_HEADER = 'X-QKDM-Message';
/** The error catalogue's code of a failed seed call (src/core/errors.ts), e.g. BAD_REQUEST, UNKNOWN_STREAM. */
export const SEED_ERROR_HEADER = 'X-QKDM-Error';

/**
 * Errors whose core message quotes only this module's own settings (never a Key_stream_ID, an address
 * or a peer's words), so X-QKDM-Message may carry it; every other error carries its catalogue text.
 */
const SELF_DESCRIBING = new Set(['LIMIT_REACHED', 'REGISTRATION_LIMIT', 'STORE_UNAVAILABLE']);

/** What a failure answer needs to know about the request. */
interface FailureInfo {
  /** The Key_stream_ID the request named (validated), if any. */
  keyStreamId?: string | null;
  /** The index get_key asked for, if it was a number. */
  index?: number;
}

/** How each route answers a failure. */
interface FailureShape {
  /** The route's failure status when the error names none (a bad request, a limit, the store). */
  status: SeedStatusCode;
  /** Python literal: the original's answer for a failure, of the original's arity (no message). */
  python(status: number, info: FailureInfo): PyValue;
  /** JSON list: the route's usual answer followed by the message. */
  array(status: number, message: string, info: FailureInfo): PyValue[];
  /** JSON object: the same values under their names plus `message`. */
  object(status: number, message: string, info: FailureInfo): Record<string, PyValue>;
}

const indexOf = (info: FailureInfo): number => info.index ?? -1;

const OPEN_CONNECT_FAILURE: FailureShape = {
  status: SeedStatus.NO_QKD_CONNECTION_AVAILABLE,
  // The original answered repr([str(Key_stream_ID), status]) with 400: the ID the request named.
  python: (status, info) => [info.keyStreamId ?? null, status],
  array: (status, message) => [null, status, message],
  object: (status, message) => ({ Key_stream_ID: null, status, message }),
};
const GET_KEY_FAILURE: FailureShape = {
  status: SeedStatus.INSUFFICIENT_KEY_AVAILABLE,
  // The original answered repr([None, -1, status]) with 400 when the call failed (no such handle, no key at all).
  python: (status) => [null, -1, status],
  array: (status, message, info) => [null, indexOf(info), status, message],
  object: (status, message, info) => ({ key: null, index: indexOf(info), status, message }),
};
const CLOSE_FAILURE: FailureShape = {
  status: SeedStatus.NO_QKD_CONNECTION_AVAILABLE,
  // The original answered str(status) with 400: the bare status.
  python: (status) => status,
  array: (status, message) => [status, message],
  object: (status, message) => ({ status, message }),
};
const AVAILABLE_FAILURE: FailureShape = {
  status: SeedStatus.NO_QKD_CONNECTION_AVAILABLE,
  // The original always answered [count]; a failure here is [0] (with a non-200 status, which the key server reads as 0 keys).
  python: () => [0],
  array: (_status, message) => [0, message],
  object: (status, message) => ({ available_keys: 0, status, message }),
};

/** Printable ASCII only, bounded: a header value Node accepts, whatever the text. */
function headerText(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 300);
}

/** A Python-literal failure's HTTP status: 400, as the original; "retry later" (429) and server failures (5xx) keep theirs. */
function pythonHttpStatus(catalogueStatus: number): number {
  return catalogueStatus === 429 || catalogueStatus >= 500 ? catalogueStatus : 400;
}

function sendFailure(res: Response, ctx: WireContext, shape: FailureShape, err: unknown, info: FailureInfo): void {
  let httpStatus: number;
  let status: number = shape.status;
  let message: string;
  let reason: string;
  let code: string;
  if (err instanceof BadRequest) {
    httpStatus = 400;
    message = err.message;
    reason = err.message;
    code = 'BAD_REQUEST';
  } else if (err instanceof QkdmError) {
    httpStatus = err.definition.httpStatus;
    // A caller over a limit gets its connection closed too: refused calls must not pile up sockets.
    if (err.code === 'LIMIT_REACHED') res.set('Connection', 'close');
    status = err.definition.seedStatus ?? shape.status;
    message = err.message;
    reason = SELF_DESCRIBING.has(err.code) ? err.message : err.definition.description;
    code = err.code;
  } else {
    throw err;
  }
  res.set(SEED_MESSAGE_HEADER, headerText(reason));
  res.set(SEED_ERROR_HEADER, code);
  if (ctx.format === 'python') {
    sendAnswer(res, ctx, pythonHttpStatus(httpStatus), shape.python(status, info), {});
    return;
  }
  sendAnswer(res, ctx, httpStatus, shape.array(status, message, info), shape.object(status, message, info));
}

/** Runs a handler; any BadRequest or QkdmError becomes the route's failure answer. */
function handle(shape: FailureShape, work: (req: Request, res: Response, ctx: WireContext, info: FailureInfo) => Promise<void>) {
  return async (req: Request, res: Response): Promise<void> => {
    // Until the body is decoded its shape is unknown: JSON failures then answer with a named-field object.
    const json = Boolean(req.is('application/json'));
    let ctx: WireContext = { format: json ? 'json' : 'python', shape: json ? 'object' : 'array' };
    const info: FailureInfo = {};
    try {
      const decoded = decodeBody(req);
      ctx = decoded.ctx;
      (req as Request & { decoded?: unknown }).decoded = decoded.value;
      await work(req, res, ctx, info);
    } catch (err) {
      sendFailure(res, ctx, shape, err, info);
    }
  };
}

const decodedOf = (req: Request): unknown => (req as Request & { decoded?: unknown }).decoded;

/** Longest wait a `Prefer: wait=N` may ask for, in seconds (the stream's timeout caps it anyway). */
const MAX_PREFER_WAIT_S = MAX_TIMEOUT_MS / 1000;

/**
 * How long get_key may wait for a key, in ms (undefined: the stream's timeout). RFC 7240's
 * `Prefer: wait=N` (seconds) asks for up to N seconds, never more than the stream's timeout;
 * without it a Python-literal request waits not at all (the original answered at once) and a JSON
 * request up to the stream's timeout. A preference that is not `wait=<digits>` is ignored (RFC 7240).
 */
function waitMsOf(req: Request, ctx: WireContext, streamTimeoutMs: number | undefined): number | undefined {
  const header = req.headers.prefer;
  const text = Array.isArray(header) ? header.join(',') : (header ?? '');
  let wait: number | undefined;
  for (const preference of text.split(',')) {
    const m = /^\s*wait\s*=\s*"?(\d{1,9})"?\s*(?:;.*)?$/i.exec(preference);
    if (m) wait = Math.min(Number(m[1]), MAX_PREFER_WAIT_S) * 1000;
  }
  if (wait !== undefined) return Math.min(wait, streamTimeoutMs ?? MAX_TIMEOUT_MS);
  return ctx.format === 'python' ? 0 : undefined;
}

/** The root and /api/v1/qkdm/actions routes (app.ts mounts this router at both). */
export function seedRouter(manager: KeyStreamManager): Router {
  const router = Router();

  router.post(
    '/open_connect',
    handle(OPEN_CONNECT_FAILURE, async (req, res, ctx, info) => {
      const body = parseFields(decodedOf(req), openConnectNames, 3, openConnectSchema);
      // Checked here (the core checks it too) so the reason can name the field.
      if (!normalizePeerAddress(body.destination)) throw new BadRequest('destination: must be the peer module as host:port or an http(s) URL');
      const requestedId = body.Key_stream_ID ?? null;
      info.keyStreamId = requestedId;
      // The joining end takes the length the stream was opened with, whatever it asked: the original
      // overwrote the length at the second OPEN_CONNECT, and the key server joins with 128 whatever
      // the opener asked. Only a stream the peer registered and no application here opened yet.
      const joining = requestedId ? manager.stream(requestedId) : undefined;
      const keyLengthBits = joining && !joining.localOpen ? joining.keyLengthBits : body.qos.length;
      const result = await manager.openConnect({
        source: body.source ?? '',
        destination: body.destination,
        keyLengthBits,
        timeoutMs: body.qos.timeout,
        keyStreamId: requestedId,
        owner: callerOf(res),
      });
      if (!result.ok) throw result.error;
      const id = result.value.keyStreamId;
      sendAnswer(res, ctx, 200, [id, SeedStatus.SUCCESSFUL], { Key_stream_ID: id, status: SeedStatus.SUCCESSFUL });
    }),
  );

  router.post(
    '/get_key',
    handle(GET_KEY_FAILURE, async (req, res, ctx, info) => {
      const raw = decodedOf(req);
      if (Array.isArray(raw) && typeof raw[1] === 'number') info.index = raw[1];
      const body = parseFields(raw, getKeyNames, 2, getKeySchema);
      info.index = body.index;
      const token = idempotencyToken(req);
      const timeoutMs = waitMsOf(req, ctx, manager.stream(body.Key_stream_ID)?.timeoutMs);
      const delivery = await manager.deliverKey(body.Key_stream_ID, body.index, {
        signal: clientGone(res),
        caller: callerOf(res),
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
        ...(token === undefined ? {} : { token }),
      });
      if (!delivery.ok) throw delivery.error;
      if (delivery.value.kind !== 'key') {
        const status = SeedStatus.INSUFFICIENT_KEY_AVAILABLE;
        if (ctx.format === 'python') {
          // The original: repr([None, index, 1]) with 400, at once (the key server then gives up cleanly).
          res.set(SEED_MESSAGE_HEADER, timeoutMs ? 'no key became available within the wait' : 'no key available now at this index');
          sendAnswer(res, ctx, 400, [null, body.index, status], {});
          return;
        }
        sendAnswer(res, ctx, 200, [null, body.index, status], { key: null, index: body.index, status });
        return;
      }
      const { key, index } = delivery.value.delivered;
      sendAnswer(res, ctx, 200, [key, index, SeedStatus.SUCCESSFUL], { key, index, status: SeedStatus.SUCCESSFUL });
    }),
  );

  router.post(
    '/close',
    handle(CLOSE_FAILURE, async (req, res, ctx, info) => {
      const raw = decodedOf(req);
      // The original clients send [Key_stream_ID]; a bare string is accepted too.
      const body = typeof raw === 'string' ? { Key_stream_ID: parseId(raw) } : parseFields(raw, closeNames, 1, closeSchema);
      info.keyStreamId = body.Key_stream_ID;
      const result = await manager.close(body.Key_stream_ID, callerOf(res));
      if (!result.ok) throw result.error;
      sendAnswer(res, ctx, 200, SeedStatus.SUCCESSFUL, { status: SeedStatus.SUCCESSFUL });
    }),
  );

  const availableKeys = availableKeysHandler(manager);
  router.post('/available_keys', availableKeys);
  router.get('/available_keys', availableKeys);

  return router;
}

/** The renamed generation's GET available_keys (app.ts mounts this router at SEED_RENAMED_PREFIX). */
export function seedRenamedRouter(manager: KeyStreamManager): Router {
  const router = Router();
  router.get('/available_keys', availableKeysHandler(manager));
  return router;
}

function availableKeysHandler(manager: KeyStreamManager) {
  return handle(AVAILABLE_FAILURE, async (req, res, ctx) => {
    const raw = decodedOf(req);
    // `handle` is the only query parameter: anything else (or `handle` twice) is refused, never ignored,
    // so a caller who meant one stream never gets the total of all by mistake. Names are not repeated.
    const query = req.query as Record<string, unknown>;
    const unknown = Object.keys(query).filter((k) => k !== 'handle').length;
    if (unknown > 0) throw new BadRequest(`query: ${unknown} unknown parameter${unknown === 1 ? '' : 's'} (names not repeated); the only one is handle`);
    if (Array.isArray(query.handle)) throw new BadRequest('handle: given more than once');
    let id: string | undefined;
    if (query.handle !== undefined) {
      const parsed = availableKeysQuerySchema.safeParse(query);
      if (!parsed.success) throw new BadRequest(describeIssue(parsed.error.issues[0]!, 'handle'));
      id = parsed.data.handle;
    } else if (typeof raw === 'string') id = parseId(raw);
    else if (raw !== undefined) id = parseFields(raw, availableKeysNames, 0, availableKeysSchema).Key_stream_ID ?? undefined;
    const result = manager.availableKeys(id, callerOf(res));
    if (!result.ok) throw result.error;
    sendAnswer(res, ctx, 200, [result.value], { available_keys: result.value });
  });
}

function parseId(text: string, field = 'Key_stream_ID'): string {
  const parsed = keyStreamIdSchema.safeParse(text);
  if (!parsed.success) throw new BadRequest(`${field}: ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}
