/**
 * The dashboard's JSON feed (GET /dashboard/feed): one schema for the OpenAPI document and the types the sampler
 * builds. Counts, rates, QBER, reasons and link parameters only: never key material, never a key's bits or hash.
 * Times are milliseconds since the epoch (the page's charts take them as they are).
 */
import { z } from 'zod';

const count = () => z.number().int().min(0);
const nullableNumber = (what: string) => z.number().nullable().describe(what);

export const blockSchema = z.object({
  at: z.number().describe('when the round was recorded, ms since the epoch'),
  firstIndex: count().describe('index of the first key of the round'),
  keys: count().describe('keys the round produced (0: aborted or no secret key)'),
  pulses: nullableNumber('BB84: pulses sent in the block'),
  siftedBits: nullableNumber('BB84: bits left after sifting'),
  qber: nullableNumber('BB84: QBER measured on the sampled bits (0..1)'),
  qberUpper: nullableNumber('BB84: upper confidence bound on the QBER, the value the threshold is checked against (0..1)'),
  secretBits: nullableNumber('BB84: secret bits privacy amplification may output (finite-key length)'),
  secretFraction: nullableNumber('BB84: secret bits per sifted bit (secretBits / siftedBits)'),
  secretBitsPerPulse: nullableNumber('BB84: secret bits per pulse sent (secretBits / pulses)'),
  aborted: z.boolean().describe('the block ended without keys (see reason)'),
  reason: z.string().nullable().describe('why the block ended without keys (qber-too-high, too-few-bits, no-secret-key, verify-mismatch, ...), or null'),
});

export const eventSchema = z.object({
  at: z.number().describe('ms since the epoch'),
  kind: z.enum(['abort', 'halt']).describe('abort: a block ended without keys; halt: the exchange of the stream stopped (key confirmation failed, counters out of step)'),
  reason: z.string(),
});

export const seriesSchema = z
  .object({
    t: z.array(z.number()).describe('sample times, ms since the epoch'),
    available: z.array(count()).describe('deliverable keys at each sample'),
    producedKeysPerSecond: z.array(z.number().nullable()).describe('keys committed per second since the previous sample (null: first sample or a gap)'),
    deliveredKeysPerSecond: z.array(z.number().nullable()).describe('keys taken here (delivered, or erased by the TTL) per second since the previous sample'),
  })
  .describe('one sample per sample interval over the window, oldest first');

export const streamFeedSchema = z.object({
  keyStreamId: z.string(),
  source: z.string(),
  destination: z.string(),
  keyLengthBits: count(),
  localOpen: z.boolean(),
  peerOpen: z.boolean(),
  exchangeRunning: z.boolean(),
  halted: z.object({ reason: z.string(), since: z.string() }).nullable(),
  capacity: count().describe('module.max_key_count: deliverable keys a stream holds at most'),
  available: count().describe('deliverable keys now (as GET /streams/:id)'),
  produced: count().describe('keys committed since the stream opened (nextIndex)'),
  taken: count().describe('committed keys no longer deliverable here: delivered, or erased by the TTL (produced - available)'),
  producedKeysPerSecond: nullableNumber('mean over the last minute of samples (null: fewer than two samples)'),
  deliveredKeysPerSecond: nullableNumber('mean over the last minute of samples'),
  blocks: count().describe('rounds in the window'),
  aborts: count().describe('rounds in the window that ended without keys'),
  lastBlock: blockSchema.nullable(),
  measuredSecretBitsPerPulse: nullableNumber('BB84: secret bits per pulse over the blocks in the window (sum of secretBits / sum of pulses)'),
  series: seriesSchema,
  rounds: z.array(blockSchema).describe('rounds in the window, oldest first'),
  events: z.array(eventSchema).describe('aborts and halts in the window, oldest first'),
});

export const linkParameterSchema = z.object({
  key: z.string().describe('the configuration field, e.g. simulator.channel.length_km ("derived: ..." for a value computed from the others)'),
  label: z.string(),
  value: z.union([z.number(), z.string()]),
  unit: z.string(),
});

export const plannedCurveSchema = z.object({
  analysis: z.string().describe('the analysis the curve comes from'),
  distanceKm: z.number().describe('the configured fibre length, where the measured points sit'),
  plannedSecretBitsPerPulse: z.number().describe('the curve at the configured fibre length'),
  points: z.array(z.object({ distanceKm: z.number(), secretBitsPerPulse: z.number() })),
});

export const dashboardFeedSchema = z.object({
  generatedAt: z.number().describe('ms since the epoch'),
  role: z.enum(['sender', 'receiver']).describe('module.sender 1 (Alice) or 0 (Bob)'),
  simulator: z.string(),
  sampleIntervalMs: count(),
  windowMs: count(),
  capacity: count().describe('module.max_key_count'),
  link: z.array(linkParameterSchema).describe('link parameters from the configuration (empty when the module was built without it)'),
  plannedCurve: plannedCurveSchema.nullable().describe('BB84: planned secret bits per pulse versus distance for the configured link'),
  streams: z.array(streamFeedSchema).describe('open streams (closed ones are dropped), at most MAX_SAMPLED_STREAMS'),
  streamsNotShown: count().describe('open streams beyond the limit, not sampled'),
  closedStreams: count().describe('closed streams this module still keeps (not shown)'),
});

export type Block = z.infer<typeof blockSchema>;
export type StreamEvent = z.infer<typeof eventSchema>;
export type StreamFeed = z.infer<typeof streamFeedSchema>;
export type LinkParameter = z.infer<typeof linkParameterSchema>;
export type PlannedCurve = z.infer<typeof plannedCurveSchema>;
export type DashboardFeed = z.infer<typeof dashboardFeedSchema>;
