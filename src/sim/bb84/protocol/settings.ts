/** The BB84 simulator's settings, taken from the `simulator` section of the configuration. */
import type { ModuleConfig } from '../../../config/schema.js';
import type { SignatureScheme } from '../../../crypto/signatures.js';
import type { DecoySettings } from '../analysis/decoyCounts.js';
import type { LinkParams } from '../analysis/linkModel.js';
import type { PaHashFamily } from '../amplification/amplify.js';

/** Alice's decoy-state source (source/decoySource.ts): intensities signal first, their probabilities, p_X. */
export interface SourceSettings {
  intensities: number[];
  intensityProbabilities: number[];
  basisXProbability: number;
}

/** A simulated attack on the quantum channel (detection/detectionModel.ts). */
export type AttackSettings =
  | { kind: 'none' }
  | { kind: 'intercept-resend'; fraction: number }
  | { kind: 'photon-number-splitting' };

export interface Bb84Settings {
  /** Fibre and Bob's detectors (analysis/linkModel.ts). */
  link: LinkParams;
  source: SourceSettings;
  attack: AttackSettings;
  /** Pulses per second of the simulated source (pace: realtime spaces blocks by pulses / rate). */
  pulseRateHz: number;
  pace: 'max' | 'realtime';
  /** An EC block whose test-basis (Z) QBER, or whose corrected key-basis error rate, exceeds this is aborted. */
  qberThreshold: number;
  /** Pulses per EC block at most (the frame's size limit may cap it: protocol/sizing.ts). */
  blockPulses: number;
  /** Key-basis bits a PA block gathers before it is amplified. */
  paBlockBits: number;
  /** Secrecy and correctness of the whole protocol (Lim et al. 2014). */
  epsSec: number;
  epsCor: number;
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
    link: {
      lengthKm: c.length_km,
      attenuationDbPerKm: c.attenuation_db_per_km,
      detectorEfficiency: c.detector_efficiency,
      darkCountProbability: c.dark_count_probability,
      afterpulseProbability: c.afterpulse_probability,
      misalignmentError: c.misalignment_error,
    },
    source: { intensities: [...s.intensities], intensityProbabilities: [...s.intensity_probabilities], basisXProbability: s.basis_x_probability },
    attack: attackFromConfig(s.attack, s.eve),
    pulseRateHz: c.pulse_rate_hz,
    pace: s.pace,
    qberThreshold: s.qber_threshold,
    blockPulses: s.block_pulses,
    paBlockBits: s.pa_block_bits,
    epsSec: s.eps_sec,
    epsCor: s.eps_cor,
    cascadePasses: s.cascade_passes,
    paHash: s.privacy_amplification,
    ...(s.seed !== undefined ? { seed: s.seed } : {}),
    signature: s.signature,
  };
}

/** simulator.attack, or intercept-resend when only simulator.eve is set (as before attacks had a name). */
function attackFromConfig(attack: 'none' | 'intercept-resend' | 'pns' | undefined, eve: number): AttackSettings {
  const kind = attack ?? (eve > 0 ? 'intercept-resend' : 'none');
  if (kind === 'intercept-resend') return { kind, fraction: eve };
  if (kind === 'pns') return { kind: 'photon-number-splitting' };
  return { kind: 'none' };
}

/** The decoy analysis's view of the settings (analysis/lim2014.ts). */
export function decoySettings(s: Bb84Settings): DecoySettings {
  return { intensities: s.source.intensities, probabilities: s.source.intensityProbabilities, epsSec: s.epsSec, epsCor: s.epsCor };
}
