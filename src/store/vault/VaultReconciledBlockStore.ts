/**
 * ReconciledBlockStore on HashiCorp Vault (or OpenBao) KV version 2: used when the keys live in Vault
 * (vault.host set), so the bits they are made from never sit on the module's disk either.
 *
 * Layout, under the stream's folder of the key store (`<mount>/data/<prefix>/<stream>/pa/`):
 * - `<seq>_<blockId>`: the block's head, `{ bit_length, meta, stored_at, parts, bits: <base64> }`,
 *   `bits` being the first {@link VAULT_BLOCK_PART_BYTES} bytes of the block;
 * - `<seq>_<blockId>.<k>`, k = 1 .. parts-1: `{ bits: <base64> }`, the following bytes. Parts keep
 *   each secret well below the storage backends' entry limits (Consul 512 KiB, integrated storage 1 MiB);
 * - `c_<blockId>`: `{ consumed_at }`, the mark of a consumed block (no bits).
 * `seq` (in the name, so one LIST orders the stream) is one more than the largest seq in the folder.
 *
 * Guarantees (in addition to the port's):
 * - No torn block: the parts are written first and the head last, every write create-only
 *   (check-and-set 0), and only a head makes a block visible. A part without its head (an append
 *   interrupted by a crash or a failure) is never read; the next append, consume or deleteStream of
 *   the stream destroys it.
 * - Erasure (`consume`, `deleteStream`): the metadata of every secret of the block is deleted, which
 *   destroys all versions; the consumed mark is written before, and the head is destroyed first, so
 *   the block is invisible from the first destroy on and can never be appended again.
 *   `consume` resolves only when every secret of the blocks is destroyed; if it rejects, a repeat
 *   destroys what is left.
 * - All operations on one stream are serialised in this process (one module per `<mount>/<prefix>`,
 *   as for the key store). Stream and block IDs are validated before they are put in a path.
 * - Errors are StoreErrors with the status and operation only (never bits, token or a response body).
 */
import type nodeVault from 'node-vault';
import { StoreError } from '../errors.js';
import { KeyedMutex } from '../../core/keyedMutex.js';
import type { ReconciledBlock, ReconciledBlockStore } from '../ReconciledBlockStore.js';
import { MAX_RECONCILED_BLOCK_BITS, RECONCILED_STREAM_ID_PATTERN } from '../ReconciledBlockStore.js';
import { checkBlockIds, checkReconciledBlock, checkReconciledStreamId, conflictMessage, consumedMessage, sameBlockContent } from '../reconciledBlockChecks.js';
import { BASE64_PATTERN, VAULT_PARALLELISM, forEachLimit, openVaultKv, statusOf, vaultError, type VaultKv, type VaultKvOptions, type VaultOperation } from './vaultKv.js';

/** Bytes of bits per secret: 256 KiB, about 342 KiB of base64. */
export const VAULT_BLOCK_PART_BYTES = 262_144;
/** The folder under a stream's folder that holds its reconciled blocks. */
export const VAULT_BLOCKS_FOLDER = 'pa';
const MAX_PARTS = Math.ceil(MAX_RECONCILED_BLOCK_BITS / 8 / VAULT_BLOCK_PART_BYTES);
/** `<seq>_<blockId>` or `<seq>_<blockId>.<k>`; seq is digits, so the first `_` ends it. */
const ENTRY_NAME = /^(\d{1,15})_([A-Za-z0-9_-]{1,64})(?:\.(\d{1,4}))?$/;
/** `c_<blockId>`: cannot be read as an entry name (those start with a digit). */
const CONSUMED_NAME = /^c_([A-Za-z0-9_-]{1,64})$/;
const consumedName = (blockId: string): string => `c_${blockId}`;

/** One secret of the blocks folder, as named. */
interface Entry {
  name: string;
  seq: number;
  blockId: string;
  /** undefined for the head, k >= 1 for a part. */
  part: number | undefined;
}

/** What one LIST of the stream's blocks folder shows. */
interface Folder {
  entries: Entry[];
  /** blockIds marked consumed. */
  consumed: Set<string>;
}

interface Head {
  bitLength: number;
  meta: string;
  storedAt: number;
  parts: number;
  first: Uint8Array;
}

export class VaultReconciledBlockStore implements ReconciledBlockStore {
  private readonly kv: VaultKv;
  private readonly client: nodeVault.client;
  /** Operations on one stream run one after the other. */
  private readonly streamLock = new KeyedMutex();
  private closed = false;

