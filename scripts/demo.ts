/**
 * npm run demo: two modules (embedded stores, free ports on 127.0.0.1, one sender, one receiver,
 * fresh link credentials), one stream opened at both ends exactly as a key server does
 * (Python-literal bodies), keys fetched from both ends and compared, with progress on stderr
 * (scripts/lib/progress.ts).
 * Exit 0 when every key matched, 1 when not, 2 for a usage error.
 *
 *   npm run demo -- [--keys N] [--length BITS] [--sim fake|bb84] [--help]
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parsePyLiteral, toPyLiteral, type PyValue } from '../src/api/codec/pyLiteral.js';
import { credentialsEnv, writeLinkCredentials, type CredentialFiles } from './lib/linkCredentials.js';
import { freePort, spawnModule } from './lib/moduleProcess.js';
import { Progress } from './lib/progress.js';

const USAGE = [
  'usage: npm run demo -- [--keys N] [--length BITS] [--sim fake|bb84]',
  '  --keys N        keys to fetch from each end and compare (default 100)',
  '  --length BITS   key length, a positive multiple of 8 (default 256)',
  '  --sim NAME      the simulated devices: fake (CSPRNG keys) or bb84 (default fake)',
].join('\n');

let values: { keys?: string; length?: string; sim?: string; help?: boolean };
try {
  ({ values } = parseArgs({
    options: { keys: { type: 'string', default: '100' }, length: { type: 'string', default: '256' }, sim: { type: 'string', default: 'fake' }, help: { type: 'boolean', short: 'h', default: false } },
    strict: true,
    allowPositionals: false,
  }));
} catch (err) {
  console.error(`demo: ${(err as Error).message}\n${USAGE}`);
  process.exit(2);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
if (values.sim !== 'fake' && values.sim !== 'bb84') {
  console.error(`demo: --sim must be fake or bb84\n${USAGE}`);
  process.exit(2);
}
/** Free ports, so the demo runs beside anything already listening on 5000/5001. */
const PORTS = { alice: await freePort(), bob: await freePort() };
const total = Number(values.keys);
const length = Number(values.length);
if (!Number.isInteger(total) || total <= 0 || !Number.isInteger(length) || length <= 0 || length % 8 !== 0) {
  console.error(`demo: --keys must be a positive integer and --length a positive multiple of 8\n${USAGE}`);
  process.exit(2);
}

const work = mkdtempSync(join(tmpdir(), 'qkdm-demo-'));
const children: ChildProcess[] = [];

/**
 * Fresh link credentials per run: they authenticate the peer channel, and with sim bb84 they also sign
 * the blocks' transcripts.
 */
let link: CredentialFiles | undefined;

async function startModule(name: 'alice' | 'bob'): Promise<void> {
  const port = PORTS[name];
  const configFile = join(work, `${name}.yaml`);
  writeFileSync(configFile, 'module:\n  host: 127.0.0.1\n');
  const { proc } = await spawnModule({
    name,
    configFile,
    env: {
      QKDM_MODULE_PORT: String(port),
      QKDM_MODULE_THIS_PUBLIC_IP: `127.0.0.1:${port}`,
      QKDM_MODULE_SENDER: name === 'alice' ? '1' : '0',
      QKDM_MODULE_SIM: values.sim!,
      QKDM_MODULE_DATA_DIR: join(work, name),
      QKDM_MODULE_LOG_LEVEL: 'warn',
      ...credentialsEnv(link!, name === 'alice' ? 1 : 0),
    },
  });
  children.push(proc);
}

/**
 * How long one get_key waits for the exchange, s. bb84: a stream's first key comes one privacy-amplification block
 * after it opens (several error-correction rounds, docs/bb84.md "The PA block").
 */
const WAIT_S = values.sim === 'bb84' ? 60 : 10;

async function call(port: number, path: string, body: PyValue): Promise<PyValue> {
  // Prefer: wait (RFC 7240): a Python-literal get_key answers at once (as the original) unless asked to wait for the exchange.
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', body: toPyLiteral(body), headers: { prefer: `wait=${WAIT_S}` } });
  return parsePyLiteral(await res.text());
}

function cleanup(): void {
  for (const c of children) c.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}

async function main(): Promise<number> {
  console.log(`starting alice (sender) on :${PORTS.alice} and bob (receiver) on :${PORTS.bob}, sim=${values.sim}, embedded stores in ${work}`);
  link = await writeLinkCredentials(join(work, 'link'));
  await Promise.all([startModule('alice'), startModule('bob')]);
  const qos = { timeout: WAIT_S * 1000, length };
  if (values.sim === 'bb84') console.log('bb84: the first key comes after one privacy-amplification block (4e6 key-basis bits, several rounds)');
  const [id, s1] = (await call(PORTS.alice, '/open_connect', [null, `127.0.0.1:${PORTS.bob}`, qos, null])) as [string, number];
  if (s1 !== 0) throw new Error(`open_connect at alice failed with status ${s1}`);
  const [, s2] = (await call(PORTS.bob, '/open_connect', [null, `127.0.0.1:${PORTS.alice}`, qos, id])) as [string, number];
  if (s2 !== 0) throw new Error(`open_connect at bob failed with status ${s2}`);
  console.log(`stream ${id} open at both ends; fetching ${total} keys of ${length} bits from each`);
  let matched = 0;
  // On stderr: a line redrawn in place on a terminal, a line per tenth of the run in CI logs and pipes.
  const progress = new Progress({ label: 'keys', total, unit: 'keys' });
  for (let i = 0; i < total; i++) {
    const [ka, ia, sa] = (await call(PORTS.alice, '/get_key', [id, -1, {}])) as [PyValue, number, number];
    const [kb, ib, sb] = (await call(PORTS.bob, '/get_key', [id, -1, {}])) as [PyValue, number, number];
    const same = sa === 0 && sb === 0 && ia === ib && ka instanceof Uint8Array && kb instanceof Uint8Array && Buffer.from(ka).equals(Buffer.from(kb));
    if (same) matched++;
    else progress.log(`key ${i}: mismatch (status ${sa}/${sb}, index ${ia}/${ib})`, process.stdout);
    progress.update(i + 1, `${matched} matched`);
  }
  progress.finish();
  await call(PORTS.alice, '/close', [id]);
  const ok = matched === total;
  console.log(ok ? `all ${total} keys matched` : `${total - matched} of ${total} keys did NOT match`);
  return ok ? 0 : 1;
}

main()
  .then((code) => {
    cleanup();
    process.exit(code);
  })
  .catch((err: unknown) => {
    console.error(`\ndemo failed: ${(err as Error).message}`);
    cleanup();
    process.exit(1);
  });
