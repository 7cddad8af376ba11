/**
 * Two real module processes on loopback with the BB84 simulator (QKDM_MODULE_SIM=bb84): keys come out of simulated
 * BB84 blocks authenticated with SLH-DSA signatures (keys generated here), small blocks on a short link so a block
 * takes a fraction of a second. Needs the compiled tree (npm test builds first).
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { PyValue } from '../../src/api/codec/pyLiteral.js';
import { encodeKey, generateKeyPair } from '../../src/crypto/keys.js';
import type { KeyPair } from '../../src/crypto/signatures.js';
import { freePort, getJson, hexOf, postPy, startModule, tempDir, WAIT, type RunningModule } from '../support/processes.js';

let running: RunningModule[] = [];
afterEach(async () => {
  await Promise.all(running.map((m) => m.kill('SIGKILL')));
  running = [];
});

let aliceKeys: KeyPair;
let bobKeys: KeyPair;
beforeAll(async () => {
  aliceKeys = await generateKeyPair('slh-dsa-sha2-128f');
  bobKeys = await generateKeyPair('slh-dsa-sha2-128f');
});

/**
 * A short link (5 km), unbiased bases and PA blocks of 120,000 key-basis bits, so every round is one EC block
 * (2.6e7 pulses, about 150,000 key-basis bits) and one PA block: about 40,000 key bits (Lim 2014) per round.
 */
const LINK = {
  QKDM_MODULE_SIM: 'bb84',
  QKDM_SIMULATOR_BLOCK_PULSES: '26000000',
  QKDM_SIMULATOR_CHANNEL_LENGTH_KM: '5',
  QKDM_SIMULATOR_BASIS_X_PROBABILITY: '0.5',
  QKDM_SIMULATOR_PA_BLOCK_BITS: '120000',
};

async function pairOfModules(): Promise<{ alice: RunningModule; bob: RunningModule }> {
  const [pa, pb] = [await freePort(), await freePort()];
  const alice = await startModule({
    name: 'alice',
    sender: 1,
    port: pa,
    dataDir: tempDir('bb84-alice'),
    env: { ...LINK, QKDM_SIMULATOR_PRIVATE_KEY: encodeKey(aliceKeys.secretKey), QKDM_SIMULATOR_PUBLIC_KEY: encodeKey(bobKeys.publicKey) },
  });
  running.push(alice);
  const bob = await startModule({
    name: 'bob',
    sender: 0,
    port: pb,
    dataDir: tempDir('bb84-bob'),
    env: { ...LINK, QKDM_SIMULATOR_PRIVATE_KEY: encodeKey(bobKeys.secretKey), QKDM_SIMULATOR_PUBLIC_KEY: encodeKey(aliceKeys.publicKey) },
  });
  running.push(bob);
  return { alice, bob };
}

async function openStream(alice: RunningModule, bob: RunningModule, length: number): Promise<string> {
  const a = await postPy(alice.url, '/open_connect', [null, bob.address, { timeout: 5000, length }, null]);
  const [id, status] = a.value as [string, number];
  expect(status).toBe(0);
  const b = await postPy(bob.url, '/open_connect', [null, alice.address, { timeout: 5000, length }, id]);
  expect(b.value).toEqual([id, 0]);
  return id;
}

async function getKey(m: RunningModule, id: string): Promise<{ key: string | null; index: number; status: number }> {
  const r = await postPy(m.url, '/get_key', [id, -1, {}], WAIT(5));
  const [key, index, status] = r.value as [PyValue, number, number];
  return { key: key === null ? null : hexOf(key), index, status };
}

/** The next key at one end, waiting (bounded) while the exchange produces it. */
async function nextKey(m: RunningModule, id: string): Promise<{ key: string; index: number }> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await getKey(m, id);
    if (r.status === 0) return { key: r.key!, index: r.index };
    if (Date.now() > deadline) throw new Error(`no key at ${m.spec.name} for ${id}: status ${r.status}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

describe('two modules over loopback with the BB84 simulator', () => {
  it('when two streams run, then both ends return identical keys at identical indices and the stats route shows BB84 EC and PA blocks with their decoy bounds and totals', async () => {
    const { alice, bob } = await pairOfModules();
    const health = await getJson(alice.url, '/health');
    expect(health.body.sim).toBe('bb84');
    const ids = await Promise.all([openStream(alice, bob, 256), openStream(alice, bob, 1024)]);
    await Promise.all(
      ids.map(async (id, s) => {
        for (let i = 0; i < 30; i++) {
          const [a, b] = await Promise.all([nextKey(alice, id), nextKey(bob, id)]);
          expect(a.index).toBe(i);
          expect(b.index).toBe(i);
          expect(a.key).toBe(b.key);
          expect(a.key.length).toBe([256, 1024][s]! / 4);
        }
      }),
    );
    for (const [m, id] of [[alice, ids[0]!], [bob, ids[1]!]] as const) {
      const stats = await getJson(m.url, `/streams/${id}/stats`);
      expect(stats.status).toBe(200);
      const blocks = (stats.body.rounds as { keys: number; stats?: Record<string, unknown> }[]).filter((r) => r.keys > 0);
      expect(blocks.length).toBeGreaterThanOrEqual(2);
      for (const r of blocks) {
        expect(r.stats).toMatchObject({ pulses: 26_000_000, aborted: false, keys: r.keys, analysis: 'lim2014', epsSec: 1e-10, epsCor: 1e-15 });
        expect(r.stats!.keyBasisBits as number).toBeGreaterThan(120_000);
        expect(r.stats!.paBits as number).toBeGreaterThanOrEqual(120_000);
        expect(r.stats!.secretBits as number).toBeGreaterThanOrEqual(r.keys * (m === alice ? 256 : 1024));
        expect(r.stats!.sX1 as number).toBeGreaterThan(0);
        expect(r.stats!.phiX as number).toBeLessThan(0.5);
        expect(r.stats!.singlePhotonOnlyBits as number).toBeGreaterThan(r.stats!.secretBits as number);
        if (m === alice) {
          expect(r.stats!.qberZ as number).toBeLessThan(0.05);
          expect(r.stats!.ms_sign as number).toBeGreaterThan(0);
        }
      }
      const totals = stats.body.totals as Record<string, number | string>;
      expect(totals).toMatchObject({ analysis: 'lim2014' });
      expect(totals.paBlocksWithKeys as number).toBeGreaterThanOrEqual(2);
      expect(totals.ecBlocksAccumulated as number).toBeGreaterThanOrEqual(totals.paBlocks as number);
    }
    // Every round signs twice at each end (accumulate and amplify): generous on a loaded host.
  }, 120_000);

  it('when a module is started with sim bb84 and no private key, then it exits with one line naming simulator.private_key', async () => {
    const port = await freePort();
    const err = (await startModule({
      name: 'nokey',
      sender: 1,
      port,
      dataDir: tempDir('bb84-nokey'),
      env: { QKDM_MODULE_SIM: 'bb84', QKDM_SIMULATOR_PUBLIC_KEY: encodeKey(bobKeys.publicKey) },
    }).catch((e: Error) => e)) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/exited with 1/);
    const lines = err.message.split('\n').filter((l) => l.includes('simulator.private_key'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^qkd-module: start-up failed: simulator\.private_key: required when module\.sim is bb84/);
  });
});
