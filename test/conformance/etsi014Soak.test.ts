/**
 * ETSI GS QKD 014 soak: two KMEs in one process (test/conformance/support.ts), three SAE pairs
 * (a1-b1, a2-b2, a3-b3; either SAE of a pair may be the master), six concurrent clients for 60 s.
 *
 * Each client loops: a random pair and direction, then either a valid Get key (random number and size,
 * POST or GET form) whose keys the slave SAE fetches at once at the other KME (keys must be identical),
 * or an invalid one (size > max_key_size, number × size > max_key_count, size not a multiple of 8,
 * number > max_key_per_request) that must be refused with 400 and never take a key. Meanwhile peer
 * notices fail in short windows: dropped (the slave KME never hears of the keys) or answered but the
 * answer lost (the slave KME stored the key IDs, the master KME answers 503).
 *
 * Afterwards, with no more faults: a plain enc_keys {"number":1} succeeds at both KMEs for every pair
 * (each side as master) within a few seconds, and, once the pair settles, the stored_key_count the
 * master SAE reads in Status agrees with the keys the slave KME holds for that direction.
 *
 * CONFORMANCE_SOAK_SECONDS (default 60) and CONFORMANCE_SOAK_FAULTS (default "drop,lose-reply") change
 * the run for debugging. Key material is never printed: failures name key IDs and counts only.
 */
import { describe, expect, it } from 'vitest';
import { etsi014ErrorSchema, etsi014KeyContainerSchema, etsi014StatusSchema, type Etsi014KeyContainer } from '../../src/api/etsi014Schemas.js';
import { ETSI014_MESSAGES } from '../../src/core/Etsi014Service.js';
import { SETTINGS, buildEtsi014Fixture, partsOf, type Etsi014Fixture, type Kme, type NoticeFault } from './support.js';

const SECONDS = Number(process.env.CONFORMANCE_SOAK_SECONDS ?? 60);
const FAULTS = (process.env.CONFORMANCE_SOAK_FAULTS ?? 'drop,lose-reply').split(',').filter((x): x is NoticeFault => x === 'drop' || x === 'lose-reply');
const CLIENTS = 6;
const PAIRS: Array<[string, string]> = [
  ['a1', 'b1'],
  ['a2', 'b2'],
  ['a3', 'b3'],
];
/** After the load: how long a plain request may take to succeed, and the pair to settle. */
const RECOVERY_MS = 10_000;
const SETTLE_MS = 10_000;

interface Direction {
  master: Kme;
  slave: Kme;
  masterSae: string;
  slaveSae: string;
  keyStreamId: string;
}

interface Answer {
  status: number;
  body: unknown;
}

async function call(url: string, init: { method: 'GET' | 'POST'; sae?: string; body?: unknown }): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (init.sae) headers['x-sae-id'] = init.sae;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url, { method: init.method, headers, ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}) });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function directions(f: Etsi014Fixture): Direction[] {
  return PAIRS.flatMap(([a, b]) => [
    { master: f.alice, slave: f.bob, masterSae: a, slaveSae: b, keyStreamId: f.alice.service.keyStreamIdFor(a, b)! },
    { master: f.bob, slave: f.alice, masterSae: b, slaveSae: a, keyStreamId: f.alice.service.keyStreamIdFor(b, a)! },
  ]);
}

const encKeys = (d: Direction, req: { number?: number; size?: number }, form: 'POST' | 'GET'): Promise<Answer> => {
  const base = `${d.master.url}/api/v1/keys/${d.slaveSae}/enc_keys`;
  if (form === 'POST') return call(base, { method: 'POST', sae: d.masterSae, body: req });
  const q = new URLSearchParams();
  if (req.number !== undefined) q.set('number', String(req.number));
  if (req.size !== undefined) q.set('size', String(req.size));
  return call(`${base}?${q}`, { method: 'GET', sae: d.masterSae });
};

/** dec_keys at the slave KME, POST with all IDs or one GET per ID; resolves the keys in request order. */
async function decKeys(d: Direction, keyIds: string[], form: 'POST' | 'GET'): Promise<{ ok: true; container: Etsi014KeyContainer } | { ok: false; status: number; body: unknown }> {
  const base = `${d.slave.url}/api/v1/keys/${d.masterSae}/dec_keys`;
  if (form === 'POST') {
    const res = await call(base, { method: 'POST', sae: d.slaveSae, body: { key_IDs: keyIds.map((key_ID) => ({ key_ID })) } });
    if (res.status !== 200) return { ok: false, status: res.status, body: res.body };
    return { ok: true, container: etsi014KeyContainerSchema.parse(res.body) };
  }
  const keys: Etsi014KeyContainer['keys'] = [];
  for (const id of keyIds) {
    const res = await call(`${base}?key_ID=${id}`, { method: 'GET', sae: d.slaveSae });
    if (res.status !== 200) return { ok: false, status: res.status, body: res.body };
    keys.push(...etsi014KeyContainerSchema.parse(res.body).keys);
  }
  return { ok: true, container: { keys } };
}

