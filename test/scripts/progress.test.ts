/**
 * scripts/lib/progress.ts, the progress of the demo and the benchmarks: a line redrawn in place on a
 * terminal, plain bounded lines elsewhere (CI logs, pipes).
 */
import { describe, expect, it } from 'vitest';
import { PLAIN_STEPS, Progress, TTY_REDRAW_MS, waitShowingProgress, type ProgressStream } from '../../scripts/lib/progress.js';

/** A stream that records what is written to it, as a terminal or as a pipe. */
class FakeStream implements ProgressStream {
  readonly chunks: string[] = [];
  constructor(
    readonly isTTY: boolean,
    readonly columns?: number,
  ) {}
  write(text: string): boolean {
    this.chunks.push(text);
    return true;
  }
  get text(): string {
    return this.chunks.join('');
  }
}

/** What a terminal shows after `text`: carriage return, erase to end of line (ESC [K) and newlines applied. */
function screen(text: string): string[] {
  const lines: string[] = [''];
  let col = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    const row = lines.length - 1;
    if (text.startsWith('\x1b[K', i)) {
      lines[row] = lines[row]!.slice(0, col);
      i += 2;
    } else if (ch === '\r') col = 0;
    else if (ch === '\n') {
      lines.push('');
      col = 0;
    } else {
      const line = lines[row]!;
      lines[row] = line.slice(0, col) + ch + line.slice(col + 1);
      col++;
    }
  }
  return lines;
}

