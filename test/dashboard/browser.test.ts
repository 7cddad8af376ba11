/**
 * The dashboard in a real browser: Debian's Chromium (/usr/bin/chromium) driven by playwright-core opens
 * /dashboard of a running pair of module processes, waits until every chart has drawn the latest feed, reads
 * the numbers the page shows (the summary table's cells, the link table, the event list, the planned and
 * measured secret bits per pulse) and compares them with GET /streams and GET /streams/:id/stats fetched by the
 * test around the same poll, checks the console stayed clean, and saves a screenshot to test-output/.
 *
 * Without Chromium: under CI=true the file fails (naming the install step); elsewhere it is skipped with the
 * reason in its title. Needs the compiled tree with the page's files (npm run build).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { PyValue } from '../../src/api/codec/pyLiteral.js';
import { freePort, getJson, postPy, ROOT, startModule, tempDir, WAIT, type RunningModule } from '../support/processes.js';

const CHROMIUM = '/usr/bin/chromium';
/** The machine's network is closed: without these Chromium waits on connections it will never get. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const OUTPUT = join(ROOT, 'test-output');
const BUILT_PAGE = join(ROOT, 'dist', 'src', 'dashboard', 'public');
const CAPACITY = 20;
/** The streams' QoS timeout, which also bounds how long a get_key waits for a key (a loaded machine is slow). */
const STREAM_TIMEOUT_MS = 20_000;
/** A short BB84 link (5 km) with 2e6-pulse blocks: a block takes a fraction of a second. */
// The link of test/e2e/bb84TwoModules.test.ts: a short fibre and a small PA block, so keys come within seconds.
const BB84_LINK = { QKDM_MODULE_SIM: 'bb84', QKDM_SIMULATOR_BLOCK_PULSES: '26000000', QKDM_SIMULATOR_CHANNEL_LENGTH_KM: '5', QKDM_SIMULATOR_BASIS_X_PROBABILITY: '0.5', QKDM_SIMULATOR_PA_BLOCK_BITS: '120000' };
const OPERATOR_TOKEN = 'operator-token-of-the-browser-test';

const inCi = ['true', '1'].includes((process.env.CI ?? '').toLowerCase());
const haveChromium = existsSync(CHROMIUM);

// ------------------------------------------------------------------------------------------ helpers

interface Link {
  alice: RunningModule;
  bob: RunningModule;
}

let running: RunningModule[] = [];
let contexts: BrowserContext[] = [];
const userDirs: string[] = [];
afterEach(async () => {
  await Promise.all(contexts.map((c) => c.close().catch(() => undefined)));
  contexts = [];
  await Promise.all(running.map((m) => m.kill('SIGKILL')));
  running = [];
});
afterAll(() => {
  for (const dir of userDirs) rmSync(dir, { recursive: true, force: true });
});

/** The peer handshake signs with SLH-DSA: on a busy 2-core machine it may take longer than the default test timeout. */
const PEER_TIMEOUT = { QKDM_MODULE_PEER_TIMEOUT_MS: '15000' };

async function startLink(linkEnv: Record<string, string>, aliceEnv: Record<string, string> = {}): Promise<Link> {
  const env = { ...PEER_TIMEOUT, ...linkEnv };
  const [pa, pb] = [await freePort(), await freePort()];
  const alice = await startModule({ name: 'alice', sender: 1, port: pa, dataDir: tempDir('dash-alice'), maxKeyCount: CAPACITY, env: { ...env, ...aliceEnv } });
  running.push(alice);
  const bob = await startModule({ name: 'bob', sender: 0, port: pb, dataDir: tempDir('dash-bob'), maxKeyCount: CAPACITY, env });
  running.push(bob);
  return { alice, bob };
}

async function openStream({ alice, bob }: Link, length: number): Promise<string> {
  const a = await postPy(alice.url, '/open_connect', [null, bob.address, { timeout: STREAM_TIMEOUT_MS, length }, null]);
  const [id, status] = a.value as [string, number];
  expect(status, a.headers.get('x-qkdm-message') ?? '').toBe(0);
  const b = await postPy(bob.url, '/open_connect', [null, alice.address, { timeout: STREAM_TIMEOUT_MS, length }, id]);
  expect(b.value).toEqual([id, 0]);
  return id;
}

/** The next key at one end, waiting (bounded) while the exchange produces it. */
async function nextKey(m: RunningModule, id: string): Promise<number> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await postPy(m.url, '/get_key', [id, -1, {}], WAIT(STREAM_TIMEOUT_MS / 1000));
    const [, index, status] = r.value as [PyValue, number, number];
    if (status === 0) return index;
    if (Date.now() > deadline) throw new Error(`no key at ${m.spec.name}: status ${status} (${r.headers.get('x-qkdm-message') ?? ''})`);
  }
}

