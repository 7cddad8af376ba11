/**
 * The peer-channel handshake (src/exchange/auth/handshake.ts): SLH-DSA signed ML-KEM-768 key agreement.
 * The client's `post` callback hands the hello straight to a HandshakeResponder (no HTTP).
 *
 * The signature workers run the compiled dist/src/crypto/signWorker.js: run `npx tsc -p tsconfig.json` first.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { SignaturePool } from '../../../src/crypto/signatures.js';
import {
  HandshakeError,
  HandshakeResponder,
  HANDSHAKE_VERSION,
  HELLO_MAX_SKEW_MS,
  initiateHandshake,
  type SessionKeys,
} from '../../../src/exchange/auth/handshake.js';
import { generateCredentialPair, loadLinkCredentials, type CredentialPair, type LinkCredentials } from '../../../src/exchange/auth/linkCredentials.js';

type HelloWire = { v: number; link: string; from: string; to: string; time: number; nonce: string; kem: string; signature: string };
type AcceptWire = { v: number; session: string; nonce: string; ciphertext: string; signature: string };

let pair: CredentialPair;
let other: CredentialPair;
let clientPool: SignaturePool;
let serverPool: SignaturePool;

/** Fresh parsed credentials (each load is its own copy: nothing here zeroes a shared secret key). */
const senderCreds = (): LinkCredentials => loadLinkCredentials(JSON.stringify(pair.sender), 1);
const detectorCreds = (): LinkCredentials => loadLinkCredentials(JSON.stringify(pair.detector), 0);

beforeAll(async () => {
  [pair, other] = await Promise.all([generateCredentialPair(), generateCredentialPair()]);
  clientPool = SignaturePool.create('slh-dsa-sha2-128f');
  serverPool = SignaturePool.create('slh-dsa-sha2-128f');
});
afterAll(async () => {
  await Promise.all([clientPool?.close(), serverPool?.close()]);
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** A hello signed by `creds` (taken from initiateHandshake, which is then abandoned). */
async function makeHello(creds: LinkCredentials = senderCreds()): Promise<HelloWire> {
  let hello: HelloWire | undefined;
  await initiateHandshake(creds, clientPool, async (h) => {
    hello = h as HelloWire;
    throw new Error('captured');
  }).catch((err: Error) => expect(err.message).toBe('captured'));
  return hello!;
}

/** The HandshakeError `promise` rejects with (fails the test otherwise). */
async function handshakeError(promise: Promise<unknown>): Promise<HandshakeError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HandshakeError);
  return err as HandshakeError;
}

const eq = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

