/**
 * The transcript hash against the implementation it replaced (kept below verbatim as the reference): the same digest
 * for every sequence of records, payloads with long base64 strings, escapes, control characters and non-ASCII text.
 */
import { createHash, type Hash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { randomBelow, seededRng, type Rng } from '../../../../src/sim/bb84/common/rng.js';
import { canonicalJson, canonicalJsonParts, Transcript, TRANSCRIPT_LABEL, type TranscriptHeader } from '../../../../src/sim/bb84/protocol/transcript.js';

// ---- the reference: transcript.ts before plain strings were hashed as latin1 -----------------------------------------

const MAX_DEPTH = 8;
const NEEDS_ESCAPING = /["\\\u0000-\u001f\u007f-\uffff]/;

function referenceParts(value: unknown): string[] {
  const out: string[] = [];
  const walk = (v: unknown, depth: number): void => {
    if (depth > MAX_DEPTH) throw new TypeError('canonicalJson: nested too deeply');
    if (v === null) {
      out.push('null');
      return;
    }
    switch (typeof v) {
      case 'string':
        if (NEEDS_ESCAPING.test(v)) out.push(JSON.stringify(v));
        else out.push('"', v, '"');
        return;
      case 'boolean':
        out.push(v ? 'true' : 'false');
        return;
      case 'number':
        if (!Number.isFinite(v)) throw new TypeError('canonicalJson: numbers must be finite');
        out.push(JSON.stringify(v));
        return;
      case 'object': {
        if (Array.isArray(v)) {
          out.push('[');
          v.forEach((item, i) => {
            if (i > 0) out.push(',');
            walk(item === undefined ? null : item, depth + 1);
          });
          out.push(']');
          return;
        }
        const obj = v as Record<string, unknown>;
        const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
        out.push('{');
        keys.forEach((k, i) => {
          out.push(i > 0 ? ',' : '', JSON.stringify(k), ':');
          walk(obj[k], depth + 1);
        });
        out.push('}');
        return;
      }
      default:
        throw new TypeError(`canonicalJson: cannot encode a ${typeof v}`);
    }
  };
  walk(value, 0);
  return out;
}

function lengthPrefix(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

class ReferenceTranscript {
  private readonly hash: Hash = createHash('sha256');
  constructor(header: TranscriptHeader) {
    this.record(1, [TRANSCRIPT_LABEL, header.keyStreamId, String(header.firstIndex), String(header.keyLengthBits), String(header.maxKeys)]);
  }
  message(from: 'alice' | 'bob', step: string, payload: unknown): this {
    return this.record(from === 'alice' ? 2 : 3, [step, referenceParts(payload)]);
  }
  nonces(nonceA: Uint8Array, nonceB: Uint8Array): this {
    return this.record(4, [nonceA, nonceB]);
  }
  digest(): Buffer {
    return this.hash.copy().digest();
  }
  private record(type: number, fields: (Uint8Array | string | string[])[]): this {
    this.hash.update(Uint8Array.of(type));
    this.hash.update(lengthPrefix(fields.length));
    for (const f of fields) {
      if (typeof f === 'string' || Array.isArray(f)) {
        const parts = typeof f === 'string' ? [f] : f;
        let bytes = 0;
        for (const part of parts) bytes += Buffer.byteLength(part, 'utf8');
        this.hash.update(lengthPrefix(bytes));
        for (const part of parts) this.hash.update(part, 'utf8');
      } else {
        this.hash.update(lengthPrefix(f.length));
        this.hash.update(f);
      }
    }
    return this;
  }
}

// ---- random payloads --------------------------------------------------------------------------------------------------

const SPECIAL = ['"', '\\', '\n', '\u0000', '\u001f', '\u007f', '\u0080', 'é', '€', '\u2028', '\ud800', '\udc00', '😀', '\uffff', ' ', '~', '/'];
const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function randomString(rng: Rng): string {
  const long = randomBelow(rng, 3) === 0;
  const n = long ? 1000 + randomBelow(rng, 5000) : randomBelow(rng, 40);
  let s = '';
  for (let i = 0; i < n; i++) s += BASE64[randomBelow(rng, 64)];
  if (n > 0 && randomBelow(rng, 2) === 0) s += '=';
  // Sometimes one or a few characters that need escaping or are not ASCII, anywhere (first, last, middle).
  for (let t = randomBelow(rng, 4) === 0 ? 1 + randomBelow(rng, 3) : 0; t > 0; t--) {
    const at = [0, s.length, randomBelow(rng, s.length + 1)][randomBelow(rng, 3)]!;
    s = s.slice(0, at) + SPECIAL[randomBelow(rng, SPECIAL.length)]! + s.slice(at);
  }
  return s;
}

function randomValue(rng: Rng, depth: number): unknown {
  switch (randomBelow(rng, depth > 3 ? 6 : 9)) {
    case 0:
      return null;
    case 1:
      return randomBelow(rng, 2) === 0;
    case 2:
      return [0, -0, 1.5, -3e-7, 2 ** 53, 123456789, 1e21][randomBelow(rng, 7)];
    case 3:
    case 4:
    case 5:
      return randomString(rng);
    case 6:
      return Array.from({ length: randomBelow(rng, 4) }, () => (randomBelow(rng, 8) === 0 ? undefined : randomValue(rng, depth + 1)));
    default: {
      const o: Record<string, unknown> = {};
      for (let k = randomBelow(rng, 5); k > 0; k--) o[randomBelow(rng, 4) === 0 ? randomString(rng) : `k${randomBelow(rng, 10)}`] = randomBelow(rng, 10) === 0 ? undefined : randomValue(rng, depth + 1);
      return o;
    }
  }
}

describe('transcript hash against the replaced implementation', () => {
  it('when random payloads are recorded, then the canonical text and every digest are those of the reference', () => {
    const rng = seededRng(201);
    for (let round = 0; round < 60; round++) {
      const header = { keyStreamId: randomString(rng), firstIndex: randomBelow(rng, 1000), keyLengthBits: 8192, maxKeys: 3 };
      const t = new Transcript(header);
      const ref = new ReferenceTranscript(header);
      expect(t.digest().equals(ref.digest())).toBe(true);
      for (let m = 0; m < 8; m++) {
        const payload = randomBelow(rng, 5) === 0 ? randomValue(rng, 0) : { bits: randomString(rng), n: randomBelow(rng, 100), more: randomValue(rng, 1), text: randomString(rng) };
        const step = randomBelow(rng, 6) === 0 ? randomString(rng) : 'frame';
        expect(canonicalJson(payload)).toBe(referenceParts(payload).join(''));
        expect(canonicalJsonParts(payload).join('')).toBe(referenceParts(payload).join(''));
        const from = randomBelow(rng, 2) === 0 ? 'alice' : 'bob';
        t.message(from, step, payload);
        ref.message(from, step, payload);
        if (randomBelow(rng, 4) === 0) {
          const a = Uint8Array.from({ length: 16 }, () => randomBelow(rng, 256));
          t.nonces(a, a.slice().reverse());
          ref.nonces(a, a.slice().reverse());
        }
        expect(t.digest().equals(ref.digest()), `round ${round} message ${m}`).toBe(true);
      }
    }
  });

  it('when a payload holds long base64 strings or a lone long string, then the digest is the reference one', () => {
    const rng = seededRng(202);
    const long = (n: number): string => Buffer.from(Uint8Array.from({ length: n }, () => randomBelow(rng, 256))).toString('base64');
    const payloads: unknown[] = [
      { states: long(206_000), bases: long(206_000), intensities: long(275_000), pulses: 175e6, nonceA: long(16) },
      long(5000),
      [long(3000), long(3000)],
      { a: `${long(3000)}"` },
      { a: `${long(3000)}é` },
      { a: `\u0000${long(3000)}` },
      { a: 'x'.repeat(1023) },
      { a: 'x'.repeat(1024) },
      {},
      [],
      '',
    ];
    for (const p of payloads) {
      const t = new Transcript({ keyStreamId: 's', firstIndex: 1, keyLengthBits: 1, maxKeys: 1 }).message('alice', 'frame', p);
      const ref = new ReferenceTranscript({ keyStreamId: 's', firstIndex: 1, keyLengthBits: 1, maxKeys: 1 }).message('alice', 'frame', p);
      expect(t.digest().equals(ref.digest())).toBe(true);
      expect(canonicalJson(p)).toBe(referenceParts(p).join(''));
    }
  });

  it('when a payload cannot be encoded, then the same TypeError as before', () => {
    const deep: unknown[] = [];
    let v: unknown[] = deep;
    for (let i = 0; i < 10; i++) {
      const next: unknown[] = [];
      v.push(next);
      v = next;
    }
    for (const bad of [{ x: Number.NaN }, { x: Infinity }, { f: () => 1 }, { s: Symbol('s') }, { b: 1n }, deep]) {
      const t = new Transcript({ keyStreamId: 's', firstIndex: 1, keyLengthBits: 1, maxKeys: 1 });
      let want = '';
      try {
        referenceParts(bad);
      } catch (err) {
        want = (err as Error).message;
      }
      expect(want).not.toBe('');
      expect(() => t.message('bob', 'x', bad)).toThrow(new TypeError(want));
    }
  });
});
