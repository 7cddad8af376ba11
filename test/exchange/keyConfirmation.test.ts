/**
 * Key confirmation tags (src/exchange/keyConfirmation.ts): HMAC-SHA256 under a per-round seed over the
 * round's context and keys, with the role in the input.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { confirmationTag, tagMatches, type ConfirmationContext } from '../../src/exchange/keyConfirmation.js';

const SEED = new Uint8Array(randomBytes(32));
const CTX: ConfirmationContext = { keyStreamId: '3f2a9c1e-0000-4000-8000-000000000001', roundId: 'round-7', firstIndex: 128, keyLengthBits: 256 };
const KEYS = Array.from({ length: 4 }, () => new Uint8Array(randomBytes(32)));

const copyKeys = (keys: readonly Uint8Array[]): Uint8Array[] => keys.map((k) => Uint8Array.from(k));

describe('confirmationTag', () => {
  it('when computed twice for the same seed, role, context and keys (other buffers, same bytes), then the tags are equal 32-byte HMACs', () => {
    const a = confirmationTag(SEED, 'sender', CTX, KEYS);
    const b = confirmationTag(Uint8Array.from(SEED), 'sender', { ...CTX }, copyKeys(KEYS));
    expect(a.length).toBe(32);
    expect(a.equals(b)).toBe(true);
  });

  it('when computed, then it is HMAC-SHA256 under the seed over the documented input (an independent implementation agrees)', () => {
    const mac = createHmac('sha256', SEED);
    mac.update(`qkdm/key-confirmation/v1\0receiver\0${CTX.keyStreamId}\0${CTX.roundId}\0${CTX.firstIndex}\0${KEYS.length}\0${CTX.keyLengthBits}\0`);
    for (const k of KEYS) mac.update(k);
    expect(confirmationTag(SEED, 'receiver', CTX, KEYS).equals(mac.digest())).toBe(true);
  });

  it('when a single bit of any key is flipped (first bit of the first key, last bit of the last key), then the tag differs', () => {
    const base = confirmationTag(SEED, 'sender', CTX, KEYS);
    for (const [k, byte, bit] of [[0, 0, 0x80], [KEYS.length - 1, 31, 0x01], [2, 15, 0x10]] as const) {
      const keys = copyKeys(KEYS);
      keys[k]![byte]! ^= bit;
      expect(confirmationTag(SEED, 'sender', CTX, keys).equals(base)).toBe(false);
    }
  });

  it('when the roles differ, then the tags differ (the receiver cannot echo the sender\'s tag)', () => {
    expect(confirmationTag(SEED, 'sender', CTX, KEYS).equals(confirmationTag(SEED, 'receiver', CTX, KEYS))).toBe(false);
  });

  it('when the seed differs (even by one bit), then the tags differ', () => {
    const seed = Uint8Array.from(SEED);
    seed[31]! ^= 0x01;
    const base = confirmationTag(SEED, 'sender', CTX, KEYS);
    expect(confirmationTag(seed, 'sender', CTX, KEYS).equals(base)).toBe(false);
    expect(confirmationTag(new Uint8Array(randomBytes(32)), 'sender', CTX, KEYS).equals(base)).toBe(false);
  });

  it('when firstIndex, roundId or keyStreamId differ, then the tags differ', () => {
    const base = confirmationTag(SEED, 'sender', CTX, KEYS);
    const variants: ConfirmationContext[] = [
      { ...CTX, firstIndex: CTX.firstIndex + 1 },
      { ...CTX, firstIndex: 0 },
      { ...CTX, roundId: 'round-8' },
      { ...CTX, keyStreamId: '3f2a9c1e-0000-4000-8000-000000000002' },
    ];
    const tags = variants.map((ctx) => confirmationTag(SEED, 'sender', ctx, KEYS).toString('hex'));
    for (const t of tags) expect(t).not.toBe(base.toString('hex'));
    expect(new Set(tags).size).toBe(tags.length);
  });

  it('when a key does not have the length the context states, then no tag is computed', () => {
    expect(() => confirmationTag(SEED, 'sender', { ...CTX, keyLengthBits: CTX.keyLengthBits * 2 }, KEYS)).toThrow(/every key must be/);
    expect(() => confirmationTag(SEED, 'sender', CTX, [...KEYS.slice(1), KEYS[0]!.subarray(1)])).toThrow(/every key must be/);
  });

  it('when fields are shifted across the separators (roundId "1" firstIndex 23 vs roundId "12" firstIndex 3), then the tags differ', () => {
    const a = confirmationTag(SEED, 'sender', { ...CTX, roundId: '1', firstIndex: 23 }, KEYS);
    const b = confirmationTag(SEED, 'sender', { ...CTX, roundId: '12', firstIndex: 3 }, KEYS);
    expect(a.equals(b)).toBe(false);
  });

  it('when a key is dropped, added or the keys are reordered, then the tags differ', () => {
    const base = confirmationTag(SEED, 'sender', CTX, KEYS);
    expect(confirmationTag(SEED, 'sender', CTX, KEYS.slice(0, -1)).equals(base)).toBe(false);
    expect(confirmationTag(SEED, 'sender', CTX, [...KEYS, new Uint8Array(32)]).equals(base)).toBe(false);
    expect(confirmationTag(SEED, 'sender', CTX, [KEYS[1]!, KEYS[0]!, ...KEYS.slice(2)]).equals(base)).toBe(false);
  });

  it('when a round has no keys, then the tag still depends on the context', () => {
    expect(confirmationTag(SEED, 'sender', CTX, []).equals(confirmationTag(SEED, 'sender', { ...CTX, roundId: 'other' }, []))).toBe(false);
  });
});

describe('tagMatches', () => {
  const tag = confirmationTag(SEED, 'receiver', CTX, KEYS);

  it('when the received base64 is the tag, then it matches', () => {
    expect(tagMatches(tag, tag.toString('base64'))).toBe(true);
  });

  it('when the received tag differs in one bit, then it does not match', () => {
    const other = Buffer.from(tag);
    other[0]! ^= 0x01;
    expect(tagMatches(tag, other.toString('base64'))).toBe(false);
  });

  it('when the received tag has the wrong length (truncated, extended, empty), then it does not match (and does not throw)', () => {
    expect(tagMatches(tag, tag.subarray(0, 31).toString('base64'))).toBe(false);
    expect(tagMatches(tag, tag.subarray(0, 16).toString('base64'))).toBe(false);
    expect(tagMatches(tag, Buffer.concat([tag, Buffer.from([0])]).toString('base64'))).toBe(false);
    expect(tagMatches(tag, '')).toBe(false);
  });

  it('when nothing (undefined) or a non-string is received, then it does not match', () => {
    expect(tagMatches(tag, undefined)).toBe(false);
    expect(tagMatches(tag, null as unknown as string)).toBe(false);
    expect(tagMatches(tag, 42 as unknown as string)).toBe(false);
  });

  it('when the other role\'s tag is received, then it does not match', () => {
    expect(tagMatches(tag, confirmationTag(SEED, 'sender', CTX, KEYS).toString('base64'))).toBe(false);
  });

  it('when the received text is hex of the tag instead of base64, then it does not match', () => {
    expect(tagMatches(tag, tag.toString('hex'))).toBe(false);
  });
});
