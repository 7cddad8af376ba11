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
    return keyIds.flatMap((id) => (this.records.has(id) ? [{ ...this.records.get(id)!, indices: [...this.records.get(id)!.indices] }] : []));
  }

  async claim(keyIds: readonly string[], now: number, windowMs: number): Promise<IssuedKeyRecord[] | undefined> {
    this.check();
    const ids = [...new Set(keyIds)];
    const found = ids.map((id) => this.records.get(id));
    if (found.some((r) => r === undefined || (r.claimedAt !== undefined && now - r.claimedAt >= windowMs))) return undefined;
    return found.map((r) => {
      if (r!.claimedAt === undefined) r!.claimedAt = now;
      return { ...r!, indices: [...r!.indices] };
    });
  }

  async remove(keyIds: readonly string[]): Promise<number> {
    this.check();
    let n = 0;
    for (const id of new Set(keyIds)) if (this.records.delete(id)) n++;
    return n;
  }

  async expire(createdAtOrBefore: number | undefined, claimedAtOrBefore: number): Promise<IssuedKeyRecord[]> {
    this.check();
    const out: IssuedKeyRecord[] = [];
    for (const [id, r] of this.records) {
      const due = r.claimedAt === undefined ? createdAtOrBefore !== undefined && r.createdAt <= createdAtOrBefore : r.claimedAt <= claimedAtOrBefore;
      if (!due) continue;
      this.records.delete(id);
      out.push(r);
    }
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
    let n = 0;
    for (const r of this.records.values()) if (r.claimedAt === undefined) n++;
    return n;
  }

  async close(): Promise<void> {}
}
