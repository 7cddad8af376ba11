import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/store/errors.js';
import { VaultReconciledBlockStore, VAULT_BLOCK_PART_BYTES } from '../../src/store/vault/VaultReconciledBlockStore.js';
import { VaultKeyStore } from '../../src/store/vault/VaultKeyStore.js';
import { testKey } from './contract.js';
import { start, type FakeVault } from './fakeVault.js';
import { distinctiveBytes, runReconciledBlockStoreContract, sampleBlock } from './reconciledContract.js';

let vault: FakeVault;
beforeAll(async () => {
  vault = await start({ token: 'tok-reconciled-5d1c' });
});
afterAll(async () => {
  await vault.stop();
});

function makeStore(pathPrefix: string, overrides: Partial<ConstructorParameters<typeof VaultReconciledBlockStore>[0]> = {}): VaultReconciledBlockStore {
  return new VaultReconciledBlockStore({ endpoint: vault.url, token: vault.token, noCustomHTTPVerbs: true, pathPrefix, ...overrides });
}

/** Every version of every secret under the prefix still on the server, with its `bits` decoded. */
function storedBits(prefix: string): Buffer[] {
  return vault
    .paths()
    .filter((p) => p.startsWith(`${prefix}/`))
    .flatMap((p) => vault.versionsOf(p))
    .flatMap((data) => (typeof data.bits === 'string' ? [Buffer.from(data.bits, 'base64')] : []));
}

runReconciledBlockStoreContract('vault (fake KV v2 server)', async () => {
  const pathPrefix = `qkdm-${randomUUID()}`;
  let store = makeStore(pathPrefix);
  return {
    get store() {
      return store;
    },
    async reopen() {
      await store.close();
      store = makeStore(pathPrefix);
      return store;
    },
    async holdsBytes(pattern) {
      // Parts split a block at 256 KiB boundaries: search their concatenation too.
      const all = storedBits(pathPrefix);
      return all.some((b) => b.includes(Buffer.from(pattern))) || Buffer.concat(all).includes(Buffer.from(pattern));
    },
    async cleanup() {
      await store.close();
    },
  };
});