describe('a complete handshake', () => {
  it('when the sender initiates and the detector responds, then both derive the same session id and keys, request and answer keys differ', async () => {
    const responder = new HandshakeResponder(detectorCreds(), serverPool);
    let serverKeys: SessionKeys | undefined;
    let hello: HelloWire | undefined;
    const clientKeys = await initiateHandshake(senderCreds(), clientPool, async (h) => {
      hello = h as HelloWire;
      const { reply, keys } = await responder.accept(h);
      serverKeys = keys;
      return reply;
    });
    expect(serverKeys).toBeDefined();
    expect(clientKeys.sessionId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(clientKeys.sessionId).toBe(serverKeys!.sessionId);
    expect(clientKeys.request.length).toBe(32);
    expect(clientKeys.answer.length).toBe(32);
    expect(eq(clientKeys.request, serverKeys!.request)).toBe(true);
    expect(eq(clientKeys.answer, serverKeys!.answer)).toBe(true);
    expect(eq(clientKeys.request, clientKeys.answer)).toBe(false);
    // The hello is what docs/peer-protocol.md describes, addressed by fingerprints.
    expect(hello).toMatchObject({ v: HANDSHAKE_VERSION, link: pair.sender.link_id, from: senderCreds().fingerprint, to: detectorCreds().fingerprint });
    expect(Buffer.from(hello!.kem, 'base64').length).toBe(1184);
    expect(Buffer.from(hello!.nonce, 'base64').length).toBe(32);
  });

  it('when two handshakes run, then they get different session ids and different keys', async () => {
    const responder = new HandshakeResponder(detectorCreds(), serverPool);
    const post = async (h: unknown): Promise<unknown> => (await responder.accept(h)).reply;
    const a = await initiateHandshake(senderCreds(), clientPool, post);
    const b = await initiateHandshake(senderCreds(), clientPool, post);
    expect(a.sessionId).not.toBe(b.sessionId);
    expect(eq(a.request, b.request)).toBe(false);
    expect(eq(a.answer, b.answer)).toBe(false);
  });

  it('when the detector initiates towards the sender, then the handshake works the other way round too', async () => {
    const responder = new HandshakeResponder(senderCreds(), serverPool);
    let serverKeys: SessionKeys | undefined;
    const keys = await initiateHandshake(detectorCreds(), clientPool, async (h) => {
      const r = await responder.accept(h);
      serverKeys = r.keys;
      return r.reply;
    });
    expect(eq(keys.request, serverKeys!.request)).toBe(true);
    expect(eq(keys.answer, serverKeys!.answer)).toBe(true);
  });
});

describe('the responder refuses', () => {
  it('when the same hello is presented twice, then the second is refused as replayed', async () => {
    const responder = new HandshakeResponder(detectorCreds(), serverPool);
    const hello = await makeHello();
    await expect(responder.accept(hello)).resolves.toHaveProperty('keys');
    const err = await handshakeError(responder.accept(structuredClone(hello)));
    expect(err.message).toContain('replayed');
    expect(err.httpStatus).toBe(401);
  });

  it('when copies of one hello arrive at the same time, then exactly one is accepted', async () => {
    const responder = new HandshakeResponder(detectorCreds(), serverPool);
    const hello = await makeHello();
    const results = await Promise.allSettled([responder.accept(hello), responder.accept(structuredClone(hello)), responder.accept(structuredClone(hello))]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as Error).message).toContain('replayed');
  });

  it('when a hello (validly signed) is more than 5 minutes old, then it is refused for its time', async () => {
    const responder = new HandshakeResponder(detectorCreds(), serverPool);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() - HELLO_MAX_SKEW_MS - 5_000);
    const hello = await makeHello();
    vi.useRealTimers();
    expect(Date.now() - hello.time).toBeGreaterThan(HELLO_MAX_SKEW_MS);
    const err = await handshakeError(responder.accept(hello));
    expect(err.message).toMatch(/^hello time is more than 300 s from this module's clock/);
  });

  it('when a hello (validly signed) is dated more than 5 minutes in the future, then it is refused for its time', async () => {
    const responder = new HandshakeResponder(detectorCreds(), serverPool);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + HELLO_MAX_SKEW_MS + 5_000);
    const hello = await makeHello();
    vi.useRealTimers();
    const err = await handshakeError(responder.accept(hello));
    expect(err.message).toMatch(/^hello time is more than/);
  });

  it('when a hello (validly signed) is 4 minutes old, then it is accepted', async () => {
    const responder = new HandshakeResponder(detectorCreds(), serverPool);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() - 4 * 60_000);
    const hello = await makeHello();
    vi.useRealTimers();
    await expect(responder.accept(hello)).resolves.toHaveProperty('keys');
  });

  it('when a hello with the right addressing is signed with another key pair, then it is refused as not verifying', async () => {
    const responder = new HandshakeResponder(detectorCreds(), serverPool);
    const impostor = { ...senderCreds(), secretKey: loadLinkCredentials(JSON.stringify(other.sender), 1).secretKey };
    const hello = await makeHello(impostor);
    const err = await handshakeError(responder.accept(hello));
    expect(err.message).toBe('hello signature does not verify with peer_module.public_key');
    expect(err.httpStatus).toBe(401);
  });

  it('when a hello comes from another link\'s credentials entirely, then it is refused', async () => {
    const responder = new HandshakeResponder(detectorCreds(), serverPool);
    const hello = await makeHello(loadLinkCredentials(JSON.stringify(other.sender), 1));
    const err = await handshakeError(responder.accept(hello));
    expect(err.message).toContain('another link');
  });

  it('when the signed fields are altered after signing (nonce, kem), then the hello is refused as not verifying', async () => {
    const responder = new HandshakeResponder(detectorCreds(), serverPool);
    const hello = await makeHello();
    const kem = Buffer.from(hello.kem, 'base64');
    kem[0]! ^= 1;
    expect((await handshakeError(responder.accept({ ...hello, kem: kem.toString('base64') }))).message).toContain('does not verify');
    expect((await handshakeError(responder.accept({ ...hello, nonce: randomBytes(32).toString('base64') }))).message).toContain('does not verify');
  });

  it('when a hello is addressed to another key, another link or comes from another key, then it is refused without any signature verification', async () => {
    const responder = new HandshakeResponder(detectorCreds(), serverPool);
    const hello = await makeHello();
    const verify = vi.spyOn(serverPool, 'verify');
    const otherFp = loadLinkCredentials(JSON.stringify(other.detector), 0).fingerprint;
    const wrongTo = await handshakeError(responder.accept({ ...hello, to: otherFp }));
    expect(wrongTo.message).toBe('hello addressed to another module key');
    const wrongLink = await handshakeError(responder.accept({ ...hello, link: other.sender.link_id }));
    expect(wrongLink.message).toContain('another link');
    const wrongFrom = await handshakeError(responder.accept({ ...hello, from: otherFp }));
    expect(wrongFrom.message).toContain('not this link\'s peer_module.public_key');
    // A hello to this module that names its own key as the sender (reflection) is refused too.
    const reflected = await handshakeError(responder.accept({ ...hello, from: hello.to }));
    expect(reflected.message).toContain('peer_module.public_key');
    expect(verify).not.toHaveBeenCalled();
    // And none of them burned the nonce: the genuine hello still opens a session.
    verify.mockRestore();
    await expect(responder.accept(hello)).resolves.toHaveProperty('keys');
  });

  it('when a hello is malformed, then it is refused with status 400 naming the field', async () => {
    const responder = new HandshakeResponder(detectorCreds(), serverPool);
    const hello = await makeHello();
    const cases: [unknown, RegExp][] = [
      [{ ...hello, v: 2 }, /^malformed hello: v: /],
      [{ ...hello, kem: Buffer.alloc(1183).toString('base64') }, /^malformed hello: kem: expected 1184 bytes of canonical base64$/],
      [{ ...hello, nonce: `${hello.nonce.slice(0, -2)}=` }, /^malformed hello: nonce: /],
      [{ ...hello, time: 1.5 }, /^malformed hello: time: /],
      [{ ...hello, extra: true }, /^malformed hello: /],
      [{ ...hello, to: hello.to.toUpperCase() }, /^malformed hello: to: /],
      [null, /^malformed hello: /],
      ['hello', /^malformed hello: /],
    ];
    for (const [body, expected] of cases) {
      const err = await handshakeError(responder.accept(body));
      expect(err.httpStatus).toBe(400);
      expect(err.message).toMatch(expected);
    }
  });

  it('when more hellos with bad signatures arrive than the burst allows, then further ones get 429 until tokens refill', async () => {
    vi.useFakeTimers({ toFake: ['Date'] }); // the clock stands still: no refill during the burst
    const responder = new HandshakeResponder(detectorCreds(), serverPool);
    const template = await makeHello();
    const forged = (): HelloWire => ({ ...template, nonce: randomBytes(32).toString('base64') }); // signature no longer matches
    for (let i = 0; i < 10; i++) {
      const err = await handshakeError(responder.accept(forged()));
      expect(err.httpStatus, `hello ${i + 1}`).toBe(401);
      expect(err.message).toContain('does not verify');
    }
    const verify = vi.spyOn(serverPool, 'verify');
    for (let i = 0; i < 3; i++) {
      const err = await handshakeError(responder.accept(forged()));
      expect(err.httpStatus).toBe(429);
      expect(err.message).toContain('too many handshakes');
    }
    // Even a genuine hello waits for a token; none was spent on a signature check.
    const genuine = await makeHello();
    expect((await handshakeError(responder.accept(genuine))).httpStatus).toBe(429);
    expect(verify).not.toHaveBeenCalled();
    // Two tokens per second: after one second the genuine hello (not burned by the 429) gets through.
    vi.setSystemTime(Date.now() + 1_000);
    await expect(responder.accept(genuine)).resolves.toHaveProperty('keys');
  });

  it('when hellos fail the cheap checks, then they never use up the signature budget', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const responder = new HandshakeResponder(detectorCreds(), serverPool);
    const hello = await makeHello();
    for (let i = 0; i < 30; i++) {
      const err = await handshakeError(responder.accept({ ...hello, to: '0'.repeat(32) }));
      expect(err.httpStatus).toBe(401);
    }
    await expect(responder.accept(hello)).resolves.toHaveProperty('keys');
    // Replays of an accepted hello do not cost tokens either.
    for (let i = 0; i < 30; i++) expect((await handshakeError(responder.accept(hello))).httpStatus).toBe(401);
  });
});

