/**
 * What the dashboard shows about the link: the configured parameters (the simulator's channel section, pulse
 * rate, intensity) and, for BB84, the planned rate-versus-distance curve. Read once from the configuration.
 */
import type { ModuleConfig } from '../config/schema.js';
import { qberWithEve } from '../sim/bb84/detection/channel.js';
import { bb84SettingsFromConfig } from '../sim/bb84/protocol/settings.js';
import type { LinkParameter, PlannedCurve } from './feedSchema.js';
import { plannedCurve } from './plannedCurve.js';

export interface DashboardLink {
  parameters: LinkParameter[];
  plannedCurve: PlannedCurve | null;
}

/** What every module knows without its configuration file (a module built in a test). */
export function moduleOnlyLink(sim: string, maxKeyCount: number): DashboardLink {
  return {
    parameters: [
      { key: 'module.sim', label: 'simulator', value: sim, unit: '' },
      { key: 'module.max_key_count', label: 'key buffer capacity per stream', value: maxKeyCount, unit: 'keys' },
    ],
    plannedCurve: null,
  };
}

export function dashboardLinkFromConfig(cfg: ModuleConfig): DashboardLink {
  const module = moduleOnlyLink(cfg.module.sim, cfg.module.max_key_count).parameters;
  if (cfg.module.sim !== 'bb84') return { parameters: module, plannedCurve: null };
  const s = cfg.simulator;
  const c = s.channel;
  const settings = bb84SettingsFromConfig(cfg);
  const parameters: LinkParameter[] = [
    ...module,
    { key: 'simulator.channel.length_km', label: 'fibre length', value: c.length_km, unit: 'km' },
    { key: 'simulator.channel.attenuation_db_per_km', label: 'fibre loss', value: c.attenuation_db_per_km, unit: 'dB/km' },
    { key: 'simulator.channel.detector_efficiency', label: "Bob's detector efficiency", value: c.detector_efficiency, unit: '' },
    { key: 'simulator.channel.dark_count_probability', label: 'dark-count probability', value: c.dark_count_probability, unit: 'per pulse' },
    { key: 'simulator.channel.misalignment_error', label: 'misalignment error', value: c.misalignment_error, unit: '' },
    { key: 'simulator.channel.mean_photon_number', label: 'signal intensity (mean photon number μ)', value: c.mean_photon_number, unit: 'photons/pulse' },
    { key: 'simulator.channel.pulse_rate_hz', label: 'pulse rate', value: c.pulse_rate_hz, unit: 'Hz' },
    { key: 'simulator.eve', label: 'intercept-resend eavesdropper', value: s.eve, unit: 'fraction of pulses' },
    { key: 'simulator.qber_threshold', label: 'QBER threshold (abort above)', value: s.qber_threshold, unit: '' },
    { key: 'simulator.block_pulses', label: 'pulses per block (at most)', value: s.block_pulses, unit: 'pulses' },
    { key: 'simulator.sample_fraction', label: 'sifted bits sampled for the QBER', value: s.sample_fraction, unit: '' },
    { key: 'simulator.pace', label: 'pace', value: s.pace, unit: '' },
    { key: 'derived: channel model', label: 'expected QBER (from the parameters above, with the eavesdropper)', value: qberWithEve(settings.channel, settings.eve), unit: '' },
  ];
  return { parameters, plannedCurve: plannedCurve(settings) };
}
