/**
 * Stage 7: accumulation. A corrected and verified error-correction (EC) block is kept, with its public counts,
 * until the blocks of a stream hold enough key-basis bits for one privacy-amplification (PA) block (issue 11,
 * point 3: the decoy bounds need large n_X). This file is the record of one EC block: its ID (both ends derive it
 * from the round's nonces), its counts as they are stored next to the bits (the ReconciledBlockStore's `meta`),
 * the packing of its bits, and the sums and digest the PA step uses.
 */
import { createHash } from 'node:crypto';
import { BitArray } from '../common/bits.js';
import { canonicalJson } from '../protocol/transcript.js';

/** Version of the stored record; a record of another version is not used (the PA drops it). */
export const BLOCK_RECORD_VERSION = 1;
const BLOCK_ID_LABEL = 'qkdm/bb84/block/v1\0';
/** Bytes of the hash that names a block (22 characters of base64url). */
const BLOCK_ID_BYTES = 16;

/** The public counts of one EC block: what both ends know and compare, and what the PA sums. */
export interface EcBlockCounts {
  /** Pulses Alice sent in the block. */
  pulses: number;
  /** n_{X,k}, n_{Z,k}, m_{Z,k} per intensity (see estimation/intensityCounts.ts). */
  nX: number[];
  nZ: number[];
  mZ: number[];
  /** lambda_EC: bits error correction and verification disclosed about the X bits. */
  lambdaEC: number;
  /** Errors Cascade corrected in the X bits (Alice's count, announced with the block). */
  correctedErrors: number;
}

/** A block as one end stores it: the counts, the settings it was made under, and figures for the stats. */
export interface EcBlockRecord extends EcBlockCounts {
  /** The settings hash (protocol/messages.ts channelHash): blocks made under other settings are not amplified. */
  config: string;
  /** Detections per intensity (the simulated device's figure, for the stats). */
  detections: number[];
  /** Sifted bits of the block, both bases (for the stats: the PA block's secret fraction). */
  siftedBits: number;
  /** Bob's module only, when an attack is simulated: X bits whose value Eve knows (a test oracle, never protocol input). */
  eveKnownBits?: number;
}

/**
 * Bits the announcement of a block's corrected-error count (at most n) may disclose about its key bits:
 * ceil(log2(n + 1)), charged to lambda_EC with Cascade's parities and the verification tags.
 */
export function countDisclosureBits(n: number): number {
  return Math.ceil(Math.log2(n + 1));
}

/** The ID both ends give the block of a round: base64url of SHA-256(label || nonceA || nonceB), 16 bytes. */
export function blockIdFor(nonceA: Uint8Array, nonceB: Uint8Array): string {
  return createHash('sha256').update(BLOCK_ID_LABEL).update(nonceA).update(nonceB).digest().subarray(0, BLOCK_ID_BYTES).toString('base64url');
}

/** The record as stored (canonical JSON, so a repeated append of the same block is byte-identical). */
export function encodeBlockRecord(record: EcBlockRecord): string {
  return canonicalJson({ v: BLOCK_RECORD_VERSION, ...record });
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isCountList = (v: unknown, length: number): v is number[] => Array.isArray(v) && v.length === length && v.every(isCount);

/** The stored record, or undefined when it is not a record of this version for `intensities` intensities. */
export function decodeBlockRecord(meta: string, intensities: number): EcBlockRecord | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(meta);
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null) return undefined;
  const r = doc as Record<string, unknown>;
  if (r.v !== BLOCK_RECORD_VERSION || typeof r.config !== 'string') return undefined;
  if (!isCount(r.pulses) || !isCount(r.siftedBits) || !isCount(r.lambdaEC) || !isCount(r.correctedErrors)) return undefined;
  for (const f of ['nX', 'nZ', 'mZ', 'detections'] as const) if (!isCountList(r[f], intensities)) return undefined;
  if (r.eveKnownBits !== undefined && !isCount(r.eveKnownBits)) return undefined;
  const mZ = r.mZ as number[];
  if (mZ.some((m, k) => m > (r.nZ as number[])[k]!)) return undefined;
  return {
    config: r.config,
    pulses: r.pulses,
    siftedBits: r.siftedBits,
    detections: r.detections as number[],
    nX: r.nX as number[],
    nZ: r.nZ as number[],
    mZ,
    lambdaEC: r.lambdaEC,
    correctedErrors: r.correctedErrors,
    ...(r.eveKnownBits !== undefined ? { eveKnownBits: r.eveKnownBits } : {}),
  };
}

/** The bits as the store keeps them: ceil(n / 8) bytes, bit i in byte i >> 3 at position i & 7. */
export function packBits(bits: BitArray): Uint8Array {
  const bytes = new Uint8Array(bits.words.buffer, bits.words.byteOffset, bits.words.length * 4);
  return bytes.slice(0, Math.ceil(bits.length / 8));
}

export function unpackBits(bytes: Uint8Array, length: number): BitArray {
  if (bytes.length !== Math.ceil(length / 8)) throw new RangeError(`unpackBits: ${bytes.length} bytes for ${length} bits`);
  const words = new Uint32Array((length + 31) >>> 5);
  new Uint8Array(words.buffer).set(bytes);
  return new BitArray(length, words).clearTail();
}

/** The counts of several blocks added up, per intensity, and the figures of the PA block. */
export interface SummedCounts extends EcBlockCounts {
  blocks: number;
  siftedBits: number;
  detections: number[];
  eveKnownBits: number;
}

export function sumRecords(records: readonly EcBlockRecord[], intensities: number): SummedCounts {
  const zeros = (): number[] => new Array<number>(intensities).fill(0);
  const out: SummedCounts = { blocks: 0, pulses: 0, siftedBits: 0, detections: zeros(), nX: zeros(), nZ: zeros(), mZ: zeros(), lambdaEC: 0, correctedErrors: 0, eveKnownBits: 0 };
  for (const r of records) {
    out.blocks++;
    out.pulses += r.pulses;
    out.siftedBits += r.siftedBits;
    out.lambdaEC += r.lambdaEC;
    out.correctedErrors += r.correctedErrors;
    out.eveKnownBits += r.eveKnownBits ?? 0;
    for (let k = 0; k < intensities; k++) {
      out.detections[k]! += r.detections[k]!;
      out.nX[k]! += r.nX[k]!;
      out.nZ[k]! += r.nZ[k]!;
      out.mZ[k]! += r.mZ[k]!;
    }
  }
  return out;
}

/**
 * SHA-256 (base64) of the blocks' IDs and protocol counts, in order: what the PA step signs and both ends compare,
 * so neither amplifies over counts the other does not hold.
 */
export function countsDigest(blocks: readonly { id: string; counts: EcBlockCounts }[]): string {
  const h = createHash('sha256').update('qkdm/bb84/pa-counts/v1\0');
  for (const { id, counts: c } of blocks) {
    h.update(canonicalJson({ id, pulses: c.pulses, nX: c.nX, nZ: c.nZ, mZ: c.mZ, lambdaEC: c.lambdaEC, correctedErrors: c.correctedErrors }));
    h.update('\0');
  }
  return h.digest('base64');
}

/** Whether two blocks' protocol counts are equal. */
export function sameCounts(a: EcBlockCounts, b: EcBlockCounts): boolean {
  const same = (x: number[], y: number[]): boolean => x.length === y.length && x.every((v, i) => v === y[i]);
  return a.pulses === b.pulses && a.lambdaEC === b.lambdaEC && a.correctedErrors === b.correctedErrors && same(a.nX, b.nX) && same(a.nZ, b.nZ) && same(a.mZ, b.mZ);
}
