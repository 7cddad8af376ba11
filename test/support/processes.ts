/**
 * Runs real module processes (node dist/src/main.js) on loopback for two-module tests.
 * Configuration goes through QKDM_* environment variables over a minimal YAML file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parsePyLiteral, toPyLiteral, type PyValue } from '../../src/api/codec/pyLiteral.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');
const MAIN = join(ROOT, 'dist', 'src', 'main.js');

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

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
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
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
  const proc = spawn(process.execPath, [MAIN, '--config', configFile], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`${spec.name} did not start:\n${out}`)), 15_000);
    const onData = (): void => {
      if (out.includes('qkd-module listening')) {
        clearTimeout(timer);
        res();
      }
    };
    proc.stdout!.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`${spec.name} exited with ${code}:\n${out}`));
    });
  });
  return {
    spec,
    url: `http://127.0.0.1:${spec.port}`,
    address: `127.0.0.1:${spec.port}`,
    proc,
    output: () => out,
    kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
      return new Promise<void>((res) => {
        proc.once('exit', () => res());
        proc.kill(signal);
      });
    },
  };
}

/** POSTs a Python literal exactly as the original clients do (no Content-Type) and parses the answer. */
export async function postPy(url: string, path: string, value: PyValue | undefined): Promise<{ status: number; value: PyValue }> {
  const res = await fetch(`${url}${path}`, { method: 'POST', body: value === undefined ? '' : toPyLiteral(value) });
  const text = await res.text();
  return { status: res.status, value: parsePyLiteral(text) };
}

export async function getJson(url: string, path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}${path}`);
  return { status: res.status, body: await res.json() };
}

export const hexOf = (v: PyValue): string => {
  if (!(v instanceof Uint8Array)) throw new Error(`expected bytes, got ${typeof v}`);
  return Buffer.from(v).toString('hex');
};
