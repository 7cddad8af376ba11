/**
 * The key server 2.0 interface: the module interface of the 2.0 generation (ignaziopedone/qkd-module,
 * qkdm_src/qkdm_server.py and api.py) as the 2.0 key server (ignaziopedone/qkd-keyserver, qks_core/)
 * calls it, a third codec over the same core as the seed API and ETSI 004. JSON under
 * /api/v1/qkdm/actions: attach, open_connect, get_id/<key_stream_ID>, check_id, get_key, close.
 * Success is HTTP 200 with status 0; a failed call is HTTP 503 `{status, message}`; a malformed
 * request HTTP 400 `{message}` (docs/api.md, "Key server 2.0 interface").
 *
 * - open_connect names key servers (source, destination); the peer module is this module's
 *   configuration (keyserver.peer_module), the key size keyserver.key_size.
 * - Keys are asked for by lists of indexes (get_id lists them, check_id checks them at the other end,
 *   get_key takes them), all or none.
 * - attach records, for the calling application identity (appIdentity.ts), the key server it belongs
 *   to and the peer key server; streams belong to that identity like every other codec's.
 *
 * open_connect, get_key and close share their paths with the first generation (routes/seed.ts).
 * `dispatch` is the one place that tells the two apart, by the request itself: a JSON object
 * carrying none of the first generation's own fields is a 2.0 request; anything else (a Python
 * literal, a JSON list, a bare string, an object with Key_stream_ID / qos / index) is passed on
 * with next() to the seed router, mounted after this one.
 */
