/** In-memory HandleStore and KeyStore for unit tests of the core (the real adapters have their own contract tests). */
import type { KeyStream, KeyStreamPatch } from '../../src/core/types.js';
import type { HandleStore } from '../../src/store/HandleStore.js';
import type { DeliveredRecord, KeyStore } from '../../src/store/KeyStore.js';

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
  /** Delivered keys kept for the re-delivery window, by stream and index. */
  readonly deliveredMarks = new Map<string, Map<number, { at: number; token: string | undefined }>>();
  failTakes = false;
  async putMany(id: string, firstIndex: number, keys: readonly Uint8Array[]): Promise<void> {
    let m = this.keys.get(id);
    if (!m) this.keys.set(id, (m = new Map()));
    keys.forEach((k, i) => {
      m!.set(firstIndex + i, new Uint8Array(k));
      this.deliveredMarks.get(id)?.delete(firstIndex + i);
    });
  }
  async take(id: string, index: number): Promise<Uint8Array | undefined> {
    if (this.failTakes) throw new Error('store down');
    const m = this.keys.get(id);
    const k = m?.get(index);
    m?.delete(index);
    this.deliveredMarks.get(id)?.delete(index);
    return k;
  }
  async deliver(id: string, index: number, at: number, token?: string): Promise<Uint8Array | undefined> {
    if (this.failTakes) throw new Error('store down');
    const k = this.keys.get(id)?.get(index);
    if (!k || this.deliveredMarks.get(id)?.has(index)) return undefined;
    let d = this.deliveredMarks.get(id);
    if (!d) this.deliveredMarks.set(id, (d = new Map()));
    d.set(index, { at, token });
    return new Uint8Array(k);
  }
  async redeliver(id: string, index: number): Promise<Uint8Array | undefined> {
    const k = this.keys.get(id)?.get(index);
    return k && this.deliveredMarks.get(id)?.has(index) ? new Uint8Array(k) : undefined;
  }
  async delivered(id: string): Promise<DeliveredRecord[]> {
    return [...(this.deliveredMarks.get(id)?.entries() ?? [])]
      .filter(([index]) => this.keys.get(id)?.has(index))
      .map(([index, d]) => ({ index, deliveredAt: d.at, token: d.token }))
      .sort((a, b) => a.index - b.index);
  }
  async erase(id: string, indices: readonly number[]): Promise<void> {
    if (this.failTakes) throw new Error('store down');
    for (const i of indices) {
      this.keys.get(id)?.delete(i);
      this.deliveredMarks.get(id)?.delete(i);
    }
  }
  async indices(id: string): Promise<number[]> {
    const d = this.deliveredMarks.get(id);
    return [...(this.keys.get(id)?.keys() ?? [])].filter((i) => !d?.has(i)).sort((a, b) => a - b);
  }
  async deleteStream(id: string): Promise<void> {
    this.keys.delete(id);
    this.deliveredMarks.delete(id);
  }
  async close(): Promise<void> {}
}
