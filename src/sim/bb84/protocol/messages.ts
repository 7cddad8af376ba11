/** Constants and names of the two-module BB84 protocol that both rounds (Alice's and Bob's) share. */
import { createHash } from 'node:crypto';
import { DEFAULT_CASCADE } from '../reconciliation/cascade.js';
import type { Bb84Settings } from './settings.js';
import { canonicalJson } from './transcript.js';

/** Bytes of each nonce. */
export const NONCE_BYTES = 32;
/** Raw bytes of encoded Cascade questions per `parities` message (base64 makes it 4/3 larger). */
export const MAX_QUESTION_BYTES = 512 * 1024;
/** The Cascade variant both ends use (a protocol constant: the two ends must agree on it). */
export const BB84_CASCADE = DEFAULT_CASCADE;

/** Why Alice ended a block without keys (sent in `abort`, reported in stats). */
export const ABORT_REASONS = ['too-few-bits', 'qber-too-high', 'no-secret-key'] as const;
export type AbortReason = (typeof ABORT_REASONS)[number];
/** Every reason a block can end without keys, as reported in stats. */
export const DROP_REASONS = [...ABORT_REASONS, 'verify-mismatch', 'peer-rejected-signature', 'peer-signature-invalid'] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/** Base64 text (nonces and channel hashes). */
export const NONCE_B64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Hash of the simulated channel's parameters (channel section, pulse rate, Eve). Sent in every frame: two modules
 * whose channel configurations differ refuse each other's blocks instead of producing a meaningless QBER.
 */
export function channelHash(s: Bb84Settings): string {
  return createHash('sha256')
    .update(canonicalJson({ v: 1, ...s.channel, pulseRateHz: s.pulseRateHz, eve: s.eve }))
    .digest('base64');
}
