/**
 * Request schemas of the seed (original-compatible) API: one zod object schema per route, the
 * single source for validation, types and messages. Array bodies map onto them by position.
 */
import { z } from 'zod';
import { MAX_KEY_LENGTH_BITS, MAX_TIMEOUT_MS } from '../core/types.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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
