/**
 * The OpenAPI 3.1 document of every route (GET /openapi.json), generated from the zod schemas that
 * validate the requests, with `z.toJSONSchema` (requests in input mode, answers in output mode):
 * no schema is written a second time here. Sub-schemas named with `.meta({ id })` become
 * `components.schemas`.
 *
 * ROUTES is the registry: one entry per method and path as app.ts mounts it (method, path, summary,
 * request schema, answer schemas, an example). test/api/openapi.test.ts checks that every route the
 * app serves is listed and that the document's request schemas are the zod schemas'.
 *
 * A binding adding routes adds their entries to ROUTES (its schemas stay in its own *Schemas.ts).
 */
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { confirmMessageSchema,
  counterMessageSchema, roundMessageSchema, streamNoticeSchema } from '../exchange/peerProtocol.js';
import { ETSI014_PEER_KEYS_PATH, ETSI014_PEER_READY_PATH, etsi014KeysNoticeSchema, etsi014ReadyNoticeSchema } from '../exchange/etsi014Peer.js';
import { toPyLiteral, type PyValue } from './codec/pyLiteral.js';
import {
  etsi004CloseAnswerSchema,
  etsi004CloseSchema,
  etsi004GetKeyAnswerSchema,
  etsi004GetKeySchema,
  etsi004OpenConnectAnswerSchema,
  etsi004OpenConnectSchema,
} from './etsi004Schemas.js';
import {
  etsi014DecKeysQuerySchema,
  etsi014EncKeysQuerySchema,
  etsi014ErrorSchema,
  etsi014KeyContainerSchema,
  etsi014KeyIdsSchema,
  etsi014KeyRequestSchema,
  etsi014SaeIdSchema,
  etsi014StatusSchema,
} from './etsi014Schemas.js';
import { KEY_SERVER_V2_ROUTES } from './keyServerV2Schemas.js';
import { errorBodySchema, healthSchema, liveSchema, readinessSchema, streamStatsSchema, streamSummarySchema, streamsSchema } from './infoSchemas.js';
import { dashboardFeedSchema } from '../dashboard/feedSchema.js';
import { DASHBOARD_ASSETS, DASHBOARD_PATH } from '../dashboard/router.js';
import { PEER_PING_PATH } from '../exchange/peerReachability.js';
import { METRICS_PATH } from './routes/metrics.js';
import { startBodySchema, syncQuerySchema } from './routes/peer.js';
import { SEED_ERROR_HEADER, SEED_MESSAGE_HEADER, SEED_RENAMED_PREFIX } from './routes/seed.js';
import {
  availableKeysAnswerNames,
  availableKeysAnswerSchema,
  availableKeysNames,
  availableKeysQuerySchema,
  availableKeysSchema,
  closeAnswerNames,
  closeAnswerSchema,
  closeNames,
  closeSchema,
  getKeyAnswerNames,
  getKeyAnswerSchema,
  getKeyNames,
  getKeySchema,
  keyStreamIdSchema,
  openConnectAnswerNames,
  openConnectAnswerSchema,
  openConnectNames,
  openConnectSchema,
} from './seedSchemas.js';

export type JsonSchema = Record<string, unknown>;
export type HttpMethod = 'get' | 'post';
export type RouteTag = 'seed' | 'keyserver' | 'etsi004' | 'etsi014' | 'operator' | 'peer';

/** The seed API's list forms: the fields of the object schema, in this order. */
export interface Positional {
  names: readonly string[];
  minItems: number;
}

export interface RequestBodyDoc {
  /** The object schema the route validates the body with. */
  schema: z.ZodType;
  /** A valid body (object form). */
  example: Record<string, unknown>;
  /** Seed API: the body may also be a JSON list, or a Python literal list (no Content-Type), of these fields. */
  positional?: Positional;
  /** The body may be empty. */
  optional?: boolean;
}

export interface AnswerDoc {
  description: string;
  /** JSON answer (object form); absent: no body described. */
  schema?: z.ZodType;
  /** Seed API: list-shaped requests get the values as a list (JSON or Python literal). */
  positional?: Positional;
  /** Seed API: the Python-literal answer, when it differs from the JSON list (the original's arity). */
  python?: string;
  /** Seed API: a failure, whose reason is in the X-QKDM-Message header. */
  failure?: boolean;
}

export interface RouteDoc {
  method: HttpMethod;
  /** As mounted, in Express syntax (`/streams/:id`). */
  path: string;
  summary: string;
  description?: string;
  tag: RouteTag;
  body?: RequestBodyDoc;
  query?: z.ZodObject;
  params?: Readonly<Record<string, z.ZodType>>;
  responses: Readonly<Record<number, AnswerDoc>>;
  /** apiToken: module.api_token when set; saeCertificate: the SAE's TLS client certificate; peer: mutual TLS between modules; operator: module.operator_token (Bearer or Basic) when set. */
  auth?: 'apiToken' | 'saeCertificate' | 'peer' | 'operator';
}

