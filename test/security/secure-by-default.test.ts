/**
 * Issue 14, "What to build" 1: the peer channel is authenticated by default. A module whose peer channel
 * would be unauthenticated refuses to start unless peer_auth.insecure is set, which is warned about at
 * every start; `npm run keygen -- --pair DIR` writes both ends' credentials, labelled so that neither end
 * can be given the other's secret; the shipped configurations (configM.yaml, config/bob.yaml) start as an
 * authenticated pair with the development credentials `npm install` writes.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnModule } from '../../scripts/lib/moduleProcess.js';
import { freePort, ROOT, startModule, tempDir, type RunningModule } from '../support/processes.js';
import { getKey, openStream, until } from './support.js';

const KEYGEN = join(ROOT, 'dist', 'scripts', 'keygen.js');
const keygen = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((res) => {
    execFile(process.execPath, [KEYGEN, ...args], { timeout: 30_000, cwd: ROOT }, (err, stdout, stderr) => {
      res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });

let running: RunningModule[] = [];
const procs: Array<{ kill(sig: NodeJS.Signals): boolean }> = [];
afterEach(async () => {
  await Promise.all(running.map((m) => m.kill('SIGKILL')));
  running = [];
  for (const p of procs.splice(0)) p.kill('SIGKILL');
});

describe('secure by default: the peer channel needs link credentials', () => {
  it('when a module has no credentials and is not explicitly insecure, then it refuses to start, naming both ways out', async () => {
    const err = await startModule({ name: 'alice', sender: 1, port: await freePort(), dataDir: tempDir('nocred'), env: { QKDM_PEER_AUTH_CREDENTIALS: '' } }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/exited with 1 before listening/);
    expect((err as Error).message).toMatch(/peer_auth\.credentials: not set.*npm run keygen -- --pair DIR.*peer_auth\.insecure: true/s);
  });

  it('when a module runs with peer_auth.insecure, then it starts and warns INSECURE at every start', async () => {
    const spec = { name: 'alice', sender: 1 as const, port: await freePort(), dataDir: tempDir('insecure'), credentials: 'insecure' as const };
    const first = await startModule(spec);
    running.push(first);
    await until(() => /INSECURE: peer_auth\.insecure is set/.test(first.output()), 5000, 'the INSECURE warning');
    await first.kill('SIGTERM');
    const second = await startModule(spec);
    running.push(second);
    await until(() => /INSECURE: peer_auth\.insecure is set/.test(second.output()), 5000, 'the INSECURE warning');
  });

  it('when keygen --pair writes a link, then each file is private, says whom it is for, and the other end refuses it', async () => {
    const dir = join(tempDir('keygen'), 'link');
    const r = await keygen(['--pair', dir, '--names', 'north,south']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/north\.json\s+for 'north', the sender \(module\.sender: 1\)/);
    expect(r.stdout).toMatch(/south\.json\s+for 'south', the detector \(module\.sender: 0\)/);
    for (const name of ['north', 'south']) {
      const file = join(dir, `${name}.json`);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const doc = JSON.parse(readFileSync(file, 'utf8')) as { note: string; this_module: { name: string }; secret_key: string; peer_module: Record<string, unknown> };
      expect(doc.note).toMatch(new RegExp(`SECRET: link credentials of module '${name}'`));
      expect(doc.this_module.name).toBe(name);
      expect(doc.peer_module).not.toHaveProperty('secret_key');
      expect(r.stdout).not.toContain(doc.secret_key);
    }
    // The detector's file given to a sender: refused at start, naming the fix.
    const wrong = await startModule({ name: 'north', sender: 1, port: await freePort(), dataDir: tempDir('wrongfile'), credentials: { sender: join(dir, 'south.json'), detector: join(dir, 'north.json') } }).catch((e: Error) => e);
    expect((wrong as Error).message).toMatch(/this file is for module 'south' \(module\.sender 0\), but this module has module\.sender 1/);
    // No silent overwrite; --if-missing keeps; --force replaces.
    const again = await keygen(['--pair', dir, '--names', 'north,south']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/--force/);
    const before = readFileSync(join(dir, 'north.json'), 'utf8');
    expect((await keygen(['--pair', dir, '--names', 'north,south', '--if-missing'])).stdout).toMatch(/kept/);
    expect(readFileSync(join(dir, 'north.json'), 'utf8')).toBe(before);
    expect((await keygen(['--pair', dir, '--names', 'north,south', '--force'])).code).toBe(0);
    expect(readFileSync(join(dir, 'north.json'), 'utf8')).not.toBe(before);
  });

  it('when the shipped configM.yaml and config/bob.yaml start with the development credentials, then they form an authenticated pair', async () => {
    if (!existsSync(join(ROOT, 'credentials', 'dev', 'alice.json'))) expect((await keygen(['--pair', 'credentials/dev', '--if-missing'])).code).toBe(0);
    const start = async (name: 'alice' | 'bob', config: string): Promise<RunningModule> => {
      // Only the ports move (the shipped ones may be taken here): the rest is the shipped file.
      const [port, peerPort] = [await freePort(), await freePort()];
      const dataDir = tempDir(`shipped-${name}`);
      const { proc, output } = await spawnModule({
        name,
        configFile: join(ROOT, config),
        env: { QKDM_MODULE_PORT: String(port), QKDM_MODULE_PEER_PORT: String(peerPort), QKDM_MODULE_THIS_PUBLIC_IP: `127.0.0.1:${peerPort}`, QKDM_MODULE_DATA_DIR: dataDir },
        cwd: ROOT,
      });
      procs.push(proc);
      return {
        spec: { name, sender: name === 'alice' ? 1 : 0, port, dataDir },
        url: `http://127.0.0.1:${port}`,
        address: `127.0.0.1:${peerPort}`,
        proc,
        output,
        kill: async () => void proc.kill('SIGKILL'),
      };
    };
    const alice = await start('alice', 'configM.yaml');
    const bob = await start('bob', 'config/bob.yaml');
    expect(alice.output()).not.toMatch(/INSECURE/);
    const id = await openStream({ alice, bob });
    const [a, b] = await Promise.all([getKey(alice, id), getKey(bob, id)]);
    expect([a.status, b.status]).toEqual([0, 0]);
    expect(b.key).toBe(a.key);
    expect(alice.output() + bob.output()).not.toMatch(/"level":50/); // no error logged
  });
});
