/** Chooses the simulator named by module.sim. */
import type { ModuleConfig } from '../config/schema.js';
import { FakeSimulator } from './fake/FakeSimulator.js';
import type { Simulator } from './Simulator.js';

export async function createSimulator(cfg: ModuleConfig): Promise<Simulator> {
  switch (cfg.module.sim) {
    case 'fake':
      return new FakeSimulator();
    default:
      throw new Error(`module.sim: simulator '${cfg.module.sim}' is not available in this build`);
  }
}
