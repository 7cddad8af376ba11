/**
 * The security analyses of BB84 with weak pulses: pure arithmetic, no I/O, shared by the protocol (which
 * sizes each privacy-amplification block with lim2014KeyLength), the simulator and the planning tool.
 * docs/bb84-security.md describes each analysis, its equations, assumptions and limits.
 */
export * from './linkModel.js';
export * from './entropy.js';
export * from './decoyCounts.js';
export * from './lim2014.js';
export * from './lim2014Rate.js';
export * from './lim2014Optimise.js';
export * from './asymptoticOptions.js';
export * from './infiniteDecoy.js';
export * from './vacuumWeak.js';
export * from './noDecoy.js';
export * from './plob.js';
export * from './singlePhotonOnly.js';
export * from './optimise.js';
export * from './registry.js';
