/**
 * Starting real module processes (node dist/src/main.js) for the demo, the benchmarks and the
 * two-module tests: one free-port finder and one launcher that resolves once the module printed
 * its "listening" line (or rejects with everything it printed).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Walks up from this file to the package root (works from scripts/lib and from dist/scripts/lib). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++, dir = resolve(dir, '..')) {
    if (dir.endsWith('/scripts') || dir.endsWith('\\scripts')) {
      const up = resolve(dir, '..');
      return up.endsWith('dist') ? resolve(up, '..') : up;
    }
  }
  throw new Error('moduleProcess: package root not found');
}

export const MODULE_MAIN = join(packageRoot(), 'dist', 'src', 'main.js');

/** A free TCP port on 127.0.0.1 (the port is released again before it is used: fine for local tests). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

export interface SpawnedModule {
  proc: ChildProcess;
  /** Everything the process printed so far (stdout and stderr). */
  output(): string;
}

export interface SpawnOptions {
  name: string;
  configFile: string;
  /** Environment of the module (QKDM_* overrides); nothing else from this process is passed on but PATH. */
  env: Record<string, string>;
  /** Extra node arguments, e.g. --cpu-prof. */
  nodeArgs?: string[];
  startTimeoutMs?: number;
  /** Working directory (relative paths in the configuration resolve against it); default this process's. */
  cwd?: string;
  /** Called with the process as soon as it is spawned, before it listens (crash tests kill it at start-up). */
  onSpawn?: (proc: ChildProcess) => void;
}

export async function spawnModule(opts: SpawnOptions): Promise<SpawnedModule> {
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), MODULE_MAIN, '--config', opts.configFile], {
    env: { PATH: process.env.PATH ?? '', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  });
  opts.onSpawn?.(proc);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((res, rej) => {
    const onExit = (code: number | null): void => {
      clearTimeout(timer);
      rej(new Error(`${opts.name} exited with ${code} before listening:\n${out.trim()}`));
    };
    const timer = setTimeout(() => {
      proc.off('exit', onExit);
      proc.kill('SIGKILL'); // never leave a half-started module behind
      rej(new Error(`${opts.name} did not start:\n${out.trim()}`));
    }, opts.startTimeoutMs ?? 20_000);
    const onData = (): void => {
      if (!out.includes('qkd-module listening')) return;
      clearTimeout(timer);
      proc.stdout!.off('data', onData);
      proc.off('exit', onExit);
      res();
    };
    proc.stdout!.on('data', onData);
    proc.once('exit', onExit);
  });
  return { proc, output: () => out };
}

/** Stops a module (SIGTERM by default) and resolves when it has exited. */
export function stopModuleProcess(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise<void>((res) => {
    proc.once('exit', () => res());
    proc.kill(signal);
  });
}
