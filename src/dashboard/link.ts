/**
 * What the dashboard shows about the link: the configured parameters (the simulator's channel section, pulse
 * rate, intensity) and, for BB84, the planned rate-versus-distance curve. Read once from the configuration.
 */
import type { ModuleConfig } from '../config/schema.js';
import { pulseStatistics } from '../sim/bb84/analysis/linkModel.js';
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
    { key: 'simulator.channel.dark_count_probability', label: 'dark-count probability', value: c.dark_count_probability, unit: 'per detector and window' },
    { key: 'simulator.channel.afterpulse_probability', label: 'afterpulse probability', value: c.afterpulse_probability, unit: '' },
    { key: 'simulator.channel.misalignment_error', label: 'misalignment error', value: c.misalignment_error, unit: '' },
    { key: 'simulator.intensities', label: 'intensities (signal, decoy, weak decoy)', value: s.intensities.join(' / '), unit: 'photons/pulse' },
    { key: 'simulator.intensity_probabilities', label: 'intensity probabilities', value: s.intensity_probabilities.join(' / '), unit: '' },
    { key: 'simulator.basis_x_probability', label: 'key-basis (X) probability', value: s.basis_x_probability, unit: '' },
    { key: 'simulator.channel.pulse_rate_hz', label: 'pulse rate', value: c.pulse_rate_hz, unit: 'Hz' },
    { key: 'simulator.attack', label: 'simulated attack', value: settings.attack.kind === 'intercept-resend' ? `intercept-resend (${settings.attack.fraction})` : settings.attack.kind, unit: '' },
    { key: 'simulator.qber_threshold', label: 'QBER threshold (abort above)', value: s.qber_threshold, unit: '' },
    { key: 'simulator.block_pulses', label: 'pulses per EC block (at most)', value: s.block_pulses, unit: 'pulses' },
    { key: 'simulator.pa_block_bits', label: 'key bits per PA block', value: s.pa_block_bits, unit: 'bits' },
    { key: 'simulator.eps_sec', label: 'secrecy ε_sec', value: s.eps_sec, unit: '' },
    { key: 'simulator.eps_cor', label: 'correctness ε_cor', value: s.eps_cor, unit: '' },
    { key: 'simulator.pace', label: 'pace', value: s.pace, unit: '' },
    { key: 'derived: link model', label: 'expected QBER of the signal intensity (honest channel)', value: pulseStatistics(settings.link, settings.source.intensities[0]!).qber, unit: '' },
  ];
  return { parameters, plannedCurve: plannedCurve(settings) };
}
