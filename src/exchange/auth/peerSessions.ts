/**
 * Sessions of the authenticated peer channel (docs/security.md, "Peer channel"): the client keeps one
 * session per peer address and opens it with a handshake on first use; the server keeps the sessions
 * peers opened with it. Every peer message after the handshake is sealed (AES-256-GCM) under the
 * session's keys and carries a sequence number the server accepts once.
 *
 * HTTP framing of a sealed message (both ways):
 *   qkdm-session: <session id>    qkdm-seq: <sequence number>    qkdm-tag: <GCM tag, base64url>
 *   qkdm-request: <call id, 16 random bytes base64url; the same when the call is re-sent>
 *   Content-Type: application/qkdm-sealed, body = ciphertext of the JSON message (none for GET)
 */
import { SignaturePool } from '../../crypto/signatures.js';
import { HandshakeResponder, initiateHandshake, type SessionKeys } from './handshake.js';
import type { LinkCredentials } from './linkCredentials.js';
import { answerAad, open, ReplayWindow, requestAad, seal, type Sealed } from './sessionCipher.js';

export const SEALED_CONTENT_TYPE = 'application/qkdm-sealed';
export const SESSION_HEADER = 'qkdm-session';
export const SEQ_HEADER = 'qkdm-seq';
export const TAG_HEADER = 'qkdm-tag';
/** Names one call across sessions: a call sent again in a new session keeps it, and runs at most once. */
export const REQUEST_HEADER = 'qkdm-request';
const REQUEST_ID = /^[A-Za-z0-9_-]{22}$/;

/** How long, and how many, executed request IDs the server remembers (a call is re-sent within seconds). */
export const EXECUTED_REQUEST_MEMORY_MS = 15 * 60_000;
export const EXECUTED_REQUEST_MEMORY_MAX = 200_000;

/** A client opens a new session after this long or this many messages (keys are not used forever). */
export const SESSION_MAX_AGE_MS = 12 * 3600_000;
export const SESSION_MAX_MESSAGES = 2 ** 32;
/** The server forgets a session unused this long, and keeps this many at most (least recently used go first). */
export const SERVER_SESSION_IDLE_MS = 24 * 3600_000;
export const SERVER_MAX_SESSIONS = 64;

/** Error codes of the authentication layer (answered unsealed: a client never changes state on them). */
export type PeerAuthCode = 'PEER_SESSION_UNKNOWN' | 'PEER_AUTH_FAILED' | 'PEER_AUTH_REQUIRED' | 'PEER_HANDSHAKE_REFUSED' | 'PEER_DUPLICATE';

interface ClientSession {
  keys: SessionKeys;
  createdAt: number;
  seq: number;
}

/** One module's credentials and signature worker, shared by its client and server sides. */
export class PeerAuthenticator {
  readonly pool: SignaturePool;
  readonly responder: HandshakeResponder;
  private readonly clientSessions = new Map<string, ClientSession>();
  private readonly handshakes = new Map<string, Promise<ClientSession>>();
  private readonly serverSessions = new Map<string, ServerSession>();
  /** Request IDs of calls received (server side), with when: a call re-sent in a new session is refused. */
  private readonly executed = new Map<string, number>();

  readonly credentials: LinkCredentials;

  constructor(credentials: LinkCredentials, pool?: SignaturePool) {
    // Its own copy of the secret key: close() zeroes it without touching the caller's.
    this.credentials = { ...credentials, secretKey: Uint8Array.from(credentials.secretKey) };
    this.pool = pool ?? SignaturePool.create(credentials.scheme, { workers: 1 });
    this.responder = new HandshakeResponder(this.credentials, this.pool);
  }

  // ------------------------------------------------------------------ client side