export const OPENAPI_PATH = '/openapi.json';
const EXAMPLE_ID = '6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab';

// ------------------------------------------------------------------------------------ registry

const errorAnswer = (description: string): AnswerDoc => ({ description, schema: errorBodySchema });

/**
 * A seed failure: Python-literal requests get the original's answer (`python`, exactly its arity) with
 * HTTP 400 (429 and 503 keep theirs); JSON requests the route's usual answer plus a message, with the
 * HTTP status in `json`. Both carry the reason in the X-QKDM-Message header.
 */
const seedFailure = (what: string, python: string, json: string): string =>
  `${what}. Python literal: ${python}, HTTP 400 (429 and 503 keep theirs). JSON: ${json}, with the message. Reason in ${SEED_MESSAGE_HEADER}`;

function seedAvailableKeys(method: HttpMethod, path: string, summary: string): RouteDoc {
  const failure = (what: string): AnswerDoc => ({
    description: seedFailure(what, '[0]', 'the count 0'),
    schema: availableKeysAnswerSchema,
    positional: { names: availableKeysAnswerNames, minItems: 2 },
    python: '[0]',
    failure: true,
  });
  return {
    method,
    path,
    tag: 'seed',
    auth: 'apiToken',
    summary,
    description:
      "The handle: a Key_stream_ID, or (GET) the Python literal of a one-element list as the key server sends it (`?handle=['<uuid>']`); `[None]` or none: every open stream of the caller.",
    ...(method === 'get'
      ? { query: availableKeysQuerySchema }
      : { body: { schema: availableKeysSchema, example: { Key_stream_ID: EXAMPLE_ID }, positional: { names: availableKeysNames, minItems: 0 }, optional: true } }),
    responses: {
      200: { description: 'the count', schema: availableKeysAnswerSchema, positional: { names: availableKeysAnswerNames, minItems: 1 }, python: '[count]' },
      400: failure('malformed request (JSON); any failure (Python literal)'),
      404: failure('unknown Key_stream_ID (JSON requests; Python-literal ones get 400)'),
    },
  };
}

function seedRoutes(prefix: string): RouteDoc[] {
  const at = (p: string): string => `${prefix === '/' ? '' : prefix}${p}`;
  return [
    {
      method: 'post',
      path: at('/open_connect'),
      tag: 'seed',
      auth: 'apiToken',
      summary: 'OPEN_CONNECT (original-compatible): open or join a key stream',
      description:
        "Key_stream_ID null: allocate one and register it at the peer module; given: join (or register) it. A join takes the stream's key length whatever qos.length asks (as the original overwrote it). Statuses: 0 SUCCESSFUL, 2 NO_QKD_CONNECTION_AVAILABLE, 3 HANDLE_IN_USE.",
      body: {
        schema: openConnectSchema,
        example: { source: 'app-a', destination: '127.0.0.1:5001', qos: { timeout: 5000, length: 256 }, Key_stream_ID: null },
        positional: { names: openConnectNames, minItems: 3 },
      },
      responses: {
        200: {
          description: 'status 0 (Python literal and JSON); JSON also: status 2 when the peer module is unreachable or refused',
          schema: openConnectAnswerSchema,
          positional: { names: openConnectAnswerNames, minItems: 2 },
          python: '[Key_stream_ID, 0]',
        },
        400: {
          description: seedFailure('malformed request (JSON); any failed call (Python literal: peer unreachable or refused, in use, unknown)', '[Key_stream_ID or None, status]', '[None, status, message]'),
          schema: openConnectAnswerSchema,
          positional: { names: openConnectAnswerNames, minItems: 3 },
          python: '[Key_stream_ID or None, status]',
          failure: true,
        },
        409: {
          description: seedFailure('Key_stream_ID in use (status 3), closed, or the two modules clash (JSON requests; Python-literal ones get 400)', '-', '[None, status, message]'),
          schema: openConnectAnswerSchema,
          positional: { names: openConnectAnswerNames, minItems: 3 },
          failure: true,
        },
      },
    },
    {
      method: 'post',
      path: at('/get_key'),
      tag: 'seed',
      auth: 'apiToken',
      summary: 'GET_KEY (original-compatible): the key at an index (-1: the lowest undelivered)',
      description:
        "Python literal: answers at once, as the original (no key: HTTP 400 [None, index, 1]). JSON: waits up to the stream timeout (no key in time: HTTP 200, status 1). `Prefer: wait=N` (RFC 7240, seconds) waits up to N s, never beyond the stream timeout, in either format. Statuses: 0 SUCCESSFUL, 1 INSUFFICIENT_KEY_AVAILABLE, 2 NO_QKD_CONNECTION_AVAILABLE.",
      body: { schema: getKeySchema, example: { Key_stream_ID: EXAMPLE_ID, index: -1, metadata: {} }, positional: { names: getKeyNames, minItems: 2 } },
      responses: {
        200: {
          description: 'status 0 with the key; JSON also: status 1 with key null when none came in time',
          schema: getKeyAnswerSchema,
          positional: { names: getKeyAnswerNames, minItems: 3 },
          python: '[key, index, 0] (key a bytes literal)',
        },
        400: {
          description: seedFailure('malformed request (JSON); no key available, or any failed call (Python literal)', '[None, index, 1] (no key), [None, -1, status] (failed call)', '[None, index, status, message]'),
          schema: getKeyAnswerSchema,
          positional: { names: getKeyAnswerNames, minItems: 4 },
          python: '[None, index, status]',
          failure: true,
        },
        404: {
          description: seedFailure('unknown Key_stream_ID, status 2 (JSON requests; Python-literal ones get 400)', '-', '[None, index, 2, message]'),
          schema: getKeyAnswerSchema,
          positional: { names: getKeyAnswerNames, minItems: 4 },
          failure: true,
        },
        409: {
          description: seedFailure('stream not opened by a local application, status 2 (JSON requests; Python-literal ones get 400)', '-', '[None, index, 2, message]'),
          schema: getKeyAnswerSchema,
          positional: { names: getKeyAnswerNames, minItems: 4 },
          failure: true,
        },
      },
    },
    {
      method: 'post',
      path: at('/close'),
      tag: 'seed',
      auth: 'apiToken',
      summary: "CLOSE (original-compatible): stop the exchange of a stream at both ends; this end's unused keys are erased",
      description: 'The body may also be the bare Key_stream_ID string. A successful list-shaped request is answered by the bare status 0.',
      body: { schema: closeSchema, example: { Key_stream_ID: EXAMPLE_ID }, positional: { names: closeNames, minItems: 1 } },
      responses: {
        200: { description: 'status 0', schema: closeAnswerSchema, positional: { names: closeAnswerNames, minItems: 1 }, python: '0 (the bare status)' },
        400: {
          description: seedFailure('malformed request (JSON); any failure (Python literal)', 'the bare status (2)', '[status, message]'),
          schema: closeAnswerSchema,
          positional: { names: closeAnswerNames, minItems: 2 },
          python: 'status (bare)',
          failure: true,
        },
        404: {
          description: seedFailure('unknown Key_stream_ID, status 2 (JSON requests; Python-literal ones get 400)', '-', '[2, message]'),
          schema: closeAnswerSchema,
          positional: { names: closeAnswerNames, minItems: 2 },
          failure: true,
        },
      },
    },
    seedAvailableKeys('post', at('/available_keys'), 'Committed keys not yet delivered: one stream, or all open streams of the caller'),
    seedAvailableKeys('get', at('/available_keys'), 'Committed keys not yet delivered: one stream, or all open streams of the caller'),
  ];
}

