/**
 * Hostile requests against a module's two listeners (issue 13 point 15), shared by bench/hostile.ts
 * and test/security/hostile-requests.test.ts: a catalogue of request kinds (what an attacker who can
 * reach the ports sends, without credentials) and a client that records, for every request, whether
 * it got an HTTP answer, its status, and whether the answer repeats the request's content.
 *
 * Every kind plants CANARY in the parts of its request an error message could repeat (paths, query
 * strings, field names and values, header values, session IDs): an answer containing it echoes input.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import { gzipSync } from 'node:zlib';
import { credentialsEnv, type CredentialFiles } from '../../scripts/lib/linkCredentials.js';

/** A marker that appears in every hostile request and must never appear in an answer. */
export const CANARY = 'zqxCANARYxqz';

export type Listener = 'app' | 'peer';

export interface HostileRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

export interface HostileKind {
  name: string;
  /** Which listener it is aimed at. */
  listener: Listener;
  /**
   * Answers the kind may get besides 4xx: the ETSI 004 binding answers HTTP 200 with its status 4
   * (NO_QKD_CONNECTION_AVAILABLE) for an unknown Key_stream_ID, as the standard has it.
   */
  alsoAllowed?: readonly number[];
  make(i: number): HostileRequest;
}

/** `name[a][b]...` nested `depth` levels deep (what the qs "extended" parser would turn into objects). */
export function nestedKey(name: string, depth: number): string {
  let k = name;
  for (let d = 0; d < depth; d++) k += `[${CANARY}${d}]`;
  return k;
}

const deepQuery = (name: string, depth = 32): string => `${encodeURI(nestedKey(name, depth))}=${CANARY}`;
const json = { 'content-type': 'application/json' } as const;
const sealedHeaders = (session: string, seq: string, tag: string): Record<string, string> => ({
  'content-type': 'application/qkdm-sealed',
  'qkdm-session': session,
  'qkdm-seq': seq,
  'qkdm-tag': tag,
});
const pick = <T>(list: readonly T[], i: number): T => list[i % list.length]!;

const INVALID_PY = [
  `['${CANARY}', `,
  `[${CANARY}]`,
  `__import__('os').system('${CANARY}')`,
  `{'${CANARY}': 1`,
  `b'\\x${CANARY}'`,
  `['${CANARY}\\N{${CANARY}}', -1, {}]`,
  `[1e999999999, '${CANARY}']`,
  `[${'9'.repeat(5000)}, '${CANARY}']`,
  `[None, None, None, None, None, '${CANARY}']`,
  `(lambda: '${CANARY}')()`,
  `['${CANARY}'.__class__]`,
  `"""${CANARY}`,
];
const INVALID_JSON = [`{"${CANARY}": `, `[${CANARY}]`, `{"Key_stream_ID": "${CANARY}", }`, `{'${CANARY}': 1}`, `\u0000${CANARY}`, `[1, 2, 3${CANARY}`];

