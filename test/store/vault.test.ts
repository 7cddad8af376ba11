import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/store/errors.js';
import { VaultKeyStore } from '../../src/store/vault/VaultKeyStore.js';
import { runKeyStoreContract, testKey } from './contract.js';
import { start, type FakeVault } from './fakeVault.js';

let vault: FakeVault;
beforeAll(async () => {
  vault = await start({ token: 'tok-s3cr3t-7f2e9c' });
});
afterAll(async () => {
  await vault.stop();
});

function makeStore(overrides: Partial<ConstructorParameters<typeof VaultKeyStore>[0]> = {}): VaultKeyStore {
  return new VaultKeyStore({ endpoint: vault.url, token: vault.token, noCustomHTTPVerbs: true, ...overrides });
}

runKeyStoreContract('vault (fake KV v2 server)', async () => {
  // A prefix per test keeps tests apart on the shared server.
  const pathPrefix = `qkdm-${randomUUID()}`;
  let store = makeStore({ pathPrefix });
  return {
    get store() {
      return store;
    },
    async reopen() {
      await store.close();
      store = makeStore({ pathPrefix });
      return store;
    },
    async cleanup() {
      await store.close();
    },
  };
});

describe('VaultKeyStore specifics', () => {
  let store: VaultKeyStore;
  let prefix: string;
  let stream: string;
  beforeEach(() => {
    prefix = `qkdm-${randomUUID()}`;
    stream = randomUUID();
    store = makeStore({ pathPrefix: prefix });
  });
  afterEach(async () => {
    await store.close();
  });

  it('when the token is wrong, then calls fail with StoreError permission and the message does not contain the token', async () => {
    const wrongToken = 'wrong-token-d41d8cd98f';
    const bad = makeStore({ pathPrefix: prefix, token: wrongToken });
    try {
      for (const call of [() => bad.putMany(stream, 0, [testKey(1)]), () => bad.take(stream, 0), () => bad.indices(stream)]) {
        const err = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(StoreError);
        expect((err as StoreError).kind).toBe('permission');
        expect((err as StoreError).message).toMatch(/permission denied/);
        const text = `${(err as Error).message} ${(err as Error).stack} ${JSON.stringify(err)} ${String((err as Error).cause)}`;
        expect(text).not.toContain(wrongToken);
        expect(text).not.toContain(vault.token);
      }
    } finally {
      await bad.close();
    }
  });

  it('when a key is taken, then the server holds no version of it', async () => {
    await store.putMany(stream, 0, [testKey(1), testKey(2)]);
    expect(vault.versionsOf(`${prefix}/${stream}/0`)).toHaveLength(1);
    expect(await store.take(stream, 0)).toEqual(testKey(1));
    expect(vault.versionsOf(`${prefix}/${stream}/0`)).toEqual([]);
    expect(vault.paths().filter((p) => p.startsWith(`${prefix}/`))).toEqual([`${prefix}/${stream}/1`]);
  });

  it('when a stream is deleted, then the server holds no version of any of its keys', async () => {
    await store.putMany(stream, 0, [testKey(1), testKey(2), testKey(3)]);
    await store.deleteStream(stream);
    expect(vault.paths().filter((p) => p.startsWith(`${prefix}/`))).toEqual([]);
  });

  it('when a key is absent, then take resolves undefined', async () => {
    expect(await store.take(stream, 0)).toBeUndefined();
  });

  it('when a key is overwritten, then a single version with the new bytes remains', async () => {
    await store.putMany(stream, 0, [testKey(1)]);
    await store.putMany(stream, 0, [testKey(2)]);
    const versions = vault.versionsOf(`${prefix}/${stream}/0`);
    expect(versions).toHaveLength(1);
    expect(versions[0]).toEqual({ key: Buffer.from(testKey(2)).toString('base64') });
  });

  it('when a stream ID could inject a path, then the call is rejected before any request', async () => {
    const before = vault.requests.length;
    for (const bad of ['../other', 'a/b', '', 'x'.repeat(65), 'a?list=1', 'a%2F..', 'a b']) {
      await expect(store.putMany(bad, 0, [testKey(1)])).rejects.toThrow(RangeError);
      await expect(store.take(bad, 0)).rejects.toThrow(RangeError);
      await expect(store.indices(bad)).rejects.toThrow(RangeError);
      await expect(store.deleteStream(bad)).rejects.toThrow(RangeError);
    }
    expect(vault.requests.length).toBe(before);
  });

  it('when mount or prefix could inject a path, then the constructor rejects it', () => {
    expect(() => makeStore({ pathPrefix: '../sys' })).toThrow(RangeError);
    expect(() => makeStore({ mount: 'secret/../sys' })).toThrow(RangeError);
    expect(() => makeStore({ pathPrefix: 'qkdm/alice' })).not.toThrow();
  });

  it('when erasing a taken key fails, then take rejects and the key stays stored', async () => {
    await store.putMany(stream, 0, [testKey(9)]);
    vault.failNext('DELETE', 500, `/${stream}/0`);
    const err = await store.take(stream, 0).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).kind).toBe('unavailable');
    expect((err as StoreError).message).toBe('vault: HTTP 500 on delete');
    expect(await store.take(stream, 0)).toEqual(testKey(9));
  });

  it('when the erase happened but its answer was lost, then take still delivers the key (it is gone from Vault)', async () => {
    await store.putMany(stream, 0, [testKey(7)]);
    vault.loseAnswerOfNext('DELETE', 502, `/${stream}/0`);
    expect(await store.take(stream, 0)).toEqual(testKey(7));
    expect(vault.versionsOf(`${prefix}/${stream}/0`)).toEqual([]);
    expect(await store.take(stream, 0)).toBeUndefined();
  });

  it('when a read fails, then the error names the status and operation but no key bytes', async () => {
    await store.putMany(stream, 0, [testKey(4)]);
    vault.failNext('GET', 503, `/${stream}/0`);
    const err = (await store.take(stream, 0).catch((e: unknown) => e)) as StoreError;
    expect(err.message).toBe('vault: HTTP 503 on read');
    expect(err.message).not.toContain(Buffer.from(testKey(4)).toString('base64'));
  });

  it('when Vault is unreachable, then calls fail with StoreError unavailable', async () => {
    const down = makeStore({ endpoint: 'http://127.0.0.1:1', pathPrefix: prefix });
    try {
      await expect(down.indices(stream)).rejects.toMatchObject({ name: 'StoreError', kind: 'unavailable' });
    } finally {
      await down.close();
    }
  });

  it('when the stored value is not base64, then take fails with StoreError corrupt', async () => {
    await store.putMany(stream, 0, [testKey(1)]);
    const raw = await fetch(`${vault.url}/v1/secret/data/${prefix}/${stream}/1`, {
      method: 'POST',
      headers: { 'X-Vault-Token': vault.token, 'content-type': 'application/json' },
      body: JSON.stringify({ data: { key: 'not base64!' } }),
    });
    expect(raw.status).toBe(200);
    await expect(store.take(stream, 1)).rejects.toMatchObject({ name: 'StoreError', kind: 'corrupt' });
  });

  it('when the store is closed, then further calls reject with StoreError unavailable', async () => {
    await store.close();
    await expect(store.indices(stream)).rejects.toMatchObject({ kind: 'unavailable' });
  });
});
