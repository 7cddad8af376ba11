/**
 * scripts/keygen: credentials for the peer channel and the BB84 transcript signatures.
 *
 *   npm run keygen -- --pair DIR [--names alice,bob] [--scheme S] [--if-missing] [--force]
 *       Link credentials for both ends of one link: DIR/<sender>.json for the module with module.sender 1,
 *       DIR/<detector>.json for the module with module.sender 0. Each file holds its own module's secret
 *       key and the other's public key, and says which module it is for; a module refuses the other's file.
 *       Set peer_auth.credentials of each module to its own file (docs/security.md).
 *   npm run keygen -- [--scheme S]
 *       One signing key pair as a YAML fragment (simulator.private_key for THIS module; the public key is
 *       for the PEER module's simulator.public_key), for operators who keep the BB84 keys apart.
 *
 * Exit codes: 0 ok, 2 usage error, 1 failure.
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { encodeKey, generateKeyPair } from '../src/crypto/keys.js';
import { isSignatureScheme, SIGNATURE_SCHEMES } from '../src/crypto/signatures.js';
import { generateCredentialPair, type LinkCredentialsFile } from '../src/exchange/auth/linkCredentials.js';

const USAGE = [
  `usage: npm run keygen -- --pair DIR [--names SENDER,DETECTOR] [--scheme S] [--if-missing] [--force]`,
  `       npm run keygen -- [--scheme S]`,
  `  --pair DIR     write link credentials for both modules of a link into DIR (default names alice,bob)`,
  `  --names A,B    file and module names: A is the sender (module.sender 1), B the detector (module.sender 0)`,
  `  --scheme S     ${SIGNATURE_SCHEMES.join(' | ')} (default ${SIGNATURE_SCHEMES[0]})`,
  `  --if-missing   with --pair: do nothing when both files exist already`,
  `  --force        with --pair: overwrite existing files (the old credentials stop working)`,
].join('\n');

function usageError(message: string): never {
  process.stderr.write(`keygen: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function writeSecretFile(path: string, content: LinkCredentialsFile, note: string): void {
  writeFileSync(path, `${JSON.stringify({ note, ...content }, null, 2)}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
}

async function writePair(dir: string, names: [string, string], scheme: (typeof SIGNATURE_SCHEMES)[number], ifMissing: boolean, force: boolean): Promise<void> {
  const [senderName, detectorName] = names;
  const senderFile = join(dir, `${senderName}.json`);
  const detectorFile = join(dir, `${detectorName}.json`);
  const exist = [senderFile, detectorFile].filter((f) => existsSync(f));
  if (exist.length === 2 && ifMissing) {
    process.stdout.write(`keygen: link credentials already in ${dir} (kept)\n`);
    return;
  }
  if (exist.length > 0 && !force) {
    usageError(`${exist.join(' and ')} exist${exist.length === 1 ? 's' : ''}: pass --force to replace the link's credentials (the old ones stop working)`);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pair = await generateCredentialPair(scheme, { sender: senderName, detector: detectorName });
  const note = (own: string, sender: 0 | 1, peer: string): string =>
    `SECRET: link credentials of module '${own}' (module.sender ${sender}) only. Set its peer_auth.credentials to this file. `
    + `Never give it to '${peer}': that module has its own file.`;
  writeSecretFile(senderFile, pair.sender, note(senderName, 1, detectorName));
  writeSecretFile(detectorFile, pair.detector, note(detectorName, 0, senderName));
  process.stdout.write(
    [
      `keygen: wrote link credentials (${scheme}, link ${pair.sender.link_id}):`,
      `  ${senderFile}   for '${senderName}', the sender (module.sender: 1):   peer_auth.credentials: ${senderFile}`,
      `  ${detectorFile}   for '${detectorName}', the detector (module.sender: 0):   peer_auth.credentials: ${detectorFile}`,
      `Each file holds only its own module's secret key: copy each to its own module, never both to one.`,
      '',
    ].join('\n'),
  );
}

async function main(): Promise<void> {
  let values: { scheme?: string; help?: boolean; pair?: string; names?: string; 'if-missing'?: boolean; force?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        scheme: { type: 'string', default: 'slh-dsa-sha2-128f' },
        pair: { type: 'string' },
        names: { type: 'string', default: 'alice,bob' },
        'if-missing': { type: 'boolean', default: false },
        force: { type: 'boolean', default: false },
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
  if (values.pair !== undefined) {
    const names = (values.names ?? '').split(',');
    if (names.length !== 2 || names.some((n) => !/^[A-Za-z0-9._-]{1,64}$/.test(n)) || names[0] === names[1]) {
      usageError('--names: expected two different names such as alice,bob (letters, digits, . _ -)');
    }
    await writePair(values.pair, names as [string, string], scheme, values['if-missing'] ?? false, values.force ?? false);
    return;
  }

  const { publicKey, secretKey } = await generateKeyPair(scheme);
  const lines = [
    `# ${scheme} signing key pair, generated ${new Date().toISOString()}`,
    '# For THIS module (keep secret; prefer QKDM_SIMULATOR_PRIVATE_KEY_FILE):',
    'simulator:',
    `  signature: ${scheme}`,
    `  private_key: "${encodeKey(secretKey)}"`,
    '# For the PEER module: put this line in ITS configuration, under simulator:, as its public_key.',
    '# (Not this module\'s simulator.public_key: that must be the peer\'s public key.)',
    `#   public_key: "${encodeKey(publicKey)}"`,
  ];
  secretKey.fill(0);
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`keygen: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
