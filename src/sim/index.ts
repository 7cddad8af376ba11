/** Chooses the simulator named by module.sim. */
import type { Logger } from 'pino';
import type { ModuleConfig } from '../config/schema.js';
import type { LinkSigningKeys } from './bb84/simulator/authenticator.js';
import { createBb84Simulator } from './bb84/simulator/Bb84Simulator.js';
import { FakeSimulator } from './fake/FakeSimulator.js';
import type { Simulator } from './Simulator.js';

/** The BB84 stage options the configuration offers (config/schema.ts validates against them). */
export { PA_HASH_FAMILIES, type PaHashFamily } from './bb84/amplification/hashFamilies.js';

/**
 * The configured simulator. bb84 signs with simulator.private_key / public_key, or with the link credentials' keys
 * when those are unset: a missing or malformed key
 * is an Error whose one-line message names the field (never its value).
 */
export async function createSimulator(cfg: ModuleConfig, log?: Logger, linkKeys?: LinkSigningKeys): Promise<Simulator> {
  switch (cfg.module.sim) {
    case 'fake':
      return new FakeSimulator();
    case 'bb84':
      return createBb84Simulator(cfg, log, linkKeys);
    default:
      throw new Error(`module.sim: simulator '${cfg.module.sim}' is not available in this build`);
  }
}
