/**
 * Progress of long work (the demo, the benchmarks), written to stderr by default so that it stays
 * apart from the results on stdout: a benchmark's JSON line remains machine-readable.
 *
 * - On a terminal: one line redrawn in place (carriage return, then erase to the end of the line), at
 *   most every TTY_REDRAW_MS (an update inside that time is drawn when it ends, so the line never
 *   stays behind), cut to the terminal's width (a line that wraps cannot be redrawn).
 * - Anywhere else (CI logs, pipes, files): plain newline-terminated lines, never a carriage return:
 *   one when the work starts, one each time another tenth of it is done, so a run prints at most
 *   PLAIN_STEPS + 2 lines however long it is.
 *
 * The mode follows the stream the progress is written to, since that is where carriage returns would
 * land: `bench > result.json` keeps the live line on the terminal and a clean file.
 */

/** What progress is written to: process.stderr, or a fake stream in tests. */
export interface ProgressStream {
  write(text: string): unknown;
  readonly isTTY?: boolean | undefined;
  readonly columns?: number | undefined;
}

export interface ProgressOptions {
  /** What is being done, e.g. 'keys' or 'pipeline hmac'. */
  label: string;
  /** Units of work in all (positive; seconds for work that runs for a set time). */
  total: number;
  /** The unit's name, e.g. 'keys', 'requests', 's'. */
  unit: string;
  /** Default process.stderr. */
  stream?: ProgressStream;
  /** Force a mode; default 'tty' when the stream is a terminal, else 'plain'. */
  mode?: ProgressMode;
  /** Clock in milliseconds (tests pass a fake one). */
  now?: () => number;
}

export type ProgressMode = 'tty' | 'plain';

/** A terminal line is redrawn at most this often (a tight loop would otherwise spend its time drawing). */
export const TTY_REDRAW_MS = 100;
/** Plain mode prints a line each time another 1/PLAIN_STEPS of the work is done. */
export const PLAIN_STEPS = 10;
/** How often time-based progress (waitShowingProgress) is updated. */
export const TICK_MS = 250;
const BAR_CELLS = 20;
/** Width assumed when a terminal does not report one (or reports 0). */
const DEFAULT_COLUMNS = 80;
/** Carriage return and ANSI "erase to end of line": redraw the current line. */
const REDRAW = '\r\x1b[K';

const count = (n: number): string => (Number.isInteger(n) ? String(n) : n.toFixed(1));
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

export class Progress {
  readonly mode: ProgressMode;
  private readonly label: string;
  private readonly total: number;
  private readonly unit: string;
  private readonly stream: ProgressStream;
  private readonly now: () => number;
  private readonly startedAt: number;
  private done = 0;
  private detail = '';
  private lastDrawAt = -Infinity;
  /** Terminal: the redraw of an update that came within TTY_REDRAW_MS of the last one. */
  private pendingDraw: ReturnType<typeof setTimeout> | undefined;
  /** Plain mode: the last tenth a line was printed for. */
  private lastStep = 0;
  private finished = false;

  constructor(options: ProgressOptions) {
    if (!(options.total > 0) || !Number.isFinite(options.total)) throw new RangeError(`progress: total must be a positive number, got ${options.total}`);
    this.label = options.label;
    this.total = options.total;
    this.unit = options.unit;
    this.stream = options.stream ?? process.stderr;
    this.mode = options.mode ?? (this.stream.isTTY ? 'tty' : 'plain');
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
    if (this.mode === 'tty') this.draw();
    else this.stream.write(`${this.label}: started (${count(this.total)} ${this.unit})\n`);
  }

  /** `done` units of `total` are done; `detail` is a short note shown after the figures. */
  update(done: number, detail?: string): void {
    if (this.finished) return;
    this.done = Math.min(this.total, Math.max(0, done));
    if (detail !== undefined) this.detail = detail;
    if (this.mode === 'tty') {
      const sinceDraw = this.now() - this.lastDrawAt;
      if (sinceDraw >= TTY_REDRAW_MS || this.done >= this.total) this.draw();
      else if (!this.pendingDraw) {
        // unref: a pending redraw never keeps the process alive.
        this.pendingDraw = setTimeout(() => this.draw(), TTY_REDRAW_MS - sinceDraw);
        this.pendingDraw.unref?.();
      }
      return;
    }
    const step = Math.floor((this.done / this.total) * PLAIN_STEPS);
    if (step > this.lastStep) {
      this.lastStep = step;
      this.stream.write(`${this.plainLine()}\n`);
    }
  }

  increment(by = 1, detail?: string): void {
    this.update(this.done + by, detail);
  }

  /**
   * Writes a line of other output (to `out`, default the progress stream) without garbling the live
   * line: on a terminal the live line is erased first and redrawn after.
   */
  log(line: string, out: ProgressStream = this.stream): void {
    const live = this.mode === 'tty' && !this.finished;
    if (live) this.stream.write(REDRAW);
    out.write(`${line}\n`);
    if (live) this.draw();
  }

  /**
   * Ends the progress: on a terminal the last state stays on its line and the cursor moves to the next;
   * in plain mode a closing line is printed unless the 100 % line already was.
   */
  finish(detail?: string): void {
    if (this.finished) return;
    if (detail !== undefined) this.detail = detail;
    this.finished = true;
    clearTimeout(this.pendingDraw);
    if (this.mode === 'tty') {
      this.draw();
      this.stream.write('\n');
    } else if (this.lastStep < PLAIN_STEPS || detail !== undefined) {
      this.lastStep = PLAIN_STEPS;
      this.stream.write(`${this.plainLine()}\n`);
    }
  }

  private figures(): string {
    const pct = Math.floor((this.done / this.total) * 100);
    const elapsed = this.now() - this.startedAt;
    const left = this.done > 0 && this.done < this.total ? `, ~${seconds((elapsed * (this.total - this.done)) / this.done)} left` : '';
    return `${pct}% (${count(this.done)}/${count(this.total)} ${this.unit}) ${seconds(elapsed)}${left}${this.detail ? `  ${this.detail}` : ''}`;
  }

  private plainLine(): string {
    return `${this.label}: ${this.figures()}`;
  }

  private draw(): void {
    clearTimeout(this.pendingDraw);
    this.pendingDraw = undefined;
    this.lastDrawAt = this.now();
    const filled = Math.round((this.done / this.total) * BAR_CELLS);
    const line = `${this.label} [${'#'.repeat(filled)}${'-'.repeat(BAR_CELLS - filled)}] ${this.figures()}`;
    // A pseudo-terminal without a size reports 0 columns: treat it as unknown.
    const width = Math.max(10, (this.stream.columns || DEFAULT_COLUMNS) - 1);
    this.stream.write(`${REDRAW}${line.length > width ? line.slice(0, width) : line}`);
  }
}

/**
 * Waits `ms` while showing the time elapsed as progress (a measuring window, a load phase of set
 * length); `detail` is read at every tick, e.g. the blocks or requests counted so far.
 */
export async function waitShowingProgress(ms: number, options: Omit<ProgressOptions, 'total' | 'unit'> & { detail?: () => string }): Promise<void> {
  if (!(ms > 0)) return;
  const now = options.now ?? Date.now;
  const t0 = now();
  const progress = new Progress({ ...options, total: ms / 1000, unit: 's' });
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => progress.update((now() - t0) / 1000, options.detail?.()), TICK_MS);
    setTimeout(() => {
      clearInterval(tick);
      resolve();
    }, ms);
  });
  progress.update(ms / 1000, options.detail?.());
  progress.finish();
}
