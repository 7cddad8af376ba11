/**
 * The peer channel over HTTP(S) with Node's fetch. Every call has a deadline; a transport
 * failure or timeout is PeerError('unreachable'), an error answer is PeerError('refused') with
 * the peer's error code. Bodies are JSON (never Python literals: that format is for legacy
 * applications only).
 */
import { randomBytes } from 'node:crypto';
import type { ErrorCode } from '../core/errors.js';
import { HELLO_PATH } from './auth/handshake.js';
import { TAG_HEADER, type PeerAuthenticator } from './auth/peerSessions.js';
import {
  PeerError,
  type ConfirmMessage,
  type ConfirmReply,
  type CounterMessage,
  type CounterReply,
  type PeerClient,
  type RoundMessage,
  type RoundReply,
  type StartNotice,
  type StreamNotice,
  type SyncReply,
  type SyncRequest,
} from './peerProtocol.js';

export interface HttpPeerClientOptions {
  /** Extra fetch options per call (e.g. an undici dispatcher carrying mutual-TLS credentials). */
  fetchInit?: () => Record<string, unknown>;
  /** Headers added to every call (e.g. a peer bearer token). */
  headers?: Record<string, string>;
  /** Link credentials: every call is sealed in an authenticated session. Absent: insecure mode (plain JSON). */
  auth?: PeerAuthenticator;
}

export class HttpPeerClient implements PeerClient {
  constructor(private readonly options: HttpPeerClientOptions = {}) {}

  async sync(peerUrl: string, req: SyncRequest, timeoutMs: number): Promise<SyncReply> {
    const query = new URLSearchParams({
      key_handle: req.keyStreamId,
      source: req.source,
      destination: req.destination,
      length: String(req.keyLengthBits),
      timeout: String(req.timeoutMs),
      sender: String(req.sender),
      sim: req.sim,
      peer: req.peerAddress,
    });
    const body = await this.call(peerUrl, `/sync?${query.toString()}`, 'GET', undefined, timeoutMs);
    return { status: 0, joined: Boolean((body as { joined?: unknown }).joined) };
  }

  async open(peerUrl: string, notice: StreamNotice, timeoutMs: number): Promise<void> {
    await this.call(peerUrl, '/peer/open', 'POST', notice, timeoutMs);
  }

  async close(peerUrl: string, notice: StreamNotice, timeoutMs: number): Promise<void> {
    await this.call(peerUrl, '/peer/close', 'POST', notice, timeoutMs);
  }

  async start(peerUrl: string, notice: StartNotice, timeoutMs: number): Promise<void> {
    await this.call(peerUrl, '/start', 'POST', { Key_stream_ID: notice.keyStreamId, available: notice.available }, timeoutMs);
  }

  async round(peerUrl: string, msg: RoundMessage, timeoutMs: number): Promise<RoundReply> {
    const body = (await this.call(peerUrl, '/peer/round', 'POST', msg, timeoutMs)) as Partial<RoundReply>;
    if (typeof body.available !== 'number') throw new PeerError('protocol', 'round reply lacks available');
    return body as RoundReply;
  }

  async confirm(peerUrl: string, msg: ConfirmMessage, timeoutMs: number): Promise<ConfirmReply> {
    const body = (await this.call(peerUrl, '/peer/confirm', 'POST', msg, timeoutMs)) as Partial<ConfirmReply>;
    if (typeof body.match !== 'boolean' || typeof body.available !== 'number' || typeof body.nextIndex !== 'number') throw new PeerError('protocol', 'confirm reply malformed');
    return body as ConfirmReply;
  }

  async counter(peerUrl: string, msg: CounterMessage, timeoutMs: number): Promise<CounterReply> {
    const body = (await this.call(peerUrl, '/peer/counter', 'POST', msg, timeoutMs)) as Partial<CounterReply>;
    if (typeof body.available !== 'number' || typeof body.nextIndex !== 'number' || typeof body.maxKeyCount !== 'number') throw new PeerError('protocol', 'counter reply malformed');
    return body as CounterReply;
  }

  post(peerUrl: string, path: string, body: unknown, timeoutMs: number): Promise<unknown> {
    if (!path.startsWith('/')) throw new Error('peer path must start with /');
    return this.call(peerUrl, path, 'POST', body, timeoutMs);
  }

