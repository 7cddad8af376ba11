/**
 * Peer messages of the ETSI GS QKD 014 binding (docs/etsi014.md, docs/peer-protocol.md), sent
 * with PeerClient.post over the peer channel (mutual TLS when configured):
 *
 *   POST /peer/etsi014/keys   master's module -> slave's module: key IDs issued by enc_keys and
 *                             the stream indices each stands for; answered before enc_keys answers.
 *   POST /peer/etsi014/ready  sender module -> detector module: "a stream of an SAE pair was
 *                             registered here": the detector joins it now instead of at its next retry.
 */
import { z } from 'zod';

export const ETSI014_PEER_KEYS_PATH = '/peer/etsi014/keys';
export const ETSI014_PEER_READY_PATH = '/peer/etsi014/ready';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const id = z.string().regex(/^[A-Za-z0-9._~:-]{1,128}$/, 'must be an SAE or KME ID');
const index = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const etsi014KeysNoticeSchema = z.object({
  keyStreamId: z.string().regex(UUID, 'must be a lower-case UUID'),
  master_SAE_ID: id,
  slave_SAE_ID: id,
  master_KME_ID: id,
  /** Bits of every key in this notice. */
  size: z.number().int().positive().multipleOf(8),
  /** May be empty: a reconcile notice only carries discards and the watermark. */
  keys: z.array(z.object({ key_ID: z.string().regex(UUID, 'must be a lower-case UUID'), indices: z.array(index).min(1).max(1024) })).max(10_000),
  /** Indices the master's module took but never delivered (an earlier notice failed): drop them. */
  discard: z.array(index).max(100_000).default([]),
  /**
   * The orphan watermark: every index below it that the slave's module holds and no key ID records is
   * one the master's module took and never delivered (a lost notice, a crash): drop it. Optional so a
   * notice from an older module still parses.
   */
  orphans_below: index.optional(),
});
export type Etsi014KeysNotice = z.input<typeof etsi014KeysNoticeSchema>;
export type Etsi014KeysNoticeParsed = z.output<typeof etsi014KeysNoticeSchema>;

export interface Etsi014KeysReply {
  stored: number;
}

export const etsi014ReadyNoticeSchema = z.object({ keyStreamId: z.string().regex(UUID, 'must be a lower-case UUID') });
export type Etsi014ReadyNotice = z.infer<typeof etsi014ReadyNoticeSchema>;