/** Takes `n` keys at both ends (index by index, the same at both). */
async function takeKeys({ alice, bob }: Link, id: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const [a, b] = await Promise.all([nextKey(alice, id), nextKey(bob, id)]);
    expect(b).toBe(a);
  }
}

/** GET with the operator token when the module has one. */
async function operatorGet(m: RunningModule, path: string, token?: string): Promise<any> {
  const res = await fetch(`${m.url}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  expect(res.status, path).toBe(200);
  return res.json();
}

async function until(check: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A fresh Chromium profile at 1280x800; `password`: HTTP Basic credentials for the operator token. */
async function openBrowser(password?: string): Promise<{ page: Page; problems: string[] }> {
  const userDataDir = mkdtempSync(join(tmpdir(), 'qkdm-chromium-'));
  userDirs.push(userDataDir);
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 800 },
    ...(password ? { httpCredentials: { username: 'operator', password } } : {}),
    timeout: 60_000,
  });
  contexts.push(context);
  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') problems.push(`console ${msg.type()}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()} ${req.failure()?.errorText ?? ''}`));
  page.on('response', (res) => {
    if (res.status() >= 400) problems.push(`HTTP ${res.status()} for ${res.url()}`);
  });
  return { page, problems };
}

/** Resolves once the page has drawn a feed generated after `after` (ms since the epoch), every chart included. */
async function drawnAfter(page: Page, after: number): Promise<number> {
  const handle = await page.waitForFunction(
    (t) => {
      const body = document.body;
      if (body.dataset.state !== 'rendered' || Number(body.dataset.feedAt) <= t) return false;
      const charts = [...document.querySelectorAll<HTMLElement>('.chart[data-chart]')].filter((c) => c.offsetParent !== null);
      if (charts.length === 0) return false;
      return charts.every((c) => c.querySelector('canvas') !== null && c.dataset.drawnAt === body.dataset.feedAt) ? Number(body.dataset.feedAt) : false;
    },
    after,
    { timeout: 20_000, polling: 100 },
  );
  return (await handle.jsonValue()) as number;
}

interface ShownRow {
  value: Record<string, string>;
  text: Record<string, string>;
  exchangeRunning: string | null;
  /** Points of the stream's QBER chart, the reasons its event list shows, its measured point on the planned curve. */
  qberPoints: number;
  abortReasons: string[];
  measuredPoint: string | null;
}

/**
 * What the page shows for a stream, read in one go (the page cannot re-render in between): each summary cell's
 * text and data-value, and the stream's QBER chart, event list and measured point.
 */
async function shownRow(page: Page, id: string): Promise<ShownRow> {
  return page.evaluate((streamId) => {
    const tr = document.querySelector(`#summary tr[data-stream-id="${streamId}"]`)!;
    const value: Record<string, string> = {};
    const text: Record<string, string> = {};
    for (const c of tr.querySelectorAll<HTMLElement>('[data-field]')) {
      value[c.dataset.field!] = c.dataset.value ?? '';
      text[c.dataset.field!] = c.textContent ?? '';
    }
    const section = document.querySelector(`section.stream[data-stream-id="${streamId}"]`)!;
    const qber = section.querySelector<HTMLElement>('.chart[data-chart="qber"]')!;
    const reasons = [...section.querySelectorAll('.events tbody tr[data-kind="abort"]')].map((row) => row.lastElementChild!.textContent ?? '');
    const measured = document.querySelector<HTMLElement>(`#planned-values [data-stream-id="${streamId}"]`);
    return {
      value,
      text,
      exchangeRunning: tr.getAttribute('data-exchange-running'),
      qberPoints: Number(qber.dataset.points),
      abortReasons: reasons,
      measuredPoint: measured ? (measured.dataset.value ?? null) : null,
    };
  }, id);
}

/** A whole number the page printed ("1,234" -> 1234). */
const printed = (s: string | undefined): number => Number((s ?? '').replace(/,/g, ''));

/** Checks a number the page shows against two API readings around it: equal to one, or (a counter) between them. */
function expectBetween(shown: number, before: number, after: number, what: string): void {
  expect(shown, `${what}: page ${shown}, API ${before} before and ${after} after`).toBeGreaterThanOrEqual(Math.min(before, after));
  expect(shown, `${what}: page ${shown}, API ${before} before and ${after} after`).toBeLessThanOrEqual(Math.max(before, after));
}

interface Round {
  firstIndex: number;
  keys: number;
  stats?: Record<string, number | string | boolean | null>;
}

/**
 * Opens the dashboard, reads the stream's row after a poll that followed an API reading, and compares: deliverable,
 * capacity, produced, taken and the exchange flag with GET /streams; blocks, aborts, last QBER, last secret fraction
 * and measured secret bits per pulse with GET /streams/:id/stats.
 */