/** A JSON body nested `depth` levels, with the canary at the bottom. */
const deepJson = (depth: number): string => `${'['.repeat(depth)}"${CANARY}"${']'.repeat(depth)}`;
const deepJsonObject = (depth: number): string => `${`{"${CANARY}":`.repeat(depth)}1${'}'.repeat(depth)}`;
const deepPy = (depth: number): string => `${'['.repeat(depth)}'${CANARY}'${']'.repeat(depth)}`;

const GZIP_BOMB = gzipSync(Buffer.alloc(8 * 1024 * 1024, 0x20)); // 8 MiB of spaces in ~8 KiB
const OVERSIZE = 1_048_576 + 4096;

/** Kinds aimed at the application listener (module.host:module.port). */
export const APP_KINDS: readonly HostileKind[] = [
  { name: 'app:deep-query open_connect', listener: 'app', make: () => ({ method: 'POST', path: `/open_connect?${deepQuery('source')}`, body: `[None, '${CANARY}', {'timeout': 1, 'length': 7}, None]` }) },
  { name: 'app:deep-query get_key', listener: 'app', make: () => ({ method: 'POST', path: `/get_key?${deepQuery('Key_stream_ID')}&${deepQuery('index', 16)}`, body: `['${CANARY}', -1, {}]` }) },
  { name: 'app:deep-query available_keys', listener: 'app', make: () => ({ method: 'GET', path: `/available_keys?${deepQuery('handle')}` }) },
  { name: 'app:repeated query handle', listener: 'app', make: () => ({ method: 'GET', path: `/available_keys?${Array.from({ length: 200 }, () => `handle=${CANARY}`).join('&')}` }) },
  {
    name: 'app:deep-query etsi004 get_key',
    listener: 'app',
    make: () => ({ method: 'POST', path: `/etsi004/v2.1.1/get_key?${deepQuery('Key_stream_ID')}`, headers: json, body: `{"Key_stream_ID": "${CANARY}"}` }),
  },
  { name: 'app:deep-query etsi014 enc_keys', listener: 'app', make: () => ({ method: 'GET', path: `/api/v1/keys/${CANARY}/enc_keys?${deepQuery('number')}&${deepQuery('size')}` }) },
  { name: 'app:deep-query etsi014 dec_keys', listener: 'app', make: () => ({ method: 'GET', path: `/api/v1/keys/${CANARY}/dec_keys?${deepQuery('key_ID')}` }) },
  { name: 'app:invalid python literal', listener: 'app', make: (i) => ({ method: 'POST', path: pick(['/open_connect', '/get_key', '/close', '/available_keys', '/api/v1/qkdm/actions/get_key'], i), body: pick(INVALID_PY, i) }) },
  { name: 'app:deep python literal', listener: 'app', make: (i) => ({ method: 'POST', path: pick(['/get_key', '/open_connect', '/close'], i), body: deepPy(pick([33, 200, 20_000], i)) }) },
  { name: 'app:invalid JSON', listener: 'app', make: (i) => ({ method: 'POST', path: pick(['/open_connect', '/get_key', '/etsi004/v2.1.1/open_connect', '/etsi004/v2.1.1/close'], i), headers: json, body: pick(INVALID_JSON, i) }) },
  {
    name: 'app:deep JSON',
    listener: 'app',
    make: (i) => ({ method: 'POST', path: pick(['/open_connect', '/get_key', '/etsi004/v2.1.1/get_key', '/etsi004/v2.1.1/open_connect'], i), headers: json, body: i % 2 ? deepJson(pick([64, 5000, 100_000], i)) : deepJsonObject(pick([64, 5000, 50_000], i)) }),
  },
  { name: 'app:huge JSON', listener: 'app', make: (i) => ({ method: 'POST', path: pick(['/open_connect', '/etsi004/v2.1.1/get_key'], i), headers: json, body: `{"source": "${CANARY}${'A'.repeat(1_000_000)}"` }) },
  { name: 'app:oversized body', listener: 'app', make: (i) => ({ method: 'POST', path: pick(['/get_key', '/etsi004/v2.1.1/get_key', '/api/v1/keys/sae/enc_keys'], i), headers: i % 2 ? json : {}, body: Buffer.alloc(OVERSIZE, 0x41) }) },
  { name: 'app:gzip bomb', listener: 'app', make: (i) => ({ method: 'POST', path: pick(['/get_key', '/open_connect'], i), headers: { 'content-encoding': 'gzip' }, body: GZIP_BOMB }) },
  { name: 'app:bogus charset and encoding', listener: 'app', make: (i) => ({ method: 'POST', path: '/get_key', headers: i % 2 ? { 'content-type': `text/plain; charset=${CANARY}` } : { 'content-encoding': CANARY }, body: `['${CANARY}', -1, {}]` }) },
  { name: 'app:huge header', listener: 'app', make: (i) => ({ method: 'POST', path: '/get_key', headers: { [`x-${CANARY}`]: CANARY + 'h'.repeat(pick([8_000, 15_000, 40_000, 200_000], i)) }, body: `['${randomUUID()}', -1, {}]` }) },
  { name: 'app:many headers', listener: 'app', make: () => ({ method: 'GET', path: '/available_keys', headers: Object.fromEntries(Array.from({ length: 600 }, (_, n) => [`x-${n}-${CANARY}`, CANARY])) }) },
  { name: 'app:huge bearer token', listener: 'app', make: () => ({ method: 'POST', path: '/get_key', headers: { authorization: `Bearer ${CANARY}${'t'.repeat(12_000)}` }, body: `['${randomUUID()}', -1, {}]` }) },
  { name: 'app:unknown route', listener: 'app', make: (i) => ({ method: pick(['GET', 'POST', 'PUT'], i), path: `/${CANARY}/${randomBytes(6).toString('hex')}?${CANARY}=1` }) },
  { name: 'app:bad percent-encoding', listener: 'app', make: (i) => ({ method: 'GET', path: pick([`/streams/${CANARY}%E0%A4%A`, `/streams/%FF${CANARY}/stats`, `/api/v1/keys/%E0${CANARY}/status`, `/${CANARY}%`], i) }) },
  { name: 'app:wrong method', listener: 'app', make: (i) => ({ method: pick(['DELETE', 'PUT', 'PATCH', 'GET'], i), path: pick(['/open_connect', '/get_key', '/close', '/etsi004/v2.1.1/get_key', '/api/v1/keys/sae/status'], i + 1) }) },
  { name: 'app:peer route on app listener', listener: 'app', make: (i) => ({ method: pick(['GET', 'POST'], i), path: pick([`/sync?key_handle=${CANARY}`, '/peer/hello', '/peer/round', '/start'], i) }) },
  { name: 'app:random Key_stream_ID get_key', listener: 'app', make: (i) => ({ method: 'POST', path: pick(['/get_key', '/api/v1/qkdm/actions/get_key'], i), body: `['${randomUUID()}', ${i % 5}, {}]` }) },
  { name: 'app:random Key_stream_ID close', listener: 'app', make: (i) => ({ method: 'POST', path: '/close', ...(i % 2 ? { headers: json, body: `{"Key_stream_ID": "${randomUUID()}"}` } : { body: `['${randomUUID()}']` }) }) },
  {
    name: 'app:random Key_stream_ID etsi004',
    listener: 'app',
    alsoAllowed: [200],
    make: (i) => ({ method: 'POST', path: pick(['/etsi004/v2.1.1/get_key', '/etsi004/v2.1.1/close'], i), headers: json, body: JSON.stringify({ Key_stream_ID: randomUUID() }) }),
  },
  { name: 'app:random stream and SAE IDs', listener: 'app', make: (i) => ({ method: 'GET', path: pick([`/streams/${randomUUID()}`, `/streams/${randomUUID()}/stats`, `/api/v1/keys/${CANARY}${randomBytes(4).toString('hex')}/status`, `/available_keys?handle=${randomUUID()}`], i) }) },
  {
    name: 'app:bad field values',
    listener: 'app',
    make: (i) => ({
      method: 'POST',
      path: pick(['/open_connect', '/etsi004/v2.1.1/open_connect', '/api/v1/keys/sae/enc_keys'], i),
      headers: json,
      body: JSON.stringify(pick([{ source: CANARY, destination: `${CANARY}:99999`, qos: { timeout: CANARY, length: 7 } }, { source: CANARY, destination: `qkd://${CANARY}@[::1`, QoS: { [CANARY]: 1 } }, { number: CANARY, size: -1, [CANARY]: true }], i)),
    }),
  },
];

/** Kinds aimed at the peer listener (module.peer_port). */
export const PEER_KINDS: readonly HostileKind[] = [
  { name: 'peer:deep-query sync', listener: 'peer', make: () => ({ method: 'GET', path: `/sync?key_handle=${randomUUID()}&${deepQuery('source')}&length=256&sender=1&sim=fake&peer=127.0.0.1:1` }) },
  {
    name: 'peer:deep-query sync, bogus session',
    listener: 'peer',
    make: (i) => ({ method: 'GET', path: `/sync?key_handle=${randomUUID()}&${deepQuery('source')}&${deepQuery('destination', 31)}`, headers: sealedHeaders(randomBytes(16).toString('base64url'), String(i + 1), randomBytes(16).toString('base64url')) }),
  },
  {
    name: 'peer:bogus session, sealed body',
    listener: 'peer',
    make: (i) => ({ method: 'POST', path: pick(['/peer/round', '/peer/confirm', '/peer/open', '/start', '/peer/etsi014/keys'], i), headers: sealedHeaders(randomBytes(16).toString('base64url'), String(1 + (i % 4096)), randomBytes(16).toString('base64url')), body: randomBytes(64 + (i % 2048)) }),
  },
  {
    name: 'peer:malformed session headers',
    listener: 'peer',
    make: (i) => ({
      method: 'POST',
      path: '/peer/round',
      headers: { ...sealedHeaders(pick([CANARY, `${CANARY}${'s'.repeat(8000)}`, '', ' '], i), pick([CANARY, '-1', '0', '99999999999999999999999', '1e9'], i), pick([CANARY, '!!!', 'A'.repeat(4000)], i)), 'qkdm-request': `${CANARY}${randomBytes(8).toString('hex')}` },
      body: randomBytes(32),
    }),
  },
  { name: 'peer:unsealed message', listener: 'peer', make: (i) => ({ method: 'POST', path: pick(['/peer/round', '/peer/close', '/start', '/peer/counter'], i), headers: json, body: JSON.stringify({ keyStreamId: randomUUID(), [CANARY]: CANARY }) }) },
  {
    name: 'peer:hello garbage',
    listener: 'peer',
    make: (i) => ({
      method: 'POST',
      path: '/peer/hello',
      headers: i % 3 === 2 ? { 'content-type': 'application/qkdm-sealed' } : json,
      body: pick(
        [
          `{"${CANARY}": `,
          JSON.stringify({ v: 1, link: CANARY, from: CANARY, to: CANARY, time: 0, nonce: CANARY, kem: CANARY, signature: CANARY, [CANARY]: 1 }),
          JSON.stringify({ [CANARY]: CANARY }),
          JSON.stringify({ v: 1, link: `${CANARY}x`, from: '0'.repeat(32), to: '0'.repeat(32), time: Date.now(), nonce: randomBytes(32).toString('base64'), kem: randomBytes(1184).toString('base64'), signature: randomBytes(17_088).toString('base64') }),
          deepJson(10_000),
          randomBytes(512).toString('latin1'),
        ],
        i,
      ),
    }),
  },
  { name: 'peer:hello oversized', listener: 'peer', make: () => ({ method: 'POST', path: '/peer/hello', headers: json, body: Buffer.alloc(OVERSIZE, 0x20) }) },
  { name: 'peer:huge header', listener: 'peer', make: (i) => ({ method: 'POST', path: '/peer/round', headers: { ...sealedHeaders(randomBytes(16).toString('base64url'), '1', 'x'), [`x-${CANARY}`]: CANARY + 'h'.repeat(pick([15_000, 40_000], i)) }, body: randomBytes(16) }) },
  { name: 'peer:unknown route', listener: 'peer', make: (i) => ({ method: pick(['GET', 'POST'], i), path: pick([`/peer/${CANARY}`, `/${CANARY}`, `/sync/${CANARY}`, `/peer/hello/${CANARY}`], i) }) },
  { name: 'peer:wrong method', listener: 'peer', make: (i) => ({ method: pick(['GET', 'PUT', 'DELETE', 'PATCH'], i), path: pick(['/peer/hello', '/peer/round', '/sync', '/start'], i + 1) }) },
  { name: 'peer:app route on peer listener', listener: 'peer', make: (i) => ({ method: 'POST', path: pick(['/get_key', '/open_connect', '/etsi004/v2.1.1/get_key'], i), body: `['${CANARY}', -1, {}]` }) },
  { name: 'peer:bad percent-encoding', listener: 'peer', make: (i) => ({ method: 'GET', path: pick([`/sync?key_handle=%E0%A4%A${CANARY}`, `/peer/%FF${CANARY}`, `/sync?${CANARY}%`], i) }) },
];

export const ALL_KINDS: readonly HostileKind[] = [...APP_KINDS, ...PEER_KINDS];

export interface Outcome {
  kind: string;
  /** HTTP status, or undefined when no answer came (a reset, a hang-up, a time-out). */
  status?: number;
  error?: string;
  /** The answer contains CANARY. */
  echoed: boolean;
  /** Content-Type of the answer. */
  contentType?: string;
  /** First 200 characters of the answer's body. */
  bodyHead: string;
  bodyLength: number;
}

/** One hostile request over `agent`; resolves its outcome (never rejects). */
export function sendHostile(agent: Agent, port: number, kind: HostileKind, i: number, timeoutMs = 30_000): Promise<Outcome> {
  const r = kind.make(i);
  const body = r.body === undefined ? undefined : Buffer.isBuffer(r.body) ? r.body : Buffer.from(r.body, 'utf8');
  return new Promise<Outcome>((resolve) => {
    let settled = false;
    let answered: Outcome | undefined;
    const finish = (o: Outcome): void => {
      if (settled) return;
      settled = true;
      resolve(o);
    };
    let req;
    try {
      req = request({
        host: '127.0.0.1',
        port,
        method: r.method,
        path: r.path,
        agent,
        headers: { ...(body !== undefined ? { 'content-length': String(body.length) } : {}), ...r.headers },
        timeout: timeoutMs,
        insecureHTTPParser: false,
      });
    } catch (err) {
      finish({ kind: kind.name, error: `client refused to send: ${(err as Error).message}`, echoed: false, bodyHead: '', bodyLength: 0 });
      return;
    }
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let length = 0;
      res.on('data', (c: Buffer) => {
        length += c.length;
        if (length <= 256 * 1024) chunks.push(c);
      });
      const done = (): void => {
        const text = Buffer.concat(chunks).toString('utf8');
        answered = { kind: kind.name, status: res.statusCode ?? 0, echoed: text.includes(CANARY) || JSON.stringify(res.headers).includes(CANARY), contentType: res.headers['content-type'], bodyHead: text.slice(0, 200), bodyLength: length };
        finish(answered);
      };
      res.on('end', done);
      // The server may close the connection right after its answer (e.g. 431): the status line and
      // headers arrived, which is an answer.
      res.on('error', done);
      res.on('aborted', done);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      // An error after the answer arrived (the server hung up while we were still sending) is not a reset.
      if (answered) return;
      // Give a response already in the socket's buffer a moment to be parsed.
      setTimeout(() => finish(answered ?? { kind: kind.name, error: err.code ?? err.message, echoed: false, bodyHead: '', bodyLength: 0 }), 50);
    });
    req.end(body);
  });
}

