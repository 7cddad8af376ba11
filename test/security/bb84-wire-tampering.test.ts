/**
 * An attacker on the BB84 classical channel rewrites the big base64 fields into texts that Node's own base64
 * decoder would still accept and decode to the same bytes (URL-safe characters, line breaks, missing padding,
 * trailing junk), or into the bytes of another value. The wire codec hands checked texts to that lenient
 * decoder (protocol/wire.ts canonicalBase64Into), so this is what must never get through: each altered
 * message is refused by the end that receives it, naming the step and the field, and the round gives no key.
 * The long bit fields travel as lists of base64 chunks (wire.ts bytesToChunks): the attacker also re-cuts the list
 * (the same characters split elsewhere, an empty chunk added, one text instead of a list), which a receiver that
 * joined the chunks before decoding would accept.
 */
import { describe, expect, it } from 'vitest';
import { ONE_ROUND_PA, pairOf, params, runRound, type Attack, type Json } from '../sim/bb84/simulator/harness.js';

/** Variants of a canonical base64 text that Buffer.from(text, 'base64') decodes to the same bytes (or a prefix). */
function lenientVariants(text: string): Record<string, string> {
  const i = text.search(/[+/]/); // a character the URL-safe alphabet writes differently
  const urlSafe = i >= 0 ? text.slice(0, i) + (text[i] === '+' ? '-' : '_') + text.slice(i + 1) : `${text.slice(0, -4)}-${text.slice(-3)}`;
  return {
    'URL-safe character': urlSafe,
    'line break inside': `${text.slice(0, 8)}\n${text.slice(8)}`,
    // Padding removed where there is some, added where there is none: Node decodes either to the same bytes.
    'padding altered': text.endsWith('=') ? text.replace(/=+$/, '') : `${text}==`,
    'junk after the end': `${text}!!!!`,
    'space inside': `${text.slice(0, 4)} ${text.slice(4)}`,
  };
}

type Field = string | string[];

/**
 * Variants of a field: of a text, lenientVariants; of a chunk list, those of its last chunk (the one that may be
 * padded) and the list cut differently. Each decodes, leniently and joined, to bytes.
 */
function variantsOf(field: Field): Record<string, Field> {
  if (typeof field === 'string') return lenientVariants(field);
  expect(field.length).toBeGreaterThan(0);
  const init = field.slice(0, -1);
  const last = field[field.length - 1]!;
  const out: Record<string, Field> = {};
  for (const [how, text] of Object.entries(lenientVariants(last))) out[`last chunk: ${how}`] = [...init, text];
  out['one text instead of a list'] = field.join('');
  out['the same characters cut at another place'] = [...init, last.slice(0, 4), last.slice(4)];
  out['an empty chunk added'] = [...field, ''];
  out['the last chunk repeated'] = [...field, last];
  return out;
}

const leniently = (field: Field): Buffer => Buffer.concat((typeof field === 'string' ? [field] : field).map((t) => Buffer.from(t, 'base64')));
const firstText = (field: Field): string => (typeof field === 'string' ? field : field[0]!);

/** Rewrites `field` of the first message of `step` with `value`; everything else passes. */
function rewrite(step: string, field: string, value: (original: Field) => Field): Attack {
  return async (s, payload, deliver, occurrence) => {
    if (s === step && occurrence === 1) return deliver(s, { ...payload, [field]: value(payload[field] as Field) } as Json);
    return deliver(s, payload);
  };
}

/** Rewrites `field` of Bob's first reply to `step`. */
function rewriteReply(step: string, field: string, value: (original: Field) => Field): Attack {
  return async (s, payload, deliver, occurrence) => {
    const reply = await deliver(s, payload);
    if (s === step && occurrence === 1) return { ...reply, [field]: value(reply[field] as Field) };
    return reply;
  };
}

describe('an attacker rewrites the BB84 messages base64 fields into texts a lenient decoder accepts, or re-cuts their chunks', () => {
  const cases: [string, string][] = [
    ['frame', 'states'],
    ['frame', 'bases'],
    ['frame', 'intensities'],
    ['sift', 'mask'],
    ['sift', 'intensities'],
    ['phase', 'bits'],
    ['parities', 'questions'],
  ];
  for (const [step, field] of cases) {
    it(`when Alice's ${step}.${field} is rewritten, then Bob refuses the ${step} naming ${field} and neither end keeps a key`, async () => {
      const probe = pairOf(ONE_ROUND_PA);
      const honestRound = await runRound(probe.alice, probe.bob, params(1));
      const original = honestRound.sent.get(step)![field] as Field;
      // Cascade's questions are one text per message; every bit field is a list of chunks.
      expect(typeof original === 'string').toBe(step === 'parities');
      for (const [how, text] of Object.entries(variantsOf(original))) {
        expect(text, how).not.toEqual(original);
        // Node's decoder takes the text: only the module's own check stands between it and the protocol.
        expect(leniently(text).length, how).toBeGreaterThan(0);
        const { alice, bob } = pairOf(ONE_ROUND_PA);
        const r = await runRound(alice, bob, params(1), rewrite(step, field, () => text));
        expect(r.aliceError, `${how}: the round must fail`).toBeDefined();
        expect(r.aliceError!.message, how).toMatch(new RegExp(`${step}\\b`));
        expect(r.aliceError!.message, how).toMatch(step === 'parities' ? /questions/ : new RegExp(field));
        expect(r.alice?.keys ?? [], how).toHaveLength(0);
        expect(r.bob?.keys ?? [], how).toHaveLength(0);
        // The refusal names the field, never its value.
        expect(r.aliceError!.message.includes(firstText(text).slice(0, 24)), how).toBe(false);
      }
    });
  }

  it("when Bob's frame reply (his bases) is rewritten, then Alice refuses it naming bases and no key is made", async () => {
    const probe = pairOf(ONE_ROUND_PA);
    const bases = await new Promise<Field>((resolve, reject) => {
      runRound(probe.alice, probe.bob, params(1), rewriteReply('frame', 'bases', (b) => (resolve(b), b))).catch(reject);
    });
    expect(Array.isArray(bases)).toBe(true);
    for (const [how, text] of Object.entries(variantsOf(bases))) {
      expect(text, how).not.toEqual(bases);
      const { alice, bob } = pairOf(ONE_ROUND_PA);
      const r = await runRound(alice, bob, params(1), rewriteReply('frame', 'bases', () => text));
      expect(r.aliceError, how).toBeDefined();
      expect(r.aliceError!.message, how).toMatch(/frame reply.*bases/);
      expect(r.alice?.keys ?? [], how).toHaveLength(0);
    }
  });
});
