/**
 * Request and answer schemas of the key server 2.0 interface (routes/keyServerV2.ts), and their
 * entries in the OpenAPI registry. Field names, paths and status numbers are the 2.0 generation's
 * (ignaziopedone/qkd-module, qkdm_src/qkdm_server.py and api.py, as the key server in
 * ignaziopedone/qkd-keyserver qks_core/api.py calls them); docs/api.md, "Key server 2.0 interface".
 */
import { z } from 'zod';
import type { RouteDoc } from './openapi.js';
import { keyStreamIdSchema } from './seedSchemas.js';

/** Where the interface lives (shared with the first generation's routes: see routes/keyServerV2.ts). */
export const KEY_SERVER_V2_PREFIX = '/api/v1/qkdm/actions';

/** Index lists (get_key, check_id) hold at most this many indexes. */
export const MAX_V2_INDEXES = 1024;

/**
 * The 2.0 status numbers. 0-8 are ETSI GS QKD 004's; 9 and above are the 2.0 module's own (not ETSI).
 * 13 (registration at the key server refused) and 14 (OIDC login failed) belong to the original's own
 * registration at the key server, which this module does not perform (docs/api.md): never answered.
 */
export const V2Status = {
  SUCCESSFUL: 0,
  PEER_NOT_CONNECTED: 1,
  INSUFFICIENT_KEY: 2,
  PEER_APPLICATION_NOT_CONNECTED: 3,
  NO_QKD_CONNECTION: 4,
  KSID_IN_USE: 5,
  TIMEOUT: 6,
  QOS_NOT_MET: 7,
  METADATA_TOO_SMALL: 8,
  KSID_NOT_FOUND: 9,
  CHECK_ID_FAILED: 10,
  COMPONENT_UNAVAILABLE: 11,
  ALREADY_ATTACHED: 12,
} as const;
export type V2StatusCode = (typeof V2Status)[keyof typeof V2Status];

/** A key server's (or the peer key server's) ID: the 2.0 key server's `qks.id`. */
const keyServerId = (what: string) =>
  z
    .string({ error: `must be a string (${what})` })
    .min(1, { error: 'must not be empty' })
    .max(255, { error: 'must be at most 255 characters' })
    .regex(/^[^\u0000-\u001f\u007f]*$/, { error: 'must not contain control characters' });

const indexList = z
  .array(z.number({ error: 'must be integers' }).int({ error: 'must be integers' }).min(0, { error: 'must be 0 or more' }).max(Number.MAX_SAFE_INTEGER), { error: 'must be a list of integers' })
  .max(MAX_V2_INDEXES, { error: `must hold at most ${MAX_V2_INDEXES} indexes` });

export const v2AttachSchema = z.object({
  qks_src_IP: z.string({ error: 'must be a string (the key server host)' }).min(1, { error: 'must not be empty' }).max(253, { error: 'must be at most 253 characters' }),
  qks_src_port: z.number({ error: 'must be an integer port' }).int({ error: 'must be an integer port' }).min(0, { error: 'must be between 0 and 65535' }).max(65535, { error: 'must be between 0 and 65535' }),
  qks_src_ID: keyServerId("the attaching key server's ID"),
  qks_dest_ID: keyServerId("the peer key server's ID"),
});

export const v2OpenConnectSchema = z.object({
  source: keyServerId('the key server that opens the stream'),
  destination: keyServerId('the key server at the other end'),
  key_stream_ID: keyStreamIdSchema.nullable().optional(),
  /** Accepted and not used, as in the original. */
  qos_parameters: z.unknown().optional(),
});

export const v2GetKeySchema = z.object({
  key_stream_ID: keyStreamIdSchema,
  indexes: indexList,
  /** Accepted and not used, as in the original. */
  metadata: z.unknown().optional(),
});

export const v2CheckIdSchema = z.object({
  key_stream_ID: keyStreamIdSchema,
  indexes: indexList,
});

export const v2CloseSchema = z.object({ key_stream_ID: keyStreamIdSchema });

export const v2GetIdQuerySchema = z.object({
  count: z
    .string()
    .regex(/^[+-]?\d{1,15}$/)
    .optional()
    .describe('absent: available_indexes is the count; -1: every index; n >= 0: the first n; other negative n: all but the last |n| (as a Python slice)'),
});

const statusSchema = z.number().int().describe('0-8 as ETSI GS QKD 004; 9 KSID not found, 10 check_id failed, 11 a store is unavailable, 12 already attached to another key server (not ETSI)');

export const v2FailureSchema = z.object({ status: statusSchema, message: z.string() });
export const v2StatusAnswerSchema = z.object({ status: statusSchema, message: z.string() });
export const v2BadRequestSchema = z.object({ message: z.string().describe('names the field; never repeats the request') });
export const v2OpenConnectAnswerSchema = z.object({ status: z.literal(0), key_stream_ID: z.string() });
export const v2GetKeyAnswerSchema = z.object({
  status: z.literal(0),
  indexes: z.array(z.number().int()),
  keys: z.array(z.string().describe('base64')),
});
export const v2GetIdAnswerSchema = z.object({
  status: z.literal(0),
  available_indexes: z.union([z.number().int(), z.array(z.number().int())]).describe('without count: how many; with count: the indexes'),
});

