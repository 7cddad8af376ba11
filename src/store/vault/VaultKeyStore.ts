/**
 * KeyStore on HashiCorp Vault (or OpenBao) KV version 2, through node-vault.
 *
 * Layout: key i of stream s is the secret `<mount>/data/<prefix>/<s>/<i>` holding `{ key: <base64> }`.
 * A delivered key kept for the re-delivery window has a marker secret `<s>/d<i>` next to it holding
 * `{ delivered_at, token? }` (no key material), written create-only before the key is handed out.
 * The sub-folder `<s>/pa/` belongs to VaultReconciledBlockStore; this store neither lists nor erases it.
 *
 * Guarantees:
 * - No readable copy after take/deleteStream/overwrite: keys are erased by deleting the secret's
 *   *metadata* (`DELETE <mount>/metadata/...`), which destroys every version, not by a soft delete.
 *   Writes use check-and-set 0 (create only); when a key is already at the index (an uncommitted
 *   round being replaced), its secret is destroyed first and the write repeated, so exactly one version
 *   exists afterwards. A first write therefore costs one request, an overwrite three.
 * - `take` returns a key only after its erasure succeeded. Takes (and puts) of one (stream, index)
 *   are serialised in this process, so concurrent takes hand a key to at most one caller. Vault has no
 *   atomic read-and-delete: this holds per process, i.e. one module per `<mount>/<prefix>`.
 * - Stream IDs and the mount/prefix are validated before they are put in a path (no path injection).
 * - Errors are StoreErrors that never contain the token, key bytes or a response body. node-vault's
 *   debug output (which would print written data) is disabled, and its errors (which carry request
 *   headers) are never passed on.
 * - `putMany` resolves when Vault acknowledged every write (Vault persists before answering).
 */
import type nodeVault from 'node-vault';
import type { DeliveredRecord, KeyStore } from '../KeyStore.js';
import { StoreError } from '../errors.js';
import { KeyedMutex } from '../../core/keyedMutex.js';
import {
  BASE64_PATTERN,
  VAULT_PARALLELISM,
  VAULT_STREAM_ID_PATTERN,
  forEachLimit,
  openVaultKv,
  statusOf,
  vaultError,
  type VaultKv,
  type VaultKvOptions,
  type VaultOperation,
} from './vaultKv.js';

export { DEFAULT_VAULT_MOUNT, DEFAULT_VAULT_PREFIX, DEFAULT_VAULT_TIMEOUT_MS, VAULT_PARALLELISM, VAULT_STREAM_ID_PATTERN } from './vaultKv.js';
export type VaultKeyStoreOptions = VaultKvOptions;

function checkStreamId(keyStreamId: string): void {
  if (typeof keyStreamId !== 'string' || !VAULT_STREAM_ID_PATTERN.test(keyStreamId)) {
    throw new RangeError('invalid Key_stream_ID for Vault path: must match ^[A-Za-z0-9_-]{1,64}$');
  }
}

function checkIndex(index: number, what: string): void {
  if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`${what} must be a non-negative safe integer`);
}

export class VaultKeyStore implements KeyStore {
  private readonly kv: VaultKv;
  private readonly client: nodeVault.client;
  private readonly dataBase: string;
  private readonly metadataBase: string;
  /** Operations on one `stream/index` run one after the other. */
  private readonly locks = new KeyedMutex();
  private closed = false;

  constructor(options: VaultKeyStoreOptions) {
    this.kv = openVaultKv(options);
    this.client = this.kv.client;
    this.dataBase = this.kv.dataBase;
    this.metadataBase = this.kv.metadataBase;
  }

  async putMany(keyStreamId: string, firstIndex: number, keys: readonly Uint8Array[]): Promise<void> {
    checkStreamId(keyStreamId);
    checkIndex(firstIndex, 'firstIndex');
    if (keys.length === 0) return;
    checkIndex(firstIndex + keys.length - 1, 'last index');
    if (!keys.every((k) => k instanceof Uint8Array)) throw new RangeError('putMany: every key must be a Uint8Array');
    this.checkOpen();
    // Encode now: the caller may reuse its arrays once we return.
    const encoded = keys.map((k) => Buffer.from(k.buffer, k.byteOffset, k.byteLength).toString('base64'));
    const positions = encoded.map((_, i) => i);
    await forEachLimit(positions, VAULT_PARALLELISM, (i) =>
      this.withLock(keyStreamId, firstIndex + i, () => this.writeFresh(keyStreamId, firstIndex + i, encoded[i])),
    );
  }