async function compareWithApi(page: Page, m: RunningModule, id: string, token?: string): Promise<{ row: ShownRow; rounds: Round[] }> {
  const before = ((await operatorGet(m, '/streams', token)).streams as any[]).find((s) => s.keyStreamId === id);
  const statsBefore = (await operatorGet(m, `/streams/${id}/stats`, token)).rounds as Round[];
  const at = Date.now();
  await drawnAfter(page, at); // the natural lag: the first poll generated after the API reading
  const row = await shownRow(page, id);
  const after = ((await operatorGet(m, '/streams', token)).streams as any[]).find((s) => s.keyStreamId === id);
  const statsAfter = (await operatorGet(m, `/streams/${id}/stats`, token)).rounds as Round[];

  const available = Number(row.value.available);
  expectBetween(available, before.available, after.available, 'deliverable keys');
  expect(printed(row.text.available)).toBe(available);
  expect(Number(row.value.capacity)).toBe(CAPACITY);
  expectBetween(Number(row.value.produced), before.nextIndex, after.nextIndex, 'produced (nextIndex)');
  expect(printed(row.text.produced)).toBe(Number(row.value.produced));
  expectBetween(Number(row.value.taken), before.nextIndex - before.available, after.nextIndex - after.available, 'taken');
  expect(Number(row.value.taken)).toBe(Number(row.value.produced) - available);
  expect([String(before.exchangeRunning), String(after.exchangeRunning)]).toContain(row.exchangeRunning);
  expect(row.value.keyLengthBits).toBe(String(before.length));

  // Rounds: the page's window holds every round of this short test; the stats route keeps the last 100.
  const blocks = Number(row.value.blocks);
  expectBetween(blocks, statsBefore.length, statsAfter.length, 'blocks');
  const rounds = statsAfter.slice(0, blocks);
  expect(Number(row.value.aborts)).toBe(rounds.filter((r) => r.stats?.aborted === true).length);
  const last = rounds[rounds.length - 1];
  const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);
  // What a round means (docs/bb84.md, stats): a round that amplified a PA block carries the PA block's pulses and
  // sifted bits; a round that only accumulated its EC block has no secret length yet.
  const figures = (st: Record<string, unknown> | undefined) => {
    const amplified = num(st?.paPulses) !== null;
    return {
      qber: num(st?.qberZ) ?? num(st?.qberEstimate),
      pulses: num(st?.paPulses) ?? num(st?.pulses),
      sifted: num(st?.paSiftedBits) ?? num(st?.siftedBits),
      secret: st?.accumulated === true && !amplified ? null : num(st?.secretBits),
    };
  };
  const lastFigures = figures(last?.stats);
  expect(row.value.lastQber).toBe(lastFigures.qber === null ? '' : String(lastFigures.qber));
  expect(row.value.lastSecretFraction).toBe(lastFigures.secret !== null && lastFigures.sifted ? String(lastFigures.secret / lastFigures.sifted) : '');
  const withPulses = rounds.map((r) => figures(r.stats)).filter((f) => f.pulses !== null && f.pulses > 0 && f.secret !== null);
  const pulses = withPulses.reduce((s, f) => s + f.pulses!, 0);
  const secretSum = withPulses.reduce((s, f) => s + f.secret!, 0);
  if (pulses > 0) expect(Number(row.value.measuredSecretBitsPerPulse)).toBeCloseTo(secretSum / pulses, 12);
  else expect(row.value.measuredSecretBitsPerPulse).toBe('');
  return { row, rounds };
}

// ------------------------------------------------------------------------------------------ tests

const title = haveChromium ? 'the dashboard in Chromium' : `the dashboard in Chromium (skipped: ${CHROMIUM} is missing; apt-get install -y chromium)`;

