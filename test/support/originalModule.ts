/**
 * A test double of the original Python module (ignaziopedone/qkd-module, master branch, commit
 * 6b7d3eb2c673202a347df3c2ce59850669278761, files QKDModule.py and fakeKE.py; the peer protocol is the
 * same since 221ed09). It replays the requests the original sends to its peer, in the original's order
 * and shapes, and answers the requests it receives as the original does. Paraphrase of the source, per
 * behaviour (comments name the function):
 *
 * - OPEN_CONNECT (route /api/v1/qkdm/actions/open_connect): one row per module. With no Key_stream_ID:
 *   refused if a row exists, else a new uuid4 row (destination, timeout, length, synchronized False).
 *   With an ID: the row must exist (the peer's /sync made it); destination, timeout and length are
 *   filled in and synchronized set True. Either way it then calls
 *   `GET http://<destination>/sync?key_handle=<ID>` and succeeds only on HTTP 200.
 * - /sync (GET): a known handle becomes synchronized; an unknown one is inserted (not synchronized).
 *   Answers "OK", 200 (503 on a database error).
 * - /start (POST, body repr(handle), eval'ed): sets newKey True for that handle. Answers "OK", 200.
 * - fakeKE /sendRegister (POST on the module's port + 1, query newKey=true&keyLen=N, body repr(list of
 *   N random bits)): "Error", 400 if a key is still held; else the key is held, "OK", 200.
 * - QKDExchange.run, once the row is synchronized; the device address is `'http://' +
 *   destination[:-4] + str(int(destination[-4:]) + 1)`:
 *     sender:   wait while currentKeyNo >= max_key_count; key = N random bits; POST the device's
 *               /sendRegister (verified = status 200); POST http://<destination>/start data=repr(handle)
 *               (answer ignored); if verified: store [keyNo, convertToBytes(key)], keyNo += 1, then
 *               wait until newKey is True and reset it.
 *     receiver: wait until newKey is True, reset it; take the held key (waiting up to the row's timeout,
 *               else verified = 4); POST http://<destination>/start data=repr(handle); if verified is
 *               True: store [keyNo, convertToBytes(key)], keyNo += 1.
 * - GET_KEY with index -1 pops the first stored [index, key].
 * The original's waits are busy loops over its database; here they poll every few milliseconds. Its
 * `time.sleep(random.randint(1,10))` at OPEN_CONNECT is left out (it only delays).
 */
import { randomInt, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parsePyLiteral } from '../../src/api/codec/pyLiteral.js';

export interface RecordedRequest {
  server: 'module' | 'device';
  method: string;
  path: string;
  query: Record<string, string>;
  body: string;
}

interface Row {
  handle: string;
  destination: string | null;
  timeout: number | null;
  length: number | null;
  synchronized: boolean;
  newKey: boolean;
  stop: boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The original's convertToBytes: bit 0 is the most significant bit of octet 0. */
export function convertToBytes(bits: readonly number[]): Buffer {
  const out = Buffer.alloc(bits.length / 8);
  bits.forEach((b, i) => {
    if (b) out[i >> 3]! |= 0x80 >> (i & 7);
  });
  return out;
}

/** Two free consecutive ports (the original needs its port + 1 for its fake device), the last four digits not 9999. */
export async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const a = await listenFree(0);
    const port = (a.address() as AddressInfo).port;
    const b = port % 10_000 !== 9_999 ? await listenFree(port + 1).catch(() => undefined) : undefined;
    await new Promise((r) => a.close(r));
    if (b) {
      await new Promise((r) => b.close(r));
      return port;
    }
  }
  throw new Error('no two consecutive free ports');
}

function listenFree(port: number): Promise<Server> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(port, '127.0.0.1', () => res(s));
  });
}

export class OriginalModule {
  readonly requests: RecordedRequest[] = [];
  /** Vault: [index, key] of this module, as stored by the exchange loop. */
  readonly keys: Array<[number, Buffer]> = [];
  /** Every key this module's exchange produced (never popped), by index. */
  readonly produced = new Map<number, Buffer>();
  private row: Row | undefined;
  private held: number[] | undefined;
  private keyNo = 0;
  private servers: Server[] = [];
  private running = false;
  port = 0;

  constructor(
    readonly sender: 0 | 1,
    readonly maxKeyCount = 20,
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get synchronized(): boolean {
    return this.row?.synchronized ?? false;
  }

  async start(port: number): Promise<void> {
    this.port = port;
    this.servers.push(await this.serve(port, 'module'), await this.serve(port + 1, 'device'));
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.row) this.row.stop = true;
    await Promise.all(this.servers.map((s) => new Promise((r) => { s.close(r); s.closeAllConnections(); })));
  }