  /**
   * Seals a request to `peerUrl`, opening a session first when there is none (or it is old).
   * `postHello` sends the handshake (unsealed JSON) and resolves the peer's JSON answer.
   */
  async sealRequest(
    peerUrl: string,
    method: string,
    pathAndQuery: string,
    body: Buffer | undefined,
    postHello: (hello: unknown) => Promise<unknown>,
    requestId?: string,
  ): Promise<{ headers: Record<string, string>; body: Buffer | undefined; session: ClientSession; seq: number }> {
    const session = await this.clientSession(peerUrl, postHello);
    const seq = ++session.seq;
    const sealed = seal(session.keys.request, 'request', seq, requestAad(session.keys.sessionId, seq, method, pathAndQuery, requestId), body ?? Buffer.alloc(0));
    return {
      headers: {
        [SESSION_HEADER]: session.keys.sessionId,
        [SEQ_HEADER]: String(seq),
        [TAG_HEADER]: sealed.tag.toString('base64url'),
        ...(requestId !== undefined ? { [REQUEST_HEADER]: requestId } : {}),
        ...(body !== undefined ? { 'content-type': SEALED_CONTENT_TYPE } : {}),
      },
      body: body !== undefined ? sealed.ciphertext : undefined,
      session,
      seq,
    };
  }

  /** Opens the peer's sealed answer to request `seq`; undefined when it does not authenticate. */
  openAnswer(session: ClientSession, seq: number, httpStatus: number, tag: string | null, body: Buffer): Buffer | undefined {
    if (!tag) return undefined;
    return open(session.keys.answer, 'answer', seq, answerAad(session.keys.sessionId, seq, httpStatus), { ciphertext: body, tag: Buffer.from(tag, 'base64url') });
  }

  /** Forgets the session (the peer no longer knows it, e.g. after a restart); the next call opens a new one. */
  dropSession(peerUrl: string, session: ClientSession): void {
    // Not zeroed here: requests of this session still in flight must be able to open their answers.
    if (this.clientSessions.get(peerUrl) === session) this.clientSessions.delete(peerUrl);
  }

  private async clientSession(peerUrl: string, postHello: (hello: unknown) => Promise<unknown>): Promise<ClientSession> {
    const current = this.clientSessions.get(peerUrl);
    if (current && Date.now() - current.createdAt < SESSION_MAX_AGE_MS && current.seq < SESSION_MAX_MESSAGES) return current;
    let running = this.handshakes.get(peerUrl);
    if (!running) {
      running = initiateHandshake(this.credentials, this.pool, postHello)
        .then((keys) => {
          const session = { keys, createdAt: Date.now(), seq: 0 };
          this.clientSessions.set(peerUrl, session);
          return session;
        })
        .finally(() => this.handshakes.delete(peerUrl));
      this.handshakes.set(peerUrl, running);
    }
    return running;
  }

  // ------------------------------------------------------------------ server side

  /** Answers a hello: a new session (the peer proved it holds the link's peer key). */
  async acceptHello(body: unknown): Promise<unknown> {
    const { reply, keys } = await this.responder.accept(body);
    this.evictSessions();
    this.serverSessions.set(keys.sessionId, { keys, window: new ReplayWindow(), lastUsed: Date.now() });
    return reply;
  }

  /**
   * The checks of a sealed request that need no body: the session headers are there and name a live
   * session. The peer gate runs them before reading the body, so a request that cannot authenticate
   * costs no buffering.
   */
  checkSession(sessionId: string | undefined, seqText: string | undefined, tag: string | undefined): { ok: true } | { ok: false; code: PeerAuthCode; message: string } {
    if (!sessionId || !seqText || !tag) return { ok: false, code: 'PEER_AUTH_REQUIRED', message: 'peer messages must be sealed in an authenticated session (POST /peer/hello first)' };
    const session = this.serverSessions.get(sessionId);
    if (!session || Date.now() - session.lastUsed > SERVER_SESSION_IDLE_MS) {
      // Only a session that existed is removed (and its keys zeroed); an unknown ID leaves nothing behind.
      if (session) this.forget(sessionId, session);
      return { ok: false, code: 'PEER_SESSION_UNKNOWN', message: 'unknown or expired session: open a new one' };
    }
    return { ok: true };
  }