describe('the client refuses', () => {
  it('when the accept is signed by a key that is not the peer\'s, then initiateHandshake fails naming peer_module.public_key', async () => {
    // A responder with the detector's identity fields but another secret key: an impostor on the path.
    const impostor = new HandshakeResponder({ ...detectorCreds(), secretKey: loadLinkCredentials(JSON.stringify(other.detector), 0).secretKey }, serverPool);
    const err = await handshakeError(initiateHandshake(senderCreds(), clientPool, async (h) => (await impostor.accept(h)).reply));
    expect(err.message).toMatch(/^the peer's handshake signature does not verify with peer_module\.public_key/);
  });

  it('when the genuine accept is altered in transit (ciphertext, session id or signature), then initiateHandshake fails', async () => {
    const responder = new HandshakeResponder(detectorCreds(), serverPool);
    const alterations: ((a: AcceptWire) => AcceptWire)[] = [
      (a) => {
        const ct = Buffer.from(a.ciphertext, 'base64');
        ct[100]! ^= 1;
        return { ...a, ciphertext: ct.toString('base64') };
      },
      (a) => ({ ...a, session: `${a.session.slice(0, -1)}${a.session.endsWith('A') ? 'B' : 'A'}` }),
      (a) => ({ ...a, nonce: randomBytes(32).toString('base64') }),
      (a) => {
        const sig = Buffer.from(a.signature, 'base64');
        sig[sig.length - 1]! ^= 1;
        return { ...a, signature: sig.toString('base64') };
      },
    ];
    for (const alter of alterations) {
      const err = await handshakeError(initiateHandshake(senderCreds(), clientPool, async (h) => alter((await responder.accept(h)).reply as AcceptWire)));
      expect(err.message).toContain('does not verify');
    }
  });

  it('when an accept made for another hello is replayed to a new hello, then initiateHandshake fails', async () => {
    const responder = new HandshakeResponder(detectorCreds(), serverPool);
    let old: unknown;
    await initiateHandshake(senderCreds(), clientPool, async (h) => {
      old = (await responder.accept(h)).reply;
      return old;
    });
    const err = await handshakeError(initiateHandshake(senderCreds(), clientPool, async () => old));
    expect(err.message).toContain('does not verify');
  });

  it('when the accept is malformed, then initiateHandshake fails with a malformed-message error', async () => {
    for (const answer of [undefined, {}, { code: 'PEER_HANDSHAKE_REFUSED' }, 'ok']) {
      const err = await handshakeError(initiateHandshake(senderCreds(), clientPool, async () => answer));
      expect(err.message).toBe('the peer answered the handshake with a malformed message');
    }
  });
});
