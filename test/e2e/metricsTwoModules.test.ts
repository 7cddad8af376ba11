/**
 * Metrics of a real link: two module processes on loopback deliver keys; /metrics at both ends agrees
 * with GET /streams/{id} and with what the applications fetched, carries no key in any encoding, and
 * forgets the stream once it is closed and purged.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { PyValue } from '../../src/api/codec/pyLiteral.js';
import { freePort, getJson, hexOf, postPy, startModule, tempDir, WAIT, type RunningModule } from '../support/processes.js';
import { parseExposition, samples, valueOf, type Sample } from '../support/prometheus.js';

let running: RunningModule[] = [];
afterEach(async () => {
  await Promise.all(running.map((m) => m.kill('SIGKILL')));
  running = [];
});

const MAX_KEY_COUNT = 6;
/** Keys each application takes: more than max_key_count, so the exchange refills during the test. */
const TAKEN = 14;

async function scrape(m: RunningModule): Promise<{ text: string; all: Sample[] }> {
  const res = await fetch(`${m.url}/metrics`);
  expect(res.status).toBe(200);
  const text = await res.text();
  return { text, all: parseExposition(text) };
}

interface StreamView {
  nextIndex: number;
  available: number;
}

/**
 * A scrape taken while the stream stands still: the stream's state read before and after it is the
 * same (the exchange may still be refilling when the test gets here; it stops at max_key_count).
 */