if (!haveChromium && inCi) {
  describe('the dashboard in Chromium', () => {
    it('when CI runs, then Chromium is installed at /usr/bin/chromium', () => {
      throw new Error(`${CHROMIUM} is missing: the browser test needs Debian's Chromium (apt-get install -y chromium; .ci/run installs it)`);
    });
  });
} else {
  describe.skipIf(!haveChromium)(title, () => {
    it('when a fake-simulator pair delivers keys, then the page draws its charts and shows the counts of GET /streams and /stats, with a clean console', async () => {
      expect(existsSync(join(BUILT_PAGE, 'uPlot.iife.min.js')), `${BUILT_PAGE} lacks uPlot: run npm run build`).toBe(true);
      const link = await startLink({});
      const id = await openStream(link, 256);
      await takeKeys(link, id, 6);
      const { page, problems } = await openBrowser();
      await page.goto(`${link.alice.url}/dashboard`);
      await drawnAfter(page, 0);
      const { row } = await compareWithApi(page, link.alice, id);
      expect(Number(row.value.taken)).toBeGreaterThanOrEqual(6);
      expect(row.value.lastQber).toBe(''); // the fake device measures no QBER
      expect(await page.textContent('[data-stream-id] [data-panel="qber"] .empty')).toMatch(/fake simulator measures no QBER/);
      expect(await page.$eval('#planned', (f) => (f as HTMLElement).hidden)).toBe(true);
      expect(await page.$eval('#link-parameters tr[data-key="module.sim"] [data-field="value"]', (c) => c.textContent)).toBe('fake');
      // Bob's page describes the same stream from the receiving end.
      await page.goto(`${link.bob.url}/dashboard`);
      await drawnAfter(page, 0);
      await compareWithApi(page, link.bob, id);
      expect(await page.textContent('#module-role')).toMatch(/receiver \(Bob\)/);
      expect(problems).toEqual([]);
    }, 120_000);

    it('when a BB84 pair runs behind an operator token, then the browser signs in with HTTP Basic, the QBER and rate panels match /stats, and a screenshot is saved', async () => {
      const link = await startLink(BB84_LINK, { QKDM_MODULE_OPERATOR_TOKEN: OPERATOR_TOKEN });
      const id = await openStream(link, 256);
      await takeKeys(link, id, 30);
      // Without credentials the page is refused with a Basic challenge (what makes a browser ask).
      const refused = await fetch(`${link.alice.url}/dashboard`);
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toBe('Basic realm="qkd-module operator"');

      const { page, problems } = await openBrowser(OPERATOR_TOKEN);
      await page.goto(`${link.alice.url}/dashboard`);
      await drawnAfter(page, 0);
      await takeKeys(link, id, 10); // keys taken while the page watches: the rate chart has something to show
      const { row, rounds } = await compareWithApi(page, link.alice, id, OPERATOR_TOKEN);
      expect(rounds.length).toBeGreaterThanOrEqual(2);
      expect(Number(row.value.lastQber)).toBeGreaterThan(0);
      expect(Number(row.value.lastQber)).toBeLessThan(0.05);
      expect(row.text.lastQber).toBe(`${(Number(row.value.lastQber) * 100).toFixed(2)} %`);

      // Every block is a point of the QBER chart.
      expect(row.qberPoints).toBe(Number(row.value.blocks));
      // Aborts: the page lists exactly the aborted rounds of /stats (the newest 12), each with its reason.
      expect(row.abortReasons).toEqual(rounds.filter((r) => r.stats?.aborted === true).map((r) => r.stats!.reason).slice(-12));

      // The link and the planned curve as the feed gives them; the measured point in the DOM too.
      const feed = await operatorGet(link.alice, '/dashboard/feed', OPERATOR_TOKEN);
      const param = (key: string) => page.$eval(`#link-parameters tr[data-key="${key}"] [data-field="value"]`, (c) => (c as HTMLElement).dataset.value);
      expect(await param('simulator.channel.length_km')).toBe('5');
      expect(await param('simulator.channel.pulse_rate_hz')).toBe(String(feed.link.find((p: { key: string }) => p.key === 'simulator.channel.pulse_rate_hz').value));
      expect(await param('simulator.intensities')).toBe(String(feed.link.find((p: { key: string }) => p.key === 'simulator.intensities').value));
      expect(await page.$eval('#planned', (f) => (f as HTMLElement).hidden)).toBe(false);
      expect(Number(await page.$eval('[data-field="planned-secret-bits-per-pulse"]', (c) => (c as HTMLElement).dataset.value))).toBe(feed.plannedCurve.plannedSecretBitsPerPulse);
      expect(await page.textContent('#planned-analysis')).toContain(feed.plannedCurve.analysis);
      const measured = Number(row.measuredPoint);
      expect(row.measuredPoint).toBe(row.value.measuredSecretBitsPerPulse);
      expect(measured).toBeGreaterThan(0);
      // The plan is the finite-key analysis the simulator sizes keys with (test/sim/bb84 checks the agreement
      // closely on large blocks); on this test's small PA block the realised rate stays within a factor of two.
      expect(measured).toBeLessThan(feed.plannedCurve.plannedSecretBitsPerPulse * 2);
      expect(measured).toBeGreaterThan(feed.plannedCurve.plannedSecretBitsPerPulse / 2);

      mkdirSync(OUTPUT, { recursive: true });
      await page.screenshot({ path: join(OUTPUT, 'dashboard.png') });
      await page.screenshot({ path: join(OUTPUT, 'dashboard-full.png'), fullPage: true });
      // Readable at 1280x800: nothing wider than the window.
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1280);
      expect(problems).toEqual([]);
    }, 180_000);
  });
}
