/** The BB84 simulator's settings, taken from the `simulator` section of the configuration. */
import type { ModuleConfig } from '../../../config/schema.js';
import type { SignatureScheme } from '../../../crypto/signatures.js';
import type { PaHashFamily } from '../amplification/amplify.js';
import type { ChannelParams } from '../detection/channel.js';

export interface Bb84Settings {
  channel: ChannelParams;
  /** Pulses per second of the simulated source (pace: realtime spaces blocks by pulses / rate). */
  pulseRateHz: number;
  /** Fraction of pulses Eve intercepts and resends (applied by the receiving module). */
  eve: number;
  pace: 'max' | 'realtime';
  qberThreshold: number;
  /** Pulses per block at most (the block may be smaller: see protocol/sizing.ts). */
  blockPulses: number;
  sampleFraction: number;
  epsPE: number;
  epsEC: number;
  epsPA: number;
  cascadePasses: number;
  /** Privacy-amplification hash family (default 'modified-toeplitz'); both ends must agree. */
  paHash?: PaHashFamily;
  /** Seeds the simulated physics (tests only). Protocol choices always come from the CSPRNG. */
  seed?: number;
  signature: SignatureScheme;
}

export function bb84SettingsFromConfig(cfg: ModuleConfig): Bb84Settings {
  const s = cfg.simulator;
  const c = s.channel;
  return {
    channel: {
      lengthKm: c.length_km,
      attenuationDbPerKm: c.attenuation_db_per_km,
      detectorEfficiency: c.detector_efficiency,
      darkCountProbability: c.dark_count_probability,
      misalignmentError: c.misalignment_error,
      meanPhotonNumber: c.mean_photon_number,
    },
    pulseRateHz: c.pulse_rate_hz,
    eve: s.eve,
    pace: s.pace,
    qberThreshold: s.qber_threshold,
    blockPulses: s.block_pulses,
    sampleFraction: s.sample_fraction,
    epsPE: s.eps_pe,
    epsEC: s.eps_ec,
    epsPA: s.eps_pa,
    cascadePasses: s.cascade_passes,
    paHash: s.privacy_amplification,
    ...(s.seed !== undefined ? { seed: s.seed } : {}),
    signature: s.signature,
  };
}
