/** Per-stage timing of one block (the ms_* figures of the block stats). */

export class Stopwatch {
  private last = performance.now();
  readonly start = this.last;
  readonly laps: Record<string, number> = {};

  lap(name: string): void {
    const now = performance.now();
    this.laps[name] = (this.laps[name] ?? 0) + (now - this.last);
    this.last = now;
  }

  /** Adds an interval measured elsewhere. */
  add(name: string, ms: number): void {
    this.laps[name] = (this.laps[name] ?? 0) + ms;
  }

  /** ms_<stage> for every stage, and ms_total: the wall time since construction, or (busyTotal) the sum of the stages. */
  flat(busyTotal = false): Record<string, number> {
    const out: Record<string, number> = {};
    let busy = 0;
    for (const [k, v] of Object.entries(this.laps)) {
      out[`ms_${k}`] = round3(v);
      if (k !== 'sign' && k !== 'toeplitz') busy += v; // parts of other stages (sign runs in worker threads)
    }
    out.ms_total = round3(busyTotal ? busy : performance.now() - this.start);
    return out;
  }
}

export const round3 = (x: number): number => Math.round(x * 1000) / 1000;
export const round6 = (x: number): number => Math.round(x * 1e6) / 1e6;
