/**
 * The decoy-state BB84 simulator over the two-module protocol (docs/bb84.md; messages in docs/peer-protocol.md).
 *
 * One round = one error-correction (EC) block, and, when the stream's accumulated key-basis bits reach
 * simulator.pa_block_bits, one privacy-amplification (PA) block. Alice is the sending module (runSenderRound drives
 * every step), Bob the receiving module (a Bb84ReceiverRound answers each step):
 *
 *   frame      A→B  pulses N, detections k, Alice's states, bases and intensity of the k detected pulses, nonceA,
 *                   channelHash                    B→A  Bob's bases, nonceB   (Bob's module draws his outcomes)
 *   sift       A→B  basis-match mask, the intensity of every sifted pulse (the decoy announcement)
 *              B→A  sifted length, n_X and n_Z per intensity (Alice checks them against hers)
 *   phase      A→B  Alice's Z bits                  B→A  Bob's Z bits           (each counts m_Z per intensity)
 *   abort      A→B  reason (too few bits, QBER too high)             B→A  {aborted}; the round ends
 *   parities   A→B  batched Cascade questions on the X bits (the first carries the Z QBER, the Z errors, passes,
 *                   shuffle seed)                   B→A  packed parities of Bob's X bits
 *   verify     A→B  verify seeds, Alice's tags      B→A  match
 *   accumulate A→B  blockId, the block's counts, whether a PA step follows, Alice's signature over the transcript
 *              B→A  appended, Bob's signature       (Bob stores the block first, then Alice)
 *   seed       A→B  a chunk of the Toeplitz seed    B→A  received            (PA step only, one or more)
 *   amplify    A→B  Alice's block list, counts digest, output length, key count (or an abort reason), signature
 *              B→A  confirmed, key count, Bob's signature; or blocks-differ with Bob's list, signed
 *
 * Alice returns keys only after Bob's signature verifies and she consumed the blocks; Bob derives keys only after
 * Alice's verifies, from his own records, after he consumed the blocks. Every step at Bob validates its input
 * strictly and throws RoundProtocolError on anything unexpected; nothing here logs or throws key bits.
 *
 * Files: senderRound.ts and senderAmplify.ts (Alice), receiverRound.ts and receiverAmplify.ts (Bob),
 * authenticator.ts (transcript signatures), pacing.ts (realtime pacing and back-off), stopwatch.ts, roundStats.ts,
 * streamTotals.ts and keyOutput.ts (stats and keys); the accumulated blocks live in ../accumulation/, the protocol's
 * constants, wire encodings, transcript and sizing in ../protocol/.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { ModuleConfig } from '../../../config/schema.js';
import { MemoryReconciledBlockStore } from '../../../store/memory/MemoryReconciledBlockStore.js';
import type { ReconciledBlockStore } from '../../../store/ReconciledBlockStore.js';
import type { ReceiverRound, RoundChannel, RoundParams, RoundResult, RoundStats, Simulator } from '../../Simulator.js';
import { AccumulatedBlocks } from '../accumulation/heldBlocks.js';
import { cryptoRng, seededRng, type Rng } from '../common/rng.js';
import { detectionModel, type DetectionModel } from '../detection/detectionModel.js';
import { channelHash } from '../protocol/messages.js';
import { bb84SettingsFromConfig, type Bb84Settings } from '../protocol/settings.js';
import { plannedRate } from '../protocol/sizing.js';
import type { Party } from '../protocol/transcript.js';
import { MAX_PASSES } from '../reconciliation/cascade.js';
import { authenticatorFromConfig, type LinkSigningKeys, type TranscriptAuthenticator } from './authenticator.js';
import { BlockPacer, MAX_TRACKED_STREAMS, type BlockOutcome } from './pacing.js';
import { Bb84ReceiverRound, type ReceiverLink } from './receiverRound.js';
import { runSenderRound, type SenderLink } from './senderRound.js';
import { StreamTotals } from './streamTotals.js';

export { bb84SettingsFromConfig, type Bb84Settings } from '../protocol/settings.js';

/** The simulator configured by `cfg` (module.sim: bb84). */
export function createBb84Simulator(cfg: ModuleConfig, deps: { log?: Logger; linkKeys?: LinkSigningKeys; blocks?: ReconciledBlockStore } = {}): Bb84Simulator {
  if (cfg.simulator.cascade_passes > MAX_PASSES) throw new Error(`simulator.cascade_passes: at most ${MAX_PASSES} with module.sim bb84`);
  return new Bb84Simulator({
    settings: bb84SettingsFromConfig(cfg),
    authenticator: authenticatorFromConfig(cfg, 2, deps.linkKeys),
    ...(deps.log ? { log: deps.log } : {}),
    ...(deps.blocks ? { blocks: deps.blocks } : {}),
  });
}

