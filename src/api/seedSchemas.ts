/**
 * Request schemas of the seed (original-compatible) API: one zod object schema per route, the
 * single source for validation, types, messages and the OpenAPI document. Array bodies map onto
 * them by position. Answer schemas (for the OpenAPI document) follow the requests.
 */
import { z } from 'zod';
import { MAX_KEY_LENGTH_BITS, MAX_TIMEOUT_MS } from '../core/types.js';

// Both cases spelled out (no `i` flag): JSON Schema patterns carry no flags, and the OpenAPI document must not be stricter than the route.
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

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
export const availableKeysSchema = z.object({ Key_stream_ID: keyStreamIdSchema.optional() });

// ------------------------------------------------------------------ answers
// JSON object shape; a list-shaped request gets the same values as a list in this order (a Python
// literal for Python requests). A failure is the route's usual answer followed by `message`.

const seedStatusSchema = z
  .number()
  .int()
  .describe('seed status: 0 SUCCESSFUL, 1 INSUFFICIENT_KEY_AVAILABLE, 2 NO_QKD_CONNECTION_AVAILABLE, 3 HANDLE_IN_USE');
const failureMessageSchema = z.string().optional().describe('present on failure only: what went wrong, naming the field for a bad request');

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

/** A successful list-shaped close answers the bare status (`0`); a failure `[status, message]`. */
export const closeAnswerNames = ['status', 'message'] as const;
export const closeAnswerSchema = z.object({ status: seedStatusSchema, message: failureMessageSchema });

/** A list-shaped request gets `[count]`; a failure `[0, message]`. */
export const availableKeysAnswerNames = ['available_keys', 'message'] as const;
export const availableKeysAnswerSchema = z.object({
  available_keys: z.number().int().min(0).describe('committed keys not yet delivered (one stream, or all open streams)'),
  status: seedStatusSchema.optional().describe('failures only'),
  message: failureMessageSchema,
});