const storedKeyCount = async (d: Direction): Promise<number> => {
  const res = await call(`${d.master.url}/api/v1/keys/${d.slaveSae}/status`, { method: 'GET', sae: d.masterSae });
  return etsi014StatusSchema.parse(res.body).stored_key_count;
};
/** Committed, undelivered keys of the stream at one KME (operator route, loopback). */
const heldAt = async (k: Kme, keyStreamId: string): Promise<number> => {
  const res = await call(`${k.url}/streams/${keyStreamId}`, { method: 'GET' });
  expect(res.status, `GET /streams/${keyStreamId} at ${k.kmeId}`).toBe(200);
  return (res.body as { available: number }).available;
};

type Invalid = 'size>max_key_size' | 'number×size>max_key_count' | 'size%8' | 'number>max_key_per_request';
const INVALID: Record<Invalid, { req: () => { number?: number; size?: number }; message: RegExp }> = {
  'size>max_key_size': { req: () => ({ number: 1, size: SETTINGS.maxKeySize + 8 * (1 + Math.floor(Math.random() * 100)) }), message: /^size: must be between / },
  'number×size>max_key_count': { req: () => ({ number: pick([6, 8, 16]), size: pick([2048, 1792]) }), message: /^number × size: .*max_key_count/ },
  'size%8': { req: () => ({ number: 1, size: pick([100, 65, 255, 1001]) }), message: new RegExp(`^${ETSI014_MESSAGES.SIZE_NOT_MULTIPLE_OF_8}$`) },
  'number>max_key_per_request': { req: () => ({ number: SETTINGS.maxKeyPerRequest + 1 + Math.floor(Math.random() * 10), size: 64 }), message: /^number: must be an integer between 1 and / },
};