  async take(keyStreamId: string, index: number): Promise<Uint8Array | undefined> {
    checkStreamId(keyStreamId);
    checkIndex(index, 'index');
    this.checkOpen();
    return this.withLock(keyStreamId, index, async () => {
      const key = await this.read(keyStreamId, index);
      if (key === undefined) return undefined;
      try {
        await this.destroy(keyStreamId, index);
      } catch (err) {
        // The destroy may have happened with its answer lost: if the key is gone now, this caller
        // (the lock holder) was the one that erased it, so it is delivered rather than lost.
        let stillThere: boolean;
        try {
          const again = await this.read(keyStreamId, index);
          stillThere = again !== undefined;
          again?.fill(0);
        } catch {
          stillThere = true;
        }
        if (!stillThere) return key;
        key.fill(0);
        throw err;
      }
      return key;
    });
  }

  async deliver(keyStreamId: string, index: number, at: number, token?: string): Promise<Uint8Array | undefined> {
    checkStreamId(keyStreamId);
    checkIndex(index, 'index');
    this.checkOpen();
    return this.withLock(keyStreamId, index, async () => {
      // The marker first, create-only: a second deliver of the same key fails here (Vault answers 400).
      const marker = { options: { cas: 0 }, data: { delivered_at: at, ...(token === undefined ? {} : { token }) } };
      try {
        await this.client.write(`${this.dataBase}/${keyStreamId}/d${index}`, marker);
      } catch (err) {
        if (statusOf(err) === 400) return undefined;
        throw vaultError(err, 'write');
      }
      const key = await this.read(keyStreamId, index);
      if (key === undefined) await this.request('delete', () => this.client.delete(`${this.metadataBase}/${keyStreamId}/d${index}`));
      return key;
    });
  }

  async redeliver(keyStreamId: string, index: number): Promise<Uint8Array | undefined> {
    checkStreamId(keyStreamId);
    checkIndex(index, 'index');
    this.checkOpen();
    return this.withLock(keyStreamId, index, async () => ((await this.readMarker(keyStreamId, index)) ? this.read(keyStreamId, index) : undefined));
  }

  async delivered(keyStreamId: string): Promise<DeliveredRecord[]> {
    const { keys, markers } = await this.listStream(keyStreamId);
    const out: DeliveredRecord[] = [];
    for (const index of markers) {
      if (!keys.includes(index)) continue;
      const m = await this.readMarker(keyStreamId, index);
      if (m) out.push({ index, deliveredAt: m.deliveredAt, token: m.token });
    }
    return out;
  }

  async erase(keyStreamId: string, indices: readonly number[]): Promise<void> {
    checkStreamId(keyStreamId);
    for (const i of indices) checkIndex(i, 'index');
    this.checkOpen();
    // The key first: a marker left without its key by a crash names nothing readable.
    await forEachLimit(indices, VAULT_PARALLELISM, (index) =>
      this.withLock(keyStreamId, index, async () => {
        await this.destroy(keyStreamId, index);
        await this.request('delete', () => this.client.delete(`${this.metadataBase}/${keyStreamId}/d${index}`));
      }),
    );
  }

  async indices(keyStreamId: string): Promise<number[]> {
    const { keys, markers } = await this.listStream(keyStreamId);
    const delivered = new Set(markers);
    return keys.filter((i) => !delivered.has(i));
  }