async function steadyScrape(m: RunningModule, id: string): Promise<{ text: string; all: Sample[]; stream: StreamView }> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const before = (await getJson(m.url, `/streams/${id}`)).body as StreamView;
    const { text, all } = await scrape(m);
    const after = (await getJson(m.url, `/streams/${id}`)).body as StreamView;
    if (before.nextIndex === after.nextIndex && before.available === after.available) return { text, all, stream: after };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the stream at ${m.spec.name} never stood still`);
}

describe('metrics of two modules over loopback', () => {
  it('when applications take keys at both ends, then produced, delivered and buffered match GET /streams/{id} and what they took, no key appears in /metrics, and closing the stream removes its series', async () => {
    const [pa, pb] = [await freePort(), await freePort()];
    // Retention 0: a closed stream is purged at once, so its series must go at once too.
    const env = { QKDM_MODULE_CLOSED_STREAM_RETENTION_S: '0' };
    const alice = await startModule({ name: 'alice', sender: 1, port: pa, dataDir: tempDir('metrics-alice'), maxKeyCount: MAX_KEY_COUNT, env });
    running.push(alice);
    const bob = await startModule({ name: 'bob', sender: 0, port: pb, dataDir: tempDir('metrics-bob'), maxKeyCount: MAX_KEY_COUNT, env });
    running.push(bob);

    const opened = await postPy(alice.url, '/open_connect', [null, bob.address, { timeout: 5000, length: 256 }, null]);
    const [id] = opened.value as [string, number];
    expect((await postPy(bob.url, '/open_connect', [null, alice.address, { timeout: 5000, length: 256 }, id])).value).toEqual([id, 0]);

    // Half the keys as Python literals (bytes), half as JSON (base64), at both ends.
    const delivered: Buffer[] = [];
    for (let i = 0; i < TAKEN; i++) {
      for (const m of [alice, bob]) {
        if (i % 2 === 0) {
          const r = await postPy(m.url, '/get_key', [id, -1, {}], WAIT());
          const [key, , status] = r.value as [PyValue, number, number];
          expect(status).toBe(0);
          delivered.push(Buffer.from(hexOf(key), 'hex'));
        } else {
          const res = await fetch(`${m.url}/get_key`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([id, -1]) });
          const [key, , status] = (await res.json()) as [string, number, number];
          expect(status).toBe(0);
          delivered.push(Buffer.from(key, 'base64'));
        }
      }
    }
    expect(delivered).toHaveLength(2 * TAKEN);
    expect(new Set(delivered.map((k) => k.toString('hex'))).size).toBe(TAKEN); // the same keys at both ends

    for (const [m, role] of [[alice, 'alice'], [bob, 'bob']] as const) {
      const { text, all, stream } = await steadyScrape(m, id);
      const labels = { stream: id, role };
      // Every committed key was produced here; the applications took TAKEN; the rest waits.
      expect(valueOf(all, 'qkdm_keys_produced_total', labels), role).toBe(stream.nextIndex);
      expect(valueOf(all, 'qkdm_keys_delivered_total', labels), role).toBe(TAKEN);
      expect(valueOf(all, 'qkdm_keys_buffered', labels), role).toBe(stream.available);
      expect(stream.nextIndex, role).toBe(TAKEN + stream.available); // nothing was discarded
      expect(samples(all, 'qkdm_keys_discarded_total', { stream: id }), role).toEqual([]);
      expect(valueOf(all, 'qkdm_blocks_total', labels), role).toBeGreaterThanOrEqual(Math.ceil(stream.nextIndex / MAX_KEY_COUNT));
      expect(valueOf(all, 'qkdm_secret_bits_total', labels), role).toBe(stream.nextIndex * 256); // the fake device: key bits
      expect(valueOf(all, 'qkdm_stream_halted', { stream: id }), role).toBe(0);
      expect(valueOf(all, 'qkdm_peer_up'), role).toBe(1);
      expect(samples(all, 'qkdm_http_request_duration_seconds_count', { route: '/get_key', method: 'POST', status: '200' })[0]!.value, role).toBe(TAKEN);
      for (const key of delivered) {
        for (const encoded of [key.toString('hex'), key.toString('base64'), key.toString('base64url'), key.toString('hex').toUpperCase()]) {
          expect(text.includes(encoded), `${role}: a delivered key (${encoded.length} characters) appears in /metrics`).toBe(false);
        }
      }
    }

    expect((await postPy(alice.url, '/close', [id])).value).toBe(0);
    for (const m of [alice, bob]) {
      await expect.poll(async () => (await scrape(m)).text.includes(id), { timeout: 10_000, interval: 200 }).toBe(false);
      expect((await getJson(m.url, `/streams/${id}`)).status).toBe(404); // purged: gone from the module as well
    }
  }, 120_000);

  it('when BB84 blocks run, then QBER, secret bits per pulse and secret bits agree with the stats route at both ends', async () => {
    // The link of test/e2e/bb84TwoModules.test.ts: a short fibre and a small PA block, so one round amplifies in seconds.
    const env = { QKDM_MODULE_SIM: 'bb84', QKDM_SIMULATOR_BLOCK_PULSES: '26000000', QKDM_SIMULATOR_CHANNEL_LENGTH_KM: '5', QKDM_SIMULATOR_BASIS_X_PROBABILITY: '0.5', QKDM_SIMULATOR_PA_BLOCK_BITS: '120000' };
    const [pa, pb] = [await freePort(), await freePort()];
    const alice = await startModule({ name: 'alice', sender: 1, port: pa, dataDir: tempDir('metrics-bb84-alice'), maxKeyCount: MAX_KEY_COUNT, env });
    running.push(alice);
    const bob = await startModule({ name: 'bob', sender: 0, port: pb, dataDir: tempDir('metrics-bb84-bob'), maxKeyCount: MAX_KEY_COUNT, env });
    running.push(bob);
    const [id] = (await postPy(alice.url, '/open_connect', [null, bob.address, { timeout: 5000, length: 256 }, null])).value as [string, number];
    expect((await postPy(bob.url, '/open_connect', [null, alice.address, { timeout: 5000, length: 256 }, id])).value).toEqual([id, 0]);
    await expect.poll(async () => (await getJson(bob.url, `/streams/${id}`)).body.available, { timeout: 60_000, interval: 250 }).toBe(MAX_KEY_COUNT);

    const gauges: Record<string, number | undefined> = {};
    for (const [m, role] of [[alice, 'alice'], [bob, 'bob']] as const) {
      const { all } = await steadyScrape(m, id);
      const rounds = ((await getJson(m.url, `/streams/${id}/stats`)).body.rounds as Array<{ keys: number; stats: Record<string, number | null> }>).filter((r) => r.keys > 0);
      const last = rounds[rounds.length - 1]!.stats;
      const labels = { stream: id, role };
      const qber = valueOf(all, 'qkdm_qber', labels);
      gauges[role] = qber;
      expect(qber, role).toBe(last.qberZ); // the test-basis QBER of the last block, counted alike at both ends
      expect(qber!, role).toBeGreaterThan(0);
      expect(qber!, role).toBeLessThan(0.11);
      // A round that amplified reports l over the pulses of its whole PA block (paPulses).
      expect(valueOf(all, 'qkdm_secret_bits_per_pulse', labels), role).toBeCloseTo(last.secretBits! / last.paPulses!, 12);
      expect(valueOf(all, 'qkdm_secret_bits_total', labels), role).toBe(rounds.reduce((sum, r) => sum + r.stats.secretBits!, 0));
      expect(valueOf(all, 'qkdm_blocks_total', labels), role).toBe(rounds.length);
      expect(valueOf(all, 'qkdm_block_qber_count', { role }), role).toBeGreaterThanOrEqual(rounds.length);
      expect(valueOf(all, 'qkdm_round_duration_seconds_count', { role }), role).toBeGreaterThanOrEqual(rounds.length);
    }
    expect(gauges.bob).toBe(gauges.alice); // the same block, Alice's estimate
  }, 120_000);
});

