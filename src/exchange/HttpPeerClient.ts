/**
 * The peer channel over HTTP(S) with Node's fetch. Every call has a deadline; a transport
 * failure or timeout is PeerError('unreachable'), an error answer is PeerError('refused') with
 * the peer's error code. Bodies are JSON (never Python literals: that format is for legacy
 * applications only).
 */
import type { ErrorCode } from '../core/errors.js';
import {
  PeerError,
  type CommitMessage,
  type CommitReply,
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

  async commit(peerUrl: string, msg: CommitMessage, timeoutMs: number): Promise<CommitReply> {
    const body = (await this.call(peerUrl, '/peer/commit', 'POST', msg, timeoutMs)) as Partial<CommitReply>;
    if (typeof body.available !== 'number' || typeof body.nextIndex !== 'number') throw new PeerError('protocol', 'commit reply malformed');
    return body as CommitReply;
  }

  post(peerUrl: string, path: string, body: unknown, timeoutMs: number): Promise<unknown> {
    if (!path.startsWith('/')) throw new Error('peer path must start with /');
    return this.call(peerUrl, path, 'POST', body, timeoutMs);
  }

  private async call(peerUrl: string, path: string, method: 'GET' | 'POST', body: unknown, timeoutMs: number): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(`${peerUrl}${path}`, {
        method,
        headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), accept: 'application/json', ...this.options.headers },
        body: body !== undefined ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(Math.max(1, timeoutMs)),
        // A peer never redirects: a redirect would send a round (which may carry keys) elsewhere.
        redirect: 'error',
        ...(this.options.fetchInit?.() ?? {}),
      } as RequestInit);
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.message);
      throw new PeerError('unreachable', `${path.split('?')[0]}: ${why}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readCapped(res, MAX_PEER_ANSWER_BYTES));
    } catch {
      throw new PeerError(res.ok ? 'protocol' : 'refused', `${path.split('?')[0]}: HTTP ${res.status} with a non-JSON body`);
    }
    if (!res.ok) {
      const err = parsed as { code?: ErrorCode; message?: string };
      throw new PeerError('refused', `${typeof err.message === 'string' ? err.message : `HTTP ${res.status}`}`, err.code);
    }
    return parsed;
  }
}

/** Largest peer answer read (a BB84 frame reply or a parity batch is far smaller). */
export const MAX_PEER_ANSWER_BYTES = 64 * 1024 * 1024;

/** Reads a body as text, refusing one larger than `limit` bytes (a hostile peer cannot exhaust memory). */
async function readCapped(res: Response, limit: number): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > limit) throw new Error('answer too large');
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    total += chunk.byteLength;
    if (total > limit) throw new Error('answer too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