  /** The stream folder: key indices and delivered-marker indices, each ascending. */
  private async listStream(keyStreamId: string): Promise<{ keys: number[]; markers: number[] }> {
    checkStreamId(keyStreamId);
    this.checkOpen();
    let body: unknown;
    try {
      body = await this.client.list(`${this.metadataBase}/${keyStreamId}`);
    } catch (err) {
      if (statusOf(err) === 404) return { keys: [], markers: [] };
      throw vaultError(err, 'list');
    }
    const names = (body as { data?: { keys?: unknown } })?.data?.keys;
    if (!Array.isArray(names)) throw new StoreError('corrupt', 'vault: unexpected list response');
    const numbers = (pattern: RegExp): number[] =>
      names
        .flatMap((n) => (typeof n === 'string' ? [pattern.exec(n)?.[1]] : []))
        .filter((n): n is string => n !== undefined)
        .map(Number)
        .filter((n) => Number.isSafeInteger(n))
        .sort((a, b) => a - b);
    return { keys: numbers(/^(\d{1,15})$/), markers: numbers(/^d(\d{1,15})$/) };
  }

  async deleteStream(keyStreamId: string): Promise<void> {
    const { keys, markers } = await this.listStream(keyStreamId);
    await forEachLimit(keys, VAULT_PARALLELISM, (index) => this.withLock(keyStreamId, index, () => this.destroy(keyStreamId, index)));
    await forEachLimit(markers, VAULT_PARALLELISM, (index) => this.request('delete', () => this.client.delete(`${this.metadataBase}/${keyStreamId}/d${index}`)));
  }

  /** A delivered marker; undefined when absent. */
  private async readMarker(keyStreamId: string, index: number): Promise<{ deliveredAt: number; token: string | undefined } | undefined> {
    let body: unknown;
    try {
      body = await this.client.read(`${this.dataBase}/${keyStreamId}/d${index}`);
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw vaultError(err, 'read');
    }
    const data = (body as { data?: { data?: { delivered_at?: unknown; token?: unknown } } })?.data?.data;
    if (typeof data?.delivered_at !== 'number') throw new StoreError('corrupt', 'vault: delivered marker without a time');
    return { deliveredAt: data.delivered_at, token: typeof data.token === 'string' ? data.token : undefined };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.kv.close();
  }

  /** Reads a key; undefined when absent (404). */
  private async read(keyStreamId: string, index: number): Promise<Uint8Array | undefined> {
    let body: unknown;
    try {
      body = await this.client.read(`${this.dataBase}/${keyStreamId}/${index}`);
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw vaultError(err, 'read');
    }
    const b64 = (body as { data?: { data?: { key?: unknown } } })?.data?.data?.key;
    if (typeof b64 !== 'string' || !BASE64_PATTERN.test(b64)) {
      throw new StoreError('corrupt', 'vault: stored key is not valid base64');
    }
    const buf = Buffer.from(b64, 'base64');
    const key = Uint8Array.from(buf);
    buf.fill(0);
    return key;
  }

  /**
   * Writes a key as version 1 of a new secret. The write carries check-and-set 0 ("only if absent");
   * when Vault refuses it (HTTP 400: a key from an uncommitted round is there), the old secret is
   * destroyed with all its versions and the write is repeated, so exactly one version remains.
   */
  private async writeFresh(keyStreamId: string, index: number, b64: string): Promise<void> {
    const path = `${this.dataBase}/${keyStreamId}/${index}`;
    const body = { options: { cas: 0 }, data: { key: b64 } };
    try {
      await this.client.write(path, body);
      return;
    } catch (err) {
      if (statusOf(err) !== 400) throw vaultError(err, 'write');
    }
    await this.destroy(keyStreamId, index);
    await this.request('write', () => this.client.write(path, body));
  }

  /** Destroys every version and the metadata of one key (Vault answers 204 even when absent). */
  private async destroy(keyStreamId: string, index: number): Promise<void> {
    await this.request('delete', () => this.client.delete(`${this.metadataBase}/${keyStreamId}/${index}`));
  }

  private async request(operation: VaultOperation, call: () => Promise<unknown>): Promise<void> {
    try {
      await call();
    } catch (err) {
      throw vaultError(err, operation);
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreError('unavailable', 'vault: store is closed');
  }

  /** Serialises work on one (stream, index) within this process; the lock is released in finally. */
  private withLock<T>(keyStreamId: string, index: number, work: () => Promise<T>): Promise<T> {
    return this.locks.run(`${keyStreamId}/${index}`, work);
  }
}
