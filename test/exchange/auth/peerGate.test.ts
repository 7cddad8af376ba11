/**
 * The peer gate (src/api/peerAuth.ts) with PeerAuthenticator (src/exchange/auth/peerSessions.ts) and
 * HttpPeerClient (src/exchange/HttpPeerClient.ts), over real HTTP on 127.0.0.1. The app is a small
 * express app parsing bodies the way src/api/app.ts does, with test routes behind the gate that record
 * every call they get.
 *
 * The signature workers run the compiled dist/src/crypto/signWorker.js: run `npx tsc -p tsconfig.json` first.
 */
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { PEER_PATHS, peerGate } from '../../../src/api/peerAuth.js';
import { HELLO_PATH } from '../../../src/exchange/auth/handshake.js';
import { generateCredentialPair, loadLinkCredentials, type CredentialPair } from '../../../src/exchange/auth/linkCredentials.js';
import {
  PeerAuthenticator,
  SEALED_CONTENT_TYPE,
  SEQ_HEADER,
  SESSION_HEADER,
  TAG_HEADER,
} from '../../../src/exchange/auth/peerSessions.js';
import { HttpPeerClient } from '../../../src/exchange/HttpPeerClient.js';
import { PeerError } from '../../../src/exchange/peerProtocol.js';

const log = pino({ level: 'silent' });
const TIMEOUT = 5_000;

let pair: CredentialPair;
let other: CredentialPair;
let server: Server;
let url: string;

/** What the gate in front of the routes currently uses (replaced to simulate a restart). */
let serverAuth: PeerAuthenticator;
let gate: RequestHandler;
let clientAuth: PeerAuthenticator;
const extraAuth: PeerAuthenticator[] = [];

/** Every call that reached a route behind the gate, and every hello that reached the gate. */
let routeCalls: { path: string; body: unknown }[];
let hellos: number;

function installServerAuth(): PeerAuthenticator {
  serverAuth = new PeerAuthenticator(loadLinkCredentials(JSON.stringify(pair.detector), 0));
  gate = peerGate({ auth: serverAuth, log });
  return serverAuth;
}

function buildApp(): express.Express {
  const app = express();
  app.set('etag', false);
  const sealed = (req: IncomingMessage): boolean => (req.headers['content-type'] ?? '').toLowerCase().startsWith(SEALED_CONTENT_TYPE);
  app.use(express.raw({ type: sealed, limit: 1_048_576 }));
  app.use(express.text({ type: (req: IncomingMessage) => !sealed(req), limit: 1_048_576 }));
  app.use(PEER_PATHS, (req: Request, res: Response, next: NextFunction) => {
    if (req.originalUrl === HELLO_PATH) hellos++;
    gate(req, res, next);
  });
  const echo = (req: Request, res: Response): void => {
    const body: unknown = typeof req.body === 'string' && req.body.length > 0 ? JSON.parse(req.body) : req.body;
    routeCalls.push({ path: req.originalUrl, body });
    res.json({ echoed: body, contentType: req.headers['content-type'] ?? null });
  };
  app.post('/peer/echo', echo);
  app.post('/start', echo);
  app.get('/sync', (req: Request, res: Response) => {
    routeCalls.push({ path: req.originalUrl, body: undefined });
    res.json({ joined: req.query.key_handle === 'stream-1' });
  });
  app.post('/peer/refuse', (req: Request, res: Response) => {
    routeCalls.push({ path: req.originalUrl, body: req.body });
    res.status(409).json({ code: 'STREAM_UNKNOWN', message: 'no such stream here' });
  });
  return app;
}

beforeAll(async () => {
  [pair, other] = await Promise.all([generateCredentialPair(), generateCredentialPair()]);
  server = createServer(buildApp());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
});

beforeEach(() => {
  routeCalls = [];
  hellos = 0;
  installServerAuth();
  clientAuth = new PeerAuthenticator(loadLinkCredentials(JSON.stringify(pair.sender), 1));
});
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all([serverAuth.close(), clientAuth.close(), ...extraAuth.splice(0).map((a) => a.close())]);
});

