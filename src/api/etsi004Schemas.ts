/**
 * ETSI GS QKD 004 v2.1.1, JSON binding: request and answer schemas with the standard's field names.
 * The single source for validation, the TypeScript types and the OpenAPI document (docs/api.md).
 */
import { z } from 'zod';
import { normalizePeerAddress } from '../exchange/peerProtocol.js';
import { keyStreamIdSchema } from './seedSchemas.js';

/** The standard's integers are uint32. */
export const UINT32_MAX = 4_294_967_295;
/** The only Metadata_mimetype this module produces. */
export const METADATA_MIMETYPE = 'application/json';

const uint32 = (unit: string) =>
  z
    .number({ error: `must be ${unit} (an unsigned 32-bit integer)` })
    .int({ error: 'must be an integer' })
    .min(0, { error: 'must not be negative' })
    .max(UINT32_MAX, { error: `must be at most ${UINT32_MAX} (uint32)` });

/** An object schema whose wrong-type message lists the fields it expects; other messages stay zod's (they name the key). */
const fieldsObject = <T extends z.ZodRawShape>(shape: T) =>
  z.strictObject(shape, {
    error: (issue) => (issue.code === 'invalid_type' ? `expected a JSON object with fields ${Object.keys(shape).join(', ')}` : undefined),
  });

/**
 * The peer module named by an OPEN_CONNECT destination: `host:port`, an http(s) URL (as in the seed
 * API), or the URI `qkd://[<application>@]<host>:<port>`, whose host:port is the peer module (the
 * application part names the peer application and is informational). Undefined when it names none.
 */
export function peerAddressOf(destination: string): string | undefined {
  const text = destination.trim();
  if (/^qkd:\/\//i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return undefined;
    }
    if (!url.hostname || !url.port || url.password || url.search || url.hash || (url.pathname !== '' && url.pathname !== '/')) return undefined;
    return normalizePeerAddress(url.host) ? url.host : undefined;
  }
  return normalizePeerAddress(text) ? text : undefined;
}

/** A QoS field the KM may fill (6.1 NOTE): null or absent in a request. */
const fillable = <T extends z.ZodType>(schema: T) => schema.nullable().optional();

/**
 * QoS as an application may send it (ETSI GS QKD 004 v2.1.1, 6.1 NOTE: the KM fills the fields left null
 * or out; 6.2.2: the peer application may join without QoS). The route fills it (fillQos in etsi004Qos.ts).
 */
export const etsi004QosRequestSchema = fieldsObject({
  Key_chunk_size: fillable(uint32('a number of bytes')).describe("key size in bytes; null or absent: the stream's (joining) or 32"),
  Max_bps: fillable(uint32('bits per second')).describe('largest key rate wanted, bit/s; 0 or null: no maximum (echoed; the module does not throttle)'),
  Min_bps: fillable(uint32('bits per second')).describe("smallest key rate needed, bit/s; above the link's expected secret-key rate: status 7"),
  Jitter: fillable(uint32('a number')).describe('accepted and echoed; not enforced'),
  Priority: fillable(uint32('a number')).describe('accepted and echoed; not enforced'),
  Timeout: fillable(uint32('a number of milliseconds')).describe("how long GET_KEY waits for a key, ms (at most 600000); null or absent: the stream's or 5000"),
  TTL: fillable(uint32('a number of seconds')).describe('keys of the stream are erased at this module once older, s; 0 or null: no TTL'),
  Metadata_mimetype: fillable(z.string({ error: 'must be a media type string' }).max(255, { error: 'must be at most 255 characters' })).describe(
    `media type of GET_KEY metadata: ${METADATA_MIMETYPE}; empty: report no metadata; null or absent: ${METADATA_MIMETYPE}`,
  ),
});
export type Etsi004QosRequest = z.output<typeof etsi004QosRequestSchema>;

/** The QoS of a stream as the module answers it: every field filled. */
export const etsi004QosSchema = fieldsObject({
  Key_chunk_size: uint32('a number of bytes').describe('key size in bytes; the stream delivers keys of Key_chunk_size × 8 bits'),
  Max_bps: uint32('bits per second').default(0).describe('largest key rate wanted, bit/s; 0: no maximum (accepted and echoed; the module does not throttle)'),
  Min_bps: uint32('bits per second').default(0).describe("smallest key rate needed, bit/s; above the link's expected secret-key rate: status 7"),
  Jitter: uint32('a number').default(0).describe('accepted and echoed; not enforced'),
  Priority: uint32('a number').default(0).describe('accepted and echoed; not enforced'),
  Timeout: uint32('a number of milliseconds').describe('how long GET_KEY waits for a key, ms (at most 600000)'),
  TTL: uint32('a number of seconds').default(0).describe('keys of the stream are erased at this module once older, s; 0: no TTL'),
  Metadata_mimetype: z
    .string({ error: 'must be a media type string' })
    .max(255, { error: 'must be at most 255 characters' })
    .default(METADATA_MIMETYPE)
    .describe(`media type of GET_KEY metadata; only ${METADATA_MIMETYPE}`),
});
export type Etsi004Qos = z.output<typeof etsi004QosSchema>;