  constructor(options: VaultKvOptions) {
    this.kv = openVaultKv(options);
    this.client = this.kv.client;
  }

  async append(keyStreamId: string, block: ReconciledBlock): Promise<void> {
    checkReconciledStreamId(keyStreamId);
    checkReconciledBlock(block);
    this.checkOpen();
    // Encode now: the caller may reuse its array once we return.
    const parts = splitParts(block.bits);
    const incoming = { bits: Uint8Array.from(block.bits), bitLength: block.bitLength, meta: block.meta };
    try {
      await this.appendLocked(keyStreamId, block, parts, incoming);
    } finally {
      incoming.bits.fill(0);
    }
  }

  private async appendLocked(keyStreamId: string, block: ReconciledBlock, parts: readonly string[], incoming: Pick<ReconciledBlock, 'bits' | 'bitLength' | 'meta'>): Promise<void> {
    await this.streamLock.run(keyStreamId, async () => {
      const { entries, consumed } = await this.listFolder(keyStreamId);
      if (consumed.has(block.blockId)) throw new StoreError('conflict', consumedMessage('vault', block.blockId));
      const held = entries.find((e) => e.part === undefined && e.blockId === block.blockId);
      if (held) {
        const stored = await this.readBlock(keyStreamId, held);
        const same = sameBlockContent(stored, incoming);
        stored.bits.fill(0);
        if (same) return;
        throw new StoreError('conflict', conflictMessage('vault', block.blockId));
      }
      await this.destroyAll(keyStreamId, orphans(entries));
      const seq = entries.reduce((max, e) => Math.max(max, e.seq), 0) + 1;
      const head = `${seq}_${block.blockId}`;
      const written: string[] = [];
      try {
        await forEachLimit(
          parts.slice(1).map((b64, i) => ({ b64, k: i + 1 })),
          VAULT_PARALLELISM,
          async ({ b64, k }) => {
            written.push(`${head}.${k}`);
            await this.create(keyStreamId, `${head}.${k}`, { bits: b64 });
          },
        );
        written.push(head);
        await this.create(keyStreamId, head, {
          bit_length: block.bitLength,
          meta: block.meta,
          stored_at: block.storedAt,
          parts: parts.length,
          bits: parts[0],
        });
      } catch (err) {
        // Nothing half-written stays behind if Vault lets us; else the next append or deleteStream of the stream removes it.
        await this.destroyNames(keyStreamId, written).catch(() => undefined);
        throw err;
      }
    });
  }

  async list(keyStreamId: string): Promise<ReconciledBlock[]> {
    checkReconciledStreamId(keyStreamId);
    this.checkOpen();
    return this.streamLock.run(keyStreamId, async () => {
      const heads = (await this.listFolder(keyStreamId)).entries.filter((e) => e.part === undefined).sort((a, b) => a.seq - b.seq);
      const blocks: ReconciledBlock[] = new Array(heads.length);
      const positions = heads.map((_, i) => i);
      try {
        await forEachLimit(positions, VAULT_PARALLELISM, async (i) => {
          const read = await this.readBlock(keyStreamId, heads[i]);
          blocks[i] = { blockId: heads[i].blockId, ...read };
        });
      } catch (err) {
        for (const b of blocks) b?.bits.fill(0);
        throw err;
      }
      return blocks;
    });
  }

  async consume(keyStreamId: string, blockIds: readonly string[]): Promise<void> {
    checkReconciledStreamId(keyStreamId);
    checkBlockIds(blockIds);
    this.checkOpen();
    if (blockIds.length === 0) return;
    const wanted = new Set(blockIds);
    await this.streamLock.run(keyStreamId, async () => {
      const { entries, consumed } = await this.listFolder(keyStreamId);
      const targets = entries.filter((e) => wanted.has(e.blockId));
      // The mark first: from then on no append of these IDs is accepted, whatever happens next.
      const toMark = [...new Set(targets.filter((e) => e.part === undefined && !consumed.has(e.blockId)).map((e) => e.blockId))];
      await forEachLimit(toMark, VAULT_PARALLELISM, (id) => this.markConsumed(keyStreamId, id));
      await this.destroyAll(keyStreamId, targets);
    });
  }