  private serve(port: number, server: 'module' | 'device'): Promise<Server> {
    const s = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => this.handle(server, req, res, body));
    });
    return new Promise((res, rej) => {
      s.once('error', rej);
      s.listen(port, '127.0.0.1', () => res(s));
    });
  }

  private handle(server: 'module' | 'device', req: IncomingMessage, res: ServerResponse, body: string): void {
    const url = new URL(req.url ?? '/', 'http://x');
    this.requests.push({ server, method: req.method ?? '', path: url.pathname, query: Object.fromEntries(url.searchParams), body });
    const answer = (status: number, text: string): void => {
      res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' }).end(text);
    };
    if (server === 'module' && req.method === 'GET' && url.pathname === '/sync') {
      // synchronize(): known handle -> synchronized = True; unknown -> INSERT (synchronized False).
      const handle = String(url.searchParams.get('key_handle'));
      if (this.row?.handle === handle) this.row.synchronized = true;
      else this.row ??= { handle, destination: null, timeout: null, length: null, synchronized: false, newKey: false, stop: false };
      answer(200, 'OK');
      return;
    }
    if (server === 'module' && req.method === 'POST' && url.pathname === '/start') {
      // start(): key_handle = eval(request.data); UPDATE ... SET newKey = True WHERE handle = key_handle.
      const handle = parsePyLiteral(body);
      if (this.row && this.row.handle === handle) this.row.newKey = true;
      answer(200, 'OK');
      return;
    }
    if (server === 'device' && req.method === 'POST' && url.pathname === '/sendRegister') {
      // fakeKE getQuantumKey(): one key at a time.
      if (this.held) {
        answer(400, 'Error');
        return;
      }
      this.held = parsePyLiteral(body) as number[];
      answer(200, 'OK');
      return;
    }
    answer(404, 'Not Found');
  }

  /** OPEN_CONNECT as the original's route does it (without its random sleep). Resolves [Key_stream_ID, status]. */
  async openConnect(destination: string, qos: { timeout: number; length: number }, keyStreamId: string | null): Promise<[string | null, number]> {
    if (this.row && keyStreamId === null) return [keyStreamId, 2];
    if (keyStreamId !== null) {
      if (!this.row || this.row.handle !== keyStreamId) return [keyStreamId, 2];
      Object.assign(this.row, { destination, timeout: qos.timeout, length: qos.length, synchronized: true });
    } else {
      keyStreamId = randomUUID();
      this.row = { handle: keyStreamId, destination, timeout: qos.timeout, length: qos.length, synchronized: false, newKey: false, stop: false };
    }
    // requests.get('http://' + destination + '/sync?key_handle=' + str(Key_stream_ID))
    const x = await fetch(`http://${destination}/sync?key_handle=${keyStreamId}`);
    await x.text();
    if (x.status !== 200) return [keyStreamId, 2];
    return [keyStreamId, 0];
  }

  /** GET_KEY with index -1: the first stored key, or undefined. */
  getKey(): [number, Buffer] | undefined {
    return this.keys.shift();
  }

  /** Starts QKDExchange.run in the background. */
  runExchange(): void {
    this.running = true;
    void this.exchange().catch(() => undefined);
  }

  private async exchange(): Promise<void> {
    while (this.running && !this.row?.synchronized) await sleep(5);
    const row = this.row!;
    const destination = row.destination!;
    const deviceUrl = `http://${destination.slice(0, -4)}${Number(destination.slice(-4)) + 1}`;
    const start = (): Promise<Response> => fetch(`http://${destination}/start`, { method: 'POST', body: `'${row.handle}'` });
    while (this.running && !row.stop) {
      if (this.sender === 1) {
        while (this.running && this.keys.length >= this.maxKeyCount) await sleep(5);
        if (!this.running) return;
        const bits = Array.from({ length: row.length! }, () => randomInt(2));
        const sent = await fetch(`${deviceUrl}/sendRegister?newKey=true&keyLen=${row.length}`, { method: 'POST', body: `[${bits.join(', ')}]` });
        await sent.text();
        const verified = sent.status === 200;
        await (await start()).text();
        if (verified) {
          this.store(convertToBytes(bits));
          while (this.running && !row.newKey) await sleep(5);
          row.newKey = false;
        }
      } else {
        while (this.running && !row.newKey) await sleep(5);
        if (!this.running) return;
        row.newKey = false;
        const deadline = Date.now() + (row.timeout ?? 0);
        while (!this.held && Date.now() <= deadline) await sleep(5);
        const bits = this.held;
        this.held = undefined;
        await (await start()).text();
        if (bits) this.store(convertToBytes(bits));
      }
    }
  }

  private store(key: Buffer): void {
    this.keys.push([this.keyNo, key]);
    this.produced.set(this.keyNo, key);
    this.keyNo++;
  }
}