const EXAMPLE_ID = '6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab';
const badRequest = { description: 'malformed request: {message} naming the field', schema: v2BadRequestSchema };
const failure = (what: string) => ({ description: `${what}: {status, message}`, schema: v2FailureSchema });

/** The interface's entries in the OpenAPI registry (openapi.ts); open_connect, get_key and close share their path with the seed API. */
export const KEY_SERVER_V2_ROUTES: readonly RouteDoc[] = [
  {
    method: 'post',
    path: `${KEY_SERVER_V2_PREFIX}/attach`,
    tag: 'keyserver',
    auth: 'apiToken',
    summary: 'Key server 2.0 attach_to_server: bind this module to a key server and its peer key server',
    description: 'Binds the calling application identity to qks_src_ID (and the peer key server qks_dest_ID); open_connect then accepts only these two IDs. Again with the same IDs: status 0; with others: 503 status 12.',
    body: { schema: v2AttachSchema, example: { qks_src_IP: '127.0.0.1', qks_src_port: 4000, qks_src_ID: 'qks1', qks_dest_ID: 'qks2' } },
    responses: { 200: { description: 'status 0', schema: v2StatusAnswerSchema }, 400: badRequest, 503: failure('status 12: attached to other key servers') },
  },
  {
    method: 'post',
    path: `${KEY_SERVER_V2_PREFIX}/open_connect`,
    tag: 'keyserver',
    auth: 'apiToken',
    summary: 'Key server 2.0 open_connect: source and destination are key-server IDs; the peer module is keyserver.peer_module',
    description: 'A JSON object without the first generation\'s qos and Key_stream_ID fields. key_stream_ID null or absent: allocate one and register it at the peer module; given: join the stream the peer registered (same source and destination) or register it.',
    body: { schema: v2OpenConnectSchema, example: { source: 'qks1', destination: 'qks2', key_stream_ID: EXAMPLE_ID, qos_parameters: {} } },
    responses: {
      200: { description: 'status 0 and the key_stream_ID', schema: v2OpenConnectAnswerSchema },
      400: badRequest,
      503: failure('status 4 (peer module unreachable or not configured, or key servers other than the attached ones), 5 (key_stream_ID in use or bound to other key servers), 7 (the two modules\' keyserver.key_size differ), 11'),
    },
  },
  {
    method: 'get',
    path: `${KEY_SERVER_V2_PREFIX}/get_id/:key_stream_ID`,
    tag: 'keyserver',
    auth: 'apiToken',
    summary: 'Key server 2.0 get_id: the indexes of the keys this end holds (or how many)',
    params: { key_stream_ID: keyStreamIdSchema },
    query: v2GetIdQuerySchema,
    responses: { 200: { description: 'status 0 and available_indexes', schema: v2GetIdAnswerSchema }, 400: badRequest, 503: failure('status 9: unknown key_stream_ID') },
  },
  {
    method: 'post',
    path: `${KEY_SERVER_V2_PREFIX}/check_id`,
    tag: 'keyserver',
    auth: 'apiToken',
    summary: 'Key server 2.0 check_id: does this end hold every one of these indexes?',
    body: { schema: v2CheckIdSchema, example: { key_stream_ID: EXAMPLE_ID, indexes: [0, 1] } },
    responses: { 200: { description: 'status 0', schema: v2StatusAnswerSchema }, 400: badRequest, 503: failure('status 10: some index is not held here, or the stream is unknown') },
  },
  {
    method: 'post',
    path: `${KEY_SERVER_V2_PREFIX}/get_key`,
    tag: 'keyserver',
    auth: 'apiToken',
    summary: 'Key server 2.0 get_key: the keys at a list of indexes, all or none',
    description: 'A JSON object with key_stream_ID or indexes and without the first generation\'s Key_stream_ID and index. Never waits.',
    body: { schema: v2GetKeySchema, example: { key_stream_ID: EXAMPLE_ID, indexes: [0, 1] } },
    responses: {
      200: { description: 'status 0, the indexes and the keys (base64) in the same order', schema: v2GetKeyAnswerSchema },
      400: badRequest,
      503: failure('status 2 (some index not available: nothing new taken), 9 (unknown key_stream_ID), 11'),
    },
  },
  {
    method: 'post',
    path: `${KEY_SERVER_V2_PREFIX}/close`,
    tag: 'keyserver',
    auth: 'apiToken',
    summary: "Key server 2.0 close: stop the stream at both ends; this end's unused keys are erased",
    description: 'A JSON object with key_stream_ID and without the first generation\'s Key_stream_ID.',
    body: { schema: v2CloseSchema, example: { key_stream_ID: EXAMPLE_ID } },
    responses: { 200: { description: 'status 0 (also when already closed)', schema: v2StatusAnswerSchema }, 400: badRequest, 503: failure('status 9: unknown key_stream_ID') },
  },
];