  async deleteStream(keyStreamId: string): Promise<void> {
    checkReconciledStreamId(keyStreamId);
    this.checkOpen();
    await this.streamLock.run(keyStreamId, async () => {
      const { entries, consumed } = await this.listFolder(keyStreamId);
      await this.destroyAll(keyStreamId, entries);
      await this.destroyNames(keyStreamId, [...consumed].map(consumedName));
    });
  }

  /** Streams whose blocks folder holds any secret: one LIST of the prefix, then one per stream. */
  async streams(): Promise<string[]> {
    this.checkOpen();
    const names = await this.listNames(this.kv.metadataBase);
    const candidates = names
      .filter((n) => n.endsWith('/'))
      .map((n) => n.slice(0, -1))
      .filter((n) => RECONCILED_STREAM_ID_PATTERN.test(n));
    const holding: string[] = [];
    await forEachLimit(candidates, VAULT_PARALLELISM, async (s) => {
      const { entries, consumed } = await this.listFolder(s);
      if (entries.length > 0 || consumed.size > 0) holding.push(s);
    });
    return holding.sort();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.kv.close();
  }

  /** The parsed names in the stream's blocks folder; names of any other shape are left alone. */
  private async listFolder(keyStreamId: string): Promise<Folder> {
    const names = await this.listNames(`${this.kv.metadataBase}/${keyStreamId}/${VAULT_BLOCKS_FOLDER}`);
    const folder: Folder = { entries: [], consumed: new Set() };
    for (const name of names) {
      const c = CONSUMED_NAME.exec(name);
      if (c) {
        folder.consumed.add(c[1]);
        continue;
      }
      const m = ENTRY_NAME.exec(name);
      if (!m) continue;
      const part = m[3] === undefined ? undefined : Number(m[3]);
      if (part === 0) continue;
      folder.entries.push({ name, seq: Number(m[1]), blockId: m[2], part });
    }
    return folder;
  }

  /** Writes the consumed mark of a block; one already there (a repeated consume) is fine. */
  private async markConsumed(keyStreamId: string, blockId: string): Promise<void> {
    try {
      await this.client.write(`${this.kv.dataBase}/${keyStreamId}/${VAULT_BLOCKS_FOLDER}/${consumedName(blockId)}`, { options: { cas: 0 }, data: { consumed_at: Date.now() } });
    } catch (err) {
      if (statusOf(err) !== 400) throw vaultError(err, 'write');
    }
  }

  private async listNames(path: string): Promise<string[]> {
    let body: unknown;
    try {
      body = await this.client.list(path);
    } catch (err) {
      if (statusOf(err) === 404) return [];
      throw vaultError(err, 'list');
    }
    const names = (body as { data?: { keys?: unknown } })?.data?.keys;
    if (!Array.isArray(names)) throw new StoreError('corrupt', 'vault: unexpected list response');
    return names.filter((n): n is string => typeof n === 'string');
  }

  /** Reads a block from its head and parts; a missing or malformed part is corrupt (never a short block). */
  private async readBlock(keyStreamId: string, head: Entry): Promise<Omit<ReconciledBlock, 'blockId'>> {
    const h = await this.readHead(keyStreamId, head);
    const byteLength = Math.ceil(h.bitLength / 8);
    if (h.parts !== Math.max(1, Math.ceil(byteLength / VAULT_BLOCK_PART_BYTES))) {
      h.first.fill(0);
      throw new StoreError('corrupt', `vault: reconciled block ${head.blockId} has a part count that does not match its length`);
    }
    const bits = new Uint8Array(byteLength);
    const place = (chunk: Uint8Array, k: number): void => {
      const expected = Math.min(VAULT_BLOCK_PART_BYTES, byteLength - k * VAULT_BLOCK_PART_BYTES);
      const ok = chunk.length === expected;
      if (ok) bits.set(chunk, k * VAULT_BLOCK_PART_BYTES);
      chunk.fill(0);
      if (!ok) throw new StoreError('corrupt', `vault: reconciled block ${head.blockId} part ${k} has the wrong length`);
    };
    try {
      place(h.first, 0);
      const rest = Array.from({ length: h.parts - 1 }, (_, i) => i + 1);
      await forEachLimit(rest, VAULT_PARALLELISM, async (k) => {
        const data = await this.readData(keyStreamId, `${head.name}.${k}`);
        if (data === undefined) throw new StoreError('corrupt', `vault: reconciled block ${head.blockId} is missing part ${k}`);
        place(decodeBits(data.bits, head.blockId), k);
      });
    } catch (err) {
      bits.fill(0);
      throw err;
    }
    return { bits, bitLength: h.bitLength, meta: h.meta, storedAt: h.storedAt };
  }

