/**
 * Issue 14, "Why" 1: a third party that flooded /peer/round at Bob while two applications consumed keys
 * made both ends deliver different keys for the same index (Bob's copy was the attacker's), and nothing
 * confirmed that the two ends held the same keys before delivery.
 *
 * Answers: every peer message must be sealed in a session opened with the link credentials (the flood
 * is refused before any route sees it), and every round is confirmed before its keys are deliverable
 * (an attacker who changes keys on an unauthenticated path halts the stream instead of splitting it).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../support/processes.js';
import { attackerPost, openStream, startPair, streamState, takeBoth, until, type Pair } from './support.js';

let pairs: Pair[] = [];
let servers: Server[] = [];
afterEach(async () => {
  await Promise.all(pairs.flatMap((p) => [p.alice.kill('SIGKILL'), p.bob.kill('SIGKILL')]));
  pairs = [];
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  servers = [];
});

describe('Why 1: a third party floods /peer/round at Bob while applications consume keys', () => {
  it('when the attacker floods rounds with its own keys on the default configuration, then every flood message is refused and both ends deliver identical keys', async () => {
    const pair = await startPair();
    pairs.push(pair);
    const id = await openStream(pair);
    let flooding = true;
    const answers: number[] = [];
    const attackerKey = Buffer.alloc(32, 0xee).toString('base64');
    const flood = (async () => {
      for (let n = 0; flooding; n++) {
        const state = await streamState(pair.bob, id);
        const r = await attackerPost(pair.bob, '/peer/round', {
          keyStreamId: id,
          roundId: randomUUID(),
          roundSeq: Date.now() * 1000 + n,
          firstIndex: state.nextIndex,
          keyLengthBits: 256,
          maxKeys: 1,
          step: 'keys',
          payload: { keys: [attackerKey] },
        });
        answers.push(r.status);
        await attackerPost(pair.bob, '/peer/confirm', { keyStreamId: id, roundId: 'x', firstIndex: state.nextIndex, count: 1, seed: attackerKey, tag: attackerKey });
      }
    })();
    const delivered = await takeBoth(pair, id, 60);
    flooding = false;
    await flood;
    expect(answers.length).toBeGreaterThan(20);
    expect(new Set(answers)).toEqual(new Set([401]));
    delivered.forEach(([a, b], i) => {
      expect([a.status, b.status, a.index, b.index]).toEqual([0, 0, i, i]);
      expect(b.key).toBe(a.key);
      expect(b.key).not.toBe(Buffer.from(attackerKey, 'base64').toString('hex'));
    });
    expect((await streamState(pair.bob, id)).halted).toBeNull();
    expect(pair.bob.output()).toMatch(/unauthenticated peer message refused/);
  });

  it('when an attacker on the path of an insecure-mode link alters the keys of rounds, then key confirmation discards them at both ends, halts the stream, and it resumes identical once the path is clean', async () => {
    const pair = await startPair({ credentials: 'insecure' });
    pairs.push(pair);
    await until(() => /INSECURE/.test(pair.alice.output()), 5000, 'the INSECURE warning');
    // The attacker's relay between Alice and Bob: Alice is told to reach Bob through it.
    let tamper = true;
    let altered = 0;
    const relayPort = await freePort();
    const relay = createServer((req: IncomingMessage, res) => {
      relayOne(req, res).catch(() => res.destroy()); // a module going away mid-request (end of the test)
    });
    const relayOne = async (req: IncomingMessage, res: import('node:http').ServerResponse): Promise<void> => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      let body: Buffer | undefined = chunks.length ? Buffer.concat(chunks) : undefined;
      if (tamper && req.url === '/peer/round' && body) {
        const msg = JSON.parse(body.toString()) as { payload?: { keys?: string[] } };
        if (msg.payload?.keys?.length) {
          const key = Buffer.from(msg.payload.keys[0]!, 'base64');
          key[0]! ^= 1; // one flipped bit
          msg.payload.keys[0] = key.toString('base64');
          body = Buffer.from(JSON.stringify(msg));
          altered++;
        }
      }
      const answer = await fetch(`${pair.bob.url}${req.url}`, {
        method: req.method!,
        headers: { 'content-type': String(req.headers['content-type'] ?? 'application/json') },
        ...(body ? { body } : {}),
      });
      const body2 = Buffer.from(await answer.arrayBuffer());
      res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
      res.end(body2);
    };
    await new Promise<void>((r) => relay.listen(relayPort, '127.0.0.1', () => r()));
    servers.push(relay);

    const id = await openStream(pair, 256, `127.0.0.1:${relayPort}`);
    await until(async () => (await streamState(pair.alice, id)).halted !== null && (await streamState(pair.bob, id)).halted !== null, 10_000, 'halt at both ends');
    expect(altered).toBeGreaterThan(0);
    for (const m of [pair.alice, pair.bob]) {
      const s = await streamState(m, id);
      expect(s.halted!.reason).toMatch(/key confirmation failed/);
      expect([s.nextIndex, s.available]).toEqual([0, 0]); // nothing became deliverable at either end
    }
    expect(pair.bob.output()).toMatch(/key stream halted/);

    tamper = false;
    await until(async () => (await streamState(pair.bob, id)).available > 0 && (await streamState(pair.alice, id)).halted === null, 15_000, 'resume');
    expect((await streamState(pair.bob, id)).halted).toBeNull();
    const delivered = await takeBoth(pair, id, 25);
    delivered.forEach(([a, b], i) => {
      expect([a.status, b.status, a.index, b.index]).toEqual([0, 0, i, i]);
      expect(b.key).toBe(a.key);
    });
  });
});
