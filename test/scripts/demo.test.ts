/**
 * scripts/demo.ts as a newcomer runs it: help, a usage error, and a short run on free ports (issue 16's
 * friction list: `--help` printed a stack trace, the demo used fixed ports).
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/processes.js';

const DEMO = join(ROOT, 'dist', 'scripts', 'demo.js');
const run = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((res) => {
    execFile(process.execPath, [DEMO, ...args], { timeout: 60_000, cwd: ROOT }, (err, stdout, stderr) => {
      res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });

describe('npm run demo', () => {
  it('when asked for --help, then it prints the usage and exits 0; an unknown option exits 2 with the usage, never a stack trace', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: npm run demo -- \[--keys N\] \[--length BITS\] \[--sim fake\|bb84\]/);
    const bad = await run(['--bogus']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/Unknown option '--bogus'/);
    expect(bad.stderr).toMatch(/usage: npm run demo/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  });

  it('when ports 5000 and 5001 are taken, then it still runs a pair on free ports and every key matches', async () => {
    const blockers = await Promise.all(
      [5000, 5001].map(
        (port) =>
          new Promise<ReturnType<typeof createServer> | undefined>((resolve) => {
            const s = createServer();
            s.once('error', () => resolve(undefined)); // already taken: just as good
            s.listen(port, '127.0.0.1', () => resolve(s));
          }),
      ),
    );
    try {
      const r = await run(['--keys', '5']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/all 5 keys matched/);
      // stdout and stderr are pipes here: progress comes on stderr as plain lines, never a carriage return.
      expect(r.stderr).not.toContain('\r');
      expect(r.stderr).toMatch(/^keys: started \(5 keys\)$/m);
      expect(r.stderr).toMatch(/^keys: 100% \(5\/5 keys\) \d+\.\d s  5 matched$/m);
      expect(r.stdout).not.toMatch(/keys: \d+%/);
    } finally {
      for (const s of blockers) s?.close();
    }
  });
});
