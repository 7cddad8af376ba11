/**
 * Command line: `node dist/src/main.js [--config FILE] [--port N]` (npm start -- ...).
 * A configuration error prints one line naming the field and exits with status 2.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config/load.js';
import { createModule } from './server.js';

const USAGE = 'usage: npm start -- [--config FILE] [--port N]\n  FILE defaults to ./configM.yaml; QKDM_<SECTION>_<FIELD> environment variables override it.';

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({ options: { config: { type: 'string', short: 'c' }, port: { type: 'string', short: 'p' }, help: { type: 'boolean', short: 'h' } } });
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (args.values.help) {
    console.log(USAGE);
    return;
  }
  let port: number | undefined;
  if (args.values.port !== undefined) {
    port = Number(args.values.port);
    if (!/^\d+$/.test(args.values.port) || port > 65535) {
      console.error(`--port: expected an integer between 0 and 65535, got "${args.values.port}"`);
      process.exit(2);
    }
  }
  let config;
  try {
    config = loadConfig({ ...(args.values.config ? { file: args.values.config } : {}), env: process.env, overrides: port !== undefined ? { port } : {} });
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const mod = await createModule(config);
  const shutdown = (signal: string): void => {
    mod.log.info({ signal }, 'shutting down');
    mod.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  const actualPort = await mod.listen();
  // One plain line on stdout so scripts (and tests) know the module is up.
  const peerPort = mod.peerPort();
  process.stdout.write(`qkd-module listening on ${config.module.host}:${actualPort}${peerPort !== undefined ? ` (peer routes on ${config.module.host}:${peerPort})` : ''}\n`);
}

main().catch((err: unknown) => {
  console.error(`qkd-module: start-up failed: ${(err as Error).message}`);
  process.exit(1);
});