function fakeClock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('progress', () => {
  it('when the stream is a terminal, then updates redraw one line in place, at most every TTY_REDRAW_MS, and finish leaves the final state on it', () => {
    const out = new FakeStream(true, 200);
    const clock = fakeClock();
    const p = new Progress({ label: 'keys', total: 100, unit: 'keys', stream: out, now: clock.now });
    expect(p.mode).toBe('tty');
    const drawsAtStart = out.chunks.length;
    for (let i = 1; i <= 100; i++) {
      clock.advance(TTY_REDRAW_MS / 4);
      p.update(i, `matched ${i}`);
    }
    const draws = out.chunks.length - drawsAtStart;
    // 100 updates over 100 * TTY_REDRAW_MS / 4 ms: one redraw per TTY_REDRAW_MS (and the last), not one per update.
    expect(draws).toBeGreaterThanOrEqual(20);
    expect(draws).toBeLessThanOrEqual(27);
    expect(out.text).not.toContain('\n');
    expect(out.chunks.every((c) => c.startsWith('\r\x1b[K'))).toBe(true);
    p.finish();
    expect(out.text.endsWith('\n')).toBe(true);
    const shown = screen(out.text);
    expect(shown).toHaveLength(2); // the progress line, then the cursor on an empty line
    expect(shown[0]).toMatch(/^keys \[#{20}\] 100% \(100\/100 keys\) 2\.5 s  matched 100$/);
    expect(shown[1]).toBe('');
  });

  it('when a terminal update comes within TTY_REDRAW_MS of the last redraw, then it is drawn once that time is over, so the line never stays behind', async () => {
    const out = new FakeStream(true, 120);
    const p = new Progress({ label: 'cases', total: 10, unit: 'cases', stream: out });
    p.update(5, 'optimized n=100000 q=0.02 done');
    p.update(6, 'optimized n=100000 q=0.05 done');
    expect(out.chunks).toHaveLength(1); // only the first draw so far
    await new Promise((r) => setTimeout(r, TTY_REDRAW_MS + 100));
    expect(out.chunks).toHaveLength(2); // one trailing redraw for both updates
    expect(screen(out.text)[0]).toMatch(/^cases \[#{12}-{8}\] 60% \(6\/10 cases\) .*optimized n=100000 q=0\.05 done$/);
    p.finish();
    expect(out.chunks.at(-1)).toBe('\n');
  });

  it('when the terminal is narrow, then the live line is cut to its width so it never wraps; a size of 0 counts as unknown', () => {
    const out = new FakeStream(true, 40);
    const clock = fakeClock();
    const p = new Progress({ label: 'requests at both listeners', total: 1000, unit: 'requests', stream: out, now: clock.now });
    clock.advance(TTY_REDRAW_MS);
    p.update(500, 'a long detail that would wrap the line on a narrow terminal');
    expect(out.chunks).toHaveLength(2);
    for (const line of screen(out.text)) expect(line.length).toBeLessThanOrEqual(39);
    // A pseudo-terminal without a size reports 0 columns: the line keeps a usable width (80).
    const sizeless = new FakeStream(true, 0);
    new Progress({ label: 'requests', total: 1000, unit: 'requests', stream: sizeless, now: clock.now }).update(1000, 'detail');
    expect(screen(sizeless.text)[0]).toBe('requests [####################] 100% (1000/1000 requests) 0.0 s  detail');
  });

  it('when other output is logged during terminal progress, then it gets its own line and the live line is redrawn below it', () => {
    const out = new FakeStream(true, 120);
    const results = new FakeStream(true, 120);
    const clock = fakeClock();
    const p = new Progress({ label: 'keys', total: 10, unit: 'keys', stream: out, now: clock.now });
    clock.advance(TTY_REDRAW_MS);
    p.update(5);
    p.log('key 4: mismatch', results);
    p.log('a note on the progress stream');
    // Both streams are the same terminal: interleave them in write order.
    expect(results.text).toBe('key 4: mismatch\n');
    const shown = screen(out.text);
    expect(shown.at(-2)).toBe('a note on the progress stream');
    expect(shown.at(-1)).toMatch(/^keys \[#{10}-{10}\] 50% \(5\/10 keys\)/);
  });

  it('when the stream is not a terminal, then progress is plain newline-terminated lines without carriage returns, at most PLAIN_STEPS + 2 of them however many updates', () => {
    const out = new FakeStream(false);
    const clock = fakeClock();
    const p = new Progress({ label: 'requests', total: 10_000, unit: 'requests', stream: out, now: clock.now });
    expect(p.mode).toBe('plain');
    for (let i = 1; i <= 10_000; i++) {
      clock.advance(1);
      p.update(i);
    }
    p.finish();
    expect(out.text).not.toMatch(/[\r\x1b]/);
    expect(out.text.endsWith('\n')).toBe(true);
    const lines = out.text.trimEnd().split('\n');
    expect(lines.length).toBeLessThanOrEqual(PLAIN_STEPS + 2);
    expect(lines[0]).toBe('requests: started (10000 requests)');
    const percents = lines.slice(1).map((l) => Number(/^requests: (\d+)% /.exec(l)?.[1]));
    expect(percents).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
    expect(lines.at(-1)).toBe('requests: 100% (10000/10000 requests) 10.0 s');
  });

  it('when plain progress finishes early (a run cut short), then its last line says how far it got', () => {
    const out = new FakeStream(false);
    const p = new Progress({ label: 'blocks', total: 40, unit: 'blocks', stream: out });
    p.update(3);
    p.update(7, 'aborted: peer down');
    p.finish();
    const lines = out.text.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/^blocks: 17% \(7\/40 blocks\) /);
    expect(lines.at(-1)).toMatch(/^blocks: 17% \(7\/40 blocks\) \d+\.\d s, ~\d+\.\d s left  aborted: peer down$/);
  });

  it('when work runs for a set time (waitShowingProgress), then it waits that long and ends with a 100 % line, in bounded plain lines', async () => {
    const out = new FakeStream(false);
    let blocks = 0;
    const counter = setInterval(() => blocks++, 50);
    const t0 = Date.now();
    try {
      await waitShowingProgress(1200, { label: 'measuring window', stream: out, detail: () => `${blocks} blocks` });
    } finally {
      clearInterval(counter);
    }
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1190);
    expect(out.text).not.toContain('\r');
    const lines = out.text.trimEnd().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(3);
    expect(lines.length).toBeLessThanOrEqual(PLAIN_STEPS + 2);
    expect(lines[0]).toBe('measuring window: started (1.2 s)');
    expect(lines.at(-1)).toMatch(/^measuring window: 100% \(1\.2\/1\.2 s\) 1\.\d s  \d+ blocks$/);
  });

  it('when total is not a positive number, then it throws naming total', () => {
    expect(() => new Progress({ label: 'x', total: 0, unit: 'keys', stream: new FakeStream(false) })).toThrow(/total must be a positive number, got 0/);
    expect(() => new Progress({ label: 'x', total: Number.NaN, unit: 'keys', stream: new FakeStream(false) })).toThrow(/total must be a positive number/);
  });
});
