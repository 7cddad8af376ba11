/** In-memory Etsi014KeyIdStore for HTTP-level tests (the SQLite adapter has its own contract test). */
import type { Etsi014KeyIdStore, IssuedKeyRecord } from '../../src/store/Etsi014KeyIdStore.js';

export class MemoryEtsi014KeyIdStore implements Etsi014KeyIdStore {
  readonly records = new Map<string, IssuedKeyRecord>();
  failing = false;

  private check(): void {
    if (this.failing) throw new Error('memory store failing (test)');
  }

  async putMany(records: readonly IssuedKeyRecord[]): Promise<boolean> {
    this.check();
    const used = new Set([...this.records.values()].flatMap((r) => r.indices.map((i) => `${r.keyStreamId}/${i}`)));
    const ids = new Set<string>();
    for (const r of records) {
      if (this.records.has(r.keyId) || ids.has(r.keyId)) return false;
      ids.add(r.keyId);
      for (const i of r.indices) {
        const k = `${r.keyStreamId}/${i}`;
        if (used.has(k)) return false;
        used.add(k);
      }
    }
    for (const r of records) this.records.set(r.keyId, { ...r, indices: [...r.indices] });
    return true;
  }

  async get(keyIds: readonly string[]): Promise<IssuedKeyRecord[]> {
    this.check();
    return keyIds.flatMap((id) => (this.records.has(id) ? [{ ...this.records.get(id)! }] : []));
  }

  async claim(keyIds: readonly string[]): Promise<IssuedKeyRecord[] | undefined> {
    this.check();
    const ids = [...new Set(keyIds)];
    if (!ids.every((id) => this.records.has(id))) return undefined;
    const out = ids.map((id) => this.records.get(id)!);
    for (const id of ids) this.records.delete(id);
    return out;
  }

  async recorded(keyStreamId: string, indices: readonly number[]): Promise<Set<number>> {
    this.check();
    const wanted = new Set(indices);
    const out = new Set<number>();
    for (const r of this.records.values()) if (r.keyStreamId === keyStreamId) for (const i of r.indices) if (wanted.has(i)) out.add(i);
    return out;
  }

  async discard(keyStreamId: string, indices: readonly number[]): Promise<number> {
    this.check();
    const set = new Set(indices);
    let n = 0;
    for (const [id, r] of this.records) {
      if (r.keyStreamId === keyStreamId && r.indices.some((i) => set.has(i))) {
        this.records.delete(id);
        n++;
      }
    }
    return n;
  }

  async count(): Promise<number> {
    return this.records.size;
  }

  async close(): Promise<void> {}
}
