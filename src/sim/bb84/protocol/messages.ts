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

/** Why Alice ended an EC block without accumulating it (sent in `abort`, reported in stats). */
export const ABORT_REASONS = ['too-few-bits', 'qber-too-high'] as const;
export type AbortReason = (typeof ABORT_REASONS)[number];
/** Every reason a round can end without keys, as reported in stats (and, bounded to this list, as metric labels). */
export const DROP_REASONS = [
  ...ABORT_REASONS,
  'verify-mismatch',
  'peer-rejected-signature',
  'peer-signature-invalid',
  /** The PA block's lists of blocks differed (a crash left an orphan at one end): the orphans were erased. */
  'blocks-differ',
  /** Lim 2014 eq. (1) gives no key for the PA block (too small, too noisy). */
  'no-secret-key',
  /** The decoy bounds contradict every physical channel (e.g. a photon-number-splitting attacker). */
  'bounds-inconsistent',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/** Base64 text (nonces and channel hashes). */
export const NONCE_B64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Hash of everything the two ends must simulate and compute alike: the link, the source, the simulated attack,
 * the pulse rate, and the finite-key settings that size a PA block (eps_sec, eps_cor, pa_block_bits). Sent in every
 * frame (two modules configured differently refuse each other's blocks instead of disagreeing on a key length) and
 * stored with every accumulated block (a block made under other settings is never amplified).
 */
export function channelHash(s: Bb84Settings): string {
  return createHash('sha256')
    .update(canonicalJson({ v: 2, link: s.link, source: s.source, attack: s.attack, pulseRateHz: s.pulseRateHz, epsSec: s.epsSec, epsCor: s.epsCor, paBlockBits: s.paBlockBits }))
    .digest('base64');
}

/** The settings channelHash covers, as the configuration names them (for the error a mismatch gets). */
export const CHANNEL_HASH_SETTINGS = 'simulator.channel.*, simulator.intensities, simulator.intensity_probabilities, simulator.basis_x_probability, simulator.attack, simulator.eve, simulator.eps_sec, simulator.eps_cor and simulator.pa_block_bits';
