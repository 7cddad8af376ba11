/**
 * scripts/plan: secret key rates a BB84 link should give under each security analysis, per distance.
 *
 *   npm run plan -- --link config/links/default.yaml --analysis lim2014,infinite-decoy --distances 0,25,50,100 [--json] [--svg OUT.svg]
 *
 * The analyses are the module's own (src/sim/bb84/analysis/); `--help` lists them and the link-file fields.
 * docs/bb84-security.md explains what each proves. Exit codes: 0 ok, 2 usage or input error, 1 write failure.
 */
import { main } from './lib/plan/cli.js';

process.exitCode = main(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
