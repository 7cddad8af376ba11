/**
 * The block a crash-test child appends as number i (test/store/reconciledSqlite.test.ts): its content
 * is a function of i only, so the parent can check any block it finds byte for byte. Sizes vary so
 * that some blocks fit in a page and others need overflow pages.
 */
import type { ReconciledBlock } from '../../src/store/ReconciledBlockStore.js';

export function crashBlock(i: number): ReconciledBlock {
  const byteLength = 200 + ((i * 7919) % 9000);
  const bits = new Uint8Array(byteLength);
  let x = Math.imul(i + 1, 2654435761) >>> 0;
  for (let k = 0; k < byteLength; k++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    bits[k] = x >>> 24;
  }
  const meta = JSON.stringify({ i, pulses: 1_000_000 + i, detections: [i * 3, i * 5, i * 7], pad: 'm'.repeat(i % 300) });
  return { blockId: `b${i}`, bits, bitLength: byteLength * 8 - (i % 8), meta, storedAt: 1_700_000_000_000 + i };
}