const ETSI004 = '/etsi004/v2.1.1';
const etsi004Failure = errorAnswer('malformed body: `{code: "BAD_REQUEST", message}` naming the field');
const etsi004Store = errorAnswer('a store failed; nothing was delivered (`{code: "STORE_UNAVAILABLE", message}`)');

const etsi004Routes: RouteDoc[] = [
  {
    method: 'post',
    path: `${ETSI004}/open_connect`,
    tag: 'etsi004',
    auth: 'apiToken',
    summary: 'ETSI GS QKD 004 OPEN_CONNECT',
    description:
      'Statuses: 0 both applications connected, 1 connected but the peer application not yet, 4 no QKD connection (peer module unreachable or refusing), 5 Key_stream_ID in use (bound to other endpoints, or closed), 7 QoS not met (the answer QoS is the counter-proposal).',
    body: {
      schema: etsi004OpenConnectSchema,
      example: {
        source: 'qkd://app-a@10.0.0.1:5000',
        destination: 'qkd://app-b@10.0.0.2:5000',
        QoS: { Key_chunk_size: 32, Max_bps: 0, Min_bps: 0, Jitter: 0, Priority: 0, Timeout: 5000, TTL: 3600, Metadata_mimetype: 'application/json' },
        Key_stream_ID: null,
      },
    },
    responses: { 200: { description: 'the call ran; see status', schema: etsi004OpenConnectAnswerSchema }, 400: etsi004Failure, 503: etsi004Store },
  },
  {
    method: 'post',
    path: `${ETSI004}/get_key`,
    tag: 'etsi004',
    auth: 'apiToken',
    summary: 'ETSI GS QKD 004 GET_KEY',
    description:
      'Statuses: 0 key delivered, 2 no key and none can come (index delivered or erased, stream closed, Timeout 0), 3 the peer application has not connected, 4 unknown or not opened stream, 6 waited the stream Timeout and no key came, 8 Metadata_size too small (the size needed is returned; the key stays deliverable).',
    body: { schema: etsi004GetKeySchema, example: { Key_stream_ID: EXAMPLE_ID, index: -1, Metadata: { Metadata_size: 256 } } },
    responses: { 200: { description: 'the call ran; see status', schema: etsi004GetKeyAnswerSchema }, 400: etsi004Failure, 503: etsi004Store },
  },
  {
    method: 'post',
    path: `${ETSI004}/close`,
    tag: 'etsi004',
    auth: 'apiToken',
    summary: 'ETSI GS QKD 004 CLOSE',
    description: 'Statuses: 0 closed (closing twice is fine), 4 unknown Key_stream_ID.',
    body: { schema: etsi004CloseSchema, example: { Key_stream_ID: EXAMPLE_ID } },
    responses: { 200: { description: 'the call ran; see status', schema: etsi004CloseAnswerSchema }, 400: etsi004Failure, 503: etsi004Store },
  },
];