export interface Bb84Options {
  settings: Bb84Settings;
  authenticator: TranscriptAuthenticator;
  /** One info line per block (numbers only). */
  log?: Logger;
  /**
   * After a round of a stream ends without keys and without accumulating its block (aborted, discarded), that
   * stream's next round waits this long, doubling per consecutive such round up to `max` (a link that cannot
   * produce key does not spin at full speed). Default 200 ms .. 5 s; tests may pass 0.
   */
  keylessBackoffMs?: { initial: number; max: number };
  /**
   * This module's corrected EC blocks waiting for privacy amplification (durable: the composition root passes the
   * module's store). Default: a store in process memory (tests).
   */
  blocks?: ReconciledBlockStore;
}

/** Cascade efficiency f = leak / (n·h(e)) of the default variant at 1-2 % QBER (bench/cascade.ts). */
export const MEASURED_CASCADE_EFFICIENCY = 1.08;

export class Bb84Simulator implements Simulator {
  readonly name = 'bb84';
  readonly settings: Bb84Settings;
  private readonly auth: TranscriptAuthenticator;
  private readonly log: Logger | undefined;
  private readonly channelHash: string;
  private readonly model: DetectionModel;
  private readonly blocks: AccumulatedBlocks;
  private readonly pacer: BlockPacer;
  private readonly totals = new StreamTotals();
  /** Streams whose blocks fail the peer's signature check: reported once, backed off longer (a configuration error). */
  private readonly authFailing = new Set<string>();
  /** Alice's and Bob's views of this simulator (senderRound.ts, receiverRound.ts). */
  private readonly senderLink: SenderLink;
  private readonly receiverLink: ReceiverLink;
  private rounds = 0;

  constructor(options: Bb84Options) {
    this.settings = options.settings;
    this.auth = options.authenticator;
    this.log = options.log;
    this.pacer = new BlockPacer(this.settings.pace, options.keylessBackoffMs);
    this.channelHash = channelHash(this.settings);
    this.model = detectionModel(this.settings.link, this.settings.source, this.settings.attack);
    this.blocks = new AccumulatedBlocks(options.blocks ?? new MemoryReconciledBlockStore(), this.settings.source.intensities.length, this.channelHash);
    const common = {
      settings: this.settings,
      auth: this.auth,
      channelHash: this.channelHash,
      model: this.model,
      blocks: this.blocks,
      physicsRng: (role: Party, params: RoundParams) => this.physicsRng(role, params),
    };
    this.receiverLink = common;
    this.senderLink = {
      ...common,
      waitForBlockStart: (keyStreamId) => this.pacer.waitForBlockStart(keyStreamId),
      scheduleNextBlock: (keyStreamId: string, scheduled: number, linkMs: number, outcome: BlockOutcome) =>
        this.pacer.scheduleNextBlock(keyStreamId, scheduled, linkMs, outcome, this.authFailing.has(keyStreamId)),
      logBlock: (role, params, stats) => this.logBlock(role, params, stats),
    };
  }

