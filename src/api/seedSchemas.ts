/**
 * Request schemas of the seed (original-compatible) API: one zod object schema per route, the
 * single source for validation, types, messages and the OpenAPI document. Array bodies map onto
 * them by position. Answer schemas (for the OpenAPI document) follow the requests.
 */
import { z } from 'zod';
import { MAX_KEY_LENGTH_BITS, MAX_TIMEOUT_MS } from '../core/types.js';

// Both cases spelled out (no `i` flag): JSON Schema patterns carry no flags, and the OpenAPI document must not be stricter than the route.
const UUID_SOURCE = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';
const UUID = new RegExp(`^${UUID_SOURCE}$`);

export const keyStreamIdSchema = z
  .string({ error: 'must be a UUID string' })
  .regex(UUID, { error: 'must be a UUID like 123e4567-e89b-12d3-a456-426614174000' })
  .transform((s) => s.toLowerCase());

export const qosSchema = z.looseObject({
  length: z
    .number({ error: 'must be a number of bits' })
    .int({ error: 'must be an integer number of bits' })
    .positive({ error: 'must be positive' })
    .multipleOf(8, { error: 'must be a multiple of 8 (bits)' })
    .max(MAX_KEY_LENGTH_BITS, { error: `must be at most ${MAX_KEY_LENGTH_BITS} bits` }),
  timeout: z
    .number({ error: 'must be a number of milliseconds' })
    .int({ error: 'must be an integer number of milliseconds' })
    .min(0, { error: 'must not be negative' })
    .max(MAX_TIMEOUT_MS, { error: `must be at most ${MAX_TIMEOUT_MS} ms` }),
});

export const openConnectNames = ['source', 'destination', 'qos', 'Key_stream_ID'] as const;
export const openConnectSchema = z.object({
  source: z.string({ error: 'must be a string or None' }).max(255, { error: 'must be at most 255 characters' }).nullable().optional(),
  destination: z.string({ error: 'must be the peer module as host:port' }).min(1, { error: 'must not be empty' }).max(255, { error: 'must be at most 255 characters' }),
  qos: qosSchema,
  Key_stream_ID: keyStreamIdSchema.nullable().optional(),
});

export const getKeyNames = ['Key_stream_ID', 'index', 'metadata'] as const;
export const getKeySchema = z.object({
  Key_stream_ID: keyStreamIdSchema,
  index: z
    .number({ error: 'must be an integer (-1 for the next available key)' })
    .int({ error: 'must be an integer (-1 for the next available key)' })
    .min(-1, { error: 'must be -1 or a key index >= 0' })
    .max(Number.MAX_SAFE_INTEGER),
  metadata: z.unknown().optional(),
});

export const closeNames = ['Key_stream_ID'] as const;
export const closeSchema = z.object({ Key_stream_ID: keyStreamIdSchema });

export const availableKeysNames = ['Key_stream_ID'] as const;
/** `[None]` (what a key server holding no handle sends) counts every stream of the caller, as no body does. */
export const availableKeysSchema = z.object({ Key_stream_ID: keyStreamIdSchema.nullable().optional() });

/**
 * The `handle` query parameter of GET available_keys: a Key_stream_ID, or the Python literal of a
 * one-element list, as the key server of the renamed API sends it (`?handle=` + `repr([handle])`):
 * `['<uuid>']`, `["<uuid>"]`, or `[None]` (no handle: every stream of the caller). Matched by one
 * pattern, never evaluated.
 */
const HANDLE_PARAM = new RegExp(`^(?:(${UUID_SOURCE})|\\[(?:'(${UUID_SOURCE})'|"(${UUID_SOURCE})"|None)\\])$`);
export const handleParamSchema = z
  .string({ error: 'must be a Key_stream_ID' })
  .regex(HANDLE_PARAM, { error: "must be a UUID, or a one-element Python list of one (['<uuid>'] or [None])" })
  .transform((s) => {
    const m = HANDLE_PARAM.exec(s)!;
    const id = m[1] ?? m[2] ?? m[3];
    return id === undefined ? undefined : id.toLowerCase();
  });
export const availableKeysQuerySchema = z.object({ handle: handleParamSchema.optional() });

// ------------------------------------------------------------------ answers
// JSON object shape; a list-shaped JSON request gets the same values as a list in this order. A JSON
// failure is the route's usual answer followed by `message`. A Python-literal request gets the
// original's answer, of the original's arity: never the message (it is in the X-QKDM-Message header).

const seedStatusSchema = z
  .number()
  .int()
  .describe('seed status: 0 SUCCESSFUL, 1 INSUFFICIENT_KEY_AVAILABLE, 2 NO_QKD_CONNECTION_AVAILABLE, 3 HANDLE_IN_USE');
const failureMessageSchema = z.string().optional().describe('JSON failures only: what went wrong, naming the field for a bad request (Python-literal answers carry it in the X-QKDM-Message header instead)');

export const openConnectAnswerNames = ['Key_stream_ID', 'status', 'message'] as const;
export const openConnectAnswerSchema = z.object({
  Key_stream_ID: z.string().nullable(),
  status: seedStatusSchema,
  message: failureMessageSchema,
});

export const getKeyAnswerNames = ['key', 'index', 'status', 'message'] as const;
export const getKeyAnswerSchema = z.object({
  key: z.string().nullable().describe('the key: base64 in JSON, a bytes literal in Python answers'),
  index: z.number().int(),
  status: seedStatusSchema,
  message: failureMessageSchema,
});

/** A successful list-shaped close answers the bare status (`0`); a failure `[status, message]` (JSON) or the bare status (Python literal). */
export const closeAnswerNames = ['status', 'message'] as const;
export const closeAnswerSchema = z.object({ status: seedStatusSchema, message: failureMessageSchema });

/** A list-shaped request gets `[count]`; a failure `[0, message]` (JSON) or `[0]` (Python literal). */
export const availableKeysAnswerNames = ['available_keys', 'message'] as const;
export const availableKeysAnswerSchema = z.object({
  available_keys: z.number().int().min(0).describe('committed keys not yet delivered (one stream, or all open streams)'),
  status: seedStatusSchema.optional().describe('failures only'),
  message: failureMessageSchema,
});
