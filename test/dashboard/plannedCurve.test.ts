/** The planned rate-versus-distance curve (src/dashboard/plannedCurve.ts) and the link the dashboard shows (link.ts). */
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { dashboardLinkFromConfig } from '../../src/dashboard/link.js';
import { CURVE_POINTS, plannedCurve } from '../../src/dashboard/plannedCurve.js';
import { plannedRate } from '../../src/sim/bb84/protocol/sizing.js';
import { bb84SettingsFromConfig } from '../../src/sim/bb84/protocol/settings.js';

const bb84 = (channel: Record<string, unknown> = {}) => configSchema.parse({ module: { sim: 'bb84' }, simulator: { channel } });

describe('plannedCurve', () => {
  it('when drawn for the default link, then it falls with distance from 0 km to where the key vanishes, and names its analysis', () => {
    const settings = bb84SettingsFromConfig(bb84());
    const curve = plannedCurve(settings);
    expect(curve.analysis).toMatch(/Lim et al\. 2014/);
    expect(curve.points.length).toBe(CURVE_POINTS);
    expect(curve.points[0]!.distanceKm).toBe(0);
    const rates = curve.points.map((p) => p.secretBitsPerPulse);
    for (let i = 1; i < rates.length; i++) expect(rates[i]!).toBeLessThanOrEqual(rates[i - 1]!);
    expect(rates[0]!).toBeGreaterThan(0);
    expect(rates[rates.length - 1]!).toBe(0); // the curve reaches past the distance where the key vanishes
    expect(curve.points[curve.points.length - 1]!.distanceKm).toBeGreaterThan(settings.link.lengthKm);
  });

  it('when asked at the configured length, then it is the lim2014 plan per pulse at that length (the one the simulator sizes keys with)', () => {
    const settings = bb84SettingsFromConfig(bb84({ length_km: 40 }));
    const curve = plannedCurve(settings);
    const at = (km: number): number => plannedRate({ ...settings, link: { ...settings.link, lengthKm: km } }).plan.ratePerPulse;
    expect(curve.distanceKm).toBe(40);
    expect(curve.plannedSecretBitsPerPulse).toBeGreaterThan(0);
    expect(curve.plannedSecretBitsPerPulse).toBeCloseTo(at(40), 15);
    for (const p of curve.points.filter((_, i) => i % 10 === 0)) expect(p.secretBitsPerPulse).toBeCloseTo(Math.max(0, at(p.distanceKm)), 15);
  });

  it('when the configured link is longer than the reach, then the curve still spans the configured length', () => {
    const curve = plannedCurve(bb84SettingsFromConfig(bb84({ length_km: 400 })));
    expect(curve.plannedSecretBitsPerPulse).toBe(0);
    expect(curve.points[curve.points.length - 1]!.distanceKm).toBeGreaterThanOrEqual(400);
  });
});

describe('dashboardLinkFromConfig', () => {
  it('when the module runs BB84, then the channel section, pulse rate and intensities are listed with units, and a planned curve comes along', () => {
    const link = dashboardLinkFromConfig(configSchema.parse({ module: { sim: 'bb84' }, simulator: { intensities: [0.4, 0.2, 0.0002], channel: { length_km: 12, pulse_rate_hz: 5e8 } } }));
    const byKey = new Map(link.parameters.map((p) => [p.key, p]));
    expect(byKey.get('simulator.channel.length_km')).toMatchObject({ value: 12, unit: 'km' });
    expect(byKey.get('simulator.intensities')).toMatchObject({ value: '0.4 / 0.2 / 0.0002' });
    expect(byKey.get('simulator.channel.pulse_rate_hz')).toMatchObject({ value: 5e8, unit: 'Hz' });
    for (const key of ['attenuation_db_per_km', 'detector_efficiency', 'dark_count_probability', 'afterpulse_probability', 'misalignment_error']) expect(byKey.has(`simulator.channel.${key}`), key).toBe(true);
    expect(link.plannedCurve?.distanceKm).toBe(12);
  });

  it('when the module runs the fake simulator, then only the simulator and the capacity are listed, and no curve', () => {
    const link = dashboardLinkFromConfig(configSchema.parse({ module: { sim: 'fake', max_key_count: 7 } }));
    expect(link.parameters.map((p) => [p.key, p.value])).toEqual([
      ['module.sim', 'fake'],
      ['module.max_key_count', 7],
    ]);
    expect(link.plannedCurve).toBeNull();
  });

  it('when the configuration carries secrets, then none of them is among the parameters shown', () => {
    const cfg = configSchema.parse({ module: { sim: 'bb84', operator_token: 'op-token-do-not-show', api_token: 'api-token-do-not-show' }, simulator: { private_key: 'deadbeef'.repeat(8), public_key: 'feedface'.repeat(8) } });
    const text = JSON.stringify(dashboardLinkFromConfig(cfg));
    for (const secret of ['op-token-do-not-show', 'api-token-do-not-show', 'deadbeef', 'feedface']) expect(text).not.toContain(secret);
  });
});
