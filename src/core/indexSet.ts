/**
 * The indices of keys present in the key store for one stream, kept in memory so that
 * GET_KEY with index -1 finds the lowest one without a store query.
 *
 * Keys arrive in increasing index order and are mostly taken lowest-first, so the set is a
 * sorted array with a moving head plus a small set of holes (keys taken out of order).
 */
export class IndexSet {
  private sorted: number[] = [];
  private head = 0;
  private holes = new Set<number>();

  constructor(initial: Iterable<number> = []) {
    for (const i of initial) this.add(i);
  }

  get size(): number {
    return this.sorted.length - this.head - this.holes.size;
  }

  has(index: number): boolean {
    const pos = this.position(index);
    return pos < this.sorted.length && this.sorted[pos] === index && !this.holes.has(index);
  }

  add(index: number): void {
    const last = this.sorted[this.sorted.length - 1];
    if (this.sorted.length === this.head || (last !== undefined && index > last)) {
      this.sorted.push(index);
      return;
    }
    const pos = this.position(index);
    if (this.sorted[pos] === index) {
      this.holes.delete(index);
      return;
    }
    this.sorted.splice(pos, 0, index);
  }

  delete(index: number): boolean {
    if (!this.has(index)) return false;
    if (this.sorted[this.head] === index) {
      this.head++;
      this.skipHoles();
    } else {
      this.holes.add(index);
    }
    this.compact();
    return true;
  }

  /** The highest index present, or undefined when empty. */
  highest(): number | undefined {
    for (let pos = this.sorted.length - 1; pos >= this.head; pos--) {
      const index = this.sorted[pos]!;
      if (!this.holes.has(index)) return index;
    }
    return undefined;
  }

  /** The lowest index strictly below `limit`, or undefined. */
  lowestBelow(limit: number): number | undefined {
    const first = this.sorted[this.head];
    return first !== undefined && first < limit ? first : undefined;
  }

  /** The indices in [from, to), ascending. */
  between(from: number, to: number): number[] {
    const found: number[] = [];
    for (let pos = this.position(from); pos < this.sorted.length && this.sorted[pos]! < to; pos++) {
      const index = this.sorted[pos]!;
      if (!this.holes.has(index)) found.push(index);
    }
    return found;
  }

  /** How many indices are strictly below `limit`. */
  countBelow(limit: number): number {
    const pos = this.position(limit);
    let holesBelow = 0;
    for (const h of this.holes) if (h < limit) holesBelow++;
    return pos - this.head - holesBelow;
  }

  /** First position >= head whose value is >= index (binary search). */
  private position(index: number): number {
    let lo = this.head;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.sorted[mid]! < index) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private skipHoles(): void {
    while (this.head < this.sorted.length && this.holes.has(this.sorted[this.head]!)) {
      this.holes.delete(this.sorted[this.head]!);
      this.head++;
    }
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.sorted.length) {
      this.sorted = this.sorted.slice(this.head);
      this.head = 0;
    }
    if (this.holes.size > 256) {
      this.sorted = this.sorted.slice(this.head).filter((i) => !this.holes.has(i));
      this.head = 0;
      this.holes.clear();
    }
  }
}