const idParam = { id: keyStreamIdSchema } as const;
const operatorRoutes: RouteDoc[] = [
  { method: 'get', path: '/health', tag: 'operator', summary: 'Liveness and role of this module', responses: { 200: { description: 'the module runs', schema: healthSchema } } },
  { method: 'get', path: '/streams', tag: 'operator', auth: 'operator', summary: 'Every key stream (never key material)', responses: { 200: { description: 'the streams', schema: streamsSchema } } },
  {
    method: 'get',
    path: '/streams/:id',
    tag: 'operator',
    auth: 'operator',
    summary: 'One key stream (never key material)',
    params: idParam,
    responses: { 200: { description: 'the stream', schema: streamSummarySchema }, 400: errorAnswer('id is not a UUID'), 404: errorAnswer('unknown Key_stream_ID') },
  },
  {
    method: 'get',
    path: '/streams/:id/stats',
    tag: 'operator',
    auth: 'operator',
    summary: 'Recent key-exchange rounds of a stream and the simulator\'s totals (counts, QBER, decoy bounds, timings; never key material)',
    params: idParam,
    responses: { 200: { description: 'the rounds kept in memory', schema: streamStatsSchema }, 400: errorAnswer('id is not a UUID'), 404: errorAnswer('unknown Key_stream_ID') },
  },
  { method: 'get', path: OPENAPI_PATH, tag: 'operator', summary: 'This OpenAPI 3.1 document', responses: { 200: { description: 'the document' } } },
  {
    method: 'get',
    path: METRICS_PATH,
    tag: 'operator',
    auth: 'operator',
    summary: 'Prometheus metrics (text exposition format 0.0.4; docs/metrics.md lists them; never key material)',
    description: 'Served with module.metrics (default true). Needs module.operator_token when it is set, else a caller on this host (403 from elsewhere).',
    responses: {
      200: { description: 'text/plain; version=0.0.4: qkdm_* metrics per stream and link, HTTP and store timings, process and Node metrics' },
      401: errorAnswer('module.operator_token is set and the bearer token is missing or wrong'),
      403: errorAnswer('no module.operator_token and the caller is not on this host'),
    },
  },
  { method: 'get', path: '/health/live', tag: 'operator', summary: 'Liveness: the process serves HTTP (no dependency is asked; no credentials)', responses: { 200: { description: 'live', schema: liveSchema } } },
  {
    method: 'get',
    path: '/health/ready',
    tag: 'operator',
    summary: 'Readiness: stores reachable, peer module reachable, configuration loaded (no credentials; every check listed)',
    responses: { 200: { description: 'every check ok', schema: readinessSchema }, 503: { description: 'a check failed (ok false, with its reason)', schema: readinessSchema } },
  },
];