export interface Tally {
  requests: number;
  byStatus: Record<string, number>;
  /** Requests without any HTTP answer (resets, hang-ups, time-outs), by error. */
  noAnswer: Record<string, number>;
  echoed: number;
  server5xx: number;
  /** Answers with a status outside 4xx (and outside the kind's alsoAllowed). */
  unexpected: number;
  /**
   * Answers without a JSON or text body saying what is wrong (401 excepted: ETSI 014 answers it
   * without a body, as the standard has it).
   */
  emptyBodies: number;
  /** Per kind: statuses and failures. */
  byKind: Record<string, { requests: number; statuses: Record<string, number>; noAnswer: number; echoed: number; sample?: string }>;
  /** A few failing outcomes, for the report. */
  examples: Outcome[];
}

export function newTally(): Tally {
  return { requests: 0, byStatus: {}, noAnswer: {}, echoed: 0, server5xx: 0, unexpected: 0, emptyBodies: 0, byKind: {}, examples: [] };
}

export function record(t: Tally, kind: HostileKind, o: Outcome): void {
  t.requests++;
  const k = (t.byKind[kind.name] ??= { requests: 0, statuses: {}, noAnswer: 0, echoed: 0 });
  k.requests++;
  let bad = false;
  if (o.status === undefined) {
    const e = o.error ?? 'unknown';
    t.noAnswer[e] = (t.noAnswer[e] ?? 0) + 1;
    k.noAnswer++;
    bad = true;
  } else {
    t.byStatus[o.status] = (t.byStatus[o.status] ?? 0) + 1;
    k.statuses[o.status] = (k.statuses[o.status] ?? 0) + 1;
    if (o.status >= 500) t.server5xx++;
    if (!(o.status >= 400 && o.status < 500) && !(kind.alsoAllowed ?? []).includes(o.status)) {
      t.unexpected++;
      bad = true;
    }
    if (o.status !== 401 && (o.bodyLength === 0 || !/^(application\/json|text\/plain)/.test(o.contentType ?? ''))) {
      t.emptyBodies++;
      bad = true;
    }
    if (o.echoed) {
      t.echoed++;
      k.echoed++;
      bad = true;
    }
    k.sample ??= `${o.status} ${o.bodyHead.slice(0, 120)}`;
  }
  if (bad && t.examples.length < 20 && !t.examples.some((e) => e.kind === o.kind)) t.examples.push(o);
}