  /**
   * Checks and opens a sealed request. Resolves the plaintext and an `answer` function that seals the
   * reply, or the authentication error to answer (unsealed).
   */
  openRequest(
    sessionId: string | undefined,
    seqText: string | undefined,
    tag: string | undefined,
    method: string,
    pathAndQuery: string,
    body: Buffer,
    requestId?: string,
  ): { ok: true; plaintext: Buffer; sealAnswer: (httpStatus: number, plaintext: Buffer) => Sealed } | { ok: false; code: PeerAuthCode; message: string } {
    const known = this.checkSession(sessionId, seqText, tag);
    if (!known.ok || !sessionId || !seqText || !tag) return known.ok ? { ok: false, code: 'PEER_AUTH_REQUIRED', message: 'peer messages must be sealed' } : known;
    const session = this.serverSessions.get(sessionId)!;
    const seq = /^[1-9][0-9]{0,15}$/.test(seqText) ? Number(seqText) : NaN;
    if (!session.window.check(seq)) return { ok: false, code: 'PEER_AUTH_FAILED', message: 'sequence number replayed or out of range' };
    if (requestId !== undefined && !REQUEST_ID.test(requestId)) return { ok: false, code: 'PEER_AUTH_FAILED', message: 'malformed request id' };
    const plaintext = open(session.keys.request, 'request', seq, requestAad(sessionId, seq, method, pathAndQuery, requestId), { ciphertext: body, tag: Buffer.from(tag, 'base64url') });
    if (!plaintext) return { ok: false, code: 'PEER_AUTH_FAILED', message: 'message does not authenticate' };
    session.window.accept(seq);
    if (requestId !== undefined) {
      // A call re-sent in a new session (after an unauthenticated "unknown session" answer, which an
      // attacker could forge after this module ran it) runs at most once.
      if (this.executed.has(requestId)) {
        plaintext.fill(0);
        return { ok: false, code: 'PEER_DUPLICATE', message: 'this call was already received' };
      }
      this.rememberExecuted(requestId);
    }
    session.lastUsed = Date.now();
    // LRU order: the most recently used session goes last.
    this.serverSessions.delete(sessionId);
    this.serverSessions.set(sessionId, session);
    return {
      ok: true,
      plaintext,
      sealAnswer: (httpStatus, answer) => seal(session.keys.answer, 'answer', seq, answerAad(sessionId, seq, httpStatus), answer),
    };
  }

  private rememberExecuted(requestId: string): void {
    const now = Date.now();
    for (const [id, at] of this.executed) {
      if (now - at <= EXECUTED_REQUEST_MEMORY_MS && this.executed.size < EXECUTED_REQUEST_MEMORY_MAX) break;
      this.executed.delete(id); // oldest first (insertion order)
    }
    this.executed.set(requestId, now);
  }

  private evictSessions(): void {
    const now = Date.now();
    for (const [id, s] of this.serverSessions) if (now - s.lastUsed > SERVER_SESSION_IDLE_MS) this.forget(id, s);
    while (this.serverSessions.size >= SERVER_MAX_SESSIONS) {
      const [id, s] = this.serverSessions.entries().next().value as [string, ServerSession];
      this.forget(id, s);
    }
  }

  private forget(id: string, s: ServerSession): void {
    s.keys.request.fill(0);
    s.keys.answer.fill(0);
    this.serverSessions.delete(id);
  }

  async close(): Promise<void> {
    for (const [id, s] of this.serverSessions) this.forget(id, s);
    for (const s of this.clientSessions.values()) {
      s.keys.request.fill(0);
      s.keys.answer.fill(0);
    }
    this.clientSessions.clear();
    this.credentials.secretKey.fill(0);
    await this.pool.close();
  }
}

interface ServerSession {
  keys: SessionKeys;
  window: ReplayWindow;
  lastUsed: number;
}