const peerErrors = {
  400: errorAnswer('malformed message'),
  401: errorAnswer('not sealed in an authenticated session, replayed, or altered (PEER_AUTH_REQUIRED, PEER_SESSION_UNKNOWN, PEER_AUTH_FAILED)'),
  404: errorAnswer('unknown stream'),
  409: errorAnswer('refused (closed stream, role clash, stale round)'),
};
const peerRoutes: RouteDoc[] = [
  {
    method: 'post',
    path: '/peer/hello',
    tag: 'peer',
    summary: 'Peer module: open an authenticated session (signed ML-KEM-768 handshake under the link credentials; not sealed itself)',
    responses: {
      200: { description: '{v, session, nonce, ciphertext, signature}' },
      400: errorAnswer('malformed hello'),
      401: errorAnswer('PEER_HANDSHAKE_REFUSED: wrong link, key or signature, stale time, replayed nonce'),
      429: errorAnswer('too many handshakes'),
    },
  },
  {
    method: 'get',
    path: '/sync',
    tag: 'peer',
    auth: 'peer',
    summary: 'Peer module: register a stream its application opened (original name kept)',
    query: syncQuerySchema,
    responses: { 200: { description: '{status: 0, joined}: joined is true when the application here had opened the same ID' }, ...peerErrors },
  },
  {
    method: 'post',
    path: '/start',
    tag: 'peer',
    auth: 'peer',
    summary: 'Peer module: keys were retrieved there (original name kept; the body may also be repr(Key_stream_ID))',
    body: { schema: startBodySchema, example: { Key_stream_ID: EXAMPLE_ID, available: 3 } },
    responses: { 200: { description: '{status: 0}' }, ...peerErrors },
  },
  {
    method: 'post',
    path: '/peer/open',
    tag: 'peer',
    auth: 'peer',
    summary: "Peer module: its application joined a stream registered from here",
    body: { schema: streamNoticeSchema, example: { keyStreamId: EXAMPLE_ID } },
    responses: { 200: { description: '{status: 0}' }, ...peerErrors },
  },
  {
    method: 'post',
    path: '/peer/close',
    tag: 'peer',
    auth: 'peer',
    summary: 'Peer module: the stream was closed there',
    body: { schema: streamNoticeSchema, example: { keyStreamId: EXAMPLE_ID } },
    responses: { 200: { description: '{status: 0}' }, ...peerErrors },
  },
  {
    method: 'post',
    path: '/peer/round',
    tag: 'peer',
    auth: 'peer',
    summary: 'Sender module: one simulator message of a key-exchange round (docs/peer-protocol.md)',
    body: {
      schema: roundMessageSchema,
      example: { keyStreamId: EXAMPLE_ID, roundId: 'b0c5e3a2-1f4d-4c1e-9d7a-2f6b8e9c0a11', roundSeq: 1795000000000000, firstIndex: 0, keyLengthBits: 256, maxKeys: 1, step: 'keys', payload: {} },
    },
    responses: { 200: { description: '{reply, stored?, available}' }, ...peerErrors },
  },
  {
    method: 'post',
    path: '/peer/confirm',
    tag: 'peer',
    auth: 'peer',
    summary: "Sender module: key confirmation of a finished round; the receiver commits it only when the sender's tag matches its keys",
    body: {
      schema: confirmMessageSchema,
      example: { keyStreamId: EXAMPLE_ID, roundId: 'b0c5e3a2-1f4d-4c1e-9d7a-2f6b8e9c0a11', firstIndex: 0, count: 1, seed: 'A'.repeat(43) + '=', tag: 'B'.repeat(43) + '=' },
    },
    responses: { 200: { description: '{match, tag?, nextIndex, available}' }, ...peerErrors },
  },
  {
    method: 'post',
    path: '/peer/counter',
    tag: 'peer',
    auth: 'peer',
    summary: "Sender module: the receiver's commit counter and max_key_count (nothing moves)",
    body: { schema: counterMessageSchema, example: { keyStreamId: EXAMPLE_ID } },
    responses: { 200: { description: '{nextIndex, available, maxKeyCount}' }, ...peerErrors },
  },
  {
    method: 'post',
    path: PEER_PING_PATH,
    tag: 'peer',
    auth: 'peer',
    summary: 'Peer module: readiness probe, sent only when no other peer message passed recently (changes nothing)',
    responses: { 200: { description: '{alive: true}' }, 401: peerErrors[401] },
  },
  {
    method: 'post',
    path: ETSI014_PEER_KEYS_PATH,
    tag: 'peer',
    auth: 'peer',
    summary: "Master SAE's module: key IDs issued by enc_keys and the stream indices behind them (docs/etsi014.md)",
    body: {
      schema: etsi014KeysNoticeSchema,
      example: { keyStreamId: EXAMPLE_ID, master_SAE_ID: 'sae-a', slave_SAE_ID: 'sae-b', master_KME_ID: 'kme-a', size: 256, keys: [], discard: [] },
    },
    responses: { 200: { description: '{stored}' }, ...peerErrors },
  },
  {
    method: 'post',
    path: ETSI014_PEER_READY_PATH,
    tag: 'peer',
    auth: 'peer',
    summary: 'Sender module: a stream of an SAE pair was registered there (docs/etsi014.md)',
    body: { schema: etsi014ReadyNoticeSchema, example: { keyStreamId: EXAMPLE_ID } },
    responses: { 200: { description: '{status: 0}' }, ...peerErrors },
  },
];

