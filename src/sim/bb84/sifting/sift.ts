/**
 * Stage 3: sifting. Bob announces which pulses he detected and, for those, the bases he measured in; Alice replies
 * with the mask of detected pulses whose bases match hers. Both keep the bits of the matching pulses, in pulse order.
 * Bits are never revealed, only bases, so sifting leaks nothing about the key.
 *
 *   Bob -> Alice: SiftRequest { pulses, detected (per pulse), bases (per detected pulse) }  = bobSiftRequest(...)
 *   Alice -> Bob: SiftReply   { match (per detected pulse) }                                = aliceSiftReply(...)
 *   Alice: siftAlice(aliceBits, request, reply)      Bob: siftBob(bobBits, detected, reply)
 *
 * `sift(...)` runs both messages in one process and returns Alice's sifted key and the kept-pulse mask.
 */
import { compressBits } from '../common/bitSelect.js';
import { BitArray } from '../common/bits.js';

export interface SiftRequest {
  /** Number of pulses of the round. */
  pulses: number;
  /** 1 where Bob detected the pulse (length = pulses). */
  detected: BitArray;
  /** Bob's basis for each detected pulse, in pulse order (length = detected.popcount()). */
  bases: BitArray;
}

export interface SiftReply {
  /** 1 where the detected pulse's bases match (length = number of detected pulses). */
  match: BitArray;
}

/** Bob's announcement: his detection mask and the bases of the detected pulses. */
export function bobSiftRequest(detected: BitArray, bobBases: BitArray): SiftRequest {
  sameLength(detected, bobBases, 'bobSiftRequest: detected vs bobBases');
  return { pulses: detected.length, detected, bases: compressBits(bobBases, detected) };
}

/** Alice's reply: which detected pulses were measured in her basis. */
export function aliceSiftReply(aliceBases: BitArray, request: SiftRequest): SiftReply {
  checkRequest(request);
  sameLength(aliceBases, request.detected, 'aliceSiftReply: aliceBases vs detected');
  const mine = compressBits(aliceBases, request.detected);
  const match = new BitArray(mine.length);
  const m = match.words, a = mine.words, b = request.bases.words;
  for (let i = 0; i < m.length; i++) m[i] = ~(a[i]! ^ b[i]!);
  return { match: match.clearTail() };
}

/** Alice's sifted key: her bits at detected pulses whose bases matched. */
export function siftAlice(aliceBits: BitArray, request: SiftRequest, reply: SiftReply): BitArray {
  sameLength(aliceBits, request.detected, 'siftAlice: aliceBits vs detected');
  return keepMatching(aliceBits, request.detected, reply);
}

/** Bob's sifted key: his bits at detected pulses whose bases matched. */
export function siftBob(bobBits: BitArray, detected: BitArray, reply: SiftReply): BitArray {
  sameLength(bobBits, detected, 'siftBob: bobBits vs detected');
  return keepMatching(bobBits, detected, reply);
}

export interface SiftResult {
  /** Alice's sifted key. */
  sifted: BitArray;
  /** 1 for every pulse kept in the sifted key (detected and bases match), length = pulses. */
  kept: BitArray;
}

/** Both halves in one process: Alice's sifted key and the mask of kept pulses. */
export function sift(aliceBits: BitArray, aliceBases: BitArray, bobBases: BitArray, detected: BitArray): SiftResult {
  sameLength(aliceBits, aliceBases, 'sift: aliceBits vs aliceBases');
  sameLength(aliceBases, bobBases, 'sift: aliceBases vs bobBases');
  sameLength(bobBases, detected, 'sift: bobBases vs detected');
  const kept = new BitArray(detected.length);
  const k = kept.words, a = aliceBases.words, b = bobBases.words, d = detected.words;
  for (let i = 0; i < k.length; i++) k[i] = ~(a[i]! ^ b[i]!) & d[i]!;
  return { sifted: compressBits(aliceBits, kept), kept };
}

function keepMatching(bits: BitArray, detected: BitArray, reply: SiftReply): BitArray {
  const atDetected = compressBits(bits, detected);
  if (reply.match.length !== atDetected.length) throw new RangeError(`sift: reply has ${reply.match.length} entries for ${atDetected.length} detected pulses`);
  return compressBits(atDetected, reply.match);
}

function checkRequest(request: SiftRequest): void {
  if (request.detected.length !== request.pulses) throw new RangeError(`SiftRequest: detected has ${request.detected.length} bits for ${request.pulses} pulses`);
  const count = request.detected.popcount();
  if (request.bases.length !== count) throw new RangeError(`SiftRequest: ${request.bases.length} bases for ${count} detected pulses`);
}

function sameLength(a: BitArray, b: BitArray, what: string): void {
  if (a.length !== b.length) throw new RangeError(`${what}: lengths differ (${a.length} vs ${b.length})`);
}

// ---- packed bit selection --------------------------------------------------------------------------------------

/** The bits of `src` at the one bits of `mask`, packed (common/bitSelect.ts). */
export { compressBits };

/** `mask` with every bit inverted (bits past length stay 0). */
export function invertBits(mask: BitArray): BitArray {
  const out = new BitArray(mask.length);
  const o = out.words, m = mask.words;
  for (let i = 0; i < o.length; i++) o[i] = ~m[i]!;
  return out.clearTail();
}