  private async readHead(keyStreamId: string, head: Entry): Promise<Head> {
    const data = await this.readData(keyStreamId, head.name);
    // Listed a moment ago under the stream lock: gone now means someone else erased it.
    if (data === undefined) throw new StoreError('unavailable', `vault: reconciled block ${head.blockId} vanished while being read`);
    const { bit_length: bitLength, meta, stored_at: storedAt, parts } = data;
    if (
      typeof bitLength !== 'number' || !Number.isSafeInteger(bitLength) || bitLength < 0 || bitLength > MAX_RECONCILED_BLOCK_BITS ||
      typeof meta !== 'string' || typeof storedAt !== 'number' || !Number.isSafeInteger(storedAt) ||
      typeof parts !== 'number' || !Number.isSafeInteger(parts) || parts < 1 || parts > MAX_PARTS
    ) {
      throw new StoreError('corrupt', `vault: reconciled block ${head.blockId} has a malformed head`);
    }
    return { bitLength, meta, storedAt, parts, first: decodeBits(data.bits, head.blockId) };
  }

  /** The data of a secret of the stream's blocks folder; undefined when absent (404). */
  private async readData(keyStreamId: string, name: string): Promise<Record<string, unknown> | undefined> {
    let body: unknown;
    try {
      body = await this.client.read(`${this.kv.dataBase}/${keyStreamId}/${VAULT_BLOCKS_FOLDER}/${name}`);
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw vaultError(err, 'read');
    }
    const data = (body as { data?: { data?: unknown } })?.data?.data;
    if (typeof data !== 'object' || data === null) throw new StoreError('corrupt', 'vault: unexpected read response');
    return data as Record<string, unknown>;
  }

  /** Writes version 1 of a new secret (check-and-set 0: refused if the name exists). */
  private async create(keyStreamId: string, name: string, data: Record<string, unknown>): Promise<void> {
    await this.request('write', () => this.client.write(`${this.kv.dataBase}/${keyStreamId}/${VAULT_BLOCKS_FOLDER}/${name}`, { options: { cas: 0 }, data }));
  }

  /** Destroys heads first (the blocks vanish at once), then their parts and any orphans. */
  private async destroyAll(keyStreamId: string, entries: readonly Entry[]): Promise<void> {
    await this.destroyNames(keyStreamId, entries.filter((e) => e.part === undefined).map((e) => e.name));
    await this.destroyNames(keyStreamId, entries.filter((e) => e.part !== undefined).map((e) => e.name));
  }

  /** Deletes the metadata, i.e. every version, of each named secret (Vault answers 204 also when absent). */
  private async destroyNames(keyStreamId: string, names: readonly string[]): Promise<void> {
    await forEachLimit(names, VAULT_PARALLELISM, (name) =>
      this.request('delete', () => this.client.delete(`${this.kv.metadataBase}/${keyStreamId}/${VAULT_BLOCKS_FOLDER}/${name}`)),
    );
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
}

/** Base64 of each part; the first part always exists (it may be empty). */
function splitParts(bits: Uint8Array): string[] {
  const view = Buffer.from(bits.buffer, bits.byteOffset, bits.byteLength);
  const parts: string[] = [];
  for (let at = 0; at === 0 || at < view.length; at += VAULT_BLOCK_PART_BYTES) {
    parts.push(view.subarray(at, at + VAULT_BLOCK_PART_BYTES).toString('base64'));
  }
  return parts;
}

/** Parts without their head (left by an interrupted append). */
function orphans(entries: readonly Entry[]): Entry[] {
  const heads = new Set(entries.filter((e) => e.part === undefined).map((e) => `${e.seq}_${e.blockId}`));
  return entries.filter((e) => e.part !== undefined && !heads.has(`${e.seq}_${e.blockId}`));
}

function decodeBits(value: unknown, blockId: string): Uint8Array {
  if (typeof value !== 'string' || !BASE64_PATTERN.test(value)) {
    throw new StoreError('corrupt', `vault: reconciled block ${blockId} holds bits that are not valid base64`);
  }
  const buf = Buffer.from(value, 'base64');
  const out = Uint8Array.from(buf);
  buf.fill(0);
  return out;
}