const ETSI014 = '/api/v1/keys';
const etsi014Errors = {
  400: { description: 'bad request', schema: etsi014ErrorSchema },
  401: { description: 'no or unknown SAE client certificate, or not the SAE the keys were issued to (no body)' },
  503: { description: 'server error', schema: etsi014ErrorSchema },
};
const etsi014Routes: RouteDoc[] = [
  {
    method: 'get',
    path: `${ETSI014}/:slave_SAE_ID/status`,
    tag: 'etsi014',
    auth: 'saeCertificate',
    summary: 'ETSI GS QKD 014 Get status',
    params: { slave_SAE_ID: etsi014SaeIdSchema },
    responses: { 200: { description: 'Status', schema: etsi014StatusSchema }, ...etsi014Errors },
  },
  {
    method: 'post',
    path: `${ETSI014}/:slave_SAE_ID/enc_keys`,
    tag: 'etsi014',
    auth: 'saeCertificate',
    summary: 'ETSI GS QKD 014 Get key (master SAE)',
    params: { slave_SAE_ID: etsi014SaeIdSchema },
    body: { schema: etsi014KeyRequestSchema, example: { number: 1, size: 256 }, optional: true },
    responses: { 200: { description: 'Key container', schema: etsi014KeyContainerSchema }, ...etsi014Errors },
  },
  {
    method: 'get',
    path: `${ETSI014}/:slave_SAE_ID/enc_keys`,
    tag: 'etsi014',
    auth: 'saeCertificate',
    summary: 'ETSI GS QKD 014 Get key, simple form (master SAE)',
    params: { slave_SAE_ID: etsi014SaeIdSchema },
    query: etsi014EncKeysQuerySchema,
    responses: { 200: { description: 'Key container', schema: etsi014KeyContainerSchema }, ...etsi014Errors },
  },
  {
    method: 'post',
    path: `${ETSI014}/:master_SAE_ID/dec_keys`,
    tag: 'etsi014',
    auth: 'saeCertificate',
    summary: 'ETSI GS QKD 014 Get key with key IDs (slave SAE)',
    params: { master_SAE_ID: etsi014SaeIdSchema },
    body: { schema: etsi014KeyIdsSchema, example: { key_IDs: [{ key_ID: EXAMPLE_ID }] } },
    responses: { 200: { description: 'Key container', schema: etsi014KeyContainerSchema }, ...etsi014Errors },
  },
  {
    method: 'get',
    path: `${ETSI014}/:master_SAE_ID/dec_keys`,
    tag: 'etsi014',
    auth: 'saeCertificate',
    summary: 'ETSI GS QKD 014 Get key with key IDs, simple form (slave SAE)',
    params: { master_SAE_ID: etsi014SaeIdSchema },
    query: etsi014DecKeysQuerySchema,
    responses: { 200: { description: 'Key container', schema: etsi014KeyContainerSchema }, ...etsi014Errors },
  },
];

const dashboardDenied = { 401: errorAnswer('module.operator_token is set and the request carries neither it as Bearer token nor as the Basic password (challenge: Basic realm="qkd-module operator")'), 403: errorAnswer('no operator token is set and the caller is not on this host') };
const dashboardRoutes: RouteDoc[] = [
  {
    method: 'get',
    path: DASHBOARD_PATH,
    tag: 'operator',
    auth: 'operator',
    summary: 'The live dashboard (an HTML page for a browser; docs/dashboard.md)',
    responses: { 200: { description: 'the page (text/html); it polls GET /dashboard/feed' }, ...dashboardDenied },
  },
  {
    method: 'get',
    path: `${DASHBOARD_PATH}/feed`,
    tag: 'operator',
    auth: 'operator',
    summary: "The dashboard's data: per open stream, a time series of the key buffer and key rates, the rounds (BB84: QBER, secret fraction), aborts and halts; the link parameters and the planned curve (never key material)",
    responses: { 200: { description: 'the feed', schema: dashboardFeedSchema }, ...dashboardDenied },
  },
  {
    method: 'get',
    path: `${DASHBOARD_PATH}/assets/:file`,
    tag: 'operator',
    auth: 'operator',
    summary: "The page's script and styles, and uPlot (vendored from npm at build time)",
    params: { file: z.enum(DASHBOARD_ASSETS) },
    responses: { 200: { description: 'the file' }, 404: errorAnswer('no such asset, or not installed (npm run build copies them)'), ...dashboardDenied },
  },
];

/** Every route of the module, as app.ts mounts them. */
export const ROUTES: readonly RouteDoc[] = [
  ...seedRoutes('/'),
  ...seedRoutes('/api/v1/qkdm/actions'),
  ...KEY_SERVER_V2_ROUTES,
  seedAvailableKeys('get', `${SEED_RENAMED_PREFIX}/available_keys`, "Committed keys not yet delivered (the key server's renamed-API call: ?handle=['<uuid>'])"),
  ...etsi004Routes,
  ...etsi014Routes,
  ...operatorRoutes,
  ...dashboardRoutes,
  ...peerRoutes,
];

// ------------------------------------------------------------------------------------ generator

/** Converts zod schemas to JSON Schema, collecting sub-schemas named with `.meta({ id })` as components. */
export class SchemaSet {
  readonly components: Record<string, JsonSchema> = {};

  /** JSON Schema (2020-12) of a zod schema; requests in 'input' mode, answers in 'output' mode. */
  convert(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
    const { $schema: _dialect, $defs, ...root } = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as JsonSchema;
    const defs = ($defs ?? {}) as Record<string, JsonSchema>;
    // A named schema whose input and output forms differ gets a second component, `<id>_<io>`.
    const names = new Map(Object.keys(defs).map((id) => [id, id]));
    for (let changed = true; changed; ) {
      changed = false;
      for (const [id, def] of Object.entries(defs)) {
        const existing = this.components[names.get(id)!];
        if (existing && !isDeepStrictEqual(existing, rewriteRefs(def, names))) {
          if (names.get(id) !== id) throw new Error(`openapi: two different schemas carry the id '${id}'`);
          names.set(id, `${id}_${io}`);
          changed = true;
        }
      }
    }
    for (const [id, def] of Object.entries(defs)) this.components[names.get(id)!] = rewriteRefs(def, names) as JsonSchema;
    return rewriteRefs(root, names) as JsonSchema;
  }

