/**
 * scripts/keygen: generate a signing key pair for the classical channel and print it as a YAML fragment
 * for configM.yaml.
 *
 *   npm run keygen [-- --scheme slh-dsa-sha2-128f|sphincs-shake256-256s-robust]
 *
 * private_key goes into this module's configuration (or, better, into the file named by
 * QKDM_SIMULATOR_PRIVATE_KEY_FILE); public_key goes into the PEER module's simulator.public_key.
 * Exit codes: 0 ok, 2 usage error (unknown scheme or option), 1 failure.
 */
import { parseArgs } from 'node:util';
import { encodeKey, generateKeyPair } from '../src/crypto/keys.js';
import { isSignatureScheme, SIGNATURE_SCHEMES } from '../src/crypto/signatures.js';

const USAGE = `usage: npm run keygen -- [--scheme ${SIGNATURE_SCHEMES.join('|')}]  (default ${SIGNATURE_SCHEMES[0]})`;

function usageError(message: string): never {
  process.stderr.write(`keygen: ${message}\n${USAGE}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let values: { scheme?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        scheme: { type: 'string', default: 'slh-dsa-sha2-128f' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    usageError(err instanceof Error ? err.message : String(err));
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const scheme = values.scheme;
  if (!isSignatureScheme(scheme)) {
    usageError(`unknown scheme ${JSON.stringify(scheme)}; expected one of: ${SIGNATURE_SCHEMES.join(', ')}`);
  }

  const { publicKey, secretKey } = await generateKeyPair(scheme);
  const lines = [
    `# ${scheme} signing key pair, generated ${new Date().toISOString()}`,
    '# private_key: this module only, keep it secret (prefer QKDM_SIMULATOR_PRIVATE_KEY_FILE).',
    '# public_key: give it to the peer module, whose simulator.public_key it becomes.',
    'simulator:',
    `  signature: ${scheme}`,
    `  private_key: "${encodeKey(secretKey)}"`,
    `  public_key: "${encodeKey(publicKey)}"`,
  ];
  secretKey.fill(0);
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`keygen: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
