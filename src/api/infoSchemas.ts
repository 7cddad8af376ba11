/**
 * Answer schemas of the operator routes (routes/info.ts) and the `{code, message}` error body the
 * operator, peer and ETSI 004 routes answer with. Used for the OpenAPI document; the type checks at
 * the end keep them in step with the core's types.
 */
import { z } from 'zod';
import type { ErrorCode } from '../core/errors.js';
import type { StreamSummary } from '../core/KeyStreamManager.js';
import type { RoundRecord } from '../exchange/ExchangeService.js';
import type { ReadinessReport } from '../health/readiness.js';

export const errorBodySchema = z.object({
  code: z.string().describe('an error code of the catalogue (docs/api.md), or NOT_FOUND'),
  message: z.string().describe('what went wrong, naming the field for a bad request'),
});

export const healthSchema = z.object({
  status: z.literal('ok'),
  sender: z.union([z.literal(0), z.literal(1)]).describe('module.sender: 1 source, 0 detector'),
  sim: z.string().describe('simulator name'),
  streams: z.number().int().min(0).describe('key streams known here'),
});

export const liveSchema = z.object({ status: z.literal('live') });

const readinessCheckSchema = z.object({ ok: z.boolean(), reason: z.string().describe('short; never a host, stream or credential') });
export const readinessSchema = z.object({
  status: z.enum(['ready', 'not_ready']),
  checks: z
    .object({
      config: readinessCheckSchema.describe('the configuration was loaded and validated at start-up'),
      handle_store: readinessCheckSchema.describe('the handle store answered a probe query in time'),
      key_store: readinessCheckSchema.describe('the key store answered a probe query in time'),
      peer: readinessCheckSchema.describe('every peer module in use answered recently (its traffic, else a probe); ok when none is known yet'),
    })
    .describe('every check, ok or not, with a short reason'),
});

export const streamSummarySchema = z.object({
  keyStreamId: z.string(),
  source: z.string(),
  destination: z.string(),
  peer: z.string().describe('base URL of the peer module'),
  length: z.number().int().describe('key size, bits'),
  timeout: z.number().int().describe('QoS timeout, ms'),
  ttl: z.number().int().describe('QoS TTL, s (0: none)'),
  localOpen: z.boolean(),
  peerOpen: z.boolean(),
  closed: z.boolean(),
  nextIndex: z.number().int().describe('commit counter: keys below it are final here'),
  available: z.number().int().describe('committed keys not yet delivered here'),
  halted: z
    .object({ reason: z.string(), since: z.string() })
    .nullable()
    .describe('why the exchange is halted (key confirmation failed, counters out of step), or null; it resumes when both ends confirm a round again'),
  exchangeRunning: z.boolean(),
});

export const streamsSchema = z.object({ streams: z.array(streamSummarySchema) });

export const roundRecordSchema = z.object({
  firstIndex: z.number().int(),
  keys: z.number().int(),
  at: z.string().describe('ISO 8601 time the round was recorded'),
  stats: z.record(z.string(), z.union([z.number(), z.string(), z.boolean(), z.null()])).optional().describe('simulator statistics (never key material)'),
});

export const streamStatsSchema = z.object({
  keyStreamId: z.string(),
  rounds: z.array(roundRecordSchema),
  totals: z
    .record(z.string(), z.union([z.number(), z.string(), z.boolean(), z.null()]))
    .optional()
    .describe('the simulator\'s totals for the stream since this module started (bb84: EC and PA blocks, pulses, bits, keys); never key material'),
});

// Compile-time checks: these schemas describe exactly the core's types (a field added on either side fails the build).
type Same<T, S extends z.ZodType> = [T] extends [z.infer<S>] ? ([z.infer<S>] extends [T] ? true : never) : never;
type Fits<T, S extends z.ZodType> = [T] extends [z.infer<S>] ? true : never;
export const schemaChecks: [
  Same<StreamSummary & { exchangeRunning: boolean }, typeof streamSummarySchema>,
  Same<RoundRecord, typeof roundRecordSchema>,
  Fits<{ code: ErrorCode; message: string }, typeof errorBodySchema>,
  Same<ReadinessReport, typeof readinessSchema>,
] = [true, true, true, true];