describe('014 soak: concurrent enc_keys/dec_keys with invalid requests and failing peer notices', () => {
  it(
    `014 soak: ${SECONDS} s, 3 SAE pairs both ways, ${CLIENTS} clients; afterwards a plain enc_keys succeeds everywhere and both KMEs agree on stored_key_count`,
    async () => {
      const f = await buildEtsi014Fixture(PAIRS);
      const dirs = directions(f);
      const problems: string[] = [];
      const problem = (text: string) => {
        if (problems.length < 50) problems.push(text);
      };
      const tally = { encOk: 0, decOk: 0, enc503: 0, invalid400: 0, faultWindows: 0, keys: 0 };
      const started = Date.now();
      const until = started + SECONDS * 1000;

      // Fault windows: one KME's peer notices fail for a few hundred ms, every 1-3 s.
      const faults = (async () => {
        if (FAULTS.length === 0) return;
        while (Date.now() < until) {
          await sleep(1000 + Math.random() * 2000);
          if (Date.now() >= until) break;
          const k = pick([f.alice, f.bob]);
          const mode = pick(FAULTS);
          k.fault = () => mode;
          tally.faultWindows++;
          await sleep(200 + Math.random() * 600);
          k.fault = () => 'none';
        }
      })();

      const client = async (n: number) => {
        while (Date.now() < until && problems.length < 50) {
          const d = pick(dirs);
          const where = `client ${n} ${d.masterSae}->${d.slaveSae} at ${d.master.kmeId}`;
          const form = Math.random() < 0.8 ? 'POST' : 'GET';
          if (Math.random() < 0.3) {
            const kind = pick(Object.keys(INVALID) as Invalid[]);
            const req = INVALID[kind].req();
            const res = await encKeys(d, req, form);
            const parsed = etsi014ErrorSchema.safeParse(res.body);
            if (res.status !== 400 || !parsed.success || !INVALID[kind].message.test(parsed.data.message)) {
              problem(`${where}: invalid request (${kind}, number ${req.number}, size ${req.size}) answered ${res.status} ${parsed.success ? parsed.data.message : 'without an Error body'}`);
            } else {
              tally.invalid400++;
            }
            continue;
          }
          const size = pick([64, 128, 256, 264, 512, 1024, 2048]);
          const number = 1 + Math.floor(Math.random() * Math.min(6, Math.floor(SETTINGS.maxKeyCount / partsOf(size))));
          const res = await encKeys(d, { number, size }, form);
          if (res.status === 503) {
            if (!etsi014ErrorSchema.safeParse(res.body).success) problem(`${where}: 503 without an Error body`);
            tally.enc503++;
            continue;
          }
          if (res.status !== 200) {
            problem(`${where}: valid enc_keys (number ${number}, size ${size}) answered ${res.status} ${JSON.stringify(res.body)}`);
            continue;
          }
          const enc = etsi014KeyContainerSchema.safeParse(res.body);
          if (!enc.success || enc.data.keys.length !== number || enc.data.keys.some((k) => Buffer.from(k.key, 'base64').length !== size / 8)) {
            problem(`${where}: enc_keys (number ${number}, size ${size}) answered a container of the wrong shape`);
            continue;
          }
          tally.encOk++;
          tally.keys += number;
          const keyIds = enc.data.keys.map((k) => k.key_ID);
          const dec = await decKeys(d, keyIds, Math.random() < 0.7 ? 'POST' : 'GET');
          if (!dec.ok) {
            problem(`${where}: dec_keys of key IDs ${keyIds.join(',')} answered ${dec.status} ${JSON.stringify(dec.body)}`);
            continue;
          }
          const same = dec.container.keys.length === number && dec.container.keys.every((k, i) => k.key_ID === keyIds[i] && k.key === enc.data.keys[i]!.key);
          if (!same) {
            problem(`${where}: dec_keys of key IDs ${keyIds.join(',')} returned other keys than enc_keys`);
            continue;
          }
          tally.decOk++;
        }
      };

      try {
        await Promise.all([faults, ...Array.from({ length: CLIENTS }, (_, n) => client(n))]);
        f.alice.fault = () => 'none';
        f.bob.fault = () => 'none';
        console.info(`etsi014 soak: ${JSON.stringify({ ...tally, seconds: Math.round((Date.now() - started) / 1000) })}`);

        expect(problems, 'problems during the load').toEqual([]);
        expect(tally.encOk, 'successful enc_keys').toBeGreaterThan(50);
        expect(tally.decOk, 'every successful enc_keys was matched at the slave KME').toBe(tally.encOk);
        expect(tally.invalid400, 'invalid requests refused').toBeGreaterThan(20);
        if (FAULTS.length > 0) expect(tally.enc503, 'enc_keys failed by the peer faults').toBeGreaterThan(0);

        // 1. A plain request succeeds for every pair, each side as master, within RECOVERY_MS.
        const recovered = await Promise.all(
          dirs.map(async (d) => {
            const deadline = Date.now() + RECOVERY_MS;
            let last: Answer | undefined;
            while (Date.now() < deadline) {
              last = await encKeys(d, { number: 1 }, 'POST');
              if (last.status === 200) {
                const enc = etsi014KeyContainerSchema.parse(last.body);
                const dec = await decKeys(d, [enc.keys[0]!.key_ID], 'POST');
                const same = dec.ok && dec.container.keys[0]?.key === enc.keys[0]!.key;
                return same ? 'ok' : `${d.masterSae}->${d.slaveSae}: dec_keys after the plain request failed or differed`;
              }
              await sleep(200);
            }
            return `${d.masterSae}->${d.slaveSae} at ${d.master.kmeId}: plain enc_keys {"number":1} still answers ${last?.status} ${JSON.stringify(last?.body)} after ${RECOVERY_MS} ms`;
          }),
        );
        expect(recovered.filter((r) => r !== 'ok'), 'plain enc_keys at both KMEs after the load').toEqual([]);

        // 2. Settled: the master's stored_key_count equals what each KME holds for that direction.
        const counts = async (d: Direction) => {
          const [stored, master, slave] = await Promise.all([storedKeyCount(d), heldAt(d.master, d.keyStreamId), heldAt(d.slave, d.keyStreamId)]);
          return { stored, masterHeld: Math.min(master, SETTINGS.maxKeyCount), slaveHeld: Math.min(slave, SETTINGS.maxKeyCount) };
        };
        const disagreeing = async (): Promise<string[]> => {
          const out: string[] = [];
          for (const d of dirs) {
            const c = await counts(d);
            if (c.stored !== c.masterHeld || c.stored !== c.slaveHeld) {
              out.push(`${d.masterSae}->${d.slaveSae}: status stored_key_count ${c.stored} at ${d.master.kmeId}, held ${c.masterHeld} at ${d.master.kmeId}, ${c.slaveHeld} at ${d.slave.kmeId}`);
            }
          }
          return out;
        };
        const deadline = Date.now() + SETTLE_MS;
        let last = await disagreeing();
        while (last.length > 0 && Date.now() < deadline) {
          await sleep(250);
          last = await disagreeing();
        }
        expect(last, 'stored_key_count agrees at both KMEs for every pair once settled').toEqual([]);
      } finally {
        await f.stop();
      }
    },
    90_000,
  );
});
