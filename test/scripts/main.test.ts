/**
 * The command line (src/main.ts) as a newcomer meets it: a start-up failure is one line on stderr that
 * names the setting and the fix (issue 16's friction list).
 */
import { createServer, type Server } from 'node:net';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { credentialsEnv } from '../../scripts/lib/linkCredentials.js';
import { freePort, ROOT, tempDir, testLinkCredentials } from '../support/processes.js';

const MAIN = join(ROOT, 'dist', 'src', 'main.js');
let blockers: Server[] = [];
afterEach(() => {
  for (const b of blockers) b.close();
  blockers = [];
});

const run = (env: Record<string, string>): Promise<{ code: number; stderr: string }> =>
  new Promise((res) => {
    execFile(process.execPath, [MAIN, '--config', '/dev/null'], { timeout: 20_000, env: { PATH: process.env.PATH ?? '', ...env } }, (err, _stdout, stderr) => {
      res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr });
    });
  });

describe('start-up failures', () => {
  it('when module.port is taken, then the module exits with one line naming module.port and the fix', async () => {
    const port = await freePort();
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', () => r()));
    blockers.push(blocker);
    const r = await run({ QKDM_MODULE_PORT: String(port), QKDM_MODULE_DATA_DIR: tempDir('taken'), QKDM_MODULE_LOG_LEVEL: 'silent', ...credentialsEnv(await testLinkCredentials(), 1) });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(new RegExp(`^qkd-module: start-up failed: module\\.port: 127\\.0\\.0\\.1:${port} is already in use .*--port`));
  });

  it('when a setting is invalid, then the module exits with one line naming the field', async () => {
    const r = await run({ QKDM_MODULE_PORT: 'abc', QKDM_MODULE_LOG_LEVEL: 'silent' });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/module\.port: expected an integer between 0 and 65535/);
  });
});