  /**
   * The link's secret key rate for ETSI 004 QoS (`Min_bps`): with pace realtime, what a device on the configured
   * channel delivers by Lim et al. 2014's finite-key bound for PA blocks of simulator.pa_block_bits (with the Cascade
   * efficiency measured for the default variant), in whole keys. With pace max the rate is bounded by this
   * machine's CPU, not by the channel, so it is unknown and a `Min_bps` is not refused on that ground.
   */
  expectedSecretBitsPerSecond(keyLengthBits: number): number | undefined {
    if (this.settings.pace !== 'realtime') return undefined;
    const { secretBitsPerSecond } = plannedRate(this.settings, MEASURED_CASCADE_EFFICIENCY);
    return Math.floor(secretBitsPerSecond / keyLengthBits) * keyLengthBits;
  }

  /** The stream's totals since this module started (rounds, blocks, bits, keys; never key material). */
  streamStats(keyStreamId: string): RoundStats | undefined {
    return this.totals.get(keyStreamId);
  }

  async close(): Promise<void> {
    this.pacer.close();
    await this.auth.close?.();
  }

  /** Randomness of the simulated physics: the CSPRNG, or a per-round seeded stream when simulator.seed is set (tests). */
  physicsRng(role: Party, params: RoundParams): Rng {
    if (this.settings.seed === undefined) return cryptoRng();
    const digest = createHash('sha256')
      .update(`qkdm/bb84/physics\0${this.settings.seed}\0${role}\0${params.keyStreamId}\0${params.firstIndex}\0${this.rounds++}`)
      .digest();
    return seededRng(new Uint8Array(digest));
  }

  private logBlock(role: Party, params: RoundParams, stats: RoundStats): void {
    this.totals.record(params.keyStreamId, stats);
    this.watchAuthentication(role, params.keyStreamId, stats);
    if (!this.log) return;
    // `keys` is a redacted log path (src/log.ts): the count goes out as keyCount.
    const { keys, ...rest } = stats;
    this.log.info({ keyStreamId: params.keyStreamId, firstIndex: params.firstIndex, role, keyCount: keys, ...rest }, typeof stats.paBlocks === 'number' ? 'bb84 PA block' : 'bb84 EC block');
  }

  /**
   * A block whose signature does not verify is a wrong key far more often than an attack: the first one
   * of a stream is reported once, as an error naming the settings and the fix (issue 16); the stream's
   * blocks then back off (scheduleNextBlock) until one verifies again.
   */
  private watchAuthentication(role: Party, keyStreamId: string, stats: RoundStats): void {
    const failed = stats.reason === 'peer-rejected-signature' || stats.reason === 'peer-signature-invalid';
    if (failed && !this.authFailing.has(keyStreamId)) {
      if (this.authFailing.size >= MAX_TRACKED_STREAMS) this.authFailing.clear();
      this.authFailing.add(keyStreamId);
      const side = stats.reason === 'peer-signature-invalid' ? "the peer's signature does not verify here" : "the peer module could not verify this module's signature";
      this.log?.error(
        { keyStreamId, role, reason: stats.reason },
        `BB84 blocks fail authentication: ${side}. The public key configured for the peer is not the peer's: ` +
          "set simulator.public_key to the key the PEER's `npm run keygen` printed for its peer (never this module's own), " +
          'or unset simulator.private_key and simulator.public_key to sign with the link credentials. No key is produced; blocks are retried with back-off',
      );
    } else if (!failed && (Number(stats.keys ?? 0) > 0 || stats.accumulated === true) && this.authFailing.delete(keyStreamId)) {
      this.log?.warn({ keyStreamId, role }, 'BB84 blocks authenticate again: key production resumed');
    }
  }

  // ------------------------------------------------------------------------------------------- Alice

  async runSenderRound(params: RoundParams, channel: RoundChannel): Promise<RoundResult> {
    return runSenderRound(this.senderLink, params, channel);
  }

  openReceiverRound(params: RoundParams): ReceiverRound {
    return new Bb84ReceiverRound(this.receiverLink, params, (stats) => this.logBlock('bob', params, stats));
  }
}