describe('VaultReconciledBlockStore specifics', () => {
  let store: VaultReconciledBlockStore;
  let prefix: string;
  let stream: string;
  const under = (p: string): string[] => vault.paths().filter((x) => x.startsWith(`${p}/`)).sort();
  beforeEach(() => {
    prefix = `qkdm-${randomUUID()}`;
    stream = randomUUID();
    store = makeStore(prefix);
  });
  afterEach(async () => {
    await store.close();
  });

  it('when a large block is appended, then it is one head and parts of at most 256 KiB under the stream\'s pa/ folder, each one version', async () => {
    const block = sampleBlock('big', { bitLength: (2 * VAULT_BLOCK_PART_BYTES + 10) * 8 });
    await store.append(stream, block);
    expect(under(prefix)).toEqual([`${prefix}/${stream}/pa/1_big`, `${prefix}/${stream}/pa/1_big.1`, `${prefix}/${stream}/pa/1_big.2`]);
    for (const p of under(prefix)) expect(vault.versionsOf(p)).toHaveLength(1);
    const sizes = storedBits(prefix).map((b) => b.length);
    expect(sizes.sort((a, b) => a - b)).toEqual([10, VAULT_BLOCK_PART_BYTES, VAULT_BLOCK_PART_BYTES]);
    expect(vault.versionsOf(`${prefix}/${stream}/pa/1_big`)[0]).toMatchObject({ bit_length: block.bitLength, meta: block.meta, stored_at: block.storedAt, parts: 3 });
  });

  it('when blocks are consumed, then every version and the metadata of each of their secrets is deleted and a mark without bits remains', async () => {
    await store.append(stream, sampleBlock('gone', { bitLength: (VAULT_BLOCK_PART_BYTES + 1) * 8 }));
    await store.append(stream, sampleBlock('stays'));
    const before = vault.requests.length;
    await store.consume(stream, ['gone']);
    const deletes = vault.requests.slice(before).filter((r) => r.method === 'DELETE').map((r) => r.url).sort();
    expect(deletes).toEqual([`/v1/secret/metadata/${prefix}/${stream}/pa/1_gone`, `/v1/secret/metadata/${prefix}/${stream}/pa/1_gone.1`]);
    expect(vault.versionsOf(`${prefix}/${stream}/pa/1_gone`)).toEqual([]);
    expect(vault.versionsOf(`${prefix}/${stream}/pa/1_gone.1`)).toEqual([]);
    expect(under(prefix)).toEqual([`${prefix}/${stream}/pa/2_stays`, `${prefix}/${stream}/pa/c_gone`]);
    expect(Object.keys(vault.versionsOf(`${prefix}/${stream}/pa/c_gone`)[0])).toEqual(['consumed_at']);
    await store.deleteStream(stream);
    expect(under(prefix)).toEqual([]);
  });

  it('when the key store shares the stream folder, then neither sees nor erases the other\'s secrets', async () => {
    const keys = new VaultKeyStore({ endpoint: vault.url, token: vault.token, noCustomHTTPVerbs: true, pathPrefix: prefix });
    try {
      await keys.putMany(stream, 0, [testKey(1), testKey(2)]);
      await store.append(stream, sampleBlock('pa-1'));
      expect(await keys.indices(stream)).toEqual([0, 1]);
      await keys.deleteStream(stream);
      expect((await store.list(stream)).map((b) => b.blockId)).toEqual(['pa-1']);
      await keys.putMany(stream, 0, [testKey(3)]);
      await store.deleteStream(stream);
      expect(await keys.indices(stream)).toEqual([0]);
      expect(await store.streams()).toEqual([]);
    } finally {
      await keys.close();
    }
  });

  it('when writing the head fails, then append rejects, leaves no part behind, and a repeat stores the block', async () => {
    const block = sampleBlock('retry', { bitLength: (VAULT_BLOCK_PART_BYTES + 5) * 8 });
    // The part is written first and succeeds; the head (the bare name) fails.
    vault.failNext('POST', 503, /\/pa\/1_retry$/);
    const err = await store.append(stream, block).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StoreError);
    expect(vault.requests.some((r) => r.method === 'POST' && r.url.endsWith('/pa/1_retry.1'))).toBe(true);
    expect((err as StoreError).message).toBe('vault: HTTP 503 on write');
    expect(under(prefix)).toEqual([]);
    await store.append(stream, block);
    expect(await store.list(stream)).toEqual([block]);
  });

  it('when an interrupted append left a part without its head, then list ignores it and the next append erases it', async () => {
    const pattern = distinctiveBytes('orphan', 64);
    const orphanBits = Buffer.from(pattern).toString('base64');
    const raw = await fetch(`${vault.url}/v1/secret/data/${prefix}/${stream}/pa/7_lost.1`, {
      method: 'POST',
      headers: { 'X-Vault-Token': vault.token, 'content-type': 'application/json' },
      body: JSON.stringify({ data: { bits: orphanBits } }),
    });
    expect(raw.status).toBe(200);
    expect(await store.list(stream)).toEqual([]);
    expect(await store.streams()).toEqual([stream]); // housekeeping sees it
    await store.append(stream, sampleBlock('next'));
    expect(under(prefix)).toEqual([`${prefix}/${stream}/pa/8_next`]); // after the orphan's seq: order is kept
    expect(storedBits(prefix).some((b) => b.includes(Buffer.from(pattern)))).toBe(false);
  });

  it('when a part of a block is missing, then list fails with StoreError corrupt naming the block and no bits', async () => {
    const block = sampleBlock('torn', { bitLength: (VAULT_BLOCK_PART_BYTES + 64) * 8 });
    await store.append(stream, block);
    const del = await fetch(`${vault.url}/v1/secret/metadata/${prefix}/${stream}/pa/1_torn.1`, { method: 'DELETE', headers: { 'X-Vault-Token': vault.token } });
    expect(del.status).toBe(204);
    const err = (await store.list(stream).catch((e: unknown) => e)) as StoreError;
    expect(err).toBeInstanceOf(StoreError);
    expect(err.kind).toBe('corrupt');
    expect(err.message).toBe('vault: reconciled block torn is missing part 1');
  });

  it('when destroying a consumed block fails, then consume rejects, the block is already unusable, and a repeat erases the rest', async () => {
    await store.append(stream, sampleBlock('half', { bitLength: (VAULT_BLOCK_PART_BYTES + 1) * 8 }));
    vault.failNext('DELETE', 500, '/pa/1_half.1');
    await expect(store.consume(stream, ['half'])).rejects.toMatchObject({ kind: 'unavailable', message: 'vault: HTTP 500 on delete' });
    expect(await store.list(stream)).toEqual([]);
    await expect(store.append(stream, sampleBlock('half', { bitLength: (VAULT_BLOCK_PART_BYTES + 1) * 8 }))).rejects.toMatchObject({ kind: 'conflict' });
    await store.consume(stream, ['half']);
    expect(under(prefix)).toEqual([`${prefix}/${stream}/pa/c_half`]);
  });

  it('when the token is wrong, then calls fail with StoreError permission and no error carries the token or bits', async () => {
    const wrong = 'wrong-token-9a8b7c';
    const bad = makeStore(prefix, { token: wrong });
    const block = sampleBlock('t');
    try {
      for (const call of [() => bad.append(stream, block), () => bad.list(stream), () => bad.consume(stream, ['t']), () => bad.deleteStream(stream)]) {
        const err = (await call().catch((e: unknown) => e)) as StoreError;
        expect(err).toBeInstanceOf(StoreError);
        expect(err.kind).toBe('permission');
        const text = `${err.message} ${err.stack} ${JSON.stringify(err)} ${String(err.cause)}`;
        expect(text).not.toContain(wrong);
        expect(text).not.toContain(vault.token);
        expect(text).not.toContain(Buffer.from(block.bits.subarray(0, 12)).toString('base64'));
      }
    } finally {
      await bad.close();
    }
  });

  it('when a stream or block ID could inject a path, then the call is rejected before any request', async () => {
    const before = vault.requests.length;
    for (const bad of ['../other', 'a/b', '', 'x'.repeat(65), 'a?list=1', 'a%2F..', 'a b', 'a.1']) {
      await expect(store.append(bad, sampleBlock('ok'))).rejects.toThrow(RangeError);
      await expect(store.append(stream, { ...sampleBlock('ok'), blockId: bad })).rejects.toThrow(RangeError);
      await expect(store.consume(stream, [bad])).rejects.toThrow(RangeError);
      await expect(store.list(bad)).rejects.toThrow(RangeError);
    }
    expect(vault.requests.length).toBe(before);
  });
});
