/**
 * Wire schemas of ETSI GS QKD 014 v1.1.1 (REST key delivery): the single source for validation,
 * TypeScript types and the OpenAPI document. Field names are the standard's. Each request and
 * response schema is exported under its own name and carries `.meta({ id })` for OpenAPI components.
 *
 *   GET      /api/v1/keys/{slave_SAE_ID}/status    -> Etsi014Status
 *   POST|GET /api/v1/keys/{slave_SAE_ID}/enc_keys  Etsi014KeyRequest | ?number&size -> Etsi014KeyContainer
 *   POST|GET /api/v1/keys/{master_SAE_ID}/dec_keys Etsi014KeyIds | ?key_ID         -> Etsi014KeyContainer
 *   errors: 400 Etsi014Error, 401 (no body), 503 Etsi014Error
 */
import { z } from 'zod';

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** SAE_ID / KME_ID: printable, URL-path safe (this module's rule; the standard only says "string"). */
export const etsi014SaeIdSchema = z
  .string({ error: 'must be an SAE ID string' })
  .regex(/^[A-Za-z0-9._~:-]{1,128}$/, { error: 'must be 1 to 128 characters A-Z a-z 0-9 . _ ~ : -' })
  .meta({ id: 'Etsi014SaeId', description: 'SAE identifier' });

export const etsi014KeyIdSchema = z
  .string({ error: 'must be a UUID string' })
  .regex(UUID, { error: 'must be a UUID like 123e4567-e89b-12d3-a456-426614174000' })
  .meta({ id: 'Etsi014KeyId', description: 'key_ID: a UUID' });

/** An extension object: free-form name -> value. */
const extensionObject = z.record(z.string(), z.unknown(), { error: 'must be an object' });

// ------------------------------------------------------------------------------------- requests

export const etsi014KeyRequestSchema = z
  .object({
    number: z.number({ error: 'must be an integer number of keys' }).int({ error: 'must be an integer number of keys' }).optional(),
    /** Bits. "size shall be a multiple of 8" is checked by the service with the standard's message. */
    size: z.number({ error: 'must be an integer number of bits' }).int({ error: 'must be an integer number of bits' }).optional(),
    additional_slave_SAE_IDs: z.array(etsi014SaeIdSchema, { error: 'must be a list of SAE IDs' }).max(1000).optional(),
    extension_mandatory: z.array(extensionObject, { error: 'must be a list of objects' }).max(100).optional(),
    extension_optional: z.array(extensionObject, { error: 'must be a list of objects' }).max(100).optional(),
  }, { error: 'must be a Key request object' })
  .meta({ id: 'Etsi014KeyRequest', description: 'Key request (POST enc_keys body); every field optional' });
export type Etsi014KeyRequest = z.infer<typeof etsi014KeyRequestSchema>;

/** GET enc_keys: the simple form, ?number=N&size=S. */
export const etsi014EncKeysQuerySchema = z
  .object({
    number: z.coerce.number({ error: 'must be an integer number of keys' }).int({ error: 'must be an integer number of keys' }).optional(),
    size: z.coerce.number({ error: 'must be an integer number of bits' }).int({ error: 'must be an integer number of bits' }).optional(),
  })
  .meta({ id: 'Etsi014EncKeysQuery' });

export const etsi014KeyIdsSchema = z
  .object({
    key_IDs: z
      .array(
        z.object({ key_ID: etsi014KeyIdSchema, key_ID_extension: z.unknown().optional() }, { error: 'must be an object {key_ID}' }),
        { error: 'must be a list of {key_ID} objects' },
      )
      .min(1, { error: 'must name at least one key_ID' })
      .max(10_000),
    key_IDs_extension: z.unknown().optional(),
  }, { error: 'must be a Key IDs object' })
  .meta({ id: 'Etsi014KeyIds', description: 'Key IDs (POST dec_keys body)' });
export type Etsi014KeyIds = z.infer<typeof etsi014KeyIdsSchema>;

/** GET dec_keys: ?key_ID=ID (this module also accepts the parameter repeated). */
export const etsi014DecKeysQuerySchema = z
  .object({
    key_ID: z.union([etsi014KeyIdSchema, z.array(etsi014KeyIdSchema).min(1).max(10_000)], { error: 'must be a UUID (key_ID=...)' }),
  })
  .meta({ id: 'Etsi014DecKeysQuery' });

// ------------------------------------------------------------------------------------ responses

export const etsi014StatusSchema = z
  .object({
    source_KME_ID: z.string(),
    target_KME_ID: z.string(),
    master_SAE_ID: z.string(),
    slave_SAE_ID: z.string(),
    key_size: z.number().int().describe('default key size, bits'),
    stored_key_count: z.number().int().describe('keys of key_size bits available now'),
    max_key_count: z.number().int(),
    max_key_per_request: z.number().int(),
    max_key_size: z.number().int().describe('bits'),
    min_key_size: z.number().int().describe('bits'),
    max_SAE_ID_count: z.number().int().describe('0: no additional slave SAEs (no key multicast)'),
    status_extension: z.unknown().optional(),
  })
  .meta({ id: 'Etsi014Status', description: 'Status (GET status answer)' });
export type Etsi014StatusBody = z.infer<typeof etsi014StatusSchema>;

export const etsi014KeySchema = z
  .object({
    key_ID: etsi014KeyIdSchema,
    key_ID_extension: z.unknown().optional(),
    key: z.string().describe('key bytes, base64 (RFC 4648)'),
    key_extension: z.unknown().optional(),
  })
  .meta({ id: 'Etsi014Key' });

export const etsi014KeyContainerSchema = z
  .object({
    keys: z.array(etsi014KeySchema),
    key_container_extension: z.unknown().optional(),
  })
  .meta({ id: 'Etsi014KeyContainer', description: 'Key container (enc_keys and dec_keys answer)' });
export type Etsi014KeyContainer = z.infer<typeof etsi014KeyContainerSchema>;

export const etsi014ErrorSchema = z
  .object({
    message: z.string(),
    details: z.array(z.record(z.string(), z.unknown())).optional(),
  })
  .meta({ id: 'Etsi014Error', description: 'Error (400 and 503 answers; 401 has no body)' });
export type Etsi014ErrorBody = z.infer<typeof etsi014ErrorSchema>;