  /** The schema itself, or the component a bare `$ref` names. */
  resolve(schema: JsonSchema): JsonSchema {
    const ref = schema.$ref;
    if (typeof ref === 'string' && ref.startsWith('#/components/schemas/')) return this.components[ref.slice('#/components/schemas/'.length)] ?? schema;
    return schema;
  }
}

function rewriteRefs(value: unknown, names: ReadonlyMap<string, string>): unknown {
  if (Array.isArray(value)) return value.map((v) => rewriteRefs(v, names));
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => {
      if (k === '$ref' && typeof v === 'string' && v.startsWith('#/$defs/')) {
        const id = v.slice('#/$defs/'.length);
        return [k, `#/components/schemas/${names.get(id) ?? id}`];
      }
      return [k, rewriteRefs(v, names)];
    }),
  );
}

/** `/streams/:id` -> `/streams/{id}`. */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/** The list form of an object schema: its properties in `names` order. */
function listSchema(objectSchema: JsonSchema, positional: Positional): JsonSchema {
  const properties = (objectSchema.properties ?? {}) as Record<string, JsonSchema>;
  return {
    type: 'array',
    prefixItems: positional.names.map((n) => properties[n] ?? {}),
    minItems: positional.minItems,
    maxItems: positional.names.length,
    description: `the fields as a list: [${positional.names.join(', ')}]`,
  };
}

function pythonExample(example: Record<string, unknown>, positional: Positional): string {
  return toPyLiteral(positional.names.map((n) => (example[n] ?? null) as PyValue));
}

function requestBody(body: RequestBodyDoc, set: SchemaSet): JsonSchema {
  const objectSchema = set.convert(body.schema, 'input');
  if (!body.positional) {
    return { required: !body.optional, content: { 'application/json': { schema: objectSchema, example: body.example } } };
  }
  return {
    required: !body.optional,
    description: 'JSON (an object, or a list of the same fields in order), or the Python literal of the list as the original clients send it (no Content-Type).',
    content: {
      'application/json': { schema: { oneOf: [objectSchema, listSchema(objectSchema, body.positional)] }, example: body.example },
      'text/plain': {
        schema: { type: 'string', description: `Python literal: [${body.positional.names.join(', ')}] (None for null)` },
        example: pythonExample(body.example, body.positional),
      },
    },
  };
}

function answer(doc: AnswerDoc, set: SchemaSet): JsonSchema {
  if (!doc.schema) return { description: doc.description };
  const objectSchema = set.convert(doc.schema, 'output');
  if (!doc.positional) return { description: doc.description, content: { 'application/json': { schema: objectSchema } } };
  const python = doc.python ?? `[${doc.positional.names.join(', ')}]`;
  return {
    description: `${doc.description}. Object-shaped JSON requests get the object, list-shaped ones the list; Python requests a Python literal (${python}).`,
    ...(doc.failure
      ? {
          headers: {
            [SEED_MESSAGE_HEADER]: { description: 'why the call failed (names the field or the error; never request content or key material)', schema: { type: 'string' } },
            [SEED_ERROR_HEADER]: { description: "the error catalogue's code (docs/api.md), e.g. BAD_REQUEST, UNKNOWN_STREAM; absent when get_key found no key", schema: { type: 'string' } },
          },
        }
      : {}),
    content: {
      'application/json': { schema: { oneOf: [objectSchema, listSchema(objectSchema, doc.positional)] } },
      'text/plain': { schema: { type: 'string', description: `Python literal: ${python} (keys as bytes literals)` } },
    },
  };
}

function parameters(route: RouteDoc, set: SchemaSet): JsonSchema[] {
  const out: JsonSchema[] = [];
  for (const [name, schema] of Object.entries(route.params ?? {})) out.push({ name, in: 'path', required: true, schema: set.convert(schema, 'input') });
  if (route.query) {
    const q = set.resolve(set.convert(route.query, 'input'));
    const required = new Set((q.required ?? []) as string[]);
    for (const [name, schema] of Object.entries((q.properties ?? {}) as Record<string, JsonSchema>)) {
      out.push({ name, in: 'query', required: required.has(name), schema });
    }
  }
  return out;
}

const SECURITY: Readonly<Record<NonNullable<RouteDoc['auth']>, JsonSchema[]>> = {
  apiToken: [{}, { apiToken: [] }],
  saeCertificate: [{ saeCertificate: [] }],
  peer: [{ peerSession: [] }],
  operator: [{}, { operatorToken: [] }, { operatorBasic: [] }],
};

/**
 * Two routes on one method and path (the seed API and the key server 2.0 interface under
 * /api/v1/qkdm/actions, told apart by the body): one operation whose JSON bodies and answers are the
 * `oneOf` of both. `x-body-branches` maps each tag to the index of its object schema in the body's `oneOf`.
 */