/**
 * Sends `total` hostile requests from `concurrency` clients, cycling through `kinds` and spreading
 * them over `targets` (ports by listener). Each client keeps its own keep-alive connection.
 */
export async function runHostile(opts: {
  total: number;
  concurrency: number;
  kinds: readonly HostileKind[];
  targets: ReadonlyArray<{ listener: Listener; port: number }>;
  onProgress?: (done: number) => void;
}): Promise<Tally> {
  const tally = newTally();
  let next = 0;
  const client = async (): Promise<void> => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (;;) {
        const i = next++;
        if (i >= opts.total) return;
        const kind = opts.kinds[i % opts.kinds.length]!;
        const ports = opts.targets.filter((t) => t.listener === kind.listener);
        const port = ports[Math.floor(i / opts.kinds.length) % ports.length]!.port;
        record(tally, kind, await sendHostile(agent, port, kind, Math.floor(i / opts.kinds.length)));
        opts.onProgress?.(tally.requests);
      }
    } finally {
      agent.destroy();
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, client));
  return tally;
}

/** Resident memory of a process in MiB (Linux, /proc/<pid>/status VmRSS). */
export async function rssMiB(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
  return Math.round((kb / 1024) * 10) / 10;
}

/**
 * The environment of one module of the pair the hostile requests are aimed at (bench and test alike):
 * applications and the peer listener on loopback, embedded stores in `dataDir`, ETSI 014 on.
 */
export function hostilePairEnv(name: string, sender: 0 | 1, port: number, peerPort: number, dataDir: string, link: CredentialFiles): Record<string, string> {
  return {
    QKDM_MODULE_HOST: '127.0.0.1',
    QKDM_MODULE_PORT: String(port),
    QKDM_MODULE_PEER_HOST: '127.0.0.1',
    QKDM_MODULE_PEER_PORT: String(peerPort),
    QKDM_MODULE_THIS_PUBLIC_IP: `127.0.0.1:${peerPort}`,
    QKDM_MODULE_SENDER: String(sender),
    QKDM_MODULE_DATA_DIR: dataDir,
    QKDM_MODULE_MAX_KEY_COUNT: '50',
    QKDM_MODULE_LOG_LEVEL: 'warn',
    QKDM_ETSI014_KME_ID: `kme-${name}`,
    ...credentialsEnv(link, sender),
  };
}