/** Sends the hello with plain fetch, as HttpPeerClient does. */
async function postHello(hello: unknown): Promise<unknown> {
  const res = await fetch(`${url}${HELLO_PATH}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(hello) });
  expect(res.status).toBe(200);
  return res.json();
}

/** A request sealed by the client authenticator (headers and body as they go on the wire). */
async function sealedRequest(path: string, value: unknown, method = 'POST') {
  const body = value === undefined ? undefined : Buffer.from(JSON.stringify(value), 'utf8');
  return clientAuth.sealRequest(url, method, path, body, postHello);
}

async function send(path: string, init: { method?: string; headers?: Record<string, string>; body?: Buffer | string }) {
  const res = await fetch(`${url}${path}`, { method: init.method ?? 'POST', headers: init.headers ?? {}, body: init.body });
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, body, json: (): any => JSON.parse(body.toString('utf8')) };
}

/** The PeerError `promise` rejects with (fails the test otherwise). */
async function peerError(promise: Promise<unknown>): Promise<PeerError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PeerError);
  return err as PeerError;
}

describe('sealed calls end to end', () => {
  it('when HttpPeerClient posts through the gate, then the route gets the JSON in clear and the client gets the route\'s answer', async () => {
    const client = new HttpPeerClient({ auth: clientAuth });
    const answer = await client.post(url, '/peer/echo', { keyStreamId: 'stream-1', n: 42 }, TIMEOUT);
    expect(answer).toEqual({ echoed: { keyStreamId: 'stream-1', n: 42 }, contentType: 'application/json' });
    expect(routeCalls).toEqual([{ path: '/peer/echo', body: { keyStreamId: 'stream-1', n: 42 } }]);
    expect(hellos).toBe(1);
    // The session is reused: a second call needs no new handshake.
    await client.start(url, { keyStreamId: 'stream-1', available: 3 }, TIMEOUT);
    expect(routeCalls[1]).toEqual({ path: '/start', body: { Key_stream_ID: 'stream-1', available: 3 } });
    expect(hellos).toBe(1);
  });

  it('when a sealed GET with a query string goes through the gate (sync), then the route sees the query and the answer opens', async () => {
    const client = new HttpPeerClient({ auth: clientAuth });
    const reply = await client.sync(
      url,
      { keyStreamId: 'stream-1', source: 'a b', destination: "c'd", keyLengthBits: 256, timeoutMs: 1000, sender: 1, sim: 'fake', peerAddress: '127.0.0.1:1' } as never,
      TIMEOUT,
    );
    expect(reply.joined).toBe(true);
    expect(routeCalls).toHaveLength(1);
    expect(routeCalls[0]!.path).toMatch(/^\/sync\?key_handle=stream-1&/);
  });

  it('when the route answers an error, then the sealed error reaches the client as PeerError refused with the route\'s code', async () => {
    const client = new HttpPeerClient({ auth: clientAuth });
    const err = await peerError(client.post(url, '/peer/refuse', { x: 1 }, TIMEOUT));
    expect(err.kind).toBe('refused');
    expect(err.peerCode).toBe('STREAM_UNKNOWN');
    expect(err.message).toBe('no such stream here');
  });

  it('when a sealed request is sent by hand, then neither request nor answer carries the JSON in clear and the answer opens with the session', async () => {
    const secret = { keys: ['c2VjcmV0LWtleS1tYXRlcmlhbA=='] };
    const req = await sealedRequest('/peer/echo', secret);
    expect(req.headers['content-type']).toBe(SEALED_CONTENT_TYPE);
    expect(req.body!.toString('utf8')).not.toContain('c2VjcmV0');
    const res = await send('/peer/echo', { headers: req.headers, body: req.body });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(SEALED_CONTENT_TYPE);
    expect(res.body.toString('utf8')).not.toContain('c2VjcmV0');
    const tag = res.headers.get(TAG_HEADER);
    expect(tag).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const plain = clientAuth.openAnswer(req.session, req.seq, 200, tag, res.body);
    expect(JSON.parse(plain!.toString('utf8'))).toEqual({ echoed: secret, contentType: 'application/json' });
    // Bound to its status and its request: the same bytes do not open as another status or as the next request's answer.
    expect(clientAuth.openAnswer(req.session, req.seq, 201, tag, res.body)).toBeUndefined();
    expect(clientAuth.openAnswer(req.session, req.seq + 1, 200, tag, res.body)).toBeUndefined();
    expect(clientAuth.openAnswer(req.session, req.seq, 200, null, res.body)).toBeUndefined();
  });
});

describe('what the gate refuses', () => {
  it('when a plain JSON POST comes without a session, then it gets 401 PEER_AUTH_REQUIRED and no route runs', async () => {
    for (const path of ['/peer/echo', '/start']) {
      const res = await send(path, { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ keyStreamId: 'x' }) });
      expect(res.status).toBe(401);
      expect(res.json().code).toBe('PEER_AUTH_REQUIRED');
    }
    const get = await send('/sync?key_handle=stream-1', { method: 'GET' });
    expect(get.status).toBe(401);
    expect(get.json().code).toBe('PEER_AUTH_REQUIRED');
    const empty = await send('/peer/echo', {});
    expect(empty.status).toBe(401);
    expect(empty.json().code).toBe('PEER_AUTH_REQUIRED');
    expect(routeCalls).toEqual([]);
  });

  it('when a plain JSON body comes with valid session headers, then it is still refused as unsealed', async () => {
    const req = await sealedRequest('/peer/echo', { a: 1 });
    const { 'content-type': _ct, ...headers } = req.headers;
    const res = await send('/peer/echo', { headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ a: 1 }) });
    expect(res.status).toBe(401);
    expect(res.json().code).toBe('PEER_AUTH_REQUIRED');
    expect(routeCalls).toEqual([]);
  });

  it('when the exact same sealed request is sent twice, then the second gets 401 PEER_AUTH_FAILED and the route ran once', async () => {
    const req = await sealedRequest('/peer/echo', { round: 1 });
    const first = await send('/peer/echo', { headers: req.headers, body: req.body });
    expect(first.status).toBe(200);
    const replay = await send('/peer/echo', { headers: req.headers, body: req.body });
    expect(replay.status).toBe(401);
    expect(replay.json().code).toBe('PEER_AUTH_FAILED');
    expect(replay.headers.get(TAG_HEADER)).toBeNull(); // refusals are never sealed
    expect(routeCalls).toHaveLength(1);
  });

  it('when requests of one session arrive out of order, then each is accepted once', async () => {
    const a = await sealedRequest('/peer/echo', { n: 1 });
    const b = await sealedRequest('/peer/echo', { n: 2 });
    expect(b.seq).toBe(a.seq + 1);
    expect((await send('/peer/echo', { headers: b.headers, body: b.body })).status).toBe(200);
    expect((await send('/peer/echo', { headers: a.headers, body: a.body })).status).toBe(200);
    expect((await send('/peer/echo', { headers: a.headers, body: a.body })).status).toBe(401);
    expect(routeCalls.map((c) => c.body)).toEqual([{ n: 2 }, { n: 1 }]);
  });

  it('when one ciphertext bit is flipped, then it gets 401 PEER_AUTH_FAILED, no route runs, and the genuine message still goes through', async () => {
    const req = await sealedRequest('/peer/echo', { round: 2 });
    const forged = Buffer.from(req.body!);
    forged[0]! ^= 0x01;
    const res = await send('/peer/echo', { headers: req.headers, body: forged });
    expect(res.status).toBe(401);
    expect(res.json().code).toBe('PEER_AUTH_FAILED');
    expect(routeCalls).toEqual([]);
    // A forgery does not use up the sequence number.
    expect((await send('/peer/echo', { headers: req.headers, body: req.body })).status).toBe(200);
    expect(routeCalls).toHaveLength(1);
  });

  it('when the tag, the sequence number or the method is changed, then it gets 401 PEER_AUTH_FAILED', async () => {
    const req = await sealedRequest('/peer/echo', { round: 3 });
    const tag = Buffer.from(req.headers[TAG_HEADER]!, 'base64url');
    tag[15]! ^= 0x80;
    const variants: { headers: Record<string, string>; method?: string }[] = [
      { headers: { ...req.headers, [TAG_HEADER]: tag.toString('base64url') } },
      { headers: { ...req.headers, [SEQ_HEADER]: String(req.seq + 1) } },
      { headers: { ...req.headers, [SEQ_HEADER]: '0' } },
      { headers: { ...req.headers, [SEQ_HEADER]: '01' } },
      { headers: { ...req.headers, [SEQ_HEADER]: '-1' } },
      { headers: { ...req.headers, [SEQ_HEADER]: '1.0' } },
      { headers: req.headers, method: 'PUT' },
    ];
    for (const v of variants) {
      const res = await send('/peer/echo', { method: v.method ?? 'POST', headers: v.headers, body: req.body });
      expect(res.status).toBe(401);
      expect(res.json().code).toBe('PEER_AUTH_FAILED');
    }
    expect(routeCalls).toEqual([]);
  });

  it('when a sealed request is sent to another peer route or with another query, then it gets 401 PEER_AUTH_FAILED', async () => {
    const req = await sealedRequest('/peer/echo', { round: 4 });
    for (const path of ['/start', '/peer/echo?x=1', '/peer/refuse']) {
      const res = await send(path, { headers: req.headers, body: req.body });
      expect(res.status).toBe(401);
      expect(res.json().code).toBe('PEER_AUTH_FAILED');
    }
    expect(routeCalls).toEqual([]);
  });

  it('when a request names an unknown session, then it gets 401 PEER_SESSION_UNKNOWN', async () => {
    const req = await sealedRequest('/peer/echo', { round: 5 });
    const res = await send('/peer/echo', { headers: { ...req.headers, [SESSION_HEADER]: 'AAAAAAAAAAAAAAAAAAAAAA' }, body: req.body });
    expect(res.status).toBe(401);
    expect(res.json().code).toBe('PEER_SESSION_UNKNOWN');
    expect(routeCalls).toEqual([]);
  });

  it('when a hello is not JSON, then it gets 400; when it is refused, then 401 PEER_HANDSHAKE_REFUSED', async () => {
    const bad = await send(HELLO_PATH, { headers: { 'content-type': 'application/json' }, body: '{not json' });
    expect(bad.status).toBe(400);
    expect(bad.json().code).toBe('BAD_REQUEST');
    const malformed = await send(HELLO_PATH, { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ v: 1 }) });
    expect(malformed.status).toBe(400);
    expect(malformed.json().code).toBe('PEER_HANDSHAKE_REFUSED');
  });

  it('when a module of another link calls, then its handshake is refused and the client reports the peer unreachable', async () => {
    const stranger = new PeerAuthenticator(loadLinkCredentials(JSON.stringify(other.sender), 1));
    extraAuth.push(stranger);
    const err = await peerError(new HttpPeerClient({ auth: stranger }).post(url, '/peer/echo', { a: 1 }, TIMEOUT));
    expect(err.kind).toBe('unreachable');
    expect(err.message).toMatch(/^handshake refused by the peer \(HTTP 401\): hello for another link/);
    expect(routeCalls).toEqual([]);
  });

  it('when the module answering the handshake holds another key than the configured peer key, then the client refuses it', async () => {
    // The server end runs with the right identity fields but another secret key (an impostor).
    await serverAuth.close();
    const impostorCreds = { ...loadLinkCredentials(JSON.stringify(pair.detector), 0), secretKey: loadLinkCredentials(JSON.stringify(other.detector), 0).secretKey };
    serverAuth = new PeerAuthenticator(impostorCreds);
    gate = peerGate({ auth: serverAuth, log });
    const err = await peerError(new HttpPeerClient({ auth: clientAuth }).post(url, '/peer/echo', { a: 1 }, TIMEOUT));
    expect(err.kind).toBe('unreachable');
    expect(err.message).toMatch(/^handshake failed: the peer's handshake signature does not verify/);
    expect(routeCalls).toEqual([]);
  });
});

describe('sessions across a restart', () => {
  it('when the server side is replaced (restart, same credentials), then an idempotent call re-handshakes once and succeeds', async () => {
    const client = new HttpPeerClient({ auth: clientAuth });
    await client.start(url, { keyStreamId: 'stream-1', available: 1 }, TIMEOUT);
    expect(hellos).toBe(1);
    const old = serverAuth;
    installServerAuth();
    await old.close();
    await client.start(url, { keyStreamId: 'stream-1', available: 2 }, TIMEOUT);
    expect(hellos).toBe(2);
    expect(routeCalls.map((c) => c.body)).toEqual([{ Key_stream_ID: 'stream-1', available: 1 }, { Key_stream_ID: 'stream-1', available: 2 }]);
    // And the new session is kept.
    await client.start(url, { keyStreamId: 'stream-1', available: 3 }, TIMEOUT);
    expect(hellos).toBe(2);
  });

  it('when the server side is replaced, then any call (also one that must not run twice) re-handshakes and runs once', async () => {
    const client = new HttpPeerClient({ auth: clientAuth });
    await client.post(url, '/peer/echo', { before: true }, TIMEOUT);
    const old = serverAuth;
    installServerAuth();
    await old.close();
    const answer = await client.post(url, '/peer/echo', { after: true }, TIMEOUT);
    expect(answer).toEqual({ echoed: { after: true }, contentType: 'application/json' });
    expect(hellos).toBe(2);
    expect(routeCalls.map((c) => c.body)).toEqual([{ before: true }, { after: true }]);
  });

  it('when the server forgets the session and then refuses every handshake, then the client gives up with PeerError unreachable', async () => {
    const client = new HttpPeerClient({ auth: clientAuth });
    await client.post(url, '/peer/echo', { before: true }, TIMEOUT);
    await serverAuth.close();
    // Now a server of another link: the old session is unknown and hellos are refused.
    serverAuth = new PeerAuthenticator(loadLinkCredentials(JSON.stringify(other.detector), 0));
    gate = peerGate({ auth: serverAuth, log });
    const err = await peerError(client.start(url, { keyStreamId: 'stream-1', available: 0 }, TIMEOUT));
    expect(err.kind).toBe('unreachable');
    expect(err.message).toContain('handshake refused by the peer (HTTP 401)');
    expect(routeCalls).toHaveLength(1);
  });
});

describe('answers altered in transit', () => {
  /** Replaces global fetch (what HttpPeerClient calls) with one that alters the answers of `path`. */
  function alterAnswers(path: string, alter: (status: number, headers: Headers, body: Buffer) => { status: number; headers: Headers; body: Buffer }): void {
    const realFetch = globalThis.fetch;
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const res = await realFetch(input, init);
      if (!String(input).endsWith(path)) return res;
      const altered = alter(res.status, new Headers(res.headers), Buffer.from(await res.arrayBuffer()));
      return new Response(altered.body, { status: altered.status, headers: altered.headers });
    });
  }

  it('when one bit of the sealed answer is flipped, then the client rejects it as PeerError unreachable (never acted on)', async () => {
    alterAnswers('/peer/echo', (status, headers, body) => {
      body[body.length - 1]! ^= 0x01;
      return { status, headers, body };
    });
    const err = await peerError(new HttpPeerClient({ auth: clientAuth }).post(url, '/peer/echo', { a: 1 }, TIMEOUT));
    expect(err.kind).toBe('unreachable');
    expect(err.message).toBe("/peer/echo: the peer's answer is not authenticated (HTTP 200)");
    expect(routeCalls).toHaveLength(1); // it reached the route once, and was not sent again
  });

  it('when an attacker replaces a real answer with an unauthenticated PEER_SESSION_UNKNOWN, then the re-sent call is refused as a duplicate and runs only once', async () => {
    let forged = 0;
    alterAnswers('/peer/echo', (status, headers, body) => {
      if (forged++ > 0) return { status, headers, body }; // only the first answer is replaced
      headers.delete(TAG_HEADER);
      headers.set('content-type', 'application/json');
      return { status: 401, headers, body: Buffer.from(JSON.stringify({ code: 'PEER_SESSION_UNKNOWN', message: 'forged' })) };
    });
    const err = await peerError(new HttpPeerClient({ auth: clientAuth }).post(url, '/peer/echo', { once: true }, TIMEOUT));
    expect(err.kind).toBe('unreachable');
    expect(err.message).toContain('PEER_DUPLICATE');
    expect(forged).toBe(2); // the call was sent again, in a new session
    expect(hellos).toBe(2);
    expect(routeCalls).toHaveLength(1);
  });

  it('when the answer\'s status is changed, then the client rejects it', async () => {
    alterAnswers('/peer/refuse', (_status, headers, body) => ({ status: 200, headers, body }));
    const err = await peerError(new HttpPeerClient({ auth: clientAuth }).post(url, '/peer/refuse', { a: 1 }, TIMEOUT));
    expect(err.kind).toBe('unreachable');
    expect(err.message).toContain('not authenticated (HTTP 200)');
  });

  it('when the answer is replaced by plain JSON without a tag, then the client rejects it', async () => {
    alterAnswers('/peer/echo', () => ({ status: 200, headers: new Headers({ 'content-type': 'application/json' }), body: Buffer.from('{"echoed":{"a":2}}') }));
    const err = await peerError(new HttpPeerClient({ auth: clientAuth }).post(url, '/peer/echo', { a: 1 }, TIMEOUT));
    expect(err.kind).toBe('unreachable');
  });
});