function mergeOperations(first: JsonSchema, second: JsonSchema, secondTag: RouteTag): JsonSchema {
  const jsonOf = (doc: unknown): JsonSchema | undefined => ((doc as JsonSchema | undefined)?.content as Record<string, JsonSchema> | undefined)?.['application/json'];
  const branches = (schema: JsonSchema | undefined): JsonSchema[] => (schema === undefined ? [] : Array.isArray(schema.oneOf) ? (schema.oneOf as JsonSchema[]) : [schema]);
  const merged: JsonSchema = {
    ...first,
    summary: `${String(first.summary)} | ${String(second.summary)}`,
    description: [first.description, second.description].filter(Boolean).join(' | '),
    tags: [...(first.tags as string[]), ...(second.tags as string[])],
  };
  const firstBody = jsonOf(first.requestBody);
  const secondBody = jsonOf(second.requestBody);
  if (firstBody && secondBody) {
    const oneOf = branches(firstBody.schema as JsonSchema);
    const at = oneOf.length;
    const body = first.requestBody as JsonSchema;
    merged.requestBody = {
      ...body,
      content: { ...(body.content as object), 'application/json': { ...firstBody, schema: { oneOf: [...oneOf, ...branches(secondBody.schema as JsonSchema)] } } },
    };
    merged['x-body-branches'] = { ...((first['x-body-branches'] as object | undefined) ?? { [String((first.tags as string[])[0])]: 0 }), [secondTag]: at };
  }
  const responses: Record<string, JsonSchema> = { ...(first.responses as Record<string, JsonSchema>) };
  for (const [status, doc] of Object.entries(second.responses as Record<string, JsonSchema>)) {
    const mine = responses[status];
    if (!mine) {
      responses[status] = doc;
      continue;
    }
    const a = jsonOf(mine);
    const b = jsonOf(doc);
    responses[status] = {
      ...mine,
      description: `${String(mine.description)} | ${String(doc.description)}`,
      ...(a && b ? { content: { ...(mine.content as object), 'application/json': { schema: { oneOf: [...branches(a.schema as JsonSchema), ...branches(b.schema as JsonSchema)] } } } } : {}),
    };
  }
  merged.responses = responses;
  return merged;
}

/** The OpenAPI 3.1 document of `routes`. */
export function buildOpenApiDocument(routes: readonly RouteDoc[] = ROUTES): JsonSchema {
  const set = new SchemaSet();
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const route of routes) {
    const operation: JsonSchema = {
      operationId: `${route.method}${openApiPath(route.path).replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      tags: [route.tag],
    };
    const params = parameters(route, set);
    if (params.length > 0) operation.parameters = params;
    if (route.body) operation.requestBody = requestBody(route.body, set);
    operation.responses = Object.fromEntries(Object.entries(route.responses).map(([status, doc]) => [status, answer(doc, set)]));
    operation.security = route.auth ? SECURITY[route.auth] : []; // []: no credentials needed
    const item = (paths[openApiPath(route.path)] ??= {});
    item[route.method] = item[route.method] ? mergeOperations(item[route.method]!, operation, route.tag) : operation;
  }
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'QKD module',
      version: '0.1.0',
      description:
        'Key delivery over simulated QKD links: the original-compatible seed API (Python literal or JSON), ETSI GS QKD 004 v2.1.1 (JSON) and ETSI GS QKD 014 v1.1.1, operator routes and the module-to-module peer channel. See docs/api.md.',
    },
    tags: [
      { name: 'seed', description: "The original module's API (root and /api/v1/qkdm/actions)" },
      { name: 'keyserver', description: 'The key server 2.0 interface (/api/v1/qkdm/actions; JSON objects without the seed API\'s fields)' },
      { name: 'etsi004', description: 'ETSI GS QKD 004 v2.1.1 application interface, JSON binding' },
      { name: 'etsi014', description: 'ETSI GS QKD 014 v1.1.1 REST key delivery' },
      { name: 'operator', description: 'Health and stream state (never key material)' },
      { name: 'peer', description: 'Module-to-module messages (not for applications; docs/peer-protocol.md)' },
    ],
    paths,
    components: {
      schemas: set.components,
      securitySchemes: {
        apiToken: { type: 'http', scheme: 'bearer', description: 'module.api_token, required by the seed and ETSI 004 routes when set' },
        saeCertificate: { type: 'mutualTLS', description: "the SAE's TLS client certificate names the calling SAE" },
        operatorToken: { type: 'http', scheme: 'bearer', description: 'module.operator_token, required by the operator routes when set (else they serve callers on this host only)' },
        operatorBasic: { type: 'http', scheme: 'basic', description: 'module.operator_token as the password, any user name (what a browser sends to /dashboard after its Basic challenge)' },
        peerSession: {
          type: 'apiKey',
          in: 'header',
          name: 'qkdm-session',
          description:
            'a session opened with POST /peer/hello (SLH-DSA signed ML-KEM handshake under the link credentials); every peer message is sealed with AES-256-GCM under it (qkdm-session, qkdm-seq, qkdm-tag headers; docs/peer-protocol.md). Mutual TLS (peer_tls) may be added underneath.',
        },
      },
    },
  };
}