export const etsi004OpenConnectSchema = fieldsObject({
  source: z
    .string({ error: 'must be a URI string naming the calling application' })
    .min(1, { error: 'must not be empty' })
    .max(255, { error: 'must be at most 255 characters' })
    .describe('URI of the calling application, e.g. qkd://app-a@10.0.0.1:5000'),
  destination: z
    .string({ error: 'must be the peer module as host:port, an http(s) URL or qkd://<application>@<host>:<port>' })
    .max(255, { error: 'must be at most 255 characters' })
    .refine((d) => peerAddressOf(d) !== undefined, {
      error: 'must be the peer module as host:port, an http(s) URL or qkd://<application>@<host>:<port>',
    })
    .describe('the peer module: host:port, http(s)://host:port or qkd://<application>@<host>:<port>'),
  QoS: etsi004QosRequestSchema.optional().describe('absent when joining: the stream\'s QoS (6.2.2)'),
  Key_stream_ID: keyStreamIdSchema.nullable().optional().describe('UUID of the stream to join; null or absent: allocate one'),
});

export const etsi004GetKeySchema = fieldsObject({
  Key_stream_ID: keyStreamIdSchema,
  index: z
    .number({ error: 'must be an integer (-1 or absent for the next available key)' })
    .int({ error: 'must be an integer (-1 or absent for the next available key)' })
    .min(-1, { error: 'must be -1 or a key index >= 0' })
    .max(Number.MAX_SAFE_INTEGER)
    .default(-1)
    .describe('key index; -1 or absent: the lowest undelivered key'),
  Metadata: fieldsObject({
    Metadata_size: uint32('a number of bytes').describe('room for the metadata, bytes; 0: no metadata wanted; too small: status 8 with the size needed'),
    Metadata_buffer: z.unknown().optional().describe('ignored in requests'),
  })
    .optional()
    .describe('ask for the key metadata; absent: none'),
});

export const etsi004CloseSchema = fieldsObject({ Key_stream_ID: keyStreamIdSchema });

// ------------------------------------------------------------------ answers

const statusSchema = z.number().int().min(0).max(8).describe('ETSI GS QKD 004 status, 0-8 (docs/api.md)');
const messageSchema = z.string().optional().describe('present when status is not 0: what happened');

export const etsi004OpenConnectAnswerSchema = z.object({
  Key_stream_ID: z.string().nullable(),
  QoS: etsi004QosSchema.describe("the stream's QoS; with status 7, the counter-proposal"),
  status: statusSchema,
  message: messageSchema,
});
export type Etsi004OpenConnectAnswer = z.infer<typeof etsi004OpenConnectAnswerSchema>;

export const etsi004GetKeyAnswerSchema = z.object({
  status: statusSchema,
  Key_buffer: z.string().nullable().describe('the key, base64; null unless status 0'),
  index: z.number().int().describe('index of the delivered key (or of the key the status is about)'),
  Metadata: z.object({
    Metadata_size: z.number().int().min(0).describe('bytes of Metadata_buffer; with status 8, the size needed'),
    Metadata_buffer: z.string().nullable().describe('the metadata document (application/json text) when asked for'),
  }),
  message: messageSchema,
});
export type Etsi004GetKeyAnswer = z.infer<typeof etsi004GetKeyAnswerSchema>;

export const etsi004CloseAnswerSchema = z.object({ status: statusSchema, message: messageSchema });
export type Etsi004CloseAnswer = z.infer<typeof etsi004CloseAnswerSchema>;

/** The metadata document (Metadata_mimetype application/json) of a delivered key. */
export const etsi004KeyMetadataSchema = z.object({
  age: z.number().int().min(0).nullable().describe('ETSI GS QKD 004 Table 3 "age": time since this module stored the key, ms; null when unknown'),
  hops: z.number().int().min(1).describe('ETSI GS QKD 004 Table 3 "hops": QKD links the key crossed; 1 (a key of this link)'),
  age_ms: z.number().int().min(0).nullable().describe('time since this module stored the key, ms; null when unknown (stored before a restart)'),
  qber: z.number().nullable().describe("estimated QBER of the key's block; null when not known (fake simulator, round no longer in memory)"),
  secret_fraction: z
    .number()
    .nullable()
    .describe("secret bits per sifted bit of the key's block; null when not known (fake simulator, round no longer in memory)"),
});
export type Etsi004KeyMetadata = z.infer<typeof etsi004KeyMetadataSchema>;