  /**
   * One call. When the peer answers that it does not know the session (it restarted), the call is sent
   * once more in a new session with the same request ID: that answer cannot be authenticated, and an
   * attacker on the path could forge it after the peer ran the call, but the peer runs a request ID at
   * most once (PEER_DUPLICATE), so the call never runs twice.
   */
  private async call(peerUrl: string, path: string, method: 'GET' | 'POST', body: unknown, timeoutMs: number): Promise<unknown> {
    const route = path.split('?')[0]!;
    const json = body !== undefined ? Buffer.from(JSON.stringify(body), 'utf8') : undefined;
    const auth = this.options.auth;
    if (!auth) {
      const res = await this.send(peerUrl, path, method, json !== undefined ? { 'content-type': 'application/json' } : {}, json, timeoutMs);
      return interpret(route, res.status, res.body);
    }
    const postHello = async (hello: unknown): Promise<unknown> => {
      const res = await this.send(peerUrl, HELLO_PATH, 'POST', { 'content-type': 'application/json' }, Buffer.from(JSON.stringify(hello)), timeoutMs);
      if (res.status !== 200) {
        const answer = parseJson(res.body) as { message?: unknown } | undefined;
        const why = typeof answer?.message === 'string' ? answer.message.slice(0, 300) : `HTTP ${res.status}`;
        throw new PeerError('unreachable', `handshake refused by the peer (HTTP ${res.status}): ${why}`, undefined, 'unauthenticated');
      }
      const answer = parseJson(res.body);
      if (answer === undefined) throw new PeerError('unreachable', 'handshake: the peer answered with a non-JSON body', undefined, 'unauthenticated');
      return answer;
    };
    const requestId = randomBytes(16).toString('base64url');
    for (let attempt = 0; ; attempt++) {
      let sealed;
      try {
        sealed = await auth.sealRequest(peerUrl, method, path, json, postHello, requestId);
      } catch (err) {
        if (err instanceof PeerError) throw err;
        // A handshake answer that does not verify: not the peer (or wrong credentials at one end).
        throw new PeerError('unreachable', `handshake failed: ${(err as Error).message}`, undefined, 'unauthenticated');
      }
      const res = await this.send(peerUrl, path, method, sealed.headers, sealed.body, timeoutMs);
      const plaintext = auth.openAnswer(sealed.session, sealed.seq, res.status, res.tag, res.body);
      if (plaintext) return interpret(route, res.status, plaintext);
      // Not authenticated by the session: never acted on (it may come from anyone on the path).
      const answer = parseJson(res.body) as { code?: unknown; message?: unknown } | undefined;
      if (answer?.code === 'PEER_SESSION_UNKNOWN' && attempt === 0) {
        auth.dropSession(peerUrl, sealed.session); // the peer restarted: open a new session and send again
        continue;
      }
      const code = typeof answer?.code === 'string' ? ` ${answer.code.slice(0, 40)}` : '';
      throw new PeerError('unreachable', `${route}: the peer's answer is not authenticated (HTTP ${res.status}${code})`, undefined, 'unauthenticated');
    }
  }

  private async send(
    peerUrl: string,
    path: string,
    method: 'GET' | 'POST',
    headers: Record<string, string>,
    body: Buffer | undefined,
    timeoutMs: number,
  ): Promise<{ status: number; tag: string | null; body: Buffer }> {
    const route = path.split('?')[0]!;
    try {
      const res = await fetch(`${peerUrl}${path}`, {
        method,
        headers: { accept: 'application/json', ...headers, ...this.options.headers },
        body,
        signal: AbortSignal.timeout(Math.max(1, timeoutMs)),
        // A peer never redirects: a redirect would send a round (which may carry keys) elsewhere.
        redirect: 'error',
        ...(this.options.fetchInit?.() ?? {}),
      } as RequestInit);
      return { status: res.status, tag: res.headers.get(TAG_HEADER), body: await readCapped(res, MAX_PEER_ANSWER_BYTES) };
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : e.message === 'answer too large' ? 'answer too large' : (e.cause?.code ?? e.cause?.message ?? e.message);
      throw new PeerError('unreachable', `${route}: ${why}`, undefined, e.name === 'TimeoutError' ? 'timeout' : undefined);
    }
  }
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** The peer's (authenticated, or insecure-mode) answer: the value, or PeerError('refused') with its code. */
function interpret(route: string, status: number, body: Buffer): unknown {
  const parsed = parseJson(body);
  if (parsed === undefined) throw new PeerError(status < 400 ? 'protocol' : 'refused', `${route}: HTTP ${status} with a non-JSON body`);
  if (status >= 400) {
    const err = parsed as { code?: ErrorCode; message?: string };
    throw new PeerError('refused', `${typeof err.message === 'string' ? err.message : `HTTP ${status}`}`, err.code);
  }
  return parsed;
}

/**
 * Largest peer answer read: a peer answer is at most a BB84 frame reply (one bit per detection, under
 * 1 MiB with the detection cap) or a parity batch, so 2 MiB leaves room without letting a peer fill memory.
 */
export const MAX_PEER_ANSWER_BYTES = 2 * 1024 * 1024;

/** Reads a body as text, refusing one larger than `limit` bytes (a hostile peer cannot exhaust memory). */
async function readCapped(res: Response, limit: number): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > limit) throw new Error('answer too large');
  if (!res.body) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    total += chunk.byteLength;
    if (total > limit) throw new Error('answer too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
