/** In-memory HandleStore and KeyStore for unit tests of the core (the real adapters have their own contract tests). */
import type { KeyStream, KeyStreamPatch } from '../../src/core/types.js';
import type { HandleStore } from '../../src/store/HandleStore.js';
import type { KeyStore } from '../../src/store/KeyStore.js';

export class MemoryHandleStore implements HandleStore {
  readonly rows = new Map<string, KeyStream>();
  async create(stream: KeyStream): Promise<boolean> {
    if (this.rows.has(stream.keyStreamId)) return false;
    this.rows.set(stream.keyStreamId, { ...stream });
    return true;
  }
  async get(id: string): Promise<KeyStream | undefined> {
    const row = this.rows.get(id);
    return row ? { ...row } : undefined;
  }
  async list(): Promise<KeyStream[]> {
    return [...this.rows.values()].map((r) => ({ ...r }));
  }
  async update(id: string, patch: KeyStreamPatch): Promise<void> {
    const row = this.rows.get(id);
    if (row) Object.assign(row, patch);
  }
  async delete(id: string): Promise<void> {
    this.rows.delete(id);
  }
  async advanceIndex(id: string, to: number): Promise<number | undefined> {
    const row = this.rows.get(id);
    if (!row) return undefined;
    row.nextIndex = Math.max(row.nextIndex, to);
    return row.nextIndex;
  }
  async close(): Promise<void> {}
}

export class MemoryKeyStore implements KeyStore {
  readonly keys = new Map<string, Map<number, Uint8Array>>();
  failTakes = false;
  async putMany(id: string, firstIndex: number, keys: readonly Uint8Array[]): Promise<void> {
    let m = this.keys.get(id);
    if (!m) this.keys.set(id, (m = new Map()));
    keys.forEach((k, i) => m!.set(firstIndex + i, new Uint8Array(k)));
  }
  async take(id: string, index: number): Promise<Uint8Array | undefined> {
    if (this.failTakes) throw new Error('store down');
    const m = this.keys.get(id);
    const k = m?.get(index);
    m?.delete(index);
    return k;
  }
  async indices(id: string): Promise<number[]> {
    return [...(this.keys.get(id)?.keys() ?? [])].sort((a, b) => a - b);
  }
  async deleteStream(id: string): Promise<void> {
    this.keys.delete(id);
  }
  async close(): Promise<void> {}
}
