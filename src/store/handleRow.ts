/**
 * The `handles` table's columns and their mapping to KeyStream, shared by the MySQL and SQLite
 * adapters (one schema, two SQL dialects). Column names are the only identifiers ever spliced into
 * SQL besides the validated table name; every value is a bound parameter.
 */
import type { KeyStream, KeyStreamPatch } from '../core/types.js';

export const HANDLE_COLUMNS =
  'handle, source, destination, peer_url, length, timeout, local_open, synchronized, closed, next_index, created_at, ttl, owner';

/** Patch field -> column. */
export const PATCH_COLUMNS: Readonly<Record<keyof KeyStreamPatch, string>> = {
  source: 'source',
  destination: 'destination',
  peerUrl: 'peer_url',
  keyLengthBits: 'length',
  timeoutMs: 'timeout',
  localOpen: 'local_open',
  peerOpen: 'synchronized',
  closed: 'closed',
  ttlSeconds: 'ttl',
  owner: 'owner',
};

/** A patch value as stored: booleans as 0/1. */
export function patchValue(field: keyof KeyStreamPatch, value: unknown): string | number {
  if (field === 'localOpen' || field === 'peerOpen' || field === 'closed') return value ? 1 : 0;
  return value as string | number;
}

/** A row as either driver returns it (MySQL may hand back strings for BIGINT). */
export type HandleRowLike = Record<string, unknown>;

export function rowToStream(r: HandleRowLike): KeyStream {
  return {
    keyStreamId: String(r.handle),
    source: String(r.source),
    destination: String(r.destination),
    peerUrl: String(r.peer_url),
    keyLengthBits: Number(r.length),
    timeoutMs: Number(r.timeout),
    localOpen: Number(r.local_open) !== 0,
    peerOpen: Number(r.synchronized) !== 0,
    closed: Number(r.closed) !== 0,
    nextIndex: Number(r.next_index),
    createdAt: Number(r.created_at),
    ttlSeconds: Number(r.ttl),
    owner: String(r.owner ?? ''),
  };
}

export function checkNextIndex(to: number): void {
  if (!Number.isSafeInteger(to) || to < 0) throw new RangeError('nextIndex must be a non-negative safe integer');
}

const PATCH_FIELDS = Object.keys(PATCH_COLUMNS) as (keyof KeyStreamPatch)[];

/**
 * `SET` clause of the one UPDATE both adapters prepare: every patchable column is
 * `COALESCE(?, column)`, so a field absent from the patch is bound as NULL and keeps its value.
 * The SQL text never depends on the request.
 */
export const PATCH_SET_SQL = `${PATCH_FIELDS.map((f) => `${PATCH_COLUMNS[f]} = COALESCE(?, ${PATCH_COLUMNS[f]})`).join(', ')}, updated_at = ?`;

/** Parameters for PATCH_SET_SQL (in column order), or undefined when the patch changes nothing. */
export function patchParams(patch: KeyStreamPatch): Array<string | number | null> | undefined {
  const values = PATCH_FIELDS.map((f) => (patch[f] === undefined ? null : patchValue(f, patch[f])));
  return values.every((v) => v === null) ? undefined : [...values, Date.now()];
}
