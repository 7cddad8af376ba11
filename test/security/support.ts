/**
 * Shared pieces of the attacker tests: a pair of real module processes on the default configuration
 * (link credentials from this file's pair, embedded stores), streams opened as a key server does, and
 * the attacker's raw HTTP calls (a third party on the network: it knows the addresses and stream IDs,
 * not the link credentials).
 */
import { readFileSync } from 'node:fs';
import { parsePyLiteral, toPyLiteral, type PyValue } from '../../src/api/codec/pyLiteral.js';
import { freePort, getJson, hexOf, postPy, startModule, tempDir, WAIT, type ModuleSpec, type RunningModule } from '../support/processes.js';

export interface Pair {
  alice: RunningModule;
  bob: RunningModule;
}

export async function startPair(
  opts: { maxKeyCount?: number; env?: Record<string, string>; bobEnv?: Record<string, string>; credentials?: ModuleSpec['credentials'] } = {},
): Promise<Pair> {
  const [pa, pb] = [await freePort(), await freePort()];
  const common = { maxKeyCount: opts.maxKeyCount ?? 20, ...(opts.credentials ? { credentials: opts.credentials } : {}) };
  const alice = await startModule({ name: 'alice', sender: 1, port: pa, dataDir: tempDir('sec-alice'), ...common, env: opts.env ?? {} });
  const bob = await startModule({ name: 'bob', sender: 0, port: pb, dataDir: tempDir('sec-bob'), ...common, env: { ...opts.env, ...opts.bobEnv } }).catch(
    async (err: unknown) => {
      await alice.kill('SIGKILL'); // no module left behind when the pair cannot start
      throw err;
    },
  );
  return { alice, bob };
}

export async function openStream({ alice, bob }: Pair, length = 256, aliceDestination = bob.address): Promise<string> {
  const a = await postPy(alice.url, '/open_connect', [null, aliceDestination, { timeout: 5000, length }, null]);
  const [id, status] = a.value as [string, number];
  if (status !== 0) throw new Error(`open_connect at alice: ${JSON.stringify(a.value)}`);
  const b = await postPy(bob.url, '/open_connect', [null, alice.address, { timeout: 5000, length }, id]);
  if ((b.value as PyValue[])[1] !== 0) throw new Error(`open_connect at bob: ${JSON.stringify(b.value)}`);
  return id;
}

export interface Delivered {
  key: string | null;
  index: number;
  status: number;
}

export async function getKey(m: RunningModule, id: string, index = -1): Promise<Delivered> {
  // A Python-literal get_key answers at once (as the original); the tests wait for the exchange.
  const r = await postPy(m.url, '/get_key', [id, index, {}], WAIT());
  const [key, idx, status] = r.value as [PyValue, number, number];
  return { key: key === null ? null : hexOf(key), index: idx, status };
}

/** Takes `n` keys at both ends, one index at a time, and returns them side by side. */
export async function takeBoth(pair: Pair, id: string, n: number): Promise<Array<[Delivered, Delivered]>> {
  const out: Array<[Delivered, Delivered]> = [];
  for (let i = 0; i < n; i++) out.push(await Promise.all([getKey(pair.alice, id), getKey(pair.bob, id)]));
  return out;
}

export async function streamState(m: RunningModule, id: string): Promise<{ nextIndex: number; available: number; closed: boolean; halted: { reason: string } | null }> {
  return (await getJson(m.url, `/streams/${id}`)).body;
}

/** The attacker's JSON POST (no session: what anyone on the network can send). */
export async function attackerPost(m: RunningModule, path: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${m.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed };
}

/** The same message dressed as a sealed one with invented session headers (a forgery attempt). */
export async function attackerSealedPost(m: RunningModule, path: string, bytes: Buffer, session = 'AAAAAAAAAAAAAAAAAAAAAA', seq = 1): Promise<{ status: number; body: any }> {
  const res = await fetch(`${m.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/qkdm-sealed', 'qkdm-session': session, 'qkdm-seq': String(seq), 'qkdm-tag': Buffer.alloc(16, 7).toString('base64url') },
    body: bytes,
  });
  return { status: res.status, body: await res.json().catch(() => undefined) };
}

export const until = async (cond: () => Promise<boolean> | boolean, ms = 10_000, what = 'condition'): Promise<void> => {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`${what} not reached within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

/** CPU time (user + system, ms) the process has used, from /proc (Linux). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

/** An application's call with its bearer token (or none): Python-literal body, as the seed API's clients send. */
export async function appPy(
  m: RunningModule,
  path: string,
  value: PyValue | undefined,
  token?: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; value: PyValue; message: string | null }> {
  const res = await fetch(`${m.url}${path}`, { method: 'POST', body: value === undefined ? '' : toPyLiteral(value), headers: { ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) } });
  const text = await res.text();
  let parsed: PyValue = text;
  try {
    parsed = parsePyLiteral(text);
  } catch {
    /* a JSON error body (401/403) */
  }
  return { status: res.status, value: parsed, message: res.headers.get('x-qkdm-message') };
}

/** An ETSI 004 call (JSON) with a bearer token. */
export async function app004(m: RunningModule, route: string, body: unknown, token?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${m.url}/etsi004/v2.1.1/${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

export const hexOfValue = (v: unknown): string => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : `not bytes: ${JSON.stringify(v)}`);
