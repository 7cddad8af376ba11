/**
 * Runs real module processes (node dist/src/main.js) on loopback for two-module tests.
 * Configuration goes through QKDM_* environment variables over a minimal YAML file.
 */
import type { ChildProcess } from 'node:child_process';
import { credentialsEnv, writeLinkCredentials, type CredentialFiles } from '../../scripts/lib/linkCredentials.js';
import { freePort, spawnModule, stopModuleProcess } from '../../scripts/lib/moduleProcess.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parsePyLiteral, toPyLiteral, type PyValue } from '../../src/api/codec/pyLiteral.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');

export { freePort };

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `qkdm-${prefix}-`));
}

export interface ModuleSpec {
  name: string;
  sender: 0 | 1;
  port: number;
  dataDir: string;
  maxKeyCount?: number;
  env?: Record<string, string>;
  /**
   * Link credentials: default, this test file's pair (every module of the file belongs to one link);
   * 'insecure' runs the module with peer_auth.insecure (tests of that mode only).
   */
  credentials?: CredentialFiles | 'insecure';
  /** Called with the process as soon as it is spawned, before it listens. */
  onSpawn?: (proc: ChildProcess) => void;
}

let sharedCredentials: Promise<CredentialFiles> | undefined;
/** One credential pair per test process (a test file), so any sender and detector it starts form a link. */
export function testLinkCredentials(): Promise<CredentialFiles> {
  sharedCredentials ??= writeLinkCredentials(tempDir('link'));
  return sharedCredentials;
}

export interface RunningModule {
  spec: ModuleSpec;
  url: string;
  address: string;
  proc: ChildProcess;
  output: () => string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function startModule(spec: ModuleSpec): Promise<RunningModule> {
  const configFile = join(spec.dataDir, `${spec.name}.yaml`);
  writeFileSync(configFile, 'module:\n  sim: fake\n');
  const auth =
    spec.credentials === 'insecure' ? { QKDM_PEER_AUTH_INSECURE: 'true' } : credentialsEnv(spec.credentials ?? (await testLinkCredentials()), spec.sender);
  const env: Record<string, string> = {
    ...auth,
    QKDM_MODULE_HOST: '127.0.0.1',
    QKDM_MODULE_PORT: String(spec.port),
    QKDM_MODULE_THIS_PUBLIC_IP: `127.0.0.1:${spec.port}`,
    QKDM_MODULE_SENDER: String(spec.sender),
    QKDM_MODULE_DATA_DIR: spec.dataDir,
    QKDM_MODULE_MAX_KEY_COUNT: String(spec.maxKeyCount ?? 20),
    QKDM_MODULE_LOG_LEVEL: 'warn',
    QKDM_MODULE_RETRY_INITIAL_MS: '50',
    QKDM_MODULE_RETRY_MAX_MS: '500',
    QKDM_MODULE_ROOM_RECHECK_MS: '1000',
    QKDM_MODULE_PEER_TIMEOUT_MS: '2000',
    ...spec.env,
  };
  const { proc, output } = await spawnModule({ name: spec.name, configFile, env, startTimeoutMs: 15_000, ...(spec.onSpawn ? { onSpawn: spec.onSpawn } : {}) });
  return {
    spec,
    url: `http://127.0.0.1:${spec.port}`,
    address: `127.0.0.1:${spec.port}`,
    proc,
    output,
    kill: (signal: NodeJS.Signals = 'SIGTERM') => stopModuleProcess(proc, signal),
  };
}

/**
 * POSTs a Python literal exactly as the original clients do (no Content-Type) and parses the answer.
 * `headers` adds headers the original clients never send (e.g. WAIT, for a get_key that may wait).
 */
export async function postPy(url: string, path: string, value: PyValue | undefined, headers: Record<string, string> = {}): Promise<{ status: number; value: PyValue; headers: Headers }> {
  const res = await fetch(`${url}${path}`, { method: 'POST', body: value === undefined ? '' : toPyLiteral(value), headers });
  const text = await res.text();
  return { status: res.status, value: parsePyLiteral(text), headers: res.headers };
}

/** `Prefer: wait=N` (RFC 7240): a seed get_key waits up to N seconds (never beyond the stream timeout) instead of answering at once. */
export const WAIT = (seconds = 10): Record<string, string> => ({ prefer: `wait=${seconds}` });

export async function getJson(url: string, path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}${path}`);
  return { status: res.status, body: await res.json() };
}

export const hexOf = (v: PyValue): string => {
  if (!(v instanceof Uint8Array)) throw new Error(`expected bytes, got ${typeof v}`);
  return Buffer.from(v).toString('hex');
};
