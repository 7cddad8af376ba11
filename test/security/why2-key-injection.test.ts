/**
 * Issue 14, "Why" 2: /peer/round + /peer/commit injected a key of the attacker's choosing at Bob, which
 * Bob then delivered to its application.
 *
 * Answer: the attacker has no session (POST /peer/hello needs the link's signing key), so neither a
 * round, a confirmation, nor the old commit reaches Bob's exchange; a sealed-looking forgery fails the
 * session check. Bob delivers only keys confirmed with Alice.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { attackerPost, attackerSealedPost, getKey, openStream, startPair, streamState, type Pair } from './support.js';

let pairs: Pair[] = [];
afterEach(async () => {
  await Promise.all(pairs.flatMap((p) => [p.alice.kill('SIGKILL'), p.bob.kill('SIGKILL')]));
  pairs = [];
});

describe('Why 2: /peer/round + /peer/commit inject a chosen key at Bob', () => {
  it('when the attacker sends a whole round, its confirmation and a commit for the next index, then Bob refuses all of it and its application only gets the key Alice has', async () => {
    const pair = await startPair({ maxKeyCount: 5 });
    pairs.push(pair);
    const id = await openStream(pair);
    const first = await Promise.all([getKey(pair.alice, id), getKey(pair.bob, id)]);
    expect(first[1].key).toBe(first[0].key);
    const before = await streamState(pair.bob, id);

    const chosen = Buffer.alloc(32, 0x41);
    const roundId = randomUUID();
    const round = {
      keyStreamId: id,
      roundId,
      roundSeq: Date.now() * 1000 + 1e9,
      firstIndex: before.nextIndex,
      keyLengthBits: 256,
      maxKeys: 1,
      step: 'keys',
      payload: { keys: [chosen.toString('base64')] },
    };
    const answers = [
      await attackerPost(pair.bob, '/peer/round', round),
      await attackerPost(pair.bob, '/peer/confirm', { keyStreamId: id, roundId, firstIndex: before.nextIndex, count: 1, seed: chosen.toString('base64'), tag: chosen.toString('base64') }),
      await attackerPost(pair.bob, '/peer/commit', { keyStreamId: id, committedUpTo: before.nextIndex + 1 }),
      await attackerSealedPost(pair.bob, '/peer/round', Buffer.from(JSON.stringify(round))),
      await attackerSealedPost(pair.bob, '/peer/confirm', Buffer.from('{}')),
    ];
    expect(answers.map((a) => a.status)).toEqual([401, 401, 401, 401, 401]);
    expect(answers.map((a) => a.body.code)).toEqual(['PEER_AUTH_REQUIRED', 'PEER_AUTH_REQUIRED', 'PEER_AUTH_REQUIRED', 'PEER_SESSION_UNKNOWN', 'PEER_SESSION_UNKNOWN']);

    // Bob's counter only moved by Alice's confirmed rounds, and every key Bob hands out is Alice's.
    const chosenHex = chosen.toString('hex');
    for (let i = 1; i < 12; i++) {
      const [a, b] = await Promise.all([getKey(pair.alice, id), getKey(pair.bob, id)]);
      expect([a.status, b.status, a.index, b.index]).toEqual([0, 0, i, i]);
      expect(b.key).toBe(a.key);
      expect(b.key).not.toBe(chosenHex);
    }
  });
});
