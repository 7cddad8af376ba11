/**
 * The BB84 simulator over the two-module protocol (docs/bb84.md; messages in docs/peer-protocol.md).
 *
 * One round = one block. Alice is the sending module (runSenderRound drives every step), Bob the receiving module
 * (a Bb84ReceiverRound answers each step):
 *
 *   frame     A→B  pulses N, detections k, Alice's states and bases of the k detected pulses, nonceA, channelHash
 *             B→A  Bob's bases, nonceB                     (Bob's module applies Eve, dark counts, misalignment)
 *   sift      A→B  matching-basis mask                     B→A  sifted length
 *   estimate  A→B  sample seed, sample size                B→A  Bob's sampled bits
 *   abort     A→B  reason (QBER too high, too few bits, no secret key left)     B→A  {aborted}; the block ends
 *   parities  A→B  batched Cascade questions (the first carries the QBER, the error count, passes, shuffle seed)
 *             B→A  packed parities of Bob's key            (Alice corrects her key to Bob's)
 *   verify    A→B  verify seed, Alice's tag                B→A  match (a mismatch ends the block at both ends)
 *   amplify   A→B  Toeplitz seed, output length, key count, Alice's signature over her transcript
 *             B→A  confirmed, key count, Bob's signature over his transcript    (Bob's keys: the receiver result)
 *
 * Alice returns keys only after Bob's signature verifies; Bob derives keys only after Alice's verifies. Every step
 * at Bob validates its input strictly and throws RoundProtocolError on anything unexpected; nothing here logs or
 * throws key bits.
 *
 * Files: senderRound.ts (Alice), receiverRound.ts (Bob), authenticator.ts (transcript signatures), pacing.ts (realtime
 * pacing and back-off), stopwatch.ts and keyOutput.ts (stats and keys of a block); the protocol's constants, wire
 * encodings, transcript and sizing live in ../protocol/.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { ModuleConfig } from '../../../config/schema.js';
import type { ReconciledBlockStore } from '../../../store/ReconciledBlockStore.js';
import type { ReceiverRound, RoundChannel, RoundParams, RoundResult, RoundStats, Simulator } from '../../Simulator.js';
import { cryptoRng, seededRng, type Rng } from '../common/rng.js';
import { qberWithEve } from '../detection/channel.js';
import { predictedRates } from '../estimation/finiteKey.js';
import { channelHash } from '../protocol/messages.js';
import { bb84SettingsFromConfig, type Bb84Settings } from '../protocol/settings.js';
import type { Party } from '../protocol/transcript.js';
import { MAX_PASSES } from '../reconciliation/cascade.js';
import { authenticatorFromConfig, type LinkSigningKeys, type TranscriptAuthenticator } from './authenticator.js';
import { BlockPacer, MAX_TRACKED_STREAMS, type BlockOutcome } from './pacing.js';
import { Bb84ReceiverRound } from './receiverRound.js';
import { runSenderRound, type SenderLink } from './senderRound.js';

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
   * After a block of a stream ends without keys (aborted, discarded), that stream's next block waits this long,
   * doubling per consecutive keyless block up to `max` (a link that cannot produce key does not spin at full speed).
   * Default 200 ms .. 5 s; tests may pass 0.
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
  private readonly pacer: BlockPacer;
  /** Streams whose blocks fail the peer's signature check: reported once, backed off longer (a configuration error). */
  private readonly authFailing = new Set<string>();
  /** Alice's view of this simulator (senderRound.ts). */
  private readonly senderLink: SenderLink;
  private rounds = 0;

  constructor(options: Bb84Options) {
    this.settings = options.settings;
    this.auth = options.authenticator;
    this.log = options.log;
    this.pacer = new BlockPacer(this.settings.pace, options.keylessBackoffMs);
    this.channelHash = channelHash(this.settings);
    this.senderLink = {
      settings: this.settings,
      auth: this.auth,
      channelHash: this.channelHash,
      predictedQber: qberWithEve(this.settings.channel, this.settings.eve),
      physicsRng: (role, params) => this.physicsRng(role, params),
      waitForBlockStart: (keyStreamId) => this.pacer.waitForBlockStart(keyStreamId),
      scheduleNextBlock: (keyStreamId: string, scheduled: number, linkMs: number, outcome: BlockOutcome) =>
        this.pacer.scheduleNextBlock(keyStreamId, scheduled, linkMs, outcome, this.authFailing.has(keyStreamId)),
      logBlock: (role, params, stats) => this.logBlock(role, params, stats),
    };
  }

  /**
   * The link's secret key rate for ETSI 004 QoS (`Min_bps`): with pace realtime, what a device on the
   * configured channel delivers (docs/bb84.md "Predicted rates", with the Cascade efficiency measured
   * for the default variant), in whole keys. With pace max the rate is bounded by this machine's CPU,
   * not by the channel, so it is unknown and a `Min_bps` is not refused on that ground.
   */
  expectedSecretBitsPerSecond(keyLengthBits: number): number | undefined {
    if (this.settings.pace !== 'realtime') return undefined;
    const { secretRate } = predictedRates(this.settings.channel, this.settings.pulseRateHz, MEASURED_CASCADE_EFFICIENCY, this.settings.sampleFraction);
    return Math.floor(secretRate / keyLengthBits) * keyLengthBits;
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
    this.watchAuthentication(role, params.keyStreamId, stats);
    if (!this.log) return;
    // `keys` is a redacted log path (src/log.ts): the count goes out as keyCount.
    const { keys, ...rest } = stats;
    this.log.info({ keyStreamId: params.keyStreamId, firstIndex: params.firstIndex, role, keyCount: keys, ...rest }, 'bb84 block');
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
    } else if (!failed && Number(stats.keys ?? 0) > 0 && this.authFailing.delete(keyStreamId)) {
      this.log?.warn({ keyStreamId, role }, 'BB84 blocks authenticate again: key production resumed');
    }
  }

  // ------------------------------------------------------------------------------------------- Alice

  async runSenderRound(params: RoundParams, channel: RoundChannel): Promise<RoundResult> {
    return runSenderRound(this.senderLink, params, channel);
  }

  openReceiverRound(params: RoundParams): ReceiverRound {
    return new Bb84ReceiverRound(this, params, this.auth, this.channelHash, (stats) => this.logBlock('bob', params, stats));
  }
}
