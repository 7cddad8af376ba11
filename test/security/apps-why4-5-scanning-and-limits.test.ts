/**
 * Issue 15, "Why" 4 and 5: open_connect answered a different error for a MySQL port, a closed port and
 * another module (a port scanner for whoever could call it); 4000 idle GET_KEY waits were all held
 * (4026 open descriptors) and one client opened 500 streams of 8192-bit keys in 10 s.
 *
 * Answers: one answer for every destination that is not this link's peer; caps on waiting GET_KEY
 * calls (per application and in all) and on open streams per application, with a clear error.
 */
import { readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, startModule, tempDir, type RunningModule } from '../support/processes.js';
import { writeLinkCredentials } from '../../scripts/lib/linkCredentials.js';
import { appPy, openStream, startPair, until, type Pair } from './support.js';

let pairs: Pair[] = [];
let extra: RunningModule[] = [];
let servers: Server[] = [];
afterEach(async () => {
  await Promise.all([...pairs.flatMap((p) => [p.alice, p.bob]), ...extra].map((m) => m.kill('SIGKILL')));
  pairs = [];
  extra = [];
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  servers = [];
});

describe('Why 4: open_connect tells a MySQL port from a closed port from another module', () => {
  it('when the destination is MariaDB, a closed port, a TCP service that hangs up, or a module of another link, then the answer is the same', async () => {
    const pair = await startPair();
    pairs.push(pair);
    // A module of another link (its own credentials): authenticated refusal is impossible, like any stranger.
    const stranger = await startModule({ name: 'carol', sender: 0, port: await freePort(), dataDir: tempDir('carol'), credentials: await writeLinkCredentials(tempDir('carol-link')) });
    extra.push(stranger);
    const hangUp = createServer((socket) => socket.destroy());
    const hangUpPort = await freePort();
    await new Promise<void>((r) => hangUp.listen(hangUpPort, '127.0.0.1', () => r()));
    servers.push(hangUp);
    const closed = await freePort();
    const destinations = ['127.0.0.1:3306', `127.0.0.1:${closed}`, `127.0.0.1:${hangUpPort}`, stranger.address];
    const answers: string[] = [];
    for (const d of destinations) {
      const r = await appPy(pair.alice, '/open_connect', [null, d, { timeout: 3000, length: 256 }, null]);
      answers.push(JSON.stringify([r.status, r.value]).split(d).join('<destination>'));
    }
    expect(new Set(answers).size).toBe(1);
    // The original's failure answer (HTTP 400, [None, 2]); the reason header is the same fixed text for all.
    expect(answers[0]).toBe('[400,[null,2]]');
    // The legitimate peer still works.
    expect(await openStream(pair)).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('Why 5: idle GET_KEY waits and streams without bounds', () => {
  it('when one application leaves 300 GET_KEY calls waiting, then at most max_waiting_get_key_per_application wait, the rest are refused at once, and descriptors stay bounded', async () => {
    const pair = await startPair({ env: { QKDM_MODULE_MAX_WAITING_GET_KEY_PER_APPLICATION: '20', QKDM_MODULE_MAX_WAITING_GET_KEY: '50' } });
    pairs.push(pair);
    // A stream whose keys never come: the peer application never joins, so GET_KEY waits its timeout.
    const a = await appPy(pair.alice, '/open_connect', [null, pair.bob.address, { timeout: 60_000, length: 256 }, null]);
    const id = (a.value as [string])[0];
    const t0 = Date.now();
    const controllers = Array.from({ length: 300 }, () => new AbortController());
    const done: Array<{ status: number; body: string; message: string | null }> = [];
    const calls = controllers.map((c) =>
      // Prefer: wait=60: a Python-literal get_key answers at once unless asked to wait.
      fetch(`${pair.alice.url}/get_key`, { method: 'POST', body: `['${id}', -1, {}]`, headers: { prefer: 'wait=60' }, signal: c.signal }).then(
        async (r) => done.push({ status: r.status, body: await r.text(), message: r.headers.get('x-qkdm-message') }),
        () => undefined, // aborted at the end of the test
      ),
    );
    // The refused ones answer at once; the 20 admitted ones keep waiting (their timeout is 60 s).
    await until(() => done.length >= 280, 10_000, '280 refusals');
    await new Promise((r) => setTimeout(r, 300));
    expect(done).toHaveLength(280);
    expect(done.every((d) => d.status === 429)).toBe(true);
    expect(done[0]!.body).toBe('[None, -1, 1]');
    expect(done[0]!.message).toMatch(/too many GET_KEY calls are waiting/);
    expect(Date.now() - t0).toBeLessThan(15_000);
    // Refused callers' connections are closed by the module ("Connection: close").
    await new Promise((r) => setTimeout(r, 500));
    const fds = readdirSync(`/proc/${pair.alice.proc.pid}/fd`).length;
    expect(fds).toBeLessThan(200);
    for (const c of controllers) c.abort();
    await Promise.all(calls);
  });

  it('when one application opens more streams than max_streams_per_application, then the next open answers a clear error and closing makes room', async () => {
    const pair = await startPair({ env: { QKDM_MODULE_MAX_STREAMS_PER_APPLICATION: '5' } });
    pairs.push(pair);
    const ids: string[] = [];
    for (let n = 0; n < 5; n++) {
      const r = await appPy(pair.alice, '/open_connect', [null, pair.bob.address, { timeout: 3000, length: 8192 }, null]);
      expect((r.value as unknown[])[1]).toBe(0);
      ids.push((r.value as [string])[0]);
    }
    const refused = await appPy(pair.alice, '/open_connect', [null, pair.bob.address, { timeout: 3000, length: 8192 }, null]);
    expect(refused.status).toBe(429);
    expect(refused.value).toEqual([null, 2]);
    expect(refused.message).toMatch(/5 open streams \(module\.max_streams_per_application\)/);
    expect((await appPy(pair.alice, '/close', [ids[0]!])).value).toBe(0);
    expect(((await appPy(pair.alice, '/open_connect', [null, pair.bob.address, { timeout: 3000, length: 8192 }, null])).value as unknown[])[1]).toBe(0);
  });
});
