/**
 * Sealing of peer messages (src/exchange/auth/sessionCipher.ts): AES-256-GCM with associated data that
 * binds session, sequence number, method and path (requests) or status (answers), and the replay window.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { answerAad, open, ReplayWindow, requestAad, seal, TAG_BYTES, type Sealed } from '../../../src/exchange/auth/sessionCipher.js';

const KEY = new Uint8Array(randomBytes(32));
const SESSION = 'AAAAAAAAAAAAAAAAAAAAAA';
const PLAIN = Buffer.from(JSON.stringify({ keyStreamId: 'k', keys: ['c2VjcmV0'] }), 'utf8');

function flipBit(buf: Buffer, index: number): Buffer {
  const copy = Buffer.from(buf);
  copy[index]! ^= 0x01;
  return copy;
}

describe('seal / open', () => {
  it('when a request is sealed and opened with the same key, seq and associated data, then the plaintext comes back', () => {
    const aad = requestAad(SESSION, 7, 'POST', '/peer/round');
    const sealed = seal(KEY, 'request', 7, aad, PLAIN);
    expect(sealed.tag.length).toBe(TAG_BYTES);
    expect(sealed.ciphertext.length).toBe(PLAIN.length);
    expect(sealed.ciphertext.equals(PLAIN)).toBe(false);
    expect(open(KEY, 'request', 7, aad, sealed)?.equals(PLAIN)).toBe(true);
  });

  it('when an answer is sealed and opened with the same status, then the plaintext comes back', () => {
    const sealed = seal(KEY, 'answer', 3, answerAad(SESSION, 3, 200), PLAIN);
    expect(open(KEY, 'answer', 3, answerAad(SESSION, 3, 200), sealed)?.equals(PLAIN)).toBe(true);
  });

  it('when an empty body is sealed (GET), then it opens to an empty buffer and its tag still authenticates', () => {
    const aad = requestAad(SESSION, 1, 'GET', '/sync?key_handle=x');
    const sealed = seal(KEY, 'request', 1, aad, Buffer.alloc(0));
    expect(sealed.ciphertext.length).toBe(0);
    expect(open(KEY, 'request', 1, aad, sealed)?.length).toBe(0);
    expect(open(KEY, 'request', 1, requestAad(SESSION, 1, 'GET', '/sync?key_handle=y'), sealed)).toBeUndefined();
  });

  it('when the method is given in lower case, then the associated data is the same as in upper case', () => {
    expect(requestAad(SESSION, 1, 'post', '/start').equals(requestAad(SESSION, 1, 'POST', '/start'))).toBe(true);
  });

  it('when the same plaintext is sealed under two sequence numbers, then the ciphertexts differ (distinct nonces)', () => {
    const a = seal(KEY, 'request', 1, requestAad(SESSION, 1, 'POST', '/start'), PLAIN);
    const b = seal(KEY, 'request', 2, requestAad(SESSION, 2, 'POST', '/start'), PLAIN);
    expect(a.ciphertext.equals(b.ciphertext)).toBe(false);
  });

  describe('tampering', () => {
    const seq = 42;
    const aad = requestAad(SESSION, seq, 'POST', '/peer/round');
    const sealed = seal(KEY, 'request', seq, aad, PLAIN);

    it('when nothing is changed, then it opens (control for the cases below)', () => {
      expect(open(KEY, 'request', seq, aad, sealed)?.equals(PLAIN)).toBe(true);
    });

    it('when one ciphertext bit is flipped (first, middle or last byte), then open gives undefined', () => {
      for (const i of [0, Math.floor(PLAIN.length / 2), PLAIN.length - 1]) {
        expect(open(KEY, 'request', seq, aad, { ciphertext: flipBit(sealed.ciphertext, i), tag: sealed.tag })).toBeUndefined();
      }
    });

    it('when the ciphertext is truncated or extended, then open gives undefined', () => {
      expect(open(KEY, 'request', seq, aad, { ciphertext: sealed.ciphertext.subarray(0, -1), tag: sealed.tag })).toBeUndefined();
      expect(open(KEY, 'request', seq, aad, { ciphertext: Buffer.concat([sealed.ciphertext, Buffer.from([0])]), tag: sealed.tag })).toBeUndefined();
    });

    it('when one tag bit is flipped, then open gives undefined', () => {
      expect(open(KEY, 'request', seq, aad, { ciphertext: sealed.ciphertext, tag: flipBit(sealed.tag, 0) })).toBeUndefined();
      expect(open(KEY, 'request', seq, aad, { ciphertext: sealed.ciphertext, tag: flipBit(sealed.tag, TAG_BYTES - 1) })).toBeUndefined();
    });

    it('when the tag is truncated (a short GCM tag) or empty, then open gives undefined', () => {
      expect(open(KEY, 'request', seq, aad, { ciphertext: sealed.ciphertext, tag: sealed.tag.subarray(0, 12) })).toBeUndefined();
      expect(open(KEY, 'request', seq, aad, { ciphertext: sealed.ciphertext, tag: Buffer.alloc(0) })).toBeUndefined();
    });

    it('when the associated data names another sequence number, then open gives undefined', () => {
      expect(open(KEY, 'request', seq, requestAad(SESSION, seq + 1, 'POST', '/peer/round'), sealed)).toBeUndefined();
      // The nonce follows seq too: the right AAD under another nonce fails as well.
      expect(open(KEY, 'request', seq + 1, aad, sealed)).toBeUndefined();
    });

    it('when the associated data names another path or query, then open gives undefined', () => {
      expect(open(KEY, 'request', seq, requestAad(SESSION, seq, 'POST', '/peer/confirm'), sealed)).toBeUndefined();
      expect(open(KEY, 'request', seq, requestAad(SESSION, seq, 'POST', '/peer/round?x=1'), sealed)).toBeUndefined();
    });

    it('when the associated data names another method, then open gives undefined', () => {
      expect(open(KEY, 'request', seq, requestAad(SESSION, seq, 'GET', '/peer/round'), sealed)).toBeUndefined();
    });

    it('when the associated data names another session, then open gives undefined', () => {
      expect(open(KEY, 'request', seq, requestAad('BBBBBBBBBBBBBBBBBBBBBB', seq, 'POST', '/peer/round'), sealed)).toBeUndefined();
    });

    it('when opened with another key, then open gives undefined', () => {
      expect(open(new Uint8Array(randomBytes(32)), 'request', seq, aad, sealed)).toBeUndefined();
    });

    it('when a request is opened as an answer (other direction, same seq and AAD), then open gives undefined', () => {
      expect(open(KEY, 'answer', seq, aad, sealed)).toBeUndefined();
    });

    it('when an answer is opened with another HTTP status, then open gives undefined', () => {
      const answer: Sealed = seal(KEY, 'answer', seq, answerAad(SESSION, seq, 200), PLAIN);
      expect(open(KEY, 'answer', seq, answerAad(SESSION, seq, 200), answer)?.equals(PLAIN)).toBe(true);
      expect(open(KEY, 'answer', seq, answerAad(SESSION, seq, 409), answer)).toBeUndefined();
      expect(open(KEY, 'answer', seq, answerAad(SESSION, seq + 1, 200), answer)).toBeUndefined();
      expect(open(KEY, 'answer', seq, answerAad('BBBBBBBBBBBBBBBBBBBBBB', seq, 200), answer)).toBeUndefined();
      expect(open(KEY, 'request', seq, answerAad(SESSION, seq, 200), answer)).toBeUndefined();
    });

    it('when a sealed request is presented as an answer with the request AAD swapped in, then open gives undefined', () => {
      // Request and answer associated data have different labels: a request cannot pass as an answer.
      expect(open(KEY, 'request', seq, answerAad(SESSION, seq, 200), sealed)).toBeUndefined();
    });
  });
});

describe('ReplayWindow', () => {
  /** check + accept, as the server does for an authenticated message. */
  function take(w: ReplayWindow, seq: number): boolean {
    if (!w.check(seq)) return false;
    w.accept(seq);
    return true;
  }

  it('when numbers arrive in order, then each is accepted once and refused the second time', () => {
    const w = new ReplayWindow();
    for (let seq = 1; seq <= 100; seq++) expect(take(w, seq)).toBe(true);
    for (let seq = 1; seq <= 100; seq++) expect(take(w, seq)).toBe(false);
  });

  it('when check is called without accept, then the number stays acceptable (check does not record)', () => {
    const w = new ReplayWindow();
    expect(w.check(5)).toBe(true);
    expect(w.check(5)).toBe(true);
    w.accept(5);
    expect(w.check(5)).toBe(false);
  });

  it('when numbers arrive out of order within the window, then each is accepted exactly once', () => {
    const w = new ReplayWindow(64);
    const order = [10, 3, 7, 1, 2, 9, 4, 8, 5, 6];
    for (const seq of order) expect(take(w, seq)).toBe(true);
    for (const seq of order) expect(take(w, seq)).toBe(false);
    expect(take(w, 11)).toBe(true);
  });

  it('when a number is skipped and arrives later but still inside the window, then it is accepted once', () => {
    const w = new ReplayWindow(16);
    expect(take(w, 1)).toBe(true);
    expect(take(w, 16)).toBe(true); // 2..15 skipped; 16 - 2 = 14 < 16: still in the window
    expect(take(w, 2)).toBe(true);
    expect(take(w, 2)).toBe(false);
    expect(take(w, 15)).toBe(true);
    expect(take(w, 15)).toBe(false);
  });

  it('when a number is exactly `size` below the highest, then it is refused; one above that is accepted', () => {
    const w = new ReplayWindow(16);
    expect(take(w, 100)).toBe(true);
    expect(w.check(84)).toBe(false); // 100 - 84 = 16 >= size
    expect(w.check(83)).toBe(false); // never seen, 17 below: outside the window
    expect(w.check(50)).toBe(false);
    expect(w.check(85)).toBe(true); // 15 below: in the window, never seen
    expect(take(w, 85)).toBe(true);
    expect(take(w, 85)).toBe(false);
  });

  it('when numbers fall out of the window as the highest advances, then they are refused (even never seen ones)', () => {
    const w = new ReplayWindow(8);
    expect(take(w, 1)).toBe(true);
    expect(take(w, 3)).toBe(true);
    expect(take(w, 20)).toBe(true);
    expect(take(w, 2)).toBe(false); // never seen, but too old
    expect(take(w, 3)).toBe(false);
    expect(take(w, 12)).toBe(false); // 20 - 12 = 8
    expect(take(w, 13)).toBe(true);
  });

  it('when the highest jumps by more than the window, then the slots of old numbers do not block new ones', () => {
    const w = new ReplayWindow(8);
    for (let seq = 1; seq <= 8; seq++) expect(take(w, seq)).toBe(true);
    expect(take(w, 1000)).toBe(true);
    // 993..999 share slots with 1..8 (mod 8); they were never seen and must be accepted once.
    for (let seq = 993; seq < 1000; seq++) expect(take(w, seq)).toBe(true);
    for (let seq = 993; seq <= 1000; seq++) expect(take(w, seq)).toBe(false);
  });

  it('when the highest advances by less than the window, then the slots it passes over are freed but the ones still inside are kept', () => {
    const w = new ReplayWindow(8);
    for (let seq = 1; seq <= 6; seq++) expect(take(w, seq)).toBe(true);
    expect(take(w, 10)).toBe(true); // 9 and 10 reuse the slots of 1 and 2 (too old now anyway)
    expect(take(w, 9)).toBe(true);
    expect(take(w, 3)).toBe(false); // 10 - 3 = 7 < 8: in the window, and already seen
    expect(take(w, 6)).toBe(false);
    expect(take(w, 7)).toBe(true);
    expect(take(w, 8)).toBe(true);
  });

  it('when the default window (4096) sees 5000 numbers out of order by up to 100, then none is refused and none accepted twice', () => {
    const w = new ReplayWindow();
    const seqs = Array.from({ length: 5000 }, (_, i) => i + 1);
    for (let i = 0; i < seqs.length; i += 100) seqs.splice(i, 100, ...seqs.slice(i, i + 100).reverse());
    for (const seq of seqs) expect(take(w, seq)).toBe(true);
    let again = 0;
    for (const seq of seqs) if (take(w, seq)) again++;
    expect(again).toBe(0);
  });

  it('when 0, negative, non-integer, NaN, infinite or unsafe numbers are checked, then they are refused', () => {
    const w = new ReplayWindow();
    for (const bad of [0, -1, -4096, 1.5, 0.999, Number.NaN, Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER + 1, 2 ** 64]) {
      expect(w.check(bad)).toBe(false);
    }
    expect(w.check(Number.MAX_SAFE_INTEGER)).toBe(true);
  });
});