import { Router, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { QkdmError } from '../../core/errors.js';
import type { KeyStreamManager } from '../../core/KeyStreamManager.js';
import { callerOf } from '../appIdentity.js';
import { clientGone } from '../clientGone.js';
import {
  v2AttachSchema,
  v2CheckIdSchema,
  v2CloseSchema,
  v2GetKeySchema,
  v2OpenConnectSchema,
  V2Status,
  type V2StatusCode,
} from '../keyServerV2Schemas.js';
import { keyStreamIdSchema } from '../seedSchemas.js';
import { BadRequest, describeIssue, parseJsonText } from '../wire.js';

/** This module's part of the configuration (config `keyserver`). */
export interface KeyServerV2Settings {
  /** The peer module's peer listener; undefined: open_connect answers status 4. */
  peer_module?: string | undefined;
  /** Bits per key of the streams opened here. */
  key_size: number;
}

/** What attach established for one application identity. */
interface Attachment {
  keyServerId: string;
  peerKeyServerId: string;
  host: string;
  port: number;
}

/** A 2.0 call that ran and failed: HTTP 503 `{status, message}`. */
class V2Failure extends Error {
  constructor(
    readonly status: V2StatusCode,
    message: string,
  ) {
    super(message);
  }
}

/** The first generation's own field names per shared route: a JSON object with any of them is not 2.0. */
const FIRST_GENERATION_FIELDS: Readonly<Record<string, readonly string[]>> = {
  '/open_connect': ['qos', 'Key_stream_ID'],
  '/get_key': ['Key_stream_ID', 'index'],
  '/close': ['Key_stream_ID'],
};

/** The 2.0 status of a core failure, or `fallback` (the route's usual failure status). */
function statusOf(err: QkdmError, fallback: V2StatusCode): V2StatusCode {
  switch (err.code) {
    case 'UNKNOWN_STREAM':
    case 'STREAM_NOT_OPEN':
      return V2Status.KSID_NOT_FOUND;
    case 'STREAM_IN_USE':
    case 'STREAM_CLOSED':
      return V2Status.KSID_IN_USE;
    case 'PEER_UNREACHABLE':
    case 'PEER_REFUSED':
    case 'ROLE_CLASH':
    case 'REGISTRATION_LIMIT':
      return V2Status.NO_QKD_CONNECTION;
    case 'STORE_UNAVAILABLE':
      return V2Status.COMPONENT_UNAVAILABLE;
    default:
      return fallback;
  }
}

const SUCCESS_MESSAGE = 'successful';

/** Reads a JSON object body; undefined when the body is not one (then it is not a 2.0 request). */
function jsonObjectOf(req: Request): Record<string, unknown> | undefined {
  const raw = typeof req.body === 'string' ? req.body.trim() : '';
  if (!raw.startsWith('{')) return undefined;
  let value: unknown;
  try {
    value = parseJsonText(raw);
  } catch {
    return undefined; // e.g. a Python dict literal: the first generation's to answer
  }
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function parse<S extends z.ZodType>(body: Record<string, unknown> | undefined, schema: S, shared: boolean): z.output<S> {
  if (body === undefined) throw new BadRequest('body: expected a JSON object');
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const hint = shared ? " (read as a key server 2.0 request: a JSON object without the first generation's Key_stream_ID, qos or index)" : '';
    throw new BadRequest(`${describeIssue(parsed.error.issues[0]!)}${hint}`);
  }
  return parsed.data;
}

function sendFailure(res: Response, err: unknown, fallback: V2StatusCode): void {
  if (err instanceof BadRequest) {
    res.status(400).json({ message: err.message });
    return;
  }
  if (err instanceof V2Failure) {
    res.status(503).json({ status: err.status, message: err.message });
    return;
  }
  if (err instanceof QkdmError) {
    if (err.code === 'BAD_REQUEST') {
      res.status(400).json({ message: err.message });
      return;
    }
    if (err.code === 'LIMIT_REACHED') res.set('Connection', 'close');
    res.status(503).json({ status: statusOf(err, fallback), message: err.message });
    return;
  }
  throw err;
}

const sameIds = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && [...a].sort().join('\u0000') === [...b].sort().join('\u0000');

export function keyServerV2Router(manager: KeyStreamManager, settings: KeyServerV2Settings = { key_size: 256 }, log?: Logger): Router {
  const router = Router({ caseSensitive: true });
  /** Per application identity (in memory: a restarted module is attached again by the key server's admin). */
  const attachments = new Map<string, Attachment>();

  /** Committed indexes this end holds for the caller's stream; V2Failure(9) when the caller has no such stream. */
  const heldIndexes = (id: string, caller: string, missing: V2StatusCode = V2Status.KSID_NOT_FOUND): number[] => {
    const owned = manager.availableKeys(id, caller);
    if (!owned.ok) throw new V2Failure(missing, 'unknown key_stream_ID (no such stream of this application on this module)');
    return manager.heldIndicesBelow(id, Number.MAX_SAFE_INTEGER);
  };

  type Handler = (req: Request, res: Response, body: Record<string, unknown> | undefined, shared: boolean) => Promise<void>;

  const attach: Handler = async (_req, res, body) => {
    const b = parse(body, v2AttachSchema, false);
    const caller = callerOf(res);
    const wanted: Attachment = { keyServerId: b.qks_src_ID, peerKeyServerId: b.qks_dest_ID, host: b.qks_src_IP, port: b.qks_src_port };
    const current = attachments.get(caller);
    if (current && (current.keyServerId !== wanted.keyServerId || current.peerKeyServerId !== wanted.peerKeyServerId)) {
      throw new V2Failure(V2Status.ALREADY_ATTACHED, 'this module is attached to other key servers for this application: restart it to attach it to new ones');
    }
    attachments.set(caller, wanted);
    log?.info({ caller, keyServer: wanted.keyServerId, peerKeyServer: wanted.peerKeyServerId }, 'key server 2.0 attached');
    res.status(200).json({ status: V2Status.SUCCESSFUL, message: SUCCESS_MESSAGE });
  };

  const openConnect: Handler = async (_req, res, body, shared) => {
    const b = parse(body, v2OpenConnectSchema, shared);
    const caller = callerOf(res);
    const attached = attachments.get(caller);
    if (attached && !sameIds([b.source, b.destination], [attached.keyServerId, attached.peerKeyServerId])) {
      throw new V2Failure(V2Status.NO_QKD_CONNECTION, 'this module links only the key servers it was attached to: source and destination must be those two');
    }
    if (!settings.peer_module) {
      throw new V2Failure(V2Status.NO_QKD_CONNECTION, 'no peer module configured: set keyserver.peer_module (QKDM_KEYSERVER_PEER_MODULE)');
    }
    const id = b.key_stream_ID ?? null;
    if (id !== null) {
      // Joining a stream the peer registered: the same two key servers, as the original checks.
      const s = manager.stream(id);
      if (s && !s.localOpen && (s.source !== b.source || s.destination !== b.destination)) {
        throw new V2Failure(V2Status.KSID_IN_USE, 'this key_stream_ID was opened between other key servers');
      }
    }
    const result = await manager.openConnect({
      source: b.source,
      destination: b.destination,
      peerAddress: settings.peer_module,
      keyLengthBits: settings.key_size,
      timeoutMs: manager.settings.peerTimeoutMs,
      keyStreamId: id,
      owner: caller,
    });
    if (!result.ok) {
      const err = result.error;
      if (err.code === 'BAD_REQUEST') throw new V2Failure(V2Status.QOS_NOT_MET, `${err.message} (keyserver.key_size must be the same at both modules)`);
      throw err;
    }
    res.status(200).json({ status: V2Status.SUCCESSFUL, key_stream_ID: result.value.keyStreamId });
  };

  const getId: Handler = async (req, res) => {
    const idParsed = keyStreamIdSchema.safeParse(req.params.key_stream_ID);
    if (!idParsed.success) throw new BadRequest(`key_stream_ID: ${idParsed.error.issues[0]!.message}`);
    const query = req.query as Record<string, unknown>;
    const unknown = Object.keys(query).filter((k) => k !== 'count').length;
    if (unknown > 0) throw new BadRequest(`query: ${unknown} unknown parameter${unknown === 1 ? '' : 's'} (names not repeated); the only one is count`);
    if (query.count !== undefined && (typeof query.count !== 'string' || !/^[+-]?\d{1,15}$/.test(query.count.trim()))) {
      throw new BadRequest('count: expected one integer (-1: every index)');
    }
    const count = typeof query.count === 'string' ? Number(query.count.trim()) : undefined;
    const held = heldIndexes(idParsed.data, callerOf(res));
    // As a Python slice [:count], -1 meaning all.
    const listed = count === undefined || count === -1 ? held : held.slice(0, count);
    res.status(200).json({ status: V2Status.SUCCESSFUL, available_indexes: count === undefined ? held.length : listed });
  };

  const checkId: Handler = async (_req, res, body) => {
    const b = parse(body, v2CheckIdSchema, false);
    const held = new Set(heldIndexes(b.key_stream_ID, callerOf(res), V2Status.CHECK_ID_FAILED));
    const missing = b.indexes.filter((i) => !held.has(i)).length;
    if (missing > 0) throw new V2Failure(V2Status.CHECK_ID_FAILED, `${missing} of the ${b.indexes.length} indexes are not available here`);
    res.status(200).json({ status: V2Status.SUCCESSFUL, message: SUCCESS_MESSAGE });
  };

  const getKey: Handler = async (_req, res, body, shared) => {
    const b = parse(body, v2GetKeySchema, shared);
    if (new Set(b.indexes).size !== b.indexes.length) throw new BadRequest('indexes: must not repeat an index');
    const caller = callerOf(res);
    const id = b.key_stream_ID;
    const held = new Set(heldIndexes(id, caller));
    const signal = clientGone(res);
    const keys = new Map<number, Uint8Array>();
    const wipe = (): void => {
      for (const k of keys.values()) k.fill(0);
    };
    const take = async (index: number): Promise<boolean> => {
      const r = await manager.deliverKey(id, index, { caller, timeoutMs: 0, signal });
      if (!r.ok) {
        wipe();
        throw r.error;
      }
      if (r.value.kind !== 'key') return false;
      keys.set(index, r.value.delivered.key);
      return true;
    };
    // All or none: indexes not held here first (only a key delivered to this caller within the
    // re-delivery window, whose answer was lost, can come back); a failure there takes no new key.
    for (const index of b.indexes.filter((i) => !held.has(i))) {
      if (!(await take(index))) {
        wipe();
        throw new V2Failure(V2Status.INSUFFICIENT_KEY, 'not every index asked for is available here (delivered, erased or not yet exchanged): nothing was taken');
      }
    }
    for (const index of b.indexes.filter((i) => held.has(i))) {
      if (!(await take(index))) {
        // Taken meanwhile by a concurrent call of the same application: the keys taken so far stay
        // re-deliverable to it (same indexes) within module.redelivery_window_s.
        wipe();
        throw new V2Failure(V2Status.INSUFFICIENT_KEY, 'an index was taken by a concurrent call; the keys taken so far can be asked for again');
      }
    }
    const out = b.indexes.map((i) => Buffer.from(keys.get(i)!).toString('base64'));
    wipe();
    res.status(200).json({ status: V2Status.SUCCESSFUL, indexes: b.indexes, keys: out });
  };

  const close: Handler = async (_req, res, body, shared) => {
    const b = parse(body, v2CloseSchema, shared);
    const result = await manager.close(b.key_stream_ID, callerOf(res));
    if (!result.ok) throw result.error;
    res.status(200).json({ status: V2Status.SUCCESSFUL, message: SUCCESS_MESSAGE });
  };

  const routes: Readonly<Record<string, { handler: Handler; fallback: V2StatusCode }>> = {
    'POST /attach': { handler: attach, fallback: V2Status.ALREADY_ATTACHED },
    'POST /open_connect': { handler: openConnect, fallback: V2Status.NO_QKD_CONNECTION },
    'GET /get_id/:key_stream_ID': { handler: getId, fallback: V2Status.KSID_NOT_FOUND },
    'POST /check_id': { handler: checkId, fallback: V2Status.CHECK_ID_FAILED },
    'POST /get_key': { handler: getKey, fallback: V2Status.INSUFFICIENT_KEY },
    'POST /close': { handler: close, fallback: V2Status.KSID_NOT_FOUND },
  };

  /** The one dispatch point: a 2.0 request is answered here, anything else goes on to the seed router. */
  const dispatch = (key: string, path: string) => async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const body = jsonObjectOf(req);
    const firstGeneration = FIRST_GENERATION_FIELDS[path];
    const shared = firstGeneration !== undefined;
    if (shared && (body === undefined || firstGeneration.some((f) => Object.hasOwn(body, f)))) {
      next();
      return;
    }
    const { handler, fallback } = routes[key]!;
    try {
      await handler(req, res, body, shared);
    } catch (err) {
      sendFailure(res, err, fallback);
    }
  };

  for (const key of Object.keys(routes)) {
    const [method, path] = key.split(' ') as ['POST' | 'GET', string];
    if (method === 'GET') router.get(path, dispatch(key, path));
    else router.post(path, dispatch(key, path));
  }
  return router;
}
