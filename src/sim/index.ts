/** Chooses the simulator named by module.sim. */
import type { Logger } from 'pino';
import type { ModuleConfig } from '../config/schema.js';
import type { LinkSigningKeys } from './bb84/simulator/authenticator.js';
import { createBb84Simulator } from './bb84/simulator/Bb84Simulator.js';
import { FakeSimulator } from './fake/FakeSimulator.js';
import type { Simulator } from './Simulator.js';
import type { ReconciledBlockStore } from '../store/ReconciledBlockStore.js';

/** The BB84 stage options the configuration offers (config/schema.ts validates against them). */
export { PA_HASH_FAMILIES, type PaHashFamily } from './bb84/amplification/hashFamilies.js';

/** What the composition root lends the simulator. */
export interface SimulatorDeps {
  log?: Logger;
  /** The link credentials' signing keys (bb84 signs with them unless simulator.private_key / public_key are set). */
  linkKeys?: LinkSigningKeys;
  /** Where bb84 keeps the corrected blocks waiting for privacy amplification (default: process memory, tests only). */
  blocks?: ReconciledBlockStore;
}

/**
 * The configured simulator. bb84 signs with simulator.private_key / public_key, or with the link credentials' keys
 * when those are unset: a missing or malformed key
 * is an Error whose one-line message names the field (never its value).
 */
export async function createSimulator(cfg: ModuleConfig, deps: SimulatorDeps = {}): Promise<Simulator> {
  switch (cfg.module.sim) {
    case 'fake':
      return new FakeSimulator();
    case 'bb84':
      return createBb84Simulator(cfg, deps);
    default:
      throw new Error(`module.sim: simulator '${cfg.module.sim}' is not available in this build`);
  }
}
